"""When a stage is due: plain functions of (workflow, plan dates, run, calendar).

Precedence: a per-school deadline (override or approved extension) beats the batch's date for the
stage, which beats the workflow's due rule; nothing falls after the plan's hard final deadline
(001: 2022年11月30日前 every teacher completes), except an approved extension up to the cap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from engine.calendar.workdays import Deadline, WorkCalendar
from engine.workflow.model import DueRule, Stage


@dataclass(frozen=True)
class StageDue:
    due: date
    provisional: bool  # counted Monday–Friday: the year's official calendar is not imported yet
    source: str  # extension | override | batch | workflow | final


def local_date(at: datetime, tz: str) -> date:
    return at.astimezone(ZoneInfo(tz)).date()


def rule_due(rule: DueRule, *, batch_start: date, stage_entered: date, calendar: WorkCalendar) -> Deadline:
    if rule.kind == "date":
        assert rule.date is not None
        return Deadline(rule.date, False)
    anchor = batch_start if rule.kind == "after_batch_start" else stage_entered
    if rule.working_days:
        return calendar.add_working_days(anchor, rule.amount)
    return calendar.add_days(anchor, rule.amount)


def stage_due(
    stage: Stage,
    *,
    batch_start: date,
    stage_entered: date,
    batch_deadlines: dict[str, str],
    run_deadline: tuple[date, str] | None,
    final_deadline: date | None,
    calendar: WorkCalendar,
) -> StageDue | None:
    """The date ``stage`` must be left by, or None (terminal/hold stages, no rule)."""
    if stage.terminal or stage.hold:
        return None
    if run_deadline is not None:
        return StageDue(run_deadline[0], False, run_deadline[1])
    if stage.id in batch_deadlines:
        return StageDue(date.fromisoformat(batch_deadlines[stage.id]), False, "batch")
    if stage.due is None:
        return StageDue(final_deadline, False, "final") if final_deadline else None
    got = rule_due(stage.due, batch_start=batch_start, stage_entered=stage_entered, calendar=calendar)
    if final_deadline and got.due > final_deadline:
        return StageDue(final_deadline, False, "final")
    return StageDue(got.due, got.provisional, "workflow")


def days_overdue(due: date, today: date) -> int:
    """Overdue from the day after the due date (the due date itself is still on time)."""
    return max(0, (today - due).days)
