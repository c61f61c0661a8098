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
