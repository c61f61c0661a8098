"""A province's teacher history read as one row per teacher, and summed (issue 11 speed).

The approximate method (``pace.moments_from_sums``) needs of each teacher's window only, per
field, its latest figure and Σ rate·days, Σ rate²·days and Σ days over the intervals between
observations (``pace.interval_sums``). The row path (``data.teacher_histories``) ships a row per
teacher and import through the driver — ~6,000,000 Row objects for a province, 90 s on SQLite.
Here the window comes a row per teacher (``engine.forecast.window``: its base, its figures as
of the window's first import, and its figures at each import after it) straight from the driver's
cursor into numpy arrays, a part at a time, one column per observation; numpy forward-fills
(history stores changes only: no row is no change) and sums into ``TeacherSums`` (database ids,
no names: ``name_shown`` reads the few shown).

The observations' working-day indices come from the official calendar (``windowed_observations``),
so a holiday between two imports is not days of idleness, and two imports on the same working
day are an interval of no days. The sums equal the row path's (the tests check it on both
databases: a holiday in the window, a teacher with no change rows, one who joined mid-window).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import date
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from engine.calendar import WorkCalendar
from engine.forecast.cores import database_url, forked, inherited
from engine.forecast.cursor import parts, statement
from engine.forecast.pace import TeacherHistory, TeacherSums, working_day_index
from engine.forecast.school import SchoolForecast
from engine.forecast.window import Scope, read_window

BASE = ("online_hours", "practice_hours", "points_count", "evidence_count")
DERIVED = {"total_hours": "online_hours + practice_hours"}
CHUNK = 2_000  # schools per query when the scope is a list of schools
PART = 20_000  # teachers forward-filled and summed at a time
WIDE = 0.25  # the share of all schools from which every teacher is read (``teacher_sums``)


def windowed_observations(observations: Sequence[tuple[int, date]], today: date, calendar: WorkCalendar,
                          window: int) -> tuple[list[tuple[int, date]], np.ndarray]:
    """The observations ``school.windowed`` keeps (those ``window`` working days back and the one
    before), with their working-day indices."""
    days = working_day_index(calendar, today, [d for _, d in observations])
    inside = np.flatnonzero(days >= -window)
    first = max(0, int(inside[0]) - 1) if inside.size else max(0, days.size - 1)
    return list(observations[first:]), days[first:]


Part = tuple[np.ndarray, dict[str, np.ndarray], dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]


class After(NamedTuple):
    """The imports after the window's first (``ids``, ascending) and the observation each falls in
    (``columns``: j for ``hi_{j-1} < id ≤ hi_j``; the observation count for those after the last,
    which only give bases)."""

    ids: list[int]
    columns: np.ndarray

    @classmethod
    def read(cls, session: Session, observations: Sequence[tuple[int, date]]) -> After:
        if not observations:
            return cls([], np.zeros(0, dtype=np.int64))
        ids = [int(i) for i in session.scalars(text("SELECT id FROM progress_import WHERE id > :hi0 ORDER BY id"),
                                               {"hi0": observations[0][0]})]
        his = np.asarray([i for i, _ in observations], dtype=np.int64)
        return cls(ids, np.searchsorted(his, np.asarray(ids, dtype=np.int64), side="left"))


def teacher_sums(session: Session, schools: Sequence[str] | None, observations: Sequence[tuple[int, date]],
                 days: np.ndarray, fields: Sequence[str], workers: int = 1,
                 meanwhile: Callable[[], None] | None = None) -> Schools:
    """Per school (all schools when ``schools`` is None), its present teachers' sums on ``fields``
    and latest figures (``BASE`` always: gates judge every field's) over ``observations`` (import
    ids ascending, ``days`` their working-day indices; the first is the window's base).

    Schools that are at least ``WIDE`` of all schools (a province where some have finished) are
    read as every teacher is, and the other schools' teachers dropped: read by lists of school
    codes, a province with a tenth of its schools finished took 14.6 s on SQLite and 35 s on
    PostgreSQL (each list's statement walked every history row of the window), against 5.1 and
    6.3 s. Read so, with ``workers`` > 1, that many forked processes read a range of teacher ids
    each (``engine.forecast.cores``) while this one lists the teachers and calls ``meanwhile`` (the
    caller's other reads; called first without workers); the sums are the same."""
    fields = list(dict.fromkeys([*BASE, *fields]))
    plain_plans(session)
    codes = sorted(set(schools)) if schools is not None else None
    wide = codes is None or len(codes) >= WIDE * int(session.scalar(text("SELECT count(*) FROM school")) or 0)
    chunks: list[list[str] | None] = [None]
    if codes is not None and not wide:
        chunks = [codes[i:i + CHUNK] for i in range(0, len(codes), CHUNK)]
    only = set(codes) if wide and codes is not None else None
    days = np.asarray(days, dtype=np.int64)
    after = After.read(session, observations)
    if wide and workers > 1 and len(observations):
        first, last = session.execute(text("SELECT min(id), max(id) FROM teacher")).one()
        edges = np.linspace(first or 0, (last or 0) + 1, workers + 1).astype(np.int64).tolist()
        job = (database_url(session), after, len(observations), days, fields)
        with forked(workers, job) as pool:
            pending = pool.map_async(_range_part, list(zip(edges[:-1], edges[1:], strict=True)), chunksize=1)
            if meanwhile is not None:
                meanwhile()
            ids, counts = _present(session, chunks, only)
            parts = pending.get()
    else:
        if meanwhile is not None:
            meanwhile()
        ids, counts = _present(session, chunks, only)
        parts = [_sums(session, ids, after, len(observations), days, fields, chunks)]
    latest, totals = _assembled(ids, parts, fields)
    return Schools(ids, days, latest, totals, counts)


class Schools(Mapping[str, TeacherSums]):
    """Each school's ``TeacherSums``, made when it is read: in a province's forecast, by the
    forked workers that forecast the school (``engine.forecast.school``), not here one after
    another while they wait — a province's 50,000 took 0.6–0.7 s on one core (a slow day's machine)."""

    __slots__ = ("_ids", "_days", "_latest", "_totals", "_rows")

    def __init__(self, ids: np.ndarray, days: np.ndarray, latest: Mapping[str, np.ndarray],
                 totals: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                 counts: Sequence[tuple[str, int]]) -> None:
        self._ids, self._days, self._latest, self._totals = ids, days, latest, totals
        ends = np.cumsum([c for _, c in counts], dtype=np.int64).tolist()
        self._rows = {code: slice(end - c, end) for (code, c), end in zip(counts, ends, strict=True)}

    def __getitem__(self, code: str) -> TeacherSums:
        rows = self._rows[code]
        return TeacherSums(self._ids[rows], self._days, _Rows(self._latest, rows), _Rows(self._totals, rows))

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, code: object) -> bool:
        return code in self._rows


class _Rows(Mapping[str, Any]):
    """One school's rows of the province's per-field arrays (or triples of arrays), sliced when a
    field is read: slicing a dozen arrays for each of 50,000 schools up front took 0.25 s."""

    __slots__ = ("_whole", "_rows")

    def __init__(self, whole: Mapping[str, Any], rows: slice) -> None:
        self._whole, self._rows = whole, rows

    def __getitem__(self, field: str) -> Any:
        value = self._whole[field]
        return tuple(v[self._rows] for v in value) if isinstance(value, tuple) else value[self._rows]

    def __iter__(self) -> Iterator[str]:
        return iter(self._whole)

    def __len__(self) -> int:
        return len(self._whole)


def plain_plans(session: Session) -> None:
    """For this transaction only, PostgreSQL plans without JIT and without parallel workers.

    It compiles a costly statement's expressions (JIT, on by default since 15): 50–140 ms a
    statement here, for scans it then runs once — the province read was 0.2 s faster without. And
    the read's own processes have the cores: the gate values' aggregation ran in three server
    processes (2.1 CPU seconds for 0.9 s) while two workers read; alone in one, 0.8 s."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL jit = off"))
        session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))


def _present(session: Session, chunks: Sequence[Sequence[str] | None],
             only: set[str] | None = None) -> tuple[np.ndarray, list[tuple[str, int]]]:
    """The present teachers' ids in (school, platform id) order — a school's are consecutive —
    and each school's count, from one statement (the counts always match the ids), split in numpy;
    with ``only``, those of these schools (every teacher was read)."""
    ids: list[np.ndarray] = []
    codes: list[np.ndarray] = []
    for chunk in chunks:
        where = "AND school_code IN :codes" if chunk is not None else ""
        bound = {"codes": chunk} if chunk is not None else {}
        stmt = statement(f"SELECT id, school_code FROM teacher WHERE left_on IS NULL {where} "
                         "ORDER BY school_code, platform_id")
        for part in parts(session, stmt, bound):
            ids.append(np.fromiter((row[0] for row in part), dtype=np.int64, count=len(part)))
            codes.append(np.array([row[1] for row in part], dtype=object))
    if not ids:
        return np.zeros(0, dtype=np.int64), []
    schools = np.concatenate(codes)
    starts = np.flatnonzero(np.r_[True, schools[1:] != schools[:-1]])
    sizes = np.diff(np.r_[starts, schools.size])
    found, everyone = schools[starts].tolist(), np.concatenate(ids)
    if only is None:
        return everyone, list(zip(found, sizes.tolist(), strict=True))
    listed = np.fromiter((code in only for code in found), dtype=bool, count=len(found))
    keep = np.repeat(listed, sizes)  # per teacher: its school's
    return everyone[keep], [(code, int(size)) for code, size, kept in zip(found, sizes.tolist(), listed, strict=True)
                            if kept]


def _range_part(bounds: tuple[int, int]) -> Part:
    """In a forked worker: the sums of the present teachers with ids in ``bounds``, from its own
    connection."""
    from engine.db import make_engine, sessions

    url, after, k, days, fields = inherited()
    engine = make_engine(url)
    try:
        with sessions(engine)() as session:
            plain_plans(session)
            ids = np.arange(*bounds, dtype=np.int64)  # every id the range may hold: those read are kept
            return _sums(session, ids, after, k, days, fields, [range(*bounds)], read_only=True)
    finally:
        engine.dispose()


def _sums(session: Session, ids: np.ndarray, after: After, k: int, days: np.ndarray, fields: Sequence[str],
          scopes: Sequence[Scope], read_only: bool = False) -> Part:
    """The teachers ``ids``' latest figures and sums over ``k`` observations, reading the window
    of each scope (a chunk of school codes, a teacher id range, or None: every teacher) a row per
    teacher (``engine.forecast.window``). ``read_only``: keep only the teachers the reads found
    (a range's present teachers), not every one of ``ids``."""
    n = ids.size
    values = {f: np.full((n, k), np.nan) for f in BASE}
    seen = np.zeros(n, dtype=bool)
    if k and n:
        row_of = np.full(int(ids.max()) + 1, -1, dtype=np.int64)
        row_of[ids] = np.arange(n)
        seen = read_window(session, values, row_of, after.ids, after.columns, scopes)
    if read_only:
        ids, values = ids[seen], {f: v[seen] for f, v in values.items()}
        n = ids.size
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
    return ids, latest, totals


def _assembled(ids: np.ndarray, parts: Sequence[Part], fields: Sequence[str]) -> tuple[
        dict[str, np.ndarray], dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """The parts' figures in the order of ``ids`` (a part that is already in that order as is)."""
    if len(parts) == 1 and np.array_equal(parts[0][0], ids):
        return parts[0][1], parts[0][2]
    n = ids.size
    latest = {f: np.full(n, np.nan) for f in fields}
    observed = np.zeros(n)
    totals = {f: (np.zeros(n), np.zeros(n), observed) for f in fields}
    row_of = np.full(int(max([ids.max(initial=0), *(p[0].max(initial=0) for p in parts)])) + 1, -1, dtype=np.int64)
    row_of[ids] = np.arange(n)
    for tids, part_latest, part_totals in parts:
        rows = row_of[tids]
        keep = rows >= 0  # a teacher who left between the two reads is not listed: not forecast
        rows, own = rows[keep], np.flatnonzero(keep)
        for f in fields:
            latest[f][rows] = part_latest[f][own]
            totals[f][0][rows], totals[f][1][rows] = part_totals[f][0][own], part_totals[f][1][own]
        observed[rows] = part_totals[fields[0]][2][own]
    return latest, totals


def _filled(values: dict[str, np.ndarray], days: np.ndarray) -> TeacherHistory:
    """Teachers × observations, forward-filled (history stores changes: no row is no change)."""
    filled = ~np.isnan(values[BASE[0]])
    last = np.maximum.accumulate(np.where(filled, np.arange(days.size)[None, :], 0), axis=1)
    return TeacherHistory(("",) * values[BASE[0]].shape[0], days, {f: np.take_along_axis(v, last, axis=1) for f, v in values.items()})


def name_shown(session: Session, forecasts: Sequence[SchoolForecast]) -> list[SchoolForecast]:
    """The teachers a forecast from sums shows carry database ids: their platform ids and names,
    read for those few teachers only (not a province's million names)."""
    ids = sorted({int(t.platform_id) for f in forecasts for t in f.teachers})
    found: dict[int, tuple[str, str]] = {}
    if session.get_bind().dialect.name == "postgresql":  # one array parameter, not 10,000 binds a statement
        batches = [ids] if ids else []
        stmt = text("SELECT id, platform_id, name FROM teacher WHERE id = ANY(:ids)")
    else:
        batches = [ids[i:i + 5 * CHUNK] for i in range(0, len(ids), 5 * CHUNK)]
        stmt = text("SELECT id, platform_id, name FROM teacher WHERE id IN :ids").bindparams(bindparam("ids", expanding=True))
    for part in batches:  # the driver's tuples (``cursor.parts``): Row objects cost as much as the query
        for rows in parts(session, stmt, {"ids": part}):
            found |= {tid: (pid, name) for tid, pid, name in rows}
    for f in forecasts:
        f.teachers = [replace(t, platform_id=found[int(t.platform_id)][0], name=found[int(t.platform_id)][1])
                      for t in f.teachers]
    return list(forecasts)
