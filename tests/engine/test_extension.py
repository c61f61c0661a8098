from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.orm import Session, sessionmaker

from engine.audit import verify_chains
from engine.clock import FixedClock
from engine.db import transaction
from engine.errors import TransitionRefused
from engine.extension import decide_extension, pending_requests, request_extension
from engine.status import school_detail
from tests.engine.builders import COUNTY_OFFICER, EARLY, SCHOOL_ADMIN, events_of

SCHOOL = EARLY[0]




def test_request_then_approve_moves_the_due_date(plan: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(plan) as s:
        request_extension(s, clock, school_code=SCHOOL, due=date(2021, 10, 31), reason="校舍改造", actor=SCHOOL_ADMIN)
        assert [r.school_code for r in pending_requests(s)] == [SCHOOL]
    with transaction(plan) as s:
        decide_extension(s, clock, school_code=SCHOOL, approve=True, reason="情况属实", actor=COUNTY_OFFICER)
        assert pending_requests(s) == []
        assert school_detail(s, clock, SCHOOL)["due"]["date"] == date(2021, 10, 31)
        triggers = [e.trigger for e in events_of(s, SCHOOL)]
        assert triggers[-2:] == ["extension_request", "extend"]
        assert verify_chains(s).ok


def test_refusal_is_audited_and_keeps_the_due_date(plan: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(plan) as s:
        before = school_detail(s, clock, SCHOOL)["due"]["date"]
        request_extension(s, clock, school_code=SCHOOL, due=date(2021, 10, 31), reason="校舍改造", actor=SCHOOL_ADMIN)
        decide_extension(s, clock, school_code=SCHOOL, approve=False, reason="理由不充分", actor=COUNTY_OFFICER)
        assert school_detail(s, clock, SCHOOL)["due"]["date"] == before
        last = events_of(s, SCHOOL)[-1]
        assert (last.trigger, last.actor, last.reason) == ("extension_refuse", COUNTY_OFFICER.name, "理由不充分")


def test_refusals(plan: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(plan) as s:
        with pytest.raises(TransitionRefused, match="2022-12-31"):
            request_extension(s, clock, school_code=SCHOOL, due=date(2023, 1, 31), reason="x", actor=SCHOOL_ADMIN)
        with pytest.raises(TransitionRefused, match="没有待审批"):
            decide_extension(s, clock, school_code=SCHOOL, approve=True, reason="ok", actor=COUNTY_OFFICER)
        request_extension(s, clock, school_code=SCHOOL, due=date(2021, 10, 31), reason="校舍改造", actor=SCHOOL_ADMIN)
        with pytest.raises(TransitionRefused, match="已有待审批"):
            request_extension(s, clock, school_code=SCHOOL, due=date(2021, 11, 30), reason="再延", actor=SCHOOL_ADMIN)
        with pytest.raises(TransitionRefused, match="无权审批"):
            decide_extension(s, clock, school_code=SCHOOL, approve=True, reason="ok", actor=SCHOOL_ADMIN)


def test_only_a_role_that_may_extend_decides_either_way(plan: sessionmaker[Session], clock: FixedClock) -> None:
    """002: the executive office decides an extension request. A refusal is a decision too: a school
    admin may not refuse (and so silently withdraw) a request any more than approve it."""
    with transaction(plan) as s:
        request_extension(s, clock, school_code=SCHOOL, due=date(2021, 10, 31), reason="校舍改造", actor=SCHOOL_ADMIN)
        before = len(events_of(s, SCHOOL))
        with pytest.raises(TransitionRefused, match="无权审批"):
            decide_extension(s, clock, school_code=SCHOOL, approve=False, reason="撤回", actor=SCHOOL_ADMIN)
        assert len(events_of(s, SCHOOL)) == before
        assert [r.school_code for r in pending_requests(s)] == [SCHOOL]  # still waiting for the office


def test_no_decision_once_the_school_left_the_requested_stage(plan: sessionmaker[Session], clock: FixedClock) -> None:
    """A request asks for more time in one stage; once the school has moved on (here: advanced from
    planning to online study) approving it would move the new stage's date, refusing it would record
    a decision about a stage the school is no longer in. Both are refused."""
    from engine.facts import set_fact
    from engine.runs import fire

    with transaction(plan) as s:
        request_extension(s, clock, school_code=SCHOOL, due=date(2021, 10, 31), reason="校舍改造", actor=SCHOOL_ADMIN)
        set_fact(s, clock, school_code=SCHOOL, name="plan_filed", value=1, actor=COUNTY_OFFICER)
        set_fact(s, clock, school_code=SCHOOL, name="team_members", value=4, actor=COUNTY_OFFICER)
        fire(s, clock, school_code=SCHOOL, trigger="advance", actor=COUNTY_OFFICER)
        due = school_detail(s, clock, SCHOOL)["due"]
        for approve in (True, False):
            with pytest.raises(TransitionRefused, match="已不在申请延期的阶段"):
                decide_extension(s, clock, school_code=SCHOOL, approve=approve, reason="同意", actor=COUNTY_OFFICER)
        assert school_detail(s, clock, SCHOOL)["due"] == due
        assert events_of(s, SCHOOL)[-1].trigger == "advance"
