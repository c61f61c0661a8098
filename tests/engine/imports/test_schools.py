"""School import: county checked against the region tree, city/province filled in, all-or-nothing."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from engine.errors import ImportFileError
from engine.i18n import set_language
from engine.imports.schools import import_schools
from engine.models import Region, School

HEADER = ["学校标识码", "学校名称", "县区代码", "学段", "是否农村", "是否试点"]


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


@pytest.fixture
def tree(db: Engine) -> Engine:
    with Session(db) as session, session.begin():
        session.add_all([
            Region(code="370000", name="山东省", level="province", parent_code=None),
            Region(code="370300", name="淄博市", level="city", parent_code="370000"),
            Region(code="370323", name="沂源县", level="county", parent_code="370300"),
            Region(code="410000", name="河南省", level="province", parent_code=None),
            Region(code="419001", name="济源市", level="county", parent_code="410000"),
        ])
    return db


def schools(db: Engine) -> list[tuple[object, ...]]:
    with Session(db) as session:
        rows = session.execute(select(
            School.code, School.name, School.county_code, School.city_code, School.province_code,
            School.kind, School.rural, School.pilot,
        ).order_by(School.code))
        return [tuple(r) for r in rows]


GOOD = [
    HEADER,
    ["3703230001", "沂源县第一中学", "370323", "高中", "否", "是"],
    ["3703230002", "沂源县鲁村镇中心小学", "370323", "小学", "是", ""],
    ["4190010001", "济源市实验幼儿园", "419001", "幼儿园", "N", "0"],
]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_schools_get_city_and_province_from_the_tree(tree: Engine, tmp_path: Path, encoding: str) -> None:
    result = import_schools(tree, write_csv(tmp_path / "s.csv", GOOD, encoding))
    assert (result.kind, result.total, result.inserted) == ("schools", 3, 3)
    assert schools(tree) == [
        ("3703230001", "沂源县第一中学", "370323", "370300", "370000", "senior", False, True),
        ("3703230002", "沂源县鲁村镇中心小学", "370323", "370300", "370000", "primary", True, False),
        ("4190010001", "济源市实验幼儿园", "419001", "419001", "410000", "kindergarten", False, False),  # 济源: its own city-level unit (002)
    ]


def test_xlsx_with_numeric_codes(tree: Engine, tmp_path: Path) -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["学校代码", "学校名称", "区县代码", "学校类型", "农村学校"])
    sheet.append([3703230003, "沂源县历山中学", 370323, "九年一贯制学校", 1])
    sheet.append([3703230004.0, "沂源县职业中专", 370323.0, "中职", "true"])
    workbook.save(tmp_path / "s.xlsx")
    import_schools(tree, tmp_path / "s.xlsx")
    got = {row[0]: (row[5], row[6]) for row in schools(tree)}
    assert got == {"3703230003": ("nine_year", True), "3703230004": ("vocational", True)}


def test_reimport_is_unchanged_and_edits_are_updates(tree: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "s.csv", GOOD)
    import_schools(tree, path)
    before = schools(tree)
    again = import_schools(tree, path)
    assert (again.inserted, again.updated, again.unchanged, again.total) == (0, 0, 3, 3)
    assert schools(tree) == before
    edited = [row[:] for row in GOOD]
    edited[2][5] = "是"  # the primary school joins the pilot
    edited.append(["3703230009", "沂源县新校", "370323", "初中", "是", "否"])
    result = import_schools(tree, write_csv(tmp_path / "s2.csv", edited))
    assert (result.inserted, result.updated, result.unchanged) == (1, 1, 2)
    assert schools(tree)[1][-1] is True


def test_every_bad_row_is_reported_and_nothing_is_written(tree: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "s.csv", [
        HEADER,
        ["3703230001", "好学校", "370323", "小学", "是", ""],
        ["3703230001", "重复", "370323", "小学", "是", ""],    # row 3: duplicate code
        ["370323000", "短码", "370323", "小学", "是", ""],     # row 4: 9 digits
        ["3703230005", "未知县", "370399", "小学", "是", ""],  # row 5: unknown county
        ["3703230006", "挂在市", "370300", "小学", "是", ""],  # row 6: city, not county
        ["3703230007", "怪学段", "370323", "大学", "是", ""],  # row 7: unknown kind
        ["3703230008", "", "370323", "小学", "也许", "可能"],  # row 8: name, rural, pilot
        ["3.70323E+09", "科学计数", "370323", "小学", "", ""],  # row 9: mangled code, rural missing
    ])
    with pytest.raises(ImportFileError) as err:
        import_schools(tree, path)
    got = sorted((p.line or 0, p.field or "") for p in err.value.problems)
    assert got == sorted([
        (3, "学校标识码"), (4, "学校标识码"), (5, "县区代码"), (6, "县区代码"), (7, "学段"),
        (8, "学校名称"), (8, "是否农村"), (8, "是否试点"), (9, "学校标识码"), (9, "是否农村"),
    ])
    messages = {(p.line, p.field): p.message for p in err.value.problems}
    assert "370399" in messages[(5, "县区代码")]
    assert "不是县级" in messages[(6, "县区代码")]
    assert "幼儿园" in messages[(7, "学段")]
    assert all(p.column is not None for p in err.value.problems)
    assert schools(tree) == []


def test_problems_in_english(tree: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "s.csv", [HEADER, ["3703230005", "x", "370399", "小学", "是", ""]])
    set_language("en")
    with pytest.raises(ImportFileError, match="unknown county 370399"):
        import_schools(tree, path)


def test_missing_required_column(tree: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "s.csv", [HEADER[:4], ["3703230001", "x", "370323", "小学"]])
    with pytest.raises(ImportFileError, match="rural") as err:
        import_schools(tree, path)
    assert len(err.value.problems) == 1
