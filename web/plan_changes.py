"""The plan's change history page (``/plan/changes``) and the per-school deadline override form
(issue 15): thin over the engine — which events are changes, who sees them and what may be set
are ``engine.change_filter``, ``engine.may_override_deadline`` and ``engine.override_deadline``."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from engine import (
    Actor,
    Forbidden,
    Plan,
    User,
    change_filter,
    change_summary,
    find_run,
    may_override_deadline,
    override_deadline,
    school_for,
    stage_title,
    tr,
)
from engine.audit import count_events, list_events
from engine.workflow import workflow_for_version
from web import data
from web.context import Ctx, endpoint
from web.plans import pick_plan, plan_choices

PAGE_SIZE = 50


def change_events(session: Session, user: User, plan: Plan, page: int) -> tuple[list[dict[str, Any]], int]:
    """One page of the plan's change events in the user's scope, newest first, in words, and the total."""
    scope = change_filter(session, user, plan)
    rows = list_events(session, **scope, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, newest_first=True)
    events = data.labelled_events(session, rows)
    wf = workflow_for_version(session, plan.workflow_version_id)
    words = {s.id: str(s.title) for s in wf.stages}
    for e in events:
        e["summary"] = change_summary(e["trigger"], e["gates"], words)
    return events, count_events(session, **scope)


@endpoint()
def plan_changes(ctx: Ctx) -> Response:
    q = ctx.request.query_params
    plan = pick_plan(ctx.db, ctx.user, q.get("plan") or None)
    page = max(1, data._int(q.get("page"), 1))
    rows, total = change_events(ctx.db, ctx.user, plan, page)
    query = urlencode({"plan": q["plan"]} if q.get("plan") else {})
    return ctx.render("plan_changes.html", rows=rows, total=total, page=page, pages=max(1, -(-total // PAGE_SIZE)),
                      more=page * PAGE_SIZE < total, query=query, plan=plan,
                      plans=plan_choices(ctx.db, ctx.user, plan))


def override_form(session: Session, user: User, detail: dict[str, Any]) -> dict[str, Any] | None:
    """What the school page's 单独设定截止日期 form shows (the current stage, its due date), or
    None when the user's role may not set one or the stage has no deadline."""
    if not may_override_deadline(user.role) or not detail.get("due"):
        return None
    return {"stage": detail["state"], "stage_title": detail.get("stage_title", detail["state"]),
            "due": detail["due"]["date"]}


def _back(request: Request) -> str:
    return f"/schools/{request.path_params['code']}"


@endpoint(back=_back)
def set_deadline(ctx: Ctx) -> Response:
    """The office sets this school's due date for its current stage (the school page's form)."""
    code = ctx.request.path_params["code"]
    if not may_override_deadline(ctx.user.role):
        raise Forbidden(tr("您的角色无权单独设定截止日期", "your role may not set a school's deadline"))
    school_for(ctx.db, ctx.user, code)
    run = find_run(ctx.db, code, None)
    stage = (ctx.form.get("stage") or "").strip() or run.state
    day = data.parse_date(ctx.form.get("due"), "due")
    if day is None:
        raise data.BadInput(tr("请填写新的截止日期", "the new due date is missing"))
    override_deadline(ctx.db, ctx.clock, school_code=code, stage=stage, due=day, reason=ctx.form.get("reason") or "",
                      actor=Actor(ctx.user.username, ctx.user.role), plan_code=None)
    title = stage_title(workflow_for_version(ctx.db, run.workflow_version_id), stage)
    ctx.session["flash"] = {"kind": "ok", "text": tr(f"已将{title}的截止日期设为 {day}", f"{title} now due on {day}")}
    return RedirectResponse(f"/schools/{code}", 303)
