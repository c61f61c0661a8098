"""Reading a forecast's plain inputs from the database: the open runs, their teachers' history over
the window, today's metric values, and how long the plan's schools stayed in each stage.

Only what was known on the clock's day is read (imports as of that day or before, audit events up
to that instant), so a forecast made with ``--now`` in a replayed year sees what an office would
have seen then. The stored status supplies due dates (``engine.run_status``); gates are judged on
live metric values (one GROUP BY for all runs, ``engine.metrics``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, overload

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.calendar import WorkCalendar
from engine.deadline import local_date
from engine.forecast.base import take_priors, unseen
from engine.forecast.cursor import present_rows
from engine.forecast.durations import StageDurations
from engine.forecast.pace import TeacherHistory, TeacherSums, working_day_index
from engine.forecast.school import RunInput
from engine.forecast.sums import After, teacher_sums, windowed_observations
from engine.metrics import values_of_runs
from engine.models import (
    AuditEvent,
    Plan,
    ProgressImport,
    School,
    SchoolRun,
    Teacher,
    TeacherProgress,
)
from engine.workflow.model import Workflow

FIELDS = ("online_hours", "practice_hours", "points_count", "evidence_count")
CHUNK = 5_000  # ids per IN (...) list
PART = 200_000  # history rows turned into arrays at a time
SMALL_SCOPE = 50_000  # teachers up to which the history is read by teacher id (a page, a county, a city)
EMPTY = TeacherHistory((), np.zeros(0, dtype=np.int64), {f: np.zeros((0, 0)) for f in FIELDS})  # no teachers


@dataclass(frozen=True)
class OpenRun:
    run_id: int
    school_code: str
    state: str
    entered: date
    due: date | None
    county_code: str
    city_code: str | None


def open_runs(session: Session, plan: Plan, wf: Workflow, now: datetime, *, region: str | None = None,
              school: str | None = None) -> list[OpenRun]:
    """Runs of the plan that have started and are neither finished nor parked."""
    q = (select(SchoolRun.id, SchoolRun.school_code, SchoolRun.state, SchoolRun.stage_entered_at,
                SchoolRun.due_date, School.county_code, School.city_code)
         .join(School, School.code == SchoolRun.school_code)
         .where(SchoolRun.plan_id == plan.id, SchoolRun.started_at <= now))
    if region:
        q = q.where((School.county_code == region) | (School.city_code == region) | (School.province_code == region))
    if school:
        q = q.where(SchoolRun.school_code == school)
    out = []
    forecastable: dict[str, bool] = {}  # per state: a stage that is neither terminal nor a hold
    # Core rows: the ORM's result machinery took a tenth of a province's 50,000 (0.80 -> 0.72 CPU s)
    for run_id, code, state, entered, due, county, city in session.connection().execute(q.order_by(SchoolRun.id)):
        if state not in forecastable:
            forecastable[state] = wf.has_stage(state) and not wf.stage(state).terminal and not wf.stage(state).hold
        if forecastable[state]:
            out.append(OpenRun(run_id, code, state, local_date(entered, plan.timezone), due, county, city))
    return out


def observation_dates(session: Session, today: date, window: int, calendar: WorkCalendar) -> list[tuple[int, date]]:
    """(import id, as-of) of the imports a window of ``window`` working days ending today reads:
    those inside it and the one just before (imports sharing an as-of date: the latest)."""
    rows = session.execute(select(ProgressImport.id, ProgressImport.as_of)
                           .where(ProgressImport.as_of <= today).order_by(ProgressImport.id)).all()
    by_day: dict[date, int] = {}
    for import_id, as_of in rows:
        by_day[as_of] = import_id
    days = sorted(by_day)
    start = calendar.add_working_days(today, -window).due if window else today
    inside = [i for i, d in enumerate(days) if d >= start]
    first = max(0, (inside[0] if inside else len(days)) - 1)
    return [(by_day[d], d) for d in days[first:]]


def teacher_histories(session: Session, schools: Iterable[str], observations: list[tuple[int, date]],
                      today: date, calendar: WorkCalendar) -> tuple[dict[str, TeacherHistory], dict[str, tuple[str, ...]]]:
    """Per school, its present teachers' figures at each observation (forward-filled), and names.

    One teachers query (with their figures now) and one history query for the whole scope
    (chunked ``IN`` lists): the rows after the window's first import, which give each teacher's
    base too (``engine.forecast.base``). The figures land in one (teachers × observations) array
    per field, filled with numpy — each school's history is a slice of it (its teachers are
    consecutive rows)."""
    codes = sorted(set(schools))
    tids: list[int] = []
    now: list[tuple[float, ...]] = []
    ids: dict[str, list[str]] = defaultdict(list)
    names: dict[str, list[str]] = defaultdict(list)
    for start in range(0, len(codes), CHUNK):
        for tid, pid, name, code, *figures in session.connection().execute(
            select(Teacher.id, Teacher.platform_id, Teacher.name, Teacher.school_code,
                   *(getattr(Teacher, f) for f in FIELDS))
            .where(Teacher.school_code.in_(codes[start:start + CHUNK]), Teacher.left_on.is_(None))
            .order_by(Teacher.school_code, Teacher.platform_id)
        ):
            tids.append(tid)
            now.append(tuple(figures))
            ids[code].append(pid)
            names[code].append(name)
    k = len(observations)
    n = len(tids)
    big = {f: np.full((n, k), np.nan) for f in FIELDS}
    if k and n:
        row_of = np.full(max(tids) + 1, -1, dtype=np.int64)
        row_of[np.asarray(tids, dtype=np.int64)] = np.arange(n)
        bases = [big[f][:, 0] for f in FIELDS]  # views: the base column, the figures now until a row says
        current = np.asarray(now, dtype=np.float64)
        for c, base in enumerate(bases):
            base[:] = current[:, c]
        after = After.read(session, observations)
        column = {import_id: j for j, (import_id, _) in enumerate(observations)}
        col_of = np.full(max([*after.ids, *column]) + 1, -1, dtype=np.int64)  # -1: only a base
        col_of[list(column)[1:]] = list(column.values())[1:]
        earliest = unseen(n)
        # A school's page or a county reads its own teachers' rows (by id); a province reads them all,
        # a part at a time into the arrays (never the 6,000,000 rows of a province in a list).
        scopes: list[list[int] | None] = ([tids[i:i + CHUNK] for i in range(0, n, CHUNK)] if n <= SMALL_SCOPE
                                          else [None])
        for scope in scopes if after.ids else ():
            for part in _history_rows(session, after.ids, scope):
                # teacher, import, figures, priors: one row per (import, teacher). Transposed in Python
                # first: numpy reads a list of Row objects element by element (11 s for 500,000 rows).
                table = np.column_stack([np.array(c, dtype=np.float64) for c in zip(*part, strict=True)])
                rows, table = present_rows(row_of, table)  # present teachers of these schools only
                imports = table[:, 1].astype(np.int64)
                take_priors(earliest, bases, rows, imports, table[:, 2 + len(FIELDS):])
                j = col_of[imports]
                inside = j > 0
                for c, f in enumerate(FIELDS):
                    big[f][rows[inside], j[inside]] = table[inside, 2 + c]
        filled = ~np.isnan(big[FIELDS[0]])
        last = np.maximum.accumulate(np.where(filled, np.arange(k)[None, :], 0), axis=1)
        for f in FIELDS:  # forward-filled: unchanged until the next change
            big[f] = np.take_along_axis(big[f], last, axis=1)
    days = working_day_index(calendar, today, [d for _, d in observations])
    out: dict[str, TeacherHistory] = {}
    start = 0
    for code in sorted(ids):
        end = start + len(ids[code])
        out[code] = TeacherHistory(tuple(ids[code]), days, {f: big[f][start:end] for f in FIELDS})
        start = end
    return out, {code: tuple(v) for code, v in names.items()}


def _history_rows(session: Session, imports: list[int], teachers: list[int] | None) -> Iterator[Sequence[Any]]:
    """(teacher, import, figures…, prior figures…) rows of ``imports``, in parts (``teachers``: only
    these, each a probe of the (import, teacher) key per import; None: all)."""
    only = [TeacherProgress.teacher_id.in_(teachers)] if teachers is not None else []
    q = select(TeacherProgress.teacher_id, TeacherProgress.import_id,
               *(getattr(TeacherProgress, f) for f in FIELDS),
               *(getattr(TeacherProgress, f"prior_{f}") for f in FIELDS)
               ).where(TeacherProgress.import_id.in_(imports), *only)
    result = session.connection().execute(q.execution_options(yield_per=PART))  # Core, streamed where it can be
    yield from (part for part in result.partitions(PART) if part)


def _more_teachers_than(session: Session, codes: list[str], limit: int, every: bool = False) -> bool:
    """Whether these schools have more than ``limit`` present teachers (``every``: they are all
    the schools, one count without IN lists). Counted a list of ``CHUNK`` codes at a time, and no
    further once over: 45,000 schools of a province were nine counts, 0.5–0.9 s on PostgreSQL,
    before its read could start."""
    if every:
        return (session.scalar(select(func.count()).select_from(Teacher).where(Teacher.left_on.is_(None))) or 0) > limit
    unique = sorted(set(codes))
    total = 0
    for start in range(0, len(unique), CHUNK):
        total += session.scalar(select(func.count()).select_from(Teacher).where(
            Teacher.school_code.in_(unique[start:start + CHUNK]), Teacher.left_on.is_(None))) or 0
        if total > limit:
            return True
    return False


def modelled_fields(wf: Workflow) -> list[str]:
    """The fields teacher-metric conditions project (``>=``/``>`` a number): what sums are read for."""
    known = {*FIELDS, "total_hours"}
    return sorted({c.field for m in wf.metrics.values() for c in (m.where or ())
                   if isinstance(c.value, int | float) and c.op in (">=", ">") and c.field in known})


def stage_durations(session: Session, plan: Plan, wf: Workflow, now: datetime, today: date,
                    calendar: WorkCalendar) -> dict[str, StageDurations]:
    """Working days each run of the plan spent in each stage it left by an advance (finished), and
    so far in the stage it is in (ongoing): the Kaplan–Meier inputs for fact gates and later stages."""
    rows = session.execute(
        select(AuditEvent.run_id, AuditEvent.at, AuditEvent.trigger, AuditEvent.from_state, AuditEvent.to_state)
        .where(AuditEvent.plan_id == plan.id, AuditEvent.run_id.is_not(None), AuditEvent.at <= now,
               AuditEvent.to_state.is_not(None))
        .order_by(AuditEvent.run_id, AuditEvent.seq)
    ).all()
    finished: dict[str, list[int]] = defaultdict(list)
    entered: dict[int, tuple[str, date]] = {}
    for run_id, at, trigger, source, dest in rows:
        if run_id is None or dest is None:
            continue
        day = local_date(at, plan.timezone)
        was = entered.get(run_id)
        if was is not None and dest == was[0]:
            continue  # a fact or an extension: the run stays where it was
        step = wf.transition_for(trigger, source) if source else None
        if was is not None and source == was[0] and step is not None and step.kind == "advance":
            finished[source].append(calendar.working_days_between(was[1], day))
        entered[run_id] = (dest, day)
    ongoing: dict[str, list[int]] = defaultdict(list)
    for stage, day in entered.values():
        if wf.has_stage(stage) and not wf.stage(stage).terminal:
            ongoing[stage].append(calendar.working_days_between(day, today))
    return {s.id: StageDurations(tuple(finished[s.id]), tuple(ongoing[s.id])) for s in wf.stages}


def run_inputs(session: Session, plan: Plan, wf: Workflow, runs: list[OpenRun], today: date,
               calendar: WorkCalendar, window: int, method: str = "bootstrap", workers: int = 1,
               also: Callable[[], None] | None = None) -> Sequence[RunInput]:
    """Every open run's ``RunInput``: one metrics query, one teachers query, two history queries
    — or, for the approximate method over more than ``SMALL_SCOPE`` teachers, the history's sums
    per teacher computed by the database (``engine.forecast.sums``; the same numbers, one row per
    teacher instead of one per teacher and import), in ``workers`` processes for every school
    (``engine.forecast.cores``). ``also``: the caller's other reads (the stage durations), done
    here while the workers read."""
    if not runs:
        return []
    read: dict[int, Mapping[str, float | None]] = {}

    def gate_values() -> None:  # while the workers read the history, if there are workers
        read.update(values_of_runs(session, wf, [r.run_id for r in runs]))
        if also is not None:
            also()

    observations = observation_dates(session, today, window, calendar)
    codes = [r.school_code for r in runs]
    histories: Mapping[str, TeacherHistory | TeacherSums]
    every = method == "approximate" and session.scalar(select(func.count()).select_from(School)) == len(set(codes))
    if method == "approximate" and _more_teachers_than(session, codes, SMALL_SCOPE, every):
        kept, days = windowed_observations(observations, today, calendar, window)
        histories = teacher_sums(session, None if every else codes, kept, days, modelled_fields(wf), workers,
                                 gate_values)
        names: dict[str, tuple[str, ...]] = {}
    else:
        gate_values()
        histories, names = teacher_histories(session, codes, observations, today, calendar)
    return RunInputs(runs, today, plan.final_deadline, calendar, histories, read, names)


class RunInputs(Sequence[RunInput]):
    """The open runs' ``RunInput``s, each made when it is read: in a province's forecast, by the
    forked worker that forecasts the run (``school.forecast_runs`` reads its chunks of runs there),
    not here one after another while the workers wait — 50,000 took 0.6–0.7 s on one core (a
    slow day's machine)."""

    def __init__(self, runs: Sequence[OpenRun], today: date, final: date | None, calendar: WorkCalendar,
                 histories: Mapping[str, TeacherHistory | TeacherSums],
                 values: Mapping[int, Mapping[str, float | None]], names: Mapping[str, tuple[str, ...]]) -> None:
        self._runs, self._today, self._final, self._calendar = runs, today, final, calendar
        self._histories, self._values, self._names = histories, values, names

    def __len__(self) -> int:
        return len(self._runs)

    @overload
    def __getitem__(self, at: int) -> RunInput: ...

    @overload
    def __getitem__(self, at: slice) -> list[RunInput]: ...

    def __getitem__(self, at: int | slice) -> RunInput | list[RunInput]:
        if isinstance(at, slice):
            return [self._made(r) for r in self._runs[at]]
        return self._made(self._runs[at])

    def _made(self, r: OpenRun) -> RunInput:
        history = self._histories.get(r.school_code, EMPTY)
        return RunInput(r.run_id, r.school_code, r.state, self._today, r.due, self._final,
                        self._calendar.working_days_between(r.entered, self._today), history,
                        self._values[r.run_id], self._names.get(r.school_code, ()))
