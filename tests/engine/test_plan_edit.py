"""Editing a loaded plan with its changed file (issue 15), and per-school deadline overrides, on both databases.

The builders' plan: b1 pilot (started 2021-06-01), b2 = EARLY + OTHER by code (started 06-15),
b3 = the rest (starts 09-01); the clock says 2021-07-01. After every applied edit ``audit verify``
(chains and state) must pass.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from engine.audit import verify_chains
from engine.clock import FixedClock
from engine.db import transaction
from engine.errors import PlanFileError, TransitionRefused
from engine.models import AuditEvent, Batch, Plan, SchoolRun
from engine.plan_edit import PLAN_EDIT, WITHDRAW, edit_plan
from engine.projection import verify_state
from engine.run_deadline import override_deadline
from engine.runs import fire
from engine.status import status_table
from tests.engine.builders import (
    COUNTY_OFFICER,
    EARLY,
    LATE,
    OTHER,
    PROVINCE_OFFICER,
    SCHOOL_ADMIN,
    add_school,
    plan_data,
    run_of,
    write_plan,
)
from tests.engine.version_builders import online_20h, register_variant

NEW_SCHOOL = "3703230009"


def _file(tmp_path: Path, **changes: Any) -> Path:
    data = plan_data()
    batches = {b["id"]: b for b in data["batches"]}
    for key, value in changes.items():
        if key.startswith("b"):
            batches[key[:2]][key[3:]] = value
        else:
            data[key] = value
    return write_plan(tmp_path, data, "edited.yaml")


def _edit(factory: sessionmaker[Session], clock: FixedClock, path: Path, apply: bool = True) -> Any:
    with transaction(factory) as s:
        return edit_plan(s, path, clock, reason="县教育局通知调整", actor=PROVINCE_OFFICER, apply=apply)


def _verified(db: Engine, factory: sessionmaker[Session]) -> None:
    assert verify_chains(db).ok
    with transaction(factory) as s:
        report = verify_state(s)
    assert report.ok, [p.message for p in report.problems]


def test_unchanged_file_changes_nothing_and_a_dry_run_writes_nothing(
        db: Engine, plan: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    assert _edit(plan, clock, _file(tmp_path)).changes == []
    with transaction(plan) as s:
        add_school(s, NEW_SCHOOL)
        events = len(s.scalars(select(AuditEvent.id)).all())
    dry = _edit(plan, clock, _file(tmp_path), apply=False)
    assert [(c.kind, c.subject, c.after) for c in dry.changes] == [("school_added", NEW_SCHOOL, "b3")]
    assert not dry.applied
    with transaction(plan) as s:
        assert len(s.scalars(select(AuditEvent.id)).all()) == events
        assert s.scalar(select(SchoolRun.id).where(SchoolRun.school_code == NEW_SCHOOL)) is None


def test_an_added_school_starts_with_its_batch(db: Engine, plan: sessionmaker[Session], clock: FixedClock,
                                               tmp_path: Path) -> None:
    with transaction(plan) as s:
        add_school(s, NEW_SCHOOL)
    edit = _edit(plan, clock, _file(tmp_path))
    assert edit.applied and [c.kind for c in edit.changes] == ["school_added"]
    with transaction(plan) as s:
        run = run_of(s, NEW_SCHOOL)
        assert run.state == "planning" and run.started_at.date() == date(2021, 8, 31)  # 09-01 local midnight
        event = s.scalars(select(AuditEvent).where(AuditEvent.trigger == PLAN_EDIT)).one()
        assert event.reason == "县教育局通知调整" and event.gates[0]["changes"][0]["subject"] == NEW_SCHOOL
    _verified(db, plan)


def test_a_removed_school_is_withdrawn_with_its_history_and_cannot_rejoin(
        db: Engine, plan: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    with transaction(plan) as s:
        before = len(s.scalars(select(AuditEvent).where(AuditEvent.school_code == EARLY[1])).all())
    edit = _edit(plan, clock, _file(tmp_path, b2_schools={"codes": [EARLY[0], OTHER]}))
    assert [(c.kind, c.subject) for c in edit.changes] == [("school_removed", EARLY[1])]
    with transaction(plan) as s:
        run = run_of(s, EARLY[1])
        assert run.withdrawn_at is not None
        trail = s.scalars(select(AuditEvent).where(AuditEvent.school_code == EARLY[1]).order_by(AuditEvent.seq)).all()
        assert len(trail) == before + 1 and trail[-1].trigger == WITHDRAW
        _, rows = status_table(s, clock, plan_code="yiyuan-2021")
        assert sum(r.schools for r in rows) == 5
        with pytest.raises(TransitionRefused):
            fire(s, clock, school_code=EARLY[1], trigger="suspend", actor=COUNTY_OFFICER, reason="x")
    _verified(db, plan)
    with pytest.raises(PlanFileError) as rejoin:
        _edit(plan, clock, _file(tmp_path))
    assert "cannot rejoin" in str(rejoin.value) or "不能再加入" in str(rejoin.value)


def test_moving_schools_between_batches(db: Engine, plan: sessionmaker[Session], clock: FixedClock,
                                        tmp_path: Path) -> None:
    # A school that has not started joins a running batch: it starts with it.
    edit = _edit(plan, clock, _file(tmp_path, b2_schools={"codes": [*EARLY, OTHER, LATE[0]]}))
    assert [(c.kind, c.subject, c.before, c.after) for c in edit.changes] == [("school_moved", LATE[0], "b3", "b2")]
    with transaction(plan) as s:
        run = run_of(s, LATE[0])
        assert run.started_at <= clock.now() and run.due_date == date(2021, 9, 30)  # b2's planning deadline
    _verified(db, plan)
    # A school that has started cannot move into a batch that has not.
    with pytest.raises(PlanFileError) as refused:
        _edit(plan, clock, _file(tmp_path, b2_schools={"codes": [*EARLY, LATE[0]]}, b3_schools={"codes": [OTHER, LATE[1]]}))
    assert OTHER in str(refused.value) and ":" in str(refused.value).splitlines()[1]


def test_batch_dates_deadlines_final_deadline_and_cap(db: Engine, plan: sessionmaker[Session], clock: FixedClock,
                                                      tmp_path: Path) -> None:
    edit = _edit(plan, clock, _file(tmp_path, b3_start="2021-10-08", b2_deadlines={"planning": "2021-10-15"},
                                    final_deadline="2022-11-25", extension_cap="2022-12-20"))
    assert {c.kind for c in edit.changes} == {"batch_start", "batch_deadlines", "final_deadline", "extension_cap"}
    with transaction(plan) as s:
        assert run_of(s, LATE[0]).started_at.date() == date(2021, 10, 7)
        assert run_of(s, EARLY[0]).due_date == date(2021, 10, 15) and run_of(s, EARLY[0]).due_source == "batch"
        p = s.scalars(select(Plan)).one()
        assert (p.final_deadline, p.extension_cap) == (date(2022, 11, 25), date(2022, 12, 20))
        assert s.scalars(select(Batch).where(Batch.code == "b3")).one().start == date(2021, 10, 8)
    _verified(db, plan)
    with transaction(plan) as s:
        fire(s, clock, school_code=EARLY[0], trigger="extend", actor=COUNTY_OFFICER, reason="灾后", due=date(2022, 12, 15))
    with pytest.raises(PlanFileError) as stranded:  # a started batch keeps its start; a granted extension its date
        _edit(plan, clock, _file(tmp_path, b2_start="2021-06-20", b3_start="2021-10-08",
                                 b2_deadlines={"planning": "2021-10-15"}, final_deadline="2022-11-25",
                                 extension_cap="2022-12-10"))
    message = str(stranded.value)
    assert "2 个问题" in message and EARLY[0] in message and "b2" in message


def test_what_an_edit_may_not_change(plan: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    with transaction(plan) as s:
        register_variant(s, clock, "2", online_20h)
    data = plan_data(workflow_version="2", timezone="Asia/Urumqi")
    data["batches"] = data["batches"][:2]
    data["batches"][1]["share"] = 0.8
    with pytest.raises(PlanFileError) as refused:
        _edit(plan, clock, write_plan(tmp_path, data, "edited.yaml"))
    lines = str(refused.value).splitlines()[1:]
    assert len(lines) == 3
    assert any("[workflow]" in line and "rollout workflow migrate" in line for line in lines)
    assert any("[timezone]" in line for line in lines) and any("[batches]" in line and "b3" in line for line in lines)


def test_deadline_override(db: Engine, plan: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(plan) as s:
        override_deadline(s, clock, school_code=EARLY[0], stage="planning", due=date(2021, 8, 15), reason="并校后补报",
                          actor=COUNTY_OFFICER)
    with transaction(plan) as s:
        run = run_of(s, EARLY[0])
        assert (run.due_date, run.due_source) == (date(2021, 8, 15), "override")
        with pytest.raises(TransitionRefused):
            override_deadline(s, clock, school_code=EARLY[0], stage="planning", due=date(2021, 8, 20), reason="x",
                              actor=SCHOOL_ADMIN)
        with pytest.raises(TransitionRefused):
            override_deadline(s, clock, school_code=EARLY[0], stage="planning", due=date(2023, 1, 5), reason="x",
                              actor=COUNTY_OFFICER)
    _verified(db, plan)


def test_a_school_moved_into_a_new_batch_whose_start_then_moves(
        db: Engine, plan: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    data = plan_data()
    # Before the rest batch: a batch chosen by a rule takes what the batches above it left.
    data["batches"].insert(2, {"id": "b4", "title": "第三批", "start": "2021-10-01", "schools": {"codes": [LATE[0]]}})
    first = _edit(plan, clock, write_plan(tmp_path, data, "edited.yaml"))
    assert sorted(c.kind for c in first.changes) == ["batch_added", "school_moved"]
    _verified(db, plan)
    data["batches"][2]["start"] = "2021-10-15"
    second = _edit(plan, clock, write_plan(tmp_path, data, "edited.yaml"))
    assert [c.kind for c in second.changes] == ["batch_start"]
    with transaction(plan) as s:
        assert run_of(s, LATE[0]).started_at.date() == date(2021, 10, 14)  # local midnight of 10-15
    _verified(db, plan)
