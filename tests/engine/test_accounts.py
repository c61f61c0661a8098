"""Web users: hashes, scopes by role, lock-out by the clock."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy.orm import Session, sessionmaker

import engine.accounts as accounts
from engine.accounts import UserError, add_user, authenticate, list_users, set_password
from engine.clock import FixedClock
from engine.db import transaction
from tests.engine.builders import CITY, COUNTY, EARLY, PROVINCE, seed


@pytest.fixture(autouse=True)
def _cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rules here count attempts, not the hash's cost: argon2 at its smallest parameters (the
    library's defaults made the lock-out tests take 17 s each)."""
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


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
        user = add_user(s, clock, username="u", role=role, scope=scope, password="mulberry-kite-42")
        assert user.password_hash.startswith("$argon2") and user.active
    with transaction(seeded) as s:
        assert [u.username for u in list_users(s)] == ["u"]


@pytest.mark.parametrize("role,scope", [("province_office", CITY), ("city_office", COUNTY),
                                        ("county_office", EARLY[0]), ("school_admin", COUNTY), ("mayor", COUNTY)])
def test_wrong_scope_for_role_is_refused(seeded: sessionmaker[Session], clock: FixedClock, role: str, scope: str) -> None:
    with pytest.raises(UserError), transaction(seeded) as s:
        add_user(s, clock, username="u", role=role, scope=scope, password="mulberry-kite-42")


def test_lock_out_counts_consecutive_failures(seeded: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(seeded) as s:
        add_user(s, clock, username="u", role="county_office", scope=COUNTY, password="mulberry-kite-42")
    for _ in range(4):
        with transaction(seeded) as s:
            assert authenticate(s, clock, "u", "nope").user is None
    with transaction(seeded) as s:
        assert authenticate(s, clock, "u", "mulberry-kite-42").user is not None  # success resets the count
    for _ in range(5):
        with transaction(seeded) as s:
            assert authenticate(s, clock, "u", "nope").user is None
    with transaction(seeded) as s:
        refused = authenticate(s, clock, "u", "mulberry-kite-42")
    assert refused.user is None and "锁定" in refused.message
    clock.advance(timedelta(minutes=15, seconds=1))
    with transaction(seeded) as s:
        assert authenticate(s, clock, "u", "mulberry-kite-42").user is not None


def test_unknown_user_and_wrong_password_read_the_same(seeded: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(seeded) as s:
        add_user(s, clock, username="u", role="county_office", scope=COUNTY, password="mulberry-kite-42")
        assert authenticate(s, clock, "ghost", "x").message == authenticate(s, clock, "u", "x").message


def test_set_password_refuses_short(seeded: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(seeded) as s:
        add_user(s, clock, username="u", role="county_office", scope=COUNTY, password="mulberry-kite-42")
    with pytest.raises(UserError), transaction(seeded) as s:
        set_password(s, "u", "short")


# --- hardening (issue 12): lock-out under concurrency, timing, throttle, password rules -----------

import threading  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402

from engine.accounts import CLIENT_ATTEMPTS, MAX_FAILED, refused_message  # noqa: E402
from engine.models import User  # noqa: E402

GOOD = "mulberry-kite-42"


class CountingHasher(PasswordHasher):
    """A cheap argon2 that counts the verifications against each stored hash and takes a while,
    so that racing requests really overlap (the 127 ms of the real cost, scaled down)."""

    def __init__(self, pause: float = 0.0) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.pause = pause
        self.checked: dict[str, int] = {}
        self.lock = threading.Lock()

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:  # noqa: A002 - argon2's name
        with self.lock:
            key = hash if isinstance(hash, str) else hash.decode()
            self.checked[key] = self.checked.get(key, 0) + 1
        time.sleep(self.pause)
        return bool(super().verify(hash, password))


@pytest.fixture
def hasher(monkeypatch: pytest.MonkeyPatch) -> CountingHasher:
    counting = CountingHasher(pause=0.05)
    monkeypatch.setattr(accounts, "_hasher", counting)
    return counting


def _stored_hash(factory: sessionmaker[Session], username: str) -> str:
    with transaction(factory) as s:
        return accounts.find_user(s, username).password_hash


def _attempt(factory: sessionmaker[Session], clock: FixedClock, password: str, client: str, username: str = "u") -> bool:
    with transaction(factory) as s:
        return authenticate(s, clock, username, password, client=client).user is not None


@pytest.mark.parametrize("attempts,threads", [(30, 30), (100, 20)])
def test_lock_out_holds_under_parallel_logins(seeded: sessionmaker[Session], clock: FixedClock, hasher: CountingHasher,
                                             attempts: int, threads: int) -> None:
    """30 parallel wrong passwords used to be 29 passwords checked and none locked: the count must
    be atomic and taken before the check, so at most MAX_FAILED passwords are ever tried."""
    with transaction(seeded) as s:
        add_user(s, clock, username="u", role="county_office", scope=COUNTY, password=GOOD)
    real = _stored_hash(seeded, "u")
    start = threading.Barrier(threads)

    def one(i: int) -> bool:
        if i < threads:
            start.wait()
        return _attempt(seeded, clock, "wrong-guess", client=f"10.0.{i // 250}.{i % 250}")

    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(one, range(attempts)))
    assert not any(results)
    assert hasher.checked.get(real, 0) <= MAX_FAILED
    with transaction(seeded) as s:
        user = accounts.find_user(s, "u")
        assert user.locked_until is not None and user.failed_logins == MAX_FAILED
    assert not _attempt(seeded, clock, GOOD, client="10.9.9.9")  # locked: even the right password waits
    clock.advance(timedelta(minutes=15, seconds=1))
    assert _attempt(seeded, clock, GOOD, client="10.9.9.9")


def test_correct_password_among_parallel_guesses_gets_one_of_the_five(seeded: sessionmaker[Session], clock: FixedClock,
                                                                    hasher: CountingHasher) -> None:
    with transaction(seeded) as s:
        add_user(s, clock, username="u", role="county_office", scope=COUNTY, password=GOOD)
    real = _stored_hash(seeded, "u")
    start = threading.Barrier(30)

    def one(i: int) -> bool:
        start.wait()
        return _attempt(seeded, clock, GOOD if i == 29 else "wrong-guess", client=f"10.1.0.{i}")

    with ThreadPoolExecutor(30) as pool:
        results = list(pool.map(one, range(30)))
    # A success resets the count (the owner signed in), so at most MAX_FAILED guesses on each side of it.
    assert hasher.checked.get(real, 0) <= MAX_FAILED * (2 if results[29] else 1)


def test_every_refusal_costs_one_verification_and_reads_the_same(seeded: sessionmaker[Session], clock: FixedClock,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """An unknown user answered in 3 ms and a real one in 127 ms; 'locked' showed only for real accounts."""
    counting = CountingHasher()
    monkeypatch.setattr(accounts, "_hasher", counting)
    with transaction(seeded) as s:
        add_user(s, clock, username="u", role="county_office", scope=COUNTY, password=GOOD)
        add_user(s, clock, username="gone", role="county_office", scope=COUNTY, password=GOOD)
        accounts.disable_user(s, "gone")
    for _ in range(MAX_FAILED):
        _attempt(seeded, clock, "wrong-guess", client=f"c{_}")
    messages = {}
    for who in ("ghost", "gone", "u"):  # unknown, disabled, locked
        before = sum(counting.checked.values())
        with transaction(seeded) as s:
            result = authenticate(s, clock, who, "wrong-guess", client="10.2.0.1")
        assert result.user is None
        assert sum(counting.checked.values()) - before == 1, who
        messages[who] = result.message
    assert set(messages.values()) == {refused_message()}


def test_one_client_cannot_lock_out_every_account(seeded: sessionmaker[Session], clock: FixedClock) -> None:
    usernames = [f"u{i}" for i in range(10)]
    with transaction(seeded) as s:
        for name in usernames:
            add_user(s, clock, username=name, role="county_office", scope=COUNTY, password=GOOD)
    for name in usernames:
        for _ in range(MAX_FAILED):
            _attempt(seeded, clock, "wrong-guess", client="203.0.113.7", username=name)
    with transaction(seeded) as s:
        locked = [u.username for u in list_users(s) if u.locked_until is not None]
        untouched = [u.username for u in list_users(s) if u.failed_logins == 0]
    assert len(locked) == CLIENT_ATTEMPTS // MAX_FAILED  # the throttle stopped the rest
    assert len(untouched) == len(usernames) - len(locked)
    with transaction(seeded) as s:
        refused = authenticate(s, clock, untouched[0], GOOD, client="203.0.113.7")
    assert refused.user is None and "地址" in refused.message
    assert _attempt(seeded, clock, GOOD, client="198.51.100.2", username=untouched[0])  # others still sign in
    clock.advance(timedelta(minutes=15, seconds=1))
    assert _attempt(seeded, clock, GOOD, client="203.0.113.7", username=untouched[0])  # the window passes


def test_a_success_gives_its_attempt_back(seeded: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(seeded) as s:
        add_user(s, clock, username="u", role="county_office", scope=COUNTY, password=GOOD)
    for _ in range(CLIENT_ATTEMPTS * 2):  # an officer signing in all day from the office's one address
        assert _attempt(seeded, clock, GOOD, client="192.0.2.1")


@pytest.mark.parametrize("password", ["password1", "12345678", "qwertyuiop", "woaini1314", "Passw0rd!", "wangwei2021!"])
def test_common_and_guessable_passwords_are_refused(seeded: sessionmaker[Session], clock: FixedClock, password: str) -> None:
    with pytest.raises(UserError, match="猜中"), transaction(seeded) as s:
        add_user(s, clock, username="wangwei", role="county_office", scope=COUNTY, password=password)


def test_password_change_and_disable_end_sessions(seeded: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(seeded) as s:
        user = add_user(s, clock, username="u", role="county_office", scope=COUNTY, password=GOOD)
        first, second = accounts.start_session(s, clock, user), accounts.start_session(s, clock, user)
    with transaction(seeded) as s:
        assert accounts.session_user(s, clock, first, timedelta(hours=8)) is not None
        set_password(s, "u", "cobalt-heron-vale")
    with transaction(seeded) as s:
        assert accounts.session_user(s, clock, first, timedelta(hours=8)) is None
        assert accounts.session_user(s, clock, second, timedelta(hours=8)) is None
        third = accounts.start_session(s, clock, s.get(User, user.id))  # type: ignore[arg-type]
        accounts.disable_user(s, "u")
    with transaction(seeded) as s:
        assert accounts.session_user(s, clock, third, timedelta(hours=8)) is None
