"""Bulk entry from files (issue 14 item 9): facts and extension requests/decisions, every row its own
audit event through the single-entry rules, all or nothing with every bad row named, idempotent."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from engine.audit import verify_chains
from engine.clock import FixedClock
from engine.db import transaction
from engine.entries import decide_many, import_extensions, import_facts
from engine.errors import ImportFileError
from engine.extension import pending_requests
from engine.models import AuditEvent, SchoolFact, SchoolRun
from engine.runs import Actor, advance_auto
from tests.conftest import SHANGHAI
from tests.engine.henan import GONGYI, SCHOOLS, henan, write_csv

OFFICE = Actor("王玥", "province_office")
CONTRACTOR = Actor("承训单位甲", "contractor")
FACT_HEADER = ["学校标识码", "事实项", "值", "备注"]


def _fact_events(s: Session) -> int:
    return s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.trigger.like("fact:%"))) or 0


@pytest.fixture
def province(factory: sessionmaker[Session], clock: FixedClock, tmp_path) -> sessionmaker[Session]:
    clock.set(datetime(2021, 2, 10, 9, tzinfo=SHANGHAI))
    with transaction(factory) as s:
        henan(s, clock, tmp_path)
    return factory


def test_a_facts_file_records_every_row_once(province, clock, tmp_path) -> None:
    rows = [[code, "contractor_assigned", "1", "招标结果"] for code in SCHOOLS]
    rows += [[code, "学员选送率", "1", ""] for code in SCHOOLS]  # a fact by its title
    path = write_csv(tmp_path / "事实.csv", FACT_HEADER, rows)
    with transaction(province) as s:
        result = import_facts(s, clock, path, actor=OFFICE)
        assert (result.rows, result.changed, result.unchanged) == (20, 20, 0)
        assert _fact_events(s) == 20  # each row its own event
    with transaction(province) as s:
        again = import_facts(s, clock, path, actor=OFFICE)
        assert (again.changed, again.unchanged) == (0, 20) and _fact_events(s) == 20
        assert advance_auto(s, clock) == 10  # the gates the file opened
        assert verify_chains(s).ok


def test_a_bad_facts_file_is_refused_whole_with_every_row_named(province, clock, tmp_path) -> None:
    rows = [
        [SCHOOLS[0], "contractor_assigned", "1", ""],       # 2: fine
        ["4101029999", "contractor_assigned", "1", ""],     # 3: no such school
        [SCHOOLS[1], "colour", "1", ""],                    # 4: no such fact
        [SCHOOLS[2], "selection_rate", "1.5", ""],          # 5: out of range
        [SCHOOLS[3], "briefings_submitted", "3", ""],       # 6: training's fact, school still in assignment
        [SCHOOLS[0], "contractor_assigned", "0", ""],       # 7: the same school and fact twice
        [SCHOOLS[4], "evaluation_done", "很好", ""],         # 8: not a number
        ["410102", "contractor_assigned", "1", ""],         # 9: a code of 6 digits, not 10
        ["", "contractor_assigned", "1", ""],               # 10: no code at all
    ]
    path = write_csv(tmp_path / "事实.csv", FACT_HEADER, rows)
    with pytest.raises(ImportFileError) as info, transaction(province) as s:
        import_facts(s, clock, path, actor=OFFICE)
    got = {(p.line, p.field) for p in info.value.problems}
    assert got == {(3, "学校标识码"), (4, "事实项"), (5, "值"), (6, "事实项"), (7, "事实项"), (8, "值"),
                   (9, "学校标识码"), (10, "学校标识码")}, got
    messages = {p.line: p.message for p in info.value.problems}
    assert "不能提前记录" in messages[6] and "0 到 1" in messages[5]
    assert messages[9].startswith("学校标识码") and "10" in messages[9], messages[9]
    assert messages[10] == "缺少学校标识码", messages[10]
    with transaction(province) as s:  # nothing written: not even row 2
        assert s.scalar(select(func.count()).select_from(SchoolFact)) == 0 and _fact_events(s) == 0


def _to_registration(province, clock, tmp_path) -> None:
    path = write_csv(tmp_path / "f.csv", FACT_HEADER,
                     [[c, f, "1", ""] for c in SCHOOLS for f in ("contractor_assigned", "selection_rate")])
    with transaction(province) as s:
        import_facts(s, clock, path, actor=OFFICE)
        advance_auto(s, clock)
        assert set(s.scalars(select(SchoolRun.state))) == {"registration"}


EXT_HEADER = ["学校标识码", "操作", "新截止日期", "理由"]


def test_an_extensions_file_requests_and_decides_in_order(province, clock, tmp_path) -> None:
    _to_registration(province, clock, tmp_path)
    rows = [[SCHOOLS[0], "申请", "2021-09-30", "疫情延期"], [SCHOOLS[1], "申请", "2021-10-31", "疫情延期"],
            [SCHOOLS[0], "批准", "", "同意"], [SCHOOLS[1], "驳回", "", "理由不足"]]
    path = write_csv(tmp_path / "延期.csv", EXT_HEADER, rows)
    with transaction(province) as s:
        result = import_extensions(s, clock, path, actor=OFFICE, requester=CONTRACTOR)
        assert (result.changed, result.by_action) == (4, {"request": 2, "approve": 1, "refuse": 1})
        triggers = [t for t, in s.execute(select(AuditEvent.trigger).where(AuditEvent.school_code == SCHOOLS[0])
                                          .order_by(AuditEvent.id))]
        assert triggers[-2:] == ["extension_request", "extend"]
        assert s.scalars(select(SchoolRun.due_date).where(SchoolRun.school_code == SCHOOLS[0])).one() == date(2021, 9, 30)
    with transaction(province) as s:
        again = import_extensions(s, clock, path, actor=OFFICE, requester=CONTRACTOR)
        assert (again.changed, again.unchanged) == (0, 4)
        assert verify_chains(s).ok


def test_a_bad_extensions_file_names_rows_and_fields(province, clock, tmp_path) -> None:
    _to_registration(province, clock, tmp_path)
    rows = [[SCHOOLS[0], "申请", "2022-01-31", "疫情"],    # 2: past the cap 2021-12-31
            [SCHOOLS[1], "批准", "", "同意"],               # 3: nothing pending
            [SCHOOLS[2], "延期吧", "", "x"],                # 4: unknown action
            [SCHOOLS[3], "申请", "九月底", "疫情"],          # 5: not a date
            [SCHOOLS[4], "申请", "2021-09-30", ""]]         # 6: no reason
    path = write_csv(tmp_path / "延期.csv", EXT_HEADER, rows)
    with pytest.raises(ImportFileError) as info, transaction(province) as s:
        import_extensions(s, clock, path, actor=OFFICE)
    got = {(p.line, p.field) for p in info.value.problems}
    assert got == {(2, "新截止日期"), (3, "操作"), (4, "操作"), (5, "新截止日期"), (6, "理由")}, got


def test_one_decision_for_every_pending_request_of_a_region(province, clock, tmp_path) -> None:
    _to_registration(province, clock, tmp_path)
    rows = [[code, "申请", "2021-09-30", "承训单位统一申请"] for code in SCHOOLS]
    with transaction(province) as s:
        import_extensions(s, clock, write_csv(tmp_path / "e.csv", EXT_HEADER, rows), actor=OFFICE, requester=CONTRACTOR)
        done = decide_many(s, clock, approve=True, reason="统一批准", actor=OFFICE, region=GONGYI)
        assert sorted(r.school_code for r in done) == [c for c in SCHOOLS if c.startswith(GONGYI)]
        assert len(pending_requests(s)) == len(SCHOOLS) - 2
        rest = decide_many(s, clock, approve=False, reason="不予延期", actor=OFFICE, schools=SCHOOLS[:4])
        assert len(rest) == 2 and len(pending_requests(s)) == len(SCHOOLS) - 4
        assert verify_chains(s).ok
