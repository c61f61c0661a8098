"""The lists an office acts on: schools by state (engine.school_state), stage, region, days overdue
and failing gate, sorted and paged in SQL on the stored status, so a province's list costs the
same as a county's. Pages, the API and the XLSX/CSV downloads read the same rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import String, case, cast, func, select
from sqlalchemy.orm import Session

from engine import (
    STATES,
    Clock,
    Plan,
    Region,
    RolloutError,
    School,
    SchoolRun,
    User,
    failing,
    local_date,
    region_clause,
    rework_clause,
    run_state,
    scoped_views,
    stage_title,
    state_case,
    state_title,
    tr,
    user_school_clause,
)
from engine.forecast import DEFAULT_AT_RISK, at_risk_clause
from engine.workflow import Workflow, workflow_for_version

LIST_PAGE = 100
SORTS = ("days", "due", "school", "county", "stage")


class BadFilter(RolloutError):
    """A list filter the user can correct (unknown state, stage or gate)."""


@dataclass(frozen=True)
class Filters:
    state: str | None = None
    stage: str | None = None
    region: str | None = None  # a county, city or province code inside the user's scope
    min_days: int = 0
    gate: str | None = None
    sort: str = "days"
    rework: bool = False  # only schools sent back for rework and not moved on since
    at_risk: bool = False  # only schools whose stored forecast risk is current and ≥ 70 % (预警)


    def query(self) -> dict[str, str]:
        """The filters as query parameters (for links to other pages and the downloads)."""
        items = {"state": self.state, "stage": self.stage, "region": self.region, "gate": self.gate,
                 "min_days": str(self.min_days) if self.min_days else None,
                 "sort": self.sort if self.sort != "days" else None, "rework": "1" if self.rework else None,
                 "at_risk": "1" if self.at_risk else None}
        return {k: v for k, v in items.items() if v}


def filters_from(params: Any, default_state: str | None = None, *, rework: bool = False) -> Filters:
    def get(name: str) -> str | None:
        value = params.get(name)
        return value.strip() or None if isinstance(value, str) else None
    days = get("min_days")
    sort = get("sort") or "days"
    return Filters(state=get("state") if "state" in params else default_state, stage=get("stage"),
                   region=get("region"), min_days=int(days) if days and days.isdigit() else 0,
                   gate=get("gate"), sort=sort if sort in SORTS else "days", rework=rework or get("rework") == "1", at_risk=get("at_risk") == "1")


def check_filters(wf: Workflow, f: Filters) -> None:
    if f.state and f.state not in STATES:
        raise BadFilter(tr(f"没有状态 {f.state}", f"no state {f.state}"))
    if f.stage and not wf.has_stage(f.stage):
        raise BadFilter(tr(f"没有阶段 {f.stage}", f"no stage {f.stage}"))
    if f.gate and f.gate not in {g.id for s in wf.stages for g in s.gates}:
        raise BadFilter(tr(f"没有关卡 {f.gate}", f"no gate {f.gate}"))


def school_list(session: Session, clock: Clock, user: User, plan: Plan, f: Filters, *, page: int = 1,
                page_size: int | None = 0, total: int | None = None) -> tuple[list[dict[str, Any]], int]:
    """One page of the plan's schools in scope matching ``f``, and how many match in all.

    ``page_size`` 0 means LIST_PAGE; ``None`` returns every match (the downloads). ``total``: the
    count when the caller has it already (the county overview, from the tallies), not counted again."""
    if page_size == 0:
        page_size = LIST_PAGE
    wf = workflow_for_version(session, plan.workflow_version_id)
    check_filters(wf, f)
    now = clock.now()
    today = local_date(now, plan.timezone)
    state = state_case(wf, now, today)
    where: list[Any] = []
    if f.state:
        where.append(state == f.state)
    if f.stage:
        where.append(SchoolRun.state == f.stage)
    if f.region:
        where.append(region_clause(session, f.region))
    if f.min_days > 0:
        where.append(SchoolRun.started_at <= now)
        where.append(SchoolRun.due_date <= today - timedelta(days=f.min_days))
    if f.rework:
        where.append(rework_clause(wf, plan.id))
    if f.at_risk:
        where.append(at_risk_clause(session, plan.id, DEFAULT_AT_RISK, now))
    if f.gate:
        # Stored failing gates are JSON written by json.dumps: the gate id appears as "gate": "<id>".
        where.append(cast(SchoolRun.failing, String).like(f'%"gate": "{f.gate}"%'))
    late = (SchoolRun.started_at <= now) & (SchoolRun.due_date < today)
    # Overdue longest first, then the nearest due date; finished (no due date) and not yet started
    # last — SQLite sorts NULL first, which put a county's finished schools at the top.
    by_days = (case((late, 0), else_=1), SchoolRun.started_at > now, SchoolRun.due_date.is_(None),
               SchoolRun.due_date, SchoolRun.school_code)
    order = {"school": (SchoolRun.school_code,),
             "due": (SchoolRun.due_date.is_(None), SchoolRun.due_date, SchoolRun.school_code),
             "county": (School.county_code, *by_days),
             "stage": (SchoolRun.state, *by_days)}.get(f.sort, by_days)
    if total is None:
        total = session.scalar(select(func.count()).select_from(SchoolRun).join(School, School.code == SchoolRun.school_code)
                               .where(SchoolRun.plan_id == plan.id, SchoolRun.withdrawn_at.is_(None), user_school_clause(session, user),
                                      *where)) or 0
    offset = 0 if page_size is None else (max(page, 1) - 1) * page_size
    views = scoped_views(session, clock, user, plan, *where, order=order, limit=page_size, offset=offset)
    counties = dict(session.execute(select(Region.code, Region.name).where(
        Region.code.in_({v.county_code for v in views}))).all()) if views else {}
    rows = []
    for v in views:
        due: date | None = v.due.due if v.due else None
        s = run_state(wf, v.state, started=v.started, blocked=v.blocked, due=due, today=today)
        rows.append({"school_code": v.school_code, "school_name": v.school_name, "county_code": v.county_code,
                     "county_name": counties.get(v.county_code, v.county_code), "state": v.state,
                     "stage_title": stage_title(wf, v.state), "school_state": s, "state_title": state_title(s),
                     "due": due, "days_overdue": v.days_overdue,
                     "days_left": (due - today).days if due and due >= today else None,
                     "blocked": v.blocked, "failing_gates": [g.gate for g in failing(v.gates)],
                     "failing": [g.explain() for g in failing(v.gates)]})
    return rows, total


def gate_choices(wf: Workflow) -> list[dict[str, str]]:
    """Every gate of the workflow with its stage, in workflow order (the failing-gate filter)."""
    return [{"id": g.id, "title": f"{s.title} · {g.title}"} for s in wf.stages for g in s.gates]


def state_choices() -> list[dict[str, str]]:
    return [{"id": s, "title": state_title(s)} for s in STATES]
