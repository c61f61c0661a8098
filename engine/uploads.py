"""Files offices bring in through the web or the API: who uploaded what, its preview, its commit.

An upload is a job (``ImportJob``): the file is stored, read once as a dry run of the kind's real
importer (the preview: counts per school, every problem), and only committed when the preview had
no problem — the commit runs the same importer again, for real, after checking that the stored
file still has the SHA-256 that was previewed. The commit is audited on the job's own chain
(``import:<id>``): who, the file's name, its SHA-256, the counts.

A job is seen by the account that uploaded it and by colleagues of the same office (same role and
scope); anybody else gets NotFound, as for a school outside their region (engine/access.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from engine.access import require_upload, school_clause_for
from engine.audit.chain import append_event
from engine.clock import Clock
from engine.errors import NotFound, Problem, RolloutError
from engine.i18n import tr
from engine.models import School, User
from engine.records import ImportJob
from engine.text import clean_line

READY, PROBLEMS, IMPORTED, FAILED = "ready", "problems", "imported", "failed"
READING, UPLOADED, COMMITTING = "reading", "uploaded", "committing"
MAX_FILENAME = 200


class UploadRefused(RolloutError):
    """A job that may not be committed (problems, already imported, file changed)."""


def import_chain(job_id: int) -> str:
    return f"import:{job_id}"


def clean_filename(name: str) -> str:
    """The clerk's file name as shown and audited: the last path part, control characters gone."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return clean_line(base, "", 10**4)[:MAX_FILENAME] or "upload"


def create_job(session: Session, clock: Clock, user: User, *, kind: str, mapping: str, filename: str,
               stored_name: str, sha256: str, size: int, idempotency_key: str | None = None) -> ImportJob:
    """Record a stored upload; Forbidden when the user may not import ``kind``."""
    scope = require_upload(user, kind)
    job = ImportJob(user_id=user.id, username=user.username, role=user.role, scope_code=scope, kind=kind,
                    mapping=mapping, filename=clean_filename(filename), stored_name=stored_name, sha256=sha256,
                    size=size, columns=[], state=UPLOADED, rows_read=0, groups=[], problems=[],
                    idempotency_key=idempotency_key, created_at=clock.now())
    session.add(job)
    session.flush()
    return job


def _visible(user: User) -> Any:
    """The uploader's own jobs and those of its office (same role, same scope); a contractor's
    only its own (two contractors may share a role and a region)."""
    if user.role == "contractor":
        return ImportJob.user_id == user.id
    return or_(ImportJob.user_id == user.id,
               (ImportJob.role == user.role) & (ImportJob.scope_code == user.scope_code))


def job_for(session: Session, user: User, job_id: int) -> ImportJob:
    """The job if the user may see it; NotFound otherwise (same answer as a job that never was)."""
    job = session.scalars(select(ImportJob).where(ImportJob.id == job_id, _visible(user))).first()
    if job is None:
        raise NotFound(tr(f"没有导入任务 {job_id}", f"no import job {job_id}"))
    return job


def find_idempotent(session: Session, user: User, key: str) -> ImportJob | None:
    """The job this account already started with ``key`` (an API retry), if any."""
    return session.scalars(select(ImportJob).where(ImportJob.user_id == user.id,
                                                   ImportJob.idempotency_key == key)).first()


def list_jobs(session: Session, user: User, limit: int = 20) -> list[ImportJob]:
    return list(session.scalars(select(ImportJob).where(_visible(user)).order_by(ImportJob.id.desc()).limit(limit)))


def problem_rows(problems: Sequence[Problem]) -> list[dict[str, Any]]:
    """Problems as stored and as the API returns them: row, column, field, message."""
    return [{"row": p.line, "column": p.column, "field": p.field, "message": p.message} for p in problems]


@dataclass(frozen=True)
class Counts:
    """What an importer returned, whatever its kind: totals and per-group (code, ins, upd, same)."""

    total: int
    inserted: int
    updated: int
    unchanged: int
    groups: tuple[tuple[str, int, int, int], ...] = ()


def record_preview(job: ImportJob, clock: Clock, *, encoding: str | None, columns: list[dict[str, Any]],
                   counts: Counts | None, problems: Sequence[Problem]) -> None:
    """Store the dry run's outcome; a job with problems is never committed."""
    job.encoding, job.columns = encoding, columns
    job.problems = problem_rows(problems)  # capped by the importer, its "N more" line included
    if counts is not None:
        job.total, job.inserted, job.updated, job.unchanged = counts.total, counts.inserted, counts.updated, counts.unchanged
        job.groups = [list(g) for g in counts.groups]
        job.rows_read = counts.total
    job.state = PROBLEMS if problems else READY
    job.finished_at = clock.now()


def check_committable(job: ImportJob) -> None:
    if job.state == IMPORTED:
        raise UploadRefused(tr("这个文件已经导入过了", "this file has already been imported"))
    if job.state == COMMITTING:
        raise UploadRefused(tr("这个文件正在导入", "this file is being imported"))
    if job.state != READY or job.problems:
        raise UploadRefused(tr("文件有问题，不能导入：请改正后重新上传", "the file has problems and cannot be imported: fix it and upload again"))


def claim_commit(session: Session, job: ImportJob) -> None:
    """Mark a previewed job as being committed (in the background), in one conditional UPDATE:
    of two officers confirming at once, one wins and the other is told it is being imported."""
    check_committable(job)
    claimed = session.execute(update(ImportJob).where(ImportJob.id == job.id, ImportJob.state == READY)
                              .values(state=COMMITTING).execution_options(synchronize_session=False))
    if getattr(claimed, "rowcount", 0) != 1:
        raise UploadRefused(tr("这个文件正在导入", "this file is being imported"))
    session.refresh(job)


def release_commit(job: ImportJob) -> None:
    """The background worker takes a claimed job back to ready, to commit it (check_committable)."""
    if job.state == COMMITTING:
        job.state = READY


def record_commit(session: Session, clock: Clock, user: User, job: ImportJob, counts: Counts) -> None:
    """The job imported: its counts, and the audit event (who, file, SHA-256, counts)."""
    now = clock.now()
    job.state, job.committed_at, job.finished_at = IMPORTED, now, now
    job.total, job.inserted, job.updated, job.unchanged = counts.total, counts.inserted, counts.updated, counts.unchanged
    reason = (f"{job.kind} {job.filename} sha256={job.sha256} rows={counts.total} inserted={counts.inserted} "
              f"updated={counts.updated} unchanged={counts.unchanged}")
    append_event(session, chain=import_chain(job.id), at=now, actor=user.username, role=user.role,
                 trigger=f"import_{job.kind}", reason=reason,
                 gates=[{"file": job.filename, "sha256": job.sha256, "kind": job.kind, "scope": job.scope_code,
                         "total": counts.total, "inserted": counts.inserted, "updated": counts.updated,
                         "unchanged": counts.unchanged}])


def record_failure(job: ImportJob, clock: Clock, problems: Sequence[Problem]) -> None:
    """The commit found problems the preview did not (the database moved meanwhile)."""
    job.state, job.finished_at = FAILED, clock.now()
    job.problems = problem_rows(problems)


def mark_interrupted(job: ImportJob, clock: Clock) -> None:
    """A job whose worker is gone (the server restarted or the process was killed mid-file). Its
    preview or commit was one transaction, rolled back with the process: nothing was written."""
    job.state, job.finished_at = FAILED, clock.now()
    job.problems = [{"row": None, "column": None, "field": None, "message": tr(
        "导入中断：处理这个文件的服务进程已停止（例如服务器重启），未写入任何数据。请点击“重新读取”重试，或重新上传文件。",
        "the import was interrupted: the server process handling this file stopped (a restart, for example); "
        "nothing was written. Retry, or upload the file again.")}]


def reset_for_retry(job: ImportJob) -> None:
    """A failed job read again from the start (its stored file), as if just uploaded."""
    if job.state != FAILED:
        raise UploadRefused(tr("只有失败的导入可以重新读取", "only a failed import can be retried"))
    job.state, job.problems, job.groups, job.columns, job.encoding = UPLOADED, [], [], [], None
    job.total = job.inserted = job.updated = job.unchanged = None
    job.rows_read, job.finished_at, job.committed_at = 0, None, None


@dataclass(frozen=True)
class AsOf:
    """Where the data a page shows came from: the latest committed progress import."""

    at: datetime
    filename: str
    username: str
    scope_code: str


def latest_import(session: Session, user: User, kind: str = "progress") -> AsOf | None:
    """The latest committed import of ``kind`` touching the user's schools: one of their region
    or of a region above it (a province's export covers the county), for "数据截至"."""
    query = select(ImportJob).where(ImportJob.kind == kind, ImportJob.state == IMPORTED)
    scope = user.scope_code
    school = session.get(School, scope) if user.role == "school_admin" else None
    if school is None:
        school = session.scalars(select(School).where(school_clause_for(scope)).limit(1)).first()
    codes = [scope]
    if school is not None:  # the regions at or above the user's: their imports cover the user's schools
        chain = [school.county_code, school.city_code, school.province_code]
        above = chain if user.role == "school_admin" else chain[chain.index(scope) + 1:] if scope in chain else []
        codes += [c for c in above if c]
    job = session.scalars(query.where(ImportJob.scope_code.in_(codes)).order_by(ImportJob.committed_at.desc())
                          .limit(1)).first()
    if job is None or job.committed_at is None:
        return None
    return AsOf(job.committed_at, job.filename, job.username, job.scope_code)
