"""Moving a plan's open school runs from the workflow version they are pinned to onto a newer one.

Programmes change mid-year (the province lowers the online requirement from 25 to 20 hours, adds
a gate, splits a stage). A run never changes rules under its feet by itself (``engine.workflow
.versions``); this module is the one deliberate, audited way to move it. Camunda migrates running
instances by an element mapping but never re-checks business conditions; here every school is
re-judged under the new version against today's records *before* anything moves, and the office
reads, school by school, what would change (``preview_move``), then commits it (``apply_move``).

Rules (issue 15):

* each run's stage maps to a stage of the new version: the same id by default, ``mapping``
  (old → new) otherwise; a stage with no counterpart, or a mapping to a stage the run could not
  be in (a working stage onto a terminal or parking stage, a school whose batch has not started
  onto a stage that is not an entry stage, a stage unreachable in the new graph) refuses the whole
  move and names the schools;
* a school never moves backwards unless ``mapping`` says so (an explicit entry); the preview marks
  such schools ``backwards``;
* finished runs (terminal stage) stay on the version they finished under;
* a run keeps its stage entry time: a rule change is not a new start, so "30 working days after
  entering the stage" keeps counting from the day the school entered it.

Words: this is a *version move*, not an Alembic migration of the database schema.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from engine.calendar.store import load_calendar
from engine.calendar.workdays import WorkCalendar
from engine.clock import Clock
from engine.deadline import StageDue, local_date, stage_due
from engine.errors import MoveRefused, NotFound
from engine.gate import GateResult, all_passed, judge_stage
from engine.i18n import tr
from engine.metrics import metric_values
from engine.models import Batch, Plan, RunDeadline, School, SchoolRun
from engine.plan import find_plan
from engine.version_rules import (
    SHOWN,
    MovePreview,
    SchoolMove,
    forward_rank,
    is_backwards,
    reachable,
    reminder_dates,
    split_key,
    stage_kind,
)
from engine.workflow.model import Stage, Workflow
from engine.workflow.versions import find_workflow, workflow_for_version


def _region_clause(region: str) -> ColumnElement[bool]:
    return (School.county_code == region) | (School.city_code == region) | (School.province_code == region)


class _Problems:
    """Refusals collected per (kind, stage), each naming its schools, so one run of the command lists them all."""

    def __init__(self) -> None:
        self.by_key: dict[tuple[str, str, str], tuple[str, str, list[str]]] = {}

    def add(self, kind: str, stage: str, target: str, zh: str, en: str, school: str | None) -> None:
        entry = self.by_key.setdefault((kind, stage, target), (zh, en, []))
        if school:
            entry[2].append(school)

    def raise_if_any(self) -> None:
        if not self.by_key:
            return
        lines: list[str] = []
        details: list[dict[str, object]] = []
        for (kind, stage, target), (zh, en, schools) in sorted(self.by_key.items()):
            shown = "、".join(schools[:SHOWN]) + (f" 等 {len(schools)} 所" if len(schools) > SHOWN else "")
            shown_en = ", ".join(schools[:SHOWN]) + (f" and {len(schools) - SHOWN} more" if len(schools) > SHOWN else "")
            lines.append(tr(f"{zh}（{len(schools)} 所学校：{shown}）" if schools else zh,
                            f"{en} ({len(schools)} school(s): {shown_en})" if schools else en))
            details.append({"kind": kind, "stage": stage, "target": target, "schools": schools})
        raise MoveRefused(lines, details)


def preview_move(session: Session, clock: Clock, *, plan_code: str | None, to: str,
                 mapping: Mapping[str, str] | None = None, region: str | None = None) -> MovePreview:
    """Validate the move and say, school by school, what it would change; writes nothing."""
    mapping = dict(mapping or {})
    plan = find_plan(session, plan_code)
    wf_id, version = split_key(to)
    try:
        target = find_workflow(session, wf_id, version)
    except NotFound as exc:
        raise MoveRefused([str(exc)]) from exc
    new_wf = workflow_for_version(session, target.id)
    now = clock.now()
    today = local_date(now, plan.timezone)
    q = (select(SchoolRun.id, SchoolRun.school_code, SchoolRun.state, SchoolRun.previous_state, SchoolRun.version,
                SchoolRun.workflow_version_id, SchoolRun.stage_entered_at, SchoolRun.started_at,
                School.name, School.county_code, Batch.start, Batch.deadlines)
         .join(School, School.code == SchoolRun.school_code).join(Batch, Batch.id == SchoolRun.batch_id)
         .where(SchoolRun.plan_id == plan.id, SchoolRun.withdrawn_at.is_(None)).order_by(SchoolRun.school_code))
    if region:
        q = q.where(_region_clause(region))
    rows = session.execute(q).all()
    preview = MovePreview(plan.code, new_wf.key, target.id, region, mapping, [])
    olds = {v: workflow_for_version(session, v) for v in {r.workflow_version_id for r in rows}}
    problems = _Problems()
    for old in mapping:
        if not any(wf.has_stage(old) for wf in olds.values()):
            problems.add("unknown_stage", old, "", f"对应关系中的阶段 {old} 不在原版本中",
                         f"the mapping names stage {old}, which the old version(s) do not have", None)
        if not new_wf.has_stage(mapping[old]):
            problems.add("unknown_target", old, mapping[old], f"新版本 {new_wf.key} 中没有阶段 {mapping[old]}",
                         f"the new version {new_wf.key} has no stage {mapping[old]}", None)
    todo = []
    for r in rows:
        old_wf = olds[r.workflow_version_id]
        if old_wf.stage(r.state).terminal:
            preview.finished += 1
        elif r.workflow_version_id == target.id:
            preview.already += 1
        else:
            todo.append(r)
    if not problems.by_key:
        _check_runs(todo, olds, new_wf, mapping, now, problems)
    if todo:
        _check_deadlines(session, [r.id for r in todo], {r.id: r.school_code for r in todo}, mapping, problems)
    problems.raise_if_any()
    preview.moves = _judge(session, todo, olds, new_wf, mapping, plan, region, now, today, load_calendar(session))
    return preview


def _check_runs(rows: Sequence[Any], olds: Mapping[int, Workflow], new_wf: Workflow, mapping: Mapping[str, str],
                now: datetime, problems: _Problems) -> None:
    can_be = reachable(new_wf)
    for r in rows:
        old_wf = olds[r.workflow_version_id]
        for stage, is_previous in ((r.state, False), (r.previous_state, True)):
            if stage is None:
                continue
            dest = mapping.get(stage, stage)
            where = tr("（暂停/退回前的阶段）", " (the stage it was suspended or returned from)") if is_previous else ""
            if not new_wf.has_stage(dest):
                problems.add("unmapped", stage, "", f"新版本 {new_wf.key} 没有阶段 {stage}{where}，请用 --map {stage}=新阶段 指定",
                             f"the new version {new_wf.key} has no stage {stage}{where}: give --map {stage}=NEW_STAGE",
                             r.school_code)
                continue
            old_kind, new_kind = stage_kind(old_wf.stage(stage)), stage_kind(new_wf.stage(dest))
            if is_previous and new_kind != "working":
                new_kind = "hold/terminal"
            if old_kind != new_kind:
                problems.add("impossible", stage, dest, f"阶段 {stage}（{old_kind}）不能对应到 {dest}（{new_kind}）",
                             f"stage {stage} ({old_kind}) cannot map to {dest} ({new_kind})", r.school_code)
            elif dest not in can_be:
                problems.add("impossible", stage, dest, f"新版本中任何学校都到不了阶段 {dest}",
                             f"no school can ever be in stage {dest} of the new version", r.school_code)
            elif not is_previous and r.started_at > now and dest not in (new_wf.initial, *new_wf.entry_stages):
                problems.add("impossible", stage, dest, f"尚未开始的学校只能对应到入口阶段，{dest} 不是",
                             f"a school whose batch has not started can only map to an entry stage, not {dest}",
                             r.school_code)


def _check_deadlines(session: Session, ids: list[int], codes: Mapping[int, str], mapping: Mapping[str, str],
                     problems: _Problems) -> None:
    """Two per-school deadlines may not land on one stage (the override/extension of each would be lost)."""
    if not any(old != new for old, new in mapping.items()):
        return
    for i in range(0, len(ids), 5000):
        landed: dict[tuple[int, str], str] = {}
        for run_id, stage in session.execute(select(RunDeadline.run_id, RunDeadline.stage)
                                             .where(RunDeadline.run_id.in_(ids[i:i + 5000]))):
            dest = mapping.get(stage, stage)
            if (run_id, dest) in landed:
                problems.add("deadline_clash", stage, dest, f"学校在阶段 {landed[(run_id, dest)]} 和 {stage} 的单独截止日期会合到 {dest}",
                             f"the school's own deadlines of {landed[(run_id, dest)]} and {stage} would both land on {dest}",
                             codes[run_id])
            landed[(run_id, dest)] = stage


def _judge(session: Session, rows: Sequence[Any], olds: Mapping[int, Workflow], new_wf: Workflow,
           mapping: Mapping[str, str], plan: Plan, region: str | None, now: datetime, today: date,
           calendar: WorkCalendar) -> list[SchoolMove]:
    if not rows:
        return []
    ids = [r.id for r in rows]
    extra: dict[tuple[int, str], tuple[date, str]] = {}
    for i in range(0, len(ids), 5000):
        extra.update({(d.run_id, d.stage): (d.due, d.kind) for d in session.execute(
            select(RunDeadline.run_id, RunDeadline.stage, RunDeadline.due, RunDeadline.kind)
            .where(RunDeadline.run_id.in_(ids[i:i + 5000])))})
    renamed = {(run_id, mapping.get(stage, stage)): v for (run_id, stage), v in extra.items()}
    # One aggregation per version over the plan (or region), not a long IN list: SQLite then reads the
    # teachers in one pass for a province (engine.metrics.SCAN_ALL_MIN).
    base = select(SchoolRun.id, SchoolRun.school_code).join(School, School.code == SchoolRun.school_code).where(
        SchoolRun.plan_id == plan.id, *([_region_clause(region)] if region else []))
    new_values = metric_values(session, new_wf, base)
    old_values: dict[int, Mapping[str, float | None]] = {}
    for version_id in {r.workflow_version_id for r in rows}:
        old_values.update(metric_values(session, olds[version_id], base.where(SchoolRun.workflow_version_id == version_id)))
    new_rank = forward_rank(new_wf)
    ranks = {v: forward_rank(wf) for v, wf in olds.items()}
    out = []
    for r in rows:
        old_wf = olds[r.workflow_version_id]
        dest = mapping.get(r.state, r.state)
        old_stage, new_stage = old_wf.stage(r.state), new_wf.stage(dest)
        started = r.started_at <= now
        entered = local_date(r.stage_entered_at, plan.timezone)

        # Judged whether or not the batch has started, like the stored status (engine.run_status):
        # the move writes these as the run's stored status; readiness and overdue need a start.
        def due(stage: Stage, deadlines: Mapping[tuple[int, str], tuple[date, str]], run: Any = r,
                at: date = entered) -> StageDue | None:
            return stage_due(stage, batch_start=run.start, stage_entered=at, batch_deadlines=run.deadlines or {},
                             run_deadline=deadlines.get((run.id, stage.id)), final_deadline=plan.final_deadline,
                             calendar=calendar)

        before = judge_stage(old_wf, old_stage, old_values[r.id])
        after = judge_stage(new_wf, new_stage, new_values[r.id])
        due_before, due_after = due(old_stage, extra), due(new_stage, renamed)
        out.append(SchoolMove(
            r.id, r.school_code, r.name, r.county_code, r.version, old_wf.key, new_wf.key, r.state, dest,
            r.previous_state, None if r.previous_state is None else mapping.get(r.previous_state, r.previous_state),
            started, r.state in mapping and is_backwards(old_wf, new_wf, r.state, dest, ranks[r.workflow_version_id], new_rank),
            before, after, due_before, due_after,
            reminder_dates(old_stage, due_before, today), reminder_dates(new_stage, due_after, today),
            started and _ready(old_stage, before), started and _ready(new_stage, after),
            bool(started and due_before and due_before.due < today), bool(started and due_after and due_after.due < today),
            new_values[r.id]))
    return out


def _ready(stage: Stage, gates: list[GateResult]) -> bool:
    """Ready to advance: a working stage whose exit gates all pass (what ``advance --all-ready`` moves)."""
    return bool(gates) and not stage.hold and not stage.terminal and all_passed(gates)
