"""engine.school_state: one state per school, in a fixed precedence, and the SQL form agreeing
with the plain function on every combination of its inputs."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update

from engine.clock import FixedClock
from engine.db import sessions, transaction
from engine.models import SchoolRun
from engine.school_state import (
    DONE,
    DUE_SOON,
    IN_PROGRESS,
    NOT_STARTED,
    OVERDUE,
    READY,
    STATES,
    SUSPENDED,
    run_state,
    school_state,
    stage_horizon,
    state_case,
)
from engine.workflow.versions import workflow_for_version
from tests.engine.builders import seed_with_plan, shipped_workflow

TODAY = date(2022, 8, 31)


def state(**kw: object) -> str:
    args: dict[str, object] = {"terminal": False, "hold": False, "started": True, "blocked": True,
                               "due": TODAY + timedelta(days=91), "today": TODAY, "horizon": 14}
    args.update(kw)
    return school_state(**args)  # type: ignore[arg-type]


def test_waiting_for_supervision_with_91_days_left_is_in_progress_not_blocked() -> None:
    """The issue's case: 91 schools in supervision, gates not met, due 2022-11-30."""
    assert state() == IN_PROGRESS


@pytest.mark.parametrize(("kw", "expected"), [
    ({"terminal": True, "due": TODAY - timedelta(days=3)}, DONE),
    ({"hold": True, "due": TODAY - timedelta(days=3)}, SUSPENDED),
    ({"started": False, "due": TODAY - timedelta(days=3)}, NOT_STARTED),
    ({"due": TODAY - timedelta(days=1)}, OVERDUE),
    ({"due": TODAY - timedelta(days=1), "blocked": False}, OVERDUE),  # late even when gates now pass
    ({"due": TODAY}, DUE_SOON),  # due today is not overdue yet
    ({"blocked": False}, READY),
    ({"blocked": False, "due": TODAY + timedelta(days=2)}, READY),
    ({"due": TODAY + timedelta(days=14)}, DUE_SOON),  # the horizon's last day
    ({"due": TODAY + timedelta(days=15)}, IN_PROGRESS),
    ({"due": None}, IN_PROGRESS),
    ({"due": TODAY + timedelta(days=1), "horizon": 0}, IN_PROGRESS),
])
def test_precedence(kw: dict[str, object], expected: str) -> None:
    assert state(**kw) == expected


def test_horizon_is_the_earliest_reminder() -> None:
    wf = shipped_workflow()
    assert stage_horizon(wf.stage("practice")) == 14  # remind.before_days [14, 3]
    assert stage_horizon(wf.stage("done")) == 0


def test_sql_case_agrees_with_the_function_on_every_combination(db: Engine, tmp_path: Path) -> None:
    """Each run is set to one combination of stage, started, blocked and due date; the CASE the
    lists and the overview count with must give the same state as ``run_state``."""
    clock = FixedClock(datetime(2022, 8, 31, 4, tzinfo=UTC))
    factory = sessions(db)
    stages = ["practice", "supervision", "done", "suspended"]
    dues = [None, TODAY - timedelta(days=1), TODAY, TODAY + timedelta(days=14), TODAY + timedelta(days=15)]
    combos = list(itertools.product(stages, [True, False], [True, False], dues))
    with transaction(factory) as s:
        seed_with_plan(s, clock, tmp_path)
        ids = list(s.scalars(select(SchoolRun.id).order_by(SchoolRun.id)))
    now = clock.now()
    with transaction(factory) as s:
        wf = workflow_for_version(s, s.scalar(select(SchoolRun.workflow_version_id).limit(1)))
        seen: set[str] = set()
        for i in range(0, len(combos), len(ids)):
            for run_id, (stage, started, blocked, due) in zip(ids, combos[i:i + len(ids)], strict=False):
                s.execute(update(SchoolRun).where(SchoolRun.id == run_id).values(
                    state=stage, blocked=blocked, due_date=due,
                    started_at=now - timedelta(days=1) if started else now + timedelta(days=1)))
            s.flush()
            got = dict(s.execute(select(SchoolRun.id, state_case(wf, now, TODAY))).all())
            for run_id, (stage, started, blocked, due) in zip(ids, combos[i:i + len(ids)], strict=False):
                expected = run_state(wf, stage, started=started, blocked=blocked, due=due, today=TODAY)
                assert got[run_id] == expected, (stage, started, blocked, due)
                seen.add(expected)
    assert seen == set(STATES)  # the grid reaches every state
