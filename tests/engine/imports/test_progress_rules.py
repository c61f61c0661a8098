"""The progress import's rules at the edges: the platforms' point codes, the quick path a row of
already-seen texts takes (it must store and refuse exactly what the full checks do), the messages
of bad cells in both languages, and the counts an office reads after an import."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text, update
from sqlalchemy.orm import Session

from engine.clock import FixedClock
from engine.db import make_engine
from engine.errors import ImportFileError
from engine.i18n import set_language
from engine.imports import kept_rows
from engine.imports.cells import parse_points, point_number
from engine.imports.kept import kept_table
from engine.imports.mapping import resolve_mapping
from engine.imports.progress import FIELDS, import_progress
from engine.models import ProgressImport, Region, School
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
    """1000 hours is the cap itself (accepted); empty, negative, above-cap and not plainly decimal
    hours (``2_5``, which float() reads as 25) are refused with their own words, in Chinese and for
    an English-language office alike."""
    ok = import_progress(schools, write_csv(tmp_path / "ok.csv", [ROLE, _row("H1", online="1000")]))
    assert ok.inserted == 1
    bad = write_csv(tmp_path / "bad.csv", [ROLE, _row("H2", online="", practice="-1"), _row("H3", online="1000.5", practice="2_5")])
    messages = {}
    for lang in ("zh", "en"):
        set_language(lang)
        with pytest.raises(ImportFileError) as err:
            import_progress(schools, bad)
        messages[lang] = [(p.line, p.field, p.message) for p in err.value.problems]
    assert messages["zh"] == [(2, "线上学时", "缺少学时"), (2, "校本实践学时", "学时“-1”不能为负数"),
                              (3, "线上学时", "学时 1000.5 超过上限 1000，请核对"),
                              (3, "校本实践学时", "学时“2_5”不是数字：请写成 25 或 25.5 这样的普通小数")]
    assert [m for _, _, m in messages["en"]] == ["hours is missing", "hours '-1' must not be negative",
                                                  "hours 1000.5 above the cap of 1000: check the file",
                                                  "hours '2_5' is not a number: write a plain decimal such as 25 or 25.5"]


EVERY_REFUSAL = [ROLE,
                 _row("", "无号"), _row("L" * 41, "长号"), _row("11010519491231002X", "身份证"), _row("F4", ""),
                 _row("F5", "长" * 300), _row("F6", school="37032300"), _row("F7", school="3703239999"),
                 _row("F8", evidence="三"), _row("F9", result="好"), _row("F10", role="校长"), _row("F11", evidence="x")]


def test_every_refusal_names_its_row_field_and_cause_in_both_languages(schools: Engine, tmp_path: Path) -> None:
    """The clerk fixes the file from these messages alone: each says what is wrong with which cell."""
    path = write_csv(tmp_path / "p.csv", EVERY_REFUSAL)
    got = {}
    for lang in ("zh", "en"):
        set_language(lang)
        with pytest.raises(ImportFileError) as err:
            import_progress(schools, path)
        got[lang] = [(p.line, p.field, p.message) for p in err.value.problems]
    assert [(line, field) for line, field, _ in got["zh"]] == [(line, field) for line, field, _ in got["en"]] == [
        (2, "教师编号"), (3, "教师编号"), (4, "教师编号"), (5, "姓名"), (6, "姓名"), (7, "学校标识码"), (8, "学校标识码"),
        (9, "提交作品数"), (10, "测评结果"), (11, "人员类型"), (12, "提交作品数")]
    assert [m for _, _, m in got["zh"]] == [
        "缺少教师编号", "教师编号超过 40 个字符", "教师编号看起来是身份证号：本系统不保存身份证号，请导出平台的用户编号",
        "缺少姓名", "姓名超过 100 个字", "学校标识码“37032300”格式不对：应为 10 位数字", "学校 3703239999 不存在：请先导入学校",
        "提交作品数“三”应为 0 到所选能力点数（3）之间的整数", "测评结果“好”无法识别：应为 优秀/合格/不合格 或留空",
        "人员类型“校长”无法识别：应为 教师/管理团队 或留空", "提交作品数“x”应为 0 到所选能力点数（3）之间的整数"]
    assert [m for _, _, m in got["en"]] == [
        "platform teacher id is missing", "platform teacher id longer than 40 characters",
        "the platform teacher id looks like a national ID number: rollout never stores those; export the platform's "
        "user id instead", "name is missing", "name longer than 100 characters",
        "school code '37032300' is malformed: it must be 10 digits", "unknown school 3703239999: import the schools first",
        "evidence count '三' must be a whole number from 0 to the points chosen (3)",
        "evidence result '好' unknown: use excellent/pass/fail or leave it empty",
        "role '校长' unknown: use 教师 (teacher) / 管理团队 (management) or leave it empty",
        "evidence count 'x' must be a whole number from 0 to the points chosen (3)"]


def test_the_longest_id_and_name_allowed_are_stored(schools: Engine, tmp_path: Path) -> None:
    """40 characters of id and 100 of name are the limits themselves, not past them."""
    result = import_progress(schools, write_csv(tmp_path / "p.csv", [ROLE, _row("M" * 40, "名" * 100)]))
    assert result.inserted == 1 and [t[:2] for t in teachers(schools)] == [("M" * 40, "名" * 100)]


def test_an_import_records_the_clerks_file_the_mapping_and_todays_date_in_china(schools: Engine,
                                                                               tmp_path: Path) -> None:
    """A web upload is a temporary copy: the record names the clerk's file (``file_name``) and the
    mapping file by name; without ``as_of`` the export is of today in China, not in UTC."""
    mapping = tmp_path / "省平台.yaml"
    mapping.write_text("teachers:\n  platform_id: [研修编号]\n", encoding="utf-8")
    copy = write_csv(tmp_path / "upload-1234.tmp", [["研修编号", *ROLE[1:]], _row("P1"), _row("P2", "乙")])
    headers: list[tuple[int, list[str]]] = []
    late = FixedClock(datetime(2022, 3, 1, 17, 0, tzinfo=UTC))  # 01:00 on 2 March in Shanghai
    result = import_progress(schools, copy, mapping, clock=late, file_name="三月进度.csv",
                             on_header=lambda row, columns: headers.append((row, sorted(columns))))
    assert headers == [(1, sorted(FIELDS))]
    assert (result.total, result.inserted, result.as_of, result.import_id, result.same_as) == (2, 2, date(2022, 3, 2), 1, None)
    loaded = resolve_mapping(mapping)
    again = import_progress(schools, write_csv(tmp_path / "b.csv", [["研修编号", *ROLE[1:]], _row("P1", online="30")]),
                            loaded, clock=late, mapping_name="江苏.yaml", full=True, actor="王科长")
    assert (again.updated, again.unchanged, again.left) == (1, 0, 1)
    with Session(schools) as s:
        got = s.execute(select(ProgressImport.file_name, ProgressImport.mapping, ProgressImport.actor, ProgressImport.full,
                               ProgressImport.total, ProgressImport.as_of).order_by(ProgressImport.id)).all()
    assert [tuple(r) for r in got] == [("三月进度.csv", "省平台.yaml", "system", False, 2, date(2022, 3, 2)),
                                       ("b.csv", "江苏.yaml", "王科长", True, 1, date(2022, 3, 2))]


def test_a_previews_kept_rows_are_what_its_commit_merges(schools: Engine, db_url: str, tmp_path: Path) -> None:
    """The upload preview keeps its checked rows (``keep``); the commit merges those (``staged``),
    not the file read again: a kept row changed in between is what is written."""
    web = make_engine(db_url, kept_stage=True)
    path = write_csv(tmp_path / "p.csv", [ROLE, _row("K1"), _row("K2", school="3703230002")])
    try:
        with Session(web) as s, s.begin():
            dry = import_progress(s, path, dry_run=True, keep="job7", scope="370323")
            assert (dry.kind, dry.source) == ("progress", str(path))
            assert (dry.dry_run, dry.total, dry.inserted, dry.groups) == (True, 2, 2, (("3703230001", 1, 0, 0),
                                                                                       ("3703230002", 1, 0, 0)))
            table = kept_table(s.connection(), "job7")
            assert kept_rows(s.connection(), "job7") == 2 and teachers(schools) == []
        with Session(web) as s, s.begin():
            s.execute(text(f"UPDATE {table} SET online_hours = 31.5 WHERE platform_id = 'K1'"))
        with Session(web) as s, s.begin():
            done = import_progress(s, path, staged="job7", scope="370323")
        assert (done.kind, done.source, done.total, done.inserted, done.dry_run) == ("progress", str(path), 2, 2, False)
        assert [(t[0], t[2], t[3]) for t in teachers(schools)] == [("K1", "3703230001", 31.5), ("K2", "3703230002", 25.0)]
        # What moved in the database since a preview is still checked: a school now in another county.
        with Session(web) as s, s.begin():
            import_progress(s, write_csv(tmp_path / "q.csv", [ROLE, _row("K3", school="3703230002")]), dry_run=True,
                            keep="job8", scope="370323")
        with Session(web) as s, s.begin():
            s.add(Region(code="370302", name="淄川区", level="county", parent_code="370300"))
            s.flush()
            s.execute(update(School).where(School.code == "3703230002").values(county_code="370302"))
        with Session(web) as s, s.begin(), pytest.raises(ImportFileError) as err:
            import_progress(s, tmp_path / "q.csv", staged="job8", scope="370323")
        assert [p.message for p in err.value.problems] == ["学校 3703230002 不存在或不在您的管辖范围内：这一行不会导入"]
        assert len(teachers(schools)) == 2
    finally:
        web.dispose()


def test_a_scoped_import_takes_its_regions_schools_however_their_codes_are_written(schools: Engine,
                                                                                    tmp_path: Path) -> None:
    """A county, city or province officer imports the schools under them (a full-width code is the
    same school); any other code is refused with the words that do not tell a foreign school from
    a missing one."""
    path = write_csv(tmp_path / "p.csv", [ROLE, _row("S1", school="３７０３２３０００１"), _row("S2", school="3703230002")])
    for scope in ("370323", "370300", "370000"):
        assert import_progress(schools, path, scope=scope, as_of=date(2022, 3, 1)).total == 2
    foreign = write_csv(tmp_path / "f.csv", [ROLE, _row("S3", school="3703239999")])
    for lang, words in (("zh", "学校 3703239999 不存在或不在您的管辖范围内：这一行不会导入"),
                        ("en", "school 3703239999 does not exist or is outside your region: this row is not imported")):
        set_language(lang)
        with pytest.raises(ImportFileError) as err:
            import_progress(schools, foreign, scope="370323", as_of=date(2022, 3, 1))
        assert [(p.line, p.field, p.message) for p in err.value.problems] == [(2, "学校标识码", words)]


def test_file_level_refusals_name_the_file_the_clerk_sent(schools: Engine, tmp_path: Path) -> None:
    """An upload is stored under another name (``source`` is the clerk's): a missing column and an
    export dated before the last import both name the clerk's file."""
    no_points = write_csv(tmp_path / "upload-1.tmp", [HEADER[:5], ["T1", "甲", "3703230001", "25", "25"]])
    with pytest.raises(ImportFileError) as err:
        import_progress(schools, no_points, source="三月进度.csv")
    assert err.value.problems[0].source == "三月进度.csv" and "能力点" in err.value.problems[0].message
    import_progress(schools, write_csv(tmp_path / "a.csv", [ROLE, _row("T1")]), as_of=date(2022, 3, 15))
    with pytest.raises(ImportFileError) as err:
        import_progress(schools, write_csv(tmp_path / "upload-2.tmp", [ROLE, _row("T1", online="30")]),
                        as_of=date(2022, 3, 1), source="二月进度.csv")
    assert [p.source for p in err.value.problems] == ["二月进度.csv"]
    assert "2022-03-01" in err.value.problems[0].message and "2022-03-15" in err.value.problems[0].message


def test_a_point_list_is_explained_in_the_language_of_whoever_asks_next() -> None:
    """Point lists are remembered per text (a million rows repeat a few thousand), but the words
    of a refusal belong to the asker: a Chinese import then an English one of the same bad list."""
    set_language("zh")
    assert parse_points("7，77") == ((), "能力点“77”不存在：应为 1–30 的编号或平台代码 A1–A13、B1–B10、C1–C7，用逗号或顿号分隔")
    set_language("en")
    assert parse_points("7，77") == ((), "unknown capability point '77': use numbers 1–30 or the platform codes A1–A13, "
                                         "B1–B10, C1–C7, separated by commas")
