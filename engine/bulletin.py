"""The weekly bulletin's (通报) table: the regions below an office ranked by completion and overdue.

The Henan office publishes rates per city and county and ranks them (seed 002, 选送率/报到率/结业率);
here a region ranks first by the share of its schools done, then by the smaller share overdue, then
by code, so two offices computing the same week get the same order. The dashboard's region table
and the bulletin both rank with ``ranked_regions``.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.clock import Clock
from engine.deadline import local_date
from engine.i18n import tr
from engine.models import Contact, Plan, School, SchoolRun
from engine.status import StatusRow, status_table
from engine.workflow.model import Workflow

OFFICE_LEVELS = ("province", "city", "county")


def ranked_regions(session: Session, clock: Clock, plan: Plan, region: str) -> list[dict[str, Any]]:
    """The child regions of ``region`` with schools, done and overdue counts and shares, and rank."""
    wf, rows = status_table(session, clock, plan_code=plan.code, region=region)
    return rank_rows(wf, rows)


def rank_rows(wf: Workflow, rows: list[StatusRow]) -> list[dict[str, Any]]:
    """The ranking of ``ranked_regions`` over status rows a caller already has (the dashboard's
    overview reads the status table once for its states and its ranking)."""
    done_stage = [s.id for s in wf.stages if s.terminal]
    table: list[dict[str, Any]] = []
    for r in rows:
        done = sum(r.stages.get(s, 0) for s in done_stage)
        table.append({"region_code": r.region_code, "region_name": r.region_name, "schools": r.schools,
                      "done": done, "done_share": done / r.schools if r.schools else 0.0,
                      "overdue": r.overdue, "overdue_share": r.overdue / r.schools if r.schools else 0.0,
                      "stage_counts": {str(s.title): r.stages.get(s.id, 0) for s in wf.stages}})
    table.sort(key=lambda x: (-x["done_share"], x["overdue_share"], x["region_code"]))
    for rank, row in enumerate(table, 1):
        row["rank"] = rank
    return table


def office_contacts(session: Session, plan: Plan | None = None) -> list[Contact]:
    """The offices a bulletin goes to (province, city, county contacts), in a stable order.

    With ``plan``, only offices with at least one of the plan's schools in their region: a plan
    for one county (西峡县) sent 30 of its 33 bulletins to offices with nothing in it (issue 14).
    """
    contacts = list(session.scalars(select(Contact).where(Contact.active, Contact.level.in_(OFFICE_LEVELS))
                                    .order_by(Contact.id)))
    if plan is None:
        return contacts
    covered: set[str] = set()
    for county, city, province in session.execute(
            select(School.county_code, School.city_code, School.province_code).distinct()
            .join(SchoolRun, SchoolRun.school_code == School.code).where(SchoolRun.plan_id == plan.id)):
        covered.update(c for c in (county, city, province) if c)
    return [c for c in contacts if c.scope_code in covered]


def bulletin_week(clock: Clock, plan: Plan) -> tuple[int, int, str]:
    """(ISO year, ISO week, the period as officials write it): one bulletin per office per week."""
    today: date = local_date(clock.now(), plan.timezone)
    year, week, _ = today.isocalendar()
    return year, week, tr(f"{year}年第{week}周", f"{year} week {week}")
