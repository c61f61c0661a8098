"""A per-school deadline override: an office sets one school's due date for one stage.

``engine.deadline`` already ranks a per-school deadline above the batch's date and the workflow's
rule; an approved extension (``engine.extension``) is one kind, asked for by the school. An
*override* is the office's own decision (a school that joined a batch late, a school hit by a
flood): the same ``run_deadline`` row with ``kind = override``, never past the plan's extension
cap (or its final deadline), audited as a ``deadline_override`` event that ``audit verify`` replays.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified
from sqlalchemy.orm.exc import StaleDataError

from engine.audit.chain import append_event, run_chain
from engine.clock import Clock
from engine.deadline import local_date
from engine.errors import StaleStateError, TransitionRefused
from engine.i18n import tr
from engine.models import Plan, RunDeadline, SchoolRun
from engine.run_status import refresh
from engine.runs import Actor, find_run, stale_message
from engine.text import MAX_REASON, clean_line, clean_text
from engine.workflow.versions import workflow_for_version

DEADLINE_OVERRIDE = "deadline_override"
OVERRIDE_ROLES = ("province_office", "city_office", "county_office")


def may_override_deadline(role: str) -> bool:
    """Whether ``role`` may set a school's own deadline (the offices; never a school or a supervisor)."""
    return role in OVERRIDE_ROLES


def override_deadline(session: Session, clock: Clock, *, school_code: str, stage: str, due: date, reason: str,
                      actor: Actor, plan_code: str | None = None) -> RunDeadline:
    """Set ``school_code``'s due date for ``stage`` (its current stage or a later one) to ``due``."""
    text = clean_text(reason, tr("理由", "reason"), MAX_REASON)
    if not text or not text.strip():
        raise TransitionRefused(tr("单独设定截止日期必须填写理由（--reason）", "a deadline override needs a reason (--reason)"))
    actor = Actor(clean_line(actor.name, tr("操作人", "actor"), 100), actor.role)
    if not may_override_deadline(actor.role):
        raise TransitionRefused(tr(f"角色 {actor.role} 无权单独设定截止日期", f"role {actor.role} may not override a deadline"))
    run = find_run(session, school_code, plan_code)
    if run.withdrawn_at is not None:
        raise TransitionRefused(tr(f"学校 {school_code} 已退出本计划", f"school {school_code} was withdrawn from the plan"))
    plan = session.get(Plan, run.plan_id)
    assert plan is not None
    wf = workflow_for_version(session, run.workflow_version_id)
    if not wf.has_stage(stage) or wf.stage(stage).terminal or wf.stage(stage).hold:
        raise TransitionRefused(tr(f"阶段 {stage} 不存在或没有截止日期", f"stage {stage} does not exist or has no deadline"))
    cap = plan.extension_cap or plan.final_deadline
    if cap and due > cap:
        raise TransitionRefused(tr(f"截止日期不得晚于 {cap}", f"a deadline may not go past {cap}"))
    now = clock.now()
    if due < local_date(now, plan.timezone):
        raise TransitionRefused(tr("新的截止日期已经过去", "the new due date is already past"))
    row = session.scalar(select(RunDeadline).where(RunDeadline.run_id == run.id, RunDeadline.stage == stage))
    if row is None:
        row = RunDeadline(run_id=run.id, stage=stage, due=due, kind="override", reason=text, created_at=now,
                          created_by=actor.name)
        session.add(row)
    else:
        row.due, row.kind, row.reason, row.created_at, row.created_by = due, "override", text, now, actor.name
    run.updated_at = now
    flag_modified(run, "updated_at")  # the optimistic lock: an officer's open page is now stale
    try:
        session.flush()
    except StaleDataError as exc:
        raise StaleStateError(stale_message(school_code)) from exc
    append_event(session, chain=run_chain(run.id), at=now, actor=actor.name, role=actor.role, trigger=DEADLINE_OVERRIDE,
                 plan_id=run.plan_id, run_id=run.id, school_code=school_code, from_state=run.state, to_state=run.state,
                 reason=text, gates=[{"stage": stage, "due": due}], workflow_version=wf.key)
    refresh(session, SchoolRun.id == run.id, teachers=False)
    return row
