"""What pages and the JSON API show, gathered once so both give the same answers under the same scope."""

from __future__ import annotations

import io
import math
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import (
    Actor,
    Clock,
    Outcome,
    Plan,
    RolloutError,
    School,
    SchoolFact,
    SchoolRun,
    SheetColumn,
    User,
    action_label,
    audit_filter,
    audit_triggers,
    decide_extension,
    event_label,
    fact_title,
    find_run,
    fire,
    pending_request,
    recordable_facts,
    request_extension,
    require_fact_role,
    require_run,
    require_write,
    school_clause,
    school_detail,
    school_for,
    set_fact,
    stage_title,
    tr,
    trigger_title,
    xlsx_bytes,
)
from engine.audit import (
    LOCAL_TZ,
    EventRow,
    cells,
    count_events,
    export_csv,
    headers,
    list_events,
    run_chain,
    verify_chains,
)
from engine.workflow import workflow_for_version
from web.plans import pick_plan, school_plan

PAGE_SIZE = 50
OVERDUE_PAGE = 100


class BadInput(RolloutError):
    """A query parameter or form field the user can correct."""


def school(session: Session, clock: Clock, user: User, code: str, plan_code: str | None = None) -> dict[str, Any]:
    """One school's picture (engine.status.school_detail), with the words for its ids added: the
    actions it offers now, its history's triggers, stages and roles (display names for actors)."""
    school_for(session, user, code)
    detail = school_detail(session, clock, code, school_plan(session, user, code, plan_code))
    run = find_run(session, code, detail["plan"])
    require_run(user, run)  # a contractor's school in another programme's plan
    wf = workflow_for_version(session, run.workflow_version_id)
    pending = pending_request(session, run)
    detail["pending_extension"] = None if pending is None else {
        "stage": pending.stage, "stage_title": stage_title(wf, pending.stage), "due": pending.due,
        "reason": pending.reason, "requested_by": pending.requested_by}
    # Buttons only for what the user's role may fire (the engine refuses the rest anyway).
    detail["actions"] = [action_label(wf, t, detail["state"]) for t in detail["allowed"]
                         if user.role in getattr(wf.transition_for(t, detail["state"]), "roles", ())]
    detail["previous_title"] = stage_title(wf, detail["previous_state"])
    detail["history"] = with_display_names(session, [event_label(wf, e) for e in detail["history"]])
    return detail


def with_display_names(session: Session, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each event's ``actor_name``: the web user's display name, the system in words, else the name
    the CLI recorded."""
    names = dict(session.execute(select(User.username, User.display_name)
                                 .where(User.username.in_({e["actor"] for e in events}))).all()) if events else {}
    for e in events:
        e["actor_name"] = tr("系统（自动）", "system (automatic)") if e["actor"] == "system" else names.get(e["actor"]) or e["actor"]
    return events


def stages(session: Session, user: User, plan_code: str | None = None) -> list[dict[str, str]]:
    """The plan's stages in workflow order, with their titles (a filter's choices)."""
    wf = workflow_for_version(session, pick_plan(session, user, plan_code).workflow_version_id)
    return [{"id": s.id, "title": str(s.title)} for s in wf.stages]


def triggers(session: Session, user: User, plan_code: str | None = None) -> list[dict[str, str]]:
    """Every trigger the plan's audit trail can hold, with its words (a filter's choices)."""
    wf = workflow_for_version(session, pick_plan(session, user, plan_code).workflow_version_id)
    return [{"id": t, "title": trigger_title(wf, t)} for t in audit_triggers(wf)]


def outcome_titles(session: Session, code: str, out: Outcome) -> dict[str, str]:
    """The words for an action's trigger and stages (the API adds them beside the ids)."""
    wf = workflow_for_version(session, find_run(session, code, None).workflow_version_id)
    return {"trigger_title": trigger_title(wf, out.trigger, out.from_state),
            "from_title": stage_title(wf, out.from_state), "to_title": stage_title(wf, out.to_state)}


def outcome_message(session: Session, code: str, out: Outcome) -> str:
    """What the officer reads after an action: its title and the stages, in words."""
    titles = outcome_titles(session, code, out)
    what, src, dst = titles["trigger_title"], titles["from_title"], titles["to_title"]
    if out.from_state == out.to_state:
        return tr(f"已执行“{what}”（{src}）", f"done: {what} ({src})")
    return tr(f"已执行“{what}”：{src} → {dst}", f"done: {what}: {src} → {dst}")


def extension(session: Session, clock: Clock, user: User, code: str, decision: str, *, reason: str | None,
              due: str | None, plan_code: str | None = None) -> str:
    """Request (``request``), approve or refuse an extension through engine.extension, as the web user."""
    require_write(user)
    school_for(session, user, code)
    actor = Actor(user.username, user.role)
    if decision == "request":
        day = parse_date(due, "due")
        if day is None:
            raise BadInput(tr("请填写申请的截止日期", "the requested due date is missing"))
        request_extension(session, clock, school_code=code, due=day, reason=reason or "", actor=actor,
                          plan_code=school_plan(session, user, code, plan_code))
        return tr("已提交延期申请", "extension requested")
    if decision not in ("approve", "refuse"):
        raise BadInput(decision)
    decide_extension(session, clock, school_code=code, approve=decision == "approve", reason=reason or "", actor=actor,
                     plan_code=school_plan(session, user, code, plan_code))
    return tr("已批准延期", "extension approved") if decision == "approve" else tr("已驳回延期申请", "extension refused")


def facts(session: Session, user: User, code: str, plan_code: str | None = None) -> list[dict[str, Any]]:
    """The facts the user may record for the school in the plan (the form's choices), with their
    current values."""
    school_for(session, user, code)
    run = find_run(session, code, plan_code)
    require_run(user, run)
    wf = workflow_for_version(session, run.workflow_version_id)
    stored = {f.name: f for f in session.scalars(select(SchoolFact).where(SchoolFact.run_id == run.id))}
    out: list[dict[str, Any]] = []
    for m in recordable_facts(user, wf):
        assert m.fact is not None  # facts_for_role only yields fact metrics with a fact name
        current = stored.get(m.fact)
        out.append({"name": m.fact, "title": str(m.title), "unit": m.unit,
                    "value": None if current is None else current.value,
                    "recorded_by": None if current is None else current.recorded_by,
                    "recorded_at": None if current is None else current.recorded_at})
    return out


def record_fact(session: Session, clock: Clock, user: User, code: str, *, name: str | None, value: object,
                note: str | None, plan_code: str | None = None) -> dict[str, Any]:
    """Record a fact through engine.facts.set_fact, as the web user (same role rule, same audit event).

    Not behind require_write: the workflow's fact roles decide, so a supervisor may record the
    supervision result while every other action stays closed to them.
    """
    school_for(session, user, code)
    name = (name or "").strip()
    if not name:
        raise BadInput(tr("请选择事实项", "choose a fact"))
    plan_code = school_plan(session, user, code, plan_code)
    run = find_run(session, code, plan_code)
    wf = workflow_for_version(session, run.workflow_version_id)
    require_fact_role(user, wf, name)
    number = parse_number(value, "value")
    changed = set_fact(session, clock, school_code=code, name=name, value=number, actor=Actor(user.username, user.role),
                       note=(note or "").strip() or None, plan_code=plan_code)
    return {"school_code": code, "name": name, "title": fact_title(wf, name), "value": number,
            "changed": changed}


def parse_number(value: object, field: str) -> float:
    """A finite number from a form field or a JSON value (true/false mean 1/0, as in gates)."""
    if isinstance(value, bool | int | float):
        number = float(value)
    elif isinstance(value, str) and value.strip():
        try:
            number = float(value.strip())
        except ValueError as exc:
            raise BadInput(tr(f"{field} 不是数字：{value}", f"{field} is not a number: {value}")) from exc
    else:
        raise BadInput(tr(f"请填写 {field}（数字，如 1 表示是、0 表示否）", f"{field} is missing (a number, e.g. 1 for yes, 0 for no)"))
    if not math.isfinite(number):
        raise BadInput(tr(f"{field} 不是有限数字：{value}", f"{field} is not a finite number: {value}"))
    return number


def parse_date(value: str | None, field: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise BadInput(tr(f"{field} 不是日期（YYYY-MM-DD）：{value}", f"{field} is not a date (YYYY-MM-DD): {value}")) from exc


def act(session: Session, clock: Clock, user: User, code: str, trigger: str, *, reason: str | None,
        due: str | None, version: str | None, plan_code: str | None = None) -> Outcome:
    """One action through the engine, as the web user (same gates, same audit event)."""
    require_write(user)
    school_for(session, user, code)
    expected = None
    if version:
        try:
            expected = int(version)
        except ValueError as exc:
            raise BadInput(f"version: {version}") from exc
    return fire(session, clock, school_code=code, trigger=trigger, actor=Actor(user.username, user.role),
                reason=(reason or "").strip() or None, due=parse_date(due, "due"), expected_version=expected,
                plan_code=school_plan(session, user, code, plan_code))


def _local_start(day: date | None) -> datetime | None:
    return None if day is None else datetime.combine(day, time(), ZoneInfo(LOCAL_TZ))


def audit_events(session: Session, user: User, params: dict[str, str], *, paged: bool = True) -> tuple[list[EventRow], bool]:
    """Audit events in scope matching the filters; ``until`` is a local date, inclusive."""
    kwargs: dict[str, Any] = {}
    if params.get("school"):
        school_for(session, user, params["school"])
        kwargs["school"] = params["school"]
    for key in ("actor", "trigger"):
        if params.get(key):
            kwargs[key] = params[key]
    kwargs["since"] = _local_start(parse_date(params.get("since"), "since"))
    until = parse_date(params.get("until"), "until")
    kwargs["until"] = _local_start(date.fromordinal(until.toordinal() + 1)) if until else None
    kwargs |= audit_filter(user)
    if not paged:
        return list_events(session, **kwargs), False
    page = max(1, _int(params.get("page"), 1))
    rows = list_events(session, **kwargs, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE, newest_first=True)
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


def audit_total(session: Session, user: User, params: dict[str, str]) -> int:
    """How many events the audit page's filters match in the user's scope (its page count)."""
    kwargs: dict[str, Any] = {k: params[k] for k in ("school", "actor", "trigger") if params.get(k)}
    kwargs["since"] = _local_start(parse_date(params.get("since"), "since"))
    until = parse_date(params.get("until"), "until")
    kwargs["until"] = _local_start(date.fromordinal(until.toordinal() + 1)) if until else None
    return count_events(session, **(kwargs | audit_filter(user)))


def labelled_events(session: Session, rows: list[EventRow]) -> list[dict[str, Any]]:
    """Audit rows as dicts with the words for their trigger, stages and role, each read from the
    workflow version its run (or plan) is pinned to."""
    run_ids = {r.run_id for r in rows if r.run_id is not None}
    plan_ids = {r.plan_id for r in rows if r.run_id is None and r.plan_id is not None}
    by_run: dict[int, int] = {i: v for i, v in session.execute(
        select(SchoolRun.id, SchoolRun.workflow_version_id).where(SchoolRun.id.in_(run_ids)))} if run_ids else {}
    by_plan: dict[int, int] = {i: v for i, v in session.execute(
        select(Plan.id, Plan.workflow_version_id).where(Plan.id.in_(plan_ids)))} if plan_ids else {}
    out = []
    for r in rows:
        version = by_run.get(r.run_id) if r.run_id is not None else by_plan.get(r.plan_id) if r.plan_id else None
        wf = workflow_for_version(session, version) if version is not None else None
        out.append(event_label(wf, r.as_dict()))
    return with_display_names(session, out)


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value else default
    except ValueError:
        return default


def audit_csv(session: Session, user: User, params: dict[str, str]) -> str:
    rows, _more = audit_events(session, user, params, paged=False)
    out = io.StringIO()
    export_csv(rows, out)
    return out.getvalue()


def audit_xlsx(session: Session, user: User, params: dict[str, str]) -> bytes:
    """The same rows as the CSV, as a workbook (offices open it in Excel or WPS without an import
    step), written by engine.export: formula-like text stays text."""
    rows, _more = audit_events(session, user, params, paged=False)
    return xlsx_bytes(tr("审计记录", "Audit trail"), [SheetColumn(h) for h in headers()], (cells(r) for r in rows))


def chain_check(session: Session, user: User) -> dict[str, Any]:
    """Verify the audit chains of the runs the user may see."""
    ids = session.scalars(select(SchoolRun.id).join(School, School.code == SchoolRun.school_code)
                          .where(school_clause(user))).all()
    report = verify_chains(session, chains=[run_chain(i) for i in ids])
    if report.ok:
        words = tr(f"审计记录完整：{len(ids)} 所学校的 {report.events} 条记录均未被改动",
                   f"the audit trail is intact: {report.events} events of {len(ids)} schools unaltered")
    else:
        words = tr(f"发现 {len(report.problems)} 处审计记录异常，请联系系统管理员核查",
                   f"{len(report.problems)} problems found in the audit trail: ask the administrator to check")
    return {"ok": report.ok, "chains": report.chains, "events": report.events, "schools": len(ids), "words": words,
            "problems": [vars(p) for p in report.problems]}
