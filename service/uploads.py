"""Uploads as an office makes them in the browser (or a platform through the API): store, preview, commit.

Every kind goes through its one engine importer — progress and schools from ``engine.imports``,
contacts from ``notifications``, facts and extensions from ``engine`` (bulk entry, issue 14 item 9)
— first as a dry run (the preview: the same parsing, checks and
staging, counts per school instead of the merge), then, once confirmed, for real. That is why this
composition sits in the service layer: the contact importer lives above the engine.

Files are stored in the upload folder (``ROLLOUT_UPLOAD_DIR``, else ``rollout-uploads`` in the
system's temporary folder) under a random name, never the clerk's, and at most ``MAX_UPLOAD``
bytes: a province's million-row progress export is about 60 MB.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from engine import (
    Actor,
    Clock,
    Counts,
    ImportFileError,
    ImportJob,
    RolloutError,
    User,
    check_committable,
    import_extensions,
    import_facts,
    record_commit,
    record_failure,
    record_preview,
    require_upload,
    tr,
)
from engine.imports import (
    drop_kept,
    file_encoding,
    import_progress,
    import_schools,
    kept_keys,
    kept_rows,
    load_mapping,
    problems_workbook,
)
from engine.workflow import WORKFLOWS_DIR
from notifications import import_contacts

UPLOAD_DIR_ENV = "ROLLOUT_UPLOAD_DIR"
MAPPINGS_ENV = "ROLLOUT_MAPPINGS"  # a folder of an office's own mapping files (*.yaml)
MAX_UPLOAD = 100 * 1024 * 1024
SUFFIXES = (".csv", ".txt", ".xlsx")
SHIPPED_MAPPINGS = WORKFLOWS_DIR.parent / "mappings"
DEFAULT_MAPPING = "provincial-platform"
KIND_TITLES = {"progress": ("教师学习进度（平台导出）", "teachers' progress (platform export)"),
               "schools": ("学校名单", "school list"), "contacts": ("通知联系人", "notification contacts"),
               "facts": ("学校事实项（学校标识码、事实项、值）", "school facts (school code, fact, value)"),
               "extensions": ("延期申请与审批（学校标识码、操作、新截止日期、理由）",
                              "extension requests and decisions (school code, action, new due date, reason)")}

# What the preview's "header as understood" table and its problem rows call each field: an
# official reads 线上学时, not online_hours (ids stay for the API). Per kind, since "code" is a
# school's 学校标识码 in one file and "name" a teacher's 姓名 in another.
_SCHOOL_CODE = ("学校标识码", "school code")
FIELD_TITLES: dict[str, dict[str, tuple[str, str]]] = {
    "progress": {"platform_id": ("教师编号", "teacher id"), "name": ("姓名", "name"), "school_code": _SCHOOL_CODE,
                 "online_hours": ("线上学时", "online hours"), "practice_hours": ("校本实践学时", "practice hours"),
                 "points": ("能力点", "capability points"), "evidence_count": ("提交作品数", "evidence submitted"),
                 "evidence_result": ("测评结果", "assessment result")},
    "schools": {"code": _SCHOOL_CODE, "name": ("学校名称", "school name"), "county_code": ("县区代码", "county code"),
                "kind": ("学段", "school type"), "rural": ("是否农村", "rural"), "pilot": ("是否试点", "pilot")},
    "contacts": {"scope_code": ("地区或学校代码", "region or school code"), "level": ("级别", "level"),
                 "name": ("名称", "name"), "channel": ("渠道", "channel"), "address": ("地址", "address"),
                 "secret_ref": ("密钥名", "secret name"), "lang": ("语言", "language")},
    "facts": {"code": _SCHOOL_CODE, "fact": ("事实项", "fact"), "value": ("值", "value"), "note": ("备注", "note")},
    "extensions": {"code": _SCHOOL_CODE, "action": ("操作", "action"), "due": ("新截止日期", "new due date"),
                   "reason": ("理由", "reason")},
}


def field_title(kind: str, field: str | None) -> str:
    """The field's name in the user's language; the id itself for one this table does not know."""
    if not field:
        return ""
    title = FIELD_TITLES.get(kind, {}).get(field)
    return field if title is None else tr(*title)


class UploadError(RolloutError):
    """An upload refused before any importer read it (type, size, unknown mapping, file changed)."""


class UploadTooLarge(UploadError):
    """Over MAX_UPLOAD (the web answers 413)."""


def upload_dir() -> Path:
    folder = Path(os.environ.get(UPLOAD_DIR_ENV) or Path(tempfile.gettempdir()) / "rollout-uploads")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


def mapping_choices() -> dict[str, Path]:
    """Mapping files by name: the shipped ones, then an office's own (``ROLLOUT_MAPPINGS``), which
    may replace a shipped one of the same name. Only names are chosen in a form, never paths."""
    found: dict[str, Path] = {}
    folders = [SHIPPED_MAPPINGS]
    if os.environ.get(MAPPINGS_ENV):
        folders.append(Path(os.environ[MAPPINGS_ENV]))
    for folder in folders:
        if folder.is_dir():
            found.update({p.stem: p for p in sorted(folder.glob("*.yaml"))})
    return found


def _mapping(name: str) -> Any:
    choices = mapping_choices()
    if name not in choices:
        raise UploadError(tr(f"没有列名映射“{name[:60]}”", f"no column mapping '{name[:60]}'"))
    # The shipped default is the base every office mapping is laid over (engine.imports.mapping).
    return load_mapping(None if name == DEFAULT_MAPPING else choices[name])


def check_mapping(name: str) -> None:
    if name not in mapping_choices():
        raise UploadError(tr(f"没有列名映射“{name[:60]}”", f"no column mapping '{name[:60]}'"))


def check_upload(filename: str, size: int) -> None:
    """Refuse a file by its name's type or its size, before it is read."""
    if size == 0:
        raise UploadError(tr("请选择要上传的文件", "choose a file to upload"))
    if Path(filename).suffix.lower() not in SUFFIXES:
        raise UploadError(tr("只能上传 CSV 或 XLSX 文件（.csv / .xlsx）", "only CSV or XLSX files (.csv / .xlsx) can be uploaded"))
    if size > MAX_UPLOAD:
        raise UploadTooLarge(tr(f"文件太大（最多 {MAX_UPLOAD // 1024 // 1024} MB）",
                                f"file too large (at most {MAX_UPLOAD // 1024 // 1024} MB)"))


def stored_name(filename: str) -> str:
    """A random name in the upload folder, keeping the type the importers read it by."""
    suffix = Path(filename).suffix.lower()
    return f"{secrets.token_hex(16)}{'.csv' if suffix == '.txt' else suffix}"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def rows_from_json(raw: Path, out: Path) -> int:
    """An API client's JSON rows (``{"rows": [{header: value, …}, …]}`` or a bare list) as a CSV
    the importers read like any export: the first row's keys are the header (rollout's field names
    or the mapping's Chinese headers). Row ``i`` of the list is row ``i + 2`` of the CSV, which is
    the row number problems name. The CSV is the importers' input, not a file people open, so it
    is written as sent (engine/export.py would add apostrophes to values such as ``-1``)."""
    try:
        data = json.loads(raw.read_bytes())
    except (ValueError, RecursionError) as exc:
        raise UploadError(tr("请求内容不是有效的 JSON", "the request body is not valid JSON")) from exc
    rows = data.get("rows") if isinstance(data, dict) else data
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise UploadError(tr('JSON 应为 {"rows": [{列名: 值, …}, …]}，且至少一行',
                             'the JSON must be {"rows": [{header: value, …}, …]} with at least one row'))
    header = [str(k) for k in rows[0]]
    with out.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for index, row in enumerate(rows):
            cells = []
            for key in header:
                value = row.get(key)
                if value is not None and not isinstance(value, str | int | float | bool):
                    raise UploadError(tr(f"第 {index} 行（rows[{index}]）的“{key[:40]}”不是文字或数字",
                                         f"rows[{index}] '{key[:40]}' is not text or a number"))
                cells.append("" if value is None else str(value))
            extra = [k for k in row if k not in header]
            if extra:
                raise UploadError(tr(f"rows[{index}] 有第一行没有的列：{str(extra[0])[:40]}",
                                     f"rows[{index}] has a key the first row lacks: {str(extra[0])[:40]}"))
            writer.writerow(cells)
    return len(rows)


KEPT_DAYS = 7  # a preview's kept rows wait this long for a confirm; later the commit reads the file again


def kept_key(job: ImportJob) -> str:
    """The name a progress preview keeps its checked rows under: the job and the file's SHA-256."""
    return f"{job.id}_{job.sha256[:16].lower()}"


def prune_kept(session: Session, clock: Clock) -> int:
    """Drop kept rows no job waits for (imported, failed, problems, gone, or ready for too long)."""
    conn = session.connection()
    dropped = 0
    for key in kept_keys(conn):
        job = session.get(ImportJob, int(key.split("_", 1)[0]))
        waiting = (job is not None and kept_key(job) == key and job.state in ("reading", "ready", "committing")
                   and job.finished_at is not None
                   and (clock.now() - job.finished_at).total_seconds() < KEPT_DAYS * 86400)
        if not waiting:
            drop_kept(conn, key)
            dropped += 1
    return dropped


def _import(session: Session, job: ImportJob, path: Path, *, dry_run: bool, clock: Clock, user: User,
            on_header: Callable[[int, dict[str, Any]], None] | None = None,
            progress: Callable[[int], None] | None = None, keep: bool = False) -> Counts:
    """The job's kind through its one importer, confined to the job's region. A progress file is
    recorded in the import history (issue 11) under the clerk's file name and the uploader; its
    preview keeps the checked rows and its commit merges those when they are all there."""
    if job.kind in ("facts", "extensions"):
        return _entries(session, job, path, dry_run=dry_run, clock=clock, user=user)
    common: dict[str, Any] = {"dry_run": dry_run, "scope": job.scope_code, "source": job.filename, "on_header": on_header}
    if job.kind == "contacts":
        r: Any = import_contacts(session, path, **common)
    elif job.kind == "schools":
        r = import_schools(session, path, _mapping(job.mapping), progress, **common)
    else:
        key = kept_key(job)
        rows = None if dry_run else kept_rows(session.connection(), key)
        staged = None
        if rows is not None and rows == job.total:
            staged = key  # every previewed row is kept: merge them, the file is not read again
        r = import_progress(session, path, _mapping(job.mapping), progress, **common, clock=clock,
                            keep=key if dry_run and keep else None, staged=staged,
                            actor=user.username, file_name=job.filename, mapping_name=job.mapping or None)
    return Counts(r.total, r.inserted, r.updated, r.unchanged, tuple(r.groups))


def _entries(session: Session, job: ImportJob, path: Path, *, dry_run: bool, clock: Clock, user: User) -> Counts:
    """Facts or extensions, each row through the command's own function as the uploader (its role
    decides which facts it may record and whether it may decide). These importers write as they
    go, so the dry run is the real import inside a savepoint that is then rolled back: the preview
    finds exactly the problems the commit would."""
    actor = Actor(user.username, user.role)
    confine: dict[str, Any] = {"source": job.filename, "scope": job.scope_code,
                               "contractor": user.contractor if user.role == "contractor" else None}
    nested = session.begin_nested()
    try:
        if job.kind == "facts":
            r = import_facts(session, clock, path, actor=actor, **confine)
        else:
            r = import_extensions(session, clock, path, actor=actor, **confine)
    except BaseException:
        nested.rollback()
        raise
    if dry_run:
        nested.rollback()
    else:
        nested.commit()
    return Counts(r.rows, 0, r.changed, r.unchanged, tuple((a, 0, n, 0) for a, n in sorted(r.by_action.items())))


def preview_upload(session: Session, clock: Clock, user: User, job: ImportJob, folder: Path,
            progress: Callable[[int], None] | None = None, *, keep: bool = False) -> ImportJob:
    """Read the stored file as a dry run and record what it would do, or every problem it has.
    ``keep`` (the background worker's big files): keep a progress file's checked rows for the
    commit. Small files are read again at the commit in a moment, and on SQLite keeping rows
    takes the side database's one write lock, which a page's request should never wait for."""
    require_upload(user, job.kind)
    keep = keep and job.kind == "progress"
    if keep:
        prune_kept(session, clock)
    path = folder / job.stored_name
    header: dict[str, Any] = {"header_row": None, "fields": []}

    def seen(row: int, columns: dict[str, Any]) -> None:
        header["header_row"] = row
        header["fields"] = [{"field": c.field, "header": c.header, "column": c.index} for c in columns.values()]

    encoding: str | None = None
    try:
        encoding = file_encoding(path)
        counts = _import(session, job, path, dry_run=True, clock=clock, user=user, on_header=seen, progress=progress,
                         keep=keep)
    except ImportFileError as exc:
        record_preview(job, clock, encoding=encoding, columns=[header], counts=None, problems=exc.problems)
        return job
    record_preview(job, clock, encoding=encoding, columns=[header], counts=counts, problems=[])
    return job


def commit_upload(session: Session, clock: Clock, user: User, job: ImportJob, folder: Path,
                  progress: Callable[[int], None] | None = None) -> ImportJob:
    """Import a previewed file for real, all or nothing, and audit it. A file whose preview had
    problems, or which changed on disk since, is refused; problems the commit itself finds (the
    database moved since the preview) leave nothing written and the job marked failed."""
    require_upload(user, job.kind)
    check_committable(job)
    path = folder / job.stored_name
    if not path.is_file() or sha256_of(path) != job.sha256:
        raise UploadError(tr("已存的文件与预览时不一致：请重新上传", "the stored file differs from the one previewed: upload it again"))
    try:
        with session.begin_nested():
            counts = _import(session, job, path, dry_run=False, clock=clock, user=user, progress=progress)
    except ImportFileError as exc:
        record_failure(job, clock, exc.problems)
        drop_kept(session.connection(), kept_key(job))
        return job
    record_commit(session, clock, user, job, counts)
    return job


def problems_xlsx(job: ImportJob, folder: Path) -> bytes:
    """The preview's problems beside the clerk's own rows (engine.imports.problems_workbook)."""
    header_row = job.columns[0].get("header_row") if job.columns else None
    title = tr(f"{job.filename} 的问题（共 {len(job.problems)} 条）", f"problems of {job.filename} ({len(job.problems)})")
    return problems_workbook(folder / job.stored_name, job.problems, header_row=header_row, title=title)
