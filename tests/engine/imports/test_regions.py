"""Region import: levels and parents inferred from GB/T 2260 codes, all-or-nothing, idempotent."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import ImportFileError
from engine.imports.regions import import_regions, infer_parent, level_of_code
from engine.models import Region


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


def regions(db: Engine) -> list[tuple[str, str, str, str | None]]:
    with Session(db) as session:
        rows = session.execute(select(Region.code, Region.name, Region.level, Region.parent_code).order_by(Region.code))
        return [tuple(r) for r in rows]  # type: ignore[misc]


SEED = [
    ["行政区划代码", "名称"],
    # children before their parents: the whole file is resolved before anything is written
    ["370323", "沂源县"],
    ["370300", "淄博市"],
    ["370000", "山东省"],
    ["410000", "河南省"],
    ["419001", "济源市"],  # a county-level city the province administers directly
]


def test_levels_and_parents_are_inferred_from_the_codes(db: Engine, tmp_path: Path) -> None:
    result = import_regions(db, write_csv(tmp_path / "r.csv", SEED, "gb18030"))
    assert (result.kind, result.total, result.inserted, result.updated, result.unchanged) == ("regions", 5, 5, 0, 0)
    assert regions(db) == [
        ("370000", "山东省", "province", None),
        ("370300", "淄博市", "city", "370000"),
        ("370323", "沂源县", "county", "370300"),
        ("410000", "河南省", "province", None),
        ("419001", "济源市", "county", "410000"),
    ]


def test_explicit_levels_and_parents_in_chinese_are_accepted(factory: sessionmaker[Session], db: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", [
        ["区划代码", "区划名称", "级别", "上级代码"],
        ["370000", "山东省", "省", ""],
        ["370300", "淄博市", "市", "370000"],
        ["370323", "沂源县", "县", "370300"],
    ], "utf-8-sig")
    with factory() as session, session.begin():
        result = import_regions(session, path)
    assert result.inserted == 3
    assert regions(db)[2] == ("370323", "沂源县", "county", "370300")


def test_reimport_changes_nothing_and_a_rename_is_one_update(db: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", SEED)
    import_regions(db, path)
    before = regions(db)
    again = import_regions(db, path)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 5)
    assert regions(db) == before
    renamed = [row[:] for row in SEED]
    renamed[1][1] = "沂源县（新）"
    changed = import_regions(db, write_csv(tmp_path / "r2.csv", renamed))
    assert (changed.inserted, changed.updated, changed.unchanged) == (0, 1, 4)
    assert ("370323", "沂源县（新）", "county", "370300") in regions(db)


def test_parents_already_in_the_database_are_found(db: Engine, tmp_path: Path) -> None:
    import_regions(db, write_csv(tmp_path / "p.csv", [["代码", "名称"], ["370000", "山东省"], ["370300", "淄博市"]]))
    result = import_regions(db, write_csv(tmp_path / "c.csv", [["代码", "名称"], ["370322", "高青县"]]))
    assert result.inserted == 1
    assert ("370322", "高青县", "county", "370300") in regions(db)


def test_every_bad_row_is_reported_and_nothing_is_written(db: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", [
        ["行政区划代码", "名称", "级别", "上级代码"],
        ["370000", "山东省", "", ""],
        ["37032", "短码", "", ""],          # row 3: bad format
        ["370000", "山东省", "", ""],       # row 4: duplicate
        ["370323", "", "县", ""],           # row 5: name missing
        ["370300", "淄博市", "县", ""],     # row 6: level contradicts code
        ["130100", "石家庄市", "", ""],     # row 7: province 130000 unknown
        ["370322", "高青县", "乡", ""],     # row 8: unknown level word
        ["370321", "桓台县", "", "370323"], # row 9: parent is a county
        ["3.70323E+05", "科学计数", "", ""],  # row 10: Excel mangled the code
    ])
    with pytest.raises(ImportFileError) as err:
        import_regions(db, path)
    got = {(p.line, p.field) for p in err.value.problems}
    assert got == {
        (3, "行政区划代码"), (4, "行政区划代码"), (5, "名称"), (6, "级别"), (7, "行政区划代码"),
        (8, "级别"), (9, "上级代码"), (10, "行政区划代码"),
    }
    messages = {p.line: p.message for p in err.value.problems}
    assert "6 位数字" in messages[3]
    assert "第 2 行" in messages[4]
    assert "130000" in messages[7]
    assert "科学计数法" in messages[10]
    assert regions(db) == []


def test_code_rules() -> None:
    assert [level_of_code(c) for c in ("370000", "370300", "370323")] == ["province", "city", "county"]
    assert infer_parent("370323", "county", {"370300"}) == "370300"
    assert infer_parent("419001", "county", {"410000"}) == "410000"
    assert infer_parent("370300", "city", set()) == "370000"
    assert infer_parent("370000", "province", set()) is None
