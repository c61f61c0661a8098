"""Plan files: runs and audit events on load, every problem with its line, nothing written on failure."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from engine.audit import plan_chain, run_chain, verify_chains
from engine.clock import FixedClock
from engine.db import transaction
from engine.errors import NotFound, PlanFileError
from engine.models import AuditEvent, Batch, Plan, SchoolRun
from engine.plan import find_plan, load_plan, plan_summary
from tests.engine.builders import (
    ALL_SCHOOLS,
    EARLY,
    LATE,
    OTHER,
    PILOT,
    plan_data,
    seed,
    write_plan,
)

BAD_PLAN = """\
plan: bad-2021
workflow: whole-school-2.0
year: 2021
final_deadline: 2022-11-30
colour: blue
batches:
  - id: b1
    start: 2021-06-01
    start_stage: online_study
    share: 0.5
    schools: {codes: ["3703230001", "9999999999"]}
    deadlines:
      planning: 2023-01-31
      online_study: 2021-05-01
  - id: b2
    start: 2021-09-01
    share: 0.3
    schools: {rest: true}
"""


def _count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def test_load_creates_runs_batches_and_audit_events(factory: sessionmaker[Session], clock: FixedClock,
                                                      tmp_path: Path, db: Engine) -> None:
    with transaction(factory) as s:
        seed(s, clock)
        plan = load_plan(s, write_plan(tmp_path, plan_data()), clock)
        plan_id = plan.id
    with transaction(factory) as s:
        runs = {r.school_code: r for r in s.scalars(select(SchoolRun))}
        assert set(runs) == set(ALL_SCHOOLS)
        assert runs[PILOT].state == "pilot"
        assert {runs[c].state for c in (*EARLY, *LATE, OTHER)} == {"planning"}
        assert all(r.version == 1 and r.previous_state is None for r in runs.values())
        assert [b.code for b in s.scalars(select(Batch).order_by(Batch.id))] == ["b1", "b2", "b3"]
        for run in runs.values():
            events = s.scalars(select(AuditEvent).where(AuditEvent.chain == run_chain(run.id))).all()
            assert [(e.trigger, e.to_state, e.seq) for e in events] == [("start", run.state, 1)]
        plan_events = s.scalars(select(AuditEvent).where(AuditEvent.chain == plan_chain(plan_id))).all()
        assert [e.trigger for e in plan_events] == ["plan_load"]
        summary = plan_summary(s, find_plan(s, None))
        assert [b["schools"] for b in summary["batches"]] == [1, 3, 2]
    report = verify_chains(db)
    assert report.ok and report.chains == 7 and report.events == 7


def test_batch_starts_at_local_midnight(factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    with transaction(factory) as s:
        seed(s, clock)
        load_plan(s, write_plan(tmp_path, plan_data()), clock)
    with transaction(factory) as s:
        run = s.scalar(select(SchoolRun).where(SchoolRun.school_code == PILOT))
        assert run is not None
        assert run.started_at.isoformat() == "2021-05-31T16:00:00+00:00"


def test_every_problem_is_reported_with_its_line(factory: sessionmaker[Session], clock: FixedClock,
                                                   tmp_path: Path) -> None:
    with transaction(factory) as s:
        seed(s, clock)
    path = write_plan(tmp_path, BAD_PLAN)
    with transaction(factory) as s, pytest.raises(PlanFileError) as info:
        load_plan(s, path, clock)
    problems = info.value.problems
    by_line: dict[int | None, list[str]] = {}
    for p in problems:
        assert p.source == str(path)
        by_line.setdefault(p.line, []).append(p.message)
    text = "\n".join(f"{p.line}: {p.message}" for p in problems)
    assert any("colour" in m for m in by_line.get(5, [])), text  # unknown key
    assert any("online_study" in m for m in by_line.get(9, [])), text  # bad start_stage
    assert any("9999999999" in m for m in by_line.get(11, [])), text  # unknown school
    assert any("2023-01-31" in m for m in by_line.get(13, [])), text  # after final deadline
    assert any("2021-05-01" in m for m in by_line.get(14, [])), text  # before the batch starts
    assert any("100%" in m for m in (p.message for p in problems)), text  # shares sum to 80 %
    assert len(problems) >= 6


def test_nothing_is_written_when_a_plan_is_refused(factory: sessionmaker[Session], clock: FixedClock,
                                                     tmp_path: Path) -> None:
    with transaction(factory) as s:
        seed(s, clock)
    with pytest.raises(PlanFileError), transaction(factory) as s:
        load_plan(s, write_plan(tmp_path, BAD_PLAN), clock)
    with transaction(factory) as s:
        assert _count(s, Plan) == _count(s, Batch) == _count(s, SchoolRun) == _count(s, AuditEvent) == 0


def test_shares_must_sum_to_100_percent(factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    data = plan_data()
    data["batches"][2]["share"] = 0.3
    with transaction(factory) as s:
        seed(s, clock)
        with pytest.raises(PlanFileError) as info:
            load_plan(s, write_plan(tmp_path, data), clock)
    assert any("90%" in p.message for p in info.value.problems)
    assert all(p.line is not None for p in info.value.problems)


def test_duplicate_plan_code_is_refused(factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    with transaction(factory) as s:
        seed(s, clock)
        load_plan(s, write_plan(tmp_path, plan_data()), clock)
    with pytest.raises(PlanFileError) as info, transaction(factory) as s:
        load_plan(s, write_plan(tmp_path, plan_data(), "again.yaml"), clock)
    assert "yiyuan-2021" in str(info.value)
    with transaction(factory) as s:
        assert _count(s, Plan) == 1 and _count(s, SchoolRun) == len(ALL_SCHOOLS)


def test_county_rule_and_region_limit(factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    data = plan_data(batches=[
        {"id": "c", "start": "2021-06-01", "share": 1.0, "schools": {"county": "370302"}},
    ])
    with transaction(factory) as s:
        seed(s, clock)
        load_plan(s, write_plan(tmp_path, data), clock)
        assert [r.school_code for r in s.scalars(select(SchoolRun))] == [OTHER]


def test_unknown_workflow_is_a_problem(factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    with transaction(factory) as s:
        seed(s, clock)
        with pytest.raises(PlanFileError) as info:
            load_plan(s, write_plan(tmp_path, plan_data(workflow="nope")), clock)
    assert (info.value.problems[0].line, info.value.problems[0].field) == (5, "workflow")  # after the 3-line title


def test_find_plan(factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    with transaction(factory) as s:
        with pytest.raises(NotFound):
            find_plan(s, None)
        seed(s, clock)
        load_plan(s, write_plan(tmp_path, plan_data()), clock)
        load_plan(s, write_plan(tmp_path, plan_data(plan="other", batches=[
            {"id": "x", "start": "2021-06-01", "schools": {"rest": True}}]), "p2.yaml"), clock)
        with pytest.raises(NotFound):
            find_plan(s, None)
        assert find_plan(s, "other").code == "other"
        with pytest.raises(NotFound):
            find_plan(s, "missing")


def test_a_batch_can_take_its_schools_from_a_csv_list(factory, clock, tmp_path) -> None:
    """Offices keep batch lists in Excel/CSV: ``schools: {file: list.csv}`` next to the plan."""
    from engine.db import transaction
    from engine.plan import load_plan
    from tests.engine.builders import EARLY, plan_data, seed, write_plan

    (tmp_path / "b2.csv").write_text("学校标识码,学校名称\n" + "".join(f"{c},x\n" for c in EARLY[:2]), encoding="gb18030")
    data = plan_data()
    data["batches"][1]["schools"] = {"file": "b2.csv"}
    with transaction(factory) as s:
        seed(s, clock)
        load_plan(s, write_plan(tmp_path, data), clock)
        from sqlalchemy import select

        from engine.models import Batch, SchoolRun

        codes = s.scalars(select(SchoolRun.school_code).join(Batch, Batch.id == SchoolRun.batch_id)
                          .where(Batch.code == "b2").order_by(SchoolRun.school_code)).all()
    assert codes == sorted(EARLY[:2])


def test_a_missing_school_list_file_is_reported(factory, clock, tmp_path) -> None:
    import pytest

    from engine.db import transaction
    from engine.errors import PlanFileError
    from engine.plan import load_plan
    from tests.engine.builders import plan_data, seed, write_plan

    data = plan_data()
    data["batches"][1]["schools"] = {"file": "nope.csv"}
    with transaction(factory) as s:
        seed(s, clock)
        with pytest.raises(PlanFileError, match="nope.csv"):
            load_plan(s, write_plan(tmp_path, data), clock)


def _problems_of(factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path, data: dict) -> list:
    with transaction(factory) as s:
        seed(s, clock)
    with pytest.raises(PlanFileError) as info, transaction(factory) as s:
        load_plan(s, write_plan(tmp_path, data), clock)
    with transaction(factory) as s:
        assert _count(s, Plan) == _count(s, SchoolRun) == 0  # refused whole
    return info.value.problems


def test_extension_cap_before_the_final_deadline_is_refused(factory: sessionmaker[Session], clock: FixedClock,
                                                            tmp_path: Path) -> None:
    """002: an extension ends by the cap (2021年12月31日前), which is *later* than the normal deadline;
    a cap before the final deadline would make every extension shorten the time instead."""
    problems = _problems_of(factory, clock, tmp_path, plan_data(final_deadline="2022-11-30", extension_cap="2022-11-29"))
    assert [(p.field, p.line) for p in problems] == [("extension_cap", 11)]  # the line of extension_cap in the file
    assert "延期上限早于最终截止日期" in problems[0].message


def test_a_school_in_two_batches_is_refused(factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    """One run per school per plan: a school listed in two batches would have two start dates."""
    data = plan_data()
    data["batches"][2]["schools"] = {"codes": [LATE[0], EARLY[0]]}
    data["batches"].append({"id": "b4", "start": "2021-10-01", "schools": {"rest": True}})
    problems = _problems_of(factory, clock, tmp_path, data)
    assert len(problems) == 1 and problems[0].field == "batches[2].schools.codes[1]"
    assert f"学校 {EARLY[0]} 已在批次 b2 中" in problems[0].message


def test_final_deadline_binds_only_the_stages_named(factory: sessionmaker[Session], clock: FixedClock,
                                                    tmp_path: Path) -> None:
    """Issue 14 bug 3: the final deadline cuts the named stages; the others keep their own rule."""
    from datetime import date

    from engine.status import school_detail
    with transaction(factory) as s:
        seed(s, clock)
        load_plan(s, write_plan(tmp_path, plan_data(final_deadline="2021-07-31", extension_cap="2021-12-31",
                                                    final_deadline_binds=["online_study"])), clock)
        assert plan_summary(s, find_plan(s, None))["final_deadline_binds"] == ["online_study"]
        # b2's planning deadline 2021-09-30 is after the final 07-31: allowed, planning is not bound
        assert school_detail(s, clock, EARLY[0])["due"]["date"] == date(2021, 9, 30)


def test_final_deadline_binds_problems(factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    with transaction(factory) as s:
        seed(s, clock)
    for binds, words in ((["planning", "nowhere"], "nowhere"), ("planning", "列表")):
        path = write_plan(tmp_path, plan_data(final_deadline_binds=binds))
        with transaction(factory) as s, pytest.raises(PlanFileError, match=words):
            load_plan(s, path, clock)
    # a bound stage's batch date past the final deadline is still a problem
    path = write_plan(tmp_path, plan_data(final_deadline="2021-08-31", final_deadline_binds=["planning"]))
    with transaction(factory) as s, pytest.raises(PlanFileError, match="2021-09-30"):
        load_plan(s, path, clock)


def test_a_schools_start_is_told_in_the_batchs_own_words(plan: sessionmaker[Session]) -> None:
    """The school page's history shows the start event's reason: an official reads 第一批, not b2."""
    with plan() as s:
        start = s.scalars(select(AuditEvent).where(AuditEvent.school_code == EARLY[0], AuditEvent.trigger == "start")).one()
        assert start.reason == "批次“第一批”于 2021-06-15 开始"
