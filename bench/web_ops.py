"""Web dashboard timings (issue 4): the overview and the overdue list, as a signed-in province
officer (50,000 schools) and a county officer, through the real ASGI app.

Each request goes through Starlette's in-process test client, so the time is the server's: routing,
session, one transaction, the queries and the Jinja2 page. Login is untimed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, select
from starlette.testclient import TestClient

from bench import baselines
from bench.generate import Dataset
from engine.accounts import add_user
from engine.clock import FixedClock
from engine.db import sessions, transaction
from engine.models import School, User
from web.app import create_app

PASSWORD = "bench-password-1"  # a throw-away user in a throw-away database


def _signed_in(engine: Engine, clock: FixedClock, role: str, scope: str) -> TestClient:
    username = f"bench-{role}-{scope}"
    with transaction(sessions(engine)) as session:
        if session.scalar(select(User.id).where(User.username == username)) is None:
            add_user(session, clock, username=username, role=role, scope=scope, password=PASSWORD)
    app = create_app(engine.url.render_as_string(hide_password=False), clock=clock, secret_key="bench")
    client = TestClient(app, follow_redirects=False)
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token, "no CSRF field on the login page"
    r = client.post("/login", data={"username": username, "password": PASSWORD, "csrf": token.group(1)})
    if r.status_code != 303:
        raise AssertionError(f"login failed: {r.status_code}")
    return client


def _county(engine: Engine) -> str:
    with sessions(engine)() as session:
        return str(session.scalar(select(School.county_code).order_by(School.county_code).limit(1)))


def first_school(engine: Engine) -> str:
    """The first school of the first county (the school page's benchmark: ~20 teachers)."""
    with sessions(engine)() as session:
        return str(session.scalar(select(School.code).where(School.county_code == _county(engine))
                                  .order_by(School.code).limit(1)))


def first_city(engine: Engine) -> str:
    with sessions(engine)() as session:
        return str(session.scalar(select(School.city_code).order_by(School.city_code).limit(1)))


def reset_peak() -> bool:
    """Start the process's peak-RSS count afresh (Linux ``clear_refs`` 5), so the request's own peak
    is read, not the sign-in's: argon2 hashing allocates 64 MiB and would mask the page. False
    where there is no /proc (the op then reports no request peak)."""
    refs = Path("/proc/self/clear_refs")
    if not refs.exists():
        return False
    refs.write_text("5")
    return True


def request_peak_mb() -> float | None:
    """The process's peak RSS (VmHWM) since ``reset_peak``, in MB."""
    found = re.search(r"^VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    return round(int(found.group(1)) / 1024, 1) if found else None


def page_timer(path: str | Callable[[Engine], str], scope: str, clock_at: datetime,
               mark: Callable[[float], None]) -> Callable[[Engine, Dataset], int]:
    """An op that GETs ``path`` as an officer of ``scope`` ('province' or 'county'); returns schools in scope.

    ``path`` may be a function of the database (a school's page, a city's download)."""

    def op(engine: Engine, ds: Dataset) -> int:
        clock = FixedClock(clock_at)
        code = "410000" if scope == "province" else _county(engine)
        role = "province_office" if scope == "province" else "county_office"
        url = path if isinstance(path, str) else path(engine)
        with _signed_in(engine, clock, role, code) as client:
            client.get(url)  # warm: template compile and the first connection are paid once per process
            fresh = reset_peak()
            t0 = time.perf_counter()
            r = client.get(url)
            mark(time.perf_counter() - t0)
            peak = request_peak_mb() if fresh else None
            if peak is not None:  # the highest of the repetitions
                baselines.extra["request_peak_mb"] = max(peak, baselines.extra.get("request_peak_mb", 0.0))
            if r.status_code != 200:
                raise AssertionError(f"{url}: {r.status_code}")
        with sessions(engine)() as session:
            column = School.province_code if scope == "province" else School.county_code
            return len(session.scalars(select(School.code).where(column == code)).all())

    return op
