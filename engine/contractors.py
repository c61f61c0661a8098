"""Contractors (承训单位) ranked like regions: schools, started, done, overdue and the workflow's
rates per contractor, for the dashboard's 承训单位 table and the weekly bulletin's section.

Seed 002 (九): "各承训单位报到率、结业率……进行通报" — the province publishes each contractor's rates
and ranks them. The counts come from the same stored-status GROUP BY as the region table
(``engine.status.status_table`` grouped by ``school_run.contractor``), the rates from
``engine.rates.rate_values`` grouped the same way, and the order from the bulletin's own
``rank_rows``, so a contractor ranks by the rule a region ranks by. Schools with no contractor
assigned are left out; a plan with none gives an empty table (no section is shown).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from engine.bulletin import rank_rows
from engine.clock import Clock
from engine.models import Plan, Region, School, SchoolRun
from engine.rates import rate_values
from engine.status import status_table
from engine.workflow.versions import workflow_for_version


def has_contractors(session: Session, plan: Plan, *where: ColumnElement[bool]) -> bool:
    """Whether any school of the plan in ``where`` has a contractor assigned. A plan with none at
    all (the 2.0 programme) is answered from the contractor index alone: with the region test
    too, SQLite read every run of a province to find none (20 ms of a 50 ms page)."""
    if session.scalar(select(func.max(SchoolRun.contractor))) is None:  # MAX reads the index's last entry
        return False
    probe = (select(SchoolRun.id).join(School, School.code == SchoolRun.school_code)
             .where(SchoolRun.plan_id == plan.id, SchoolRun.contractor.is_not(None), SchoolRun.withdrawn_at.is_(None),
                    *where).limit(1))
    return session.scalar(probe) is not None


def contractor_ranking(session: Session, clock: Clock, plan: Plan, *where: ColumnElement[bool],
                       scan_all: bool = False) -> list[dict[str, Any]]:
    """One row per contractor with schools in ``where`` (a region, a user's scope), ranked as the
    bulletin ranks regions: ``contractor``, ``rank``, ``schools``, ``started``, ``done``,
    ``done_share``, ``overdue``, ``overdue_share``, ``states``, ``stage_counts`` and ``rates``
    (rate id → numerator, denominator, value). ``scan_all`` (a province's view) is passed to
    ``rate_values``: PostgreSQL 0.19 s instead of 2.04 s for the contractor rates of 5,000 schools
    and 100,000 teachers (docs/benchmarks.md)."""
    if not has_contractors(session, plan, *where):
        return []
    assigned = (SchoolRun.contractor.is_not(None), *where)
    wf, rows = status_table(session, clock, plan_code=plan.code, group=SchoolRun.contractor, where=assigned)
    by_name = {r.region_code: r for r in rows}
    rates = rate_values(session, wf, plan.id, SchoolRun.contractor, *assigned, scan_all=scan_all)
    ranked = rank_rows(wf, rows)
    for row in ranked:
        found = by_name[row["region_code"]]
        row["contractor"] = row["region_code"]
        row["started"] = found.schools - found.not_started
        row["states"] = found.states
        row["rates"] = {k: v.as_dict() for k, v in rates.get(row["contractor"], {}).items()}
    return ranked


def is_province(session: Session, code: str) -> bool:
    """Whether ``code`` is a province (its views read the whole teacher table in one pass)."""
    region = session.get(Region, code)
    return region is not None and region.level == "province"


def rate_columns(session: Session, plan: Plan) -> list[dict[str, str]]:
    """The workflow's rates as column headers (id, title and help in the current language, and
    ``title_en`` for an English bulletin rendered beside a Chinese one), in file order."""
    wf = workflow_for_version(session, plan.workflow_version_id)
    return [{"id": r.id, "title": str(r.title), "help": str(r.description or ""), "title_en": r.title.en}
            for r in wf.rates.values()]
