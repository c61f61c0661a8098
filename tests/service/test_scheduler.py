"""Scheduler: job registration, the job store in our database, catch-up after downtime, job records."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

import service.scheduler as sched
from engine.clock import FixedClock
from engine.db import sessions, transaction
from engine.models import Notification, SchedulerState
from service.leader import FileLeader, lock_path

SETTINGS = sched.Settings(sweep_every=timedelta(minutes=15), dispatch_every=timedelta(minutes=1))


def now() -> datetime:
    return datetime.now(UTC)


def wait_until(condition: Any, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {within}s")


def state(engine: Engine, key: str) -> Any:
    with transaction(sessions(engine)) as session:
        row = session.get(SchedulerState, key)
        return None if row is None else row.value


@pytest.fixture
def fake_sweep(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Stand in for the sweep and bulletins (service.sweep) and record how the jobs call them."""
    calls: list[tuple[str, Any]] = []

    def run_sweep(session: Session, clock: Any, plan_code: str | None = None, templates: Any = None) -> dict[str, Any]:
        assert session.in_transaction()
        calls.append(("sweep", clock))
        return {"queued": 3}

    def run_bulletins(session: Session, clock: Any, plan_code: str | None = None, templates: Any = None) -> dict[str, Any]:
        assert session.in_transaction()
        calls.append(("bulletins", clock))
        return {"bulletins": 1}

    monkeypatch.setattr(sched, "run_sweep", run_sweep)
    monkeypatch.setattr(sched, "run_bulletins", run_bulletins)
    return calls


def test_parse_every() -> None:
    assert sched.parse_every("15m") == timedelta(minutes=15)
    assert sched.parse_every(" 30S ") == timedelta(seconds=30)
    assert sched.parse_every("2h") == timedelta(hours=2)
    assert sched.parse_every("1d") == timedelta(days=1)
    for bad in ("0m", "15", "m", "1w", "-5m"):
        with pytest.raises(sched.ScheduleError):
            sched.parse_every(bad)


def test_bulletin_cron_in_shanghai_and_numeric_weekdays_refused() -> None:
    trigger = sched.bulletin_trigger("0 8 * * MON")
    first = trigger.get_next_fire_time(None, datetime(2021, 7, 1, tzinfo=UTC))  # a Thursday
    assert first is not None
    assert first.isoformat() == "2021-07-05T08:00:00+08:00"  # Monday 08:00 Beijing time
    for bad in ("0 8 * * 1", "0 8 * MON", "0 99 * * MON"):
        with pytest.raises(sched.ScheduleError):
            sched.bulletin_trigger(bad)


def test_jobs_registered_with_fixed_ids_and_catch_up_options(db: Engine) -> None:
    scheduler = sched.build_scheduler(db, SETTINGS, now())
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {"rollout-sweep", "rollout-dispatch", "rollout-bulletins"}
    for name, job_id in sched.JOB_IDS.items():
        job = jobs[job_id]
        assert job.func_ref == f"service.scheduler:{name}_job"
        assert job.coalesce is True
        assert job.max_instances == 1
        assert job.misfire_grace_time is None
        assert job.args == () and job.kwargs == {}  # nothing (like a password) pickled
    assert str(scheduler.timezone) == "Asia/Shanghai"
    sweep, dispatch = jobs["rollout-sweep"].trigger, jobs["rollout-dispatch"].trigger
    assert isinstance(sweep, IntervalTrigger) and sweep.interval == timedelta(minutes=15)
    assert isinstance(dispatch, IntervalTrigger) and dispatch.interval == timedelta(minutes=1)
    assert isinstance(jobs["rollout-bulletins"].trigger, CronTrigger)
    assert str(jobs["rollout-bulletins"].trigger.timezone) == "Asia/Shanghai"


def _start_paused(engine: Engine, at: datetime) -> BackgroundScheduler:
    scheduler = sched.build_scheduler(engine, SETTINGS, at, background=True)
    assert isinstance(scheduler, BackgroundScheduler)
    scheduler.start(paused=True)
    return scheduler


def test_job_store_round_trip_in_the_application_database(db: Engine) -> None:
    first = _start_paused(db, now())
    first.shutdown(wait=True)
    with db.connect() as conn:
        ids = set(conn.execute(text("SELECT id FROM apscheduler_jobs")).scalars())
    assert ids == set(sched.JOB_IDS.values())
    # A restart replaces the three jobs instead of adding copies, and they load back from the store.
    second = _start_paused(db, now())
    try:
        loaded = {job.id: job.func_ref for job in second.get_jobs()}
    finally:
        second.shutdown(wait=True)
    assert loaded == {job_id: f"service.scheduler:{name}_job" for name, job_id in sched.JOB_IDS.items()}
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM apscheduler_jobs")).scalar() == 3


def test_missed_bulletin_is_kept_on_restart_and_interval_jobs_run_at_start(db: Engine) -> None:
    _start_paused(db, now()).shutdown(wait=True)
    at = now()
    # Not missed: the bulletin waits for its cron time (a Monday 08:00 after now).
    fresh = {job.id: job for job in sched.build_scheduler(db, SETTINGS, at).get_jobs()}
    assert not hasattr(fresh["rollout-bulletins"], "next_run_time")
    missed = now() - timedelta(days=3)
    with db.begin() as conn:
        conn.execute(text("UPDATE apscheduler_jobs SET next_run_time = :t WHERE id = 'rollout-bulletins'"),
                     {"t": missed.timestamp()})
    jobs = {job.id: job for job in sched.build_scheduler(db, SETTINGS, at).get_jobs()}
    assert abs((jobs["rollout-bulletins"].next_run_time - missed).total_seconds()) < 1
    assert jobs["rollout-sweep"].next_run_time <= at  # due now: runs as soon as we start
    assert jobs["rollout-dispatch"].next_run_time <= at


def test_three_hours_down_runs_the_job_exactly_once(db: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[datetime] = []
    monkeypatch.setitem(sched.WORK, "dispatch", lambda engine, clock: calls.append(clock.now()) or {"n": len(calls)})
    _start_paused(db, now()).shutdown(wait=True)
    with db.begin() as conn:  # 180 one-minute slots missed
        conn.execute(text("UPDATE apscheduler_jobs SET next_run_time = :t WHERE id = 'rollout-dispatch'"),
                     {"t": (now() - timedelta(hours=3)).timestamp()})
    clock = FixedClock(datetime(2021, 7, 1, 1, 0, tzinfo=UTC))
    sched.bind(db, clock)
    scheduler = sched.build_scheduler(db, SETTINGS, now(), background=True)
    scheduler.start()
    try:
        wait_until(lambda: state(db, "job:dispatch") is not None)
        wait_until(lambda: scheduler.get_job("rollout-dispatch").next_run_time > now())
    finally:
        scheduler.shutdown(wait=True)
    assert len(calls) == 1
    assert state(db, "job:dispatch")["result"] == {"n": 1}


def test_run_job_records_result_and_failure(db: Engine, clock: FixedClock, monkeypatch: pytest.MonkeyPatch) -> None:
    outcome = sched.run_job("dispatch", db, clock)  # the real dispatcher on an empty outbox
    assert outcome["ok"] is True
    assert outcome["result"]["claimed"] == 0
    assert state(db, "job:dispatch") == outcome

    def broken(_engine: Engine, _clock: Any) -> None:
        raise ValueError("template missing")

    monkeypatch.setitem(sched.WORK, "dispatch", broken)
    with pytest.raises(ValueError):
        sched.run_job("dispatch", db, clock)
    recorded = state(db, "job:dispatch")
    assert recorded["ok"] is False
    assert recorded["error"] == "ValueError: template missing"
    assert recorded["finished_at"] == clock.now().isoformat()


def test_sweep_and_bulletin_jobs_call_the_engine_in_a_transaction(
    db: Engine, clock: FixedClock, fake_sweep: list[tuple[str, Any]]
) -> None:
    sched.bind(db, clock)
    sched.sweep_job()
    sched.bulletins_job()
    assert fake_sweep == [("sweep", clock), ("bulletins", clock)]
    assert state(db, "job:sweep")["result"] == {"queued": 3}
    assert state(db, "job:bulletins")["result"] == {"bulletins": 1}


def test_status_reports_leader_jobs_and_outbox(db: Engine, clock: FixedClock, tmp_path: Path) -> None:
    assert sched.status(db) == {
        "leader": None,
        "jobs": {name: {"last": None, "next_run_at": None} for name in sched.JOB_IDS},
        "outbox": {"pending": 0, "dead": 0},
    }
    with transaction(sessions(db)) as session:
        for i, status in enumerate(["pending", "pending", "dead", "sent"]):
            session.add(Notification(
                dedupe_key=f"k{i}", kind="reminder", channel="file", address=str(tmp_path / "out"), subject="s", body_text="b",
                status=status, attempts=0, next_attempt_at=clock.now() + timedelta(days=1), created_at=clock.now(),
            ))
    sched.record(db, clock, "leader", {"id": "host:1", "since": "2021-07-01T01:00:00+00:00", "heartbeat": "x"})
    sched.run_job("dispatch", db, clock)
    _start_paused(db, now()).shutdown(wait=True)
    data = sched.status(db)
    assert data["leader"]["id"] == "host:1"
    assert data["outbox"] == {"pending": 2, "dead": 1}
    assert data["jobs"]["dispatch"]["last"]["ok"] is True
    assert data["jobs"]["sweep"]["next_run_at"] is not None


def test_serve_on_sqlite_leads_until_stopped_then_releases(sqlite_db: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sched.WORK, "dispatch", lambda engine, clock: {"ok": 1})
    stop = threading.Event()
    said: list[str] = []
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(
        sched.serve(sqlite_db, SETTINGS, stop, said.append, heartbeat_seconds=0.1)))
    thread.start()
    try:
        wait_until(lambda: state(sqlite_db, "job:dispatch") is not None)  # due at once: first start
        path = lock_path(sqlite_db)
        assert isinstance(path, Path)
        assert not FileLeader(path).acquire()  # we lead, nobody else may
    finally:
        stop.set()
        thread.join(timeout=60)
    assert codes == [0]
    leader = state(sqlite_db, "leader")
    assert leader["stopped_at"]
    assert any("调度主进程" in line for line in said)
    other = FileLeader(path)
    assert other.acquire()  # released on the way out
    other.release()


@pytest.mark.postgres
def test_serve_on_postgresql_standby_takes_over_when_the_leader_stops(
    pg_schema: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.db import make_engine, upgrade
    from service.leader import PgAdvisoryLeader

    monkeypatch.setitem(sched.WORK, "sweep", lambda engine, clock: {"swept": True})
    monkeypatch.setitem(sched.WORK, "bulletins", lambda engine, clock: {})
    engine = make_engine(pg_schema.url)
    upgrade(engine)
    key = random.randint(1, 2**62)
    stops = [threading.Event(), threading.Event()]
    said: list[list[str]] = [[], []]
    codes: dict[int, int] = {}

    def serve(i: int) -> None:
        codes[i] = sched.serve(engine, SETTINGS, stops[i], said[i].append,
                               leader=PgAdvisoryLeader(engine, key), poll_seconds=0.1, heartbeat_seconds=0.1)

    threads = [threading.Thread(target=serve, args=(i,)) for i in (0, 1)]
    try:
        threads[0].start()
        wait_until(lambda: any("调度主进程" in line for line in said[0]))
        threads[1].start()
        wait_until(lambda: any("备用" in line for line in said[1]))
        first = state(engine, "leader")
        assert not first.get("stopped_at")
        stops[0].set()
        threads[0].join(timeout=60)
        wait_until(lambda: any("调度主进程" in line for line in said[1]))
        wait_until(lambda: not state(engine, "leader").get("stopped_at"))
    finally:
        for stop in stops:
            stop.set()
        for thread in threads:
            if thread.ident is not None:
                thread.join(timeout=60)
    try:
        assert codes == {0: 0, 1: 0}
        assert state(engine, "leader")["stopped_at"]
    finally:
        engine.dispose()


class _LosableLeader:
    """A lock that can be lost under us, as a PostgreSQL advisory lock is when its connection drops."""

    def __init__(self) -> None:
        self.gone = threading.Event()

    def acquire(self) -> bool:
        return not self.gone.is_set()

    def held(self) -> bool:
        return not self.gone.is_set()

    def release(self) -> None:
        return None


def test_a_leader_that_loses_its_lock_stops_at_once(sqlite_db: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The old leader ran on for ~10 s beside the standby that had taken over (issue 12, Low):
    no job may start once the lock is gone, and the service stops within a second, not at the
    next heartbeat."""
    runs: list[str] = []
    monkeypatch.setitem(sched.WORK, "dispatch", lambda engine, clock: runs.append("dispatch") or {})
    monkeypatch.setitem(sched.WORK, "sweep", lambda engine, clock: runs.append("sweep") or {})
    leader = _LosableLeader()
    stop = threading.Event()
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(
        sched.serve(sqlite_db, SETTINGS, stop, lambda _line: None, leader=leader, heartbeat_seconds=60)))
    thread.start()
    try:
        wait_until(lambda: "dispatch" in runs)
        leader.gone.set()
        seen = len(runs)
        sched._run_bound("dispatch")  # what APScheduler would call next
        assert len(runs) == seen
        thread.join(timeout=5)
        assert not thread.is_alive() and codes == [1]
    finally:
        stop.set()
        thread.join(timeout=60)
