"""Query plans of the hot queries, on the benchmark's own database (issue 5: indexes checked).

Each query is compiled by SQLAlchemy exactly as the engine builds it (literal parameters inlined),
then asked of the database: ``EXPLAIN QUERY PLAN`` on SQLite, ``EXPLAIN`` on PostgreSQL (no
ANALYZE: the plan, not a second timing).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, Select, case, func, select, text

from engine.clock import FixedClock
from engine.deadline import local_date
from engine.metrics import teacher_metric_query
from engine.models import School, SchoolRun
from engine.plan import find_plan
from engine.workflow.versions import workflow_for_version


def _queries(engine: Engine, now: Any) -> dict[str, Select[Any]]:
    from engine.db import sessions

    with sessions(engine)() as session:
        plan = find_plan(session, None)
        wf = workflow_for_version(session, plan.workflow_version_id)
    today = local_date(now, plan.timezone)
    started = SchoolRun.started_at <= now
    county = "410101"
    teachers, _metrics = teacher_metric_query(wf, select(SchoolRun.id, SchoolRun.school_code).where(
        SchoolRun.plan_id == plan.id, SchoolRun.state == "online_study"))
    return {
        "status table (province, by city)": select(
            School.city_code, SchoolRun.state, func.count(), func.sum(case((started & SchoolRun.blocked, 1), else_=0)))
        .join(School, School.code == SchoolRun.school_code).where(SchoolRun.plan_id == plan.id)
        .group_by(School.city_code, SchoolRun.state),
        "overdue list, first page (county officer)": select(SchoolRun.id, SchoolRun.school_code, SchoolRun.due_date)
        .join(School, School.code == SchoolRun.school_code)
        .where(SchoolRun.plan_id == plan.id, School.county_code == county, started,
               (SchoolRun.due_date < today) | SchoolRun.blocked)
        .order_by(SchoolRun.due_date, SchoolRun.school_code).limit(100),
        "sweep: runs due within the reminder horizon": select(SchoolRun.id, SchoolRun.due_date)
        .where(SchoolRun.plan_id == plan.id, SchoolRun.due_date <= today + timedelta(days=14), started),
        "teacher aggregation (gates, online study)": teachers,
    }


def explain(engine: Engine, now: Any) -> dict[str, list[str]]:
    clock = FixedClock(now)
    out: dict[str, list[str]] = {}
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        for name, query in _queries(engine, clock.now()).items():
            sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
            rows = conn.execute(text(("EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN ") + sql)).all()
            out[name] = [str(r[-1]) for r in rows]
    return out
