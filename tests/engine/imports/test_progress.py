"""Teacher-progress import: every format offices send, every bad row reported, all-or-nothing,
idempotent, and never an ID number."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import ImportFileError
from engine.i18n import set_language
from engine.imports.cells import looks_like_id_number, parse_points
from engine.imports.progress import import_progress
from engine.imports.staging import CHUNK_ROWS, MAX_PROBLEMS
from engine.models import Region, School, Teacher

HEADER = ["教师编号", "姓名", "学校标识码", "线上学时", "校本实践学时", "能力点", "提交作品数", "测评结果"]
GOOD = [
    HEADER,
    ["T0001", "张三", "3703230001", "25", "30.5", "15、3、11", "3", "合格"],
    ["T0002", "李四", "3703230001", "12", "0", "", "", ""],
    ["T0003", "王五", "3703230002", "26", "25", "3;11;15", "2", "优秀"],
]
STORED = [
    ("T0001", "张三", "3703230001", 25.0, 30.5, "3,11,15", 3, 3, "pass"),
    ("T0002", "李四", "3703230001", 12.0, 0.0, "", 0, 0, None),
    ("T0003", "王五", "3703230002", 26.0, 25.0, "3,11,15", 3, 2, "excellent"),
]


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


def write_xlsx(path: Path, rows: list[list[object]]) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


@pytest.fixture
def schools(db: Engine) -> Engine:
    with Session(db) as session, session.begin():
        session.add_all([
            Region(code="370000", name="山东省", level="province", parent_code=None),
            Region(code="370300", name="淄博市", level="city", parent_code="370000"),
            Region(code="370323", name="沂源县", level="county", parent_code="370300"),
        ])
        session.flush()
        for n in (1, 2):
            session.add(School(code=f"370323000{n}", name=f"沂源县第{n}小学", county_code="370323",
                               city_code="370300", province_code="370000", kind="primary"))
    return db


def teachers(db: Engine) -> list[tuple[object, ...]]:
    with Session(db) as session:
        rows = session.execute(select(
            Teacher.platform_id, Teacher.name, Teacher.school_code, Teacher.online_hours,
            Teacher.practice_hours, Teacher.points, Teacher.points_count, Teacher.evidence_count,
            Teacher.evidence_result,
        ).order_by(Teacher.platform_id))
        return [tuple(r) for r in rows]


def snapshot(db: Engine) -> list[tuple[object, ...]]:
    """Everything stored, ids included: a no-op re-import must leave it identical."""
    with Session(db) as session:
        return [tuple(r) for r in session.execute(select(Teacher.__table__).order_by(Teacher.id))]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_csv_in_every_encoding(schools: Engine, tmp_path: Path, encoding: str) -> None:
    result = import_progress(schools, write_csv(tmp_path / "p.csv", GOOD, encoding))
    assert (result.kind, result.total, result.inserted, result.updated, result.unchanged) == ("progress", 3, 3, 0, 0)
    assert teachers(schools) == STORED


def test_xlsx_export(schools: Engine, tmp_path: Path) -> None:
    rows: list[list[object]] = [
        ["平台账号", "教师姓名", "学校代码", "网络研修学时", "实践学时", "所选能力点", "作品数", "考核结果"],
        ["T0001", "张三", 3703230001, 25, 30.5, "15、3、11", 3, "合格"],
        ["T0002", "李四", 3703230001.0, 12.0, 0, None, None, None],
        ["T0003", "王五", 3703230002, 26, 25, "3 11 15", 2.0, "excellent"],
    ]
    import_progress(schools, write_xlsx(tmp_path / "p.xlsx", rows))
    assert teachers(schools) == STORED


def test_through_a_session_in_the_callers_transaction(schools: Engine, factory: sessionmaker[Session], tmp_path: Path) -> None:
    path = write_csv(tmp_path / "p.csv", GOOD)
    with factory() as session, session.begin():
        assert import_progress(session, path).inserted == 3
        assert session.scalar(select(Teacher.points).where(Teacher.platform_id == "T0001")) == "3,11,15"
    assert len(teachers(schools)) == 3


def test_reimport_changes_nothing(schools: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "p.csv", GOOD)
    import_progress(schools, path)
    before = snapshot(schools)
    again = import_progress(schools, path)
    assert (again.total, again.inserted, again.updated, again.unchanged) == (3, 0, 0, 3)
    assert snapshot(schools) == before


def test_changed_rows_are_updated_others_left_alone(schools: Engine, tmp_path: Path) -> None:
    import_progress(schools, write_csv(tmp_path / "p.csv", GOOD))
    ids = {r[1]: r[0] for r in snapshot(schools)}
    later = [row[:] for row in GOOD]
    later[2][3:] = ["25", "25", "1,2,3", "1", ""]  # 李四 caught up
    later.append(["T0004", "赵六", "3703230002", "0", "0", "", "", ""])
    result = import_progress(schools, write_csv(tmp_path / "p2.csv", later))
    assert (result.inserted, result.updated, result.unchanged) == (1, 1, 2)
    got = {r[0]: r for r in teachers(schools)}
    assert got["T0002"] == ("T0002", "李四", "3703230001", 25.0, 25.0, "1,2,3", 3, 1, None)
    assert got["T0001"] == STORED[0]
    assert {r[1]: r[0] for r in snapshot(schools) if r[1] in ids} == ids  # updated in place


def test_every_kind_of_bad_row_is_listed_with_row_and_column(schools: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "p.csv", [
        HEADER,
        ["T1", "好", "3703230001", "25", "25", "1,2,3", "3", "合格"],
        ["T1", "重复", "3703230001", "1", "1", "", "", ""],             # 3 duplicate id
        ["T3", "", "3703239999", "1", "1", "", "", ""],                 # 4 name missing, unknown school
        ["T4", "负数", "3703230001", "-1", "abc", "", "", ""],          # 5 negative, non-numeric hours
        ["T5", "点", "3703230001", "1", "1", "3,31", "", ""],           # 6 unknown point
        ["T6", "多", "3703230001", "1", "1", "1,2,3,4", "", ""],        # 7 more than 3 points
        ["T7", "重点", "3703230001", "1", "1", "5、5", "", ""],         # 8 duplicate point
        ["T8", "作品", "3703230001", "1", "1", "1,2", "3", "好"],       # 9 evidence > points, result
        ["", "无号", "37032300", "", "2000", "A14", "", ""],            # 10 id, school format, hours, cap, point (A has 13)
    ])
    with pytest.raises(ImportFileError) as err:
        import_progress(schools, path)
    got = sorted((p.line or 0, p.field or "") for p in err.value.problems)
    assert got == sorted([
        (3, "教师编号"), (4, "姓名"), (4, "学校标识码"), (5, "线上学时"), (5, "校本实践学时"),
        (6, "能力点"), (7, "能力点"), (8, "能力点"), (9, "提交作品数"), (9, "测评结果"),
        (10, "教师编号"), (10, "学校标识码"), (10, "线上学时"), (10, "校本实践学时"), (10, "能力点"),
    ])
    by_place = {(p.line, p.field): p.message for p in err.value.problems}
    assert "第 2 行" in by_place[(3, "教师编号")]
    assert "3703239999" in by_place[(4, "学校标识码")]
    assert "负数" in by_place[(5, "线上学时")]
    assert "不是数字" in by_place[(5, "校本实践学时")]
    assert "31" in by_place[(6, "能力点")]
    assert "不超过 3 个" in by_place[(7, "能力点")]
    assert "重复" in by_place[(8, "能力点")]
    assert "上限" in by_place[(10, "校本实践学时")]
    assert {p.column for p in err.value.problems if p.field == "能力点"} == {6}
    assert teachers(schools) == []


def test_a_rejected_file_leaves_earlier_data_exactly_as_it_was(schools: Engine, tmp_path: Path) -> None:
    import_progress(schools, write_csv(tmp_path / "p.csv", GOOD))
    before = snapshot(schools)
    # Enough good rows that staging has flushed chunks before the one bad row at the end.
    rows = [HEADER] + [[f"N{i:06d}", "新", "3703230001", "30", "30", "1,2,3", "3", "合格"] for i in range(CHUNK_ROWS + 50)]
    rows[1] = ["T0001", "张三改", "3703230002", "50", "50", "1", "1", "优秀"]  # would be an update
    rows.append(["BAD", "坏", "3703230001", "-5", "1", "", "", ""])
    with pytest.raises(ImportFileError) as err:
        import_progress(schools, write_csv(tmp_path / "big.csv", rows))
    assert [p.line for p in err.value.problems] == [len(rows)]
    assert snapshot(schools) == before


def test_problems_are_capped_with_a_count_of_the_rest(schools: Engine, tmp_path: Path) -> None:
    rows = [HEADER] + [[f"X{i}", "x", "3703239999", "1", "1", "", "", ""] for i in range(MAX_PROBLEMS + 7)]
    with pytest.raises(ImportFileError) as err:
        import_progress(schools, write_csv(tmp_path / "p.csv", rows))
    assert len(err.value.problems) == MAX_PROBLEMS + 1
    assert "另有 7 个问题" in err.value.problems[-1].message


def test_an_id_number_column_refuses_the_file(schools: Engine, tmp_path: Path) -> None:
    rows = [[*HEADER, "身份证号"], [*GOOD[1], "11010519491231002X"]]
    with pytest.raises(ImportFileError, match="身份证") as err:
        import_progress(schools, write_csv(tmp_path / "p.csv", rows))
    assert err.value.problems[0].field == "身份证号"
    assert teachers(schools) == []


def test_a_platform_id_that_is_an_id_number_is_refused(schools: Engine, tmp_path: Path) -> None:
    rows = [HEADER, ["11010519491231002X", "张三", "3703230001", "1", "1", "", "", ""]]
    set_language("en")
    with pytest.raises(ImportFileError, match="national ID"):
        import_progress(schools, write_csv(tmp_path / "p.csv", rows))
    assert looks_like_id_number("11010519491231002x")
    assert not looks_like_id_number("110105194912310021")  # wrong check digit: just a number
    assert not looks_like_id_number("T0001")


def test_progress_callback_reports_rows(schools: Engine, tmp_path: Path) -> None:
    rows = [HEADER] + [[f"P{i}", "x", "3703230001", "1", "1", "", "", ""] for i in range(25_000)]
    seen: list[int] = []
    import_progress(schools, write_csv(tmp_path / "p.csv", rows), progress=seen.append)
    assert seen == [10_000, 20_000, 25_000]


def test_custom_mapping_file(schools: Engine, tmp_path: Path) -> None:
    mapping = tmp_path / "m.yaml"
    mapping.write_text("teachers:\n  platform_id: [研修编号]\n  online_hours: [网课]\n", encoding="utf-8")
    rows = [["研修编号", "姓名", "学校标识码", "网课", "实践学时", "能力点"], ["Z1", "张三", "3703230001", "3", "4", "30"]]
    import_progress(schools, write_csv(tmp_path / "p.csv", rows), mapping=mapping)
    assert teachers(schools) == [("Z1", "张三", "3703230001", 3.0, 4.0, "30", 1, 0, None)]


@pytest.mark.parametrize(
    ("text", "points"),
    [("3,11,15", (3, 11, 15)), ("15、3、11", (3, 11, 15)), ("3；11；15", (3, 11, 15)),
     ("３，１１", (3, 11)), (" 30 ", (30,)), ("", ()),
     # platform codes (issue 17, 3): environment letter + number within it, 001 attachment 3
     ("A1,B3", (1, 16)), ("a13、b1、c7", (13, 14, 30)), ("C1,5,B10", (5, 23, 24))],
)
def test_point_lists(text: str, points: tuple[int, ...]) -> None:
    assert parse_points(text) == (points, None)


@pytest.mark.parametrize("text", ["0", "31", "A0", "A14", "B11", "C8", "D1", "A1,1", "1,1", "1,2,3,4", "1.5"])
def test_bad_point_lists(text: str) -> None:
    got, problem = parse_points(text)
    assert got == () and problem


def test_texts_seen_on_good_rows_are_still_checked_against_the_rest_of_their_row(schools: Engine, tmp_path: Path) -> None:
    """The quick path remembers valid texts; a remembered text must not let a bad row through."""
    path = write_csv(tmp_path / "p.csv", [
        HEADER,
        ["A1", "甲", "3703230001", "25", "25", "1,2,3", "3", "合格"],
        ["A2", "乙", "3703230001", "25", "25", "1,2", "3", "合格"],       # 3 same evidence text, fewer points
        ["A1", "丙", "3703230001", "25", "25", "1,2,3", "3", "合格"],     # 4 duplicate of a quick-path row
        ["A4", "", "3703230001", "25", "25", "1,2,3", "3", "合格"],       # 5 name missing
        ["A5", "戊", "3703239999", "25", "25", "1,2,3", "3", "合格"],     # 6 unknown school
        ["110105194912310021", "己", "3703230001", "25", "25", "1,2,3", "3", "合格"],  # 7 fine: bad check digit
        ["11010519491231002X", "庚", "3703230001", "25", "25", "1,2,3", "3", "合格"],  # 8 an ID number
        ["A" * 41, "辛", "3703230001", "25", "25", "1,2,3", "3", "合格"],  # 9 too long
    ])
    with pytest.raises(ImportFileError) as err:
        import_progress(schools, path)
    got = sorted((p.line or 0, p.field or "") for p in err.value.problems)
    assert got == [(3, "提交作品数"), (4, "教师编号"), (5, "姓名"), (6, "学校标识码"), (8, "教师编号"), (9, "教师编号")]
    assert "第 2 行" in next(p.message for p in err.value.problems if p.line == 4)
    assert teachers(schools) == []


def test_texts_off_the_quick_path_give_the_same_values(schools: Engine, tmp_path: Path) -> None:
    """Full-width ids, words in other cases and zero-padded counts go through the full checks."""
    path = write_csv(tmp_path / "p.csv", [
        HEADER,
        ["Ｔ０００１", "张三", "3703230001", "25", "30.5", "15、3、11", "03", "PASS"],
        ["T0002", "李四", "3703230001", "12", "0", "", "", "未测评"],
        ["T0003", "王五", "３７０３２３０００２", "26", "25", "3;11;15", "2", "Excellent"],
    ])
    result = import_progress(schools, path)
    assert (result.inserted, result.updated, result.unchanged) == (3, 0, 0)
    assert teachers(schools) == STORED


def test_a_file_rejected_after_rows_were_streamed_leaves_the_callers_transaction_usable(
    schools: Engine, factory: sessionmaker[Session], tmp_path: Path
) -> None:
    """On PostgreSQL rows go into one open COPY while the file is read: a bad row near the end,
    or an error raised by the progress callback, must end it cleanly and write nothing."""
    good = write_csv(tmp_path / "good.csv", GOOD)
    rows = [HEADER] + [[f"N{i:06d}", "新", "3703230001", "30", "30", "1,2,3", "3", "合格"] for i in range(CHUNK_ROWS + 50)]
    bad = write_csv(tmp_path / "bad.csv", [*rows, ["BAD", "坏", "3703230001", "-5", "1", "", "", ""]])
    many = write_csv(tmp_path / "many.csv", rows)

    def stop(done: int) -> None:
        raise RuntimeError(f"stopped at {done}")

    with factory() as session, session.begin():
        with pytest.raises(ImportFileError) as err:
            import_progress(session, bad)
        assert [p.line for p in err.value.problems] == [len(rows) + 1]
        with pytest.raises(RuntimeError, match="stopped at 10000"):
            import_progress(session, many, progress=stop)
        assert session.scalar(select(Teacher.id).limit(1)) is None
        assert import_progress(session, good).inserted == 3
    assert teachers(schools) == STORED


def test_a_file_without_the_optional_columns(schools: Engine, tmp_path: Path) -> None:
    rows = [HEADER[:6]] + [row[:6] for row in GOOD[1:]]
    result = import_progress(schools, write_csv(tmp_path / "p.csv", rows))
    assert result.inserted == 3
    assert [(t[0], t[7], t[8]) for t in teachers(schools)] == [("T0001", 0, None), ("T0002", 0, None), ("T0003", 0, None)]


def test_xlsx_bad_rows_are_reported_with_sheet_row_and_column(schools: Engine, tmp_path: Path) -> None:
    rows: list[list[object]] = [
        ["教师进度表"],
        HEADER,
        ["T0001", "张三", 3703230001, 25, 30.5, "15、3、11", 3, "合格"],
        ["T0002", "李四", 3.70323e9, -1, 0, None, None, None],
    ]
    with pytest.raises(ImportFileError) as err:
        import_progress(schools, write_xlsx(tmp_path / "p.xlsx", rows))
    got = sorted((p.line, p.column, p.field) for p in err.value.problems)
    assert got == [(4, 3, "学校标识码"), (4, 4, "线上学时")]
    assert teachers(schools) == []


# -- issue 14: the management team (item 7), one error per cause (item 11) ----------------------

def test_role_column_marks_management_team_members(schools: Engine, tmp_path: Path) -> None:
    rows = [HEADER + ["人员类型"], GOOD[1] + ["管理团队"], GOOD[2] + [""], GOOD[3] + ["教师"]]
    import_progress(schools, write_csv(tmp_path / "p.csv", rows))
    with Session(schools) as session:
        roles = dict(session.execute(select(Teacher.platform_id, Teacher.role)).all())
    assert roles == {"T0001": "management", "T0002": "teacher", "T0003": "teacher"}
    # without the column everyone is a teacher, and a re-import changes nothing else
    result = import_progress(schools, write_csv(tmp_path / "p2.csv", rows))
    assert (result.inserted, result.updated) == (0, 0)
    with pytest.raises(ImportFileError) as info:
        import_progress(schools, write_csv(tmp_path / "p3.csv", [HEADER + ["人员类型"], GOOD[1] + ["校长大人"]]))
    assert [(p.line, p.field) for p in info.value.problems] == [(2, "人员类型")]


def test_a_bad_points_cell_is_one_error_not_two(schools: Engine, tmp_path: Path) -> None:
    """Row 20001 of the Henan replay: a capability-point error also reported 提交作品数."""
    bad = ["T0009", "赵六", "3703230001", "25", "25", "3,11,31", "3", "合格"]
    with pytest.raises(ImportFileError) as info:
        import_progress(schools, write_csv(tmp_path / "p.csv", [HEADER, bad]))
    assert [(p.line, p.field) for p in info.value.problems] == [(2, "能力点")]
    both = ["T0010", "钱七", "3703230001", "25", "25", "3,11,31", "三", "合格"]  # two causes: two errors
    with pytest.raises(ImportFileError) as info:
        import_progress(schools, write_csv(tmp_path / "p.csv", [HEADER, both]))
    assert [(p.line, p.field) for p in info.value.problems] == [(2, "能力点"), (2, "提交作品数")]


def test_bad_points_are_one_problem_not_two(schools: Engine, tmp_path: Path) -> None:
    """A refused 所选能力点 also drew a knock-on error on 提交作品数 (issue 17, 3)."""
    path = write_csv(tmp_path / "p.csv", [HEADER, ["T1", "甲", "3703230001", "25", "25", "X1,X2,X3", "3", "合格"]])
    with pytest.raises(ImportFileError) as refused:
        import_progress(schools, path)
    assert [p.field for p in refused.value.problems] == ["能力点"]


def test_an_update_only_reimport_refreshes_the_stored_gate_verdict(plan: sessionmaker[Session], tmp_path: Path) -> None:
    """Gates read teachers' progress, so the stored status of a school's run must follow every
    import that changes it — also the weekly re-export where every teacher already exists and only
    their hours moved (no row inserted, some updated)."""
    from engine.clock import FixedClock
    from engine.db import transaction
    from engine.facts import set_fact
    from engine.runs import fire
    from tests.engine.builders import COUNTY_OFFICER, EARLY, run_of

    clock = FixedClock(datetime(2021, 7, 1, 9, 0, tzinfo=UTC))
    school = EARLY[0]
    with transaction(plan) as s:
        set_fact(s, clock, school_code=school, name="plan_filed", value=1, actor=COUNTY_OFFICER)
        set_fact(s, clock, school_code=school, name="team_members", value=4, actor=COUNTY_OFFICER)
        fire(s, clock, school_code=school, trigger="advance", actor=COUNTY_OFFICER)  # online study
    week1 = [HEADER, ["T1", "甲", school, "25", "0", "1,2,3", "0", ""], ["T2", "乙", school, "10", "0", "1,2,3", "0", ""]]
    with transaction(plan) as s:
        import_progress(s, write_csv(tmp_path / "week1.csv", week1))
        assert run_of(s, school).blocked
    week2 = [week1[0], week1[1], ["T2", "乙", school, "25.5", "0", "1,2,3", "0", ""]]
    with transaction(plan) as s:
        result = import_progress(s, write_csv(tmp_path / "week2.csv", week2))
        assert (result.inserted, result.updated) == (0, 1)
        run = run_of(s, school)
        assert not run.blocked and run.failing is None


def test_rows_land_as_checked_whatever_their_characters(schools: Engine, tmp_path: Path) -> None:
    """PostgreSQL takes the checked rows by binary COPY, with the staging table's column types:
    backslashes, quotes and CJK punctuation in a name, a fractional hour, an empty result and a
    management-team role land exactly as they were read (text COPY would have had to escape the
    backslash), on both databases."""
    header = [*HEADER, "人员类型"]
    rows = [header,
            ["T0101", "赵\\六", "3703230001", "25.25", "0.5", "1", "1", "", "管理团队"],
            ["T0102", "钱“七”·O'Neil", "3703230002", "0", "49.75", "", "", "不合格", ""]]
    result = import_progress(schools, write_csv(tmp_path / "odd.csv", rows))
    assert (result.inserted, result.total) == (2, 2)
    with Session(schools) as session:
        got = session.execute(select(Teacher.platform_id, Teacher.name, Teacher.online_hours, Teacher.practice_hours,
                                     Teacher.points_count, Teacher.evidence_result, Teacher.role)
                              .order_by(Teacher.platform_id)).all()
    assert [tuple(r) for r in got] == [("T0101", "赵\\六", 25.25, 0.5, 1, None, "management"),
                                       ("T0102", "钱“七”·O'Neil", 0.0, 49.75, 0, "fail", "teacher")]
