"""The bulletin as a spreadsheet: offices forward and re-sort these, so numbers stay numbers.

Seed 002 (实行项目通报制度,定期对各市县……进行通报) has offices publish regular bulletins ranking
regions; the workbook carries the same rows as the bulletin templates, with real percentages
(formatted ``0.0%``) instead of text, and Chinese headers as offices expect.
"""

from __future__ import annotations

from typing import Any

from engine import SheetColumn, xlsx_bytes

HEADERS = ["排名", "地区代码", "地区", "学校数", "已完成", "完成率", "逾期", "逾期率"]
FORMATS = {"地区代码": "@", "完成率": "0.0%", "逾期率": "0.0%"}  # codes stay text, shares are real percentages
WIDTHS = {"地区": 20}


def _stages(rows: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        for stage in row.get("stage_counts", {}):
            seen.setdefault(str(stage), None)
    return list(seen)


def bulletin_workbook(context: dict[str, Any]) -> bytes:
    """An .xlsx of the bulletin context (see ``notifications.rendering`` for its contract), written by
    ``engine.export``: a region or office named like a formula stays text."""
    rows: list[dict[str, Any]] = list(context["rows"])
    stages = _stages(rows)
    title = f"{context['plan_title']}推进情况通报（{context['period']}，{context['office']['name']}）"
    warned = any("at_risk" in row for row in rows)  # the forecast's schools at risk (issue 11)
    headers = HEADERS + (["预警学校（所）"] if warned else []) + [f"{stage}（所）" for stage in stages]
    columns = [SheetColumn(h, width=WIDTHS.get(h, max(10, len(h) * 2 + 2)), number_format=FORMATS.get(h)) for h in headers]
    table = ([row["rank"], str(row["region_code"]), row["region_name"], row["schools"], row["done"],
              float(row["done_share"]), row["overdue"], float(row["overdue_share"]),
              *([row.get("at_risk", 0)] if warned else []),
              *[row.get("stage_counts", {}).get(stage, 0) for stage in stages]] for row in rows)
    return xlsx_bytes("通报", columns, table, title=[title], more=_contractor_sheet(context))


def _contractor_sheet(context: dict[str, Any]) -> list[tuple[str, list[SheetColumn], list[list[Any]]]]:
    """The 承训单位 sheet (seed 002 (九) 各承训单位报到率、结业率……进行通报) when the plan has
    contractors in the office's region: each rate as a real percentage beside its n/d."""
    rows = context.get("contractors") or []
    if not rows:
        return []
    rates = list(context.get("rates") or [])
    headers = ["排名", "承训单位", "学校数", "已开始", "已完成", "完成率", "逾期", "逾期率"]
    columns = [SheetColumn(h, width=24 if h == "承训单位" else 10, number_format=FORMATS.get(h)) for h in headers]
    for rate in rates:
        columns += [SheetColumn(rate["title"], width=10, number_format="0.0%"), SheetColumn(f"{rate['title']}（分子/分母）", width=14)]
    table = [[r["rank"], r["contractor"], r["schools"], r["started"], r["done"], float(r["done_share"]), r["overdue"],
              float(r["overdue_share"]),
              *[x for rate in rates for x in (r["rates"][rate["id"]]["value"],
                                              f"{r['rates'][rate['id']]['numerator']}/{r['rates'][rate['id']]['denominator']}")]]
             for r in rows]
    return [("承训单位", columns, table)]
