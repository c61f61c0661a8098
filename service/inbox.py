"""The inbox folder: files an office receives by mail or SFTP, imported by the scheduler (issue 16).

``ROLLOUT_INBOX`` names a folder laid out as ``<inbox>/<account>/<kind>/``: the account whose name
the file is imported under (an office's or a platform's service account — its role and region
apply exactly as on the 导入数据 page) and the kind (``progress``, ``schools``, ``contacts``). Each
file is read at the scheduler's sweep once it has not changed for ``SETTLE_SECONDS`` (an SFTP
upload still being written is left alone), through the same preview and all-or-nothing audited
commit as an upload, and then moved to ``done/`` or ``failed/`` beside a ``.result.txt`` saying
what happened (Chinese first). A file with the same bytes as one this account already brought in
for that kind is not imported twice. A refused file is also recorded on the job's audit chain.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, select

from engine import Clock, RolloutError, User, create_job, find_idempotent, sessions, transaction
from engine.audit import append_event
from service.uploads import (
    SUFFIXES,
    check_upload,
    commit_upload,
    preview_upload,
    sha256_of,
    stored_name,
    upload_dir,
)

INBOX_ENV = "ROLLOUT_INBOX"
SETTLE_SECONDS = 60.0
KINDS = ("progress", "schools", "contacts")
log = logging.getLogger(__name__)


@dataclass
class InboxResult:
    imported: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    repeated: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # folders of no account, or of one that may not import


def inbox_folder() -> Path | None:
    value = os.environ.get(INBOX_ENV)
    return Path(value) if value else None


def _settled(path: Path, settle: float) -> bool:
    return time.time() - path.stat().st_mtime >= settle


def _file_away(path: Path, outcome: str, lines: list[str], now: str) -> None:
    """Move the file to done/ or failed/ under a name that does not collide, its result beside it."""
    target = path.parent / outcome
    target.mkdir(exist_ok=True)
    dest = target / f"{now}-{path.name}"
    shutil.move(str(path), dest)
    dest.with_name(dest.name + ".result.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _one(engine: Engine, clock: Clock, user_id: int, kind: str, path: Path) -> tuple[str, list[str]]:
    """Import one file as the account; (outcome folder, result lines)."""
    sha = sha256_of(path)
    key = f"inbox:{kind}:{sha}"
    with transaction(sessions(engine)) as db:
        user = db.get(User, user_id)
        assert user is not None
        earlier = find_idempotent(db, user, key)
        if earlier is not None:
            return "done", [f"相同内容的文件已导入过（导入任务 {earlier.id}），本次未重复导入。",
                            f"a file with the same bytes was brought in before (job {earlier.id}); not imported again."]
        check_upload(path.name, path.stat().st_size)
        folder = upload_dir()
        name = stored_name(path.name)
        shutil.copyfile(path, folder / name)
        job = create_job(db, clock, user, kind=kind, mapping="provincial-platform", filename=path.name,
                         stored_name=name, sha256=sha, size=path.stat().st_size, idempotency_key=key)
        preview_upload(db, clock, user, job, folder)
        if not job.problems:
            commit_upload(db, clock, user, job, folder)
        if job.state == "imported":
            return "done", [f"已导入（导入任务 {job.id}）：共 {job.total} 行，新增 {job.inserted}，更新 {job.updated}，未变 {job.unchanged}。",
                            f"imported (job {job.id}): {job.total} rows, {job.inserted} new, {job.updated} updated, "
                            f"{job.unchanged} unchanged.", f"SHA-256 {sha}"]
        problems = [f"第 {p['row']} 行 {p['field'] or ''}：{p['message']}" if p["row"] else p["message"]
                    for p in job.problems]
        append_event(db, chain=f"import:{job.id}", at=clock.now(), actor=user.username, role=user.role,
                     trigger="inbox_refused", reason=f"{kind} {job.filename} sha256={sha} problems={len(job.problems)}")
        return "failed", [f"未导入（导入任务 {job.id}）：文件有 {len(job.problems)} 个问题，一行都没有写入。改正后请重新放入收件箱。",
                          f"not imported (job {job.id}): {len(job.problems)} problem(s), nothing written.", *problems]


def scan_inbox(engine: Engine, clock: Clock, inbox: Path | None = None, settle: float = SETTLE_SECONDS) -> InboxResult:
    """Import every settled file of the inbox once; what happened to each."""
    result = InboxResult()
    inbox = inbox or inbox_folder()
    if inbox is None or not inbox.is_dir():
        return result
    stamp = clock.now().strftime("%Y%m%dT%H%M%S")
    for account in sorted(p for p in inbox.iterdir() if p.is_dir()):
        with transaction(sessions(engine)) as db:
            user = db.scalars(select(User).where(User.username == account.name, User.active.is_(True))).first()
            user_id = user.id if user is not None else None
        if user_id is None:
            result.skipped.append(account.name)
            continue
        for kind in KINDS:
            for path in sorted((account / kind).glob("*")) if (account / kind).is_dir() else []:
                if not path.is_file() or path.suffix.lower() not in SUFFIXES or not _settled(path, settle):
                    continue
                label = f"{account.name}/{kind}/{path.name}"
                try:
                    outcome, lines = _one(engine, clock, user_id, kind, path)
                except RolloutError as exc:  # refused as a whole (type, size, a role that may not import it)
                    outcome, lines = "failed", [f"未导入：{exc}", f"not imported: {exc}"]
                (result.imported if outcome == "done" and lines[0].startswith("已导入") else
                 result.repeated if outcome == "done" else result.failed).append(label)
                _file_away(path, outcome, lines, stamp)
                log.info("inbox %s: %s", label, lines[0])
    return result

