"""School facts: audited on the school's chain, unknown names and roles refused, no-op writes leave no trace."""

from __future__ import annotations

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
