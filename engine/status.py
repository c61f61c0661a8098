"""Where every school stands and why: the status table (region × stage, blocked, overdue) and one
school's full picture (stage, deadlines, every gate explained, teachers, history)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, case, false, func, select
from sqlalchemy.orm import Session, aliased

from engine.audit.query import list_events
from engine.calendar.store import load_calendar
from engine.calendar.workdays import WorkCalendar
from engine.clock import Clock
from engine.deadline import StageDue, days_overdue, local_date, run_stage_due
from engine.gate import GateResult, all_passed, judge_stage
from engine.metrics import teacher_summary, values_of_runs
from engine.models import AuditEvent, Batch, Plan, Region, RunDeadline, School, SchoolRun, Teacher
from engine.plan import find_plan
from engine.regions import region_clause, region_level
from engine.run_status import ensure_current
from engine.runs import find_run
from engine.school_state import OVERDUE, STATES, run_state, state_case, tally_state
from engine.tally import run_tallies
from engine.workflow.model import Workflow
from engine.workflow.versions import workflow_for_version


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
    level = region_level(session, region) if region else None
    if level == "province":
        return School.city_code, "city"
    return School.county_code, "county"




def run_views(session: Session, clock: Clock, plan: Plan, *, region: str | None = None,
              where: ColumnElement[bool] | None = None, calendar: WorkCalendar | None = None) -> list[RunView]:
    """Runs of the plan with due date, overdue days and gates judged live (the authoritative view).

    Costs a teacher aggregation per call: meant for one school or a handful; lists and counts
    over a region use ``stored_views``/``status_table``, which read the stored status."""
    calendar = calendar or load_calendar(session)
    now = clock.now()
    today = local_date(now, plan.timezone)
    q = (select(SchoolRun, School.name, School.county_code, Batch.start, Batch.deadlines)
         .join(School, School.code == SchoolRun.school_code).join(Batch, Batch.id == SchoolRun.batch_id)
         .where(SchoolRun.plan_id == plan.id, SchoolRun.withdrawn_at.is_(None)))
    if region:
        q = q.where(region_clause(session, region))
    if where is not None:
        q = q.where(where)
    rows = session.execute(q).all()
    extra: dict[int, dict[str, tuple[Any, str]]] = defaultdict(dict)
    for d in session.scalars(select(RunDeadline).where(RunDeadline.run_id.in_([r[0].id for r in rows]))):
        extra[d.run_id][d.stage] = (d.due, d.kind)
    out: list[RunView] = []
    by_version: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        by_version[row[0].workflow_version_id].append(row)
    for version_id, group in by_version.items():
        wf = workflow_for_version(session, version_id)
        values = values_of_runs(session, wf, [r[0].id for r in group])
        for run, name, county, batch_start, deadlines in group:
            stage = wf.stage(run.state)
            started = run.started_at <= now
            due = run_stage_due(
                wf, run.state, batch_start=batch_start, stage_entered=local_date(run.stage_entered_at, plan.timezone),
                batch_deadlines=deadlines or {}, run_deadlines=extra.get(run.id, {}),
                final_deadline=plan.final_deadline, final_stages=plan.final_deadline_stages,
                extension_cap=plan.extension_cap, calendar=calendar) if started else None
            gates = judge_stage(wf, stage, values[run.id]) if started else []
            out.append(RunView(run.id, run.school_code, name, county, run.state, started, due,
                               days_overdue(due.due, today) if due else 0, gates))
    return out


def stored_views(session: Session, clock: Clock, plan: Plan, *where: ColumnElement[bool],
                 region: str | None = None, order: Any = None, limit: int | None = None,
                 offset: int = 0) -> list[RunView]:
    """Runs of the plan from their stored status (engine/run_status.py): no teacher aggregation.

    Only failing gates are stored, which is all a list shows (``blocked`` stays correct)."""
    ensure_current(session, plan.id)
    now = clock.now()
    today = local_date(now, plan.timezone)
    q = (select(SchoolRun.id, SchoolRun.school_code, School.name, School.county_code, SchoolRun.state,
                SchoolRun.started_at, SchoolRun.due_date, SchoolRun.due_provisional, SchoolRun.due_source,
                SchoolRun.failing)
         .join(School, School.code == SchoolRun.school_code)
         .where(SchoolRun.plan_id == plan.id, SchoolRun.withdrawn_at.is_(None), *where))
    if region:
        q = q.where(region_clause(session, region))
    q = q.order_by(*(order if order is not None else (SchoolRun.id,))).limit(limit).offset(offset)
    out: list[RunView] = []
    for run_id, code, name, county, state, started_at, due_date, provisional, source, failing in session.execute(q):
        started = started_at <= now
        due = StageDue(due_date, provisional, source or "") if started and due_date else None
        gates = [GateResult(**g) for g in failing or ()] if started else []
        out.append(RunView(run_id, code, name, county, state, started, due,
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
    teachers: int = 0  # teacher records of the region's schools in the plan (role teacher)
    management: int = 0  # management-team members (role management; seed 002 counts 1,260 of them)
    # engine.school_state: schools per state; the values add up to ``schools``.
    states: dict[str, int] = field(default_factory=dict)


def status_table(session: Session, clock: Clock, *, plan_code: str | None = None,
                 region: str | None = None, people: bool = False, group: Any = None,
                 where: Sequence[ColumnElement[bool]] = ()) -> tuple[Workflow, list[StatusRow]]:
    """Schools per child region × stage, with blocked and overdue counts, from the per-county
    tallies (engine/tally.py): a province of 50,000 schools is ~2,000 rows to read. ``group``
    (e.g. ``SchoolRun.contractor``) groups by that column instead of the child regions and
    ``where`` narrows the schools (a user's scope): those count the stored status directly."""
    plan = find_plan(session, plan_code)
    wf = workflow_for_version(session, plan.workflow_version_id)
    ensure_current(session, plan.id)
    column, child = _region_column(session, region)
    now = clock.now()
    today = local_date(now, plan.timezone)
    names = dict(session.execute(select(Region.code, Region.name)).all())
    rows: dict[str, StatusRow] = {}

    def add(code: str, stage_id: str, school_state: str, n: int, n_started: int, n_blocked: int) -> None:
        row = rows.setdefault(code, StatusRow(code, names.get(code, code), stages={s.id: 0 for s in wf.stages},
                                              states=dict.fromkeys(STATES, 0)))
        row.states[school_state] += n
        row.schools += n
        row.not_started += n - n_started
        row.stages[stage_id] = row.stages.get(stage_id, 0) + n_started
        row.blocked += n_blocked
        row.overdue += n if school_state == OVERDUE else 0

    if group is None and not where:
        level = region_level(session, region) if region else None
        # A code the region tree does not hold has no schools.
        for t in [] if region and level is None else run_tallies(session, plan.id, level=level, region=region):
            started = t.started_at <= now
            add((t.city_code if child == "city" else t.county_code) or "?", t.stage,
                tally_state(wf, t.stage, started=started, blocked=t.blocked, due=t.due_date, today=today),
                t.runs, t.runs if started else 0, t.runs if started and t.blocked else 0)
    else:
        started_q = SchoolRun.started_at <= now
        # The state is computed in a subquery and grouped outside: PostgreSQL does not match a GROUP
        # BY expression whose bound parameters (today, now) are sent separately from the SELECT's.
        inner = (select((group if group is not None else column).label("region"), SchoolRun.state.label("stage"),
                        state_case(wf, now, today).label("school_state"),
                        case((started_q, 1), else_=0).label("started"),
                        case((started_q & SchoolRun.blocked, 1), else_=0).label("blocked"))
                 .join(School, School.code == SchoolRun.school_code)
                 .where(SchoolRun.plan_id == plan.id, SchoolRun.withdrawn_at.is_(None), *where))
        if region:
            inner = inner.where(region_clause(session, region))
        sub = inner.subquery()
        for code, stage_id, school_state, n, n_started, n_blocked in session.execute(
                select(sub.c.region, sub.c.stage, sub.c.school_state, func.count(), func.sum(sub.c.started),
                       func.sum(sub.c.blocked)).group_by(sub.c.region, sub.c.stage, sub.c.school_state)):
            add(code or "?", stage_id, school_state, n, n_started or 0, n_blocked or 0)
    if not people:
        return wf, [rows[k] for k in sorted(rows)]
    # People per region and role (``people=True``, what `rollout status` shows): one GROUP BY over
    # the teachers of the plan's schools. Off by default: it aggregates teacher rows, which the
    # stored status exists to avoid for the dashboard, the bulletins and the sweep.
    counted = (select(column, Teacher.role, func.count()).join(School, School.code == Teacher.school_code)
              .where(Teacher.school_code.in_(select(SchoolRun.school_code).where(SchoolRun.plan_id == plan.id)))
              .group_by(column, Teacher.role))
    if region:
        counted = counted.where(region_clause(session, region))
    for code, role, n in session.execute(counted):
        found = rows.get(code or "?")
        if found is not None:
            if role == "management":
                found.management += n
            else:
                found.teachers += n
    return wf, [rows[k] for k in sorted(rows)]


def school_detail(session: Session, clock: Clock, school_code: str, plan_code: str | None = None,
                  role: str | None = None) -> dict[str, Any]:
    """One school's picture. With ``role``, ``allowed`` lists only the triggers that role may fire
    here: offering the county office 特批完成 and then answering "无权执行" taught people to
    distrust the list (issue 17, 6); without it, every trigger of the stage."""
    run = find_run(session, school_code, plan_code)
    plan = session.get(Plan, run.plan_id)
    assert plan is not None
    wf = workflow_for_version(session, run.workflow_version_id)
    view = run_views(session, clock, plan, where=SchoolRun.id == run.id)[0]
    school = session.get(School, school_code)
    assert school is not None
    batch = session.get(Batch, run.batch_id)
    assert batch is not None
    history = list_events(session, school=school_code)
    today = local_date(clock.now(), plan.timezone)
    return {
        "school": {"code": school.code, "name": school.name, "county": school.county_code, "kind": school.kind,
                   "rural": school.rural, "pilot": school.pilot},
        "plan": plan.code, "batch": batch.code, "batch_title": batch.title, "workflow": wf.key, "version": run.version,
        "state": run.state, "stage_title": str(wf.stage(run.state).title), "started": view.started,
        "stage_entered_at": run.stage_entered_at, "previous_state": run.previous_state,
        "due": None if view.due is None else {"date": view.due.due, "source": view.due.source,
                                               "provisional": view.due.provisional,
                                               "days_left": (view.due.due - today).days,
                                               "days_overdue": view.days_overdue},
        "gates": [g.as_dict() | {"explanation": g.explain()} for g in view.gates],
        "blocked": view.blocked,
        "school_state": run_state(wf, run.state, started=view.started, blocked=view.blocked,
                                  due=view.due.due if view.due else None, today=today),
        "teachers": teacher_summary(session, school_code),
        "allowed": sorted({t.trigger for t in wf.transitions_from(run.state) if role is None or role in t.roles}),
        "history": [e.as_dict() for e in history],
    }


def rework_clause(wf: Workflow, plan_id: int) -> ColumnElement[bool]:
    """Runs sent back for rework (a ``kind: return`` transition, e.g. 退回整改 from practice to
    online study) that have not changed stage since: the rework list of the dashboard."""
    returns = [t.trigger for t in wf.transitions if t.kind == "return"]
    if not returns:
        return false()
    later = aliased(AuditEvent)
    moved_since = (select(later.id).where(later.chain == AuditEvent.chain, later.seq > AuditEvent.seq,
                                          later.to_state != later.from_state).exists())
    sent_back = select(AuditEvent.run_id).where(AuditEvent.plan_id == plan_id, AuditEvent.trigger.in_(returns),
                                                ~moved_since)
    return SchoolRun.id.in_(sent_back)
