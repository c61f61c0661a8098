"""Stored risk (both databases): each run's latest forecast kept by ``store_risks`` (the sweep and
``rollout forecast --store``), read back per run, counted per region at a threshold, and shown as
stale after a later progress import, a stage change, or age."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import FixedClock
from engine.forecast import (
    Settings,
    at_risk_clause,
    at_risk_counts,
    forecast_plan,
    run_risk,
    run_risks,
    store_risks,
)
from engine.forecast.school import SchoolForecast
from engine.imports.progress import import_progress
from engine.models import ProgressImport, School, SchoolRun
from engine.records import RunRisk
from service import run_sweep
from tests.conftest import SHANGHAI
from tests.engine.builders import COUNTY, EARLY, LATE, OTHER, OTHER_COUNTY, PILOT
from tests.engine.forecast.scenario import export, slow_teacher_hours, studying_school

FAST = Settings(samples=200, seed=1)
# school → (p_miss_due, p_miss_final): at 0.7, COUNTY has EARLY[0] (due) and LATE[0] (final), OTHER_COUNTY has OTHER.
RISKS = {PILOT: (0.1, 0.2), EARLY[0]: (0.9, None), EARLY[1]: (None, None), LATE[0]: (0.3, 0.7), LATE[1]: (0.69, 0.0),
         OTHER: (1.0, 1.0)}


@pytest.fixture
def studying(factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> sessionmaker[Session]:
    return studying_school(factory, clock, tmp_path)


def constructed(s: Session) -> tuple[int, list[SchoolForecast]]:
    runs = s.execute(select(SchoolRun.id, SchoolRun.school_code, SchoolRun.state, SchoolRun.plan_id)).all()
    out = []
    for run_id, code, state, _ in runs:
        due, final = RISKS[code]
        status = "no_history" if due is None and final is None else "ok"
        out.append(SchoolForecast(run_id, code, state, status, date(2021, 9, 30), date(2022, 11, 30), due, final,
                                  eta_p50=date(2021, 9, 1), teachers_at_risk=2 if due else 0))
    return runs[0][3], out


def counts(s: Session, *args: Any, **kwargs: Any) -> dict[Any, int]:
    """``at_risk_counts`` both ways — from the plan's stored risks and from the region's schools
    (``few_schools``, a county's or city's page) — which must always agree."""
    found = at_risk_counts(s, *args, **kwargs)
    assert at_risk_counts(s, *args, **kwargs, few_schools=True) == found
    return found


def store_constructed(factory: sessionmaker[Session], clock: FixedClock) -> int:
    with factory() as s, s.begin():
        plan_id, found = constructed(s)
        assert store_risks(s, plan_id, found, clock.now(), date(2021, 8, 2), FAST, "cli") == len(RISKS)
    return plan_id


def test_counts_per_county_at_a_threshold_exactly(studying: sessionmaker[Session], clock: FixedClock) -> None:
    plan_id = store_constructed(studying, clock)
    with studying() as s:
        now = clock.now()
        assert counts(s, plan_id, School.county_code, threshold=0.7, now=now) == {COUNTY: 2, OTHER_COUNTY: 1}
        assert counts(s, plan_id, School.county_code, threshold=0.69, now=now) == {COUNTY: 3, OTHER_COUNTY: 1}
        assert counts(s, plan_id, School.city_code, threshold=0.95, now=now) == {"370300": 1}
        assert counts(s, plan_id, School.county_code, School.county_code == COUNTY, threshold=0.5,
                              now=now) == {COUNTY: 3}
        assert counts(s, plan_id, School.county_code, threshold=0.7, now=now, stale=True) == {}
        one = run_risk(s, s.scalar(select(SchoolRun.id).where(SchoolRun.school_code == EARLY[0])) or 0, now)
    assert one is not None and (one.p_miss_due, one.p_miss_final, one.risk, one.stale) == (0.9, None, 0.9, False)
    assert one.as_of == date(2021, 8, 2) and one.teachers_at_risk == 2 and one.eta_p50 == date(2021, 9, 1)


def test_storing_again_replaces_not_duplicates(studying: sessionmaker[Session], clock: FixedClock) -> None:
    store_constructed(studying, clock)
    clock.advance(timedelta(hours=1))
    store_constructed(studying, clock)
    with studying() as s:
        assert s.scalar(select(func.count()).select_from(RunRisk)) == len(RISKS)
        assert set(s.scalars(select(RunRisk.computed_at))) == {clock.now()}


def test_a_later_import_makes_the_risk_stale(studying: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    plan_id = store_constructed(studying, clock)
    clock.advance(timedelta(days=1))
    import_progress(studying.kw["bind"], export(tmp_path / "later.csv", slow_teacher_hours(3)), as_of=date(2021, 8, 3),
                    clock=clock)
    with studying() as s:
        now = clock.now()
        assert counts(s, plan_id, School.county_code, threshold=0.7, now=now) == {}
        assert counts(s, plan_id, School.county_code, threshold=0.7, now=now, stale=True) == {COUNTY: 2, OTHER_COUNTY: 1}
        risks = run_risks(s, s.scalars(select(SchoolRun.id)), now)
    assert {r.stale_reason for r in risks.values()} == {"new_import"}


def test_age_and_a_stage_change_make_it_stale(studying: sessionmaker[Session], clock: FixedClock) -> None:
    plan_id = store_constructed(studying, clock)
    with studying() as s, s.begin():
        s.execute(update(SchoolRun).where(SchoolRun.school_code == OTHER).values(state="school_practice"))
    with studying() as s:
        now = clock.now()
        assert counts(s, plan_id, School.county_code, threshold=0.7, now=now) == {COUNTY: 2}
        other = s.scalar(select(SchoolRun.id).where(SchoolRun.school_code == OTHER)) or 0
        assert (r := run_risk(s, other, now)) is not None and r.stale_reason == "stage_changed"
        later = now + timedelta(days=8)
        assert counts(s, plan_id, School.county_code, threshold=0.7, now=later) == {}
        assert counts(s, plan_id, School.county_code, threshold=0.7, now=later, max_age_days=10) == {COUNTY: 2}
        early = s.scalar(select(SchoolRun.id).where(SchoolRun.school_code == EARLY[0])) or 0
        assert (r := run_risk(s, early, later)) is not None and r.stale_reason == "too_old"


def test_the_real_forecast_stored_matches_what_it_said(studying: sessionmaker[Session], clock: FixedClock) -> None:
    with studying() as s, s.begin():
        plan, found = forecast_plan(s, clock, settings=FAST)
        store_risks(s, plan.id, found, clock.now(), date(2021, 8, 2), FAST, "cli")
        last = s.scalar(select(func.max(ProgressImport.id)))
    with studying() as s:
        stored = run_risks(s, [f.run_id for f in found], clock.now())
    for f in found:
        r = stored[f.run_id]
        assert (r.p_miss_due, r.p_miss_final, r.eta_p50, r.eta_p90, r.status) == (
            f.p_miss_due, f.p_miss_final, f.eta_p50, f.eta_p90, f.status)
    with studying() as s:
        assert set(s.scalars(select(RunRisk.as_of_import_id))) == {last}


def test_the_sweep_stores_the_risk_it_warned_on(factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    studying_school(factory, clock, tmp_path, warn=0.7)
    clock.set(datetime(2021, 8, 2, 20, tzinfo=SHANGHAI))
    with factory() as s, s.begin():
        run_sweep(s, clock)
    with factory() as s:
        rows = {code: (risk, source) for code, risk, source in s.execute(
            select(SchoolRun.school_code, RunRisk.risk, RunRisk.source).join(SchoolRun, SchoolRun.id == RunRisk.run_id))}
    assert rows[EARLY[0]] == (1.0, "sweep")  # the slow teacher: surely late (test_api)
    assert set(rows) == {PILOT, *EARLY, OTHER}  # the runs forecast; LATE schools start in September


def test_the_at_risk_list_holds_exactly_the_counted_schools(studying: sessionmaker[Session], clock: FixedClock) -> None:
    plan_id = store_constructed(studying, clock)
    with studying() as s:
        listed = set(s.scalars(select(SchoolRun.school_code).where(at_risk_clause(s, plan_id, 0.7, clock.now()))))
        assert listed == {EARLY[0], LATE[0], OTHER}
        # A stage change makes that school's stored risk stale: it leaves the list and the count.
        s.execute(update(SchoolRun).where(SchoolRun.school_code == OTHER).values(state="practice"))
        listed = set(s.scalars(select(SchoolRun.school_code).where(at_risk_clause(s, plan_id, 0.7, clock.now()))))
        assert listed == {EARLY[0], LATE[0]}
        assert counts(s, plan_id, School.county_code, threshold=0.7, now=clock.now()) == {COUNTY: 2}
