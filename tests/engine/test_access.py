"""Who sees what in lists (engine/access.py): the clauses every page, export and API call reuse.

The web tests check the routes; these check the rule itself on the builders' plan: a region user
sees the subtree of their scope (county ⊂ city ⊂ province), a school admin exactly their school,
in the status lists and in the audit trail alike.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.access import audit_filter, scoped_views
from engine.audit.query import list_events
from engine.clock import FixedClock
from engine.db import transaction
from engine.models import Plan, User
from tests.engine.builders import ALL_SCHOOLS, CITY, COUNTY, EARLY, OTHER, OTHER_COUNTY, PROVINCE

IN_COUNTY = sorted(c for c in ALL_SCHOOLS if c != OTHER)


def _user(role: str, scope: str) -> User:
    return User(username=f"{role}-{scope}", display_name="测试", role=role, scope_code=scope, password_hash="-")


@pytest.mark.parametrize(("role", "scope", "expected"), [
    ("province_office", PROVINCE, sorted(ALL_SCHOOLS)),  # the province sees both counties' schools
    ("city_office", CITY, sorted(ALL_SCHOOLS)),
    ("county_office", COUNTY, IN_COUNTY),
    ("county_office", OTHER_COUNTY, [OTHER]),
    ("supervisor", COUNTY, IN_COUNTY),  # read-only, but the same region
    ("school_admin", EARLY[0], [EARLY[0]]),
])
def test_lists_and_the_audit_trail_cover_exactly_the_users_schools(
    plan: sessionmaker[Session], clock: FixedClock, role: str, scope: str, expected: list[str]
) -> None:
    user = _user(role, scope)
    with transaction(plan) as s:
        the_plan = s.scalars(select(Plan)).one()
        assert sorted(v.school_code for v in scoped_views(s, clock, user, the_plan)) == expected
        events = list_events(s, **audit_filter(user))
    # Loading the plan started every school's run: one "start" event per school the user sees.
    assert sorted(e.school_code for e in events if e.trigger == "start") == expected
