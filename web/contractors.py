"""The overview's 承训单位 table and its downloads: each contractor's schools, started, done,
overdue and the workflow's rates with numerator and denominator, ranked as the bulletin ranks
(``engine.contractor_ranking``). Thin: the grouping and the ranking are the engine's; this only
scopes it to the user (and the region drilled into) and shapes the cells."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from engine import (
    Clock,
    SheetColumn,
    User,
    contractor_ranking,
    is_province,
    lists_schools,
    rate_columns,
    school_clause,
    school_clause_for,
    tr,
)
from web.overview import breadcrumbs
from web.plans import pick_plan


def contractor_table(session: Session, clock: Clock, user: User, *, plan_code: str | None = None,
                     region: str | None = None) -> dict[str, Any]:
    """``rows`` (one per contractor with schools in the user's scope and ``region``; empty when the
    plan assigns none) and ``rates`` (the column headers). A region outside the scope is NotFound."""
    plan = pick_plan(session, user, plan_code)
    where = [school_clause(user)]
    if region and not lists_schools(user):
        breadcrumbs(session, user, region)  # NotFound outside the user's region
        where.append(school_clause_for(region))
    whole = not lists_schools(user) and is_province(session, region or user.scope_code)
    return {"plan": plan.code, "rows": contractor_ranking(session, clock, plan, *where, scan_all=whole),
            "rates": rate_columns(session, plan)}


def columns(rate_titles: list[str]) -> list[SheetColumn]:
    rates = [c for t in rate_titles for c in (SheetColumn(t, max(10, 2 * len(t) + 2), "0.0%"),
                                              SheetColumn(tr(f"{t}（分子/分母）", f"{t} (n/d)"), 12))]
    return [SheetColumn(tr("排名", "Rank"), 6), SheetColumn(tr("承训单位", "Contractor"), 24),
            SheetColumn(tr("学校数", "Schools"), 8), SheetColumn(tr("已开始", "Started"), 8),
            SheetColumn(tr("已完成", "Done"), 8), SheetColumn(tr("完成率", "Done share"), 9, "0.0%"), *rates,
            SheetColumn(tr("逾期学校", "Overdue"), 9), SheetColumn(tr("逾期占比", "Overdue share"), 9, "0.0%")]


def cells(rows: list[dict[str, Any]], rate_ids: list[str]) -> list[list[Any]]:
    def rate(r: dict[str, Any]) -> list[Any]:
        return [x for k in rate_ids for x in (r["rates"][k]["value"],
                                              f"{r['rates'][k]['numerator']}/{r['rates'][k]['denominator']}")]
    return [[r["rank"], r["contractor"], r["schools"], r["started"], r["done"], r["done_share"], *rate(r),
             r["overdue"], r["overdue_share"]] for r in rows]
