from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.orm import Session, sessionmaker

from engine.audit import verify_chains
from engine.clock import FixedClock
from engine.db import transaction
from engine.errors import TransitionRefused
from engine.extension import decide_extension, pending_requests, request_extension
from engine.facts import set_fact
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
            with pytest.raises(TransitionRefused, match="该申请已失效：学校已离开申请延期的“planning”阶段"):
                decide_extension(s, clock, school_code=SCHOOL, approve=approve, reason="同意", actor=COUNTY_OFFICER)
        assert school_detail(s, clock, SCHOOL)["due"] == due
        assert events_of(s, SCHOOL)[-1].trigger == "advance"


def _leave_stage(s: Session, clock: FixedClock) -> None:
    from engine.runs import fire
    from tests.engine.builders import PROVINCE_OFFICER
    fire(s, clock, school_code=SCHOOL, trigger="override", actor=PROVINCE_OFFICER, reason="特批进入下一阶段")


def test_a_request_for_a_stage_the_school_left_lapses_and_a_new_one_is_possible(
        plan: sessionmaker[Session], clock: FixedClock) -> None:
    """Issue 14 bug 1: it used to be a dead end (neither decidable nor replaceable)."""
    from engine.extension import lapse_stale_requests
    from engine.projection import verify_state
    with transaction(plan) as s:
        request_extension(s, clock, school_code=SCHOOL, due=date(2021, 10, 31), reason="校舍改造", actor=SCHOOL_ADMIN)
        _leave_stage(s, clock)
        assert pending_requests(s) == []  # no longer decidable: not listed as pending
        with pytest.raises(TransitionRefused, match="已失效"):
            decide_extension(s, clock, school_code=SCHOOL, approve=True, reason="ok", actor=COUNTY_OFFICER)
    with transaction(plan) as s:
        lapsed = lapse_stale_requests(s, clock)
        assert [(r.school_code, r.stage) for r in lapsed] == [(SCHOOL, "planning")]
        last = events_of(s, SCHOOL)[-1]
        assert (last.trigger, last.actor, last.from_state) == ("extension_lapse", "system", "done")
        assert lapse_stale_requests(s, clock) == []  # once
        assert verify_state(s).ok and verify_chains(s).ok


def test_a_new_request_replaces_a_lapsed_one_in_the_same_call(plan: sessionmaker[Session], clock: FixedClock) -> None:
    from engine.runs import fire
    from tests.engine.builders import PROVINCE_OFFICER
    with transaction(plan) as s:
        request_extension(s, clock, school_code=SCHOOL, due=date(2021, 10, 31), reason="校舍改造", actor=SCHOOL_ADMIN)
        fire(s, clock, school_code=SCHOOL, trigger="suspend", actor=PROVINCE_OFFICER, reason="停课")
        fire(s, clock, school_code=SCHOOL, trigger="resume", actor=PROVINCE_OFFICER, reason="复课")
        # back in planning: the old request applies again and is decidable, not lapsed
        assert [r.stage for r in pending_requests(s)] == ["planning"]
        set_fact(s, clock, school_code=SCHOOL, name="plan_filed", value=1, actor=COUNTY_OFFICER)
        set_fact(s, clock, school_code=SCHOOL, name="team_members", value=4, actor=COUNTY_OFFICER)
        fire(s, clock, school_code=SCHOOL, trigger="advance", actor=COUNTY_OFFICER)
        request = request_extension(s, clock, school_code=SCHOOL, due=date(2021, 11, 30), reason="研修平台故障", actor=SCHOOL_ADMIN)
        assert (request.stage, request.due) == ("online_study", date(2021, 11, 30))
        assert [e.trigger for e in events_of(s, SCHOOL)][-2:] == ["extension_lapse", "extension_request"]
