"""Contractor assignment (seed 002 承担单位分配表): all or nothing, each change audited, idempotent,
and one extension decision over a contractor's schools."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select

from engine.audit import verify_chains
from engine.db import transaction
from engine.entries import decide_many, import_extensions, import_facts
from engine.errors import ImportFileError, NotFound
from engine.extension import pending_requests
from engine.imports import import_contractors
from engine.models import AuditEvent, SchoolRun
from engine.projection import verify_state
from engine.runs import Actor, advance_auto
from tests.conftest import SHANGHAI
from tests.engine.henan import SCHOOLS, henan, write_csv

OFFICE = Actor("王玥", "province_office")
A, B = "北京教培师训网络科技股份有限公司", "河南中原未来教师教育研究院"


def test_assignment_is_audited_idempotent_and_scopes_one_decision(factory, clock, tmp_path) -> None:
    clock.set(datetime(2021, 2, 10, 9, tzinfo=SHANGHAI))
    rows = [[c, A if i < 4 else B] for i, c in enumerate(SCHOOLS)]
    path = write_csv(tmp_path / "分配.csv", ["学校标识码", "承训单位"], rows)
    with transaction(factory) as s:
        henan(s, clock, tmp_path)
        got = import_contractors(s, clock, path, actor="王玥", role="province_office")
        assert (got.changed, got.contractors) == (10, {A: 4, B: 6})
    with transaction(factory) as s:
        again = import_contractors(s, clock, path, actor="王玥", role="province_office")
        assert (again.changed, again.unchanged) == (0, 10)
        assert len(s.scalars(select(AuditEvent).where(AuditEvent.trigger == "contractor_assign")).all()) == 10
        # into registration, then every school asks; one decision for contractor A's four
        import_facts(s, clock, write_csv(tmp_path / "f.csv", ["学校标识码", "事实项", "值"],
                                         [[c, f, "1"] for c in SCHOOLS for f in ("contractor_assigned", "selection_rate")]),
                     actor=OFFICE)
        advance_auto(s, clock)
        import_extensions(s, clock, write_csv(tmp_path / "e.csv", ["学校标识码", "操作", "新截止日期", "理由"],
                                              [[c, "申请", "2021-09-30", "统一申请"] for c in SCHOOLS]), actor=OFFICE)
        done = decide_many(s, clock, approve=True, reason="同意", actor=OFFICE, contractor=A)
        assert sorted(r.school_code for r in done) == SCHOOLS[:4] and len(pending_requests(s)) == 6
        with pytest.raises(NotFound, match="没有分配学校"):
            decide_many(s, clock, approve=True, reason="同意", actor=OFFICE, contractor="无此单位")
        assert {c for c, in s.execute(select(SchoolRun.contractor))} == {A, B}
    with transaction(factory) as s:  # its own session: verify_state streams with a server-side cursor on PostgreSQL
        assert verify_chains(s).ok and verify_state(s).ok


def test_a_bad_assignment_file_is_refused_whole(factory, clock, tmp_path) -> None:
    with transaction(factory) as s:
        henan(s, clock, tmp_path)
    rows = [[SCHOOLS[0], A], ["4101029999", A], [SCHOOLS[1], ""], [SCHOOLS[0], B]]
    with pytest.raises(ImportFileError) as info, transaction(factory) as s:
        import_contractors(s, clock, write_csv(tmp_path / "x.csv", ["学校标识码", "承训单位"], rows),
                           actor="王玥", role="province_office")
    assert [(p.line, p.field) for p in info.value.problems] == [(3, "学校标识码"), (4, "承训单位"), (5, "学校标识码")]
    with transaction(factory) as s:
        assert {c for c, in s.execute(select(SchoolRun.contractor))} == {None}
