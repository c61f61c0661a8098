"""Which reminders and overdue alerts a school run is due, as plain functions of (rule, due, today).

Level-triggered: the answer depends only on today's date, so a sweep run twice, or once after ten
days of downtime, asks for the same items; the dedupe keys make sure each goes out once. After an
outage only the latest reminder threshold is sent (a 14-day and a 3-day reminder are not both
sent late), while each escalation level that has been reached is told once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from engine.workflow.model import EscalationStep, ReminderRule

DEFAULT_ESCALATION = (EscalationStep(0, "school"),)


@dataclass(frozen=True)
class DueItem:
    key: str  # deterministic: the same situation always gives the same key
    kind: str  # reminder | overdue | escalation
    level: str  # who is told: school | county | city | province
    days_left: int | None
    days_overdue: int | None


def due_items(run_id: int, stage: str, due: date, rule: ReminderRule | None, today: date) -> list[DueItem]:
    base = f"run:{run_id}:{stage}:{due.isoformat()}"
    if today <= due:
        days_left = (due - today).days
        passed = [b for b in (rule.before_days if rule else ()) if days_left <= b]
        if not passed:
            return []
        threshold = min(passed)
        return [DueItem(f"remind:{base}:-{threshold}", "reminder", "school", days_left, None)]
    # Overdue from the day after the due date.
    overdue = (today - due).days
    steps = (rule.escalate if rule and rule.escalate else DEFAULT_ESCALATION)
    items = []
    for step in steps:
        if overdue < step.after_days:
            continue
        key = f"overdue:{base}:{step.to}:+{step.after_days}"
        if rule and rule.repeat_days:
            key += f":r{(overdue - step.after_days) // rule.repeat_days}"
        kind = "overdue" if step.to == "school" else "escalation"
        items.append(DueItem(key, kind, step.to, None, overdue))
    return items
