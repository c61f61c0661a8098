"""The bulletin as a spreadsheet: offices forward and re-sort these, so numbers stay numbers.

Seed 002 (实行项目通报制度,定期对各市县……进行通报) has offices publish regular bulletins ranking
regions; the workbook carries the same rows as the bulletin templates, with real percentages
(formatted ``0.0%``) instead of text, and Chinese headers as offices expect.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

HEADERS = ["排名", "地区代码", "地区", "学校数", "已完成", "完成率", "逾期", "逾期率"]
PERCENT_COLUMNS = (6, 8)


def _stages(rows: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        for stage in row.get("stage_counts", {}):
            seen.setdefault(str(stage), None)
    return list(seen)


def bulletin_workbook(context: dict[str, Any]) -> bytes:
    """An .xlsx of the bulletin context (see ``notifications.rendering`` for its contract)."""
    rows: list[dict[str, Any]] = list(context["rows"])
    stages = _stages(rows)
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "通报"
    title = f"{context['plan_title']}推进情况通报（{context['period']}，{context['office']['name']}）"
    sheet.append([title])
    sheet["A1"].font = Font(bold=True, size=14)
    headers = HEADERS + [f"{stage}（所）" for stage in stages]
    sheet.append(headers)
    for cell in sheet[2]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(horizontal="center")
    for row in rows:
        counts = row.get("stage_counts", {})
        sheet.append([
            row["rank"], str(row["region_code"]), row["region_name"], row["schools"], row["done"],
            float(row["done_share"]), row["overdue"], float(row["overdue_share"]),
            *[counts.get(stage, 0) for stage in stages],
        ])
    for index in range(3, sheet.max_row + 1):
        for column in PERCENT_COLUMNS:
            sheet.cell(row=index, column=column).number_format = "0.0%"
        sheet.cell(row=index, column=2).number_format = "@"
    for column, header in enumerate(headers, start=1):
        sheet.column_dimensions[get_column_letter(column)].width = max(10, len(header) * 2 + 2)
    sheet.column_dimensions["C"].width = 20
    sheet.freeze_panes = "A3"
    out = BytesIO()
    book.save(out)
    return out.getvalue()
