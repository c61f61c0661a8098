"""Server-rendered pages: login, overview, overdue list, school page with actions and facts, audit trail."""

from __future__ import annotations

import secrets
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from engine import SheetColumn, authenticate, end_session, may_act, start_session, state_title, tr
from engine.audit import LOCAL_TZ
from engine.workflow import workflow_for_version
from web import contractors, data, downloads, lists, plan_changes, school_page
from web import overview as overview_data
from web.context import Ctx, client_address, endpoint
from web.plans import pick_plan


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


OVERVIEW_SCHOOLS = 50


@endpoint()
def overview(ctx: Ctx) -> Response:
    q = ctx.request.query_params
    d = overview_data.overview(ctx.db, ctx.clock, ctx.user, plan_code=q.get("plan") or None,
                               region=q.get("region") or None)
    school_rows: list[dict[str, object]] = []
    school_total = 0
    if d["level"] == "county":
        # The most urgent first (overdue longest first), as on /schools: a county's 300+ schools
        # in full were most of the page's time; the link under the heading lists them all.
        plan = pick_plan(ctx.db, ctx.user, d["plan"])
        school_rows, school_total = lists.school_list(ctx.db, ctx.clock, ctx.user, plan,
                                                      lists.Filters(region=d["region"]), page_size=OVERVIEW_SCHOOLS,
                                                      total=d["totals"]["schools"])  # the tallies counted them
    table = contractors.contractor_table(ctx.db, ctx.clock, ctx.user, plan_code=d["plan"], region=d["region"])
    return ctx.render("overview.html", data=d, school_rows=school_rows, school_total=school_total, contractors=table)


@endpoint()
def contractors_file(ctx: Ctx) -> Response:
    """The overview's 承训单位 table as a file (same rows, same ranking, numerators and denominators)."""
    q = ctx.request.query_params
    t = contractors.contractor_table(ctx.db, ctx.clock, ctx.user, plan_code=q.get("plan") or None,
                                     region=q.get("region") or None)
    return _ranking_file(ctx, t["plan"], q.get("region") or ctx.user.scope_code,
                         tr("承训单位进度与排名", "Contractors: progress and rank"),
                         contractors.columns([r["title"] for r in t["rates"]]),
                         contractors.cells(t["rows"], [r["id"] for r in t["rates"]]))


def _ranking_file(ctx: Ctx, plan_code: str, region: str, what: str, columns: list[SheetColumn],
                  cells: list[list[object]]) -> Response:
    """A ranking table of the overview as XLSX or CSV, with the plan, region and time on top."""
    kind = ctx.request.path_params["kind"]
    downloads.check_kind(kind)
    plan = pick_plan(ctx.db, ctx.user, plan_code)
    title = downloads.title_lines(plan, what, overview_data.region_name(ctx.db, region), ctx.clock.now())
    return downloads.file_response(kind, f"{what}-{region}", what, columns, cells, title)


def _list_page(ctx: Ctx, default_state: str | None, path: str, *, rework: bool = False) -> Response:
    q = ctx.request.query_params
    plan = pick_plan(ctx.db, ctx.user, q.get("plan") or None)
    f = lists.filters_from(q, default_state, rework=rework)
    page = max(1, data._int(q.get("page"), 1))
    rows, total = lists.school_list(ctx.db, ctx.clock, ctx.user, plan, f, page=page)
    wf = workflow_for_version(ctx.db, plan.workflow_version_id)
    query = urlencode(f.query() | ({"plan": q["plan"]} if q.get("plan") else {}) | ({"state": ""} if "state" in q and not f.state else {}))
    return ctx.render("overdue.html", rows=rows, f=f, page=page, total=total, pages=max(1, -(-total // lists.LIST_PAGE)),
                      more=page * lists.LIST_PAGE < total, query=query, list_path=path,
                      stages=[{"id": s.id, "title": str(s.title)} for s in wf.stages],
                      states=lists.state_choices(), gates=lists.gate_choices(wf))


@endpoint()
def overdue(ctx: Ctx) -> Response:
    return _list_page(ctx, "overdue", "/overdue")


@endpoint()
def school_list(ctx: Ctx) -> Response:
    return _list_page(ctx, None, "/schools")


@endpoint()
def rework(ctx: Ctx) -> Response:
    """Schools sent back for rework (退回整改) and not moved on since."""
    return _list_page(ctx, None, "/rework", rework=True)


@endpoint()
def rework_file(ctx: Ctx) -> Response:
    return _list_file(ctx, None, rework=True)


def _list_file(ctx: Ctx, default_state: str | None, *, rework: bool = False) -> Response:
    downloads.check_kind(ctx.request.path_params["kind"])
    q = ctx.request.query_params
    plan = pick_plan(ctx.db, ctx.user, q.get("plan") or None)
    f = lists.filters_from(q, default_state, rework=rework)
    rows, _total = lists.school_list(ctx.db, ctx.clock, ctx.user, plan, f, page_size=None)
    what = (tr("退回整改清单", "Sent back for rework") if f.rework
            else state_title(f.state) if f.state else tr("学校清单", "Schools"))
    region = f.region or ctx.user.scope_code
    title = downloads.title_lines(plan, what, overview_data.region_name(ctx.db, region), ctx.clock.now())
    return downloads.file_response(ctx.request.path_params["kind"], f"{what}-{region}", what,
                                   downloads.list_columns(), downloads.list_cells(rows), title)


@endpoint()
def regions_file(ctx: Ctx) -> Response:
    """The region table of the overview, as the office sends it up (same rows, same ranking)."""
    q = ctx.request.query_params
    d = overview_data.overview(ctx.db, ctx.clock, ctx.user, plan_code=q.get("plan") or None,
                               region=q.get("region") or None)
    return _ranking_file(ctx, d["plan"], d["region"] or ctx.user.scope_code, tr("下级地区进度与排名", "Regions: progress and rank"),
                         downloads.region_columns([r["title"] for r in d["rates"]]),
                         downloads.region_cells(d["rows"], [r["id"] for r in d["rates"]]))


@endpoint()
def overdue_file(ctx: Ctx) -> Response:
    return _list_file(ctx, "overdue")


@endpoint()
def school_list_file(ctx: Ctx) -> Response:
    return _list_file(ctx, None)


@endpoint()
def school(ctx: Ctx) -> Response:
    code = ctx.request.path_params["code"]
    detail = data.school(ctx.db, ctx.clock, ctx.user, code, ctx.request.query_params.get("plan") or None)
    detail = school_page.enrich(ctx.db, ctx.user, code, detail, data.facts(ctx.db, ctx.user, code, detail["plan"]))
    detail["forecast"] = school_page.forecast(ctx.db, ctx.clock, code, detail["plan"])
    detail["override"] = plan_changes.override_form(ctx.db, ctx.user, detail)
    return ctx.render("school.html", d=detail, may_act=may_act(ctx.user), facts=detail["facts"])


@endpoint()
def school_teachers_file(ctx: Ctx) -> Response:
    """The teachers holding the school back, for the school to chase them."""
    kind = ctx.request.path_params["kind"]
    downloads.check_kind(kind)
    code = ctx.request.path_params["code"]
    detail = data.school(ctx.db, ctx.clock, ctx.user, code, ctx.request.query_params.get("plan") or None)
    detail = school_page.enrich(ctx.db, ctx.user, code, detail, [])
    plan = pick_plan(ctx.db, ctx.user, detail["plan"])
    what = tr(f"未达标教师（{detail['stage_title']}）", f"Teachers holding back ({detail['stage_title']})")
    title = downloads.title_lines(plan, what, f"{detail['school']['name']}（{code}）", ctx.clock.now())
    return downloads.file_response(kind, f"{what}-{code}", tr("未达标教师", "Teachers"), school_page.holdout_columns(),
                                   school_page.holdout_cells(detail["holdouts"]), title)


def _back_to_school(request: Request) -> str:
    return f"/schools/{request.path_params['code']}"


@endpoint(back=_back_to_school)
def action(ctx: Ctx) -> Response:
    code = ctx.request.path_params["code"]
    out = data.act(ctx.db, ctx.clock, ctx.user, code, ctx.request.path_params["trigger"],
                   reason=ctx.form.get("reason"), due=ctx.form.get("due"), version=ctx.form.get("version"),
                   plan_code=ctx.form.get("plan") or None)
    ctx.session["flash"] = {"kind": "ok", "text": data.outcome_message(ctx.db, code, out)}
    return RedirectResponse(f"/schools/{code}", 303)


def _back_from_extension(request: Request) -> str:
    # Decided from the queue: back to the queue (a fixed path, never a URL taken from the form).
    return "/extensions" if request.query_params.get("from") == "queue" else _back_to_school(request)


@endpoint(back=_back_from_extension)
def extension(ctx: Ctx) -> Response:
    code = ctx.request.path_params["code"]
    text = data.extension(ctx.db, ctx.clock, ctx.user, code, ctx.request.path_params["decision"],
                          reason=ctx.form.get("reason"), due=ctx.form.get("due"), plan_code=ctx.form.get("plan") or None)
    ctx.session["flash"] = {"kind": "ok", "text": f"{text}（{code}）"}
    return RedirectResponse(_back_from_extension(ctx.request), 303)


@endpoint()
def extensions(ctx: Ctx) -> Response:
    """Pending extension requests in the user's scope, decided in place."""
    plan = pick_plan(ctx.db, ctx.user, ctx.request.query_params.get("plan") or None)
    return ctx.render("extensions.html", rows=school_page.extension_queue(ctx.db, ctx.user, plan), plan=plan)


@endpoint(back=_back_to_school)
def record_fact(ctx: Ctx) -> Response:
    code = ctx.request.path_params["code"]
    out = data.record_fact(ctx.db, ctx.clock, ctx.user, code, name=ctx.form.get("name"), value=ctx.form.get("value"),
                           note=ctx.form.get("note"), plan_code=ctx.form.get("plan") or None)
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
    total = data.audit_total(ctx.db, ctx.user, params)
    local = ctx.clock.now().astimezone(ZoneInfo(LOCAL_TZ)).strftime("%Y-%m-%d %H:%M")
    return ctx.render("audit.html", rows=data.labelled_events(ctx.db, rows), more=more, page=page, params=params,
                      query=query, chains=data.chain_check(ctx.db, ctx.user), triggers=data.triggers(ctx.db, ctx.user),
                      total=total, pages=max(1, -(-total // data.PAGE_SIZE)), checked_at=local)


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
