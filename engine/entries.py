"""Bulk entry from files: facts, extension requests and decisions, and one decision for many schools.

Each row goes through the same function as the single command (``set_fact``, ``request_extension``,
``decide_extension``), so it is checked the same way (roles, ranges, the fact's stage, the cap) and
is its own audit event on the school's chain. All or nothing: every row is tried, every refusal is
listed with its row and field, and if there is any the whole file is refused (ImportFileError, the
caller's transaction rolls back what the good rows did). Idempotent: a row that changes nothing
(the same fact value, a request already pending, a decision already taken) is counted as unchanged.
Seed 002 / issue 14 item 9: 2,237 fact entries and 248 extension requests took 42–76 minutes as
separate commands.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.clock import Clock
from engine.errors import NotFound, RolloutError, TransitionRefused
from engine.extension import ExtensionRequest, decide_extension, pending_requests, request_extension
from engine.facts import set_fact
from engine.i18n import tr
from engine.imports.entries import read_extension_rows, read_fact_rows
from engine.models import AuditEvent, School, SchoolRun
from engine.plan import find_plan
from engine.runs import Actor, find_run
from engine.workflow.model import Workflow
from engine.workflow.versions import workflow_for_version


@dataclass
class EntryResult:
    kind: str  # facts | extensions
    source: str
    rows: int = 0
    changed: int = 0
    unchanged: int = 0
    by_action: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "source": self.source, "rows": self.rows, "changed": self.changed,
                "unchanged": self.unchanged, "by_action": self.by_action}


def _fact_name(wf: Workflow, written: str) -> str | None:
    """A fact by its id, or by the id or title (中文 or English) of a metric testing it."""
    for m in wf.metrics.values():
        if m.kind == "fact" and m.fact and written in (m.fact, m.id, m.title.zh, m.title.en):
            return m.fact
    return None


def _outside(session: Session, code: str, scope: str | None, contractor: str | None = None) -> str | None:
    """Why a row's school is refused for an upload confined to ``scope`` (an office's region) and,
    for a contractor's upload, to the schools assigned to ``contractor``; None when it is not."""
    if scope is None:
        return None
    school = session.get(School, code)
    if school is None or scope not in (school.county_code, school.city_code, school.province_code):
        return tr(f"学校 {code} 不在您的管辖范围 {scope} 内", f"school {code} is outside your region {scope}")
    if contractor is not None and session.scalar(select(SchoolRun.id).where(
            SchoolRun.school_code == code, SchoolRun.contractor == contractor, SchoolRun.withdrawn_at.is_(None))
            .limit(1)) is None:
        return tr(f"学校 {code} 未分配给承训单位“{contractor}”", f"school {code} is not assigned to contractor '{contractor}'")
    return None


def import_facts(session: Session, clock: Clock, path: str | Path, *, actor: Actor,
                 plan_code: str | None = None, source: str | None = None, scope: str | None = None,
                 contractor: str | None = None) -> EntryResult:
    """Record every row's fact as ``actor``; refuse the whole file if any row is refused. With
    ``scope`` (a web upload), a school outside that region is a problem of its row; with
    ``contractor`` too (a contractor's upload), a school not assigned to it."""
    rows, file = read_fact_rows(path, source)
    problems, cols = file.problems, file.columns
    result = EntryResult("facts", problems.source, len(rows))
    for row in rows:
        if (outside := _outside(session, row.school_code, scope, contractor)) is not None:
            problems.add(row.number, cols["code"], outside)
            continue
        try:
            run = find_run(session, row.school_code, plan_code)
        except NotFound as exc:
            problems.add(row.number, cols["code"], str(exc))
            continue
        wf = workflow_for_version(session, run.workflow_version_id)
        name = _fact_name(wf, row.fact)
        if name is None:
            problems.add(row.number, cols["fact"], tr(f"流程 {wf.key} 没有事实项“{row.fact}”", f"workflow {wf.key} has no fact '{row.fact}'"))
            continue
        metric = next(m for m in wf.metrics.values() if m.kind == "fact" and m.fact == name)
        if not metric.low <= row.value <= metric.high:
            problems.add(row.number, cols["value"], tr(f"事实项“{metric.title.zh}”的值应在 {metric.low:g} 到 {metric.high:g} 之间，不能是 {row.value:g}",
                                                       f"the fact '{metric.title.en}' must be from {metric.low:g} to {metric.high:g}, not {row.value:g}"))
            continue
        try:
            changed = set_fact(session, clock, school_code=row.school_code, name=name, value=row.value, actor=actor,
                               note=row.note, plan_code=plan_code)
        except TransitionRefused as exc:  # role or stage: refused before anything was written
            problems.add(row.number, cols["fact"], str(exc))
            continue
        result.changed += changed
        result.unchanged += not changed
    problems.raise_if_any()
    return result


def _already(session: Session, school_code: str, action: str, due: Any, reason: str, plan_code: str | None) -> bool:
    """The row was applied before (the same file imported again): the school's chain already holds
    this request (stage, date, reason) or this decision (its reason) for the stage it is in."""
    run = find_run(session, school_code, plan_code)
    trigger = {"request": "extension_request", "approve": "extend", "refuse": "extension_refuse"}[action]
    # A decision answers the latest request: one taken before it is for an earlier request.
    asked_at = session.scalar(select(func.max(AuditEvent.seq)).where(
        AuditEvent.run_id == run.id, AuditEvent.trigger == "extension_request")) or 0
    events = session.execute(select(AuditEvent.reason, AuditEvent.gates, AuditEvent.from_state, AuditEvent.seq).where(
        AuditEvent.run_id == run.id, AuditEvent.trigger == trigger))
    for said, gates, stage, seq in events:
        if stage != run.state or (action != "request" and seq < asked_at):
            continue
        if action == "request":
            asked = (gates or [{}])[0]
            if asked.get("due") == due.isoformat() and said == reason:
                return True
        elif action == "refuse" and said == reason:
            return True
        elif action == "approve" and said and reason in said:  # "批准延期申请（#n）：<reason>；新截止日期 …"
            return True
    return False


def _past_cap(session: Session, row: Any, plan_code: str | None) -> bool:
    """Whether a request was refused for its date (so the problem names the date's column)."""
    plan = find_plan(session, plan_code)
    cap = plan.extension_cap or plan.final_deadline
    return bool(cap and row.due and row.due > cap)


def import_extensions(session: Session, clock: Clock, path: str | Path, *, actor: Actor,
                      requester: Actor | None = None, plan_code: str | None = None,
                      source: str | None = None, scope: str | None = None,
                      contractor: str | None = None) -> EntryResult:
    """Requests (as ``requester``, default ``actor``) and decisions (as ``actor``), in file order;
    with ``scope`` (and ``contractor``), a school outside that region (or not assigned to that
    contractor) is a problem of its row."""
    rows, file = read_extension_rows(path, source)
    problems, cols = file.problems, file.columns
    result = EntryResult("extensions", problems.source, len(rows))
    for row in rows:
        if (outside := _outside(session, row.school_code, scope, contractor)) is not None:
            problems.add(row.number, cols["code"], outside)
            continue
        try:
            if _already(session, row.school_code, row.action, row.due, row.reason, plan_code):
                result.unchanged += 1
                continue
            if row.action == "request":
                assert row.due is not None
                request_extension(session, clock, school_code=row.school_code, due=row.due, reason=row.reason,
                                  actor=requester or actor, plan_code=plan_code)
            else:
                decide_extension(session, clock, school_code=row.school_code, approve=row.action == "approve",
                                 reason=row.reason, actor=actor, plan_code=plan_code)
        except NotFound as exc:
            problems.add(row.number, cols["code"], str(exc))
            continue
        except RolloutError as exc:  # refusals are raised before anything is written
            problems.add(row.number, cols.get("due") if row.action == "request" and _past_cap(session, row, plan_code)
                         else cols["action"], str(exc))
            continue
        result.changed += 1
        result.by_action[row.action] = result.by_action.get(row.action, 0) + 1
    problems.raise_if_any()
    return result


def decide_many(session: Session, clock: Clock, *, approve: bool, reason: str, actor: Actor,
                plan_code: str | None = None, region: str | None = None,
                schools: list[str] | None = None, contractor: str | None = None) -> list[ExtensionRequest]:
    """One decision for every pending request of the plan, of a region (county/city/province code),
    of a list of schools or of one contractor's schools (002: the contractor asks for its project):
    each its own audit event, all or none."""
    pending = pending_requests(session, plan_code)
    if contractor is not None:
        theirs = set(session.scalars(select(SchoolRun.school_code).where(
            SchoolRun.plan_id == find_plan(session, plan_code).id, SchoolRun.contractor == contractor)))
        if not theirs:
            raise NotFound(tr(f"承训单位“{contractor}”没有分配学校", f"contractor '{contractor}' has no schools assigned"))
        pending = [p for p in pending if p.school_code in theirs]
    if region is not None:
        inside = set(session.scalars(select(School.code).where(
            (School.county_code == region) | (School.city_code == region) | (School.province_code == region))))
        pending = [p for p in pending if p.school_code in inside]
    if schools is not None:
        wanted = set(schools)
        pending = [p for p in pending if p.school_code in wanted]
    for p in pending:
        decide_extension(session, clock, school_code=p.school_code, approve=approve, reason=reason, actor=actor,
                         plan_code=plan_code)
    return pending
