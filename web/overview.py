"""The overview of one region at any level (province → city → county), for one plan: header
(plan title, final deadline and working days left, data as of), the state legend with counts,
the child regions ranked by the bulletin's own ``ranked_regions`` (at a county: its schools),
stages and batches. A school admin sees their one school."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from engine import (
    STATE_HELP,
    STATES,
    Batch,
    Clock,
    NotFound,
    Plan,
    Region,
    School,
    SchoolRun,
    User,
    lists_schools,
    local_date,
    rank_rows,
    rate_tallies,
    rate_total,
    rate_values,
    region_clause,
    region_scope,
    rework_clause,
    run_state,
    run_tallies,
    scoped_views,
    stage_title,
    state_title,
    status_table,
    tr,
    user_school_clause,
)
from engine.calendar import load_calendar
from engine.forecast import DEFAULT_AT_RISK, at_risk_counts
from engine.imports import DataAsOf, latest_imports_by_source
from engine.workflow import Workflow, workflow_for_version
from web.plans import pick_plan, plan_choices


def breadcrumbs(session: Session, user: User, region: str) -> list[dict[str, str]]:
    """From the user's own region down to ``region``; NotFound when ``region`` is outside it."""
    chain: list[Region] = []
    code: str | None = region
    while code:
        r = session.get(Region, code)
        if r is None:
            break
        chain.append(r)
        if r.code == user.scope_code:
            return [{"code": x.code, "name": x.name, "level": x.level} for x in reversed(chain)]
        code = r.parent_code
    raise NotFound(tr(f"没有地区 {region}", f"no region {region}"))


def region_name(session: Session, code: str) -> str:
    """A region's or school's name for a title line (the code itself when unknown)."""
    region = session.get(Region, code)
    if region is not None:
        return f"{region.name}（{code}）"
    school = session.get(School, code)
    return f"{school.name}（{code}）" if school is not None else code


def header(session: Session, clock: Clock, plan: Plan) -> dict[str, Any]:
    """Plan title, final deadline, working days left to it (official calendar), the page's time."""
    now = clock.now()
    today = local_date(now, plan.timezone)
    final = plan.final_deadline
    left = None
    if final is not None:
        cal = load_calendar(session)
        left = cal.working_days_between(today, final) if final >= today else -cal.working_days_between(final, today)
    return {"plan_code": plan.code, "plan_title": plan.title, "final_deadline": final, "workdays_left": left,
            "days_left": (final - today).days if final else None, "today": today,
            "generated_at": now, "data_as_of": _data_as_of(session, plan.timezone),
            "generated_at_local": now.astimezone(ZoneInfo(plan.timezone)).strftime("%Y-%m-%d %H:%M")}


def overview(session: Session, clock: Clock, user: User, *, plan_code: str | None = None,
             region: str | None = None) -> dict[str, Any]:
    plan = pick_plan(session, user, plan_code)
    wf = workflow_for_version(session, plan.workflow_version_id)
    out: dict[str, Any] = {"plan": plan.code, "header": header(session, clock, plan),
                           "plans": plan_choices(session, user, plan), "region": None, "crumbs": [],
                           "level": "school", "schools": [], "at_risk": None}
    if lists_schools(user):  # a school admin, a contractor: their schools
        today = local_date(clock.now(), plan.timezone)
        views = scoped_views(session, clock, user, plan)
        states = dict.fromkeys(STATES, 0)
        stage_counts = {s.id: 0 for s in wf.stages}
        for v in views:
            states[run_state(wf, v.state, started=v.started, blocked=v.blocked,
                             due=v.due.due if v.due else None, today=today)] += 1
            if v.started:
                stage_counts[v.state] += 1
        out["schools"] = [{"code": v.school_code, "name": v.school_name} for v in views]
        total = len(views)
        rows: list[dict[str, Any]] = []
    else:
        scope = region_scope(user)
        assert scope is not None
        code = region or scope
        crumbs = breadcrumbs(session, user, code)
        out["region"], out["crumbs"], out["level"] = code, crumbs, crumbs[-1]["level"]
        _wf, status = status_table(session, clock, plan_code=plan.code, region=code)
        states = {s: sum(r.states.get(s, 0) for r in status) for s in STATES}
        stage_counts = {s.id: sum(r.stages.get(s.id, 0) for r in status) for s in wf.stages}
        total = sum(r.schools for r in status)
        # The bulletin's ranking (engine.bulletin.rank_rows, what ranked_regions ranks with).
        rows = [] if out["level"] == "county" else rank_rows(wf, status)
        by_code = {r.region_code: r for r in status}
        # Inside a region the status table and the rates come from the per-county tallies.
        rates = rate_tallies(session, plan.id, "city" if out["level"] == "province" else "county",
                             level=out["level"], region=code)
        # 有风险 (issue 11): the runs whose stored forecast risk is current and ≥ 70 %.
        group = School.city_code if out["level"] == "province" else School.county_code
        risky = at_risk_counts(session, plan.id, group, region_clause(session, code),
                               threshold=DEFAULT_AT_RISK, now=clock.now(), few_schools=out["level"] != "province")
        out["at_risk"] = sum(risky.values())
        for row in rows:
            row["at_risk"] = risky.get(row["region_code"], 0)
        for row in rows:
            st = by_code[row["region_code"]]
            row["states"] = st.states
            row["started"] = st.schools - st.not_started
            row["rates"] = {k: v.as_dict() for k, v in rates.get(row["region_code"], {}).items()}
        values = list(rates.values())
    if lists_schools(user):  # a school admin, a contractor: their schools
        values = list(rate_values(session, wf, plan.id, School.code, user_school_clause(session, user)).values())
    out["rows"] = rows
    out["rates"] = [{"id": r.id, "title": str(r.title), "help": str(r.description or ""),
                     **rate_total(values, r.id).as_dict()} for r in wf.rates.values()]
    scope_where = [user_school_clause(session, user)] + ([region_clause(session, out["region"])] if out["region"] else [])
    out["rework"] = session.scalar(
        select(func.count()).select_from(SchoolRun).join(School, School.code == SchoolRun.school_code)
        .where(SchoolRun.plan_id == plan.id, SchoolRun.withdrawn_at.is_(None), rework_clause(wf, plan.id), *scope_where)) or 0
    out["totals"] = {"schools": total, "overdue": states["overdue"], "done": states["done"],
                     "started": total - states["not_started"]}
    out["states"] = [{"id": s, "title": state_title(s), "help": str(STATE_HELP[s]), "count": states[s]}
                     for s in STATES]
    out["stages"] = [{"id": s.id, "title": str(s.title), "count": stage_counts[s.id]} for s in wf.stages]
    out["batches"] = (batch_progress(session, user, plan.id, None, wf) if lists_schools(user)
                      else tallied_batches(session, plan.id, out["level"], out["region"], wf))
    # What the SVG charts draw (each chart's table is the region table, the stage table, the batch table).
    for row in rows:
        row["chart"] = {"label": row["region_name"], "value": row["done_share"]}
    out["stage_chart"] = [{"label": s["title"], "value": s["count"]} for s in out["stages"]]
    out["batch_chart"] = [{"label": b["title"], "value": b["done"] / b["schools"] if b["schools"] else 0,
                           "planned": b["planned_share"]} for b in out["batches"]]
    return out


def tallied_batches(session: Session, plan_id: int, level: str, region: str, wf: Workflow) -> list[dict[str, Any]]:
    """``batch_progress`` for a region, from the per-county tallies."""
    schools: dict[int, int] = {}
    done: dict[int, int] = {}
    for t in run_tallies(session, plan_id, level=level, region=region):
        schools[t.batch_id] = schools.get(t.batch_id, 0) + t.runs
        done[t.batch_id] = done.get(t.batch_id, 0) + (t.runs if t.stage == "done" else 0)
    rows = session.execute(select(Batch.id, Batch.code, Batch.title, Batch.share, Batch.start, Batch.deadlines)
                           .where(Batch.plan_id == plan_id, Batch.id.in_(list(schools)))
                           .order_by(Batch.start, Batch.code)).all()
    return _batch_rows(wf, [(code, title, share, start, deadlines, schools[bid], done[bid])
                            for bid, code, title, share, start, deadlines in rows])


def batch_progress(session: Session, user: User, plan_id: int, region: str | None,
                   wf: Workflow) -> list[dict[str, Any]]:
    """Each batch's planned share (e.g. 20/40/40) and dates against its schools in scope and how many are done."""
    q = (select(Batch.code, Batch.title, Batch.share, Batch.start, Batch.deadlines, func.count(SchoolRun.id),
                func.sum(case((SchoolRun.state == "done", 1), else_=0)))
         .join(SchoolRun, SchoolRun.batch_id == Batch.id).join(School, School.code == SchoolRun.school_code)
         .where(Batch.plan_id == plan_id, SchoolRun.withdrawn_at.is_(None), user_school_clause(session, user))
         .group_by(Batch.id).order_by(Batch.start, Batch.code))  # the other columns depend on the key
    if region:
        q = q.where(region_clause(session, region))
    return _batch_rows(wf, [tuple(r) for r in session.execute(q)])


def _batch_rows(wf: Workflow, rows: list[Any]) -> list[dict[str, Any]]:
    total = sum(r[5] for r in rows) or 1
    return [{"code": code, "title": title, "planned_share": share, "start": start, "schools": n,
             "deadlines": [(stage_title(wf, k), v) for k, v in (deadlines or {}).items()],
             "share": round(n / total, 3), "done": int(done or 0)} for code, title, share, start, deadlines, n, done in rows]


def _data_as_of(session: Session, timezone: str) -> str | None:
    """数据截至: the export date of the newest progress import of each source, its file, and when
    it came in (one source: no source name)."""
    found = latest_imports_by_source(session)
    if not found:
        return None
    def said(f: DataAsOf, named: bool) -> str:
        at = f.imported_at.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")
        zh, en = f"{f.as_of}（{f.file_name}，{at} 导入）", f"{f.as_of} ({f.file_name}, imported {at})"
        if named:
            label_zh, label_en = ("标准格式", "standard columns") if f.source == "built-in" else (f.source, f.source)
            zh, en = f"{label_zh}：{zh}", f"{label_en}: {en}"
        return tr(zh, en)
    return tr("；", "; ").join(said(f, len(found) > 1) for f in found)
