"""The province read (``engine.forecast.sums``) against the row path it replaces, on both
databases: the same latest figures and the same interval sums, with the National Day holiday in
the window, a teacher with no change rows in it, one who joined mid-window, one corrected down."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import event, text
from sqlalchemy.orm import Session, sessionmaker

from engine.calendar import WorkCalendar
from engine.calendar.workdays import seed_from_chinesecalendar
from engine.clock import FixedClock
from engine.db import transaction
from engine.forecast import Settings, forecast_plan
from engine.forecast.data import FIELDS, observation_dates, teacher_histories
from engine.forecast.school import windowed
from engine.forecast.sums import teacher_sums, windowed_observations
from engine.imports.progress import import_progress
from engine.models import Teacher
from tests.conftest import SHANGHAI
from tests.engine.builders import EARLY, LATE, seed_with_plan
from tests.engine.forecast.scenario import export, studying_school

EXPORTS = (date(2021, 9, 13), date(2021, 9, 27), date(2021, 10, 11), date(2021, 10, 25))
TODAY = date(2021, 10, 26)
WINDOW = 20
T = f"T{EARLY[0]}"


def hours(week: int) -> dict[str, float]:
    """T…00 steady; T…01 never changes (no row after the first export); T…02 joins in the third
    export; T…03 is corrected down once (a negative gain is no pace, not a negative one)."""
    out = {f"{T}00": 2.0 + 4.0 * week, f"{T}01": 7.0, f"{T}03": [3.0, 9.0, 8.0, 12.0][week]}
    if week >= 2:
        out[f"{T}02"] = 1.0 + 5.0 * (week - 2)
    return out


@pytest.fixture
def calendar() -> WorkCalendar:
    return WorkCalendar(*seed_from_chinesecalendar([2021]))


@pytest.fixture
def history(factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> sessionmaker[Session]:
    with transaction(factory) as s:
        seed_with_plan(s, clock, tmp_path)
    for week, day in enumerate(EXPORTS):
        clock.set(datetime(day.year, day.month, day.day, 18, tzinfo=SHANGHAI))
        import_progress(factory.kw["bind"], export(tmp_path / f"e{week}.csv", hours(week)), as_of=day, clock=clock)
    return factory


def test_the_window_keeps_its_observations_and_the_one_before(calendar: WorkCalendar) -> None:
    """``windowed_observations``: an import exactly ``WINDOW`` working days back is inside, and the
    one before the first inside is kept as the first interval's start; with none inside, the last."""

    def back(*offsets: int) -> list[tuple[int, date]]:
        return [(i, calendar.add_working_days(TODAY, -n).due if n else TODAY) for i, n in enumerate(offsets, 1)]

    kept, days = windowed_observations(back(30, 25, WINDOW, 10, 0), TODAY, calendar, WINDOW)
    assert [i for i, _ in kept] == [2, 3, 4, 5] and days.tolist() == [-25, -WINDOW, -10, 0]
    kept, days = windowed_observations(back(40, 30), TODAY, calendar, WINDOW)
    assert [i for i, _ in kept] == [2] and days.tolist() == [-30]
    kept, days = windowed_observations(back(40), TODAY, calendar, WINDOW)
    assert [i for i, _ in kept] == [1] and days.tolist() == [-40]


def test_a_scope_is_large_once_its_schools_have_more_teachers_than_the_limit(
        history: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    """Whether the sums are read (``data.SMALL_SCOPE``): more present teachers than the limit,
    counted a list of codes at a time and no further once over."""
    import engine.forecast.data as data

    with history() as s:
        s.add_all([Teacher(platform_id=f"T{EARLY[1]}{i}", name=f"教师{i}", school_code=EARLY[1]) for i in range(2)])
        s.flush()  # EARLY[0] has four teachers, EARLY[1] two
        counts: list[str] = []
        event.listen(s.get_bind(), "before_cursor_execute", lambda *a: counts.append(a[2]))
        monkeypatch.setattr(data, "CHUNK", 1)
        assert data._more_teachers_than(s, [EARLY[0]], 3) and not data._more_teachers_than(s, [EARLY[0]], 4)
        assert data._more_teachers_than(s, [], 5, every=True) and not data._more_teachers_than(s, [], 6, every=True)
        counts.clear()
        assert data._more_teachers_than(s, [EARLY[1], EARLY[0], EARLY[0]], 3)
        assert len(counts) == 1  # EARLY[0], first in order, is over already: EARLY[1] is not counted
        assert data._more_teachers_than(s, [EARLY[0], EARLY[1]], 5) and not data._more_teachers_than(s, [EARLY[1], EARLY[0]], 6)
        assert len(counts) == 5


@pytest.mark.parametrize("wide", [False, True], ids=["by its school's code", "every teacher read"])
def test_sums_from_sql_equal_the_row_paths(history: sessionmaker[Session], calendar: WorkCalendar, wide: bool,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """One school's sums, read by its code or (``sums.WIDE``: many schools) with every teacher's and
    the other schools' dropped, are the row path's."""
    import engine.forecast.sums as sums_module

    monkeypatch.setattr(sums_module, "WIDE", 0.0 if wide else 2.0)
    with history() as s:
        s.add(Teacher(platform_id="T-next-door", name="邻校教师", school_code=EARLY[1], online_hours=3.0))
        s.flush()  # a teacher of another school, read with every teacher and then dropped
        observations = observation_dates(s, TODAY, WINDOW, calendar)
        rows, _ = teacher_histories(s, [EARLY[0]], observations, TODAY, calendar)
        kept, days = windowed_observations(observations, TODAY, calendar, WINDOW)
        sums = teacher_sums(s, [EARLY[0]], kept, days, ["online_hours", "total_hours"])
        province = teacher_sums(s, None, kept, days, ["online_hours"])  # every school: no IN list
    assert list(sums) == [EARLY[0]] and sorted(province) == [EARLY[0], EARLY[1]]
    assert province[EARLY[1]].teachers == 1 and province[EARLY[1]].current("online_hours").tolist() == [3.0]
    expected = windowed(rows[EARLY[0]], WINDOW)
    got = sums[EARLY[0]]
    # The National Day week is no working days: 2021-09-27 → 10-11 is 6 working days (09-28 … 30,
    # 10-08, the 调休 Saturday 10-09, 10-11), not 10.
    assert list(got.days) == list(expected.days) and int(got.days[-2] - got.days[-3]) == 6
    assert got.teachers == expected.teachers == 4
    for field in (*FIELDS, "total_hours"):
        np.testing.assert_allclose(got.current(field), expected.current(field), equal_nan=True)
        for a, b in zip(got.sums(field), expected.sums(field), strict=True):
            np.testing.assert_allclose(a, b)
    gained, squares, observed = got.sums("online_hours")
    pid = {p: i for i, p in enumerate(sorted(hours(3)))}
    assert gained[pid[f"{T}01"]] == 0.0 and observed[pid[f"{T}01"]] == observed[pid[f"{T}00"]] > 0  # days, no gain
    assert observed[pid[f"{T}02"]] < observed[pid[f"{T}00"]]  # joined late: fewer days observed
    assert len(days) == 4 and gained[pid[f"{T}03"]] == pytest.approx(6.0 + 4.0)  # the 9 → 8 step gains nothing
    for a, b in zip(province[EARLY[0]].sums("online_hours"), got.sums("online_hours"), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("joined", [None, 1, 2], ids=["one statement", "an import a statement", "two a statement"])
@pytest.mark.parametrize("first", range(len(EXPORTS)))
def test_a_windows_base_is_each_teachers_figures_as_of_its_first_import(
        history: sessionmaker[Session], calendar: WorkCalendar, first: int, joined: int | None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Migration 0018: a teacher's figures as of the window's first import come from the prior
    figures of its next row, or its figures now if no row follows (T…01 never changes), or none if
    that row is its first (T…02 before it joins); rows after the window (a replay on an earlier
    day) give only that. Both reads, one process and two, agree with each other and the exports —
    also when each import after the base is read by a statement of its own (``window.JOINED``: a
    replay with more imports after it than one statement joins)."""
    import engine.forecast.sums as sums_module
    import engine.forecast.window as window
    from engine.forecast.pace import working_day_index

    if joined is not None:
        monkeypatch.setattr(window, "JOINED", joined)

    with history() as s:
        observations = observation_dates(s, EXPORTS[-1], 60, calendar)[first:first + 2]
        days = working_day_index(calendar, TODAY, [d for _, d in observations])
        rows = teacher_histories(s, [EARLY[0]], observations, TODAY, calendar)[0][EARLY[0]]
        reads = [teacher_sums(s, [EARLY[0]], observations, days, ["online_hours"])[EARLY[0]],
                 teacher_sums(s, None, observations, days, ["online_hours"], 2)[EARLY[0]]]
        monkeypatch.setattr(sums_module, "WIDE", 0.0)  # one school as many: every teacher read, in two processes
        wide = teacher_sums(s, [EARLY[0]], observations, days, ["online_hours"], 2)
        assert list(wide) == [EARLY[0]]
        reads.append(wide[EARLY[0]])
    weeks = range(first, first + len(observations))
    expected = [[hours(w).get(pid, np.nan) for w in weeks] for pid in rows.teacher_ids]
    np.testing.assert_array_equal(rows.values["online_hours"], expected)
    for got in reads:
        np.testing.assert_array_equal(got.current("online_hours"), rows.current("online_hours"))
        for a, b in zip(got.sums("online_hours"), rows.sums("online_hours"), strict=True):
            np.testing.assert_array_equal(a, b)
    gained = dict(zip(rows.teacher_ids, reads[0].sums("online_hours")[0], strict=True))
    if len(observations) == 2:  # a step's gain is measured from the base: T…00 gains 4 a fortnight
        assert gained[f"{T}00"] == 4.0 and gained[f"{T}01"] == 0.0


def test_a_province_forecast_from_sums_is_the_row_paths(factory: sessionmaker[Session], clock: FixedClock,
                                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The approximate method gives a school the same numbers whichever read it came from, and
    names the teachers it shows (read afterwards for those few)."""
    import engine.forecast.data as data

    history = studying_school(factory, clock, tmp_path)
    settings = Settings(samples=200, seed=3, method="approximate")
    with history() as s:
        _, by_rows = forecast_plan(s, clock, settings=settings)
    monkeypatch.setattr(data, "SMALL_SCOPE", 0)  # any scope reads sums
    with history() as s:
        _, by_sums = forecast_plan(s, clock, settings=settings)
    assert [f.school_code for f in by_sums] == [f.school_code for f in by_rows]
    assert any(f.teachers for f in by_sums) and any(f.status == "ok" for f in by_sums)
    for a, b in zip(by_sums, by_rows, strict=True):
        assert (a.status, a.p_miss_due, a.p_miss_final, a.eta_p50, a.eta_p90) == (
            b.status, b.p_miss_due, b.p_miss_final, b.eta_p50, b.eta_p90)
        assert [(t.platform_id, t.name, t.shortfall) for t in a.teachers] == [
            (t.platform_id, t.name, t.shortfall) for t in b.teachers]


def test_some_schools_are_read_by_their_codes_and_many_with_every_teacher(
        history: sessionmaker[Session], calendar: WorkCalendar, monkeypatch: pytest.MonkeyPatch) -> None:
    """Schools under ``sums.WIDE`` of all are read by lists of their codes (``CHUNK`` at a time) in
    this process; at ``WIDE`` or more every teacher is read in the workers and the unlisted schools'
    teachers dropped. Either way each listed school gets its own teachers' figures, and only those."""
    import engine.forecast.sums as sums_module

    with history() as s:  # three more schools with teachers (committed: the workers read them too)
        for code, hours in ((EARLY[1], 3.0), (LATE[0], 5.0), (LATE[1], 8.0)):
            s.add_all([Teacher(platform_id=f"T{code}{i}", name=f"教师{i}", school_code=code, online_hours=hours + i)
                       for i in range(2)])
        s.commit()
    pools: list[int] = []
    real = sums_module.forked

    def spied(workers: int, inherited: object = None) -> Any:
        pools.append(workers)
        return real(workers, inherited)

    monkeypatch.setitem(sums_module.__dict__, "forked", spied)
    monkeypatch.setattr(sums_module, "WIDE", 0.5)  # three of the six schools
    with history() as s:
        kept, days = windowed_observations(observation_dates(s, TODAY, WINDOW, calendar), TODAY, calendar, WINDOW)
        alone = {code: teacher_sums(s, None, kept, days, ["online_hours"])[code] for code in (EARLY[0], EARLY[1], LATE[0])}
        pools.clear()
        reads = []
        for chunk in (1, 2):  # a list of one code a statement, then both in one
            monkeypatch.setattr(sums_module, "CHUNK", chunk)
            reads.append(teacher_sums(s, [LATE[0], EARLY[1]], kept, days, ["online_hours"], 2))
        by_codes = list(pools)
        three = teacher_sums(s, [LATE[0], EARLY[0], EARLY[1]], kept, days, ["online_hours"], 2)
    assert by_codes == [] and pools == [2]  # two of six schools in this process; three in two workers
    assert [list(r) for r in reads] == [[EARLY[1], LATE[0]]] * 2 and list(three) == [EARLY[0], EARLY[1], LATE[0]]
    assert three[LATE[0]].current("online_hours").tolist() == [5.0, 6.0]
    for read in (*reads, three):
        for code, got in read.items():
            assert list(got.teacher_ids) == list(alone[code].teacher_ids)
            np.testing.assert_array_equal(got.current("online_hours"), alone[code].current("online_hours"))
            for a, b in zip(got.sums("online_hours"), alone[code].sums("online_hours"), strict=True):
                np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("streamed", [True, False], ids=["streamed in chunks", "a server-side cursor"])
def test_the_read_in_parts_of_two_teachers_is_the_same(history: sessionmaker[Session], calendar: WorkCalendar,
                                                        monkeypatch: pytest.MonkeyPatch, streamed: bool) -> None:
    """Rows come straight from the driver's cursor (on PostgreSQL streamed in chunks, or from a
    server-side cursor where libpq cannot), ``PART`` at a time: in parts of two rows a school's
    teachers are split between parts and its sums are still the one-part read's (and
    forward-filled and summed two teachers at a time)."""
    import engine.forecast.cursor as cursor
    import engine.forecast.sums as sums

    monkeypatch.setattr(cursor, "chunked", lambda: streamed)
    with history() as s:
        if not streamed and s.get_bind().dialect.name != "postgresql":
            pytest.skip("PostgreSQL's choice of cursor (SQLite's is the same either way)")
        kept, days = windowed_observations(observation_dates(s, TODAY, WINDOW, calendar), TODAY, calendar, WINDOW)
        whole = teacher_sums(s, [EARLY[0]], kept, days, ["online_hours"])[EARLY[0]]
        monkeypatch.setattr(cursor, "PART", 2)
        monkeypatch.setattr(sums, "PART", 2)
        parts = list(cursor.parts(s, text("SELECT id FROM teacher ORDER BY id"), {}))
        split = teacher_sums(s, None, kept, days, ["online_hours"])[EARLY[0]]
    assert [len(p) for p in parts] == [2, 2] and [r[0] for p in parts for r in p] == sorted(int(i) for i in whole.teacher_ids)
    assert list(split.teacher_ids) == list(whole.teacher_ids)
    for field in FIELDS:
        np.testing.assert_array_equal(split.current(field), whole.current(field))
        for a, b in zip(split.sums(field), whole.sums(field), strict=True):
            np.testing.assert_array_equal(a, b)


def test_sqlite_reads_the_provinces_teachers_in_order_from_one_index(history: sessionmaker[Session]) -> None:
    """Migration 0015: the present teachers in (school, platform id) order come from an index
    alone — no lookup into the table, no sort (at full size the school_code index read every
    teacher's wide row and sorted them, 3.2 s against 0.5 s; issue 11 speed)."""
    with history() as s:
        if s.get_bind().dialect.name != "sqlite":
            pytest.skip("SQLite's plans (PostgreSQL chooses by its statistics: a test table is read whole)")
        teachers = "SELECT id, school_code FROM teacher WHERE left_on IS NULL ORDER BY school_code, platform_id"
        plan = " | ".join(r[-1] for r in s.execute(text(f"EXPLAIN QUERY PLAN {teachers}")))
    assert plan == "SCAN teacher USING COVERING INDEX ix_teacher_school_order"


def test_the_province_read_on_two_cores_is_the_one_cores(history: sessionmaker[Session], calendar: WorkCalendar,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 11 speed: forked workers read a teacher id range each (their own connection) while
    this process lists the teachers and does the caller's other reads; every teacher's figures and
    sums are the one-process read's, in the same order."""
    import engine.forecast.sums as sums

    pools: list[int] = []
    real = sums.forked

    def spied(workers: int, inherited: object = None) -> object:
        pools.append(workers)
        return real(workers, inherited)

    monkeypatch.setattr(sums, "forked", spied)
    calls: list[str] = []
    with history() as s:
        kept, days = windowed_observations(observation_dates(s, TODAY, WINDOW, calendar), TODAY, calendar, WINDOW)
        one = teacher_sums(s, None, kept, days, ["online_hours", "total_hours"], 1, lambda: calls.append("one"))
        two = teacher_sums(s, None, kept, days, ["online_hours", "total_hours"], 2, lambda: calls.append("two"))
    assert pools == [2] and calls == ["one", "two"]
    assert sorted(two) == sorted(one) == [EARLY[0]]
    got, expected = two[EARLY[0]], one[EARLY[0]]
    assert list(got.teacher_ids) == list(expected.teacher_ids) and got.teachers == 4
    for field in (*FIELDS, "total_hours"):
        np.testing.assert_array_equal(got.current(field), expected.current(field))
        for a, b in zip(got.sums(field), expected.sums(field), strict=True):
            np.testing.assert_array_equal(a, b)


def test_a_province_forecast_on_two_cores_is_the_one_cores(factory: sessionmaker[Session], clock: FixedClock,
                                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``rollout forecast`` for a province splits the read and the model over forked workers
    (``Settings.workers``); a school's numbers and the teachers it names do not change."""
    import engine.forecast.api as api
    import engine.forecast.data as data
    import engine.forecast.school as school
    import engine.forecast.sums as sums
    import engine.forks as forks

    history = studying_school(factory, clock, tmp_path)
    monkeypatch.setattr(data, "SMALL_SCOPE", 0)  # any scope reads sums
    monkeypatch.setattr(school, "CHUNK", 1)  # the test plan's four runs are a "province" of chunks
    monkeypatch.setattr(api, "CHUNK", 1)
    monkeypatch.setattr(forks.threading, "active_count", lambda: 1)  # as the CLI: no other thread
    pools: list[tuple[str, int]] = []
    for module in (sums.__dict__, school.__dict__):  # the read's and the model's pools

        def spied(workers: int, inherited: object = None, real: Any = module["forked"],
                  name: str = module["__name__"]) -> object:
            pools.append((name, workers))
            return real(workers, inherited)

        monkeypatch.setitem(module, "forked", spied)
    found = {}
    for workers in (1, 2):
        with history() as s:
            _, found[workers] = forecast_plan(s, clock, settings=Settings(samples=200, seed=3, method="approximate",
                                                                           workers=workers))
    assert len(found[1]) == 4 and any(f.teachers for f in found[1]) and any(f.status == "ok" for f in found[1])
    assert [asdict(f) for f in found[2]] == [asdict(f) for f in found[1]]
    # The read's pool and the model's: the plan's four schools of six are many (``sums.WIDE``), so
    # every teacher is read, in ranges of ids, and the two schools without a run dropped.
    assert pools == [("engine.forecast.sums", 2), ("engine.forecast.school", 2)]


def test_a_province_forecast_stays_on_one_core_where_forking_is_unsafe(
        factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    """A process with other threads (the scheduler, the web server) never forks: a thread holding
    a lock at the fork leaves the child waiting on it forever. Nor does an in-memory database,
    which a worker could not open; otherwise one worker per core (at most four) or as asked."""
    import os

    import engine.forecast.cores as cores
    import engine.forks as forks
    from engine.db import make_engine, sessions

    monkeypatch.setattr(forks.threading, "active_count", lambda: 1)
    with factory() as s:
        assert cores.workers_for(s, 0) == min(os.cpu_count() or 1, 4)
        assert cores.workers_for(s, 3) == 3 and cores.workers_for(s, 1) == 1
        monkeypatch.setattr(forks.threading, "active_count", lambda: 2)
        assert cores.workers_for(s, 0) == cores.workers_for(s, 3) == 1
    monkeypatch.setattr(forks.threading, "active_count", lambda: 1)
    memory = make_engine("sqlite://")
    with sessions(memory)() as s:
        assert cores.workers_for(s, 0) == cores.workers_for(s, 2) == 1
