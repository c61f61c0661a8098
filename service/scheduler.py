"""The scheduler service: sweep, dispatch and the weekly bulletin on a timetable, in one process.

Why it looks like this (LIBRARY-NOTES "APScheduler 3.x"):

* jobs are pickled into ``apscheduler_jobs`` as a reference to a module-level function; a renamed
  function makes APScheduler delete the job, so the job functions here are small, stable, take no
  arguments (no database URL with a password is pickled) and look the real work up in ``WORK``;
* startup jobs have fixed ids and ``replace_existing=True``; replacing recomputes the next run
  from "now", which would silently skip a downtime, so a missed run time found in the job store
  is carried over and run once (``coalesce=True``, ``misfire_grace_time=None``); sweep and
  dispatch (interval jobs, both idempotent) simply run at start;
* the timezone is Asia/Shanghai explicitly: the default is the machine's zone;
* only the leader (service.leader) runs a scheduler: two schedulers on one store double-run jobs.

The scheduler runs on the real clock, but every job passes the clock on to the engine, so
``rollout sweep --now …`` replays the same functions.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, is_dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_SCHEDULER_START, SchedulerEvent
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED, BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, func, inspect, select, text

from engine import (
    Clock,
    Notification,
    RolloutError,
    SchedulerState,
    SystemClock,
    sessions,
    tr,
    transaction,
)
from notifications import dispatch
from service.inbox import inbox_folder, scan_inbox
from service.leader import Leader, identity, leader_for, refuse_second, wait_for_leadership
from service.sweep import run_bulletins, run_sweep

TIMEZONE = ZoneInfo("Asia/Shanghai")
JOB_TABLE = "apscheduler_jobs"  # excluded from Alembic by engine/migrations_filter.py
JOB_IDS = {"sweep": "rollout-sweep", "dispatch": "rollout-dispatch", "bulletins": "rollout-bulletins"}
LEADER_KEY = "leader"
LOCK_CHECK_SECONDS = 1.0


@dataclass(frozen=True)
class Settings:
    sweep_every: timedelta = timedelta(minutes=15)
    dispatch_every: timedelta = timedelta(minutes=1)
    bulletin_cron: str = "0 8 * * MON"
    templates: Path | None = None  # an office's override templates (--templates / ROLLOUT_TEMPLATES)


class ScheduleError(RolloutError):
    """An interval or cron expression the scheduler cannot use."""


_EVERY = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_every(value: str) -> timedelta:
    """``30s``, ``15m``, ``2h``, ``1d``."""
    match = _EVERY.match(value.lower())
    if not match or int(match.group(1)) == 0:
        raise ScheduleError(tr(f"无法识别的间隔 {value!r}（示例：30s、15m、2h、1d）",
                               f"unrecognised interval {value!r} (e.g. 30s, 15m, 2h, 1d)"))
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def bulletin_trigger(cron: str) -> CronTrigger:
    """A five-field crontab in Asia/Shanghai; the day of week must be a name (MON…SUN).

    APScheduler 3 numbers weekdays from 0 = Monday while crontab uses 0 = Sunday, so "1" would
    silently mean Tuesday: numbers are refused.
    """
    fields = cron.split()
    if len(fields) != 5:
        raise ScheduleError(tr(f"cron 表达式需要 5 个字段：{cron!r}", f"a cron expression needs 5 fields: {cron!r}"))
    if re.search(r"\d", fields[4]):
        raise ScheduleError(tr(f"星期请用英文缩写（MON…SUN），不要用数字：{cron!r}",
                               f"write the day of week as MON…SUN, not a number: {cron!r}"))
    try:
        return CronTrigger.from_crontab(cron, timezone=TIMEZONE)
    except ValueError as exc:
        raise ScheduleError(tr(f"无效的 cron 表达式 {cron!r}：{exc}", f"invalid cron expression {cron!r}: {exc}")) from exc


# --- the work each job does (engine, clock) -> result ------------------------------------------


def _sweep(engine: Engine, clock: Clock) -> Any:
    with transaction(sessions(engine)) as session:
        result = run_sweep(session, clock, templates=_bound.get("templates"))
    if inbox_folder() is not None:  # files received by mail/SFTP (service/inbox.py), each file once
        record(engine, clock, "job:inbox", {"result": _json_safe(scan_inbox(engine, clock)), "at": clock.now().isoformat()})
    return result


def _dispatch(engine: Engine, clock: Clock) -> Any:
    return dispatch(engine, clock, worker_id=f"scheduler:{identity()}")


def _bulletins(engine: Engine, clock: Clock) -> Any:
    with transaction(sessions(engine)) as session:
        return run_bulletins(session, clock, templates=_bound.get("templates"))


WORK: dict[str, Callable[[Engine, Clock], Any]] = {"sweep": _sweep, "dispatch": _dispatch, "bulletins": _bulletins}
# One pass queues before it delivers: the sweep's reminders and the week's bulletins are both in the
# outbox when dispatch runs, so nothing a pass queued waits for the next pass (issue 17, 15).
ONCE_ORDER = ("sweep", "bulletins", "dispatch")


def _json_safe(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    return json.loads(json.dumps(value, ensure_ascii=False, default=str))


def record(engine: Engine, clock: Clock, key: str, value: dict[str, Any]) -> None:
    """Upsert one SchedulerState row (whole value reassigned: in-place JSON edits are not saved)."""
    with transaction(sessions(engine)) as session:
        row = session.get(SchedulerState, key)
        if row is None:
            session.add(SchedulerState(key=key, value=value, updated_at=clock.now()))
        else:
            row.value = value
            row.updated_at = clock.now()


def run_job(name: str, engine: Engine, clock: Clock) -> dict[str, Any]:
    """Run one job now and record its outcome under ``job:<name>`` (failures too, then re-raise)."""
    started = clock.now()
    outcome: dict[str, Any] = {"started_at": started.isoformat()}
    try:
        result = WORK[name](engine, clock)
    except Exception as exc:
        outcome.update(ok=False, error=f"{type(exc).__name__}: {exc}", finished_at=clock.now().isoformat())
        record(engine, clock, f"job:{name}", outcome)
        raise
    outcome.update(ok=True, result=_json_safe(result), finished_at=clock.now().isoformat())
    record(engine, clock, f"job:{name}", outcome)
    return outcome


# --- what APScheduler pickles: stable, argument-free module-level functions --------------------

_bound: dict[str, Any] = {}


def bind(engine: Engine, clock: Clock, leader: Leader | None = None, lost: threading.Event | None = None,
         templates: Path | None = None) -> None:
    """Tell the job functions which database and clock this process serves, the lock it must hold
    to run them and the office's template folder."""
    _bound.update(engine=engine, clock=clock, leader=leader, lost=lost, templates=templates)


def _run_bound(name: str) -> None:
    if not _bound:
        raise RuntimeError("service.scheduler.bind() was not called in this process")
    leader, lost = _bound.get("leader"), _bound.get("lost")
    # A job never runs without the lock: a leader whose lock connection dropped ran on for ~10 s
    # beside the standby that had taken over. The watcher then shuts the scheduler down.
    if leader is not None and (lost is not None and lost.is_set() or not leader.held()):
        if lost is not None:
            lost.set()
        return
    run_job(name, _bound["engine"], _bound["clock"])


def sweep_job() -> None:
    _run_bound("sweep")


def dispatch_job() -> None:
    _run_bound("dispatch")


def bulletins_job() -> None:
    _run_bound("bulletins")


JOB_FUNCTIONS: dict[str, Callable[[], None]] = {"sweep": sweep_job, "dispatch": dispatch_job, "bulletins": bulletins_job}


# --- building the scheduler --------------------------------------------------------------------


def stored_next_runs(engine: Engine) -> dict[str, datetime]:
    """Next run times APScheduler persisted, read from its table without unpickling any job."""
    if not inspect(engine).has_table(JOB_TABLE):
        return {}
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT id, next_run_time FROM {JOB_TABLE} WHERE next_run_time IS NOT NULL"))
        return {str(r[0]): datetime.fromtimestamp(float(r[1]), UTC) for r in rows}


class ServiceScheduler(BlockingScheduler):
    """BlockingScheduler that does nothing once shut down.

    APScheduler 3.11 wakes its loop after ``shutdown()`` and processes due jobs once more: the
    executor refuses them, yet their next run time is advanced in the store, so a run due at
    that moment (e.g. a caught-up bulletin) would be lost.
    """

    def _process_jobs(self) -> float | None:
        if self.state == STATE_STOPPED:
            return None
        result: float | None = super()._process_jobs()
        return result


class BackgroundServiceScheduler(BackgroundScheduler):
    """The same, on a background thread (tests, embedding in another process)."""

    def _process_jobs(self) -> float | None:
        if self.state == STATE_STOPPED:
            return None
        result: float | None = super()._process_jobs()
        return result


def build_scheduler(
    engine: Engine, settings: Settings, now: datetime, *, background: bool = False
) -> BaseScheduler:
    """A scheduler with its job store in the application's database and our three jobs added.

    Not started; ``get_jobs()`` lists the jobs waiting to be written to the store on start.
    """
    scheduler_class: type[BaseScheduler] = BackgroundServiceScheduler if background else ServiceScheduler
    scheduler = scheduler_class(
        timezone=TIMEZONE,
        jobstores={"default": SQLAlchemyJobStore(engine=engine, tablename=JOB_TABLE)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
    )
    triggers = {
        "sweep": IntervalTrigger(seconds=settings.sweep_every.total_seconds(), timezone=TIMEZONE),
        "dispatch": IntervalTrigger(seconds=settings.dispatch_every.total_seconds(), timezone=TIMEZONE),
        "bulletins": bulletin_trigger(settings.bulletin_cron),
    }
    stored = stored_next_runs(engine)
    for name, trigger in triggers.items():
        extra: dict[str, Any] = {}
        missed = stored.get(JOB_IDS[name])
        if missed is not None and missed <= now:
            extra["next_run_time"] = missed  # a downtime is caught up once, not forgotten
        elif isinstance(trigger, IntervalTrigger):
            extra["next_run_time"] = now  # sweep and dispatch run at start, then every interval
        scheduler.add_job(
            JOB_FUNCTIONS[name], trigger, id=JOB_IDS[name], name=name, replace_existing=True,
            coalesce=True, max_instances=1, misfire_grace_time=None, **extra,
        )
    return scheduler


# --- the service -------------------------------------------------------------------------------


def _leader_value(since: datetime, clock: Clock, **extra: Any) -> dict[str, Any]:
    return {"id": identity(), "since": since.isoformat(), "heartbeat": clock.now().isoformat(), **extra}


def serve(
    engine: Engine,
    settings: Settings,
    stop: threading.Event,
    say: Callable[[str], None],
    *,
    leader: Leader | None = None,
    poll_seconds: float = 5.0,
    heartbeat_seconds: float = 30.0,
) -> int:
    """Become leader (or wait as standby), run the scheduler until ``stop`` is set or the lock is lost.

    Returns the process exit code: 0 after a requested stop, 1 when leadership was lost (a
    service manager restarts us and we queue up as standby again).
    """
    leader = leader or leader_for(engine)
    if engine.dialect.name != "postgresql":
        if not leader.acquire():
            raise refuse_second(engine)
    elif not wait_for_leadership(leader, stop, poll_seconds, on_standby=lambda: say(tr(
        "备用：另一个调度进程是主进程，每隔几秒重试接管……", "standby: another scheduler is the leader; retrying every few seconds…"
    ))):
        return 0
    clock = SystemClock()
    since = clock.now()
    lost = threading.Event()
    try:
        bind(engine, clock, leader, lost, settings.templates)
        record(engine, clock, LEADER_KEY, _leader_value(since, clock))
        say(tr(f"已成为调度主进程：{identity()}", f"now the scheduler leader: {identity()}"))
        scheduler = build_scheduler(engine, settings, clock.now())
        started = threading.Event()

        def on_start(_event: SchedulerEvent) -> None:
            started.set()

        def watch() -> None:
            started.wait()
            beat = time.monotonic()
            # The lock is checked every LOCK_CHECK_SECONDS (one small query), not only at each heartbeat.
            while not stop.wait(min(LOCK_CHECK_SECONDS, heartbeat_seconds)):
                if lost.is_set() or not leader.held():
                    lost.set()
                    break
                if time.monotonic() - beat >= heartbeat_seconds:
                    beat = time.monotonic()
                    record(engine, clock, LEADER_KEY, _leader_value(since, clock))
            scheduler.shutdown(wait=True)  # waits for running jobs, then start() returns

        scheduler.add_listener(on_start, EVENT_SCHEDULER_START)
        watcher = threading.Thread(target=watch, name="scheduler-watch", daemon=True)
        watcher.start()
        scheduler.start()
        watcher.join()
    finally:
        record(engine, clock, LEADER_KEY, _leader_value(since, clock, stopped_at=clock.now().isoformat()))
        leader.release()
    if lost.is_set():
        say(tr("失去调度主进程锁，退出", "lost the scheduler leader lock; exiting"))
        return 1
    return 0


def run_once(engine: Engine, clock: Clock, leader: Leader | None = None,
             templates: Path | None = None) -> dict[str, dict[str, Any]]:
    """Every job once, now, in order (for a timer instead of a resident service).

    A failing job does not stop the others (no plan loaded yet must not block delivery); each
    outcome says ``ok`` or the error, as ``scheduler status`` shows it.
    """
    leader = leader or leader_for(engine)
    if not leader.acquire():
        raise refuse_second(engine)
    outcomes: dict[str, dict[str, Any]] = {}
    _bound["templates"] = templates
    try:
        for name in ONCE_ORDER:
            try:
                outcomes[name] = run_job(name, engine, clock)
            except Exception:  # noqa: BLE001 - recorded by run_job; the next job still runs
                outcomes[name] = _last(engine, name)
    finally:
        leader.release()
    return outcomes


def _last(engine: Engine, name: str) -> dict[str, Any]:
    with transaction(sessions(engine)) as session:
        row = session.get(SchedulerState, f"job:{name}")
        return dict(row.value) if row is not None else {"ok": False}


# --- status ------------------------------------------------------------------------------------


def status(engine: Engine) -> dict[str, Any]:
    """What an operator checks: who leads, how each job last went, and the outbox backlog."""
    with transaction(sessions(engine)) as session:
        state = {row.key: (row.value, row.updated_at) for row in session.scalars(select(SchedulerState))}
        counted = session.execute(
            select(Notification.status, func.count()).where(Notification.status.in_(("pending", "dead")))
            .group_by(Notification.status)
        )
        counts = {str(status): int(n) for status, n in counted}
    leader = state.get(LEADER_KEY)
    next_runs = stored_next_runs(engine)
    jobs: dict[str, Any] = {}
    for name, job_id in JOB_IDS.items():
        value = state.get(f"job:{name}")
        nxt = next_runs.get(job_id)
        jobs[name] = {"last": value[0] if value else None, "next_run_at": nxt.isoformat() if nxt else None}
    return {
        "leader": leader[0] if leader else None,
        "jobs": jobs,
        "outbox": {"pending": counts.get("pending", 0), "dead": counts.get("dead", 0)},
    }
