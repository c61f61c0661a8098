"""The database's state bound to its audit trail (issue 12, Medium 3).

As the documented application role, ``UPDATE school_run SET state='done'`` with no event passed
``audit verify`` while ``school show`` said 完成, and an event appended with a time before the
chain's first passed too. Each tampering below is one an application role can do (it may UPDATE
every table but ``audit_event``, and INSERT into that one).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, delete, insert, text, update
from sqlalchemy.orm import Session, sessionmaker

from cli.main import main
from engine.audit import append_event, run_chain
from engine.clock import FixedClock
from engine.db import transaction
from engine.facts import set_fact
from engine.models import Plan, RunDeadline, SchoolFact, SchoolRun
from engine.projection import verify_state
from engine.runs import fire
from tests.conftest import SHANGHAI
from tests.engine.builders import (
    COUNTY,
    COUNTY_OFFICER,
    EARLY,
    PILOT,
    add_school,
    run_of,
    seed_with_plan,
)

SCHOOL = EARLY[0]


@pytest.fixture
def worked(factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> sessionmaker[Session]:
    """A plan with a school that has had facts, an extension, a return, a suspension and a resume."""
    with transaction(factory) as s:
        seed_with_plan(s, clock, tmp_path)
    steps = [
        lambda s: set_fact(s, clock, school_code=SCHOOL, name="plan_filed", value=1, actor=COUNTY_OFFICER, note="已备案"),
        lambda s: set_fact(s, clock, school_code=SCHOOL, name="team_members", value=4, actor=COUNTY_OFFICER),
        lambda s: fire(s, clock, school_code=SCHOOL, trigger="extend", actor=COUNTY_OFFICER, reason="汛期停课",
                       due=date(2021, 10, 31)),
        lambda s: fire(s, clock, school_code=SCHOOL, trigger="advance", actor=COUNTY_OFFICER),
        lambda s: fire(s, clock, school_code=SCHOOL, trigger="suspend", actor=COUNTY_OFFICER, reason="学校合并"),
        lambda s: fire(s, clock, school_code=SCHOOL, trigger="resume", actor=COUNTY_OFFICER, reason="合并完成"),
        lambda s: fire(s, clock, school_code=PILOT, trigger="suspend", actor=COUNTY_OFFICER, reason="停课"),
    ]
    for step in steps:
        clock.advance(timedelta(hours=1))
        with transaction(factory) as s:
            step(s)
    return factory


def _report(factory: sessionmaker[Session]) -> list[tuple[str, str | None, str]]:
    with transaction(factory) as s:
        report = verify_state(s)
    return [(p.kind, p.school_code, p.message) for p in report.problems]


def _tamper(db: Engine, sql: str, **params: object) -> None:
    with db.begin() as conn:
        conn.execute(text(sql), params)


def test_untouched_state_agrees_with_its_events(worked: sessionmaker[Session]) -> None:
    with transaction(worked) as s:
        report = verify_state(s)
        run = run_of(s, SCHOOL)
    assert report.ok and report.runs == 6 and report.plans == 1, report.problems
    assert run.state == "online_study"  # what the replay had to agree with


def test_state_set_without_an_event(worked: sessionmaker[Session], db: Engine) -> None:
    _tamper(db, "UPDATE school_run SET state = 'done' WHERE school_code = :c", c=SCHOOL)
    problems = _report(worked)
    # The stage moved behind the engine's back, so the dashboard's county counts no longer add up either.
    assert [(k, c) for k, c, _ in problems] == [("state", SCHOOL), ("tally", None)]
    assert "done" in problems[0][2] and "online_study" in problems[0][2]
    assert COUNTY in problems[1][2]


def test_suspended_from_changed(worked: sessionmaker[Session], db: Engine) -> None:
    _tamper(db, "UPDATE school_run SET previous_state = 'assessment' WHERE school_code = :c", c=PILOT)
    assert [(k, c) for k, c, _ in _report(worked)] == [("state", PILOT)]


def test_stage_entry_moved(worked: sessionmaker[Session], factory: sessionmaker[Session]) -> None:
    with transaction(factory) as s:  # as an application would: through an ordinary UPDATE
        s.execute(update(SchoolRun).where(SchoolRun.school_code == SCHOOL)
                  .values(stage_entered_at=datetime(2021, 6, 1, tzinfo=SHANGHAI)).execution_options(synchronize_session=False))
    assert [(k, c) for k, c, _ in _report(worked)] == [("stage_entry", SCHOOL)]


def test_deadline_changed_added_or_removed(worked: sessionmaker[Session], factory: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(factory) as s:
        s.execute(update(RunDeadline).values(due=date(2022, 12, 31)))
    assert [(k, c) for k, c, _ in _report(worked)] == [("deadline", SCHOOL)]
    with transaction(factory) as s:
        s.execute(delete(RunDeadline))
        s.execute(insert(RunDeadline).values(run_id=run_of(s, PILOT).id, stage="pilot", due=date(2022, 6, 30),
                                             kind="extension", reason="x", created_at=clock.now(), created_by="someone"))
    assert sorted((k, c) for k, c, _ in _report(worked)) == sorted([("deadline", SCHOOL), ("deadline", PILOT)])


def test_fact_changed_or_invented(worked: sessionmaker[Session], factory: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(factory) as s:
        s.execute(update(SchoolFact).where(SchoolFact.name == "team_members").values(value=9))
    problems = _report(worked)
    assert [(k, c) for k, c, _ in problems] == [("fact", SCHOOL)] and "team_members" in problems[0][2]
    with transaction(factory) as s:
        s.execute(update(SchoolFact).where(SchoolFact.name == "team_members").values(value=4))
        s.execute(insert(SchoolFact).values(run_id=run_of(s, PILOT).id, name="supervision_result", value=1, note=None,
                                            recorded_at=clock.now(), recorded_by="督导"))
    assert [(k, c) for k, c, _ in _report(worked)] == [("fact", PILOT)]


def test_event_dated_before_the_chain_began(worked: sessionmaker[Session], factory: sessionmaker[Session]) -> None:
    """Appending is allowed to the application role; the hashes of such an event are all valid."""
    with transaction(factory) as s:
        run = run_of(s, PILOT)
        append_event(s, chain=run_chain(run.id), at=datetime(2020, 1, 1, tzinfo=SHANGHAI), actor="x", role="county_office",
                     trigger="extension_request", plan_id=run.plan_id, run_id=run.id, school_code=PILOT,
                     from_state=run.state, to_state=run.state, reason="补记", gates=[{"stage": run.state, "due": "2022-01-01"}])
    problems = _report(worked)
    assert [(k, c) for k, c, _ in problems] == [("time", PILOT)] and "2019-12-31T16:00:00Z" in problems[0][2]


def test_plan_file_swapped(worked: sessionmaker[Session], factory: sessionmaker[Session]) -> None:
    with transaction(factory) as s:
        s.execute(update(Plan).values(source=Plan.source + "\n# edited"))
    assert [(k, c) for k, c, _ in _report(worked)] == [("plan", None)]


def test_run_inserted_without_events(worked: sessionmaker[Session], factory: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(factory) as s:
        add_school(s, "3703230099")
        model = run_of(s, PILOT)
        s.execute(insert(SchoolRun).values(plan_id=model.plan_id, school_code="3703230099", batch_id=model.batch_id,
                                           workflow_version_id=model.workflow_version_id, state="done",
                                           stage_entered_at=clock.now(), started_at=clock.now(), updated_at=clock.now(), version=1))
    assert [(k, c) for k, c, _ in _report(worked)] == [("unchained", "3703230099"), ("tally", None)]


def test_audit_verify_names_the_first_disagreement(worked: sessionmaker[Session], db: Engine, db_url: str) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["--db", db_url, "audit", "verify"]).exit_code == 0
    _tamper(db, "UPDATE school_run SET state = 'done' WHERE school_code = :c", c=SCHOOL)
    result = runner.invoke(main, ["--db", db_url, "audit", "verify"])
    assert result.exit_code == 1
    assert f"学校 {SCHOOL}" in result.output and "done" in result.output and "未通过" in result.output
