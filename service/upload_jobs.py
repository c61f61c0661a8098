"""Big uploads as background jobs: read and committed on a worker thread, the page shows progress.

A province's million-row export takes about as long to preview as ``rollout progress import`` takes
to import it; a browser should not wait on that. Files over ``BACKGROUND_BYTES`` are handed to one
worker thread per process (one big import at a time; the web's own request threads stay free), and
the job's page shows rows read, the share of the file and the time left while it runs. The job lives
in the database, so closing the browser changes nothing: the result is on the job's page when the
officer comes back. Rows read are kept in memory (a SQLite writer must not be interrupted by a
progress write); the page of another worker process shows the state without the count.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from engine import Clock, ImportJob, RolloutError, User, release_commit, tr, transaction
from service.uploads import commit_upload, preview_upload

BACKGROUND_BYTES = 5 * 1024 * 1024  # about 80,000 progress rows: a few seconds inline
log = logging.getLogger(__name__)


@dataclass
class Progress:
    rows: int
    started: float


_progress: dict[int, Progress] = {}
_lock = threading.Lock()


def progress_of(job_id: int) -> Progress | None:
    with _lock:
        return _progress.get(job_id)


def _counter(job_id: int) -> Callable[[int], None]:
    started = time.monotonic()
    with _lock:
        _progress[job_id] = Progress(0, started)

    def seen(rows: int) -> None:
        with _lock:
            _progress[job_id] = Progress(rows, started)

    return seen


class JobRunner:
    """One worker thread running previews and commits of big uploads, each in its own transaction."""

    def __init__(self, factory: sessionmaker[Session], clock: Clock, folder: Callable[[], Path]) -> None:
        self.factory = factory
        self.clock = clock
        self.folder = folder
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rollout-upload")

    def submit(self, job_id: int, user_id: int, *, commit: bool) -> Future[None]:
        return self.pool.submit(self._run, job_id, user_id, commit)

    def _run(self, job_id: int, user_id: int, commit: bool) -> None:
        seen = _counter(job_id)
        try:
            with transaction(self.factory) as db:
                job = db.get(ImportJob, job_id)
                user = db.get(User, user_id)
                if job is None or user is None:
                    return
                folder = self.folder()
                if commit:
                    release_commit(job)
                    commit_upload(db, self.clock, user, job, folder, progress=seen)
                else:
                    preview_upload(db, self.clock, user, job, folder, progress=seen)
        except RolloutError as exc:  # refused as a whole (file changed, database busy): say so on the job
            self._fail(job_id, str(exc))
        except Exception:
            log.exception("upload job %s failed", job_id)
            self._fail(job_id, tr("内部错误：请联系系统管理员（详见服务器日志）", "internal error: ask the administrator (see the server log)"))
        finally:
            with _lock:
                _progress.pop(job_id, None)

    def _fail(self, job_id: int, message: str) -> None:
        with transaction(self.factory) as db:
            job = db.get(ImportJob, job_id)
            if job is not None:
                job.state = "failed"
                job.problems = [{"row": None, "column": None, "field": None, "message": message[:2000]}]
                job.finished_at = self.clock.now()

    def shutdown(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=False)
