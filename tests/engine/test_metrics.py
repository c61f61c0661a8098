"""Metric values in SQL: shares, counts, facts, many schools in one query; no teachers is no data."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine import metrics
from engine.clock import FixedClock
from engine.db import transaction
from engine.facts import set_fact
from engine.metrics import metric_values, teacher_summary, values_for_run
from engine.models import SchoolRun
from engine.workflow.versions import workflow_for_version
from tests.engine.builders import (
    COUNTY_OFFICER,
    EARLY,
    LATE,
    OTHER,
    PILOT,
    add_teachers,
    run_of,
)


def test_no_teachers_share_is_none_count_is_zero(plan: sessionmaker[Session]) -> None:
    with transaction(plan) as s:
        run = run_of(s, EARLY[0])
        values = values_for_run(s, workflow_for_version(s, run.workflow_version_id), run)
    assert values["online_25h_share"] is None and values["assessed_share"] is None
    assert values["teachers"] == 0
    assert values["plan_filed"] is None


def test_shares_counts_and_facts_for_many_schools_at_once(plan: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(plan) as s:
        add_teachers(s, EARLY[0], 3)
        add_teachers(s, EARLY[0], 1, online=10, points=2, evidence=2, result="fail", start=3)
        add_teachers(s, EARLY[1], 2, practice=24.9, result=None)
        add_teachers(s, OTHER, 1, evidence=2, result="excellent")
        set_fact(s, clock, school_code=EARLY[0], name="team_members", value=4, actor=COUNTY_OFFICER)
        set_fact(s, clock, school_code=OTHER, name="plan_filed", value=1, actor=COUNTY_OFFICER)
    with transaction(plan) as s:
        wf = workflow_for_version(s, run_of(s, EARLY[0]).workflow_version_id)
        values = metric_values(s, wf, select(SchoolRun.id, SchoolRun.school_code))
        by_code = {run_of(s, c).school_code: values[run_of(s, c).id] for c in (EARLY[0], EARLY[1], OTHER, PILOT)}
    a, b, o, p = by_code[EARLY[0]], by_code[EARLY[1]], by_code[OTHER], by_code[PILOT]
    assert len(values) == 6
    assert a["teachers"] == 4 and a["online_25h_share"] == 0.75 and a["points_chosen_share"] == 0.75
    assert a["points_evidence_share"] == 0.75 and a["assessed_share"] == 0.75 and a["practice_25h_share"] == 1.0
    assert a["team_members"] == 4 and a["plan_filed"] is None
    assert b["teachers"] == 2 and b["practice_25h_share"] == 0.0 and b["assessed_share"] == 0.0
    assert b["online_25h_share"] == 1.0 and b["team_members"] is None
    assert o["points_evidence_share"] == 0.0 and o["assessed_share"] == 1.0 and o["plan_filed"] == 1
    assert p["teachers"] == 0 and p["online_25h_share"] is None


def test_only_selected_runs_are_returned(plan: sessionmaker[Session]) -> None:
    with transaction(plan) as s:
        add_teachers(s, EARLY[0], 2)
        run = run_of(s, EARLY[1])
        wf = workflow_for_version(s, run.workflow_version_id)
        values = metric_values(s, wf, select(SchoolRun.id, SchoolRun.school_code).where(SchoolRun.id == run.id))
    assert list(values) == [run.id]
    assert values[run.id]["online_25h_share"] is None


def test_a_list_of_runs_selects_those_runs_on_either_database(plan: sessionmaker[Session]) -> None:
    """``values_of_runs`` binds the ids as an array on PostgreSQL, an IN list elsewhere: the same
    runs either way, each with its own school's values."""
    with transaction(plan) as s:
        add_teachers(s, EARLY[0], 2)
        add_teachers(s, EARLY[1], 1, online=10)
        chosen = [run_of(s, EARLY[0]).id, run_of(s, EARLY[1]).id]
        wf = workflow_for_version(s, run_of(s, EARLY[0]).workflow_version_id)
        values = metrics.values_of_runs(s, wf, chosen)
    assert sorted(values) == sorted(chosen)
    assert values[chosen[0]]["online_25h_share"] == 1.0 and values[chosen[1]]["online_25h_share"] == 0.0


def test_teacher_summary(plan: sessionmaker[Session]) -> None:
    with transaction(plan) as s:
        add_teachers(s, EARLY[0], 2)
        add_teachers(s, EARLY[0], 1, online=5, practice=0, points=1, evidence=0, start=2)
        assert teacher_summary(s, EARLY[0]) == {"teachers": 3, "online_below_25h": 1, "practice_below_25h": 1,
                                                "points_below_3": 1, "evidence_missing": 1}
        assert teacher_summary(s, EARLY[1])["teachers"] == 0


def test_one_full_pass_gives_the_same_values(plan: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    """A province-wide selection on SQLite aggregates all teachers in one pass (no index walk);
    the values are the same as the per-school lookups, and schools outside the selection stay out."""
    with transaction(plan) as s:
        add_teachers(s, EARLY[0], 3)
        add_teachers(s, EARLY[0], 1, online=10, points=2, evidence=2, result="fail", start=3)
        add_teachers(s, OTHER, 2, practice=24.9, result=None)
        wf = workflow_for_version(s, run_of(s, EARLY[0]).workflow_version_id)
        runs = select(SchoolRun.id, SchoolRun.school_code).where(SchoolRun.school_code != PILOT)
        monkeypatch.setattr(metrics, "SCAN_ALL_MIN", 10**9)
        lookups = metric_values(s, wf, runs)
        monkeypatch.setattr(metrics, "SCAN_ALL_MIN", 1)
        passes = metric_values(s, wf, runs)
        query, _ = metrics.teacher_metric_query(wf, runs, scan_all=True)
        assert "school_run" not in str(query)  # really the one-pass form: no lookup of the selected schools
    assert passes == lookups and run_of_id(plan, PILOT) not in passes
    assert passes[run_of_id(plan, EARLY[0])]["online_25h_share"] == 0.75


def run_of_id(factory: sessionmaker[Session], code: str) -> int:
    with factory() as s:
        return run_of(s, code).id


def test_exactly_25_hours_meets_the_25_hour_requirement(plan: sessionmaker[Session]) -> None:
    """001: 每位教师学习内容不少于 25 学时 — "not less than 25": a teacher at exactly 25 online and 25
    practice hours has met both, in the school page's counts and in the gates' shares alike."""
    with transaction(plan) as s:
        add_teachers(s, EARLY[0], 1, online=25, practice=25)
        add_teachers(s, EARLY[0], 1, online=24.9, practice=24.99, start=1)
        assert teacher_summary(s, EARLY[0]) == {"teachers": 2, "online_below_25h": 1, "practice_below_25h": 1,
                                                "points_below_3": 0, "evidence_missing": 0}
        run = run_of(s, EARLY[0])
        values = values_for_run(s, workflow_for_version(s, run.workflow_version_id), run)
    assert values["online_25h_share"] == 0.5 and values["practice_25h_share"] == 0.5


def test_teacher_summary_counts_each_shortfall_on_its_own(plan: sessionmaker[Session]) -> None:
    """The school page's four counts are separate questions (below 25 online hours, below 25
    practice hours, fewer than 3 points chosen, evidence missing for a chosen point); a school
    whose teachers lack nothing shows zeros, and so does a school without teachers."""
    with transaction(plan) as s:
        add_teachers(s, EARLY[0], 1, online=10, practice=10, points=1, evidence=0)
        add_teachers(s, EARLY[0], 1, practice=10, points=2, evidence=0, start=1)
        add_teachers(s, EARLY[0], 1, points=2, evidence=1, start=2)
        add_teachers(s, EARLY[0], 1, points=3, evidence=2, start=3)
        add_teachers(s, EARLY[1], 2)
        assert teacher_summary(s, EARLY[0]) == {"teachers": 4, "online_below_25h": 1, "practice_below_25h": 2,
                                                "points_below_3": 3, "evidence_missing": 4}
        nothing_missing = {"online_below_25h": 0, "practice_below_25h": 0, "points_below_3": 0, "evidence_missing": 0}
        assert teacher_summary(s, EARLY[1]) == {"teachers": 2, **nothing_missing}
        assert teacher_summary(s, LATE[0]) == {"teachers": 0, **nothing_missing}


def test_every_comparison_a_workflow_may_write_counts_the_right_teachers(plan: sessionmaker[Session]) -> None:
    """docs/workflow-files.md: a metric's ``where`` compares a teacher field with ``>= > <= < == !=``
    (the shipped workflow uses only ``>=``); teachers at 24, 25 and 26 online hours against 25."""
    from dataclasses import replace

    from engine.workflow.model import Condition

    with transaction(plan) as s:
        for i, hours in enumerate((24, 25, 26)):
            add_teachers(s, EARLY[0], 1, online=hours, start=i)
        run = run_of(s, EARLY[0])
        wf = workflow_for_version(s, run.workflow_version_id)
        base = wf.metrics["teachers"]
        ops = {">=": 2, ">": 1, "<=": 2, "<": 1, "==": 1, "!=": 2}
        extra = {f"n{op}": replace(base, id=f"n{op}", where=(Condition("online_hours", op, 25),)) for op in ops}
        values = metric_values(s, replace(wf, metrics={**wf.metrics, **extra}), metrics.runs_by_id([run.id]))[run.id]
    assert {op: values[f"n{op}"] for op in ops} == ops


def test_facts_the_workflow_does_not_name_are_ignored(plan: sessionmaker[Session], clock: FixedClock) -> None:
    """A fact recorded under another workflow version (or by hand) is not one of this workflow's
    metrics: it neither breaks the computation nor shows up as a value."""
    from engine.models import SchoolFact

    with transaction(plan) as s:
        run = run_of(s, EARLY[0])
        s.add(SchoolFact(run_id=run.id, name="old_version_fact", value=1, recorded_at=clock.now(), recorded_by="x"))
        set_fact(s, clock, school_code=EARLY[0], name="plan_filed", value=1, actor=COUNTY_OFFICER)
        values = values_for_run(s, workflow_for_version(s, run.workflow_version_id), run)
    assert values["plan_filed"] == 1 and "old_version_fact" not in values
