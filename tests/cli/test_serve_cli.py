"""``rollout users add/list/disable/passwd`` and ``rollout serve`` through the real command line."""

from __future__ import annotations

import json
from typing import Any

import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner, Result
from sqlalchemy import select

import engine.accounts as users_module
from cli.main import main
from engine.accounts import authenticate
from engine.clock import FixedClock
from engine.db import make_engine, sessions, transaction
from engine.models import SchoolRun, User
from tests.engine.builders import COUNTY, EARLY, OTHER_COUNTY, seed, seed_with_plan


@pytest.fixture(autouse=True)
def _cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(users_module, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def seeded(db_url: str, clock: FixedClock) -> str:
    engine = make_engine(db_url)
    with transaction(sessions(engine)) as s:
        seed(s, clock)
    engine.dispose()
    return db_url


def run(db_url: str, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, ["--db", db_url, "--now", "2021-07-01", *args], input=stdin)


def ok(db_url: str, *args: str, stdin: str | None = None) -> Result:
    result = run(db_url, *args, stdin=stdin)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def _user(db_url: str, name: str) -> User:
    engine = make_engine(db_url)
    with transaction(sessions(engine)) as s:
        user = s.scalar(select(User).where(User.username == name))
    engine.dispose()
    assert user is not None
    return user


def test_add_list_disable(seeded: str) -> None:
    out = ok(seeded, "users", "add", "wang", "--role", "county_office", "--scope", COUNTY, "--name", "王主任",
             "--password-stdin", stdin="quartz-lantern-58\n")
    assert "wang" in out.output
    user = _user(seeded, "wang")
    assert user.password_hash.startswith("$argon2") and "quartz-lantern-58" not in user.password_hash
    rows = json.loads(ok(seeded, "users", "list", "--json").output)
    assert rows[0]["username"] == "wang" and rows[0]["scope"] == COUNTY and rows[0]["active"] is True
    assert "王主任" in ok(seeded, "users", "list").output
    ok(seeded, "users", "disable", "wang")
    assert _user(seeded, "wang").active is False


def test_password_prompted_twice(seeded: str) -> None:
    ok(seeded, "users", "add", "liu", "--role", "school_admin", "--scope", EARLY[0], stdin="mulberry-kite-42\nmulberry-kite-42\n")
    assert _user(seeded, "liu").scope_code == EARLY[0]


@pytest.mark.parametrize("args,needle", [
    (["--role", "county_office", "--scope", "370300"], "county"),  # a city code for a county role
    (["--role", "school_admin", "--scope", "9999999999"], "9999999999"),
    (["--role", "supervisor", "--scope", "123456"], "123456"),
])
def test_add_refuses_wrong_scope(seeded: str, args: list[str], needle: str) -> None:
    result = run(seeded, "--lang", "en", "users", "add", "x", *args, "--password-stdin", stdin="mulberry-kite-42\n")
    assert result.exit_code == 1 and needle in result.output


def test_add_refuses_short_password_and_duplicates(seeded: str) -> None:
    result = run(seeded, "users", "add", "x", "--role", "county_office", "--scope", COUNTY, "--password-stdin", stdin="short\n")
    assert result.exit_code == 1 and "8" in result.output
    ok(seeded, "users", "add", "x", "--role", "county_office", "--scope", COUNTY, "--password-stdin", stdin="mulberry-kite-42\n")
    result = run(seeded, "users", "add", "x", "--role", "county_office", "--scope", COUNTY, "--password-stdin", stdin="mulberry-kite-42\n")
    assert result.exit_code == 1 and "已存在" in result.output


def test_passwd_changes_password_and_lifts_lockout(seeded: str, clock: FixedClock) -> None:
    ok(seeded, "users", "add", "wang", "--role", "county_office", "--scope", COUNTY, "--password-stdin", stdin="amber-walrus-tide\n")
    engine = make_engine(seeded)
    factory = sessions(engine)
    for _ in range(5):
        with transaction(factory) as s:
            assert authenticate(s, clock, "wang", "wrong-one").user is None
    ok(seeded, "users", "passwd", "wang", "--password-stdin", stdin="cobalt-heron-vale\n")
    with transaction(factory) as s:
        assert authenticate(s, clock, "wang", "amber-walrus-tide").user is None
    with transaction(factory) as s:
        assert authenticate(s, clock, "wang", "cobalt-heron-vale").user is not None
    engine.dispose()
    assert run(seeded, "users", "passwd", "nobody", "--password-stdin", stdin="mulberry-kite-42\n").exit_code == 1


def test_serve_runs_uvicorn_with_the_app(seeded: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    seen: dict[str, Any] = {}

    def fake_run(app: Any, **kw: Any) -> None:
        seen.update(kw, app=app)
        with TestClient(app):  # start and stop it as uvicorn would: the lifespan disposes the engine
            pass

    monkeypatch.setattr(uvicorn, "run", fake_run)
    ok(seeded, "serve", "--host", "0.0.0.0", "--port", "8123")
    assert isinstance(seen["app"], Starlette) and seen["host"] == "0.0.0.0" and seen["port"] == 8123


def test_serve_refuses_an_uninitialised_database(tmp_path: Any) -> None:
    result = run(f"sqlite:///{tmp_path / 'empty.db'}", "serve")
    assert result.exit_code == 1 and "rollout init" in result.output


def test_add_a_contractor_account(db_url: str, clock: FixedClock, tmp_path: Any) -> None:
    """承训单位 accounts name their contractor, which must have schools assigned in the scope."""
    engine = make_engine(db_url)
    with transaction(sessions(engine)) as s:
        seed_with_plan(s, clock, tmp_path)
        s.scalars(select(SchoolRun).where(SchoolRun.school_code == EARLY[0])).one().contractor = "甲培训中心"
    engine.dispose()
    ok(db_url, "users", "add", "jia", "--role", "contractor", "--scope", COUNTY, "--contractor", "甲培训中心",
       "--password-stdin", stdin="mulberry-kite-42\n")
    assert _user(db_url, "jia").contractor == "甲培训中心"
    assert json.loads(ok(db_url, "users", "list", "--json").output)[0]["contractor"] == "甲培训中心"
    for args, needle in ((["--scope", COUNTY], "承训单位名称"), (["--scope", OTHER_COUNTY, "--contractor", "甲培训中心"], "没有分配学校"),
                         (["--scope", COUNTY, "--contractor", "乙"], "没有分配学校")):
        result = run(db_url, "users", "add", "x", "--role", "contractor", *args, "--password-stdin", stdin="mulberry-kite-42\n")
        assert result.exit_code == 1 and needle in result.output, result.output
