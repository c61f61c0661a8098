"""The progress import's rules at the edges: the platforms' point codes, the quick path a row of
already-seen texts takes (it must store and refuse exactly what the full checks do), the messages
of bad cells in both languages, and the counts an office reads after an import."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from engine.errors import ImportFileError
from engine.i18n import set_language
from engine.imports.progress import import_progress, point_number
from tests.engine.imports.test_progress import HEADER, schools, teachers, write_csv

__all__ = ["schools"]  # the fixture, shared with test_progress.py
ROLE = [*HEADER, "人员类型"]
GOOD_CELLS = ["3703230001", "25", "25", "1,2,3", "3", "合格", ""]  # school … role of a row that passes


@pytest.mark.parametrize(("token", "number"), [
    ("16", 16), ("1", 1), ("30", 30), ("31", 31),  # numbers as they stand; 1–30 is parse_points' check
    ("A1", 1), ("A13", 13), ("B1", 14), ("B3", 16), ("b3", 16), ("B10", 23), ("C1", 24), ("C7", 30),
    ("A0", 0), ("A14", 0), ("B11", 0), ("C8", 0), ("D1", 0), ("X", 0), ("AB", 0), ("１６", 0), ("B", 0), ("B100", 0),
])
def test_point_numbers_and_platform_codes(token: str, number: int) -> None:
    """001 attachment 3 numbers the 30 points by environment: A1–A13, B1–B10 (14–23), C1–C7 (24–30);
    anything else is 0, which no point is. Full-width digits are folded before this is asked."""
    assert point_number(token) == number


def _row(pid: str, name: str = "甲", **cells: str) -> list[str]:
    values = dict(zip(("school", "online", "practice", "points", "evidence", "result", "role"), GOOD_CELLS, strict=True))
    values.update(cells)
    return [pid, name, *values.values()]


def test_rows_of_texts_already_seen_are_stored_as_the_full_checks_would(schools: Engine, tmp_path: Path) -> None:
    """A province file repeats the same few texts a million times; the rows after the first take a
    quick path. Each must be stored exactly as if it were the first: folded ids, cleaned names,
    the joined points and their count, the counted evidence, the result and the role."""
    rows = [ROLE, _row("Q1"), _row("Q2", "乙"), _row("Q3", "丙", result="优秀", role="管理团队"),
            _row("Z", "丁"), _row("Ｑ５", "戊"), _row("Q6", "己\x1b[31m"), _row("Q" * 40, "庚"), _row("Q8", "辛" * 100),
            _row("Q9", "壬", practice="26"), _row("Q10", "癸", evidence="03"), _row("Q11", "子", points="1,2", evidence="2"),
            _row("Q12", "丑", points="1,2", evidence="1")]
    result = import_progress(schools, write_csv(tmp_path / "p.csv", rows))
    assert (result.total, result.inserted, result.updated, result.unchanged) == (12, 12, 0, 0)
    stored = {t[0]: t for t in teachers(schools)}
    full = ("3703230001", 25.0, 25.0, "1,2,3", 3, 3, "pass")
    assert stored == {
        "Q1": ("Q1", "甲", *full), "Q2": ("Q2", "乙", *full),
        "Q3": ("Q3", "丙", *full[:-1], "excellent"), "Z": ("Z", "丁", *full), "Q5": ("Q5", "戊", *full),
        "Q6": ("Q6", "己", *full), "Q" * 40: ("Q" * 40, "庚", *full), "Q8": ("Q8", "辛" * 100, *full),
        "Q9": ("Q9", "壬", "3703230001", 25.0, 26.0, "1,2,3", 3, 3, "pass"), "Q10": ("Q10", "癸", *full),
        "Q11": ("Q11", "子", "3703230001", 25.0, 25.0, "1,2", 2, 2, "pass"),
        "Q12": ("Q12", "丑", "3703230001", 25.0, 25.0, "1,2", 2, 1, "pass"),
    }


def test_a_bad_cell_among_texts_already_seen_is_reported_where_it_is(schools: Engine, tmp_path: Path) -> None:
    """Every cell of these rows but one was seen on a good row before: the one is still refused,
    with its row and field, and a duplicate id names the row that had it first."""
    rows = [ROLE, _row("R1"), _row("R2", points="1,2", evidence="2"),
            _row("R3"),                                      # 4: fine, on the quick path
            _row("R3", "重"),                                # 5: the id of row 4
            _row("R6", result="好"),                         # 6: unknown result
            _row("R7", role="校长"),                         # 7: unknown role
            _row("R8", points="1,2", evidence="3"),          # 8: more evidence than points
            _row("", "无号"),                                # 9: no id
            _row("R10", "长" * 101),                         # 10: name too long
            _row("R11", ""),                                 # 11: no name
            _row("R12", school="3703239999")]                # 12: unknown school
    with pytest.raises(ImportFileError) as err:
        import_progress(schools, write_csv(tmp_path / "p.csv", rows))
    got = [(p.line, p.field) for p in err.value.problems]
    assert got == [(5, "教师编号"), (6, "测评结果"), (7, "人员类型"), (8, "提交作品数"), (9, "教师编号"), (10, "姓名"),
                   (11, "姓名"), (12, "学校标识码")]
    assert err.value.problems[0].message == "R3 在文件中重复（第 4 行已有）"
    assert teachers(schools) == []


def test_hours_up_to_the_cap_pass_and_bad_hours_are_explained_in_both_languages(schools: Engine,
                                                                                 tmp_path: Path) -> None:
    """1000 hours is the cap itself (accepted); empty, negative and above-cap hours are refused
    with their own words, in Chinese and for an English-language office alike."""
    ok = import_progress(schools, write_csv(tmp_path / "ok.csv", [ROLE, _row("H1", online="1000")]))
    assert ok.inserted == 1
    bad = write_csv(tmp_path / "bad.csv", [ROLE, _row("H2", online="", practice="-1"), _row("H3", online="1000.5")])
    messages = {}
    for lang in ("zh", "en"):
        set_language(lang)
        with pytest.raises(ImportFileError) as err:
            import_progress(schools, bad)
        messages[lang] = [(p.line, p.field, p.message) for p in err.value.problems]
    assert messages["zh"] == [(2, "线上学时", "缺少学时"), (2, "校本实践学时", "学时“-1”不能为负数"),
                              (3, "线上学时", "学时 1000.5 超过上限 1000，请核对")]
    assert [m for _, _, m in messages["en"]] == ["hours is missing", "hours '-1' must not be negative",
                                                  "hours 1000.5 above the cap of 1000: check the file"]
