"""The forecast's inputs read from a real database (both): each run's ``RunInput`` is made when
it is read — a province's in the workers that forecast them — from its own school's history."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy.orm import Session, sessionmaker

from engine.calendar import load_calendar
from engine.clock import FixedClock
from engine.deadline import local_date
from engine.forecast.data import (
    EMPTY,
    FIELDS,
    RunInputs,
    observation_dates,
    open_runs,
    run_inputs,
    teacher_histories,
)
from engine.forecast.school import WINDOW
from engine.forecast.sums import Schools
from engine.models import Teacher
from engine.plan import find_plan
from engine.workflow.versions import workflow_for_version
from tests.engine.builders import (
    CITY,
    COUNTY,
    EARLY,
    LATE,
    OTHER,
    OTHER_COUNTY,
    PILOT,
    PROVINCE,
    run_of,
)
from tests.engine.forecast.scenario import studying_school


class Spy(dict[str, Any]):
    """A school → history mapping that records which schools were read."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.read: list[str] = []

    def get(self, key: str, default: Any = None) -> Any:
        self.read.append(key)
        return super().get(key, default)


def test_each_runs_input_is_made_when_read_from_its_own_schools_history(
        factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    studying = studying_school(factory, clock, tmp_path)
    with studying() as s:
        plan = find_plan(s, None)
        wf = workflow_for_version(s, plan.workflow_version_id)
        calendar = load_calendar(s)
        today = local_date(clock.now(), plan.timezone)
        runs = open_runs(s, plan, wf, clock.now())
        inputs = run_inputs(s, plan, wf, runs, today, calendar, WINDOW)
        final = plan.final_deadline
    assert len(runs) >= 2 and len(inputs) == len(runs)
    made = inputs[0]
    studied = next(i for i, r in enumerate(runs) if r.school_code == EARLY[0])
    assert made.run_id == runs[0].run_id and made.final == final and made.today == today
    # online study since 2021-07-01, today 2021-08-02: 22 working days in the stage
    assert inputs[studied].elapsed == calendar.working_days_between(runs[studied].entered, today) == 22
    assert inputs[studied].history.teachers == 10  # the scenario's ten teachers, read from its exports
    assert [r.run_id for r in inputs[1:]] == [r.run_id for r in runs[1:]]

    histories = Spy({EARLY[0]: inputs[studied].history})
    values: dict[int, dict[str, float | None]] = {r.run_id: {} for r in runs}
    lazy = RunInputs(runs, today, final, calendar, histories, values, {})
    assert histories.read == []  # nothing made yet
    part = lazy[studied:studied + 1]
    assert histories.read == [EARLY[0]] and part[0].history is histories[EARLY[0]]
    other = next(i for i, r in enumerate(runs) if r.school_code != EARLY[0])
    assert lazy[other].history is EMPTY  # a school without teachers: none, not another's
    assert lazy[other].names == () and lazy[other].elapsed == inputs[other].elapsed
    assert lazy[-1].run_id == runs[-1].run_id
    with pytest.raises(IndexError):
        lazy[len(runs)]


def test_a_schools_sums_are_its_own_rows_of_the_provinces_arrays() -> None:
    ids = np.array([11, 12, 21, 22, 23], dtype=np.int64)
    latest = {"online_hours": np.array([1.0, 2.0, 3.0, 4.0, 5.0])}
    totals = {"online_hours": (np.arange(5.0), np.arange(5.0) * 2, np.full(5, 7.0))}
    days = np.array([-10, 0])
    schools = Schools(ids, days, latest, totals, [("A", 2), ("B", 3)])
    assert list(schools) == ["A", "B"] and len(schools) == 2 and "B" in schools and "C" not in schools
    b = schools["B"]
    assert b.teacher_ids.tolist() == [21, 22, 23] and b.current("online_hours").tolist() == [3.0, 4.0, 5.0]
    assert [v.tolist() for v in b.sums("online_hours")] == [[2.0, 3.0, 4.0], [4.0, 6.0, 8.0], [7.0] * 3]
    assert schools["A"].teacher_ids.tolist() == [11, 12] and schools.get("C") is None


def test_open_runs_are_the_started_unparked_runs_of_the_region_asked(
        factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    """LATE's batch starts on 2021-09-01: not open on 2021-08-02. A region is a county, a city or
    the province; a run is open from the instant it started."""
    studying = studying_school(factory, clock, tmp_path)
    with studying() as s:
        plan = find_plan(s, None)
        wf = workflow_for_version(s, plan.workflow_version_id)
        now = clock.now()

        def codes(**kw: Any) -> list[str]:
            return [r.school_code for r in open_runs(s, plan, wf, kw.pop("at", now), **kw)]

        everyone = open_runs(s, plan, wf, now)
        assert sorted(codes()) == sorted([PILOT, *EARLY, OTHER]) and not set(LATE) & set(codes())
        assert [r.run_id for r in everyone] == sorted(r.run_id for r in everyone)
        assert sorted(codes(region=COUNTY)) == sorted([PILOT, *EARLY]) and codes(region=OTHER_COUNTY) == [OTHER]
        assert sorted(codes(region=CITY)) == sorted(codes(region=PROVINCE)) == sorted(codes())
        assert codes(region=COUNTY, school=EARLY[1]) == [EARLY[1]] and codes(region=OTHER_COUNTY, school=EARLY[1]) == []
        assert {(r.county_code, r.city_code) for r in everyone if r.school_code != OTHER} == {(COUNTY, CITY)}
        assert [(r.county_code, r.city_code) for r in everyone if r.school_code == OTHER] == [(OTHER_COUNTY, CITY)]
        started = run_of(s, EARLY[1]).started_at
        assert EARLY[1] in codes(at=started) and EARLY[1] not in codes(at=started - timedelta(microseconds=1))


def test_the_window_reads_the_imports_inside_it_and_the_one_before(
        factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    """Exports as of 07-05, 07-19 and 08-02 (today). Ten working days back is 07-19 itself: inside,
    so 07-05 is the one before; five back (07-26) keeps 07-19 as the one before; with none inside,
    the last export alone."""
    studying = studying_school(factory, clock, tmp_path)
    with studying() as s:
        calendar = load_calendar(s)

        def days(today: date, window: int) -> list[date]:
            return [d for _, d in observation_dates(s, today, window, calendar)]

        exports = [date(2021, 7, 5), date(2021, 7, 19), date(2021, 8, 2)]
        assert days(date(2021, 8, 2), 10) == exports
        assert days(date(2021, 8, 2), 5) == exports[1:]
        assert days(date(2021, 9, 30), 5) == exports[2:]
        assert days(date(2021, 7, 19), 5) == exports[:2]  # an export after today is not yet known


def test_each_school_of_a_read_gets_its_own_present_teachers_in_platform_order(
        factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    """Three schools read together (OTHER's code sorts first) give each its own teachers, as read
    alone; a teacher who left is in none."""
    studying = studying_school(factory, clock, tmp_path)
    with studying() as s:
        s.add_all([Teacher(platform_id="T-other-2", name="邻县教师乙", school_code=OTHER, online_hours=7.0),
                   Teacher(platform_id="T-other-1", name="邻县教师甲", school_code=OTHER, online_hours=3.0),
                   Teacher(platform_id="T-next-door", name="邻校教师", school_code=EARLY[1], online_hours=5.0),
                   Teacher(platform_id=f"T{EARLY[0]}99", name="已调离", school_code=EARLY[0], online_hours=30.0,
                           left_on=date(2021, 7, 30))])
        s.flush()
        calendar = load_calendar(s)
        today = date(2021, 8, 2)
        observations = observation_dates(s, today, WINDOW, calendar)
        together, names = teacher_histories(s, [EARLY[1], EARLY[0], OTHER], observations, today, calendar)
        alone, _ = teacher_histories(s, [EARLY[0]], observations, today, calendar)
    assert sorted(together) == sorted([EARLY[0], EARLY[1], OTHER]) and list(alone) == [EARLY[0]]
    assert together[OTHER].teacher_ids == ("T-other-1", "T-other-2") and names[OTHER] == ("邻县教师甲", "邻县教师乙")
    assert together[OTHER].current("online_hours").tolist() == [3.0, 7.0]
    assert together[EARLY[1]].teacher_ids == ("T-next-door",)
    mine = together[EARLY[0]]
    assert mine.teacher_ids == alone[EARLY[0]].teacher_ids and len(mine.teacher_ids) == 10
    assert f"T{EARLY[0]}99" not in mine.teacher_ids  # left: not counted, not forecast
    assert list(mine.teacher_ids) == sorted(mine.teacher_ids)
    for field in FIELDS:
        np.testing.assert_array_equal(mine.field(field), alone[EARLY[0]].field(field))
    assert mine.current("online_hours").tolist() == [10.0] * 9 + [2.0]  # the third export's hours
