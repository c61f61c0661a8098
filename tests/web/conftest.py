"""Fixtures for the web dashboard: a seeded database, one user per role, a test client per user."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.testclient import TestClient

import engine.accounts as users_module
from engine.accounts import add_user
from engine.clock import FixedClock
from engine.db import make_engine, sessions, transaction
from tests.engine.builders import CITY, COUNTY, EARLY, OTHER_COUNTY, PROVINCE, seed_with_plan
from web.app import create_app

PASSWORD = "correct-horse-1"
# username -> (role, scope)
USERS = {
    "prov": ("province_office", PROVINCE),
    "city": ("city_office", CITY),
    "county": ("county_office", COUNTY),
    "other": ("county_office", OTHER_COUNTY),
    "school": ("school_admin", EARLY[0]),
    "sup": ("supervisor", COUNTY),
}


@pytest.fixture(autouse=True)
def _cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 at its default cost takes ~50 ms a hash; the rules under test do not depend on it."""
    monkeypatch.setattr(users_module, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@dataclass
class Site:
    app: Starlette
    engine: Engine
    clock: FixedClock

    def client(self) -> TestClient:
        return TestClient(self.app, follow_redirects=False)

    def login(self, client: TestClient, username: str, password: str = PASSWORD) -> None:
        page = client.get("/login")
        r = client.post("/login", data={"username": username, "password": password, "csrf": csrf_of(page.text)})
        assert r.status_code == 303, r.text

    def as_user(self, username: str) -> TestClient:
        client = self.client()
        self.login(client, username)
        return client


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field in the page"
    return match.group(1)


@pytest.fixture
def site(db_url: str, clock: FixedClock, tmp_path: Path) -> Iterator[Site]:
    engine = make_engine(db_url)
    with transaction(sessions(engine)) as s:
        seed_with_plan(s, clock, tmp_path)
        for name, (role, scope) in USERS.items():
            add_user(s, clock, username=name, role=role, scope=scope, password=PASSWORD, display_name=f"用户{name}")
    app = create_app(db_url, clock, secret_key="test-secret")
    with TestClient(app):  # runs the lifespan: the app's engine is disposed at the end
        yield Site(app, engine, clock)
    engine.dispose()
