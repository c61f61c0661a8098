"""Which plan a page shows: several run side by side (the 2.0 programme and the Henan contractor
project; one plan a year in Jiangsu), so the user picks one (``?plan=``), and the default is the
newest plan that has schools in the user's scope."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import (
    NotFound,
    Plan,
    School,
    SchoolRun,
    User,
    plan_in_region,
    region_level_of,
    run_clause,
    tr,
    user_school_clause,
)


def plans_for(session: Session, user: User) -> list[Plan]:
    """The plans with at least one school the user may see, newest first (year, then load time);
    for a contractor, the plans with a school assigned to it. Asked three times by one page (the
    pick, the picker, a list), answered once per request's session."""
    known: dict[int, list[Plan]] = session.info.setdefault("plans_for", {})
    if user.id not in known:
        known[user.id] = _plans_for(session, user)
    return known[user.id]


def _plans_for(session: Session, user: User) -> list[Plan]:
    # A region's plans from the per-county tallies; a school's (or a contractor's) from its runs.
    # A DISTINCT over a province's runs took 190 ms on SQLite, an EXISTS 80–100 ms on PostgreSQL.
    level = region_level_of(session, user)
    found = (plan_in_region(session, Plan.id, level, user.scope_code) if level is not None else
             select(SchoolRun.id).join(School, School.code == SchoolRun.school_code)
             .where(SchoolRun.plan_id == Plan.id, user_school_clause(session, user), run_clause(user)).exists())
    return list(session.scalars(select(Plan).where(found)
                                .order_by(Plan.year.desc(), Plan.loaded_at.desc(), Plan.id.desc())))


def pick_plan(session: Session, user: User, code: str | None) -> Plan:
    """The plan named by ``code`` if the user's scope is in it, else the newest in scope."""
    plans = plans_for(session, user)
    if not plans:
        raise NotFound(tr("您的范围内还没有实施方案", "no plan covers your schools yet"))
    if not code:
        return plans[0]
    chosen = next((p for p in plans if p.code == code), None)
    if chosen is None:
        raise NotFound(tr(f"没有计划 {code}", f"no plan {code}"))
    return chosen


def plan_choices(session: Session, user: User, current: Plan) -> list[dict[str, Any]]:
    """The picker's options (only shown when there is more than one)."""
    return [{"code": p.code, "title": p.title, "selected": p.id == current.id} for p in plans_for(session, user)]


def school_plan(session: Session, user: User, code: str, plan_code: str | None) -> str | None:
    """The plan a school's page and its forms work in: the one asked for, else the newest of the
    user's plans that holds the school (a county in both the 2.0 programme and the Henan
    contractor project answered "there are 2 plans" on every school page)."""
    if plan_code:
        return plan_code
    for plan in plans_for(session, user):
        if session.scalar(select(SchoolRun.id).where(SchoolRun.plan_id == plan.id, SchoolRun.school_code == code)
                          .limit(1)) is not None:
            return plan.code
    return None
