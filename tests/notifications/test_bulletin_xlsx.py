"""The bulletin workbook: Chinese headers, numbers as numbers, percentages formatted."""

from __future__ import annotations

from io import BytesIO

import pytest
from openpyxl import load_workbook

from notifications.bulletin_xlsx import bulletin_workbook

CONTEXT = {
    "office": {"name": "淄博市项目办", "level": "city"}, "period": "2022年8月", "plan_title": "提升工程2.0",
    "rows": [
        {"rank": 1, "region_code": "370323", "region_name": "沂源县", "schools": 120, "done": 90,
         "done_share": 0.75, "overdue": 2, "overdue_share": 2 / 120, "stage_counts": {"校本实践": 20, "测评": 10}},
        {"rank": 2, "region_code": "370303", "region_name": "张店区", "schools": 80, "done": 40,
         "done_share": 0.5, "overdue": 8, "overdue_share": 0.1, "stage_counts": {"校本实践": 30, "督导": 2}},
    ],
}


def test_workbook_rows_and_formats() -> None:
    sheet = load_workbook(BytesIO(bulletin_workbook(CONTEXT))).active
    assert sheet is not None
    assert sheet["A1"].value == "提升工程2.0推进情况通报（2022年8月，淄博市项目办）"
    headers = [c.value for c in sheet[2]]
    assert headers == ["排名", "地区代码", "地区", "学校数", "已完成", "完成率", "逾期", "逾期率",
                       "校本实践（所）", "测评（所）", "督导（所）"]
    first = [c.value for c in sheet[3]]
    assert first[:7] + first[8:] == [1, "370323", "沂源县", 120, 90, 0.75, 2, 20, 10, 0]
    assert first[7] == pytest.approx(2 / 120)  # a number, not the text "1.7%"
    assert sheet["F3"].number_format == "0.0%" and sheet["H4"].number_format == "0.0%"
    assert [c.value for c in sheet[4]][-3:] == [30, 0, 2]  # a stage missing in a row counts 0


def test_empty_bulletin_still_has_headers() -> None:
    sheet = load_workbook(BytesIO(bulletin_workbook({**CONTEXT, "rows": []}))).active
    assert sheet is not None and sheet.max_row == 2
