"""Metric rules the school page reads: the teachers holding a stage's gates back, by name; who
the counts leave out; when an early fact counts; the per-request memo of the values.

001 第三阶段 asks every teacher for 25 practice hours and evidence for their 3 points
(workflows/whole-school-2.0.yaml, stage ``practice``: gates ``practice_25h`` and
``evidence_submitted``, both "every teacher", share 1.0). The school page lists the teachers each
gate does not count, so the school knows whom to chase ("实践不足25学时 15" says how many, not who).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from engine import metrics
from engine.clock import FixedClock
from engine.db import transaction
from engine.facts import set_fact
from engine.metrics import teacher_summary, teachers_behind, values_for_run, values_of_runs
from engine.models import School, SchoolFact
from engine.reads import remember_reads
from engine.runs import Actor, fire
from engine.workflow.versions import workflow_for_version
from tests.engine.builders import COUNTY_OFFICER, EARLY, add_school, add_teachers, run_of

SCHOOL = EARLY[0]


def _behind(s: Session, stage: str, code: str = SCHOOL) -> list[dict[str, object]]:
    wf = workflow_for_version(s, run_of(s, code).workflow_version_id)
    return teachers_behind(s, wf, stage, code)


def test_each_teacher_behind_is_named_with_their_progress_and_the_gates_they_hold_back(
        plan: sessionmaker[Session]) -> None:
    """One row per teacher a gate does not count, in platform-id order, with every figure the page
    shows and the gates in the workflow's order; a teacher who meets both gates is not listed."""
    with transaction(plan) as s:
        add_teachers(s, SCHOOL, 1, start=3)  # meets both
        add_teachers(s, SCHOOL, 1, practice=10, points=2, evidence=1, result=None, start=2)  # both gates
        add_teachers(s, SCHOOL, 1, online=20, practice=24.5, result="fail", start=1)  # practice only
        add_teachers(s, SCHOOL, 1, online=12, evidence=2, result="excellent", start=0)  # evidence only
        rows = _behind(s, "practice")
    assert rows == [
        {"platform_id": f"T{SCHOOL}0000", "name": "教师0", "online_hours": 12, "practice_hours": 30,
         "points": "1,2,3", "points_count": 3, "evidence_count": 2, "evidence_result": "excellent",
         "gates": ["evidence_submitted"]},
        {"platform_id": f"T{SCHOOL}0001", "name": "教师1", "online_hours": 20, "practice_hours": 24.5,
         "points": "1,2,3", "points_count": 3, "evidence_count": 3, "evidence_result": "fail",
         "gates": ["practice_25h"]},
        {"platform_id": f"T{SCHOOL}0002", "name": "教师2", "online_hours": 30, "practice_hours": 10,
         "points": "1,2", "points_count": 2, "evidence_count": 1, "evidence_result": None,
         "gates": ["practice_25h", "evidence_submitted"]},
    ]


def test_a_teacher_at_exactly_the_threshold_is_not_behind(plan: sessionmaker[Session]) -> None:
    """"不少于 25 学时": 25 practice hours meets the gate, 24.99 does not (as the gates' shares count)."""
    with transaction(plan) as s:
        add_teachers(s, SCHOOL, 1, practice=25, start=0)
        add_teachers(s, SCHOOL, 1, practice=24.99, start=1)
        assert [r["name"] for r in _behind(s, "practice")] == ["教师1"]


def test_only_the_schools_own_teachers_are_listed(plan: sessionmaker[Session]) -> None:
    with transaction(plan) as s:
        add_teachers(s, SCHOOL, 1, practice=0)
        add_teachers(s, EARLY[1], 2, practice=0)
        assert [r["platform_id"] for r in _behind(s, "practice")] == [f"T{SCHOOL}0000"]
        assert [r["platform_id"] for r in _behind(s, "practice", EARLY[1])] == [f"T{EARLY[1]}0000", f"T{EARLY[1]}0001"]


def test_a_stage_whose_gates_are_facts_names_no_teacher(plan: sessionmaker[Session]) -> None:
    """Planning's gates are the county's filing and the team size (facts): no teacher holds them
    back, however far behind the teachers are; a stage over teacher shares does list them."""
    with transaction(plan) as s:
        add_teachers(s, SCHOOL, 2, online=0, practice=0, points=0, evidence=0, result=None)
        assert _behind(s, "planning") == []
        assert [r["gates"] for r in _behind(s, "online_study")] == [["online_25h", "points_chosen"]] * 2


def test_a_teacher_who_left_the_school_is_not_chased(plan: sessionmaker[Session]) -> None:
    """A teacher a full export no longer lists has left (``progress import --full``, issue 11): the
    gates stop counting them, so they hold nothing back and are not on the list either."""
    with transaction(plan) as s:
        stayed, left = add_teachers(s, SCHOOL, 2, practice=0)
        left.left_on = date(2021, 6, 30)
        s.flush()
        run = run_of(s, SCHOOL)
        values = values_for_run(s, workflow_for_version(s, run.workflow_version_id), run)
        assert values["teachers"] == 1 and values["practice_25h_share"] == 0.0
        assert [r["platform_id"] for r in _behind(s, "practice")] == [stayed.platform_id]


def test_the_school_pages_counts_leave_out_teachers_who_left(plan: sessionmaker[Session]) -> None:
    """The summary's teachers and shortfalls are those still at the school, as the gates count."""
    with transaction(plan) as s:
        add_teachers(s, SCHOOL, 1)
        (left,) = add_teachers(s, SCHOOL, 1, online=0, practice=0, points=0, evidence=0, start=1)
        left.left_on = date(2021, 6, 30)
        s.flush()
        assert teacher_summary(s, SCHOOL) == {"teachers": 1, "online_below_25h": 0, "practice_below_25h": 0,
                                              "points_below_3": 0, "evidence_missing": 0}


# -- before_stage: wait (workflows/whole-school-2.0.yaml, supervision_result; issue 14 bug 4) -------
# The supervision result entered before the school reaches 督导考核 is kept, and counts only once
# the school is in that stage and it was recorded there.

SUPERVISOR = Actor("孙督学", "supervisor")


def _supervision_result(s: Session) -> float | None:
    run = run_of(s, SCHOOL)
    return values_for_run(s, workflow_for_version(s, run.workflow_version_id), run)["supervision_result"]


def test_an_early_wait_fact_is_kept_but_not_counted_before_its_stage(plan: sessionmaker[Session],
                                                                      clock: FixedClock) -> None:
    """In planning the early entry is stored and not counted; a school suspended from planning
    (a hold stage counts as the stage it came from) has not reached supervision either."""
    with transaction(plan) as s:
        assert run_of(s, SCHOOL).state == "planning"
        assert set_fact(s, clock, school_code=SCHOOL, name="supervision_result", value=1, actor=SUPERVISOR)
        assert s.get(SchoolFact, (run_of(s, SCHOOL).id, "supervision_result")) is not None
        assert _supervision_result(s) is None
        fire(s, clock, school_code=SCHOOL, trigger="suspend", actor=COUNTY_OFFICER, reason="学校合并")
        run = run_of(s, SCHOOL)
        assert (run.state, run.previous_state) == ("suspended", "planning")
        assert _supervision_result(s) is None


def test_a_wait_fact_recorded_the_instant_the_school_entered_its_stage_counts(plan: sessionmaker[Session],
                                                                              clock: FixedClock) -> None:
    """Recorded in the stage means at or after its entry: the county's advance and the
    supervisor's entry in the same instant count; an entry from a moment before does not."""
    with transaction(plan) as s:
        run_of(s, SCHOOL).state = "assessment"  # stands in for a year of work
        s.flush()
        add_teachers(s, SCHOOL, 2)
        set_fact(s, clock, school_code=SCHOOL, name="assessment_entered", value=1, actor=COUNTY_OFFICER)
        set_fact(s, clock, school_code=SCHOOL, name="county_spot_check_done", value=1, actor=COUNTY_OFFICER)
        set_fact(s, clock, school_code=SCHOOL, name="supervision_result", value=1, actor=SUPERVISOR)
        clock.advance(timedelta(seconds=1))
        fire(s, clock, school_code=SCHOOL, trigger="advance", actor=COUNTY_OFFICER)
        assert run_of(s, SCHOOL).state == "supervision"
        assert _supervision_result(s) is None  # recorded a second before the school got there
        assert set_fact(s, clock, school_code=SCHOOL, name="supervision_result", value=0, actor=SUPERVISOR)
        assert _supervision_result(s) == 0  # the same instant as the entry


def test_the_memo_keeps_each_workflows_values_apart(plan: sessionmaker[Session]) -> None:
    """``values_of_runs`` remembers a read-only request's values per workflow and runs: the same
    runs under another workflow (here one with an extra metric) are measured under that one."""
    with plan() as s:
        remember_reads(s)
        run = run_of(s, SCHOOL)
        wf = workflow_for_version(s, run.workflow_version_id)
        wider = replace(wf, metrics={**wf.metrics, "n": replace(wf.metrics["teachers"], id="n")})
        assert "n" not in values_of_runs(s, wf, [run.id])[run.id]
        assert values_of_runs(s, wider, [run.id])[run.id]["n"] == 0


def test_a_quarter_of_the_schools_or_more_is_counted_in_one_pass(
        plan: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    """How the values are read (engine.metrics._scan_all): a selection of at least
    ``SCAN_ALL_MIN`` schools that is also at least a quarter of all schools is one pass over every
    teacher, anything smaller goes through the school index — on both databases."""
    with transaction(plan) as s:
        for i in range(2):  # eight schools: two are exactly a quarter
            add_school(s, f"370323900{i}")
        monkeypatch.setattr(metrics, "SCAN_ALL_MIN", 2)
        assert metrics._scan_all(s, 2) is True
        assert metrics._scan_all(s, 8) is True
        assert metrics._scan_all(s, 1) is False  # below the minimum, though an eighth
        monkeypatch.setattr(metrics, "SCAN_ALL_MIN", 1)
        assert metrics._scan_all(s, 1) is False  # under a quarter
        for i in range(2, 4):  # ten schools: two are a fifth, under a quarter
            add_school(s, f"370323900{i}")
        assert metrics._scan_all(s, 2) is False
        assert metrics._scan_all(s, 3) is True
        assert s.scalar(select(func.count()).select_from(School)) == 10


def test_a_fact_not_counted_yet_leaves_the_other_schools_facts_counted(plan: sessionmaker[Session],
                                                                       clock: FixedClock) -> None:
    """The early supervision result of a school still in planning is kept aside; the supervision
    result of a school that is in supervision, read in the same pass, counts."""
    with transaction(plan) as s:
        run_of(s, EARLY[1]).state = "supervision"
        s.flush()
        set_fact(s, clock, school_code=EARLY[0], name="supervision_result", value=1, actor=SUPERVISOR)
        set_fact(s, clock, school_code=EARLY[1], name="supervision_result", value=1, actor=SUPERVISOR)
        first, second = run_of(s, EARLY[0]), run_of(s, EARLY[1])
        assert first.id < second.id  # the one kept aside is read first
        got = values_of_runs(s, workflow_for_version(s, first.workflow_version_id), [first.id, second.id])
    assert got[first.id]["supervision_result"] is None
    assert got[second.id]["supervision_result"] == 1
