"""The one word an official reads for where a school stands: 可推进, 进行中, 即将到期, 逾期, 暂停 …

"受阻" (gates not met) said nothing useful: on 2022-08-31 it counted 91 schools that were only
waiting for supervision with 91 days left, mixed with schools months behind. These states say
what the office has to do, and every school is in exactly one of them, so the counts add up to
the schools in scope. In order of precedence:

- ``done`` 已完成 — the run reached a terminal stage.
- ``suspended`` 暂停 — parked in a hold stage (no deadlines, no reminders).
- ``not_started`` 未开始 — its batch has not begun.
- ``overdue`` 逾期 — the stage's due date has passed (also when its gates now pass: the office
  must still move it, and late is what the city asks about first).
- ``ready`` 可推进 — every gate of the stage passes: waiting for a person (or the next sweep).
- ``due_soon`` 即将到期 — gates not met and due within the stage's reminder horizon (the
  earliest reminder the workflow sends, ``remind.before_days``; 14 days in the 2.0 workflow).
- ``in_progress`` 进行中 — gates not met, not yet due soon.

``school_state`` is the rule over plain data (the school page, the tests); ``state_case`` is
the same rule as one SQL CASE over the stored status, so lists filter and page by state and the
overview counts by state in one GROUP BY. ``tests/engine/test_school_state.py`` checks the two
agree on every combination of their inputs.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, false, or_

from engine.models import SchoolRun
from engine.workflow.model import Stage, Text, Workflow

DONE, SUSPENDED, NOT_STARTED = "done", "suspended", "not_started"
OVERDUE, READY, DUE_SOON, IN_PROGRESS = "overdue", "ready", "due_soon", "in_progress"
# Display order: what needs action first, then what is moving, then what is out of the way.
STATES = (OVERDUE, DUE_SOON, READY, IN_PROGRESS, NOT_STARTED, SUSPENDED, DONE)
STATE_TITLES = {
    OVERDUE: Text("逾期", "Overdue"),
    DUE_SOON: Text("即将到期", "Due soon"),
    READY: Text("可推进", "Ready to advance"),
    IN_PROGRESS: Text("进行中", "In progress"),
    NOT_STARTED: Text("未开始", "Not started"),
    SUSPENDED: Text("暂停", "Suspended"),
    DONE: Text("已完成", "Done"),
}
# What each state means, in the words of the overview's legend.
STATE_HELP = {
    OVERDUE: Text("本阶段截止日期已过", "the stage's due date has passed"),
    DUE_SOON: Text("条件未满足，距截止日期不超过提醒期", "conditions not met, due within the reminder period"),
    READY: Text("本阶段条件均已满足，等待推进", "every condition of the stage is met, waiting to be advanced"),
    IN_PROGRESS: Text("条件尚未满足，尚未临近截止日期", "conditions not met yet, not due soon"),
    NOT_STARTED: Text("所在批次尚未开始", "its batch has not started"),
    SUSPENDED: Text("已暂停推进", "suspended"),
    DONE: Text("已完成全部阶段", "finished every stage"),
}


def stage_horizon(stage: Stage) -> int:
    """Days before the due date a school counts as due soon: the stage's earliest reminder."""
    if stage.remind is None or not stage.remind.before_days:
        return 0
    return max(stage.remind.before_days)


def school_state(*, terminal: bool, hold: bool, started: bool, blocked: bool, due: date | None,
                 today: date, horizon: int) -> str:
    """The state of one school run (see the module docstring for the order)."""
    if terminal:
        return DONE
    if hold:
        return SUSPENDED
    if not started:
        return NOT_STARTED
    if due is not None and due < today:
        return OVERDUE
    if not blocked:
        return READY
    if due is not None and due <= today + timedelta(days=horizon):
        return DUE_SOON
    return IN_PROGRESS


def run_state(wf: Workflow, stage_id: str, *, started: bool, blocked: bool, due: date | None, today: date) -> str:
    """``school_state`` for a run in ``stage_id`` of ``wf``."""
    stage = wf.stage(stage_id)
    return school_state(terminal=stage.terminal, hold=stage.hold, started=started, blocked=blocked, due=due,
                        today=today, horizon=stage_horizon(stage))


def tally_state(wf: Workflow, stage_id: str, *, started: bool, blocked: bool, due: date | None, today: date) -> str:
    """``run_state`` for a stage ``wf`` may not hold (a run a region-only version move put on a
    stage the plan's version lacks): as ``state_case`` reads it, never done, suspended or due soon."""
    if wf.has_stage(stage_id):
        return run_state(wf, stage_id, started=started, blocked=blocked, due=due, today=today)
    return school_state(terminal=False, hold=False, started=started, blocked=blocked, due=due, today=today,
                        horizon=-1)


def state_case(wf: Workflow, now: datetime, today: date) -> ColumnElement[Any]:
    """``school_state`` as a SQL expression over ``school_run``'s stored status."""
    terminal = [s.id for s in wf.stages if s.terminal]
    hold = [s.id for s in wf.stages if s.hold]
    by_horizon: dict[int, list[str]] = {}
    for s in wf.stages:
        by_horizon.setdefault(stage_horizon(s), []).append(s.id)
    soon = or_(*(and_(SchoolRun.state.in_(ids), SchoolRun.due_date <= today + timedelta(days=h))
                 for h, ids in sorted(by_horizon.items())))
    return case(
        (SchoolRun.state.in_(terminal) if terminal else false(), DONE),
        (SchoolRun.state.in_(hold) if hold else false(), SUSPENDED),
        (SchoolRun.started_at > now, NOT_STARTED),
        (SchoolRun.due_date < today, OVERDUE),
        (SchoolRun.blocked == false(), READY),
        (soon, DUE_SOON),
        else_=IN_PROGRESS,
    )


def state_title(state: str) -> str:
    title = STATE_TITLES.get(state)
    return str(title) if title else state
