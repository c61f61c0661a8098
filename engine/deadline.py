"""When a stage is due: plain functions of (workflow, plan dates, run, calendar).

Precedence: a per-school deadline (override or approved extension) beats the batch's date for the
stage, which beats the workflow's due rule; nothing falls after the plan's hard final deadline
(001: 2022年11月30日前 every teacher completes), except an approved extension up to the cap.

The final deadline cuts only the stages the plan says it binds (``final_deadline_binds``; every
stage by default): seed 002's "培训结束后30天内" is a relative rule that the training deadline
2021-06-30 must not shorten. An extension whose workflow transition ``covers`` the rest of the
work (002: "获批后最迟于2021年底前完成") also moves every later stage: those are due by the
extension's date (``remaining``) or the plan's cap (``remaining_to_cap``), never before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from engine.calendar.workdays import Deadline, WorkCalendar
from engine.workflow.model import DueRule, Stage, Workflow


@dataclass(frozen=True)
class Cover:
    """An earlier stage's extension that covers this stage: granted until ``granted``, the rest of
    the work due by ``until`` (the same date, or the plan's cap)."""

    granted: date
    until: date


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
    binds_final: bool = True,
    cover: Cover | None = None,
) -> StageDue | None:
    """The date ``stage`` must be left by, or None (terminal/hold stages, no rule).

    ``binds_final``: whether the plan's final deadline cuts this stage. ``cover``: an earlier
    stage's extension that covers the rest of the work (see ``extension_cover``).
    """
    if stage.terminal or stage.hold:
        return None
    if run_deadline is not None:
        return StageDue(run_deadline[0], False, run_deadline[1])
    final = final_deadline if binds_final else None
    got: StageDue | None = None
    if stage.id in batch_deadlines:
        got = StageDue(date.fromisoformat(batch_deadlines[stage.id]), False, "batch")
    elif stage.due is not None:
        rule = rule_due(stage.due, batch_start=batch_start, stage_entered=stage_entered, calendar=calendar)
        got = StageDue(rule.due, rule.provisional, "workflow")
    if cover is not None:
        # A schedule date (batch date, fixed date, days after the batch start) before the date the
        # extension was granted until is the old plan the school was given more time for (the
        # 06-30): the covered end applies. A rule counted from entering this stage is the school's
        # own pace and stands, within the covered end.
        relative = got is not None and got.source == "workflow" and stage.due is not None \
            and stage.due.kind == "after_stage_entry"
        if got is None or got.due > cover.until or (got.due < cover.granted and not relative):
            return StageDue(cover.until, False, "extension")
        return got
    if got is None:
        return StageDue(final, False, "final") if final else None
    if final and got.due > final:
        return StageDue(final, False, "final")
    return got


def extension_cover(wf: Workflow, stage_id: str, deadlines: Mapping[str, tuple[date, str]],
                    cap: date | None) -> Cover | None:
    """The latest extension of an earlier stage (file order) whose ``extend`` covers the rest.

    ``deadlines`` is the run's per-stage deadlines (stage → (due, kind)); ``cap`` the plan's
    extension cap (else its final deadline), which ``remaining_to_cap`` extends the rest to.
    """
    order = [s.id for s in wf.stages]
    if stage_id not in order:
        return None
    here = order.index(stage_id)
    found: Cover | None = None
    for earlier in order[:here]:
        got = deadlines.get(earlier)
        if got is None or got[1] != "extension":
            continue
        covers = next((t.covers for t in wf.transitions_from(earlier) if t.kind == "extend"), "stage")
        if covers == "stage":
            continue
        until = max(cap, got[0]) if covers == "remaining_to_cap" and cap else got[0]
        if found is None or got[0] >= found.granted:
            found = Cover(got[0], until)
    return found


def days_overdue(due: date, today: date) -> int:
    """Overdue from the day after the due date (the due date itself is still on time)."""
    return max(0, (today - due).days)


def run_stage_due(wf: Workflow, stage_id: str, *, batch_start: date, stage_entered: date,
                  batch_deadlines: dict[str, str], run_deadlines: Mapping[str, tuple[date, str]],
                  final_deadline: date | None, final_stages: list[str] | None, extension_cap: date | None,
                  calendar: WorkCalendar) -> StageDue | None:
    """``stage_due`` for a run: its own deadlines, the plan's binding of the final deadline and
    the cover of an earlier extension, all in one place for the stored status and the live view."""
    return stage_due(wf.stage(stage_id), batch_start=batch_start, stage_entered=stage_entered,
                     batch_deadlines=batch_deadlines, run_deadline=run_deadlines.get(stage_id),
                     final_deadline=final_deadline, calendar=calendar,
                     binds_final=final_stages is None or stage_id in final_stages,
                     cover=extension_cover(wf, stage_id, run_deadlines, extension_cap or final_deadline))
