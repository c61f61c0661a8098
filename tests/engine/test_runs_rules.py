"""Bulk advances over a plan whose schools follow two workflow versions (docs/changing-mid-year.md):
each school is judged, and moved, by the rules of the version it is on."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import FixedClock
from engine.db import transaction
from engine.facts import set_fact
from engine.models import SchoolRun, Teacher
from engine.run_status import refresh
from engine.runs import advance_all_ready, advance_auto, fire
from engine.version_apply import apply_move
from tests.engine.builders import (
    CITY_OFFICER,
    COUNTY_OFFICER,
    EARLY,
    OTHER,
    OTHER_COUNTY,
    add_teachers,
    run_of,
    seed_with_plan,
)
from tests.engine.version_builders import online_20h, register_variant

STUDYING = (*EARLY, OTHER)


def _set_hours(s: Session, code: str, hours: float) -> None:
    """A progress import of ``code``'s teachers at ``hours`` online, refreshing its stored status."""
    s.execute(update(Teacher).where(Teacher.school_code == code).values(online_hours=hours))
    refresh(s, SchoolRun.school_code == code)


@pytest.fixture
def two_versions(factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> sessionmaker[Session]:
    """b2's schools in online study, all three teachers of each at 22 h (EARLY[1] at 18 h);
    淄川区 (OTHER) moved to version 2, where 20 hours are enough, the rest still on version 1 (25 h)."""
    with transaction(factory) as s:
        seed_with_plan(s, clock, tmp_path)
        for code, hours in zip(STUDYING, (22, 18, 22), strict=True):
            add_teachers(s, code, 3, online=hours, practice=0, evidence=0)
            set_fact(s, clock, school_code=code, name="plan_filed", value=1, actor=COUNTY_OFFICER)
            set_fact(s, clock, school_code=code, name="team_members", value=4, actor=COUNTY_OFFICER)
            fire(s, clock, school_code=code, trigger="advance", actor=COUNTY_OFFICER)
        register_variant(s, clock, "2", online_20h)
        apply_move(s, clock, plan_code="yiyuan-2021", to="whole-school-2.0@2", region=OTHER_COUNTY,
                   reason="淄川区先按20学时", actor=CITY_OFFICER)
    return factory


def test_the_sweep_judges_each_school_by_its_own_version(two_versions: sessionmaker[Session],
                                                         clock: FixedClock) -> None:
    """22 hours pass version 2's gate and fail version 1's. Then the other way round: a version with
    no school ready never keeps the other version's ready schools from moving."""
    with transaction(two_versions) as s:
        assert advance_auto(s, clock) == 1  # version 1 has no school ready, version 2 has OTHER
        assert {c: run_of(s, c).state for c in STUDYING} == {
            EARLY[0]: "online_study", EARLY[1]: "online_study", OTHER: "practice"}
    with transaction(two_versions) as s:
        _set_hours(s, EARLY[0], 25)
    with transaction(two_versions) as s:
        assert advance_auto(s, clock) == 1  # now version 1 has a ready school, version 2 none
        assert {c: run_of(s, c).state for c in STUDYING} == {
            EARLY[0]: "practice", EARLY[1]: "online_study", OTHER: "practice"}


def test_an_officers_bulk_advance_moves_each_version_ready_school_once(two_versions: sessionmaker[Session],
                                                                       clock: FixedClock) -> None:
    with transaction(two_versions) as s:
        result = advance_all_ready(s, clock, actor=COUNTY_OFFICER)
        assert (result.advanced, dict(result.moves)) == (1, {("online_study", "practice"): 1})
        assert run_of(s, OTHER).state == "practice" and run_of(s, EARLY[0]).state == "online_study"
        assert result.blocked_by["online_25h"] == 2  # EARLY's two, on version 1


def test_a_school_moved_into_a_source_stage_after_the_measurement_waits_for_the_next_pass(
        factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A concurrent commit resumes EARLY[0] into planning after the bulk advance measured: it was not
    measured, so it is left for the next pass, and the schools that were measured and ready still move."""
    import engine.runs as runs_module

    with transaction(factory) as s:
        seed_with_plan(s, clock, tmp_path)
        fire(s, clock, school_code=EARLY[0], trigger="suspend", actor=COUNTY_OFFICER, reason="合并")
        for code in (*EARLY, OTHER):
            set_fact(s, clock, school_code=code, name="plan_filed", value=1, actor=COUNTY_OFFICER)
            set_fact(s, clock, school_code=code, name="team_members", value=4, actor=COUNTY_OFFICER)
    measure = runs_module.metric_values

    def meanwhile(session: Session, *args: object, **kwargs: object) -> object:
        values = measure(session, *args, **kwargs)  # type: ignore[arg-type]
        session.execute(update(SchoolRun).where(SchoolRun.school_code == EARLY[0]).values(state="planning"))
        return values

    monkeypatch.setattr(runs_module, "metric_values", meanwhile)
    with transaction(factory) as s:
        result = advance_all_ready(s, clock, actor=COUNTY_OFFICER)
        assert result.advanced == 2
        assert {c: run_of(s, c).state for c in (*EARLY, OTHER)} == {
            EARLY[0]: "planning", EARLY[1]: "online_study", OTHER: "online_study"}
