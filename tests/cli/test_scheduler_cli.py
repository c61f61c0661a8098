"""rollout scheduler run/status: status output, one-shot runs, refusals, clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine
from sqlalchemy.orm import Session

import service.scheduler as scheduler_module
from cli.main import main
from engine.db import make_engine, sessions, transaction
from engine.models import SchedulerState
from service.leader import FileLeader, lock_path

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def run(db_url: str) -> Callable[..., Result]:
    def invoke(*args: str) -> Result:
        return CliRunner().invoke(main, ["--db", db_url, *args], catch_exceptions=False)

    return invoke


@pytest.fixture
def fake_sweep(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stand in for the sweep and bulletins (service.sweep) with their signatures."""

    def run_sweep(session: Session, clock: Any, plan_code: str | None = None, templates: Any = None) -> dict[str, Any]:
        return {"queued": 2, "at": clock.now().isoformat()}

    def run_bulletins(session: Session, clock: Any, plan_code: str | None = None, templates: Any = None) -> dict[str, Any]:
        return {"bulletins": 1}

    monkeypatch.setattr(scheduler_module, "run_sweep", run_sweep)
    monkeypatch.setattr(scheduler_module, "run_bulletins", run_bulletins)


def read_state(db_url: str, key: str) -> Any:
    engine = make_engine(db_url)
    try:
        with transaction(sessions(engine)) as session:
            row = session.get(SchedulerState, key)
            return None if row is None else row.value
    finally:
        engine.dispose()


def test_status_of_a_database_that_never_ran_a_scheduler(run: Callable[..., Result]) -> None:
    result = run("scheduler", "status")
    assert result.exit_code == 0, result.output
    assert "调度主进程：无（从未运行）" in result.output
    assert "待发通知 0 条；失败（死信）0 条" in result.output
    english = run("--lang", "en", "scheduler", "status")
    assert "leader: none (never ran)" in english.output
    data = json.loads(run("scheduler", "status", "--json").output)
    assert data["leader"] is None
    assert data["outbox"] == {"pending": 0, "dead": 0}
    assert set(data["jobs"]) == {"sweep", "dispatch", "bulletins"}


def test_once_runs_every_job_with_the_app_clock_and_status_shows_it(
    run: Callable[..., Result], db_url: str, fake_sweep: None
) -> None:
    result = run("--now", "2021-09-01T08:00", "scheduler", "run", "--once")
    assert result.exit_code == 0, result.output
    assert "sweep: {'queued': 2" in result.output
    sweep = read_state(db_url, "job:sweep")
    assert sweep["ok"] is True
    assert sweep["result"]["at"] == "2021-09-01T00:00:00+00:00"  # --now, Asia/Shanghai 08:00
    assert read_state(db_url, "job:bulletins")["result"] == {"bulletins": 1}
    assert read_state(db_url, "job:dispatch")["result"]["claimed"] == 0
    status = run("scheduler", "status")
    assert "sweep" in status.output and "2021-09-01T00:00:00+00:00" in status.output
    assert status.output.count("成功") == 3
    data = json.loads(run("scheduler", "status", "--json").output)
    assert data["jobs"]["sweep"]["last"]["result"]["queued"] == 2


def test_once_without_a_plan_still_dispatches_and_exits_1(run: Callable[..., Result], db_url: str) -> None:
    # The real service.sweep: nothing loaded yet, so sweep and bulletins fail; delivery must not wait.
    result = run("--lang", "en", "scheduler", "run", "--once")
    assert result.exit_code == 1
    assert "sweep: failed: NotFound" in result.output
    assert "dispatch: {'claimed': 0" in result.output
    assert read_state(db_url, "job:dispatch")["ok"] is True
    assert read_state(db_url, "job:sweep")["ok"] is False
    status = run("--lang", "en", "scheduler", "status")
    assert "failed: NotFound" in status.output


@pytest.mark.parametrize(
    ("option", "value", "needle"),
    [("--bulletin-cron", "0 8 * * 1", "MON"), ("--bulletin-cron", "0 8 *", "5"), ("--sweep-every", "15x", "15m")],
)
def test_bad_schedules_are_usage_errors(run: Callable[..., Result], option: str, value: str, needle: str) -> None:
    result = CliRunner().invoke(main, ["--db", "sqlite:///unused.db", "scheduler", "run", option, value])
    assert result.exit_code == 2
    assert needle in result.output


def test_run_refused_while_another_sqlite_scheduler_holds_the_lock(sqlite_db: Engine) -> None:
    path = lock_path(sqlite_db)
    assert path is not None
    holder = FileLeader(path)
    assert holder.acquire()
    try:
        for args in (["scheduler", "run"], ["scheduler", "run", "--once"]):
            result = CliRunner().invoke(main, ["--db", str(sqlite_db.url), *args])
            assert result.exit_code == 1
            assert "另一个调度进程已在运行" in result.output
    finally:
        holder.release()


def test_sigterm_stops_the_service_cleanly(sqlite_db: Engine) -> None:
    url = str(sqlite_db.url)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "--db", url, "--lang", "en", "scheduler", "run"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        deadline = time.monotonic() + 60
        while read_state(url, "job:dispatch") is None:  # leader, and the first dispatch has run
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the scheduler did not run dispatch within 60 s"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "now the scheduler leader" in err
    assert "stopping after running jobs finish" in err
    leader = read_state(url, "leader")
    assert leader["stopped_at"]
    status = CliRunner().invoke(main, ["--db", url, "--lang", "en", "scheduler", "status"])
    assert "stopped" in status.output
    assert leader["id"] in status.output


def test_once_queues_bulletins_before_it_dispatches(run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> None:
    """A bulletin queued by a one-shot pass waited for the next pass (issue 17, 15): the pass runs
    sweep, bulletins, then dispatch, and prints them in that order."""
    calls: list[str] = []
    for name in ("sweep", "bulletins", "dispatch"):
        monkeypatch.setitem(scheduler_module.WORK, name, lambda engine, clock, name=name: calls.append(name) or {"n": 1})
    result = run("scheduler", "run", "--once")
    assert result.exit_code == 0, result.output
    assert calls == ["sweep", "bulletins", "dispatch"]
    assert [line.split(":")[0] for line in result.output.splitlines()] == calls
