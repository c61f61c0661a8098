"""The forecast read from a real database (both): open runs, history from progress imports with
their as-of dates, stage durations from the audit trail, the region summary."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from engine.calendar import load_calendar
from engine.clock import FixedClock
from engine.deadline import local_date
from engine.forecast import (
    Settings,
    StageDurations,
    forecast_plan,
    school_forecast,
    schools_at_risk,
)
from engine.forecast.api import DURATIONS_FRESH, recent_durations
from engine.forecast.data import stage_durations
from engine.plan import find_plan
from engine.runs import fire
from engine.workflow.versions import workflow_for_version
from tests.conftest import SHANGHAI
from tests.engine.builders import COUNTY, COUNTY_OFFICER, EARLY, LATE, OTHER, PILOT
from tests.engine.forecast.scenario import studying_school

FAST = Settings(samples=300, seed=1)


@pytest.fixture
def studying(factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> sessionmaker[Session]:
    return studying_school(factory, clock, tmp_path)


def test_a_school_with_history_is_forecast_and_its_slow_teacher_named(studying: sessionmaker[Session], clock: FixedClock) -> None:
    with studying() as s:
        plan, found = forecast_plan(s, clock, settings=FAST)
    by_school = {f.school_code: f for f in found}
    assert set(by_school) == {PILOT, *EARLY, OTHER}  # LATE schools start in September
    f = by_school[EARLY[0]]
    assert f.status == "ok" and f.stage == "online_study" and f.p_miss_due is not None
    assert f.explain["observations"] == [-20, -10, 0]  # working days before 2021-08-02
    # 0.05 h a working day against 23.5 h short: the slow teacher cannot make the due date.
    assert f.p_miss_due == 1.0 and f.teachers_at_risk == 1
    assert f.teachers[0].platform_id == f"T{EARLY[0]}09" and f.teachers[0].shortfall == 23.0
    # Still in planning, with a fact gate only one school has passed: no basis yet, and it says so.
    assert by_school[EARLY[1]].status == "no_history" and by_school[EARLY[1]].reason


def test_the_forecast_sees_only_what_was_known_on_the_day(studying: sessionmaker[Session], clock: FixedClock) -> None:
    clock.set(datetime(2021, 7, 12, 9, tzinfo=SHANGHAI))  # one export known: no pace yet
    with studying() as s:
        f = school_forecast(s, clock, EARLY[0], settings=FAST)
    assert f is not None and f.status == "no_history"
    clock.set(datetime(2021, 7, 20, 9, tzinfo=SHANGHAI))
    with studying() as s:
        f = school_forecast(s, clock, EARLY[0], settings=FAST)
    assert f is not None and f.status == "ok" and len(f.explain["observations"]) == 2


def test_region_summary_counts_schools_at_risk(studying: sessionmaker[Session], clock: FixedClock) -> None:
    with studying() as s:
        rows = schools_at_risk(s, clock, threshold=0.7, settings=FAST)
    county = next(r for r in rows if r.code == COUNTY)
    assert (county.schools, county.at_risk, county.school_codes) == (3, 1, [EARLY[0]])  # pilot, EARLY
    assert county.no_history == 2 and county.name == "沂源县"  # the pilot and EARLY[1] wait on facts


def test_a_finished_or_unstarted_school_has_no_forecast(studying: sessionmaker[Session], clock: FixedClock) -> None:
    with studying() as s:
        assert school_forecast(s, clock, LATE[0], settings=FAST) is None


def test_a_suspended_school_is_not_forecast_until_it_resumes(studying: sessionmaker[Session], clock: FixedClock) -> None:
    """A parked run (a ``hold`` stage) is no one's to chase: not forecast, nor counted at risk."""
    with studying() as s:
        assert school_forecast(s, clock, EARLY[0], settings=FAST) is not None
        fire(s, clock, school_code=EARLY[0], trigger="suspend", actor=COUNTY_OFFICER, reason="校舍维修")
        s.commit()
        _, found = forecast_plan(s, clock, settings=FAST)
        assert found and EARLY[0] not in {f.school_code for f in found}
        fire(s, clock, school_code=EARLY[0], trigger="resume", actor=COUNTY_OFFICER)
        s.commit()
        resumed = school_forecast(s, clock, EARLY[0], settings=FAST)
    assert resumed is not None and resumed.stage == "online_study"


def test_deterministic_across_calls(studying: sessionmaker[Session], clock: FixedClock) -> None:
    clock.advance(timedelta(hours=1))
    with studying() as s:
        a = school_forecast(s, clock, EARLY[0], settings=Settings(samples=300, seed=3))
        b = school_forecast(s, clock, EARLY[0], settings=Settings(samples=300, seed=3))
    assert a is not None and b is not None and (a.p_miss_due, a.eta_p50, a.eta_p90) == (b.p_miss_due, b.eta_p50, b.eta_p90)


def test_a_province_reads_history_unfiltered_with_the_same_result(studying: sessionmaker[Session], clock: FixedClock,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Up to SMALL_SCOPE teachers the history is read by teacher id (a school's page); above it, for
    every teacher at once (a province): the same forecasts either way."""
    import engine.forecast.data as data

    with studying() as s:
        _, by_id = forecast_plan(s, clock, settings=FAST)
    monkeypatch.setattr(data, "SMALL_SCOPE", 0)
    with studying() as s:
        _, whole = forecast_plan(s, clock, settings=FAST)
    assert [(f.school_code, f.p_miss_due, f.eta_p50, f.explain["observations"]) for f in whole] == \
        [(f.school_code, f.p_miss_due, f.eta_p50, f.explain["observations"]) for f in by_id]
    assert any(f.status == "ok" for f in whole)



def test_stage_durations_are_read_again_when_the_trail_grew_and_the_read_is_old(studying: sessionmaker[Session],
                                                                               clock: FixedClock) -> None:
    """An unchanged trail: the same read all day. A grown one: the read serves 15 more minutes (a
    working province's trail grows every minute, and one more stay hardly moves the curve)."""
    def both(s: Session) -> tuple[dict[str, StageDurations], dict[str, StageDurations]]:
        plan = find_plan(s, None)
        wf = workflow_for_version(s, plan.workflow_version_id)
        cal, now = load_calendar(s), clock.now()
        today = local_date(now, plan.timezone)
        return recent_durations(s, plan, wf, now, today, cal), stage_durations(s, plan, wf, now, today, cal)

    with studying() as s:
        remembered, first = both(s)
        assert remembered == first
        assert both(s)[0] is remembered  # the same trail, the same day: not read again
        fire(s, clock, school_code=EARLY[0], trigger="suspend", actor=COUNTY_OFFICER, reason="校舍维修")
        s.commit()
        remembered, fresh = both(s)
        assert fresh != first and remembered == first  # a new event, but the read is 0 minutes old
        assert fresh["suspended"].ongoing == (0,)
    clock.set(clock.now() + DURATIONS_FRESH - timedelta(seconds=1))
    with studying() as s:
        assert both(s)[0] == first  # still within the quarter hour
    clock.set(clock.now() + timedelta(seconds=1))
    with studying() as s:
        remembered, fresh = both(s)
        assert remembered == fresh and fresh["suspended"].ongoing == (0,)  # read again
    clock.set(clock.now() + timedelta(days=7))  # a later day: the ongoing stays are longer
    with studying() as s:
        remembered, fresh = both(s)
        assert remembered == fresh and fresh["suspended"].ongoing == (5,)
