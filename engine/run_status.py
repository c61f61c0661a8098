"""The stored status of each school run: its current stage's due date and gate verdict.

A province office's status table, overdue list and daily sweep must answer for 50,000 schools in
well under a second; judging every gate live means aggregating a million teacher rows each time.
So the verdict is derived when something it depends on changes and stored on the run, in the same
transaction as that change:

- a transition, extension or override (``runs.fire``, ``runs.advance_all_ready``);
- a school fact (``facts.set_fact``);
- teachers' progress (``import_progress``);
- a plan load (new runs) or edit (engine/plan_edit.py; a withdrawn run is no longer derived);
- the working-day calendar (due dates counted in working days move).

Decisions never trust the stored verdict: ``fire`` judges gates afresh and ``advance_all_ready``
re-judges every candidate. The stored status is for listing, counting and picking candidates.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    Text,
    bindparam,
    false,
    func,
    select,
    update,
)
from sqlalchemy import cast as cast_
from sqlalchemy.orm import Session

from engine.calendar import memo
from engine.calendar.store import load_calendar
from engine.deadline import local_date, run_stage_due
from engine.gate import all_passed, judge_stage
from engine.metrics import metric_values
from engine.models import Batch, Plan, RunDeadline, SchoolRun
from engine.rates import teacher_rate_columns
from engine.reads import remembered
from engine.tally import retally_where
from engine.workflow.model import Workflow
from engine.workflow.versions import workflow_for_version

Values = Mapping[int, Mapping[str, float | None]]
DERIVED = ("due_date", "due_source", "due_provisional", "blocked", "failing", "derived_ok")
CHUNK = 5000


def refresh(session: Session, where: ColumnElement[bool], *, gates: bool = True,
            values: Values | None = None, teachers: bool = True, dates: bool = True,
            meanwhile: Callable[[], None] | None = None) -> int:
    """Recompute the derived status of the runs matching ``where``; returns how many rows changed.

    ``gates=False`` recomputes only due dates (a calendar change); runs never derived before get
    their gates judged all the same. ``values`` (run id → metric values) saves the teacher
    aggregation for runs the caller has just measured (metric values do not depend on the stage).
    ``teachers=False``: no teacher row and no run came or went, so the per-county tallies keep
    their rates over teachers (engine/tally.py). ``dates=False``: only teachers' progress changed,
    and a due date never depends on it (``run_stage_due`` reads the stage, the batch, the plan, the
    run's extensions and the calendar), so a derived run keeps its stored one (0.3–0.4 s of a
    province's import).

    ``meanwhile`` runs once, in a thread, while the verdicts are judged — plain Python that touches
    no database — so it may use the session's connection: a progress import's history INSERT
    (1.4 s on SQLite, 3 s on PostgreSQL for a million rows, waiting on the database with the GIL
    released) runs on the second core instead of after the province's 50,000 verdicts.
    """
    rows = session.execute(
        select(SchoolRun.id, SchoolRun.school_code, SchoolRun.state, SchoolRun.stage_entered_at,
               SchoolRun.workflow_version_id, SchoolRun.due_date, SchoolRun.due_source,
               SchoolRun.due_provisional, SchoolRun.blocked, cast_(SchoolRun.failing, Text).label("failing"),
               SchoolRun.derived_ok,
               SchoolRun.batch_id, SchoolRun.plan_id)
        .where(where, SchoolRun.withdrawn_at.is_(None)).order_by(SchoolRun.id)).all()
    if not rows:
        if meanwhile is not None:
            meanwhile()
        retally_where(session, where, teachers=teachers)  # a withdrawn run leaves its county's counts
        return 0
    gates = gates or not all(r.derived_ok for r in rows)

    def worked_out(r: Any) -> bool:  # the runs whose due date is worked out, not kept
        return dates or not r.derived_ok

    dated = [r for r in rows if worked_out(r)]
    # A batch's and a plan's dates are read once each, not decoded again on each of their 50,000 runs.
    batches = {b.id: b for b in session.execute(select(Batch.id, Batch.start, Batch.deadlines).where(
        Batch.id.in_({r.batch_id for r in dated})))} if dated else {}
    plans = {p.id: p for p in session.execute(select(
        Plan.id, Plan.final_deadline, Plan.timezone, Plan.extension_cap, Plan.final_deadline_stages,
        Plan.workflow_version_id).where(
        Plan.id.in_({r.plan_id for r in rows})))}
    extra: dict[int, dict[str, tuple[Any, str]]] = defaultdict(dict)
    if dated:
        calendar = memo.remembered(load_calendar(session))  # a province's runs share a few dozen due-date questions
        for run_id, stage_id, day, kind in session.execute(
                select(RunDeadline.run_id, RunDeadline.stage, RunDeadline.due, RunDeadline.kind)
                .where(RunDeadline.run_id.in_(select(SchoolRun.id).where(where)))):
            extra[run_id][stage_id] = (day, kind)
    measured: dict[int, Mapping[str, float | None]] = dict(values or {})
    shared: dict[int, dict[str, tuple[int, ...]]] = {}  # plan id → school → its teacher-rate counts
    if gates:
        todo = [r for r in rows if r.id not in measured]
        whole = len(todo) == len(rows)
        rates = _rates_alongside(session, rows, plans) if whole and teachers else None
        _measure(session, where if whole else None, todo, measured, rates, shared)
    # One lookup per version: the session does not keep the version row alive between calls.
    wfs = {v: workflow_for_version(session, v) for v in {r.workflow_version_id for r in rows}}

    def due_of(r: Any, wf: Workflow) -> tuple[Any, str | None, bool]:
        if not worked_out(r):
            return r.due_date, r.due_source, r.due_provisional
        batch, plan = batches[r.batch_id], plans[r.plan_id]
        due = run_stage_due(wf, r.state, batch_start=batch.start,
                            stage_entered=local_date(r.stage_entered_at, plan.timezone),
                            batch_deadlines=batch.deadlines or {}, run_deadlines=extra.get(r.id, {}),
                            final_deadline=plan.final_deadline, final_stages=plan.final_deadline_stages,
                            extension_cap=plan.extension_cap, calendar=calendar)
        return (due.due, due.source, bool(due.provisional)) if due else (None, None, False)

    def changed(r: Any) -> dict[str, Any] | None:
        """The run's new derived columns, or None when they are what it holds."""
        wf = wfs[r.workflow_version_id]
        blocked, failing, written = r.blocked, None, r.failing
        if gates:
            results = judge_stage(wf, wf.stage(r.state), measured[r.id])
            blocked = bool(results) and not all_passed(results)
            failing = [g.as_dict() for g in results if not g.passed] or None
            written = json.dumps(failing)
        # The failing gates are compared as the JSON text the column holds (SQLAlchemy's JSON type
        # writes ``json.dumps`` of the value, JSON null for None): decoding a province's 50,000
        # lists only to compare them was 0.3 s. Text that differs only costs a write.
        new = (*due_of(r, wf), blocked, written, True)
        if new == (r.due_date, r.due_source, r.due_provisional, r.blocked, r.failing, r.derived_ok):
            return None
        if not gates:
            failing = json.loads(r.failing) if r.failing is not None else None
        return {"b_id": r.id, **dict(zip(DERIVED, (*new[:4], failing, True), strict=True))}

    with _beside(meanwhile):  # judging is plain Python: ``meanwhile`` may use the connection
        updates = [u for u in map(changed, rows) if u is not None]
    if updates:
        table = cast(Table, SchoolRun.__table__)
        # Core UPDATE: derived columns are not a change of the run, so the optimistic-lock
        # version does not move (an officer's open page stays valid).
        session.connection().execute(update(table).where(table.c.id == bindparam("b_id")), updates)
        expire_runs(session, {u["b_id"] for u in updates}, DERIVED)
    retally_where(session, where, teachers=teachers, per_school=shared)
    return len(updates)


@contextmanager
def _beside(work: Callable[[], None] | None) -> Iterator[None]:
    """``work`` in a thread while the body runs; its error, if any, once the body is done."""
    if work is None:
        yield
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rollout-beside") as pool:
        done = pool.submit(work)
        try:
            yield
        finally:
            wait([done])  # the connection is the body's caller's again only once work is done
        done.result()


def _rates_alongside(session: Session, rows: Sequence[Any], plans: Mapping[int, Any]) -> tuple[int, list[Any]] | None:
    """(plan id, its teacher-rate columns) to count in the metric pass — when that one pass reads
    every school with a run (one plan, one workflow version, every run not withdrawn refreshed: an
    import's refresh), so the tallies need not read the million teachers again (1.1 s of a
    province's re-import on SQLite). Otherwise None: the tallies count for themselves."""
    if len(plans) != 1 or len({r.workflow_version_id for r in rows}) != 1:
        return None
    every = session.scalar(select(func.count()).select_from(SchoolRun).where(SchoolRun.withdrawn_at.is_(None)))
    if len(rows) != every:
        return None
    (plan,) = plans.values()
    columns = teacher_rate_columns(workflow_for_version(session, plan.workflow_version_id))
    return (plan.id, columns) if columns else None


def _measure(session: Session, where: ColumnElement[bool] | None, rows: list[Any],
             out: dict[int, Mapping[str, float | None]], rates: tuple[int, list[Any]] | None,
             shared: dict[int, dict[str, tuple[int, ...]]]) -> None:
    """Metric values for ``rows``: one aggregation per workflow version, in chunks of schools.
    ``rates`` (from ``_rates_alongside``) are counted in the same pass into ``shared``."""
    by_version: dict[int, list[int]] = defaultdict(list)
    for r in rows:
        by_version[r.workflow_version_id].append(r.id)
    for version_id, ids in by_version.items():
        wf = workflow_for_version(session, version_id)
        if where is not None:
            # The caller's clause selects exactly these runs: one aggregation, however many (a
            # province's in one pass over the teachers, not ten of 5,000 schools: 4.0 → 1.2 s).
            clause = where & (SchoolRun.workflow_version_id == version_id)
            counted: dict[str, tuple[int, ...]] = {}
            out.update(metric_values(session, wf, select(SchoolRun.id, SchoolRun.school_code).where(clause),
                                     extra=rates[1] if rates else (), counted=counted if rates else None))
            if rates:
                shared[rates[0]] = counted
            continue
        for i in range(0, len(ids), CHUNK):  # a list of runs: IN lists under every driver's bind limit
            part = SchoolRun.id.in_(ids[i:i + CHUNK])
            out.update(metric_values(session, wf, select(SchoolRun.id, SchoolRun.school_code).where(part)))


def expire_runs(session: Session, ids: set[int], attrs: tuple[str, ...] | None = None) -> None:
    """Runs this session already holds must not show what a Core UPDATE has replaced."""
    for obj in list(session.identity_map.values()):
        if isinstance(obj, SchoolRun) and obj.id in ids:
            session.expire(obj, None if attrs is None else list(attrs))


def refresh_ids(session: Session, ids: list[int], *, values: Values | None = None, teachers: bool = True) -> int:
    """``refresh`` for a known list of runs, in chunks that stay under every driver's bind limit."""
    return sum(refresh(session, SchoolRun.id.in_(ids[i:i + CHUNK]), values=values, teachers=teachers)
               for i in range(0, len(ids), CHUNK))


def refresh_connection(conn: Connection, where: ColumnElement[bool], *, dates: bool,
                       meanwhile: Callable[[], None] | None = None) -> int:
    """``refresh`` inside a Core connection's transaction (the imports work on connections; a
    progress import passes ``dates=False``)."""
    session = Session(bind=conn)  # joins the transaction; never commits it (rollback_only mode)
    try:
        return refresh(session, where, dates=dates, meanwhile=meanwhile)
    finally:
        session.close()


def ensure_current(session: Session, plan_id: int) -> int:
    """Derive the runs never derived (a database upgraded from before the stored status)."""
    asked: list[bool] = remembered(session, ("derived", plan_id), list)
    if asked:  # a read-only request asked already: derived then, and nothing it does un-derives a run
        return 0
    asked.append(True)
    stale = SchoolRun.plan_id == plan_id, SchoolRun.derived_ok == false()
    if session.scalar(select(SchoolRun.id).where(*stale).limit(1)) is None:
        return 0
    return refresh(session, (SchoolRun.plan_id == plan_id) & (SchoolRun.derived_ok == false()))
