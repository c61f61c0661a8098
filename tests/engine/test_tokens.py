"""Service accounts and API tokens: shown once, stored hashed, expiring, revocable, throttled."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import engine.accounts as users_module
import engine.tokens as tokens_module
from engine.accounts import UserError, add_user, authenticate
from engine.clock import FixedClock
from engine.records import ApiToken
from engine.tokens import (
    Throttled,
    TokenRefused,
    add_token,
    list_tokens,
    revoke_tokens,
    token_user,
)
from tests.engine.builders import COUNTY, EARLY, seed


@pytest.fixture(autouse=True)
def _cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(users_module, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def test_a_token_is_its_account_until_it_expires_or_is_revoked(factory: sessionmaker[Session], clock: FixedClock) -> None:
    with factory() as s, s.begin():
        seed(s, clock)
        token = add_token(s, clock, name="platform", role="county_office", scope=COUNTY, days=30)
        assert token.startswith("rlt_") and len(token) > 40
        stored = s.scalars(select(ApiToken)).one()
        assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest() and stored.prefix == token[:12]
        user = token_user(s, clock, token)
        assert (user.username, user.role, user.scope_code) == ("platform", "county_office", COUNTY)
        # A service account never signs in with a password, whatever is typed.
        assert authenticate(s, clock, "platform", "anything at all").user is None
        with pytest.raises(TokenRefused):
            token_user(s, clock, token[:-1] + ("A" if token[-1] != "A" else "B"))
        second = add_token(s, clock, name="platform")  # a second token for the same account
        [info1, info2] = list_tokens(s)
        assert info1.prefix == token[:12] and info2.prefix == second[:12]
        assert revoke_tokens(s, clock, "platform", prefix=token[:12]) == 1
        with pytest.raises(TokenRefused):
            token_user(s, clock, token)
        assert token_user(s, clock, second).username == "platform"
        clock.advance(timedelta(days=366))
        with pytest.raises(TokenRefused):
            token_user(s, clock, second)  # expired


def test_scope_is_checked_like_a_users_and_people_are_not_service_accounts(factory: sessionmaker[Session],
                                                                           clock: FixedClock) -> None:
    with factory() as s, s.begin():
        seed(s, clock)
        with pytest.raises(UserError):
            add_token(s, clock, name="p", role="county_office", scope="999999")
        with pytest.raises(UserError):
            add_token(s, clock, name="p", role="school_admin", scope=COUNTY)  # a school admin needs a school
        with pytest.raises(UserError):
            add_token(s, clock, name="p")  # a new account needs a role and a scope
        add_user(s, clock, username="wang", role="county_office", scope=COUNTY, password="mulberry-kite-42")
        with pytest.raises(UserError):
            add_token(s, clock, name="wang")
        add_token(s, clock, name="school-app", role="school_admin", scope=EARLY[0])
        with pytest.raises(UserError):
            add_token(s, clock, name="school-app", role="county_office", scope=COUNTY)  # no widening later
        with pytest.raises(UserError):
            add_token(s, clock, name="long", role="county_office", scope=COUNTY, days=10_000)


def test_throttle_per_minute(factory: sessionmaker[Session], clock: FixedClock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens_module, "RATE_LIMIT", 3)
    with factory() as s, s.begin():
        seed(s, clock)
        token = add_token(s, clock, name="platform", role="county_office", scope=COUNTY)
    for _ in range(3):
        with factory() as s, s.begin():
            token_user(s, clock, token)
    with factory() as s, s.begin(), pytest.raises(Throttled):
        token_user(s, clock, token)
    clock.advance(timedelta(seconds=61))
    with factory() as s, s.begin():
        assert token_user(s, clock, token).username == "platform"
