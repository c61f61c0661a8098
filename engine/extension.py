"""Extension requests: a school (or contractor) asks for a later due date, an office with a role
allowed to fire the workflow's ``extend`` transition approves or refuses it, with a reason.

Seed 002 (Henan): 确需延期的…向省项目执行办提出申请, and once approved it must end by 2021-12-31 at the
latest — the plan's ``extension_cap``. Requests and refusals are audit events on the school's chain
(the chain is the record, so nothing about a request can change unseen); approval fires ``extend``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified
from sqlalchemy.orm.exc import StaleDataError

from engine.audit.chain import append_event, run_chain
from engine.clock import Clock
from engine.errors import StaleStateError, TransitionRefused
from engine.i18n import tr
from engine.models import AuditEvent, Plan, School, SchoolRun
from engine.plan import find_plan
from engine.runs import SYSTEM, Actor, Outcome, find_run, fire, stale_message
from engine.text import MAX_REASON, clean_text
from engine.workflow.model import Workflow
from engine.workflow.versions import workflow_for_version

REQUEST, REFUSE, LAPSE = "extension_request", "extension_refuse", "extension_lapse"
DECIDING = (REQUEST, REFUSE, LAPSE, "extend")  # the events that open or close a request


@dataclass(frozen=True)
class ExtensionRequest:
    school_code: str
    stage: str
    due: date
    reason: str
    requested_by: str
    seq: int
    current_stage: str = ""  # where the school is now: a request for another stage has lapsed

    @property
    def stale(self) -> bool:
        """The school left the stage the request was for: it can no longer be decided (bug: it
        used to block every later request, "已有待审批的延期申请", forever)."""
        return self.current_stage != self.stage


def _pending(session: Session, run: SchoolRun) -> ExtensionRequest | None:
    """The run's last undecided request, whichever stage it was for (``stale`` tells if it still applies)."""
    last = session.scalars(
        select(AuditEvent).where(AuditEvent.chain == run_chain(run.id), AuditEvent.trigger.in_(DECIDING))
        .order_by(AuditEvent.seq.desc()).limit(1)).first()
    if last is None or last.trigger != REQUEST:
        return None
    return _request(run.school_code, run.state, last.gates, last.reason, last.actor, last.seq)


def _request(school_code: str, state: str, gates: Any, reason: str | None, actor: str, seq: int) -> ExtensionRequest:
    """A request event read back: the stage and date asked for are its first ``gates`` entry."""
    asked = gates[0]
    return ExtensionRequest(school_code, asked["stage"], date.fromisoformat(asked["due"]), reason or "", actor, seq, state)


def _append(session: Session, run: SchoolRun, clock: Clock, actor: Actor, trigger: str, reason: str,
            gates: list[dict[str, str]], workflow_version: str) -> None:
    school_code = run.school_code  # read before the flush: after a failed one the session refuses every read
    run.updated_at = clock.now()
    flag_modified(run, "updated_at")  # serialise with transitions on the same school
    try:
        session.flush()
    except StaleDataError as exc:
        raise StaleStateError(stale_message(school_code)) from exc
    append_event(session, chain=run_chain(run.id), at=clock.now(), actor=actor.name, role=actor.role, trigger=trigger,
                 plan_id=run.plan_id, run_id=run.id, school_code=run.school_code, from_state=run.state,
                 to_state=run.state, reason=reason, gates=gates, workflow_version=workflow_version)


def request_extension(session: Session, clock: Clock, *, school_code: str, due: date, reason: str, actor: Actor,
                      plan_code: str | None = None) -> ExtensionRequest:
    reason = clean_text(reason, tr("理由", "reason"), MAX_REASON) or ""
    run = find_run(session, school_code, plan_code)
    plan = session.get(Plan, run.plan_id)
    assert plan is not None
    wf = workflow_for_version(session, run.workflow_version_id)
    if not reason.strip():
        raise TransitionRefused(tr("延期申请必须说明理由", "an extension request needs a reason"))
    if not any(t.kind == "extend" for t in wf.transitions_from(run.state)):
        raise TransitionRefused(tr(f"“{wf.stage(run.state).title.zh}”阶段不能延期", f"stage '{wf.stage(run.state).title.en}' cannot be extended"))
    cap = plan.extension_cap or plan.final_deadline
    if cap and due > cap:
        raise TransitionRefused(tr(f"延期不得晚于 {cap}", f"an extension may not go past {cap}"))
    earlier = _pending(session, run)
    if earlier is not None and earlier.stale:  # a request for a stage the school has left: lapse it first
        _lapse(session, run, clock, earlier, wf.key)
    elif earlier is not None:
        raise TransitionRefused(tr(f"学校 {school_code} 已有待审批的延期申请", f"school {school_code} already has a pending extension request"))
    _append(session, run, clock, actor, REQUEST, reason.strip(), [{"stage": run.state, "due": due.isoformat()}], wf.key)
    pending = _pending(session, run)
    assert pending is not None
    return pending


def decide_extension(session: Session, clock: Clock, *, school_code: str, approve: bool, reason: str, actor: Actor,
                     plan_code: str | None = None) -> Outcome | None:
    """Approve (fires ``extend`` with the requested date) or refuse (audited with the reason)."""
    reason = clean_text(reason, tr("审批意见", "decision"), MAX_REASON) or ""
    run = find_run(session, school_code, plan_code)
    pending = _pending(session, run)
    if pending is None:
        raise TransitionRefused(tr(f"学校 {school_code} 没有待审批的延期申请", f"school {school_code} has no pending extension request"))
    wf = workflow_for_version(session, run.workflow_version_id)
    extend = next((t for t in wf.transitions_from(run.state) if t.kind == "extend"), None)
    if extend is None or pending.stale:
        was, now = _titles(wf, pending.stage), _titles(wf, run.state)
        raise TransitionRefused(tr(
            f"学校已不在申请延期的阶段（申请时为“{was[0]}”，现为“{now[0]}”），该申请已失效；如仍需延期，请重新申请",
            f"the request has lapsed: the school has left stage '{was[1]}' it was for (now '{now[1]}'); "
            "request again if an extension is still needed"))
    if actor.role not in extend.roles:
        raise TransitionRefused(tr(f"角色 {actor.role} 无权审批延期（允许：{'、'.join(extend.roles)}）",
                                   f"role {actor.role} may not decide extensions (allowed: {', '.join(extend.roles)})"))
    if not reason.strip():
        raise TransitionRefused(tr("审批意见必须填写", "a decision needs a reason"))
    if approve:
        return fire(session, clock, school_code=school_code, trigger=extend.trigger, actor=actor, due=pending.due,
                    reason=tr(f"批准延期申请（#{pending.seq}）：{reason.strip()}", f"approved extension request #{pending.seq}: {reason.strip()}"),
                    plan_code=plan_code)
    _append(session, run, clock, actor, REFUSE, reason.strip(), [{"stage": pending.stage, "due": pending.due.isoformat()}], wf.key)
    return None


def _lapse(session: Session, run: SchoolRun, clock: Clock, request: ExtensionRequest, workflow_version: str) -> None:
    _append(session, run, clock, Actor(SYSTEM, SYSTEM), LAPSE,
            tr(f"延期申请（#{request.seq}）失效：学校已离开“{request.stage}”阶段，进入“{run.state}”",
               f"extension request #{request.seq} lapsed: the school left stage '{request.stage}' for '{run.state}'"),
            [{"stage": request.stage, "due": request.due.isoformat(), "request_seq": str(request.seq)}], workflow_version)


def _undecided(session: Session, plan_code: str | None,
               *where: ColumnElement[bool]) -> list[tuple[int, ExtensionRequest]]:
    """(run id, request) of every run of the plan, of the schools ``where`` picks (over ``School``),
    whose last request-or-decision event is a request: one statement, plain columns.

    It asked each run that had ever requested for its last such event, one query a run, and every
    school page and queue read the whole plan's: a province where a tenth of its 50,000 schools had
    once asked paid 5,000 queries (9–10 s) on each."""
    plan = find_plan(session, plan_code)
    # Each chain's request and decision events, newest first; the newest one's trigger says whether
    # a request is open. The trigger is tested here, not on the joined event: with it there, stale
    # statistics after a burst of requests made PostgreSQL nest-loop 5,000 × 5,000 rows (4.4 s).
    # A county's queue ranks its own schools' events, not the province's.
    scope = [AuditEvent.school_code.in_(select(School.code).where(*where))] if where else []
    ranked = (select(AuditEvent.id, AuditEvent.trigger,
                     func.row_number().over(partition_by=AuditEvent.chain, order_by=AuditEvent.seq.desc()).label("rn"))
              .where(AuditEvent.plan_id == plan.id, AuditEvent.trigger.in_(DECIDING), *scope).subquery())
    rows = session.execute(
        select(SchoolRun.id, SchoolRun.school_code, SchoolRun.state, AuditEvent.gates, AuditEvent.reason,
               AuditEvent.actor, AuditEvent.seq)
        .join(AuditEvent, AuditEvent.run_id == SchoolRun.id).join(ranked, ranked.c.id == AuditEvent.id)
        .where(ranked.c.rn == 1, ranked.c.trigger == REQUEST, SchoolRun.plan_id == plan.id)
        .order_by(SchoolRun.school_code)).all()
    return [(r.id, _request(r.school_code, r.state, r.gates, r.reason, r.actor, r.seq)) for r in rows]


def pending_request(session: Session, run: SchoolRun) -> ExtensionRequest | None:
    """One school's request an office can still decide, if any (its page: one indexed read of
    its own chain, not the plan's)."""
    found = _pending(session, run)
    return None if found is None or found.stale else found


def pending_requests(session: Session, plan_code: str | None = None,
                     *where: ColumnElement[bool]) -> list[ExtensionRequest]:
    """Requests an office can still decide (a request for a stage the school has left is not one),
    of the schools ``where`` picks (over ``School``; all when none)."""
    return [p for _, p in _undecided(session, plan_code, *where) if not p.stale]


def lapse_stale_requests(session: Session, clock: Clock, plan_code: str | None = None) -> list[ExtensionRequest]:
    """Close every undecided request whose school has left the stage it was for (the sweep runs this).

    Each lapse is an ``extension_lapse`` event on the school's chain, by ``system``, naming the
    request; the caller tells the school (service.sweep queues the notice). Afterwards the school
    may request again for the stage it is in now.
    """
    lapsed = []
    for run_id, request in _undecided(session, plan_code):
        if request.stale:
            run = session.get_one(SchoolRun, run_id)
            _lapse(session, run, clock, request, workflow_for_version(session, run.workflow_version_id).key)
            lapsed.append(request)
    return lapsed


def _titles(wf: Workflow, stage: str) -> tuple[str, str]:
    """A stage's (zh, en) title for a message; its id when this version has no such stage (a
    request made before a version move renamed it). Officials read titles, not ids (issue 10)."""
    found = next((s for s in wf.stages if s.id == stage), None)
    return (found.title.zh, found.title.en) if found else (stage, stage)
