"""Which process is the scheduler: exactly one per database.

APScheduler 3.x must not have two schedulers on one job store (LIBRARY-NOTES "APScheduler 3.x":
two schedulers ran a 1 s job 10 times in 6 s instead of 5), so a process only starts its
scheduler while it holds a lock nobody else can hold:

* PostgreSQL: a session-level ``pg_try_advisory_lock`` on a dedicated connection kept open.
  When the leader dies its session ends and the server releases the lock, so a standby that
  polls takes over without anyone cleaning up.
* SQLite: an exclusive non-blocking ``flock`` on ``<dbfile>.scheduler.lock``. SQLite deployments
  are single-host, so a second process is refused instead of waiting.
"""

from __future__ import annotations

import fcntl
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Protocol

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from engine import RolloutError, tr

# "rollout" in ASCII: fixed, so every process of one database competes for the same lock.
LEADER_LOCK_KEY = 0x726F6C6C6F7574


class SchedulerAlreadyRunning(RolloutError):
    """Another scheduler process holds the lock (SQLite: only one scheduler per database file)."""


class Leader(Protocol):
    def acquire(self) -> bool:
        """Try once, without blocking; True when this process is now the leader."""
        ...

    def held(self) -> bool:
        """Whether the lock is still ours (a PostgreSQL connection can drop under us)."""
        ...

    def release(self) -> None: ...


def identity() -> str:
    """How a leader is named in ``scheduler status``: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


class PgAdvisoryLeader:
    """Session-level advisory lock held on its own connection for the life of the process."""

    def __init__(self, engine: Engine, key: int = LEADER_LOCK_KEY):
        self.engine = engine
        self.key = key
        self._conn: Connection | None = None

    def acquire(self) -> bool:
        if self._conn is not None:
            return self.held()
        # AUTOCOMMIT: the lock is session-level, and an idle open transaction would be killed by
        # idle_in_transaction_session_timeout and would hold back vacuum.
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar())
        if got:
            self._conn = conn
        else:
            conn.close()
        return got

    def held(self) -> bool:
        if self._conn is None:
            return False
        # A bigint key shows in pg_locks as classid (high 32 bits), objid (low 32 bits), objsubid 1.
        sql = text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND pid = pg_backend_pid() AND objsubid = 1"
            " AND classid::bigint = :hi AND objid::bigint = :lo"
        )
        try:
            n = self._conn.execute(sql, {"hi": (self.key >> 32) & 0xFFFFFFFF, "lo": self.key & 0xFFFFFFFF}).scalar()
        except SQLAlchemyError:  # the session is gone, and the lock with it
            self._drop()
            return False
        return bool(n)

    def release(self) -> None:
        if self._conn is None:
            return
        try:
            self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
        except SQLAlchemyError:
            pass  # the session is gone, and the lock with it
        finally:
            self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.invalidate()  # never hand a connection that held the lock back to the pool
            conn.close()


class FileLeader:
    """Exclusive ``flock`` on a file next to the SQLite database; the kernel drops it on exit."""

    def __init__(self, path: Path):
        self.path = path
        self._file: IO[bytes] | None = None

    def acquire(self) -> bool:
        if self._file is not None:
            return True
        handle = open(self.path, "a+b")  # noqa: SIM115 - kept open while we lead
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.truncate(0)
        handle.write(identity().encode() + b"\n")
        handle.flush()
        self._file = handle
        return True

    def held(self) -> bool:
        return self._file is not None

    def release(self) -> None:
        handle, self._file = self._file, None
        if handle is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()


class SoloLeader:
    """In-memory SQLite: the database lives in this process, so nobody else can share it."""

    def acquire(self) -> bool:
        return True

    def held(self) -> bool:
        return True

    def release(self) -> None:
        return None


def lock_path(engine: Engine) -> Path | None:
    database = engine.url.database
    if not database or database == ":memory:":
        return None
    return Path(database).resolve().with_name(Path(database).name + ".scheduler.lock")


def leader_for(engine: Engine, key: int = LEADER_LOCK_KEY) -> Leader:
    if engine.dialect.name == "postgresql":
        return PgAdvisoryLeader(engine, key)
    path = lock_path(engine)
    return SoloLeader() if path is None else FileLeader(path)


def refuse_second(engine: Engine) -> SchedulerAlreadyRunning:
    path = lock_path(engine)
    return SchedulerAlreadyRunning(
        tr(
            f"另一个调度进程已在运行（锁文件 {path} 被占用）；SQLite 数据库只能有一个调度进程。"
            "如需多台主机或热备，请使用 PostgreSQL。",
            f"another scheduler process is already running (lock file {path} is held); a SQLite "
            "database can have only one scheduler. Use PostgreSQL for several hosts or a standby.",
        )
    )


def wait_for_leadership(
    leader: Leader,
    stop: threading.Event,
    poll_seconds: float = 5.0,
    on_standby: Callable[[], None] | None = None,
) -> bool:
    """Poll until this process leads (True) or ``stop`` is set (False).

    ``on_standby`` is called once, when the first attempt finds another leader.
    """
    told = False
    while not stop.is_set():
        if leader.acquire():
            return True
        if not told and on_standby is not None:
            on_standby()
        told = True
        stop.wait(poll_seconds)
    return False
