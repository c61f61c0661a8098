"""School-level facts that gates test (plan filed, team members, assessment entered, supervision
result …). Recording one is an audited change on the school's chain, like a transition."""

from __future__ import annotations

import math

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified
from sqlalchemy.orm.exc import StaleDataError

from engine.audit.chain import append_event, run_chain
from engine.clock import Clock
from engine.errors import StaleStateError, TransitionRefused
from engine.i18n import tr
from engine.models import SchoolFact, SchoolRun
from engine.run_status import refresh
from engine.runs import Actor, find_run, stale_message
from engine.text import MAX_NOTE, clean_line, clean_text
from engine.workflow.model import Workflow
from engine.workflow.versions import workflow_for_version


def role_refusal(wf: Workflow, name: str, role: str) -> str:
    """Why ``role`` may not record ``name``, naming the roles that may (shared with the web's 403)."""
    allowed = wf.fact_roles(name)
    zh = "、".join(f"{wf.roles[r].zh}（{r}）" if r in wf.roles else r for r in allowed)
    en = ", ".join(f"{wf.roles[r].en} ({r})" if r in wf.roles else r for r in allowed)
    return tr(f"角色 {role} 不能记录事实项“{name}”；可记录的角色：{zh or '无'}",
              f"role {role} may not record the fact '{name}'; allowed: {en or 'none'}")


def set_fact(session: Session, clock: Clock, *, school_code: str, name: str, value: float, actor: Actor,
             note: str | None = None, plan_code: str | None = None) -> bool:
    """Record a fact; False (and no event) when it already had that value.

    A fact belongs to the first stage whose gate tests it: recorded while the school is still in an
    earlier stage it is refused, or kept but not counted until then — the metric's ``before_stage``.

    Only the roles the workflow allows for the fact may record it (its metric's ``roles``): a
    fact opens gates, so who may attest it is part of the programme's rules, not the caller's.
    """
    run = find_run(session, school_code, plan_code)
    wf = workflow_for_version(session, run.workflow_version_id)
    known = {m.fact for m in wf.metrics.values() if m.kind == "fact"}
    if name not in known:
        raise TransitionRefused(tr(f"流程 {wf.key} 没有事实项“{name}”（可用：{'、'.join(sorted(k for k in known if k))}）",
                                   f"workflow {wf.key} has no fact '{name}' (known: {', '.join(sorted(k for k in known if k))})"))
    if actor.role not in wf.fact_roles(name):  # before any write: the workflow file says who may attest what
        raise TransitionRefused(role_refusal(wf, name, actor.role))
    metric = next(m for m in wf.metrics.values() if m.kind == "fact" and m.fact == name)
    if not (math.isfinite(value) and metric.low <= value <= metric.high):  # team_members took −5 and 1e308
        raise TransitionRefused(tr(f"事实项“{metric.title.zh}”的值应在 {metric.low:g} 到 {metric.high:g} 之间，不能是 {value:g}",
                                   f"the fact '{metric.title.en}' must be from {metric.low:g} to {metric.high:g}, not {value:g}"))
    stage = wf.fact_stage(name)
    if stage is not None and wf.before(run.state, run.previous_state, stage) and wf.early_rule(name) == "refuse":
        raise TransitionRefused(tr(
            f"事实项“{metric.title.zh}”属于“{wf.stage(stage).title.zh}”阶段，学校 {school_code} 尚在“{wf.stage(run.state).title.zh}”阶段，不能提前记录",
            f"the fact '{metric.title.en}' belongs to stage '{wf.stage(stage).title.en}'; school {school_code} is still in "
            f"'{wf.stage(run.state).title.en}' and cannot record it early"))
    note = clean_text(note, tr("备注", "note"), MAX_NOTE)
    actor = Actor(clean_line(actor.name, tr("操作人", "actor"), 100), actor.role)
    now = clock.now()
    fact = session.scalar(select(SchoolFact).where(SchoolFact.run_id == run.id, SchoolFact.name == name))
    old = None if fact is None else fact.value
    # A ``wait`` fact recorded early does not count in its stage (engine.metrics): recording the
    # same value again once the school is there is a real change, so it is written and audited.
    waiting = fact is not None and stage is not None and wf.early_rule(name) == "wait" and run.state == stage \
        and fact.recorded_at < run.stage_entered_at
    if old == value and not waiting:
        return False
    if fact is None:
        session.add(SchoolFact(run_id=run.id, name=name, value=value, note=note, recorded_at=now, recorded_by=actor.name))
    else:
        fact.value, fact.note, fact.recorded_at, fact.recorded_by = value, note, now, actor.name
    run.updated_at = now
    flag_modified(run, "updated_at")  # always an UPDATE, so the version bumps: facts and transitions serialise per school
    try:
        session.flush()
    except StaleDataError as exc:
        raise StaleStateError(stale_message(school_code)) from exc
    append_event(session, chain=run_chain(run.id), at=now, actor=actor.name, role=actor.role, trigger=f"fact:{name}",
                 plan_id=run.plan_id, run_id=run.id, school_code=school_code, from_state=run.state, to_state=run.state,
                 reason=note, gates=[{"fact": name, "old": old, "new": value}], workflow_version=wf.key)
    refresh(session, SchoolRun.id == run.id, teachers=False)
    return True
