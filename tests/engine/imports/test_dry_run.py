"""Dry runs (the upload preview) and import scope: the real importers stopped before the merge."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from engine.errors import ImportFileError
from engine.imports.progress import import_progress
from engine.imports.schools import import_schools
from engine.models import Region, School, Teacher
from tests.engine.imports.test_progress import HEADER, write_csv

A, B, FOREIGN = "3703230001", "3703230002", "3703020001"


@pytest.fixture
def two_counties(db: Engine) -> Engine:
    with Session(db) as s, s.begin():
        s.add(Region(code="370000", name="山东省", level="province", parent_code=None))
        s.flush()
        s.add(Region(code="370300", name="淄博市", level="city", parent_code="370000"))
        s.flush()
        s.add_all([Region(code="370323", name="沂源县", level="county", parent_code="370300"),
                   Region(code="370302", name="淄川区", level="county", parent_code="370300")])
        s.flush()
        for code, county in ((A, "370323"), (B, "370323"), (FOREIGN, "370302")):
            s.add(School(code=code, name=f"学校{code}", county_code=county, city_code="370300",
                         province_code="370000", kind="primary", rural=False, pilot=False))
    return db


def rows(*specs: tuple[str, str, str]) -> list[list[str]]:
    return [HEADER, *([pid, "某某", school, hours, "30", "1,2,3", "3", "合格"] for pid, school, hours in specs)]


def teachers(db: Engine) -> list[tuple[str, float]]:
    with Session(db) as s:
        return [(t.platform_id, t.online_hours) for t in s.scalars(select(Teacher).order_by(Teacher.platform_id))]


def test_dry_run_counts_per_school_what_the_import_then_does(two_counties: Engine, tmp_path: Path) -> None:
    first = write_csv(tmp_path / "a.csv", rows(("T1", A, "25"), ("T2", A, "25"), ("T3", B, "25")))
    import_progress(two_counties, first)
    before = teachers(two_counties)
    second = write_csv(tmp_path / "b.csv", rows(("T1", A, "25"), ("T2", A, "40"), ("T3", B, "25"), ("T4", B, "10")))
    with Session(two_counties) as s, s.begin():
        dry = import_progress(s, second, dry_run=True)
    assert dry.dry_run and (dry.inserted, dry.updated, dry.unchanged, dry.total) == (1, 1, 2, 4)
    assert dry.groups == ((A, 0, 1, 1), (B, 1, 0, 1))
    assert teachers(two_counties) == before  # nothing written
    real = import_progress(two_counties, second)
    assert (real.inserted, real.updated, real.unchanged) == (dry.inserted, dry.updated, dry.unchanged)
    assert not real.dry_run and real.groups == ()


def test_scope_makes_another_countys_rows_problems_never_written(two_counties: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", rows(("T1", A, "25"), ("T9", FOREIGN, "25")))
    with pytest.raises(ImportFileError) as caught:
        import_progress(two_counties, path, scope="370323", source="进度.csv")
    [problem] = caught.value.problems
    assert (problem.source, problem.line, problem.field) == ("进度.csv", 3, "学校标识码")
    assert "不存在或不在您的管辖范围内" in problem.message
    # A school that does not exist gets the same words: the message does not tell them apart.
    missing = write_csv(tmp_path / "m.csv", rows(("T1", A, "25"), ("T8", "3703239999", "25")))
    with pytest.raises(ImportFileError) as caught:
        import_progress(two_counties, missing, scope="370323")
    assert caught.value.problems[0].message.replace("3703239999", FOREIGN) == problem.message
    assert teachers(two_counties) == []
    assert import_progress(two_counties, path, scope="370300").inserted == 2  # the city holds both


def test_school_import_scope_refuses_foreign_counties_and_codes(two_counties: Engine, tmp_path: Path) -> None:
    head = ["学校标识码", "学校名称", "县区代码", "学段", "是否农村"]
    path = write_csv(tmp_path / "s.csv", [head, ["3703230009", "新校", "370323", "小学", "是"],
                                          ["3703020009", "外校", "370302", "小学", "是"],
                                          [FOREIGN, "改名", "370323", "小学", "是"]])
    with pytest.raises(ImportFileError) as caught:
        import_schools(two_counties, path, scope="370323")
    assert [(p.line, p.field) for p in caught.value.problems] == [(3, "县区代码"), (4, "学校标识码")]
    with Session(two_counties) as s:
        assert s.scalar(select(func.count()).select_from(School)) == 3
        ok = write_csv(tmp_path / "ok.csv", [head, ["3703230009", "新校", "370323", "小学", "是"]])
        dry = import_schools(s, ok, dry_run=True, scope="370323")
        assert dry.groups == (("370323", 1, 0, 0),)
        assert s.get(School, "3703230009") is None
