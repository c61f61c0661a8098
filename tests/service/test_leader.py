"""Leader election with real processes: one scheduler per database, a standby takes over on death."""

from __future__ import annotations

import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from engine.db import make_engine
from service.leader import FileLeader, PgAdvisoryLeader, leader_for, lock_path, wait_for_leadership

REPO = Path(__file__).resolve().parents[2]

# Takes the lock through our API, says so, then sleeps until killed.
CONTENDER = """
import sys, threading, time
from engine.db import make_engine
from service.leader import PgAdvisoryLeader, wait_for_leadership
engine = make_engine(sys.argv[1])
leader = PgAdvisoryLeader(engine, int(sys.argv[2]))
wait_for_leadership(leader, threading.Event(), 0.2, on_standby=lambda: print("STANDBY", flush=True))
print("LEADER", flush=True)
while True:
    time.sleep(1)
"""


class Proc:
    """A child process whose stdout lines arrive on a queue, so waits can be bounded."""

    def __init__(self, args: list[str]):
        self.popen = subprocess.Popen(
            args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()

    def _pump(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.put(line.strip())

    def expect(self, wanted: str, within: float = 30.0) -> list[str]:
        """Lines seen until ``wanted`` (bounded wait: fails instead of hanging)."""
        seen: list[str] = []
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            seen.append(line)
            if line == wanted:
                return seen
        raise AssertionError(f"no {wanted!r} within {within}s; saw {seen}")

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=30)
        self.pump.join(timeout=30)  # the pipe hits EOF once the child is gone
        if self.popen.stdout is not None:
            self.popen.stdout.close()


@pytest.fixture
def key() -> int:
    """A key of our own: advisory locks are per database, and other tests share the server."""
    return random.randint(1, 2**62)


@pytest.fixture
def pg(pg_schema: Any) -> Iterator[Engine]:
    engine = make_engine(pg_schema.url)
    yield engine
    engine.dispose()


@pytest.mark.postgres
def test_two_processes_one_leader_and_standby_takes_over(pg_schema: Any, key: int) -> None:
    first = Proc([sys.executable, "-c", CONTENDER, pg_schema.url, str(key)])
    second: Proc | None = None
    try:
        first.expect("LEADER")
        second = Proc([sys.executable, "-c", CONTENDER, pg_schema.url, str(key)])
        second.expect("STANDBY")
        # The standby keeps polling but never leads while the first lives.
        time.sleep(1.0)
        assert "LEADER" not in _drain(second)
        first.kill()
        second.expect("LEADER")  # its session ended, the server released the lock
    finally:
        first.kill()
        if second is not None:
            second.kill()


def _drain(proc: Proc) -> list[str]:
    out = []
    while not proc.lines.empty():
        out.append(proc.lines.get_nowait())
    return out


@pytest.mark.postgres
def test_advisory_lock_in_process(pg: Engine, key: int) -> None:
    one, two = PgAdvisoryLeader(pg, key), PgAdvisoryLeader(pg, key)
    assert one.acquire()
    assert one.held()
    assert not two.acquire()
    assert not two.held()
    one.release()
    assert not one.held()
    assert two.acquire()
    assert two.held()
    two.release()


@pytest.mark.postgres
def test_held_turns_false_when_the_session_is_killed(pg: Engine, key: int) -> None:
    from sqlalchemy import text

    leader = PgAdvisoryLeader(pg, key)
    assert leader.acquire()
    assert leader._conn is not None
    pid = leader._conn.execute(text("SELECT pg_backend_pid()")).scalar()
    with pg.connect() as admin:
        admin.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        admin.commit()
    assert not leader.held()
    successor = PgAdvisoryLeader(pg, key)
    assert successor.acquire()  # free for the next leader
    successor.release()


def test_file_lock_excludes_a_second_holder(tmp_path: Path) -> None:
    path = tmp_path / "rollout.db.scheduler.lock"
    one, two = FileLeader(path), FileLeader(path)
    assert one.acquire()
    assert not two.acquire()
    one.release()
    assert two.acquire()
    two.release()


def test_sqlite_lock_file_sits_next_to_the_database(sqlite_db: Engine) -> None:
    assert sqlite_db.url.database is not None
    path = lock_path(sqlite_db)
    assert path == Path(sqlite_db.url.database).resolve().with_name("rollout.db.scheduler.lock")
    assert isinstance(leader_for(sqlite_db), FileLeader)


@pytest.mark.parametrize(("lang", "needle"), [("zh", "另一个调度进程已在运行"), ("en", "another scheduler process is already running")])
def test_second_sqlite_scheduler_process_is_refused(sqlite_db: Engine, lang: str, needle: str) -> None:
    path = lock_path(sqlite_db)
    assert path is not None
    holder = FileLeader(path)
    assert holder.acquire()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "cli.main", "--db", str(sqlite_db.url), "--lang", lang, "scheduler", "run"],
            cwd=REPO, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)},
        )
    finally:
        holder.release()
    assert done.returncode == 1
    assert needle in done.stderr
    assert str(path) in done.stderr


def test_wait_for_leadership_stops_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    holder = FileLeader(path)
    assert holder.acquire()
    stop = threading.Event()
    told: list[bool] = []

    def standby() -> None:
        told.append(True)
        stop.set()

    assert not wait_for_leadership(FileLeader(path), stop, 0.05, on_standby=standby)
    assert told == [True]
    holder.release()
