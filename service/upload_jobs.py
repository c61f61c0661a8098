"""Big uploads as background jobs: read and committed away from the web's requests, with progress.

A province's million-row export takes about as long to preview as ``rollout progress import`` takes
to import it; a browser should not wait on that. Files over ``BACKGROUND_BYTES`` are handed to one
worker per web process (one big import at a time). By default the worker is a child *process*
(spawned, with its own database connection): an import is CPU-bound Python, and on a thread it
would hold the GIL against every page the web serves meanwhile (measured: bench/uploads.py,
docs/benchmarks.md). Tests use a thread (``processes=False``) to reach inside.

The job lives in the database, so closing the browser changes nothing: the result is on the job's
page when the officer comes back. Rows read are written to a small file beside the upload
(``<stored name>.progress``), not the database: a SQLite writer must not be interrupted by a
progress write, and a file is seen by every web worker process alike. The same file names the
process that owns the job (the web process while it is queued, then the child): a job reading or
committing whose owner is gone — the server restarted — is marked failed at start-up or when its
page is opened (``recover_jobs``, ``worker_gone``); its transaction died with the process, so nothing
was written, and the clerk retries it from the stored file. The child runs niced
(``WORKER_NICENESS``): the pages come first.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import socket
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine import (
    Clock,
    FixedClock,
    ImportJob,
    RolloutError,
    SystemClock,
    User,
    make_engine,
    mark_interrupted,
    release_commit,
    sessions,
    tr,
    transaction,
)
from service.uploads import commit_upload, preview_upload

READING, COMMITTING = "reading", "committing"
BACKGROUND_BYTES = 5 * 1024 * 1024  # about 80,000 progress rows: a few seconds inline
WORKER_NICENESS = 10  # the child process's niceness (nice(1)): below the web's own requests
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Progress:
    rows: int
    started: float  # time.time() when reading began
    owner: str = ""  # the process that has the job: "<pid>:<its start time>@<host>"


def _progress_path(folder: Path, stored_name: str) -> Path:
    return folder / f"{stored_name}.progress"


def progress_of(folder: Path, job: ImportJob) -> Progress | None:
    """How far a running job has read, from its progress file (None before the first rows)."""
    try:
        rows, started, *owner = _progress_path(folder, job.stored_name).read_text().split()
        return Progress(int(rows), float(started), owner[0] if owner else "")
    except (OSError, ValueError):
        return None


def _started(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), so a reused pid is not taken
    for the process that had it; empty where /proc is not there."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _me() -> str:
    return f"{os.getpid()}:{_started(os.getpid())}@{socket.gethostname()}"


def _alive(owner: str) -> bool:
    """Whether the owning process still runs; True when it cannot be told (another host)."""
    try:
        process, host = owner.rsplit("@", 1)
        pid, started = process.split(":", 1)
    except ValueError:
        return False
    if host != socket.gethostname():
        return True
    if not started:  # no /proc: ask the kernel whether the pid exists
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return _started(int(pid)) == started


def _write(path: Path, rows: int, started: float) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(f"{rows} {started} {_me()}")
    temporary.replace(path)  # atomic: a reader never sees half a line


def _counter(path: Path) -> Callable[[int], None]:
    started = time.time()

    def seen(rows: int) -> None:
        _write(path, rows, started)

    seen(0)
    return seen


def hold(folder: Path, job: ImportJob) -> None:
    """Mark a job handed to this web process's worker (queued, not yet started), before the
    request that queues it commits: a job reading or committing without a live owner is orphaned."""
    _write(_progress_path(folder, job.stored_name), 0, time.time())


def worker_gone(folder: Path, job: ImportJob) -> bool:
    """A job that is reading or committing but whose process no longer runs (a restart)."""
    if job.state not in (READING, COMMITTING):
        return False
    seen = progress_of(folder, job)
    return seen is None or not _alive(seen.owner)


def recover_jobs(factory: sessionmaker[Session], clock: Clock, folder: Path) -> list[int]:
    """At start-up: every job left reading or committing by a process that is gone is marked
    failed (nothing was written: its transaction died with it), so the clerk can retry it."""
    failed = []
    with transaction(factory) as db:
        for job in db.scalars(select(ImportJob).where(ImportJob.state.in_((READING, COMMITTING)))):
            if worker_gone(folder, job):
                mark_interrupted(job, clock)
                _progress_path(folder, job.stored_name).unlink(missing_ok=True)
                failed.append(job.id)
    if failed:
        log.warning("upload jobs %s were interrupted (their worker is gone): marked failed", failed)
    return failed


def _fail(factory: sessionmaker[Session], clock: Clock, job_id: int, message: str) -> None:
    with transaction(factory) as db:
        job = db.get(ImportJob, job_id)
        if job is not None:
            job.state = "failed"
            job.problems = [{"row": None, "column": None, "field": None, "message": message[:2000]}]
            job.finished_at = clock.now()


def run_job(factory: sessionmaker[Session], clock: Clock, folder: Path, job_id: int, user_id: int,
            commit: bool) -> None:
    """Preview or commit one job in its own transaction; whatever goes wrong is recorded on it."""
    path: Path | None = None
    try:
        with transaction(factory) as db:
            job = db.get(ImportJob, job_id)
            user = db.get(User, user_id)
            if job is None or user is None:
                return
            path = _progress_path(folder, job.stored_name)
            seen = _counter(path)
            if commit:
                release_commit(job)
                commit_upload(db, clock, user, job, folder, progress=seen)
            else:
                preview_upload(db, clock, user, job, folder, progress=seen, keep=True)
    except RolloutError as exc:  # refused as a whole (file changed, database busy): say so on the job
        _fail(factory, clock, job_id, str(exc))
    except Exception:
        log.exception("upload job %s failed", job_id)
        _fail(factory, clock, job_id, tr("内部错误：请联系系统管理员（详见服务器日志）",
                                         "internal error: ask the administrator (see the server log)"))
    finally:
        if path is not None:
            path.unlink(missing_ok=True)


def _in_child(db_url: str, now: datetime | None, folder: str, job_id: int, user_id: int, commit: bool) -> None:
    """The child process's side: its own engine, the clock the web was given (``--now``) or the system's."""
    os.nice(WORKER_NICENESS)  # the pages' requests come first; the import takes what CPU is left
    engine = make_engine(db_url, kept_stage=True)
    try:
        run_job(sessions(engine), FixedClock(now) if now else SystemClock(), Path(folder), job_id, user_id, commit)
    finally:
        engine.dispose()


class JobRunner:
    """One worker (a child process, or a thread in tests) running previews and commits of big uploads."""

    def __init__(self, db_url: str, factory: sessionmaker[Session], clock: Clock, folder: Callable[[], Path], *,
                 processes: bool = True) -> None:
        self.db_url = db_url
        self.factory = factory
        self.clock = clock
        self.folder = folder
        self.processes = processes
        self._pool: Executor | None = None

    def _executor(self) -> Executor:
        if self._pool is None:
            if self.processes:  # spawn, not fork: the web process has threads and open connections
                self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
            else:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rollout-upload")
        return self._pool

    def submit(self, job_id: int, user_id: int, *, commit: bool) -> Future[None]:
        if self.processes:
            now = self.clock.now() if isinstance(self.clock, FixedClock) else None
            future = self._executor().submit(_in_child, self.db_url, now, str(self.folder()), job_id, user_id, commit)

            def died(done: Future[None]) -> None:  # the child was killed (out of memory …): not left "reading"
                if done.exception() is not None:
                    log.error("upload job %s: worker process failed: %s", job_id, done.exception())
                    _fail(self.factory, self.clock, job_id, tr("导入进程意外终止，未写入任何数据：请重新上传",
                                                               "the import process stopped unexpectedly; nothing was written: upload again"))

            future.add_done_callback(died)
            return future
        return self._executor().submit(run_job, self.factory, self.clock, self.folder(), job_id, user_id, commit)

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=False)
