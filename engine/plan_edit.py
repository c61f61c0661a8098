"""Editing a loaded plan mid-year: the changed file for the same plan code, diffed, checked, applied.

Before this, a plan could not change at all (a change meant a new plan code, which lost every
school's history). Now the office edits its plan file and loads it for the same code: the file is
validated exactly as at load (``engine.plan.parse_plan``: every problem with file:line:column),
then against what has already happened, and the difference is shown; ``apply`` writes it in one
transaction, audited with the reason, the stored status refreshed.

What may change, and what it does:

* schools added (a merged school, a school imported since): a run each, started like at load;
* a school no longer in the file: its run ends as *withdrawn* (``withdrawn_at``), history kept;
  a batch chosen by a rule (``rest``, ``county``, ``pilot``) keeps its own schools and takes schools
  new to the plan, never another batch's (so a school dropped from a list is withdrawn, not moved
  into the ``rest`` batch); a withdrawn school never comes back by a rule, and one listed by code
  after it was withdrawn is a problem (it cannot rejoin);
* a school moved to another batch: one that has not started takes the new batch's start and start
  stage; one that has started keeps its stage and dates and may only join a batch that has started;
* a batch's start (only while the batch has not started, and not into the past), its stage
  deadlines, new batches; the final deadline and the extension cap (never below an extension
  already granted); the title.

The workflow version does not change here (``rollout workflow migrate`` does), nor the year, the
time zone or the region, and a batch is never removed (its schools move or are withdrawn).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from engine.audit.chain import EventDraft, append_event, append_events, plan_chain, run_chain
from engine.clock import Clock
from engine.deadline import local_date
from engine.errors import NotFound, PlanFileError, Problem, StaleStateError
from engine.i18n import tr
from engine.models import Batch, Plan, RunDeadline, SchoolRun
from engine.plan import BatchSpec, PlanSpec, _read_plan, local_midnight_utc, parse_plan
from engine.run_status import expire_runs, refresh
from engine.runs import Actor
from engine.text import MAX_REASON, clean_line, clean_text
from engine.workflow.versions import workflow_for_version
from engine.yaml_source import SourceDoc, read_yaml

PLAN_EDIT = "plan_edit"  # the plan's event: what changed and why, with the new file's SHA-256
WITHDRAW = "withdraw"  # a run's event: the school left the plan
BATCH_MOVE = "batch_move"  # a run's event: the school moved to another batch
EDIT_ROLES = ("province_office", "city_office", "county_office")


@dataclass(frozen=True)
class PlanChange:
    kind: str  # title | final_deadline | extension_cap | batch_added | batch_start | batch_deadlines
    #            | school_added | school_removed | school_moved
    subject: str  # "plan", a batch id or a school code
    before: Any
    after: Any

    def as_dict(self) -> dict[str, Any]:
        def plain(v: Any) -> Any:
            return v.isoformat() if isinstance(v, date) else v
        return {"kind": self.kind, "subject": self.subject, "before": plain(self.before), "after": plain(self.after)}


@dataclass
class PlanEdit:
    plan: str
    changes: list[PlanChange] = field(default_factory=list)
    applied: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"plan": self.plan, "applied": self.applied, "changes": [c.as_dict() for c in self.changes]}


def _code_of(doc: SourceDoc) -> str:
    data = doc.data if isinstance(doc.data, dict) else {}
    return str(data.get("plan", ""))


def edit_plan(session: Session, path: str | Path, clock: Clock, *, reason: str | None, actor: Actor,
              apply: bool) -> PlanEdit:
    """Diff the changed plan file against the stored plan; with ``apply``, carry the changes out."""
    path = Path(path)
    text = _read_plan(path)
    doc = read_yaml(text, str(path))
    plan = session.scalar(select(Plan).where(Plan.code == _code_of(doc)))
    if plan is None:
        raise NotFound(tr(f"没有计划 {_code_of(doc)}；新计划请用 rollout plan load", f"no plan {_code_of(doc)}: load a new plan with rollout plan load"))
    spec, wf, version_id = parse_plan(session, text, str(path))
    now = clock.now()
    today = local_date(now, plan.timezone)
    runs = {r.school_code: r for r in session.scalars(select(SchoolRun).where(SchoolRun.plan_id == plan.id))}
    batches = {b.code: b for b in session.scalars(select(Batch).where(Batch.plan_id == plan.id))}
    by_id = {b.id: b for b in batches.values()}
    problems: list[Problem] = []
    data: dict[str, Any] = doc.data
    pinned = workflow_for_version(session, plan.workflow_version_id)
    if version_id != plan.workflow_version_id:
        problems.append(doc.problem(("workflow",), tr(
            f"计划按 {pinned.key} 运行，文件写的是 {wf.key}；更换流程版本请用 rollout workflow migrate",
            f"the plan runs on {pinned.key}, the file names {wf.key}: change the version with rollout workflow migrate")))
    for key, stored, new in (("year", plan.year, spec.year), ("timezone", plan.timezone, spec.timezone),
                             ("region", plan.region_code, spec.region)):
        if stored != new:
            problems.append(doc.problem((key,) if key in data else (), tr(f"{key} 不能修改（原为 {stored}）", f"{key} cannot change (it is {stored})")))
    specs = {b.code: (i, b) for i, b in enumerate(spec.batches)}
    for code in sorted(set(batches) - set(specs)):
        problems.append(doc.problem(("batches",), tr(f"批次 {code} 不能删除：把它的学校移到其他批次或删去学校", f"batch {code} cannot be removed: move or drop its schools instead")))
    withdrawn = {c for c, r in runs.items() if r.withdrawn_at is not None}
    changes: list[PlanChange] = []
    plain: tuple[tuple[str, Any, Any], ...] = (
        ("title", plan.title, spec.title), ("final_deadline", plan.final_deadline, spec.final_deadline),
        ("extension_cap", plan.extension_cap, spec.extension_cap))
    for field_name, was, now_is in plain:
        if was != now_is:
            changes.append(PlanChange(field_name, "plan", was, now_is))
    _check_cap(session, plan, spec, doc, runs, problems)
    for code, (i, b) in specs.items():
        base: tuple[str | int, ...] = ("batches", i)
        explicit = isinstance(data["batches"][i].get("schools"), list) or "codes" in (data["batches"][i].get("schools") or {})
        if not explicit:  # a rule keeps its own schools and takes new ones, never another batch's
            b.schools = [c for c in b.schools if c not in runs or by_id[runs[c].batch_id].code == code]
        for c in [c for c in b.schools if c in withdrawn]:
            b.schools.remove(c)
            if explicit:
                problems.append(doc.problem((*base, "schools"), tr(f"学校 {c} 已退出本计划，不能再加入", f"school {c} was withdrawn from the plan and cannot rejoin")))
        old = batches.get(code)
        if old is None:
            changes.append(PlanChange("batch_added", code, None, b.start))
            if b.start < today:
                problems.append(doc.problem((*base, "start"), tr(f"新批次的开始日期 {b.start} 已经过去", f"a new batch cannot start in the past ({b.start})")))
            continue
        if old.start != b.start:
            if old.start <= today or b.start < today:
                problems.append(doc.problem((*base, "start"), tr(
                    f"批次 {code} 已于 {old.start} 开始或新日期已过，开始日期不能再改", f"batch {code} started on {old.start} or the new date is past: its start cannot change")))
            changes.append(PlanChange("batch_start", code, old.start, b.start))
        if (old.deadlines or {}) != b.deadlines:
            changes.append(PlanChange("batch_deadlines", code, old.deadlines or {}, b.deadlines))
        stuck = [r.school_code for r in runs.values() if r.batch_id == old.id and r.started_at > now and r.state != b.start_stage]
        if stuck:
            problems.append(doc.problem((*base, "start_stage"), tr(f"批次 {code} 的起始阶段不能修改", f"the start stage of batch {code} cannot change")))
    in_file = {c: (code, i) for code, (i, b) in specs.items() for c in b.schools}
    for c, (code, i) in sorted(in_file.items()):
        run = runs.get(c)
        if run is None:
            changes.append(PlanChange("school_added", c, None, code))
            continue
        was = by_id[run.batch_id].code
        if was != code:
            target = specs[code][1]
            if run.started_at <= now and target.start > today:
                problems.append(doc.problem(("batches", i, "schools"), tr(
                    f"学校 {c} 已开始实施，不能移入尚未开始的批次 {code}", f"school {c} has started and cannot move to batch {code}, which has not")))
            changes.append(PlanChange("school_moved", c, was, code))
    for c in sorted(set(runs) - set(in_file) - withdrawn):
        changes.append(PlanChange("school_removed", c, by_id[runs[c].batch_id].code, None))
    if problems:
        raise PlanFileError(str(path), problems)
    edit = PlanEdit(plan.code, changes)
    if not apply or not changes:
        return edit
    text_reason = clean_text(reason, tr("理由", "reason"), MAX_REASON)
    if not text_reason or not text_reason.strip():
        raise PlanFileError(str(path), [Problem(str(path), tr("修改计划必须填写理由（--reason）", "a plan edit needs a reason (--reason)"))])
    if actor.role not in EDIT_ROLES:
        raise PlanFileError(str(path), [Problem(str(path), tr(f"角色 {actor.role} 无权修改计划", f"role {actor.role} may not edit a plan"))])
    _apply(session, plan, spec, text, edit, runs, batches, clock,
           Actor(clean_line(actor.name, tr("操作人", "actor"), 100), actor.role), text_reason, wf.key)
    edit.applied = True
    return edit


def _check_cap(session: Session, plan: Plan, spec: PlanSpec, doc: SourceDoc, runs: dict[str, SchoolRun],
               problems: list[Problem]) -> None:
    """A lower cap may not strand an extension already granted (002: extensions end by the cap)."""
    cap = spec.extension_cap or spec.final_deadline
    if cap is None or cap >= (plan.extension_cap or plan.final_deadline or cap):
        return
    codes = {r.id: c for c, r in runs.items()}
    past = sorted(codes[run_id] for run_id, due in session.execute(
        select(RunDeadline.run_id, RunDeadline.due).where(RunDeadline.run_id.in_(list(codes)), RunDeadline.due > cap)))
    if past:
        key = "extension_cap" if spec.extension_cap else "final_deadline"
        problems.append(doc.problem((key,), tr(f"已批准的延期晚于新的上限 {cap}：{'、'.join(past)}",
                                               f"extensions already granted end after the new cap {cap}: {', '.join(past)}")))


def _apply(session: Session, plan: Plan, spec: PlanSpec, text: str, edit: PlanEdit, runs: dict[str, SchoolRun],
           batches: dict[str, Batch], clock: Clock, actor: Actor, reason: str, wf_key: str) -> None:
    now = clock.now()
    specs: dict[str, BatchSpec] = {b.code: b for b in spec.batches}
    drafts: list[EventDraft] = []
    plan.title, plan.final_deadline, plan.extension_cap, plan.source = spec.title, spec.final_deadline, spec.extension_cap, text
    for b in spec.batches:
        row = batches.get(b.code)
        if row is None:
            row = batches[b.code] = Batch(plan_id=plan.id, code=b.code, title=b.title, start=b.start, share=b.share,
                                          deadlines=b.deadlines)
            session.add(row)
        else:
            row.title, row.share, row.deadlines = b.title, b.share, b.deadlines
            if row.start != b.start:  # a batch not started yet: its schools start on the new day
                row.start = b.start
                started = local_midnight_utc(b.start, spec.timezone)
                session.execute(update(SchoolRun).where(SchoolRun.batch_id == row.id, SchoolRun.withdrawn_at.is_(None))
                                .values(started_at=started, stage_entered_at=started, updated_at=now,
                                        version=SchoolRun.version + 1).execution_options(synchronize_session=False))
                # Each school's chain says when it now starts (audit verify replays the stage entry).
                drafts += [EventDraft(chain=run_chain(r.id), at=now, actor=actor.name, role=actor.role, trigger=BATCH_MOVE,
                                      plan_id=plan.id, run_id=r.id, school_code=r.school_code, from_state=r.state,
                                      to_state=r.state, reason=reason, workflow_version=wf_key,
                                      gates=[{"from_batch": b.code, "to_batch": b.code, "entered": started, "previous": None}])
                           for r in runs.values() if r.batch_id == row.id and r.withdrawn_at is None]
                expire_runs(session, {r.id for r in runs.values() if r.batch_id == row.id})
    _flush(session)
    append_event(session, chain=plan_chain(plan.id), at=now, actor=actor.name, role=actor.role, trigger=PLAN_EDIT,
                 plan_id=plan.id, reason=reason, workflow_version=wf_key,
                 gates=[{"sha256": hashlib.sha256(text.encode()).hexdigest(), "changes": [c.as_dict() for c in edit.changes]}])
    for c in edit.changes:
        if c.kind == "school_added":
            b = specs[c.after]
            started = local_midnight_utc(b.start, spec.timezone)
            session.execute(insert(SchoolRun), [{
                "plan_id": plan.id, "school_code": c.subject, "batch_id": batches[b.code].id,
                "workflow_version_id": plan.workflow_version_id, "state": b.start_stage, "previous_state": None,
                "stage_entered_at": started, "started_at": started, "updated_at": now, "version": 1}])
            run_id = session.scalar(select(SchoolRun.id).where(SchoolRun.plan_id == plan.id, SchoolRun.school_code == c.subject))
            assert run_id is not None
            drafts.append(EventDraft(chain=run_chain(run_id), at=now, actor=actor.name, role=actor.role, trigger="start",
                                     plan_id=plan.id, run_id=run_id, school_code=c.subject, to_state=b.start_stage,
                                     reason=tr(f"计划修改：加入批次 {b.code}（{b.start} 开始）；{reason}", f"plan edit: joins batch {b.code} (starts {b.start}); {reason}"),
                                     workflow_version=wf_key))
        elif c.kind == "school_removed":
            run = runs[c.subject]
            run.withdrawn_at, run.updated_at = now, now
            drafts.append(EventDraft(chain=run_chain(run.id), at=now, actor=actor.name, role=actor.role, trigger=WITHDRAW,
                                     plan_id=plan.id, run_id=run.id, school_code=c.subject, from_state=run.state,
                                     to_state=run.state, reason=reason, workflow_version=wf_key))
        elif c.kind == "school_moved":
            run, b = runs[c.subject], specs[c.after]
            from_state = run.state
            if run.started_at > now:  # not started: the new batch's start and start stage
                started = local_midnight_utc(b.start, spec.timezone)
                run.state, run.previous_state, run.started_at, run.stage_entered_at = b.start_stage, None, started, started
            run.batch_id, run.updated_at = batches[b.code].id, now
            drafts.append(EventDraft(chain=run_chain(run.id), at=now, actor=actor.name, role=actor.role, trigger=BATCH_MOVE,
                                     plan_id=plan.id, run_id=run.id, school_code=c.subject, from_state=from_state,
                                     to_state=run.state, reason=reason, workflow_version=wf_key,
                                     gates=[{"from_batch": c.before, "to_batch": c.after, "entered": run.stage_entered_at,
                                             "previous": run.previous_state}]))
    _flush(session)
    append_events(session, drafts)
    expire_runs(session, {r.id for r in runs.values()})
    refresh(session, SchoolRun.plan_id == plan.id)


def _flush(session: Session) -> None:
    try:
        session.flush()
    except StaleDataError as exc:  # an officer changed one of the schools meanwhile
        raise StaleStateError(tr("计划修改期间有学校被他人修改，本次未做任何更改，请重试",
                                 "schools changed during the plan edit; nothing was changed, try again")) from exc
