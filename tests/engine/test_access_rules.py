"""A contractor account's scope (engine/access.py), in the engine's own clauses.

Seed 002 二 "8个单位承办本项目": a contractor (承训单位, role ``contractor``) sees exactly the schools
assigned to it (``school_run.contractor``, ``rollout contractors import``) inside the region its
account was given; another contractor's school, or its own outside that region, answers 404 like a
school outside a county. A school a plan no longer lists (withdrawn) is no longer anyone's to train.
tests/web/test_contractors_web.py checks the pages; these check the rule each page asks.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.access import (
    audit_filter,
    lists_schools,
    region_level_of,
    region_scope,
    require_run,
    run_clause,
    school_clause,
    school_for,
    scoped_views,
    sees,
    user_school_clause,
)
from engine.audit.query import list_events
from engine.clock import FixedClock
from engine.db import transaction
from engine.errors import NotFound
from engine.i18n import set_language
from engine.models import Plan, School, SchoolRun, User
from tests.engine.builders import (
    ALL_SCHOOLS,
    CITY,
    COUNTY,
    EARLY,
    LATE,
    OTHER,
    OTHER_COUNTY,
    PILOT,
    PROVINCE,
)

JIA, YI = "甲培训中心", "乙师范大学"
ASSIGN = {PILOT: JIA, EARLY[0]: JIA, LATE[0]: JIA, EARLY[1]: YI, OTHER: YI}  # LATE[1]: nobody's


def _user(role: str, scope: str, contractor: str | None = None) -> User:
    return User(username=f"{role}-{scope}", display_name="测试", role=role, scope_code=scope, password_hash="-",
                contractor=contractor)


@pytest.fixture
def contracted(plan: sessionmaker[Session]) -> sessionmaker[Session]:
    """The builders' plan with its schools assigned (stands in for the office's contractors import)."""
    with transaction(plan) as s:
        for code, name in ASSIGN.items():
            s.execute(update(SchoolRun).where(SchoolRun.school_code == code).values(contractor=name))
    return plan


def _codes(s: Session, clause: object) -> list[str]:
    return sorted(s.scalars(select(School.code).where(clause)))  # type: ignore[arg-type]


@pytest.mark.parametrize(("scope", "contractor", "expected"), [
    (PROVINCE, JIA, [PILOT, EARLY[0], LATE[0]]),
    (PROVINCE, YI, sorted([EARLY[1], OTHER])),
    (OTHER_COUNTY, YI, [OTHER]),  # its own EARLY[1] is outside the region it was given
    (COUNTY, "丙大学", []),  # a contractor with no school assigned sees none
])
def test_a_contractor_sees_exactly_its_schools_inside_its_region(
        contracted: sessionmaker[Session], clock: FixedClock, scope: str, contractor: str, expected: list[str]) -> None:
    user = _user("contractor", scope, contractor)
    with transaction(contracted) as s:
        assert [c for c in sorted(ALL_SCHOOLS) if sees(s, user, s.get(School, c))] == expected  # type: ignore[arg-type]
        assert _codes(s, school_clause(user)) == expected
        assert _codes(s, user_school_clause(s, user)) == expected
        the_plan = s.scalars(select(Plan)).one()
        assert sorted(v.school_code for v in scoped_views(s, clock, user, the_plan)) == expected
        # the audit trail: one "start" event per school the contractor sees, nothing of the others
        events = list_events(s, **audit_filter(user))
        assert sorted(str(e.school_code) for e in events) == expected
        assert sorted(str(e.school_code) for e in events if e.trigger == "start") == expected
        for code in sorted(set(ALL_SCHOOLS) - set(expected)):
            with pytest.raises(NotFound, match=f"^没有学校 {code}$"):
                school_for(s, user, code)


def test_a_withdrawn_school_is_no_longer_its_contractors(contracted: sessionmaker[Session], clock: FixedClock) -> None:
    """A plan that drops a school ends its run as withdrawn (engine/plan_edit.py): the contractor
    assigned to it no longer sees it, in lists, on its page or in the audit trail."""
    jia = _user("contractor", PROVINCE, JIA)
    with transaction(contracted) as s:
        s.execute(update(SchoolRun).where(SchoolRun.school_code == LATE[0]).values(withdrawn_at=clock.now()))
        assert not sees(s, jia, s.get(School, LATE[0]))  # type: ignore[arg-type]
        assert sees(s, jia, s.get(School, EARLY[0]))  # type: ignore[arg-type]
        assert _codes(s, school_clause(jia)) == [PILOT, EARLY[0]]
        assert sorted({str(e.school_code) for e in list_events(s, **audit_filter(jia))}) == [PILOT, EARLY[0]]


def test_a_contractor_reads_only_its_own_runs(contracted: sessionmaker[Session]) -> None:
    """A school of the contractor may also be in another programme's plan, which is not the
    contractor's: ``run_clause`` keeps its own runs, ``require_run`` answers a run of another
    contractor (or of none) as a missing school, in both languages. Every other role reads every
    run of the schools it sees."""
    jia = _user("contractor", PROVINCE, JIA)
    with transaction(contracted) as s:
        assert sorted(s.scalars(select(SchoolRun.school_code).where(run_clause(jia)))) == [PILOT, EARLY[0], LATE[0]]
        require_run(jia, s.scalars(select(SchoolRun).where(SchoolRun.school_code == EARLY[0])).one())
        for code in (EARLY[1], LATE[1]):
            run = s.scalars(select(SchoolRun).where(SchoolRun.school_code == code)).one()
            with pytest.raises(NotFound, match=f"^没有学校 {code}$"):
                require_run(jia, run)
            set_language("en")
            try:
                with pytest.raises(NotFound, match=f"^no school {code}$"):
                    require_run(jia, run)
            finally:
                set_language("zh")
        office = _user("province_office", PROVINCE)
        assert sorted(s.scalars(select(SchoolRun.school_code).where(run_clause(office)))) == sorted(ALL_SCHOOLS)
        for run in s.scalars(select(SchoolRun)):
            require_run(office, run)  # no refusal
            require_run(_user("school_admin", run.school_code), run)


@pytest.mark.parametrize(("role", "scope", "level", "lists"), [
    ("province_office", PROVINCE, "province", False),
    ("city_office", CITY, "city", False),
    ("county_office", COUNTY, "county", False),
    ("supervisor", OTHER_COUNTY, "county", False),
    ("school_admin", EARLY[0], None, True),  # one school: its overview lists it, no region tree
    ("contractor", PROVINCE, None, True),  # its schools, listed, not a region ranking
])
def test_who_sees_a_region_tree_and_who_a_list_of_schools(
        plan: sessionmaker[Session], role: str, scope: str, level: str | None, lists: bool) -> None:
    user = _user(role, scope, JIA if role == "contractor" else None)
    with transaction(plan) as s:
        assert region_level_of(s, user) == level
    assert lists_schools(user) is lists
    assert region_scope(user) == (None if role == "school_admin" else scope)


@pytest.mark.parametrize(("role", "scope", "expected"), [
    ("province_office", PROVINCE, sorted(ALL_SCHOOLS)),
    ("city_office", CITY, sorted(ALL_SCHOOLS)),
    ("county_office", COUNTY, sorted(c for c in ALL_SCHOOLS if c != OTHER)),
    ("supervisor", OTHER_COUNTY, [OTHER]),
    ("school_admin", EARLY[1], [EARLY[1]]),
])
def test_the_indexed_clause_selects_the_same_schools_as_the_plain_one(
        plan: sessionmaker[Session], role: str, scope: str, expected: list[str]) -> None:
    """``user_school_clause`` (through the scope level's index, for aggregating pages) and
    ``school_clause`` are two ways to one set: the user's schools."""
    user = _user(role, scope)
    with transaction(plan) as s:
        assert _codes(s, user_school_clause(s, user)) == expected
        assert _codes(s, school_clause(user)) == expected
