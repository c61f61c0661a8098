"""No office grants a role or a scope above its own; every change audited; bulk adds all or nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from argon2 import PasswordHasher
from openpyxl import Workbook
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import engine.accounts as users_module
from engine.access import Forbidden
from engine.account_admin import (
    bulk_add_users,
    change_own_password,
    managed_users,
    may_grant,
    office_add_user,
    office_disable_user,
    office_reset_password,
)
from engine.accounts import add_user, authenticate
from engine.clock import FixedClock
from engine.errors import ImportFileError, NotFound
from engine.models import AuditEvent, User
from tests.engine.builders import CITY, COUNTY, EARLY, OTHER, OTHER_COUNTY, PROVINCE, seed

PASSWORD = "mulberry-kite-42"


@pytest.fixture(autouse=True)
def _cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(users_module, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def office(s: Session, clock: FixedClock, name: str, role: str, scope: str) -> User:
    return add_user(s, clock, username=name, role=role, scope=scope, password=PASSWORD)


@pytest.mark.parametrize(("who", "role", "scope", "allowed"), [
    ("county", "school_admin", EARLY[0], True),
    ("county", "county_office", COUNTY, True),      # its own staff
    ("county", "supervisor", COUNTY, True),
    ("county", "city_office", CITY, False),         # a role above its own
    ("county", "county_office", OTHER_COUNTY, False),  # another county
    ("county", "school_admin", OTHER, False),       # another county's school
    ("county", "province_office", PROVINCE, False),
    ("city", "county_office", OTHER_COUNTY, True),
    ("city", "city_office", CITY, True),
    ("city", "province_office", PROVINCE, False),
    ("school", "school_admin", EARLY[0], False),    # not an office
    ("sup", "supervisor", COUNTY, False),
])
def test_may_grant(factory: sessionmaker[Session], clock: FixedClock, who: str, role: str, scope: str, allowed: bool) -> None:
    with factory() as s, s.begin():
        seed(s, clock)
        actors = {"county": office(s, clock, "county", "county_office", COUNTY),
                  "city": office(s, clock, "city", "city_office", CITY),
                  "school": office(s, clock, "school", "school_admin", EARLY[0]),
                  "sup": office(s, clock, "sup", "supervisor", COUNTY)}
        assert (may_grant(s, actors[who], role, scope) is None) is allowed
        if not allowed:
            with pytest.raises(Forbidden):
                office_add_user(s, clock, actors[who], username="new", role=role, scope=scope)


def test_add_reset_disable_are_audited_and_a_reset_must_be_changed(factory: sessionmaker[Session], clock: FixedClock) -> None:
    with factory() as s, s.begin():
        seed(s, clock)
        county = office(s, clock, "county", "county_office", COUNTY)
        other = office(s, clock, "other", "county_office", OTHER_COUNTY)
        user, temporary = office_add_user(s, clock, county, username="liu", role="school_admin", scope=EARLY[0])
        assert user.must_change_password and authenticate(s, clock, "liu", temporary).user is not None
        assert [u.username for u in managed_users(s, county)] == ["county", "liu"]
        with pytest.raises(NotFound):
            office_reset_password(s, clock, other, "liu")  # another county's account does not exist for it
        _, again = office_reset_password(s, clock, county, "liu")
        assert authenticate(s, clock, "liu", temporary).user is None and authenticate(s, clock, "liu", again).user is not None
        change_own_password(s, clock, user, again, "another-kite-77")
        assert not user.must_change_password
        office_disable_user(s, clock, county, "liu")
        assert not user.active
        events = s.scalars(select(AuditEvent).where(AuditEvent.chain == f"user:{user.id}").order_by(AuditEvent.seq)).all()
        assert [(e.trigger, e.actor) for e in events] == [("user_add", "county"), ("user_reset_password", "county"),
                                                           ("user_disable", "county")]


def test_bulk_add_is_all_or_nothing_with_every_row_named(factory: sessionmaker[Session], clock: FixedClock,
                                                         tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(["用户名", "姓名", "角色", "范围"])
    sheet.append(["s1", "学校一", "学校管理员", EARLY[0]])
    sheet.append(["s2", "越权", "市级项目办", CITY])
    sheet.append(["s3", "外县", "school_admin", OTHER])
    sheet.append(["s1", "重复", "school_admin", EARLY[1]])
    path = tmp_path / "accounts.xlsx"
    book.save(path)
    with factory() as s, s.begin():
        seed(s, clock)
        county = office(s, clock, "county", "county_office", COUNTY)
        with pytest.raises(ImportFileError) as caught:
            bulk_add_users(s, clock, county, path, "accounts.xlsx")
        assert [p.line for p in caught.value.problems] == [3, 4, 5]
        assert s.scalar(select(User).where(User.username == "s1")) is None
        sheet.delete_rows(3, 3)
        book.save(path)
        [added] = bulk_add_users(s, clock, county, path, "accounts.xlsx")
        assert (added.username, added.role, added.scope) == ("s1", "school_admin", EARLY[0])
        assert authenticate(s, clock, "s1", added.password).user is not None


def test_temporary_passwords_survive_a_spreadsheet() -> None:
    from engine.account_admin import temporary_password
    from engine.export import neutralise
    for _ in range(200):
        password = temporary_password()
        assert neutralise(password) == password and len(password) == 20
