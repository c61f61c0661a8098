"""``rollout serve --workers 2`` on PostgreSQL, as a real server process with real HTTP clients.

Several worker processes share one listening socket, and the kernel hands each new connection to
whichever worker accepts it first. What the in-process tests cannot show, this does:

- a session cookie issued by one worker is honoured by the other (they must sign with one key);
- two officers acting on the same school at once, each served by a different worker, get one
  success and one "已被他人修改" refusal (the optimistic lock across processes), never a 500 or
  two moves;
- the audit trail still verifies afterwards, and the workers honour ``--now`` like one process.

Which worker served a request is read from the operating system, not guessed: the server-side
socket of each client connection (``/proc/net/tcp``) belongs to exactly one worker's file table,
and the worker PIDs are the ones uvicorn logs as "Started server process". Linux only.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from engine.accounts import add_user
from engine.audit import verify_chains
from engine.clock import FixedClock
from engine.db import make_engine, sessions, transaction, upgrade
from engine.facts import set_fact
from engine.runs import fire
from tests.conftest import REPO, SHANGHAI, PgSchema
from tests.engine.builders import COUNTY_OFFICER, EARLY, add_teachers, events_of, seed_with_plan
from tests.web.conftest import PASSWORD, USERS

pytestmark = pytest.mark.postgres

SCHOOL = EARLY[0]
NOW = datetime(2021, 7, 1, 9, 0, tzinfo=SHANGHAI)
STALE = "已被他人修改"
ROUNDS = [("form", "api"), ("api", "form"), ("api", "api"), ("api", "api")]  # county's way, city's way

if not Path("/proc/net/tcp").exists():
    pytest.skip("needs Linux /proc to tell which worker served a connection", allow_module_level=True)


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    db_url: str
    workers: tuple[int, ...] = ()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _seed(db_url: str, tmp_path: Path) -> None:
    """Users, the plan, and one school in online study whose teachers all pass its gate."""
    clock = FixedClock(NOW)
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        with transaction(sessions(engine)) as s:
            seed_with_plan(s, clock, tmp_path)
            for name, (role, scope) in USERS.items():
                add_user(s, clock, username=name, role=role, scope=scope, password=PASSWORD, display_name=name)
            set_fact(s, clock, school_code=SCHOOL, name="plan_filed", value=1, actor=COUNTY_OFFICER)
            set_fact(s, clock, school_code=SCHOOL, name="team_members", value=4, actor=COUNTY_OFFICER)
            fire(s, clock, school_code=SCHOOL, trigger="advance", actor=COUNTY_OFFICER)
            add_teachers(s, SCHOOL, 3, online=30.0)
    finally:
        engine.dispose()


def _started_workers(log: Path) -> tuple[int, ...]:
    text = log.read_text(encoding="utf-8", errors="replace")
    if text.count("Application startup complete") < 2:
        return ()
    return tuple(int(p) for p in re.findall(r"Started server process \[(\d+)\]", text))


@pytest.fixture
def server(pg_schema: PgSchema, tmp_path: Path) -> Iterator[Server]:
    _seed(pg_schema.url, tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("ROLLOUT_SECRET_KEY", "ROLLOUT_NOW")}
    env["PYTHONUNBUFFERED"] = "1"
    log = tmp_path / "server.log"
    port = _free_port()
    cmd = [sys.executable, "-m", "cli.main", "--db", pg_schema.url, "--now", NOW.isoformat(),
           "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    srv = Server(proc, port, log, pg_schema.url)
    try:
        waiter = threading.Event()
        for _ in range(600):  # up to ~60 s for two workers to import and start; not a timing assertion
            srv.workers = _started_workers(log)
            if len(srv.workers) == 2 or proc.poll() is not None:
                break
            waiter.wait(0.1)
        assert len(srv.workers) == 2, log.read_text(encoding="utf-8", errors="replace")
        yield srv
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    text = log.read_text(encoding="utf-8", errors="replace")
    assert proc.returncode == 0, text
    assert "Traceback" not in text and "ERROR" not in text, text
    assert text.count("Finished server process") == 2, text


def _owner(port: int, client_port: int, workers: tuple[int, ...]) -> int:
    """The worker whose file table holds the server side of the connection from ``client_port``."""
    local, remote = f"0100007F:{port:04X}", f"0100007F:{client_port:04X}"
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        cols = line.split()
        if cols[1] == local and cols[2] == remote:
            inode = cols[9]
    assert inode, f"no server socket for client port {client_port}"
    owners = [pid for pid in workers
              if any(os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]" for fd in os.listdir(f"/proc/{pid}/fd"))]
    assert len(owners) == 1, owners
    return owners[0]


@dataclass
class Browser:
    """A cookie jar; each ``Conn`` made from it is one kept-alive TCP connection."""

    port: int
    cookies: dict[str, str] = field(default_factory=dict)

    def conn(self) -> Conn:
        return Conn(self)


class Conn:
    def __init__(self, browser: Browser):
        self.browser = browser
        self.http = http.client.HTTPConnection("127.0.0.1", browser.port, timeout=60)
        self.http.connect()
        assert self.http.sock is not None
        self.client_port = int(self.http.sock.getsockname()[1])

    def owner(self, srv: Server) -> int:
        return _owner(srv.port, self.client_port, srv.workers)

    def request(self, method: str, path: str, *, form: dict[str, str] | None = None,
                json_body: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
        hdrs = dict(headers or {})
        body: bytes | None = None
        if form is not None:
            body = urlencode(form).encode()
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        elif json_body is not None:
            body = json.dumps(json_body).encode()
            hdrs["Content-Type"] = "application/json"
        if self.browser.cookies:
            hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.browser.cookies.items())
        self.http.request(method, path, body=body, headers=hdrs)
        resp = self.http.getresponse()
        text = resp.read().decode("utf-8")
        for value in resp.headers.get_all("set-cookie") or []:
            name, _, rest = value.partition("=")
            self.browser.cookies[name.strip()] = rest.split(";", 1)[0]
        assert not resp.will_close, "the server closed a kept-alive connection"
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, text

    def close(self) -> None:
        self.http.close()


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def _login(conn: Conn, username: str) -> None:
    status, _, page = conn.request("GET", "/login")
    assert status == 200
    status, headers, text = conn.request("POST", "/login", form={"username": username, "password": PASSWORD,
                                                                   "csrf": _csrf(page)})
    assert status == 303 and headers["location"] == "/", text


def _conn_on(browser: Browser, srv: Server, worker: int) -> Conn:
    """A new connection that the kernel happened to hand to ``worker`` (bounded tries)."""
    for _ in range(200):
        conn = browser.conn()
        conn.request("GET", "/login")  # answered, so accepted: the server socket now has its owner
        if conn.owner(srv) == worker:
            return conn
        conn.close()
    raise AssertionError(f"200 connections and none went to worker {worker}")


def _act(conn: Conn, csrf: str, trigger: str, via: str, **fields: Any) -> tuple[bool, str]:
    """One action as an officer's form or API call: did it fire, and what was the officer told."""
    if via == "api":
        status, _, text = conn.request("POST", f"/api/schools/{SCHOOL}/actions/{trigger}", json_body=fields,
                                       headers={"X-CSRF-Token": csrf})
        assert status in (200, 409), text  # a lost race is a conflict, never a 500
        return status == 200, text if status == 200 else json.loads(text)["error"]
    status, headers, _ = conn.request("POST", f"/schools/{SCHOOL}/actions/{trigger}",
                                      form={"csrf": csrf, **{k: str(v) for k, v in fields.items()}})
    assert (status, headers.get("location")) == (303, f"/schools/{SCHOOL}")
    flash = re.search(r'<p class="flash (ok|error)">(.*?)</p>', conn.request("GET", f"/schools/{SCHOOL}")[2])
    assert flash, "no message after the form"
    return flash.group(1) == "ok", flash.group(2)


def _race(*calls: Callable[[], tuple[bool, str]]) -> list[tuple[bool, str]]:
    """Start the calls together, each in its own thread (and so on its own connection)."""
    barrier = threading.Barrier(len(calls), timeout=60)
    results: list[tuple[bool, str] | None] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(r is not None for r in results), "a racing request did not finish"
    return [r for r in results if r is not None]


def test_a_session_from_one_worker_is_honoured_by_the_other(server: Server) -> None:
    county = Browser(server.port)
    first = county.conn()
    _login(first, "county")
    issuer = first.owner(server)
    first.close()
    served: dict[int, int] = {pid: 0 for pid in server.workers}
    for _ in range(200):  # bounded; stops once both workers have answered this session a few times
        conn = county.conn()
        status, _, text = conn.request("GET", "/api/me")
        served[conn.owner(server)] += 1
        conn.close()
        assert status == 200, text
        assert json.loads(text)["username"] == "county"
        if min(served.values()) >= 3:
            break
    other = next(pid for pid in server.workers if pid != issuer)
    assert served[other] >= 3 and served[issuer] >= 3, served


def test_two_officers_at_once_on_two_workers_one_wins(server: Server) -> None:
    a, b = server.workers
    county_conn, city_conn = _conn_on(Browser(server.port), server, a), _conn_on(Browser(server.port), server, b)
    _login(county_conn, "county")
    _login(city_conn, "city")
    county_csrf = json.loads(county_conn.request("GET", "/api/me")[2])["csrf"]
    city_csrf = json.loads(city_conn.request("GET", "/api/me")[2])["csrf"]

    def state() -> tuple[str, int]:
        detail = json.loads(city_conn.request("GET", f"/api/schools/{SCHOOL}")[2])
        return detail["state"], int(detail["version"])

    wins = {"advance": 0, "return_for_rework": 0}
    for round_ in range(len(ROUNDS)):  # each round races both actions from the same version
        stage, version = state()
        assert stage == "online_study"
        # The county advances and the city returns the school, both from the version they saw,
        # by form or API on either side (a form posts slower than JSON, so it mostly loses).
        county_via, city_via = ROUNDS[round_]
        (advanced, county_told), (returned, city_told) = _race(
            partial(_act, county_conn, county_csrf, "advance", county_via, version=version),
            partial(_act, city_conn, city_csrf, "return_for_rework", city_via, version=version,
                    reason=f"第{round_ + 1}轮抽查"))
        assert advanced != returned, (county_told, city_told)  # exactly one success
        assert STALE in (city_told if advanced else county_told)
        if advanced:
            wins["advance"] += 1
            assert state()[0] == "practice"
            fired, told = _act(city_conn, city_csrf, "return_for_rework", "api", reason="复位")
        else:
            wins["return_for_rework"] += 1
            assert state()[0] == "planning"
            fired, told = _act(county_conn, county_csrf, "advance", "api")
        assert fired, told

    _, _, text = city_conn.request("GET", f"/api/audit?school={SCHOOL}")
    assert json.loads(text)["chains"]["ok"] is True  # as an office sees it on the audit page
    county_conn.close()
    city_conn.close()
    engine = make_engine(server.db_url)
    try:
        with transaction(sessions(engine)) as s:
            report = verify_chains(s)
            events = events_of(s, SCHOOL)
    finally:
        engine.dispose()
    assert report.ok, report.problems
    web = [e for e in events if e.actor in ("county", "city")]
    raced_returns = [e for e in web if e.trigger == "return_for_rework" and e.reason != "复位"]
    resets = [e for e in web if e.reason == "复位"]
    # Per round one raced event (the loser left no trace) and one reset back to online study.
    assert sum(wins.values()) == len(ROUNDS) and len(web) == 2 * len(ROUNDS)
    assert len(raced_returns) == wins["return_for_rework"] and len(resets) == wins["advance"]
    assert sum(e.trigger == "advance" for e in web) == len(ROUNDS)
    assert {e.at for e in web} == {NOW}  # the workers run on the --now clock, like one process
