"""School facts: audited on the school's chain, unknown names and roles refused, no-op writes leave no trace."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from engine.audit import verify_chains
from engine.clock import FixedClock
from engine.db import transaction
from engine.errors import NotFound, TransitionRefused
from engine.facts import set_fact
from engine.i18n import set_language
from engine.models import SchoolFact
from engine.runs import Actor
from tests.engine.builders import (
    CITY_OFFICER,
    COUNTY,
    COUNTY_OFFICER,
    EARLY,
    SCHOOL_ADMIN,
    event_count,
    events_of,
    run_of,
)

SCHOOL = EARLY[0]
SUPERVISOR = Actor("孙督学", "supervisor")


def test_fact_is_stored_and_audited(plan: sessionmaker[Session], clock: FixedClock, db: Engine) -> None:
    with transaction(plan) as s:
        assert set_fact(s, clock, school_code=SCHOOL, name="team_members", value=4, actor=COUNTY_OFFICER, note="名单已报")
    with transaction(plan) as s:
        run = run_of(s, SCHOOL)
        fact = s.get(SchoolFact, (run.id, "team_members"))
        assert fact is not None and (fact.value, fact.note, fact.recorded_by) == (4, "名单已报", "王主任")
        last = events_of(s, SCHOOL)[-1]
        assert last.trigger == "fact:team_members"
        assert last.from_state == last.to_state == run.state == "planning"
        assert last.gates == [{"fact": "team_members", "old": None, "new": 4}]
    with transaction(plan) as s:
        assert set_fact(s, clock, school_code=SCHOOL, name="team_members", value=5, actor=COUNTY_OFFICER)
    with transaction(plan) as s:
        assert events_of(s, SCHOOL)[-1].gates == [{"fact": "team_members", "old": 4, "new": 5}]
    assert verify_chains(db).ok


def test_same_value_again_is_no_event(plan: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(plan) as s:
        set_fact(s, clock, school_code=SCHOOL, name="plan_filed", value=1, actor=COUNTY_OFFICER)
        before = event_count(s)
        assert set_fact(s, clock, school_code=SCHOOL, name="plan_filed", value=1, actor=COUNTY_OFFICER) is False
        assert event_count(s) == before


def test_fact_bumps_the_run_version(plan: sessionmaker[Session], clock: FixedClock) -> None:
    """Facts and transitions serialise per school: recording a fact must bump the optimistic lock."""
    with transaction(plan) as s:
        set_fact(s, clock, school_code=SCHOOL, name="plan_filed", value=1, actor=COUNTY_OFFICER)
    with transaction(plan) as s:
        assert run_of(s, SCHOOL).version == 2


def test_unknown_fact_and_school_refused(plan: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(plan) as s:
        with pytest.raises(TransitionRefused) as info:
            set_fact(s, clock, school_code=SCHOOL, name="online_hours", value=1, actor=COUNTY_OFFICER)
        assert "plan_filed" in str(info.value) and "supervision_result" in str(info.value)
        with pytest.raises(NotFound):
            set_fact(s, clock, school_code="3703239999", name="plan_filed", value=1, actor=COUNTY_OFFICER)
        assert s.scalars(select(SchoolFact)).all() == []


def test_role_not_allowed_is_refused_before_any_write(plan: sessionmaker[Session], clock: FixedClock) -> None:
    """plan_filed is the county's act (003 县级审核备案): a supervisor, city or school may not record it."""
    set_language("en")
    with transaction(plan) as s:
        before = (event_count(s), run_of(s, SCHOOL).version)
        for actor in (SUPERVISOR, CITY_OFFICER, SCHOOL_ADMIN):
            with pytest.raises(TransitionRefused) as info:
                set_fact(s, clock, school_code=SCHOOL, name="plan_filed", value=1, actor=actor)
            assert f"role {actor.role} may not record the fact 'plan_filed'" in str(info.value)
            assert "County project office (county_office)" in str(info.value)
        assert s.scalars(select(SchoolFact)).all() == []
        assert (event_count(s), run_of(s, SCHOOL).version) == before


def test_refusal_is_chinese_by_default(plan: sessionmaker[Session], clock: FixedClock) -> None:
    set_language("zh")
    with transaction(plan) as s, pytest.raises(TransitionRefused) as info:
        set_fact(s, clock, school_code=SCHOOL, name="county_spot_check_done", value=1, actor=SCHOOL_ADMIN)
    assert str(info.value) == "角色 school_admin 不能记录事实项“county_spot_check_done”；可记录的角色：县级项目办（county_office）"


def test_roles_the_workflow_grants_may_record(plan: sessionmaker[Session], clock: FixedClock) -> None:
    """supervision_result: supervisors and the supervising offices; team_members: the school too."""
    with transaction(plan) as s:
        assert set_fact(s, clock, school_code=SCHOOL, name="supervision_result", value=0, actor=SUPERVISOR, note="材料不全")
        assert set_fact(s, clock, school_code=SCHOOL, name="supervision_result", value=1, actor=CITY_OFFICER)
        assert set_fact(s, clock, school_code=SCHOOL, name="team_members", value=4, actor=SCHOOL_ADMIN)
        with pytest.raises(TransitionRefused):
            set_fact(s, clock, school_code=SCHOOL, name="supervision_result", value=1, actor=SCHOOL_ADMIN)
    with transaction(plan) as s:
        recorded = [(e.actor, e.role, e.trigger) for e in events_of(s, SCHOOL) if e.trigger.startswith("fact:")]
        assert recorded == [("孙督学", "supervisor", "fact:supervision_result"), ("李科长", "city_office", "fact:supervision_result"),
                            ("刘老师", "school_admin", "fact:team_members")]


# -- issue 14 bug 4: a fact recorded before its stage ------------------------------------------

def _plan_with(factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path, rule: str | None) -> None:
    """The builders' plan on the shipped workflow with supervision_result's ``before_stage`` set
    (None: the key left out, the default)."""
    from engine.plan import load_plan
    from engine.workflow.loader import load_workflow_text
    from engine.workflow.versions import register_workflow
    from tests.engine.builders import (
        ALL_SCHOOLS,
        OTHER,
        OTHER_COUNTY,
        PILOT,
        WORKFLOW_PATH,
        add_regions,
        add_school,
        plan_data,
        write_plan,
    )
    text = WORKFLOW_PATH.read_text(encoding="utf-8")
    assert "    before_stage: wait\n" in text  # the shipped file's rule for supervision_result
    text = text.replace("    before_stage: wait\n", f"    before_stage: {rule}\n" if rule else "", 1)
    with transaction(factory) as s:
        add_regions(s)
        for code in ALL_SCHOOLS:
            add_school(s, code, pilot=code == PILOT, county=OTHER_COUNTY if code == OTHER else COUNTY)
        register_workflow(s, load_workflow_text(text, "whole-school-2.0.yaml"), text, clock)
        load_plan(s, write_plan(tmp_path, plan_data()), clock)


def test_a_fact_recorded_before_its_stage_is_refused_by_default(factory, clock, tmp_path) -> None:
    """A workflow that says nothing: the supervision result cannot be entered during planning."""
    _plan_with(factory, clock, tmp_path, None)
    with transaction(factory) as s:
        with pytest.raises(TransitionRefused, match="督导考核.*制定规划.*不能提前记录"):
            set_fact(s, clock, school_code=SCHOOL, name="supervision_result", value=1, actor=SUPERVISOR)
        assert s.get(SchoolFact, (run_of(s, SCHOOL).id, "supervision_result")) is None
        # a fact of the school's own stage is fine
        assert set_fact(s, clock, school_code=SCHOOL, name="plan_filed", value=1, actor=COUNTY_OFFICER)


def _advance_to_supervision(s: Session, clock: FixedClock) -> None:
    from engine.runs import fire
    from tests.engine.builders import add_teachers
    run = run_of(s, SCHOOL)
    run.state = "assessment"  # stands in for a year of work (the override goes straight to done)
    s.flush()
    add_teachers(s, SCHOOL, 2)
    set_fact(s, clock, school_code=SCHOOL, name="assessment_entered", value=1, actor=COUNTY_OFFICER)
    set_fact(s, clock, school_code=SCHOOL, name="county_spot_check_done", value=1, actor=COUNTY_OFFICER)
    fire(s, clock, school_code=SCHOOL, trigger="advance", actor=COUNTY_OFFICER)
    assert run_of(s, SCHOOL).state == "supervision"


def test_wait_keeps_an_early_fact_but_counts_it_only_from_its_stage(factory, clock, tmp_path) -> None:
    from engine.status import school_detail
    _plan_with(factory, clock, tmp_path, "wait")
    with transaction(factory) as s:
        assert set_fact(s, clock, school_code=SCHOOL, name="supervision_result", value=1, actor=SUPERVISOR)
    clock.advance(timedelta(hours=1))
    with transaction(factory) as s:
        _advance_to_supervision(s, clock)
        gate = next(g for g in school_detail(s, clock, SCHOOL)["gates"] if g["metric"] == "supervision_result")
        assert gate["passed"] is False and gate["actual"] is None  # the planning-time entry does not count
    clock.advance(timedelta(hours=1))
    with transaction(factory) as s:
        # the same value again, now in supervision: a real change, audited, and it counts
        assert set_fact(s, clock, school_code=SCHOOL, name="supervision_result", value=1, actor=SUPERVISOR)
        gate = next(g for g in school_detail(s, clock, SCHOOL)["gates"] if g["metric"] == "supervision_result")
        assert gate["passed"] is True
        assert verify_chains(s).ok


def test_allow_counts_an_early_fact(factory, clock, tmp_path) -> None:
    from engine.status import school_detail
    _plan_with(factory, clock, tmp_path, "allow")
    with transaction(factory) as s:
        assert set_fact(s, clock, school_code=SCHOOL, name="supervision_result", value=1, actor=SUPERVISOR)
    clock.advance(timedelta(hours=1))
    with transaction(factory) as s:
        _advance_to_supervision(s, clock)
        gate = next(g for g in school_detail(s, clock, SCHOOL)["gates"] if g["metric"] == "supervision_result")
        assert gate["passed"] is True
