"""Firing transitions on school runs: one transition = one database transaction that changes the
state and appends its audit event, or does neither.

Rules enforced here, in this order: the trigger exists from the current stage, the actor's role may
fire it, a reason is given where required, the batch has started, gates pass (advance) — an
override records the failing gates it overrode. Concurrency: the run's ``version`` column is an
optimistic lock (two officers on one school: exactly one wins, the other gets StaleStateError).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any, cast

from sqlalchemy import CursorResult, Table, bindparam, false, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified
from sqlalchemy.orm.exc import StaleDataError

from engine.audit.chain import EventDraft, append_event, append_events, run_chain
from engine.clock import Clock
from engine.deadline import local_date
from engine.errors import NotFound, StaleStateError, TransitionRefused
from engine.gate import GateResult, all_passed, failing, judge_stage
from engine.i18n import tr
from engine.metrics import metric_values, values_for_run
from engine.models import Plan, RunDeadline, School, SchoolRun
from engine.plan import find_plan
from engine.reads import remembered
from engine.run_status import expire_runs, refresh, refresh_ids
from engine.text import MAX_REASON, clean_line, clean_text
from engine.workflow.machine import Token, machine_for
from engine.workflow.model import Transition, Workflow
from engine.workflow.versions import workflow_for_version

SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    name: str
    role: str


@dataclass(frozen=True)
class Outcome:
    school_code: str
    trigger: str
    from_state: str
    to_state: str
    gates: list[GateResult]
    overridden: list[str] = field(default_factory=list)  # failing gates an override went past


def stale_message(school: str) -> str:
    return tr(f"学校 {school} 已被他人修改，请刷新后重试", f"school {school} was changed by someone else: reload and try again")


def find_run(session: Session, school_code: str, plan_code: str | None = None) -> SchoolRun:
    if session.get(School, school_code) is None:
        raise NotFound(tr(f"没有学校 {school_code}", f"no school {school_code}"))
    plan = find_plan(session, plan_code)
    run = remembered(session, ("run", plan.id, school_code), lambda: session.scalar(
        select(SchoolRun).where(SchoolRun.plan_id == plan.id, SchoolRun.school_code == school_code)))
    if run is None:
        raise NotFound(tr(f"学校 {school_code} 不在计划 {plan.code} 中", f"school {school_code} is not in plan {plan.code}"))
    return run


def _check_allowed(wf: Workflow, run: SchoolRun, trigger: str, actor: Actor, reason: str | None) -> Transition:
    t = wf.transition_for(trigger, run.state)
    if t is None:
        allowed = {x.trigger: x for x in wf.transitions_from(run.state)}
        zh = "、".join(f"{x.title.zh}（{k}）" for k, x in sorted(allowed.items())) or "无"
        en = ", ".join(f"{x.title.en} ({k})" for k, x in sorted(allowed.items())) or "none"
        raise TransitionRefused(tr(
            f"学校 {run.school_code} 处于“{wf.stage(run.state).title.zh}”阶段，不能执行“{trigger}”；可执行：{zh}",
            f"school {run.school_code} is in stage '{wf.stage(run.state).title.en}': '{trigger}' is not allowed; allowed: {en}"))
    # Officials read role and action names, not ids: ids stay in brackets for the command line.
    if actor.role not in t.roles and not (actor.role == SYSTEM and t.auto):
        def role(r: str, en: bool) -> str:
            title = wf.roles.get(r)
            return r if title is None else (f"{title.en} ({r})" if en else f"{title.zh}（{r}）")
        raise TransitionRefused(tr(
            f"角色 {role(actor.role, False)} 无权执行“{t.title.zh}”（允许：{'、'.join(role(r, False) for r in t.roles)}）",
            f"role {role(actor.role, True)} may not fire '{t.title.en}' (allowed: {', '.join(role(r, True) for r in t.roles)})"))
    if t.reason_required and not (reason and reason.strip()):
        raise TransitionRefused(tr(f"“{t.title.zh}”（{trigger}）必须填写理由（--reason）",
                                   f"'{t.title.en}' ({trigger}) needs a reason (--reason)"))
    return t


def fire(
    session: Session,
    clock: Clock,
    *,
    school_code: str,
    trigger: str,
    actor: Actor,
    reason: str | None = None,
    plan_code: str | None = None,
    expected_version: int | None = None,
    due: date | None = None,
) -> Outcome:
    """Fire one transition inside the caller's transaction (the caller commits or rolls back)."""
    reason = clean_text(reason, tr("理由", "reason"), MAX_REASON)  # stored forever: capped, no escapes
    actor = Actor(clean_line(actor.name, tr("操作人", "actor"), 100), actor.role)
    run = find_run(session, school_code, plan_code)
    if expected_version is not None and run.version != expected_version:
        raise StaleStateError(stale_message(school_code))
    if run.withdrawn_at is not None:
        raise TransitionRefused(tr(f"学校 {school_code} 已退出本计划", f"school {school_code} was withdrawn from the plan"))
    plan = session.get(Plan, run.plan_id)
    assert plan is not None
    wf = workflow_for_version(session, run.workflow_version_id)
    t = _check_allowed(wf, run, trigger, actor, reason)
    now = clock.now()
    if run.started_at > now:
        raise TransitionRefused(tr(
            f"学校 {school_code} 所在批次尚未开始（{local_date(run.started_at, plan.timezone)}）",
            f"school {school_code}'s batch has not started yet ({local_date(run.started_at, plan.timezone)})"))
    stage = wf.stage(run.state)
    values = values_for_run(session, wf, run)
    gates = judge_stage(wf, stage, values) if stage.gates else []
    if t.kind == "advance" and not all_passed(gates):
        raise TransitionRefused(tr("关卡未通过：", "gates not passed: ") + tr("；", "; ").join(g.explain() for g in failing(gates)))
    overridden = [g.gate for g in failing(gates)] if t.kind == "override" else []

    token = Token(run.state, run.previous_state)
    if t.kind == "extend":
        _extend(session, run, plan, stage.id, due, reason or "", actor, now)
    elif not machine_for(wf).fire(token, trigger, gates_ok=all_passed(gates)):
        raise TransitionRefused(tr(f"状态机拒绝了“{trigger}”", f"the state machine refused '{trigger}'"))
    from_state = run.state
    if token.state != from_state:
        run.previous_state = from_state if t.kind in ("return", "suspend") else None
        run.state = token.state
        # Suspend/resume keep the working stage's entry time: time suspended is not extra time,
        # and a hold stage has no deadline of its own (an extension is how a school gets more).
        if t.kind not in ("suspend", "resume"):
            run.stage_entered_at = now
    run.updated_at = now
    flag_modified(run, "updated_at")  # always an UPDATE: the optimistic-lock version bumps, for extensions too
    try:
        session.flush()
    except (StaleDataError, IntegrityError) as exc:  # two extends at once on PostgreSQL: uq_run_deadline
        raise StaleStateError(stale_message(school_code)) from exc
    append_event(session, chain=run_chain(run.id), at=now, actor=actor.name, role=actor.role, trigger=trigger,
                 plan_id=run.plan_id, run_id=run.id, school_code=school_code, from_state=from_state,
                 to_state=run.state, reason=_reason(reason, t, due, overridden),
                 gates=[g.as_dict() for g in gates], workflow_version=wf.key)
    refresh(session, SchoolRun.id == run.id, values={run.id: values}, teachers=False)
    return Outcome(school_code, trigger, from_state, run.state, gates, overridden)


def _reason(reason: str | None, t: Transition, due: date | None, overridden: list[str]) -> str | None:
    parts = [reason.strip()] if reason and reason.strip() else []
    if t.kind == "extend" and due:
        parts.append(tr(f"新截止日期 {due}", f"new due date {due}"))
    if overridden:
        parts.append(tr(f"越过未通过的关卡：{', '.join(overridden)}", f"overrode failing gates: {', '.join(overridden)}"))
    return "；".join(parts) or None


def _extend(session: Session, run: SchoolRun, plan: Plan, stage: str, due: date | None, reason: str,
            actor: Actor, now: Any) -> None:
    """An approved extension: a new due date for the current stage, never past the plan's cap (002: 2021年12月31日)."""
    if due is None:
        raise TransitionRefused(tr("延期必须给出新的截止日期（--due）", "an extension needs the new due date (--due)"))
    cap = plan.extension_cap or plan.final_deadline
    if cap and due > cap:
        raise TransitionRefused(tr(f"延期不得晚于 {cap}", f"an extension may not go past {cap}"))
    if due < local_date(now, plan.timezone):
        raise TransitionRefused(tr("新的截止日期已经过去", "the new due date is already past"))
    existing = session.scalar(select(RunDeadline).where(RunDeadline.run_id == run.id, RunDeadline.stage == stage))
    if existing is None:
        session.add(RunDeadline(run_id=run.id, stage=stage, due=due, kind="extension", reason=reason,
                                created_at=now, created_by=actor.name))
    else:
        existing.due, existing.kind, existing.reason = due, "extension", reason
        existing.created_at, existing.created_by = now, actor.name


@dataclass
class BulkResult:
    advanced: int = 0
    blocked: int = 0
    not_started: int = 0
    moves: Counter[tuple[str, str]] = field(default_factory=Counter)
    blocked_by: Counter[str] = field(default_factory=Counter)  # failing gate id → schools

    def as_dict(self) -> dict[str, Any]:
        return {"advanced": self.advanced, "blocked": self.blocked, "not_started": self.not_started,
                "moves": [{"from": a, "to": b, "schools": n} for (a, b), n in sorted(self.moves.items())],
                "blocked_by": dict(self.blocked_by)}


def advance_all_ready(
    session: Session, clock: Clock, *, actor: Actor, plan_code: str | None = None, region: str | None = None,
    auto_only: bool = False, candidates_only: bool = False,
) -> BulkResult:
    """Advance every school of the plan (optionally in a region subtree) whose stage gates pass.

    Set-based for province scale: one metrics query, one UPDATE executemany guarded by each row's
    version, one bulk audit insert. All or nothing: if any row changed underneath, nothing moves.
    ``candidates_only`` (the sweep) measures only started runs whose stored status says their
    gates pass, so a day with nothing ready costs one indexed query, not a teacher aggregation;
    the candidates are still judged afresh before they move.
    """
    plan = find_plan(session, plan_code)
    now = clock.now()
    result = BulkResult()
    version_ids = session.scalars(select(SchoolRun.workflow_version_id).where(SchoolRun.plan_id == plan.id).distinct()).all()
    updates: list[dict[str, Any]] = []
    drafts: list[EventDraft] = []
    measured: dict[int, dict[str, float | None]] = {}
    for version_id in version_ids:
        wf = workflow_for_version(session, version_id)
        machine = machine_for(wf)
        target_of: dict[str, str | None] = {}
        sources = {
            s: t
            for t in wf.transitions if t.kind == "advance" and (t.auto or not auto_only)
            and (actor.role in t.roles or (actor.role == SYSTEM and t.auto)) for s in t.sources
        }
        runs_q = select(SchoolRun.id, SchoolRun.school_code).where(
            SchoolRun.plan_id == plan.id, SchoolRun.workflow_version_id == version_id,
            SchoolRun.state.in_(list(sources)), SchoolRun.withdrawn_at.is_(None))
        if region:
            runs_q = runs_q.join(School, School.code == SchoolRun.school_code).where(
                (School.county_code == region) | (School.city_code == region) | (School.province_code == region))
        if candidates_only:
            runs_q = runs_q.where(SchoolRun.derived_ok, SchoolRun.blocked == false(), SchoolRun.started_at <= now)
        values = metric_values(session, wf, runs_q)
        measured.update(values)
        if not values:
            continue
        rows = session.execute(select(SchoolRun.id, SchoolRun.school_code, SchoolRun.state, SchoolRun.version,
                                      SchoolRun.started_at).where(SchoolRun.id.in_(select(runs_q.subquery().c.id)))).all()
        for run_id, school, state, version, started in rows:
            if run_id not in values:  # moved into a source stage by a concurrent commit after it was measured
                continue
            if started > now:
                result.not_started += 1
                continue
            t = sources[state]
            gates = judge_stage(wf, wf.stage(state), values[run_id])
            if not all_passed(gates):
                result.blocked += 1
                result.blocked_by.update(g.gate for g in failing(gates))
                continue
            if state not in target_of:  # the machine decides once per source stage, not once per school
                token = Token(state)
                target_of[state] = token.state if machine.fire(token, t.trigger, gates_ok=True) else None
            target = target_of[state]
            if target is None:
                continue
            updates.append({"b_id": run_id, "b_version": version, "state": target, "previous_state": None,
                            "stage_entered_at": now, "updated_at": now, "version": version + 1})
            drafts.append(EventDraft(chain=run_chain(run_id), at=now, actor=actor.name, role=actor.role,
                                     trigger=t.trigger, plan_id=plan.id, run_id=run_id, school_code=school,
                                     from_state=state, to_state=target,
                                     gates=[g.as_dict() for g in gates], workflow_version=wf.key))
            result.moves[(state, target)] += 1
    if updates:
        table = cast(Table, SchoolRun.__table__)
        stmt = update(table).where(table.c.id == bindparam("b_id"), table.c.version == bindparam("b_version"))
        # Core executemany: every row is guarded by its version; the summed rowcount proves none moved.
        changed = cast(CursorResult[Any], session.connection().execute(stmt, updates)).rowcount
        if changed != len(updates):
            raise StaleStateError(tr("有学校在批量推进期间被他人修改，本次未做任何更改，请重试",
                                     "schools changed during the bulk advance; nothing was changed, try again"))
        append_events(session, drafts)
        moved = [u["b_id"] for u in updates]
        expire_runs(session, set(moved))
        refresh_ids(session, moved, values={i: measured[i] for i in moved}, teachers=False)
    result.advanced = len(updates)
    return result


def advance_auto(session: Session, clock: Clock, plan_code: str | None = None) -> int:
    """The sweep's advance: every started school whose auto-advancing gates pass moves, as ``system``.

    A school whose later gates already pass moves on in the same sweep, one stage a pass, so it is
    never left a day in a stage it has already finished. Returns how many steps were taken.
    """
    plan = find_plan(session, plan_code)
    wf = workflow_for_version(session, plan.workflow_version_id)
    total = 0
    for _ in range(len(wf.stages)):
        moved = advance_all_ready(session, clock, actor=Actor(SYSTEM, SYSTEM), plan_code=plan.code,
                                  auto_only=True, candidates_only=True).advanced
        total += moved
        if not moved:
            break
    return total
