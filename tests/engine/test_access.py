"""Who sees what in lists (engine/access.py): the clauses every page, export and API call reuse.

The web tests check the routes; these check the rule itself on the builders' plan: a region user
sees the subtree of their scope (county ⊂ city ⊂ province), a school admin exactly their school,
in the status lists and in the audit trail alike.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.access import (
    Forbidden,
    audit_filter,
    may_act,
    region_scope,
    region_subtree,
    require_upload,
    require_write,
    school_for,
    scoped_views,
    upload_kinds,
)
from engine.audit.query import list_events
from engine.clock import FixedClock
from engine.db import transaction
from engine.errors import NotFound
from engine.i18n import set_language
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


# --- Issue 13: the rest of the module's rules, each on its own (mutation testing found them unasserted) ---

def _both(call: Callable[[], object], error: type[Exception]) -> tuple[str, str]:
    messages = []
    for lang in ("zh", "en"):
        set_language(lang)
        with pytest.raises(error) as info:
            call()
        messages.append(str(info.value))
    set_language("zh")
    return messages[0], messages[1]


def test_a_school_outside_the_scope_answers_exactly_like_a_missing_one(plan: sessionmaker[Session]) -> None:
    """Module rule: a county officer cannot even learn which codes belong to another county."""
    officer = _user("county_office", COUNTY)
    with transaction(plan) as s:
        assert school_for(s, officer, EARLY[0]).code == EARLY[0]
        outside = _both(lambda: school_for(s, officer, OTHER), NotFound)
        assert outside == (f"没有学校 {OTHER}", f"no school {OTHER}")
        missing = _both(lambda: school_for(s, officer, "9999999999"), NotFound)
        assert missing == ("没有学校 9999999999", "no school 9999999999")
        admin = _user("school_admin", EARLY[0])
        assert _both(lambda: school_for(s, admin, EARLY[1]), NotFound) == (f"没有学校 {EARLY[1]}", f"no school {EARLY[1]}")


@pytest.mark.parametrize(("role", "scope", "region"), [
    ("province_office", PROVINCE, PROVINCE), ("county_office", COUNTY, COUNTY), ("supervisor", CITY, CITY),
    ("school_admin", EARLY[0], None),  # one school, no region
])
def test_the_region_a_user_sees_is_their_scope_except_a_school_admins(role: str, scope: str, region: str | None) -> None:
    assert region_scope(_user(role, scope)) == region


def test_a_supervisor_is_read_only_and_told_so() -> None:
    supervisor = _user("supervisor", COUNTY)
    assert not may_act(supervisor)
    assert _both(lambda: require_write(supervisor), Forbidden) == (
        "督导账号只读，不能执行操作", "supervisors are read-only and cannot take actions")
    for role in ("province_office", "city_office", "county_office", "school_admin"):
        require_write(_user(role, COUNTY))  # no refusal
        assert may_act(_user(role, COUNTY))


def test_a_regions_subtree_is_itself_and_every_region_below(plan: sessionmaker[Session]) -> None:
    with transaction(plan) as s:
        assert region_subtree(s, PROVINCE) == {PROVINCE, CITY, COUNTY, OTHER_COUNTY}
        assert region_subtree(s, CITY) == {CITY, COUNTY, OTHER_COUNTY}
        assert region_subtree(s, COUNTY) == {COUNTY}
        assert region_subtree(s, "990000") == {"990000"}  # not in the tree: only itself


def test_offices_import_progress_schools_and_contacts_nobody_else_imports_anything() -> None:
    """access.UPLOAD_ROLES: offices load their own subtree (and facts and extensions, issue 14 item
    9); a contractor reports its schools' facts and extension requests only; a school's data comes
    from its county and a supervisor is read-only, so neither has an import page."""
    kinds = ["progress", "schools", "contacts", "facts", "extensions"]
    for role, scope in (("province_office", PROVINCE), ("city_office", CITY), ("county_office", COUNTY)):
        office = _user(role, scope)
        assert upload_kinds(office) == kinds
        assert [require_upload(office, kind) for kind in kinds] == [scope] * 5
    contractor = _user("contractor", COUNTY)
    assert upload_kinds(contractor) == ["facts", "extensions"]
    assert _both(lambda: require_upload(contractor, "progress"), Forbidden) == (
        "您的角色不能导入数据", "your role may not import data")
    for user in (_user("school_admin", EARLY[0]), _user("supervisor", COUNTY)):
        assert upload_kinds(user) == []
        assert _both(lambda u=user: require_upload(u, "progress"), Forbidden) == (
            "您的角色不能导入数据", "your role may not import data")
    assert _both(lambda: require_upload(_user("county_office", COUNTY), "teachers"), NotFound) == (
        "没有导入类型 teachers", "no import kind teachers")
