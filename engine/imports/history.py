"""Progress history and provenance: what each import changed, as of which date, from which file.

Issue 11: an early warning needs each teacher's pace, so every accepted progress file keeps what
it changed (``teacher_progress``, one narrow row per changed teacher — never copies of unchanged
rows) under one ``progress_import`` row naming the file, its SHA-256, the export's as-of date, the
mapping and who imported it; the same facts go on the ``import:progress`` audit chain, so a
supervisor can see which file made a gate pass.

The merge here replaces ``Staging.merge`` for teachers: one join of the staged file against the
table finds the new and changed rows (the same single pass the plain merge made), and the UPDATE,
INSERT and history INSERT then touch only those. A re-import of an unchanged file therefore costs
what it did before the history existed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import Connection, func, insert, select, text
from sqlalchemy.orm import Session

from engine.audit import EventDraft, append_events
from engine.errors import ImportFileError, Problem
from engine.i18n import tr
from engine.imports.staging import Staging
from engine.models import ProgressImport

CHAIN = "import:progress"
TRIGGER = "progress_import"
VALUES = (
    "name", "school_code", "online_hours", "practice_hours",
    "points", "points_count", "evidence_count", "evidence_result", "role",
)
# What the history keeps: the figures gates and forecasts read (not names, not the point list).
TRACKED = ("online_hours", "practice_hours", "points_count", "evidence_count", "evidence_result")
# What a row keeps of the teacher's figures before it (migration 0018): a forecast's base.
PRIOR = ("online_hours", "practice_hours", "points_count", "evidence_count")
_CHANGED = "rollout_changed_teacher"
_LEAVING = "rollout_leaving_teacher"
# PostgreSQL's default (4 MB) spills the merge's hash join of a million staged rows against the
# teacher table into 16 batches on disk and its sort into an external merge.
MERGE_WORK_MEM = "256MB"


@dataclass(frozen=True)
class Counts:
    inserted: int
    updated: int
    unchanged: int
    left: int


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_as_of(conn: Connection, source: str, as_of: date) -> None:
    """History is kept in order: an export dated before the latest import's would rewrite the past."""
    latest = conn.scalar(select(func.max(ProgressImport.as_of)))
    if latest is not None and as_of < latest:
        raise ImportFileError(source, [Problem(source, tr(
            f"导出日期 {as_of} 早于上一次导入的 {latest}：历史按日期顺序保存，请检查 --as-of",
            f"as-of {as_of} is before the latest import's {latest}: history is kept in date order; check --as-of",
        ))])


def earlier_import(conn: Connection, sha256: str) -> int | None:
    """The first accepted import of a file with these exact bytes, if any."""
    return conn.scalar(select(func.min(ProgressImport.id)).where(ProgressImport.sha256 == sha256))


def merge_teachers(conn: Connection, staging: Staging, as_of: date, full: bool) -> Counts:
    """Apply the staged file to ``teacher``; returns what changed.

    The history cannot be written before the import row exists (it is keyed by it) and the import
    row should not exist for a file that changed nothing, so the changed rows stay in a temporary
    table until ``write_history`` (or ``drop_temporary``) is called.
    """
    staging.flush()
    pg = staging.postgres
    stage = staging.name
    if pg:
        conn.execute(text(f"ANALYZE {stage}"))
        conn.execute(text(f"SET LOCAL work_mem = '{MERGE_WORK_MEM}'"))
    distinct = "IS DISTINCT FROM" if pg else "IS NOT"
    differs = " OR ".join(f"t.{c} {distinct} s.{c}" for c in VALUES)
    temp = "CREATE TEMPORARY TABLE {} " + ("ON COMMIT DROP " if pg else "") + "AS "
    conn.execute(text(f"DROP TABLE IF EXISTS {_CHANGED}"))
    # In teacher id order, whatever the file's: the UPDATE and the history INSERT then walk the
    # teacher table and the history's (teacher, import) key in order. A 1 M-row file in another
    # order than the first import's took 89 s on SQLite, now 49 s (a file in that order: no change).
    # The teacher's figures before the change ride along: the history row keeps them (``prior_*``).
    priors = ", ".join(f"t.{c} AS prior_{c}" for c in PRIOR)
    conn.execute(text(
        temp.format(_CHANGED) + f"SELECT s.*, t.id AS tid, {priors} FROM {stage} AS s "
        f"LEFT JOIN teacher AS t ON t.platform_id = s.platform_id "
        f"WHERE t.id IS NULL OR t.left_on IS NOT NULL OR {differs} ORDER BY t.id"
    ))
    known, new = conn.execute(text(f"SELECT count(tid), count(*) - count(tid) FROM {_CHANGED}")).one()
    inserted = updated = 0
    if known:
        # The school and the leaving mark apart, only where they change: SQLite rewrites an index's
        # entries for every row whose UPDATE names one of its columns, changed or not, and the
        # school indexes are in school order, not the file's (1,000,000 scattered rewrites).
        # PostgreSQL compares an indexed column's old and new value (an equal one keeps the update
        # HOT), so there one UPDATE sets both: a second pass over the changed rows was 0.7–0.9 s.
        sets = ", ".join(f"{c} = c.{c}" for c in VALUES if pg or c != "school_code")
        updated = int(conn.execute(text(
            f"UPDATE teacher SET {sets}{', left_on = NULL' if pg else ''} FROM {_CHANGED} AS c WHERE teacher.id = c.tid"
        )).rowcount)
        if not pg:
            conn.execute(text(
                f"UPDATE teacher SET school_code = c.school_code, left_on = NULL FROM {_CHANGED} AS c "
                f"WHERE teacher.id = c.tid AND (teacher.school_code IS NOT c.school_code OR teacher.left_on IS NOT NULL)"
            ))
    if new:  # not a scan of a million changed rows for the new teachers a re-import seldom has (0.1 s)
        names = ", ".join(("platform_id", *VALUES))
        inserted = int(conn.execute(text(
            f"INSERT INTO teacher ({names}) SELECT {names} FROM {_CHANGED} WHERE tid IS NULL"
        )).rowcount)
    left = 0
    conn.execute(text(f"DROP TABLE IF EXISTS {_LEAVING}"))
    if full:
        conn.execute(text(
            temp.format(_LEAVING) + f"SELECT t.id AS tid FROM teacher AS t WHERE t.left_on IS NULL "
            f"AND NOT EXISTS (SELECT 1 FROM {stage} AS s WHERE s.platform_id = t.platform_id)"
        ))
        left = int(conn.execute(text(
            f"UPDATE teacher SET left_on = :as_of WHERE id IN (SELECT tid FROM {_LEAVING})"
        ), {"as_of": as_of}).rowcount)
    if pg:
        conn.execute(text("SET LOCAL work_mem TO DEFAULT"))
    total = staging.rows
    staging.drop()
    return Counts(inserted, updated, total - inserted - updated, left)


def write_history(conn: Connection, counts: Counts, import_id: int) -> None:
    """The changed and the leaving teachers' figures under ``import_id`` (after ``merge_teachers``),
    each with the teacher's figures before it (``prior_*``: NULL for a teacher new to the history)."""
    cols = ", ".join(TRACKED)
    priors = ", ".join(f"prior_{c}" for c in PRIOR)
    params = {"import_id": import_id}
    head = f"INSERT INTO teacher_progress (teacher_id, import_id, {cols}, left_school"
    if conn.execute(text("SELECT 1 FROM teacher_progress LIMIT 1")).first() is None:
        # The first import with history (a new database, or the first after migration 0006):
        # every present teacher's figures are the baseline later changes are measured from.
        conn.execute(text(
            head + f") SELECT t.id, :import_id, {', '.join('t.' + c for c in TRACKED)}, :flag "
            f"FROM teacher AS t WHERE t.left_on IS NULL"
        ), {**params, "flag": False})
    elif counts.inserted or counts.updated:
        # A known teacher's id came with the merge's join; only the new ones are looked up by
        # platform id (a million index lookups were a third of a changed 1 M-row file's history write).
        figures = ", ".join("c." + c for c in TRACKED)
        conn.execute(text(
            head + f", {priors}) SELECT c.tid, :import_id, {figures}, :flag, {', '.join('c.prior_' + c for c in PRIOR)} "
            f"FROM {_CHANGED} AS c WHERE c.tid IS NOT NULL"
        ), {**params, "flag": False})
        if counts.inserted:
            conn.execute(text(
                head + f") SELECT t.id, :import_id, {figures}, :flag "
                f"FROM {_CHANGED} AS c JOIN teacher AS t ON t.platform_id = c.platform_id WHERE c.tid IS NULL"
            ), {**params, "flag": False})
    if counts.left:
        current = ", ".join("t." + c for c in PRIOR)  # leaving changes no figure: its prior is its own
        conn.execute(text(
            head + f", {priors}) SELECT t.id, :import_id, {', '.join('t.' + c for c in TRACKED)}, :flag, {current} "
            f"FROM teacher AS t WHERE t.id IN (SELECT tid FROM {_LEAVING})"
        ), {**params, "flag": True})
    drop_temporary(conn)


def drop_temporary(conn: Connection) -> None:
    conn.execute(text(f"DROP TABLE IF EXISTS {_CHANGED}"))
    conn.execute(text(f"DROP TABLE IF EXISTS {_LEAVING}"))


def history_orphans(session: Session) -> tuple[int, int]:
    """(teachers, imports) the history names that do not exist. ``teacher_progress`` has no foreign
    keys (migration 0017: PostgreSQL's per-row checks were two thirds of a changed import's history
    write); its one writer takes ids it has just read and nothing deletes a teacher or an import,
    and ``audit verify`` checks it stays so with this."""
    teachers = session.scalar(text(
        "SELECT count(*) FROM (SELECT DISTINCT teacher_id FROM teacher_progress) d "
        "WHERE NOT EXISTS (SELECT 1 FROM teacher t WHERE t.id = d.teacher_id)"))
    imports = session.scalar(text(
        "SELECT count(*) FROM (SELECT DISTINCT import_id FROM teacher_progress) d "
        "WHERE NOT EXISTS (SELECT 1 FROM progress_import i WHERE i.id = d.import_id)"))
    return int(teachers or 0), int(imports or 0)


def record_import(
    conn: Connection, *, at: datetime, as_of: date, file_name: str, sha256: str, mapping: str,
    actor: str, full: bool, total: int, counts: Counts,
) -> int:
    """The import's provenance row and its audit event, in the import's transaction."""
    row = {
        "at": at, "as_of": as_of, "file_name": file_name[:300], "sha256": sha256, "mapping": mapping[:300],
        "actor": actor[:100], "full": full, "total": total, "inserted": counts.inserted,
        "updated": counts.updated, "unchanged": counts.unchanged, "left_school": counts.left,
    }
    import_id = int(conn.execute(insert(ProgressImport).returning(ProgressImport.id), row).scalar_one())
    # Rows rejected: always 0 for an accepted file (all or nothing); recorded so the event says so.
    details = {k: v for k, v in row.items() if k not in ("at", "actor")} | {"import_id": import_id, "rejected": 0}
    reason = tr(
        f"导入教师学习进度 {file_name}（截至 {as_of}）：新增 {counts.inserted}，更新 {counts.updated}，"
        f"未变 {counts.unchanged}，离校 {counts.left}",
        f"progress import {file_name} (as of {as_of}): {counts.inserted} inserted, {counts.updated} updated, "
        f"{counts.unchanged} unchanged, {counts.left} left",
    )
    with Session(bind=conn) as session:
        append_events(session, [EventDraft(
            chain=CHAIN, at=at, actor=actor, role="import", trigger=TRIGGER, reason=reason, gates=[details],
        )])
        session.flush()
    return import_id


@dataclass(frozen=True)
class DataAsOf:
    """Where the progress figures every page counts came from: the export's date (截至), its file,
    when it was imported and by whom — the 数据截至 line of the dashboard (issue 10)."""

    as_of: date
    file_name: str
    imported_at: datetime
    actor: str
    source: str = ""  # the column mapping it was read with ("built-in": the standard columns)


def latest_progress_import(session: Session) -> DataAsOf | None:
    """The newest accepted progress import (CLI, web upload or API alike: all go through
    ``import_progress``), or None before the first one."""
    found = latest_imports_by_source(session)
    return found[0] if found else None


def latest_imports_by_source(session: Session) -> list[DataAsOf]:
    """The newest import of each source (column mapping), newest first: an office that imports the
    online platform's export and another platform's practice hours sees how old each is (issue 10,
    "数据截至 per source"). Imports are a few dozen a year, so they are read whole."""
    newest: dict[str, DataAsOf] = {}
    for row in session.execute(select(ProgressImport.as_of, ProgressImport.file_name, ProgressImport.at,
                                      ProgressImport.actor, ProgressImport.mapping)
                               .order_by(ProgressImport.as_of.desc(), ProgressImport.id.desc())):
        newest.setdefault(row.mapping, DataAsOf(row.as_of, row.file_name, row.at, row.actor, row.mapping))
    return list(newest.values())
