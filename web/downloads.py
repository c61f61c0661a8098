"""The files an office sends up the line: every list and the region table as XLSX and CSV, with a
title block (plan, region, as-of time), Chinese headers and the workflow's words, never ids.
Written by engine.export (formula-like text neutralised, frozen header, column widths)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from starlette.responses import Response

from engine import NotFound, Plan, SheetColumn, tr, write_csv, xlsx_bytes

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def check_kind(kind: str) -> None:
    if kind not in ("xlsx", "csv"):
        raise NotFound(tr(f"没有 .{kind[:10]} 格式的下载", f"no .{kind[:10]} download"))


def title_lines(plan: Plan, what: str, region: str, now: datetime) -> list[str]:
    local = now.astimezone(ZoneInfo(plan.timezone)).strftime("%Y-%m-%d %H:%M")
    return [f"{plan.title} · {what}", tr(f"范围：{region}　数据截至：{local}", f"Scope: {region}   As of: {local}")]


def list_columns() -> list[SheetColumn]:
    return [SheetColumn(tr("学校代码", "School code"), 14, "@"), SheetColumn(tr("学校名称", "School"), 30),
            SheetColumn(tr("区县", "County"), 14), SheetColumn(tr("状态", "State"), 10),
            SheetColumn(tr("阶段", "Stage"), 12), SheetColumn(tr("截止日期", "Due"), 12),
            SheetColumn(tr("逾期天数", "Days overdue"), 10), SheetColumn(tr("未通过的关卡", "Failing gates"), 60)]


def list_cells(rows: list[dict[str, Any]]) -> list[list[Any]]:
    return [[r["school_code"], r["school_name"], r["county_name"], r["state_title"], r["stage_title"], r["due"],
             r["days_overdue"] or None, "；".join(r["failing"])] for r in rows]


def region_columns(rate_titles: Sequence[str]) -> list[SheetColumn]:
    return [SheetColumn(tr("排名", "Rank"), 6), SheetColumn(tr("地区代码", "Region code"), 10, "@"),
            SheetColumn(tr("地区", "Region"), 14), SheetColumn(tr("学校数", "Schools"), 8),
            SheetColumn(tr("已开始", "Started"), 8), SheetColumn(tr("已完成", "Done"), 8),
            SheetColumn(tr("完成率", "Done share"), 9, "0.0%"),
            *[SheetColumn(t, max(10, 2 * len(t) + 2), "0.0%") for t in rate_titles],
            SheetColumn(tr("逾期学校", "Overdue"), 9), SheetColumn(tr("逾期占比", "Overdue share"), 9, "0.0%"),
            SheetColumn(tr("有风险", "At risk"), 8)]


def region_cells(rows: list[dict[str, Any]], rate_ids: Sequence[str]) -> list[list[Any]]:
    return [[r["rank"], r["region_code"], r["region_name"], r["schools"], r["started"], r["done"], r["done_share"],
             *[r["rates"][k]["value"] for k in rate_ids], r["overdue"], r["overdue_share"], r.get("at_risk", 0)]
            for r in rows]


def file_response(kind: str, name: str, sheet: str, columns: list[SheetColumn], cells: list[list[Any]],
                  title: list[str]) -> Response:
    """``kind`` is ``xlsx`` or ``csv``; ``name`` the file name without extension (may be Chinese)."""
    filename = f"{name}.{kind}"
    disposition = f"attachment; filename=\"{kind}-export.{kind}\"; filename*=UTF-8''{quote(filename)}"
    if kind == "xlsx":
        return Response(xlsx_bytes(sheet, columns, cells, title), media_type=XLSX,
                        headers={"Content-Disposition": disposition})
    out = io.StringIO()
    write_csv(out, columns, cells, title)
    return Response(out.getvalue().encode("utf-8"), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": disposition})
