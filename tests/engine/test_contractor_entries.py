"""A contractor's own bulk entry (seed 002 (五)(六): the contractor reports registration, briefings
and the end of training for the schools it trains): rows for schools not assigned to it are
problems of the file, and nothing is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import FixedClock
from engine.entries import import_facts
from engine.errors import ImportFileError
from engine.imports.contractors import import_contractors
from engine.models import SchoolFact
from engine.runs import Actor
from service.sweep import run_sweep
from tests.engine.henan import PROVINCE, SCHOOLS, henan, write_csv

JIA, YI = "甲师范大学", "乙教育研究院"
MINE, THEIRS = SCHOOLS[0], SCHOOLS[1]


def test_a_contractor_records_facts_for_its_schools_only(factory: sessionmaker[Session], clock: FixedClock,
                                                         tmp_path: Path) -> None:
    with factory() as s, s.begin():
        henan(s, clock, tmp_path)
        import_contractors(s, clock, write_csv(tmp_path / "a.csv", ["学校标识码", "承训单位"],
                                               [[MINE, JIA], [THEIRS, YI]]), actor="王玥", role="province_office")
        rows = [[c, f, "1"] for c in (MINE, THEIRS) for f in ("contractor_assigned", "selection_rate")]
        import_facts(s, clock, write_csv(tmp_path / "f.csv", ["学校标识码", "事实项", "值"], rows),
                     actor=Actor("王玥", "province_office"))
        run_sweep(s, clock)  # both move on to registration
    jia = Actor("甲联络员", "contractor")
    both = write_csv(tmp_path / "报到.csv", ["学校标识码", "事实项", "值"], [[MINE, "学员报到率", "0.97"], [THEIRS, "学员报到率", "1"]])
    with pytest.raises(ImportFileError) as err, factory() as s, s.begin():  # the transaction rolls back
        import_facts(s, clock, both, actor=jia, scope=PROVINCE, contractor=JIA)
    assert [p.line for p in err.value.problems] == [3] and "未分配给承训单位" in err.value.problems[0].message
    mine = write_csv(tmp_path / "报到2.csv", ["学校标识码", "事实项", "值"], [[MINE, "学员报到率", "0.97"]])
    with factory() as s, s.begin():
        assert import_facts(s, clock, mine, actor=jia, scope=PROVINCE, contractor=JIA).changed == 1
    with factory() as s:
        recorded = {(f.name, f.value) for f in s.scalars(select(SchoolFact).where(SchoolFact.name == "registration_rate"))}
        assert recorded == {("registration_rate", 0.97)}
