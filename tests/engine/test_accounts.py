"""Web users: hashes, scopes by role, lock-out by the clock."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from engine.accounts import UserError, add_user, authenticate, list_users, set_password
from engine.clock import FixedClock
from engine.db import transaction
from tests.engine.builders import CITY, COUNTY, EARLY, PROVINCE, seed


@pytest.fixture
def seeded(factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> sessionmaker[Session]:
    with transaction(factory) as s:
        seed(s, clock)
    return factory


@pytest.mark.parametrize("role,scope", [("province_office", PROVINCE), ("city_office", CITY),
                                        ("county_office", COUNTY), ("school_admin", EARLY[0]),
                                        ("supervisor", CITY), ("supervisor", COUNTY)])
def test_each_role_takes_its_scope(seeded: sessionmaker[Session], clock: FixedClock, role: str, scope: str) -> None:
    with transaction(seeded) as s:
        user = add_user(s, clock, username="u", role=role, scope=scope, password="abcdefgh1")
        assert user.password_hash.startswith("$argon2") and user.active
    with transaction(seeded) as s:
        assert [u.username for u in list_users(s)] == ["u"]


@pytest.mark.parametrize("role,scope", [("province_office", CITY), ("city_office", COUNTY),
                                        ("county_office", EARLY[0]), ("school_admin", COUNTY), ("mayor", COUNTY)])
def test_wrong_scope_for_role_is_refused(seeded: sessionmaker[Session], clock: FixedClock, role: str, scope: str) -> None:
    with pytest.raises(UserError), transaction(seeded) as s:
        add_user(s, clock, username="u", role=role, scope=scope, password="abcdefgh1")


def test_lock_out_counts_consecutive_failures(seeded: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(seeded) as s:
        add_user(s, clock, username="u", role="county_office", scope=COUNTY, password="abcdefgh1")
    for _ in range(4):
        with transaction(seeded) as s:
            assert authenticate(s, clock, "u", "nope").user is None
    with transaction(seeded) as s:
        assert authenticate(s, clock, "u", "abcdefgh1").user is not None  # success resets the count
    for _ in range(5):
        with transaction(seeded) as s:
            assert authenticate(s, clock, "u", "nope").user is None
    with transaction(seeded) as s:
        refused = authenticate(s, clock, "u", "abcdefgh1")
    assert refused.user is None and "锁定" in refused.message
    clock.advance(timedelta(minutes=15, seconds=1))
    with transaction(seeded) as s:
        assert authenticate(s, clock, "u", "abcdefgh1").user is not None


def test_unknown_user_and_wrong_password_read_the_same(seeded: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(seeded) as s:
        add_user(s, clock, username="u", role="county_office", scope=COUNTY, password="abcdefgh1")
        assert authenticate(s, clock, "ghost", "x").message == authenticate(s, clock, "u", "x").message


def test_set_password_refuses_short(seeded: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(seeded) as s:
        add_user(s, clock, username="u", role="county_office", scope=COUNTY, password="abcdefgh1")
    with pytest.raises(UserError), transaction(seeded) as s:
        set_password(s, "u", "short")
