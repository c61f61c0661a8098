"""Server-rendered pages: login, overview, overdue list, school page with actions and facts, audit trail."""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from engine import authenticate, end_session, may_act, start_session, tr
from web import data
from web.context import Ctx, client_address, endpoint


@endpoint(public=True)
def login_form(ctx: Ctx) -> Response:
    return ctx.render("login.html", message="")


@endpoint(public=True)
def login(ctx: Ctx) -> Response:
    result = authenticate(ctx.db, ctx.clock, ctx.form.get("username", ""), ctx.form.get("password", ""),
                          client=client_address(ctx.request))
    if result.user is None:
        return ctx.render("login.html", status_code=401, message=result.message)
    # A fresh server-side session on sign-in (no fixation): new token, new CSRF token.
    ctx.session.clear()
    ctx.session.update({"sid": start_session(ctx.db, ctx.clock, result.user), "csrf": secrets.token_urlsafe(32)})
    return RedirectResponse("/", 303)


@endpoint()
def logout(ctx: Ctx) -> Response:
    end_session(ctx.db, str(ctx.session.get("sid", "")))  # a copy of the cookie is worthless from now on
    ctx.session.clear()
    return RedirectResponse("/login", 303)


@endpoint()
def overview(ctx: Ctx) -> Response:
    return ctx.render("overview.html", data=data.overview(ctx.db, ctx.clock, ctx.user))


@endpoint()
def overdue(ctx: Ctx) -> Response:
    q = ctx.request.query_params
    stage = q.get("stage") or None
    region = q.get("region") or None
    min_days = data._int(q.get("min_days"), 0)
    sort = q.get("sort") or "days"
    page = max(1, data._int(q.get("page"), 1))
    rows, total = data.overdue(ctx.db, ctx.clock, ctx.user, stage=stage, min_days=min_days, region=region,
                               sort=sort, page=page)
    query = urlencode({"stage": stage or "", "region": region or "", "min_days": min_days, "sort": sort})
    return ctx.render("overdue.html", rows=rows, stage=stage or "", min_days=min_days, region=region or "", sort=sort,
                      page=page, total=total, more=page * data.OVERDUE_PAGE < total, query=query,
                      stages=data.stages(ctx.db))


@endpoint()
def school(ctx: Ctx) -> Response:
    code = ctx.request.path_params["code"]
    detail = data.school(ctx.db, ctx.clock, ctx.user, code)
    return ctx.render("school.html", d=detail, may_act=may_act(ctx.user), facts=data.facts(ctx.db, ctx.user, code))


def _back_to_school(request: Request) -> str:
    return f"/schools/{request.path_params['code']}"


@endpoint(back=_back_to_school)
def action(ctx: Ctx) -> Response:
    code = ctx.request.path_params["code"]
    out = data.act(ctx.db, ctx.clock, ctx.user, code, ctx.request.path_params["trigger"],
                   reason=ctx.form.get("reason"), due=ctx.form.get("due"), version=ctx.form.get("version"))
    ctx.session["flash"] = {"kind": "ok", "text": data.outcome_message(ctx.db, code, out)}
    return RedirectResponse(f"/schools/{code}", 303)


@endpoint(back=_back_to_school)
def extension(ctx: Ctx) -> Response:
    code = ctx.request.path_params["code"]
    text = data.extension(ctx.db, ctx.clock, ctx.user, code, ctx.request.path_params["decision"],
                          reason=ctx.form.get("reason"), due=ctx.form.get("due"))
    ctx.session["flash"] = {"kind": "ok", "text": text}
    return RedirectResponse(f"/schools/{code}", 303)


@endpoint(back=_back_to_school)
def record_fact(ctx: Ctx) -> Response:
    code = ctx.request.path_params["code"]
    out = data.record_fact(ctx.db, ctx.clock, ctx.user, code, name=ctx.form.get("name"), value=ctx.form.get("value"),
                           note=ctx.form.get("note"))
    shown = f"{out['title']} = {out['value']:g}"
    text = tr(f"已记录 {shown}", f"recorded {shown}") if out["changed"] else tr(f"{shown}（未变化）", f"{shown} (unchanged)")
    ctx.session["flash"] = {"kind": "ok", "text": text}
    return RedirectResponse(f"/schools/{code}", 303)


@endpoint()
def audit(ctx: Ctx) -> Response:
    params = dict(ctx.request.query_params)
    rows, more = data.audit_events(ctx.db, ctx.user, params)
    page = max(1, data._int(params.get("page"), 1))
    query = urlencode({k: v for k, v in params.items() if k != "page" and v})
    return ctx.render("audit.html", rows=data.labelled_events(ctx.db, rows), more=more, page=page, params=params,
                      query=query, chains=data.chain_check(ctx.db, ctx.user), triggers=data.triggers(ctx.db))


@endpoint()
def audit_csv(ctx: Ctx) -> Response:
    text = data.audit_csv(ctx.db, ctx.user, dict(ctx.request.query_params))
    return Response(text.encode("utf-8"), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="audit.csv"'})




@endpoint()
def audit_xlsx(ctx: Ctx) -> Response:
    body = data.audit_xlsx(ctx.db, ctx.user, dict(ctx.request.query_params))
    return Response(body, media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": 'attachment; filename="audit.xlsx"'})
