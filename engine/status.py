"""Where every school stands and why: the status table (region × stage, blocked, overdue) and one
school's full picture (stage, deadlines, every gate explained, teachers, history)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .audit_query import list_events
from .calendar import WorkCalendar
from .calendar_store import load_calendar
from .clock import Clock
from .deadline import StageDue, days_overdue, local_date, stage_due
from .gate import GateResult, all_passed, judge_stage
from .metrics import metric_values, teacher_summary
from .models import Batch, Plan, Region, RunDeadline, School, SchoolRun
from .plan import find_plan
from .runs import find_run
from .workflow import Workflow
from .workflow_store import workflow_for_version


@dataclass
class RunView:
    run_id: int
    school_code: str
    school_name: str
    county_code: str
    state: str
    started: bool
    due: StageDue | None
    days_overdue: int
    gates: list[GateResult]

    @property
    def blocked(self) -> bool:
        return bool(self.gates) and not all_passed(self.gates)


def _region_column(session: Session, region: str | None) -> tuple[Any, str]:
    level = session.scalar(select(Region.level).where(Region.code == region)) if region else None
    if level == "province":
        return School.city_code, "city"
    return School.county_code, "county"


def run_views(session: Session, clock: Clock, plan: Plan, *, region: str | None = None,
              calendar: WorkCalendar | None = None, with_gates: bool = True) -> list[RunView]:
    """Every run of the plan (in ``region``'s subtree) with due date, overdue days and gates.

    ``with_gates=False`` skips the teacher aggregation (the sweep judges gates only for the runs
    that have something due)."""
    calendar = calendar or load_calendar(session)
    now = clock.now()
    today = local_date(now, plan.timezone)
    q = (select(SchoolRun, School.name, School.county_code, Batch.start, Batch.deadlines)
         .join(School, School.code == SchoolRun.school_code).join(Batch, Batch.id == SchoolRun.batch_id)
         .where(SchoolRun.plan_id == plan.id))
    if region:
        q = q.where((School.county_code == region) | (School.city_code == region) | (School.province_code == region))
    rows = session.execute(q).all()
    extra = {(d.run_id, d.stage): (d.due, d.kind) for d in session.scalars(
        select(RunDeadline).join(SchoolRun, SchoolRun.id == RunDeadline.run_id).where(SchoolRun.plan_id == plan.id))}
    out: list[RunView] = []
    by_version: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        by_version[row[0].workflow_version_id].append(row)
    for version_id, group in by_version.items():
        wf = workflow_for_version(session, version_id)
        ids = [r[0].id for r in group]
        values: dict[int, dict[str, float | None]] = {}
        for i in range(0, len(ids) if with_gates else 0, 5000):
            values.update(metric_values(session, wf, select(SchoolRun.id, SchoolRun.school_code).where(
                SchoolRun.id.in_(ids[i:i + 5000]))))
        for run, name, county, batch_start, deadlines in group:
            stage = wf.stage(run.state)
            started = run.started_at <= now
            due = stage_due(stage, batch_start=batch_start, stage_entered=local_date(run.stage_entered_at, plan.timezone),
                            batch_deadlines=deadlines or {}, run_deadline=extra.get((run.id, run.state)),
                            final_deadline=plan.final_deadline, calendar=calendar) if started else None
            gates = judge_stage(wf, stage, values[run.id]) if started and with_gates else []
            out.append(RunView(run.id, run.school_code, name, county, run.state, started, due,
                               days_overdue(due.due, today) if due else 0, gates))
    return out


@dataclass
class StatusRow:
    region_code: str
    region_name: str
    schools: int = 0
    not_started: int = 0
    stages: dict[str, int] = field(default_factory=dict)
    blocked: int = 0
    overdue: int = 0


def status_table(session: Session, clock: Clock, *, plan_code: str | None = None,
                 region: str | None = None) -> tuple[Workflow, list[StatusRow]]:
    plan = find_plan(session, plan_code)
    wf = workflow_for_version(session, plan.workflow_version_id)
    column, _level = _region_column(session, region)
    school_region: dict[str, str | None] = dict(session.execute(select(School.code, column)).all())
    names = dict(session.execute(select(Region.code, Region.name)).all())
    rows: dict[str, StatusRow] = {}
    for v in run_views(session, clock, plan, region=region):
        code = school_region.get(v.school_code) or "?"
        row = rows.setdefault(code, StatusRow(code, names.get(code, code), stages={s.id: 0 for s in wf.stages}))
        row.schools += 1
        if not v.started:
            row.not_started += 1
            continue
        row.stages[v.state] = row.stages.get(v.state, 0) + 1
        row.blocked += v.blocked
        row.overdue += v.days_overdue > 0
    return wf, [rows[k] for k in sorted(rows)]


def school_detail(session: Session, clock: Clock, school_code: str, plan_code: str | None = None) -> dict[str, Any]:
    run = find_run(session, school_code, plan_code)
    plan = session.get(Plan, run.plan_id)
    assert plan is not None
    wf = workflow_for_version(session, run.workflow_version_id)
    view = next(v for v in run_views(session, clock, plan) if v.run_id == run.id)
    school = session.get(School, school_code)
    assert school is not None
    batch = session.get(Batch, run.batch_id)
    assert batch is not None
    history = list_events(session, school=school_code)
    today = local_date(clock.now(), plan.timezone)
    return {
        "school": {"code": school.code, "name": school.name, "county": school.county_code, "kind": school.kind,
                   "rural": school.rural, "pilot": school.pilot},
        "plan": plan.code, "batch": batch.code, "workflow": wf.key, "version": run.version,
        "state": run.state, "stage_title": str(wf.stage(run.state).title), "started": view.started,
        "stage_entered_at": run.stage_entered_at, "previous_state": run.previous_state,
        "due": None if view.due is None else {"date": view.due.due, "source": view.due.source,
                                               "provisional": view.due.provisional,
                                               "days_left": (view.due.due - today).days,
                                               "days_overdue": view.days_overdue},
        "gates": [g.as_dict() | {"explanation": g.explain()} for g in view.gates],
        "blocked": view.blocked,
        "teachers": teacher_summary(session, school_code),
        "allowed": sorted({t.trigger for t in wf.transitions_from(run.state)}),
        "history": [e.as_dict() for e in history],
    }
