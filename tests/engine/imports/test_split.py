"""A large CSV read in parts on every core (engine.imports.split): the same teachers, in the same
order, as the one-process read; a file with any problem, or a platform id in two parts, is read
in one process, so its problems and their rows are that read's; nothing is written."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

import engine.imports.progress as progress
from engine.errors import ImportFileError
from engine.imports import split
from engine.models import Region, School, Teacher

HEADER = ["教师编号", "姓名", "学校标识码", "线上学时", "校本实践学时", "能力点", "提交作品数", "测评结果"]
SCHOOLS = ("3703230001", "3703230002")


def rows(n: int) -> list[list[str]]:
    return [[f"T{i:04d}", f"教师{i % 7}", SCHOOLS[i % 2],  # names repeat, as they do
             f"{i % 40 + 0.5:g}", "25", "15、3、11", str(i % 4), "合格"]
            for i in range(n)]


def write(path: Path, body: list[list[str]], encoding: str = "gb18030", title: bool = False) -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        if title:
            writer.writerow(["沂源县教师学时统计表"])
        writer.writerows([HEADER, *body])
    return path


@pytest.fixture
def schools(db: Engine) -> Engine:
    with Session(db) as session, session.begin():
        session.add_all([Region(code="370000", name="山东省", level="province", parent_code=None),
                         Region(code="370300", name="淄博市", level="city", parent_code="370000"),
                         Region(code="370323", name="沂源县", level="county", parent_code="370300")])
        session.flush()
        session.add_all([School(code=code, name=f"沂源县第{n}小学", county_code="370323", city_code="370300",
                                province_code="370000", kind="primary") for n, code in enumerate(SCHOOLS, 1)])
    return db


@pytest.fixture
def in_parts(monkeypatch: pytest.MonkeyPatch) -> list[int | None]:
    """Any file is worth splitting, on two cores, in a process the test lets fork; what each
    import's read in parts returned (None: read in one process)."""
    monkeypatch.setattr(split, "MIN_BYTES", 0)
    monkeypatch.setattr(split.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(split, "fork_safe", lambda: True)
    got: list[int | None] = []
    real = progress.checked_in_parts

    def spied(*args: Any, **kwargs: Any) -> int | None:
        got.append(real(*args, **kwargs))
        return got[-1]

    monkeypatch.setattr(progress, "checked_in_parts", spied)
    return got


def stored(db: Engine) -> list[tuple[object, ...]]:
    with Session(db) as session:
        return [tuple(r) for r in session.execute(select(
            Teacher.platform_id, Teacher.name, Teacher.school_code, Teacher.online_hours, Teacher.practice_hours,
            Teacher.points, Teacher.points_count, Teacher.evidence_count, Teacher.evidence_result).order_by(Teacher.id))]


@pytest.mark.parametrize("encoding, title", [("gb18030", False), ("utf-8-sig", True)])
def test_a_good_file_read_in_parts_stores_what_one_process_stores(
        schools: Engine, tmp_path: Path, in_parts: list[int | None], encoding: str, title: bool) -> None:
    path = write(tmp_path / "progress.csv", rows(120), encoding, title)
    seen: list[int] = []
    result = progress.import_progress(schools, path, progress=seen.append)
    assert in_parts == [120] and result.inserted == 120
    assert seen[-1] == 120 and seen == sorted(seen) and len(seen) > 2  # told after each part
    assert stored(schools) == [(f"T{i:04d}", f"教师{i % 7}", SCHOOLS[i % 2], i % 40 + 0.5, 25.0, "3,11,15", 3, i % 4, "pass")
                               for i in range(120)]  # in the file's order: ids as the file lists them


def test_a_bad_file_is_read_in_one_process_and_its_problems_are_that_reads(
        schools: Engine, tmp_path: Path, in_parts: list[int | None], monkeypatch: pytest.MonkeyPatch) -> None:
    body = rows(120)
    body[100][3] = "十"  # hours in a late part
    body[110][0] = "T0003"  # listed in the first part already
    path = write(tmp_path / "bad.csv", body)
    with pytest.raises(ImportFileError) as split_read:
        progress.import_progress(schools, path)
    monkeypatch.setattr(split, "fork_safe", lambda: False)  # the one-process read
    with pytest.raises(ImportFileError) as one_read:
        progress.import_progress(schools, path)
    assert in_parts == [None]  # the parts gave up; the one-process read never tried them
    assert [p.message for p in split_read.value.problems] == [p.message for p in one_read.value.problems]
    assert [(p.line, p.field) for p in split_read.value.problems] == [(102, "线上学时"), (112, "教师编号")]
    assert "第 5 行" in split_read.value.problems[1].message or "row 5" in split_read.value.problems[1].message
    assert stored(schools) == []


@pytest.mark.parametrize("row, cell, text, field", [(100, 3, "十", "线上学时"), (7, 2, "37032300", "学校标识码")])
def test_one_bad_cell_in_one_part_stops_the_import(schools: Engine, tmp_path: Path, in_parts: list[int | None],
                                                   row: int, cell: int, text: str, field: str) -> None:
    """A part with a problem is never taken as good: the file is read in one process, which
    names the row, and nothing is written."""
    body = rows(120)
    body[row][cell] = text
    with pytest.raises(ImportFileError) as refused:
        progress.import_progress(schools, write(tmp_path / "bad.csv", body))
    assert in_parts == [None]
    assert [(p.line, p.field) for p in refused.value.problems] == [(row + 2, field)]
    assert stored(schools) == []


def test_a_file_with_quotes_is_not_cut_at_its_lines(schools: Engine, tmp_path: Path,
                                                    in_parts: list[int | None]) -> None:
    """A quoted cell may hold a line end: such a file is read in one process."""
    body = rows(60)
    body[30][1] = "欧阳,明"  # the writer quotes a cell with the delimiter
    result = progress.import_progress(schools, write(tmp_path / "quoted.csv", body))
    assert in_parts == [None] and result.inserted == 60
    assert stored(schools)[30][1] == "欧阳,明"
