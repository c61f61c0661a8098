"""Moving running schools to a new workflow version mid-year (issue 15), on both databases.

Each test builds the shipped plan (builders), moves schools to where the story needs them through
the engine, loads a changed version and moves the plan; ``audit verify`` (chains and state) must
pass after every move.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from engine.audit import verify_chains
from engine.clock import FixedClock
from engine.db import transaction
from engine.errors import MoveRefused, StaleStateError
from engine.facts import set_fact
from engine.models import AuditEvent, Plan, RunDeadline, SchoolRun
from engine.notices import due_digests
from engine.projection import verify_state
from engine.reminder import due_items
from engine.runs import advance_all_ready, advance_auto, fire
from engine.version_apply import apply_move
from engine.version_move import preview_move
from engine.version_rules import MIGRATE, MIGRATE_PLAN
from engine.workflow.versions import workflow_for_version
from tests.engine.builders import (
    CITY_OFFICER,
    COUNTY_OFFICER,
    EARLY,
    LATE,
    OTHER,
    OTHER_COUNTY,
    PILOT,
    PROVINCE_OFFICER,
    add_teachers,
    run_of,
    seed_with_plan,
)
from tests.engine.version_builders import (
    online_20h,
    register_variant,
    split_online_study,
    team_of_two_and_early_reminders,
)

STARTED = (*EARLY, OTHER)  # batch b2, started 2021-06-15, in planning


def _to_online_study(s: Session, clock: FixedClock, code: str) -> None:
    set_fact(s, clock, school_code=code, name="plan_filed", value=1, actor=COUNTY_OFFICER)
    set_fact(s, clock, school_code=code, name="team_members", value=4, actor=COUNTY_OFFICER)
    fire(s, clock, school_code=code, trigger="advance", actor=COUNTY_OFFICER)


@pytest.fixture
def studying(factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> sessionmaker[Session]:
    """b2's three schools in online study: 22 h, 18 h and 30 h online, every teacher with 3 points."""
    with transaction(factory) as s:
        seed_with_plan(s, clock, tmp_path)
        for code, hours in zip(STARTED, (22, 18, 30), strict=True):
            add_teachers(s, code, 3, online=hours, practice=0, evidence=0)
            _to_online_study(s, clock, code)
    return factory


def _verified(db: Engine, factory: sessionmaker[Session]) -> None:
    assert verify_chains(db).ok
    with transaction(factory) as s:
        report = verify_state(s)
    assert report.ok, [p.message for p in report.problems]


def test_lowering_25_to_20_hours_makes_exactly_the_right_schools_ready(
        db: Engine, studying: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(studying) as s:
        register_variant(s, clock, "2", online_20h)
        preview = preview_move(s, clock, plan_code="yiyuan-2021", to="whole-school-2.0@2")
        by_school = {m.school_code: m for m in preview.moves}
        # Every open run moves (pilot, the three studying, the two not started); none is finished.
        assert set(by_school) == {PILOT, *STARTED, *LATE} and preview.finished == 0
        assert {c for c, m in by_school.items() if m.ready_after and not m.ready_before} == {EARLY[0]}
        assert {c for c, m in by_school.items() if m.ready_after} == {EARLY[0], OTHER}
        assert [g.gate for g in by_school[EARLY[0]].now_passing] == ["online_25h"]
        assert by_school[EARLY[1]].now_passing == [] and by_school[EARLY[1]].now_failing == []
        assert all(m.from_stage == m.to_stage for m in preview.moves)
        summary = {row["county"]: row for row in preview.summary()}
        assert summary[OTHER_COUNTY]["becomes_ready"] == 0 and sum(r["becomes_ready"] for r in summary.values()) == 1
        # Nothing was written by the preview.
        assert run_of(s, EARLY[0]).blocked is True
    with transaction(studying) as s:
        apply_move(s, clock, plan_code="yiyuan-2021", to="whole-school-2.0@2", reason="省里调整为20学时",
                   actor=PROVINCE_OFFICER)
    with transaction(studying) as s:
        assert run_of(s, EARLY[0]).blocked is False and run_of(s, EARLY[1]).blocked is True
        plan = s.scalars(select(Plan)).one()
        assert workflow_for_version(s, plan.workflow_version_id).key == "whole-school-2.0@2"
        moved = advance_all_ready(s, clock, actor=COUNTY_OFFICER)
        assert moved.advanced == 2
        assert {c: run_of(s, c).state for c in STARTED} == {EARLY[0]: "practice", EARLY[1]: "online_study",
                                                            OTHER: "practice"}
        plan_events = s.scalars(select(AuditEvent).where(AuditEvent.trigger == MIGRATE_PLAN)).all()
        assert len(plan_events) == 1 and plan_events[0].reason == "省里调整为20学时"
        assert len(s.scalars(select(AuditEvent).where(AuditEvent.trigger == MIGRATE)).all()) == 6
    _verified(db, studying)


def test_a_stage_split_with_a_mapping_moves_schools_deadlines_and_suspended_ones(
        db: Engine, studying: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(studying) as s:
        fire(s, clock, school_code=EARLY[0], trigger="extend", actor=COUNTY_OFFICER, reason="汛期", due=date(2021, 12, 1))
        fire(s, clock, school_code=OTHER, trigger="suspend", actor=COUNTY_OFFICER, reason="学校合并")
        register_variant(s, clock, "3", split_online_study)
    with transaction(studying) as s:
        preview = apply_move(s, clock, plan_code="yiyuan-2021", to="whole-school-2.0@3",
                             mapping={"online_study": "choose_points"}, reason="拆分网络研修阶段", actor=CITY_OFFICER)
        moves = {m.school_code: m for m in preview.moves}
        due = moves[EARLY[0]].due_after
        assert due is not None and due.due == date(2021, 12, 1)
        assert not moves[EARLY[0]].backwards
    with transaction(studying) as s:
        assert {c: run_of(s, c).state for c in STARTED} == {EARLY[0]: "choose_points", EARLY[1]: "choose_points",
                                                            OTHER: "suspended"}
        assert run_of(s, OTHER).previous_state == "choose_points"
        deadline = s.scalars(select(RunDeadline).where(RunDeadline.run_id == run_of(s, EARLY[0]).id)).one()
        assert deadline.stage == "choose_points"
        # The new graph applies from now on: points are chosen, so the school goes on to online_hours.
        fire(s, clock, school_code=EARLY[0], trigger="advance", actor=COUNTY_OFFICER)
        fire(s, clock, school_code=OTHER, trigger="resume", actor=COUNTY_OFFICER, reason="合并完成")
        assert run_of(s, EARLY[0]).state == "online_hours" and run_of(s, OTHER).state == "choose_points"
    _verified(db, studying)


def test_an_unmapped_stage_is_refused_with_the_schools_and_nothing_changes(
        db: Engine, studying: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(studying) as s:
        register_variant(s, clock, "3", split_online_study)
        events = len(s.scalars(select(AuditEvent.id)).all())
    with pytest.raises(MoveRefused) as refused, transaction(studying) as s:
        apply_move(s, clock, plan_code="yiyuan-2021", to="whole-school-2.0@3", reason="拆分", actor=PROVINCE_OFFICER)
    (problem,) = refused.value.details
    assert problem["kind"] == "unmapped" and problem["stage"] == "online_study"
    assert problem["schools"] == sorted(STARTED)
    assert all(code in str(refused.value) for code in STARTED) and "--map online_study=" in str(refused.value)
    with transaction(studying) as s:
        assert len(s.scalars(select(AuditEvent.id)).all()) == events
        assert {workflow_for_version(s, r.workflow_version_id).version for r in s.scalars(select(SchoolRun))} == {"1"}


def test_impossible_and_unknown_mappings_are_refused(studying: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(studying) as s:
        register_variant(s, clock, "3", split_online_study)
        with pytest.raises(MoveRefused) as onto_done:
            preview_move(s, clock, plan_code="yiyuan-2021", to="whole-school-2.0@3", mapping={"online_study": "done"})
        assert [d["kind"] for d in onto_done.value.details] == ["impossible"]
        assert onto_done.value.details[0]["schools"] == sorted(STARTED)
        with pytest.raises(MoveRefused) as typo:
            preview_move(s, clock, plan_code="yiyuan-2021", to="whole-school-2.0@3",
                         mapping={"online_studdy": "choose_points", "online_study": "nowhere"})
        assert sorted(str(d["kind"]) for d in typo.value.details) == ["unknown_stage", "unknown_target"]
        with pytest.raises(MoveRefused):  # a batch not started yet can only be at an entry stage
            preview_move(s, clock, plan_code="yiyuan-2021", to="whole-school-2.0@3",
                         mapping={"online_study": "choose_points", "planning": "choose_points"})
        with pytest.raises(MoveRefused):
            preview_move(s, clock, plan_code="yiyuan-2021", to="whole-school-2.0@9")


def test_backwards_only_by_an_explicit_map_and_done_runs_stay(
        db: Engine, studying: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(studying) as s:
        fire(s, clock, school_code=OTHER, trigger="override", actor=PROVINCE_OFFICER, reason="特殊情况")
        register_variant(s, clock, "2", online_20h)
        done_version = run_of(s, OTHER).workflow_version_id
    with transaction(studying) as s:
        preview = apply_move(s, clock, plan_code="yiyuan-2021", to="whole-school-2.0@2",
                             mapping={"online_study": "planning"}, reason="重新制定规划", actor=PROVINCE_OFFICER)
        assert preview.finished == 1 and OTHER not in {m.school_code for m in preview.moves}
        assert {m.school_code for m in preview.moves if m.backwards} == set(EARLY)
    with transaction(studying) as s:
        assert run_of(s, OTHER).workflow_version_id == done_version and run_of(s, OTHER).state == "done"
        assert run_of(s, EARLY[0]).state == "planning"
    _verified(db, studying)


def test_a_region_moves_alone_and_the_sweep_reads_each_runs_rules(
        db: Engine, studying: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(studying) as s:
        register_variant(s, clock, "3", split_online_study)
        plan_version = s.scalars(select(Plan)).one().workflow_version_id
        apply_move(s, clock, plan_code="yiyuan-2021", to="whole-school-2.0@3", region=OTHER_COUNTY,
                   mapping={"online_study": "choose_points"}, reason="淄川区先行", actor=CITY_OFFICER)
    with transaction(studying) as s:
        assert run_of(s, OTHER).state == "choose_points" and run_of(s, EARLY[0]).state == "online_study"
        plan = s.scalars(select(Plan)).one()
        assert plan.workflow_version_id == plan_version
        due_digests(s, clock, plan, workflow_for_version(s, plan.workflow_version_id))  # no stage is unknown
    _verified(db, studying)


def test_a_county_may_not_move_and_a_reason_is_needed(studying: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(studying) as s:
        register_variant(s, clock, "2", online_20h)
        with pytest.raises(MoveRefused):
            apply_move(s, clock, plan_code="yiyuan-2021", to="whole-school-2.0@2", reason="x", actor=COUNTY_OFFICER)
        with pytest.raises(MoveRefused):
            apply_move(s, clock, plan_code="yiyuan-2021", to="whole-school-2.0@2", reason=" ", actor=PROVINCE_OFFICER)


def test_an_advance_after_the_preview_makes_the_move_stale_and_nothing_moves(
        db: Engine, studying: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(studying) as s:
        register_variant(s, clock, "2", online_20h)
    with transaction(studying) as s:
        preview = preview_move(s, clock, plan_code="yiyuan-2021", to="whole-school-2.0@2")
    with transaction(studying) as s:  # an officer returns a school meanwhile
        fire(s, clock, school_code=EARLY[1], trigger="return_for_rework", actor=COUNTY_OFFICER, reason="规划需修改")
    with pytest.raises(StaleStateError), transaction(studying) as s:
        apply_move(s, clock, plan_code="yiyuan-2021", to="whole-school-2.0@2", reason="20学时",
                   actor=PROVINCE_OFFICER, preview=preview)
    with transaction(studying) as s:
        assert {workflow_for_version(s, r.workflow_version_id).version for r in s.scalars(select(SchoolRun))} == {"1"}
        assert s.scalars(select(AuditEvent).where(AuditEvent.trigger.in_([MIGRATE, MIGRATE_PLAN]))).all() == []
    # The other order: the move commits first, the officer's page is stale.
    with transaction(studying) as s:
        seen = run_of(s, EARLY[0]).version
        apply_move(s, clock, plan_code="yiyuan-2021", to="whole-school-2.0@2", reason="20学时", actor=PROVINCE_OFFICER)
    with pytest.raises(StaleStateError), transaction(studying) as s:
        fire(s, clock, school_code=EARLY[0], trigger="advance", actor=COUNTY_OFFICER, expected_version=seen)
    _verified(db, studying)


def test_sweeps_after_a_move_use_the_new_rules(db: Engine, plan: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(plan) as s:
        set_fact(s, clock, school_code=EARLY[0], name="plan_filed", value=1, actor=COUNTY_OFFICER)
        set_fact(s, clock, school_code=EARLY[0], name="team_members", value=2, actor=COUNTY_OFFICER)
        assert advance_auto(s, clock) == 0  # a team of 2 is not enough under version 1
        register_variant(s, clock, "2", team_of_two_and_early_reminders)
    with transaction(plan) as s:
        preview = apply_move(s, clock, plan_code=None, to="whole-school-2.0@2", reason="团队可为2人", actor=PROVINCE_OFFICER)
        early = next(m for m in preview.moves if m.school_code == EARLY[1])
        assert early.rescheduled and min(early.reminders_after) < min(early.reminders_before)
    with transaction(plan) as s:
        assert advance_auto(s, clock) == 1 and run_of(s, EARLY[0]).state == "online_study"
        p = s.scalars(select(Plan)).one()
        wf = workflow_for_version(s, p.workflow_version_id)
        due = run_of(s, EARLY[1]).due_date
        assert due is not None
        # The sweep's reminder rule is the new version's: 45 days ahead is a reminder now.
        items = due_items(0, "planning", due, wf.stage("planning").remind, due - timedelta(days=45))
        assert [i.kind for i in items] == ["reminder"]
        assert due_digests(s, clock, p, wf) == []  # no contacts: nothing queued, and no stage unknown
    _verified(db, plan)
