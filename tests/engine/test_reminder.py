from datetime import date, timedelta

from engine.reminder import due_items
from engine.workflow.model import EscalationStep, ReminderRule

RULE = ReminderRule(
    before_days=(14, 3),
    escalate=(EscalationStep(0, "school"), EscalationStep(7, "county"), EscalationStep(30, "city"), EscalationStep(60, "province")),
    repeat_days=7,
)
DUE = date(2022, 8, 31)


def keys(today: date) -> set[str]:
    return {i.key for i in due_items(17, "practice", DUE, RULE, today)}


def test_nothing_before_the_first_threshold() -> None:
    assert due_items(17, "practice", DUE, RULE, DUE - timedelta(days=15)) == []


def test_reminders_at_14_and_3_days_and_only_the_latest_after_an_outage() -> None:
    first = due_items(17, "practice", DUE, RULE, DUE - timedelta(days=14))
    assert [(i.kind, i.level, i.days_left) for i in first] == [("reminder", "school", 14)]
    late = due_items(17, "practice", DUE, RULE, DUE - timedelta(days=2))
    assert [i.key for i in late] == ["remind:run:17:practice:2022-08-31:-3"]
    assert keys(DUE) == keys(DUE - timedelta(days=3))  # the due day itself is still on time


def test_overdue_escalates_level_by_level() -> None:
    day1 = due_items(17, "practice", DUE, RULE, DUE + timedelta(days=1))
    assert [(i.kind, i.level, i.days_overdue) for i in day1] == [("overdue", "school", 1)]
    day30 = due_items(17, "practice", DUE, RULE, DUE + timedelta(days=30))
    assert [i.level for i in day30] == ["school", "county", "city"]
    assert {i.kind for i in day30[1:]} == {"escalation"}
    day60 = due_items(17, "practice", DUE, RULE, DUE + timedelta(days=60))
    assert [i.level for i in day60] == ["school", "county", "city", "province"]


def test_repeat_interval_gives_new_keys_only_every_seven_days() -> None:
    assert keys(DUE + timedelta(days=1)) == keys(DUE + timedelta(days=6))
    assert keys(DUE + timedelta(days=8)) != keys(DUE + timedelta(days=6))
    distinct_school = {k for d in range(1, 63) for k in keys(DUE + timedelta(days=d)) if ":school:" in k}
    assert len(distinct_school) == 9  # overdue days 1..62 → repeat rounds 0..8


def test_without_a_rule_an_overdue_school_is_still_told() -> None:
    """A stage with no ``remind`` block: no reminders before the due date, the school alone told after."""
    assert due_items(3, "planning", DUE, None, DUE - timedelta(days=1)) == []
    assert due_items(3, "planning", DUE, None, DUE) == []
    items = due_items(3, "planning", DUE, None, DUE + timedelta(days=2))
    assert [(i.kind, i.level) for i in items] == [("overdue", "school")]


def _first_days(level: str, last: int = 75) -> list[int]:
    """The overdue days on which a new item for ``level`` first appears (a new key = a new message)."""
    seen: set[str] = set()
    days = []
    for d in range(0, last + 1):
        new = {k for k in keys(DUE + timedelta(days=d)) if f":{level}:" in k} - seen
        if new:
            days.append(d)
        seen |= new
    return days


def test_each_level_repeats_every_seven_days_from_its_own_escalation_day() -> None:
    """`repeat_days: 7` (docs/workflow-files.md "Reminders"): while overdue a level is told again
    every 7 days counted from the day it was first told — the city on overdue days 30, 37, 44 …,
    the province on 60, 67, 74 — not on the due date's 7-day grid (35, 42 …)."""
    assert _first_days("school") == [1, 7, 14, 21, 28, 35, 42, 49, 56, 63, 70]
    assert _first_days("county") == [7, 14, 21, 28, 35, 42, 49, 56, 63, 70]
    assert _first_days("city") == [30, 37, 44, 51, 58, 65, 72]
    assert _first_days("province") == [60, 67, 74]
