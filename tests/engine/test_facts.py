"""School facts: audited on the school's chain, unknown names refused, no-op writes leave no trace."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from engine.audit import verify_chains
from engine.clock import FixedClock
from engine.db import transaction
from engine.errors import NotFound, TransitionRefused
from engine.facts import set_fact
from engine.models import SchoolFact
from tests.engine.builders import (
    COUNTY_OFFICER,
    EARLY,
    event_count,
    events_of,
    run_of,
)

SCHOOL = EARLY[0]




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
