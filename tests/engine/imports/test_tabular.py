"""Reading office files: every encoding offices send, XLSX, Chinese headers through the mapping."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import Workbook

from engine.errors import ImportFileError
from engine.i18n import set_language
from engine.imports.mapping import DEFAULT_MAPPING_PATH, load_mapping, normalise_header
from engine.imports.tabular import cell_text, detect_encoding, estimate_rows, open_table

TEACHERS = load_mapping()["teachers"]
REQUIRED = ("platform_id", "name", "school_code", "online_hours", "practice_hours", "points")
HEADER = ["教师编号", "姓名", "学校标识码", "线上学时", "校本实践学时", "能力点"]
ROWS = [
    ["T001", "张三", "3703230001", "25", "30", "3,11,15"],
    ["T002", "李四", "3703230002", "12.5", "0", ""],
]


def write_csv(path: Path, rows: list[list[str]], encoding: str, delimiter: str = ",") -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        csv.writer(handle, delimiter=delimiter).writerows(rows)
    return path


def read_all(path: Path) -> list[tuple[int, dict[str, str]]]:
    with open_table(path, TEACHERS, REQUIRED) as table:
        return list(table)


EXPECTED = [
    (2, {"platform_id": "T001", "name": "张三", "school_code": "3703230001", "online_hours": "25",
         "practice_hours": "30", "points": "3,11,15"}),
    (3, {"platform_id": "T002", "name": "李四", "school_code": "3703230002", "online_hours": "12.5",
         "practice_hours": "0", "points": ""}),
]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "gbk", "utf-16"])
def test_every_encoding_offices_send_reads_the_same(tmp_path: Path, encoding: str) -> None:
    path = write_csv(tmp_path / "t.csv", [HEADER, *ROWS], encoding)
    assert read_all(path) == EXPECTED


def test_encoding_detection_prefers_bom_then_strict_utf8_then_gb18030(tmp_path: Path) -> None:
    assert detect_encoding(write_csv(tmp_path / "a.csv", [HEADER], "utf-8-sig")) == "utf-8-sig"
    assert detect_encoding(write_csv(tmp_path / "b.csv", [HEADER], "utf-8")) == "utf-8"
    assert detect_encoding(write_csv(tmp_path / "c.csv", [HEADER], "gbk")) == "gb18030"


def test_gb18030_only_characters_survive(tmp_path: Path) -> None:
    # 𠀾 is outside GBK; GB18030 encodes it in four bytes.
    path = write_csv(tmp_path / "t.csv", [HEADER, ["T1", "王𠀾", "3703230001", "1", "1", ""]], "gb18030")
    assert read_all(path)[0][1]["name"] == "王𠀾"


def test_bytes_that_are_neither_utf8_nor_gb18030_are_refused_not_mangled(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(",".join(HEADER).encode("utf-8") + b"\nT1,\xff\xfe\x80,3703230001,1,1,\n")
    with pytest.raises(ImportFileError, match="UTF-8") as err:
        read_all(path)
    assert len(err.value.problems) == 1


def test_headers_match_after_stripping_spaces_full_width_and_required_markers(tmp_path: Path) -> None:
    header = ["  教师编号 ", "姓\u3000名", "*学校标识码", "线上学时", "校本实践学时", "能力点", "备注"]
    path = write_csv(tmp_path / "t.csv", [header, ["T1", "张三", "3703230001", "1", "2", "", "x"]], "utf-8")
    with open_table(path, TEACHERS, REQUIRED) as table:
        assert table.columns["name"].header == "姓\u3000名"
        assert table.columns["school_code"].index == 3
        rows = list(table)
    assert rows == [(2, {"platform_id": "T1", "name": "张三", "school_code": "3703230001",
                         "online_hours": "1", "practice_hours": "2", "points": ""})]
    assert normalise_header("ＰＬＡＴＦＯＲＭ_ID") == normalise_header("platform_id")


def test_english_headers_work_too(tmp_path: Path) -> None:
    header = ["platform_id", "name", "school_code", "online_hours", "practice_hours", "points"]
    path = write_csv(tmp_path / "t.csv", [header, ROWS[0]], "utf-8")
    assert read_all(path)[0][1]["platform_id"] == "T001"


def test_blank_lines_are_skipped_but_row_numbers_stay_those_of_the_sheet(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", [HEADER, ROWS[0], ["", "", ""], ROWS[1]], "utf-8")
    assert [n for n, _ in read_all(path)] == [2, 4]


def test_short_rows_read_missing_cells_as_empty(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", [HEADER, ["T1", "张三"]], "utf-8")
    assert read_all(path)[0][1]["points"] == ""


def test_tab_separated_export_is_read(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", [HEADER, *ROWS], "utf-16", delimiter="\t")
    assert read_all(path) == EXPECTED


def test_missing_required_columns_are_one_problem_naming_them_all(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", [["教师编号", "姓名", "线上学时"], ["T1", "张三", "1"]], "utf-8")
    with pytest.raises(ImportFileError) as err:
        read_all(path)
    [problem] = err.value.problems
    assert problem.line == 1
    for field in ("school_code", "practice_hours", "points"):
        assert field in problem.message
    assert "学校标识码" in problem.message
    assert "platform_id" not in problem.message


@pytest.mark.parametrize("header", ["身份证号", "居民身份证号码", "证件号码", "ID card", "id_number"])
def test_a_national_id_column_refuses_the_file(tmp_path: Path, header: str) -> None:
    path = write_csv(tmp_path / "t.csv", [[*HEADER, header], [*ROWS[0], "370323198001011234"]], "utf-8")
    with pytest.raises(ImportFileError) as err:
        read_all(path)
    [problem] = err.value.problems
    assert problem.field == header
    assert problem.column == 7
    assert "删除该列" in problem.message


def test_id_column_message_in_english(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", [[*HEADER, "证件号"], ROWS[0]], "utf-8")
    set_language("en")
    with pytest.raises(ImportFileError, match="Delete that column"):
        read_all(path)


def _xlsx(path: Path, rows: Sequence[Sequence[object]]) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


def test_xlsx_numbers_become_the_codes_the_clerk_typed(tmp_path: Path) -> None:
    path = _xlsx(tmp_path / "t.xlsx", [
        HEADER,
        ["T001", "张三", 3703230001, 25, 30.0, "3,11,15"],
        [None, None, None, None, None, None],
        [1002, "李四", 3703230002.0, 12.5, 0, None],
    ])
    assert read_all(path) == [
        EXPECTED[0],
        (4, {"platform_id": "1002", "name": "李四", "school_code": "3703230002", "online_hours": "12.5",
             "practice_hours": "0", "points": ""}),
    ]


def test_title_rows_above_the_header_are_skipped_and_rows_keep_sheet_numbers(tmp_path: Path) -> None:
    path = _xlsx(tmp_path / "t.xlsx", [["沂源县教师学时统计表"], [], HEADER, ROWS[0]])
    with open_table(path, TEACHERS, REQUIRED) as table:
        assert table.header_row == 3
        assert [n for n, _ in table] == [4]


def test_old_xls_is_refused_with_advice(tmp_path: Path) -> None:
    path = tmp_path / "t.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(ImportFileError, match="xlsx"):
        read_all(path)


def test_missing_file_is_a_problem_not_a_traceback(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="文件不存在"):
        read_all(tmp_path / "nope.csv")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""), (3703230001, "3703230001"), (3703230001.0, "3703230001"), (12.5, "12.5"),
        (True, "true"), (Decimal("25.50"), "25.5"), (datetime(2021, 12, 1), "2021-12-01"),
        ("  张三 ", "张三"),
    ],
)
def test_cell_text(value: object, text: str) -> None:
    assert cell_text(value) == text


def test_estimate_rows(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", [HEADER, *ROWS], "utf-8")
    assert estimate_rows(path) == 2
    assert estimate_rows(_xlsx(tmp_path / "t.xlsx", [HEADER, *ROWS, ROWS[0]])) == 3


def test_default_mapping_is_the_shipped_provincial_platform_file() -> None:
    mapping = load_mapping()
    assert DEFAULT_MAPPING_PATH.name == "provincial-platform.yaml"
    assert set(mapping) == {"regions", "schools", "teachers"}
    assert {"教师编号", "平台账号", "用户ID", "platform_id"} <= set(mapping["teachers"]["platform_id"])
    assert {"姓名", "教师姓名", "name"} <= set(mapping["teachers"]["name"])
    for section in mapping.values():
        for headers in section.values():
            assert all(h and "身份证" not in h for h in headers)


def test_custom_mapping_replaces_only_the_fields_it_names(tmp_path: Path) -> None:
    custom = tmp_path / "m.yaml"
    custom.write_text("teacher:\n  platform_id: [研修账号]\n  name: 学员\n", encoding="utf-8")
    mapping = load_mapping(custom)
    assert mapping["teachers"]["platform_id"] == ("研修账号",)
    assert mapping["teachers"]["name"] == ("学员",)
    assert "学校标识码" in mapping["teachers"]["school_code"]
    assert mapping["regions"] == load_mapping()["regions"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("teachers: [a, b]\n", "teachers"),
        ("pupils:\n  name: [x]\n", "pupils"),
        ("teachers:\n  name: []\n", "teachers.name"),
        ("teachers: {name: [x]\n", "YAML"),
        ("- 1\n", "section"),
    ],
)
def test_malformed_mapping_files_are_refused(tmp_path: Path, text: str, fragment: str) -> None:
    custom = tmp_path / "m.yaml"
    custom.write_text(text, encoding="utf-8")
    set_language("en")
    with pytest.raises(ImportFileError) as err:
        load_mapping(custom)
    assert fragment in str(err.value)


def test_records_are_tuples_in_the_asked_order_and_agree_with_the_dict_rows(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", [
        HEADER, [" T001 ", "张三", "3703230001", "25", "30", "3,11,15"],
        ["", "", "", "", "", ""], ["  ", " ", "\t"], ["", "", "x"], ["T2", "李四"], [],
    ], "utf-8")
    fields = ("points", "platform_id", "evidence_count", "name")  # evidence_count: no such column
    with open_table(path, TEACHERS, REQUIRED) as table:
        got = list(table.records(fields))
    assert got == [(2, ("3,11,15", "T001", "", "张三")), (5, ("", "", "", "")), (6, ("", "T2", "", "李四"))]
    assert [(n, tuple(row.get(f, "") for f in fields)) for n, row in read_all(path)] == got
    with open_table(path, TEACHERS, REQUIRED) as table:
        assert [cells for _, cells in table.records(("name",))] == [("张三",), ("",), ("李四",)]


def test_xlsx_rows_and_columns_are_the_sheets_even_when_the_table_starts_further_in(tmp_path: Path) -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet["C2"] = "沂源县教师学时统计表"  # blank row 1, blank columns A–B
    for col, header in enumerate(HEADER, start=2):
        sheet.cell(row=4, column=col, value=header)
    for col, value in enumerate(["T001", "张三", 3703230001, 25, 30, "3,11,15"], start=2):
        sheet.cell(row=6, column=col, value=value)
    sheet.cell(row=8, column=3, value="李四")
    workbook.save(tmp_path / "t.xlsx")
    with open_table(tmp_path / "t.xlsx", TEACHERS, REQUIRED) as table:
        assert table.header_row == 4
        assert {c.field: c.index for c in table.columns.values()}["platform_id"] == 2
        assert list(table) == [(6, EXPECTED[0][1]), (8, {**dict.fromkeys(EXPECTED[0][1], ""), "name": "李四"})]


def test_an_xlsx_that_is_not_one_is_a_problem_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "t.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a zip file")
    with pytest.raises(ImportFileError, match="XLSX") as err:
        open_table(path, TEACHERS, REQUIRED)
    assert err.value.problems[0].source == str(path)
