"""Workflow versions in the database: what runs are pinned to, and the rule that protects them.

A school run pins one ``WorkflowVersion`` row; its rules must never change under it. So loading
the same id+version again is fine when the content is the same (nothing happens) or when no
school has started on it (the stored text is replaced); otherwise it is refused: a rule change
needs a new version.
"""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.clock import Clock
from engine.errors import NotFound, WorkflowVersionConflict
from engine.i18n import tr
from engine.models import SchoolRun, WorkflowVersion
from engine.reads import remembered
from engine.workflow.loader import load_workflow_text
from engine.workflow.model import Workflow

WORKFLOWS_DIR = Path(__file__).resolve().parents[2] / "workflows"

# (version row id, content hash) -> parsed workflow. Keyed by the hash too, so a replaced
# version (or the same id in another database) is never served stale.
_cache: dict[tuple[int, str], Workflow] = {}
# Web workers serve requests on threads: one parses a version while the others wait for it,
# instead of every thread parsing the same file at once after a start (measured: 100 concurrent
# first requests spent seconds each parsing in parallel).
_parse_lock = threading.Lock()


def shipped_workflow_paths() -> list[Path]:
    """The workflow files that come with rollout (``<repo>/workflows/*.yaml``), sorted."""
    return sorted(WORKFLOWS_DIR.glob("*.yaml"))


def register_workflow(session: Session, wf: Workflow, source_text: str, clock: Clock) -> WorkflowVersion:
    """Store ``wf`` (parsed from ``source_text``) as a loadable version; see the module docstring."""
    parsed = load_workflow_text(source_text, wf.source_name or wf.key)
    if wf.content_hash and wf.content_hash != parsed.content_hash:
        raise ValueError(f"{wf.key}: the workflow given does not match source_text")
    digest = parsed.content_hash
    existing = session.scalars(
        select(WorkflowVersion).where(
            WorkflowVersion.workflow_id == wf.id, WorkflowVersion.version == wf.version
        )
    ).one_or_none()
    if existing is None:
        row = WorkflowVersion(
            workflow_id=wf.id,
            version=wf.version,
            content_hash=digest,
            source=source_text,
            source_name=wf.source_name,
            loaded_at=clock.now(),
        )
        session.add(row)
        session.flush()
        return row
    if existing.content_hash == digest:
        return existing
    pinned = session.scalar(
        select(func.count()).select_from(SchoolRun).where(SchoolRun.workflow_version_id == existing.id)
    ) or 0
    if pinned:
        raise WorkflowVersionConflict(
            tr(
                f"工作流 {wf.key} 已有 {pinned} 所学校按此版本运行，内容不能再修改；"
                f"请在文件中把 version 改为新版本号后再加载",
                f"workflow {wf.key} is already used by {pinned} school(s) and its content can no longer "
                f"change; give the file a new version and load it again",
            )
        )
    existing.content_hash = digest
    existing.source = source_text
    existing.source_name = wf.source_name
    existing.loaded_at = clock.now()
    session.flush()
    return existing


def workflow_for_version(session: Session, version_id: int) -> Workflow:
    """The parsed workflow a run is pinned to (parsed once per process and content)."""
    # The hash first: the file's text (kilobytes) is read only when this process has not parsed it.
    digest = remembered(session, ("workflow_hash", version_id), lambda: session.scalar(
        select(WorkflowVersion.content_hash).where(WorkflowVersion.id == version_id)))
    if digest is None:
        raise NotFound(tr(f"工作流版本 {version_id} 不存在", f"workflow version {version_id} does not exist"))
    key = (version_id, digest)
    wf = _cache.get(key)
    if wf is None:
        with _parse_lock:
            wf = _cache.get(key)
            if wf is None:
                row = session.get(WorkflowVersion, version_id)
                assert row is not None
                wf = _cache[key] = load_workflow_text(row.source, row.source_name or f"{row.workflow_id}@{row.version}")
    return wf


def find_workflow(session: Session, id: str, version: str | None = None) -> WorkflowVersion:
    """The stored version ``id``@``version``, or the latest loaded one when ``version`` is None."""
    query = select(WorkflowVersion).where(WorkflowVersion.workflow_id == id)
    if version is not None:
        query = query.where(WorkflowVersion.version == version)
    row = session.scalars(
        query.order_by(WorkflowVersion.loaded_at.desc(), WorkflowVersion.id.desc()).limit(1)
    ).first()
    if row is None:
        what = f"{id}@{version}" if version is not None else id
        raise NotFound(
            tr(
                f"数据库中没有工作流 {what}（先用 rollout workflow load 加载）",
                f"no workflow {what} in the database (load it with rollout workflow load)",
            )
        )
    return row
