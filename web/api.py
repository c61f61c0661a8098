"""The JSON API: the same data and actions as the pages, through the same scope checks.

Sign in through the login form (session cookie); POSTs carry the session's CSRF token in the
``X-CSRF-Token`` header (``GET /api/me`` returns it). Each endpoint's docstring after ``---`` is
its OpenAPI description.
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.schemas import SchemaGenerator

from web import contractors, data, lists, school_page
from web import overview as overview_data
from web.context import Ctx, csrf_token, endpoint, json_response
from web.plans import pick_plan

schemas = SchemaGenerator({"openapi": "3.0.0", "info": {"title": "rollout", "version": "1"}})


@endpoint(api=True)
def me(ctx: Ctx) -> Response:
    """
    responses:
      200: {description: "The signed-in user and the CSRF token for POSTs"}
    """
    u = ctx.user
    return json_response({"username": u.username, "display_name": u.display_name, "role": u.role,
                          "scope": u.scope_code, "contractor": u.contractor, "csrf": csrf_token(ctx.request)})


@endpoint(api=True)
def overview(ctx: Ctx) -> Response:
    """
    parameters:
      - {name: plan, in: query, schema: {type: string}, description: "plan code; default the newest plan covering the user's region"}
      - {name: region, in: query, schema: {type: string}, description: "a region inside the user's scope (drill down)"}
    responses:
      200: {description: "Header (plan title, final deadline, working days left), school states (counts add up to the schools), child regions ranked as in the weekly bulletin with rates (numerator/denominator), contractors (承训单位) ranked the same way with their rates, stages and batches"}
      404: {description: "No such plan or region in the user's scope"}
    """
    q = ctx.request.query_params
    d = overview_data.overview(ctx.db, ctx.clock, ctx.user, plan_code=q.get("plan") or None, region=q.get("region") or None)
    d["contractors"] = contractors.contractor_table(ctx.db, ctx.clock, ctx.user, plan_code=d["plan"], region=d["region"])["rows"]
    return json_response(d)


def _list(ctx: Ctx, default_state: str | None) -> Response:
    q = ctx.request.query_params
    plan = pick_plan(ctx.db, ctx.user, q.get("plan") or None)
    rows, total = lists.school_list(ctx.db, ctx.clock, ctx.user, plan, lists.filters_from(q, default_state),
                                    page=max(1, data._int(q.get("page"), 1)))
    response = json_response(rows)
    response.headers["X-Total-Count"] = str(total)
    return response


_LIST_PARAMS = """
    parameters:
      - {name: plan, in: query, schema: {type: string}}
      - {name: state, in: query, schema: {type: string, enum: [overdue, due_soon, ready, in_progress, not_started, suspended, done]}}
      - {name: stage, in: query, schema: {type: string}}
      - {name: gate, in: query, schema: {type: string}, description: "failing gate id"}
      - {name: min_days, in: query, schema: {type: integer}}
      - {name: region, in: query, schema: {type: string}, description: "county, city or province code"}
      - {name: sort, in: query, schema: {type: string, enum: [days, due, school, county, stage]}}
      - {name: rework, in: query, schema: {type: string, enum: ["1"]}, description: "only schools sent back for rework (退回整改) and not moved on since"}
      - {name: page, in: query, schema: {type: integer, minimum: 1}, description: "100 schools a page"}
"""


@endpoint(api=True)
def overdue(ctx: Ctx) -> Response:
    return _list(ctx, "overdue")


@endpoint(api=True)
def school_list(ctx: Ctx) -> Response:
    return _list(ctx, None)


overdue.__doc__ = _LIST_PARAMS + """    responses:
      200: {description: "One page of overdue schools (state=overdue unless another state is given), most days overdue first, with failing gates; X-Total-Count says how many in all"}
"""
school_list.__doc__ = _LIST_PARAMS + """    responses:
      200: {description: "One page of the schools in scope matching the filters, each with its state; X-Total-Count says how many in all"}
"""


@endpoint(api=True)
def school(ctx: Ctx) -> Response:
    """
    parameters:
      - {name: code, in: path, required: true, schema: {type: string}}
    responses:
      - {name: plan, in: query, schema: {type: string}}
    responses:
      200: {description: "Stage, state, due date in words, gates explained, the teachers holding a gate back by name (holdouts), stage timeline, reminders sent (notices), teachers summary, history, allowed actions, facts the current gates need first"}
      404: {description: "No such school in the user's scope"}
    """
    code = ctx.request.path_params["code"]
    detail = data.school(ctx.db, ctx.clock, ctx.user, code, ctx.request.query_params.get("plan") or None)
    return json_response(school_page.enrich(ctx.db, ctx.user, code, detail, data.facts(ctx.db, ctx.user, code, detail["plan"])))


@endpoint(api=True)
def extensions(ctx: Ctx) -> Response:
    """
    parameters:
      - {name: plan, in: query, schema: {type: string}}
    responses:
      200: {description: "Pending extension requests in the user's scope, each with the due date it would move (current_due) and may_decide for this user"}
    """
    plan = pick_plan(ctx.db, ctx.user, ctx.request.query_params.get("plan") or None)
    return json_response(school_page.extension_queue(ctx.db, ctx.user, plan))


@endpoint(api=True)
def action(ctx: Ctx) -> Response:
    """
    parameters:
      - {name: code, in: path, required: true, schema: {type: string}}
      - {name: trigger, in: path, required: true, schema: {type: string}}
      - {name: X-CSRF-Token, in: header, required: true, schema: {type: string}}
    requestBody:
      content:
        application/json:
          schema:
            type: object
            properties: {reason: {type: string}, due: {type: string, format: date}, version: {type: integer}}
    responses:
      200: {description: "The transition fired and its audit event was written"}
      400: {description: "Refused by the engine (gates, reason, role)"}
      403: {description: "Read-only role or missing CSRF token"}
      404: {description: "No such school in the user's scope"}
      409: {description: "Changed by someone else"}
    """
    b = ctx.body
    out = data.act(ctx.db, ctx.clock, ctx.user, ctx.request.path_params["code"], ctx.request.path_params["trigger"],
                   reason=_str(b.get("reason")), due=_str(b.get("due")), version=_str(b.get("version")))
    return json_response({"school_code": out.school_code, "trigger": out.trigger, "from_state": out.from_state,
                          "to_state": out.to_state, "overridden": out.overridden}
                         | data.outcome_titles(ctx.db, out.school_code, out))


@endpoint(api=True)
def extension(ctx: Ctx) -> Response:
    """
    parameters:
      - {name: code, in: path, required: true, schema: {type: string}}
      - {name: decision, in: path, required: true, schema: {type: string, enum: [request, approve, refuse]}}
      - {name: X-CSRF-Token, in: header, required: true, schema: {type: string}}
    requestBody:
      content:
        application/json:
          schema:
            type: object
            properties: {reason: {type: string}, due: {type: string, format: date}}
    responses:
      200: {description: "Requested, approved (the extend transition fired) or refused (audited)"}
      400: {description: "Refused by the engine (no pending request, past the cap, role)"}
      403: {description: "Read-only role or missing CSRF token"}
      404: {description: "No such school in the user's scope"}
    """
    b = ctx.body
    text = data.extension(ctx.db, ctx.clock, ctx.user, ctx.request.path_params["code"],
                          ctx.request.path_params["decision"], reason=_str(b.get("reason")), due=_str(b.get("due")))
    return json_response({"message": text})


@endpoint(api=True)
def facts(ctx: Ctx) -> Response:
    """
    parameters:
      - {name: code, in: path, required: true, schema: {type: string}}
    responses:
      200: {description: "The facts the user's role may record for this school under its workflow, with current values (empty for a role the workflow grants none)"}
      404: {description: "No such school in the user's scope"}
    """
    return json_response(data.facts(ctx.db, ctx.user, ctx.request.path_params["code"],
                                    ctx.request.query_params.get("plan") or None))


@endpoint(api=True)
def record_fact(ctx: Ctx) -> Response:
    """
    parameters:
      - {name: code, in: path, required: true, schema: {type: string}}
      - {name: X-CSRF-Token, in: header, required: true, schema: {type: string}}
    requestBody:
      required: true
      content:
        application/json:
          schema:
            type: object
            required: [name, value]
            properties:
              name: {type: string, description: "the fact, e.g. plan_filed or supervision_result"}
              value: {type: number, description: "1 = yes, 0 = no, or a count / share"}
              note: {type: string}
    responses:
      200: {description: "Recorded and audited (changed is false when the fact already had this value: no event)"}
      400: {description: "Unknown fact, or value missing or not a number"}
      403: {description: "The workflow does not let the user's role record this fact, or missing CSRF token"}
      404: {description: "No such school in the user's scope"}
      409: {description: "Changed by someone else"}
    """
    b = ctx.body
    return json_response(data.record_fact(ctx.db, ctx.clock, ctx.user, ctx.request.path_params["code"],
                                          name=_str(b.get("name")), value=b.get("value"), note=_str(b.get("note")),
                                          plan_code=_str(b.get("plan"))))


def _str(value: object) -> str | None:
    return None if value is None else str(value)


@endpoint(api=True)
def audit(ctx: Ctx) -> Response:
    """
    parameters:
      - {name: school, in: query, schema: {type: string}}
      - {name: actor, in: query, schema: {type: string}}
      - {name: trigger, in: query, schema: {type: string}}
      - {name: since, in: query, schema: {type: string, format: date}}
      - {name: until, in: query, schema: {type: string, format: date}}
      - {name: page, in: query, schema: {type: integer}}
    responses:
      200: {description: "Audit events in scope, newest first, 50 a page (ids, with trigger_title, from_title, to_title, role_title and actor_name beside them), the total, and the chain verification result in words"}
    """
    params = dict(ctx.request.query_params)
    rows, more = data.audit_events(ctx.db, ctx.user, params)
    return json_response({"events": data.labelled_events(ctx.db, rows), "more": more,
                          "total": data.audit_total(ctx.db, ctx.user, params),
                          "chains": data.chain_check(ctx.db, ctx.user)})


@endpoint(api=True)
def audit_csv(ctx: Ctx) -> Response:
    """
    responses:
      200: {description: "The filtered audit trail as CSV (UTF-8 with BOM, for Excel)"}
    """
    text = data.audit_csv(ctx.db, ctx.user, dict(ctx.request.query_params))
    return Response(text.encode("utf-8"), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="audit.csv"'})


@endpoint(api=True)
def audit_xlsx(ctx: Ctx) -> Response:
    """
    responses:
      200: {description: "The filtered audit trail as an XLSX workbook"}
    """
    body = data.audit_xlsx(ctx.db, ctx.user, dict(ctx.request.query_params))
    return Response(body, media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": 'attachment; filename="audit.xlsx"'})
