"""engine.tally: the per-county counts the overview reads are a recount of the runs, after every
kind of change, and a tampered or missing tally is found (``audit verify``) or rebuilt."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, func, select, true, update
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import FixedClock
from engine.db import transaction
from engine.deadline import local_date
from engine.facts import set_fact
from engine.imports.schools import import_schools
from engine.models import Plan, School, SchoolRun, Teacher
from engine.plan import find_plan
from engine.projection import verify_state
from engine.rates import rate_values
from engine.records import RateTally, RunTally
from engine.run_status import refresh
from engine.runs import fire
from engine.school_state import state_case
from engine.status import status_table
from engine.tally import plan_in_region, rate_tallies, tally_drift
from engine.workflow.versions import workflow_for_version
from tests.engine.builders import (
    CITY,
    COUNTY,
    COUNTY_OFFICER,
    EARLY,
    OTHER,
    OTHER_COUNTY,
    PILOT,
    add_teachers,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _live_states(s: Session, clock: FixedClock) -> dict[str, Counter[str]]:
    """County → state → schools, counted from the runs by the SQL form of the state rule."""
    plan = find_plan(s, None)
    wf = workflow_for_version(s, plan.workflow_version_id)
    now = clock.now()
    state = state_case(wf, now, local_date(now, plan.timezone))
    out: dict[str, Counter[str]] = {}
    for county, st, n in s.execute(select(School.county_code, state, func.count())
                                   .join(SchoolRun, SchoolRun.school_code == School.code)
                                   .where(SchoolRun.withdrawn_at.is_(None)).group_by(School.county_code, state)):
        out.setdefault(county, Counter())[st] += n
    return out


def _tallied_states(s: Session, clock: FixedClock) -> dict[str, Counter[str]]:
    _wf, rows = status_table(s, clock)
    return {r.region_code: Counter({k: v for k, v in r.states.items() if v}) for r in rows}


def test_counts_follow_facts_transitions_teachers_and_time(plan: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(plan) as s:
        assert _tallied_states(s, clock) == _live_states(s, clock)
        set_fact(s, clock, school_code=EARLY[0], name="plan_filed", value=1, actor=COUNTY_OFFICER)
        add_teachers(s, EARLY[0], 3)
        refresh(s, true())  # what a progress import does after writing teachers
        set_fact(s, clock, school_code=EARLY[0], name="team_members", value=3, actor=COUNTY_OFFICER)
        fire(s, clock, school_code=EARLY[0], trigger="advance", actor=COUNTY_OFFICER)
        fire(s, clock, school_code=OTHER, trigger="suspend", actor=COUNTY_OFFICER, reason="停课")
        assert tally_drift(s, find_plan(s, None).id) == []
        assert _tallied_states(s, clock) == _live_states(s, clock)
        assert _tallied_states(s, clock)[OTHER_COUNTY] == Counter({"suspended": 1})
    # Time alone moves schools from in progress to overdue: the tally stores dates, not states.
    clock.set(datetime(2021, 10, 8, 9, tzinfo=SHANGHAI))
    with transaction(plan) as s:
        counts = _tallied_states(s, clock)
        assert counts == _live_states(s, clock)
        assert counts[COUNTY]["overdue"] == 1  # EARLY[1], still planning past 09-30


def test_rates_from_tallies_equal_the_rates_counted_live(plan: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(plan) as s:
        add_teachers(s, EARLY[0], 10)
        add_teachers(s, EARLY[1], 4, online=30, practice=10, evidence=0, result=None)
        add_teachers(s, OTHER, 2, online=0, practice=0, points=0, evidence=0, result=None)
        refresh(s, true())
        set_fact(s, clock, school_code=EARLY[0], name="plan_filed", value=1, actor=COUNTY_OFFICER)
        p = find_plan(s, None)
        wf = workflow_for_version(s, p.workflow_version_id)
        live = rate_values(s, wf, p.id, School.county_code)
        assert rate_tallies(s, p.id, "county") == live
        assert live[COUNTY]["participation"].denominator == 14 and live[OTHER_COUNTY]["participation"].denominator == 2
        city = rate_tallies(s, p.id, "city", level="city", region=CITY)
        assert city == rate_values(s, wf, p.id, School.city_code)
        assert rate_tallies(s, p.id, "county", level="county", region=OTHER_COUNTY).keys() == {OTHER_COUNTY}


def test_an_import_counts_the_rates_in_the_metric_pass_and_others_count_their_own(
        plan: sessionmaker[Session], clock: FixedClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """A refresh of every run (a progress import) counts the tallies' teacher rates in the pass
    that measures the gates — one read of the teachers, not two; a refresh of some runs leaves
    the tallies to count for themselves. Either way the tallies are a recount of the teachers,
    and a teacher who has left the school (``--full``) is in neither."""
    import engine.tally as tally

    given: list[bool] = []
    real = tally.rate_values

    def spied(*args: Any, **kwargs: Any) -> Any:
        given.append(kwargs.get("per_school") is not None)
        return real(*args, **kwargs)

    monkeypatch.setattr(tally, "rate_values", spied)
    with transaction(plan) as s:
        add_teachers(s, EARLY[0], 3)
        add_teachers(s, EARLY[1], 2, online=10, result=None)
        add_teachers(s, OTHER, 4, practice=5)
        s.execute(update(Teacher).where(Teacher.platform_id == f"T{OTHER}0003").values(left_on=date(2021, 9, 30)))
        given.clear()
        refresh(s, true())
        assert given == [True]
        p = find_plan(s, None)
        live = rate_values(s, workflow_for_version(s, p.workflow_version_id), p.id, School.county_code)
        assert rate_tallies(s, p.id, "county") == live and tally_drift(s, p.id) == []
        assert live[OTHER_COUNTY]["participation"].denominator == 3  # the fourth has left
        assert live[COUNTY]["participation"].denominator == 5
        given.clear()
        add_teachers(s, EARLY[0], 1, start=3)  # one school's refresh
        assert given == [False]
        assert rate_tallies(s, p.id, "county")[COUNTY]["participation"].denominator == 6
        assert tally_drift(s, p.id) == []


def test_a_school_moved_to_another_county_moves_its_count(plan: sessionmaker[Session], clock: FixedClock,
                                                          tmp_path: Path) -> None:
    moved = tmp_path / "schools.csv"
    moved.write_text("学校标识码,学校名称,所属区县代码,学校类型,是否农村\n"
                     f"{PILOT},试点学校,{OTHER_COUNTY},小学,否\n", encoding="utf-8")
    with transaction(plan) as s:
        before = {r.region_code: r.schools for r in status_table(s, clock)[1]}
    with transaction(plan) as s:
        import_schools(s, moved)
    with transaction(plan) as s:
        after = {r.region_code: r.schools for r in status_table(s, clock)[1]}
        assert after == {COUNTY: before[COUNTY] - 1, OTHER_COUNTY: before[OTHER_COUNTY] + 1}
        assert tally_drift(s, find_plan(s, None).id) == []


def test_a_tampered_tally_is_reported_and_a_missing_one_rebuilt(plan: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(plan) as s:
        plan_id = s.scalars(select(Plan.id)).one()
        s.execute(update(RunTally).where(RunTally.county_code == OTHER_COUNTY).values(runs=RunTally.runs + 5))
    with transaction(plan) as s:
        assert tally_drift(s, plan_id) == [OTHER_COUNTY]
        problems = [p for p in verify_state(s).problems if p.kind == "tally"]
        assert len(problems) == 1 and OTHER_COUNTY in problems[0].message
        s.execute(delete(RunTally))
        s.execute(delete(RateTally))
    with transaction(plan) as s:  # a database upgraded to 0011: tallied on first read
        assert _tallied_states(s, clock) == _live_states(s, clock)
        assert tally_drift(s, plan_id) == []


def test_a_database_upgraded_without_tallies_still_lists_its_plan(plan: sessionmaker[Session]) -> None:
    with transaction(plan) as s:
        s.execute(delete(RunTally))
        s.execute(delete(RateTally))
    with transaction(plan) as s:
        found = s.scalars(select(Plan.code).where(plan_in_region(s, Plan.id, "county", OTHER_COUNTY))).all()
        assert found == [find_plan(s, None).code]
        assert s.scalars(select(Plan.code).where(plan_in_region(s, Plan.id, "county", "370399"))).all() == []
