"""The two yardsticks every engine operation is compared with, measured in the same run.

naive: what a first version would do — ORM objects row by row, one ``transitions.Machine`` per
school, one audit append per event. Run on a reduced count and extrapolated linearly (``extra``
carries the count so the report can say so).
floor: hand-written SQL doing only the unavoidable reads and writes — executemany on SQLite,
COPY on PostgreSQL — with no validation, no audit payload canonicalisation and no ORM.
Both run in a transaction that is rolled back.
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
from datetime import datetime
from itertools import islice
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from engine.audit import append_event, run_chain
from engine.db import is_postgres, sessions
from engine.gate import all_passed, judge_stage
from engine.metrics import metric_values, runs_by_id
from engine.models import Plan, SchoolRun, Teacher
from engine.workflow.versions import workflow_for_version

if TYPE_CHECKING:
    from bench.generate import Dataset

NAIVE_IMPORT_ROWS = 5_000
NAIVE_ADVANCE_SCHOOLS = 200
extra: dict[str, Any] = {}  # reported alongside the timing: how many rows the naive run really did
COLUMNS = ["platform_id", "name", "school_code", "online_hours", "practice_hours", "points", "points_count",
           "evidence_count", "evidence_result"]


def _rows(ds: Dataset, limit: int | None = None) -> Any:
    fh = ds.progress_csv.open(encoding="gb18030", newline="")
    reader = csv.reader(fh)
    next(reader)
    for r in islice(reader, limit):
        points = r[5].replace("、", ",")
        yield (r[0], r[1], r[2], float(r[3]), float(r[4]), points, points.count(",") + 1 if points else 0,
               int(r[6] or 0), r[7] or None)
    fh.close()


def _bulk_load(session: Session, rows: Any) -> int:
    """Stage rows into a temp table: COPY on PostgreSQL, executemany on SQLite."""
    conn = session.connection()
    conn.execute(text("DROP TABLE IF EXISTS bench_floor"))
    conn.execute(text("CREATE TEMP TABLE bench_floor AS SELECT " + ", ".join(COLUMNS) + " FROM teacher WHERE 1 = 0"))
    n = 0
    if is_postgres(conn.engine):
        raw = conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy(f"COPY bench_floor ({', '.join(COLUMNS)}) FROM STDIN") as copy:  # type: ignore[union-attr]
            for row in rows:
                copy.write_row(row)
                n += 1
        return n
    batch: list[Any] = []
    sql = f"INSERT INTO bench_floor VALUES ({', '.join('?' * len(COLUMNS))})"
    cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    for row in rows:
        batch.append(row)
        if len(batch) == 10_000:
            cur.executemany(sql, batch)
            n += len(batch)
            batch.clear()
    cur.executemany(sql, batch)
    return n + len(batch)


def _rolled_back(engine: Engine, body: Any) -> int:
    with sessions(engine)() as session:
        try:
            return int(body(session))
        finally:
            session.rollback()


def floor_import(engine: Engine, ds: Dataset) -> int:
    return _rolled_back(engine, lambda s: _bulk_load(s, _rows(ds)))


def floor_import_xlsx(engine: Engine, ds: Dataset) -> int:
    """The same reader the engine uses (calamine), then the bulk load: no mapping, no checks."""
    from python_calamine import CalamineWorkbook

    def rows() -> Any:
        book = CalamineWorkbook.from_path(str(ds.progress_xlsx))
        for r in islice(book.get_sheet_by_index(0).iter_rows(), 1, None):
            points = str(r[5] or "").replace("、", ",")
            yield (str(r[0]), r[1], str(r[2]), float(r[3]), float(r[4]), points, points.count(",") + 1 if points else 0,
                   int(r[6] or 0), r[7] or None)
        book.close()
    return _rolled_back(engine, lambda s: _bulk_load(s, rows()))


def naive_import(engine: Engine, ds: Dataset) -> int:
    """One ORM object per row, looked up by primary key and flushed as it goes."""
    def body(session: Session) -> int:
        n = 0
        for row in _rows(ds, NAIVE_IMPORT_ROWS):
            t = session.scalars(select(Teacher).where(Teacher.platform_id == row[0])).first() or Teacher(platform_id=row[0])
            for col, value in zip(COLUMNS[1:], row[1:], strict=True):
                setattr(t, col, value)
            session.add(t)
            session.flush()
            n += 1
        extra["measured_rows"] = n
        return n
    return _rolled_back(engine, body)


def _ready(session: Session, ds: Dataset) -> None:
    from bench.ops import make_ready

    make_ready(session, ds)


def naive_advance(engine: Engine, ds: Dataset) -> int:
    """Per school: its own metrics query, its own Machine, one UPDATE and one audit append."""
    from transitions import Machine

    from bench.ops import IDLE, _mark

    def body(session: Session) -> int:
        _ready(session, ds)
        plan = session.scalars(select(Plan)).one()
        wf = workflow_for_version(session, plan.workflow_version_id)
        codes = ds.ready[:NAIVE_ADVANCE_SCHOOLS]
        t0 = time.perf_counter()
        for code in codes:
            run = session.scalars(select(SchoolRun).where(SchoolRun.school_code == code)).one()
            values = metric_values(session, wf, runs_by_id([run.id]))[run.id]
            stage = wf.stage(run.state)
            ok = all_passed(judge_stage(wf, stage, values))
            model = _Model(run.state)
            Machine(model=model, states=[s.id for s in wf.stages], initial=run.state,
                    transitions=[{"trigger": t.trigger, "source": list(t.sources), "dest": t.dest}
                                 for t in wf.transitions if t.kind == "advance"])
            if ok and model.trigger("advance"):  # type: ignore[attr-defined]
                append_event(session, chain=run_chain(run.id), at=IDLE, actor="system", role="system",
                             trigger="advance", plan_id=plan.id, run_id=run.id, school_code=code,
                             from_state=run.state, to_state=model.state)
                run.state, run.version = model.state, run.version + 1
                session.flush()
        _mark(time.perf_counter() - t0)
        extra["measured_rows"] = len(codes)
        return len(codes)
    return _rolled_back(engine, body)


class _Model:
    def __init__(self, state: str) -> None:
        self.state = state


def floor_advance(engine: Engine, ds: Dataset) -> int:
    """One aggregate read of the gate inputs, one UPDATE executemany, one INSERT executemany of audit rows."""
    from bench.ops import IDLE, _mark

    def body(session: Session) -> int:
        _ready(session, ds)
        conn = session.connection()
        t0 = time.perf_counter()
        rows = conn.execute(text(
            "SELECT r.id, r.school_code, r.version, count(t.platform_id), "
            "sum(CASE WHEN t.online_hours >= 25 THEN 1 ELSE 0 END), sum(CASE WHEN t.points_count >= 3 THEN 1 ELSE 0 END) "
            "FROM school_run r JOIN teacher t ON t.school_code = r.school_code "
            "WHERE r.state = 'online_study' GROUP BY r.id, r.school_code, r.version")).all()
        ready = [r for r in rows if r[4] == r[3] and r[5] == r[3]]
        conn.execute(text("UPDATE school_run SET state = 'practice', version = :v + 1 WHERE id = :id AND version = :v"),
                     [{"id": r[0], "v": r[2]} for r in ready])
        at = IDLE.astimezone().replace(tzinfo=None)
        events = []
        for r in ready:
            payload = json.dumps({"chain": run_chain(r[0]), "seq": 1, "school": r[1], "to": "practice"}).encode()
            events.append({"chain": f"floor:{r[0]}", "seq": 1, "at": at, "actor": "system", "role": "system",
                           "trigger": "advance", "gates": "[]", "run_id": r[0], "school_code": r[1], "prev_hash": "0" * 64,
                           "hash": hashlib.sha256(payload).hexdigest(), "payload": payload})
        conn.execute(text("INSERT INTO audit_event (chain, seq, at, actor, role, trigger, gates, run_id, school_code, prev_hash, hash, payload) "
                          "VALUES (:chain, :seq, :at, :actor, :role, :trigger, :gates, :run_id, :school_code, :prev_hash, :hash, :payload)"), events)
        _mark(time.perf_counter() - t0)
        return len(ready)
    return _rolled_back(engine, body)


__all__ = ["datetime", "floor_advance", "floor_import", "naive_advance", "naive_import"]
