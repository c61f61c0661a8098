"""A province's teacher history read as one row per teacher, and summed (issue 11 speed).

The approximate method (``pace.moments_from_sums``) needs of each teacher's window only, per
field, its latest figure and Σ rate·days, Σ rate²·days and Σ days over the intervals between
observations (``pace.interval_sums``). The row path (``data.teacher_histories``) ships a row per
teacher and import through the driver — ~6,000,000 Row objects for a province, 90 s on SQLite.
Here the database aggregates: each teacher's base (its latest figures up to the window's first
import) and its window rows pivoted into one column per observation — two GROUP BYs over the
primary key and the import index, one row per teacher each, on SQLite and PostgreSQL alike —
and numpy forward-fills (history stores changes only: no row is no change) and sums, a part at a
time, into ``TeacherSums`` (database ids, no names: ``name_shown`` reads the few shown).

The observations' working-day indices come from the official calendar (``windowed_observations``),
so a holiday between two imports is not days of idleness, and two imports on the same working
day are an interval of no days. The sums equal the row path's (the tests check it on both
databases: a holiday in the window, a teacher with no change rows, one who joined mid-window).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import date
from itertools import chain, groupby
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session

from engine.calendar import WorkCalendar
from engine.forecast.pace import TeacherHistory, TeacherSums, working_day_index
from engine.forecast.school import SchoolForecast

BASE = ("online_hours", "practice_hours", "points_count", "evidence_count")
DERIVED = {"total_hours": "online_hours + practice_hours"}
CHUNK = 2_000  # schools per query when the scope is a list of schools
PART = 20_000  # teachers turned into arrays at a time (their Python rows: ~12 MB)


def windowed_observations(observations: Sequence[tuple[int, date]], today: date, calendar: WorkCalendar,
                          window: int) -> tuple[list[tuple[int, date]], np.ndarray]:
    """The observations ``school.windowed`` keeps (those ``window`` working days back and the one
    before), with their working-day indices."""
    days = working_day_index(calendar, today, [d for _, d in observations])
    inside = np.flatnonzero(days >= -window)
    first = max(0, int(inside[0]) - 1) if inside.size else max(0, days.size - 1)
    return list(observations[first:]), days[first:]


def _queries(k: int, scoped: bool) -> tuple[str, str | None]:
    """The two statements over ``k`` observations (``:hi_j``: observation j's import id, bound),
    each an aggregate the primary key or the import index answers, in teacher id order: each
    teacher's latest figures up to the window's first import (the base), and the window's rows
    pivoted to one column per observation and figure. An observation's range is the imports after
    the one before it, up to its own (imports sharing an as-of date are one observation; a
    teacher's larger figure of them is kept). They are joined in numpy, not in SQL: SQLite would
    build an index on each to join them (twice the time), and window functions sort."""
    scope = "AND teacher_id IN (SELECT id FROM teacher WHERE school_code IN :codes)" if scoped else ""
    base = (f"SELECT bp.teacher_id, {', '.join(f'bp.{f}' for f in BASE)} FROM "
            f"(SELECT teacher_id AS t, MAX(import_id) AS m FROM teacher_progress WHERE import_id <= :hi0 {scope} "
            "GROUP BY teacher_id) b JOIN teacher_progress bp ON bp.teacher_id = b.t AND bp.import_id = b.m")
    if k < 2:
        return base, None
    pivot = ", ".join(f"MAX(CASE WHEN import_id > :hi{j - 1} AND import_id <= :hi{j} THEN {f} END)"
                      for j in range(1, k) for f in BASE)
    window = (f"SELECT teacher_id, {pivot} FROM teacher_progress WHERE import_id > :hi0 AND import_id <= :hi{k - 1} "
              f"{scope} GROUP BY teacher_id")
    return base, window


def teacher_sums(session: Session, schools: Sequence[str] | None, observations: Sequence[tuple[int, date]],
                 days: np.ndarray, fields: Sequence[str]) -> dict[str, TeacherSums]:
    """Per school (all schools when ``schools`` is None), its present teachers' sums on ``fields``
    and latest figures (``BASE`` always: gates judge every field's) over ``observations`` (import
    ids ascending, ``days`` their working-day indices; the first is the window's base)."""
    fields = list(dict.fromkeys([*BASE, *fields]))
    codes = sorted(set(schools)) if schools is not None else None
    chunks = [codes[i:i + CHUNK] for i in range(0, len(codes), CHUNK)] if codes is not None else [None]
    counts: list[tuple[str, int]] = []
    order: list[np.ndarray] = []
    for chunk in chunks:  # the present teachers, in (school, platform id) order: a school's are consecutive
        only = "AND school_code IN :codes" if chunk is not None else ""
        bound = {"codes": chunk} if chunk is not None else {}
        stmt = _stmt(f"SELECT id, school_code FROM teacher WHERE left_on IS NULL {only} "
                     "ORDER BY school_code, platform_id", chunk)
        for part in _parts(session, stmt, bound):  # one statement: the counts always match the ids
            tids, schools_of = zip(*part, strict=True)
            order.append(np.array(tids, dtype=np.int64))
            for code, run in groupby(schools_of):
                size = sum(1 for _ in run)
                if counts and counts[-1][0] == code:  # a school split between two parts
                    counts[-1] = (code, counts[-1][1] + size)
                else:
                    counts.append((code, size))
    ids = np.concatenate(order) if order else np.zeros(0, dtype=np.int64)
    n, k = ids.size, len(observations)
    days = np.asarray(days, dtype=np.int64)
    values = {f: np.full((n, k), np.nan) for f in BASE}
    if k and n:
        row_of = np.full(int(ids.max()) + 1, -1, dtype=np.int64)
        row_of[ids] = np.arange(n)
        params: dict[str, Any] = {f"hi{j}": import_id for j, (import_id, _) in enumerate(observations)}
        for chunk in chunks:
            bound = params | ({"codes": chunk} if chunk is not None else {})
            for j0, sql in enumerate(_queries(k, chunk is not None)):
                if sql is None:
                    continue
                for table in _arrays(session, _stmt(sql, chunk), bound):
                    who = table[:, 0].astype(np.int64)
                    keep = who < row_of.size
                    keep[keep] = row_of[who[keep]] >= 0  # present teachers only
                    rows = row_of[who[keep]]
                    for c, f in enumerate(BASE):
                        columns = table[keep][:, 1 + c::len(BASE)]
                        values[f][rows, j0:j0 + columns.shape[1]] = columns
    latest = {f: np.full(n, np.nan) for f in fields}
    observed = np.zeros(n)  # Σ days is every field's: a teacher's known intervals are its rows'
    totals = {f: (np.zeros(n), np.zeros(n), observed) for f in fields}
    for a in range(0, n, PART):  # forward-filled and summed a part at a time (its copies stay small)
        history = _filled({f: v[a:a + PART] for f, v in values.items()}, days)
        for f in fields:
            latest[f][a:a + PART] = history.current(f)
            gained, squares, seen = history.sums(f)
            totals[f][0][a:a + PART], totals[f][1][a:a + PART] = gained, squares
            observed[a:a + PART] = seen
    del values
    out: dict[str, TeacherSums] = {}
    start = 0
    for code, c in counts:
        end = start + c
        out[code] = TeacherSums(ids[start:end], days, {f: v[start:end] for f, v in latest.items()},
                                {f: (v[0][start:end], v[1][start:end], v[2][start:end]) for f, v in totals.items()})
        start = end
    return out


def _stmt(sql: str, chunk: Sequence[str] | None) -> Any:
    return text(sql).bindparams(_expanding("codes")) if chunk is not None else text(sql)


def _parts(session: Session, stmt: Any, params: dict[str, Any]) -> Iterator[Sequence[Any]]:
    """The statement's rows as the driver's tuples, ``PART`` at a time, streamed (a server-side
    cursor on PostgreSQL). Straight from the DBAPI cursor: SQLAlchemy's Row objects and their
    partitions cost ~1.5 µs a row, a tenth of a province's read (3,000,000 rows)."""
    conn = session.connection()
    used = set(re.findall(r":(\w+)", stmt.text))
    named = {k: v for k, v in params.items() if k in used}  # the base binds only :hi0
    compiled = stmt.bindparams(**named).compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    bound = compiled.params
    args: Any = tuple(bound[k] for k in compiled.positiontup or ()) if compiled.positional else bound
    raw = conn.connection.dbapi_connection
    assert raw is not None
    cursor = raw.cursor(name="forecast_sums") if conn.dialect.name == "postgresql" else raw.cursor()
    try:
        cursor.execute(compiled.string, args)
        while part := cursor.fetchmany(PART):
            yield part
    finally:
        cursor.close()


def _arrays(session: Session, stmt: Any, params: dict[str, Any]) -> Iterator[np.ndarray]:
    """The rows as float arrays (NULL: NaN), a part at a time (never a province's rows in a list).
    One flat iterator into ``np.fromiter``: 3.5× faster than transposing in Python, and ``np.array``
    of the tuples inspects each one for its shape first."""
    for part in _parts(session, stmt, params):
        width = len(part[0])
        yield np.fromiter(chain.from_iterable(part), dtype=np.float64, count=len(part) * width).reshape(-1, width)


def _filled(values: dict[str, np.ndarray], days: np.ndarray) -> TeacherHistory:
    """Teachers × observations, forward-filled (history stores changes: no row is no change)."""
    filled = ~np.isnan(values[BASE[0]])
    last = np.maximum.accumulate(np.where(filled, np.arange(days.size)[None, :], 0), axis=1)
    return TeacherHistory(("",) * values[BASE[0]].shape[0], days, {f: np.take_along_axis(v, last, axis=1) for f, v in values.items()})


def _expanding(name: str) -> Any:
    from sqlalchemy import bindparam

    return bindparam(name, expanding=True)


def name_shown(session: Session, forecasts: Sequence[SchoolForecast]) -> list[SchoolForecast]:
    """The teachers a forecast from sums shows carry database ids: their platform ids and names,
    read for those few teachers only (not a province's million names)."""
    ids = sorted({int(t.platform_id) for f in forecasts for t in f.teachers})
    found: dict[int, tuple[str, str]] = {}
    for i in range(0, len(ids), 5 * CHUNK):
        stmt = text("SELECT id, platform_id, name FROM teacher WHERE id IN :ids").bindparams(_expanding("ids"))
        found |= {tid: (pid, name) for tid, pid, name in session.execute(stmt, {"ids": ids[i:i + 5 * CHUNK]})}
    for f in forecasts:
        f.teachers = [replace(t, platform_id=found[int(t.platform_id)][0], name=found[int(t.platform_id)][1])
                      for t in f.teachers]
    return list(forecasts)
