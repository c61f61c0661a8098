"""The forecast's inputs read from a real database (both): each run's ``RunInput`` is made when
it is read — a province's in the workers that forecast them — from its own school's history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy.orm import Session, sessionmaker

from engine.calendar import load_calendar
from engine.clock import FixedClock
from engine.deadline import local_date
from engine.forecast.data import EMPTY, RunInputs, open_runs, run_inputs
from engine.forecast.school import WINDOW
from engine.forecast.sums import Schools
from engine.plan import find_plan
from engine.workflow.versions import workflow_for_version
from tests.engine.builders import EARLY
from tests.engine.forecast.scenario import studying_school


class Spy(dict[str, Any]):
    """A school → history mapping that records which schools were read."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.read: list[str] = []

    def get(self, key: str, default: Any = None) -> Any:
        self.read.append(key)
        return super().get(key, default)


def test_each_runs_input_is_made_when_read_from_its_own_schools_history(
        factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    studying = studying_school(factory, clock, tmp_path)
    with studying() as s:
        plan = find_plan(s, None)
        wf = workflow_for_version(s, plan.workflow_version_id)
        calendar = load_calendar(s)
        today = local_date(clock.now(), plan.timezone)
        runs = open_runs(s, plan, wf, clock.now())
        inputs = run_inputs(s, plan, wf, runs, today, calendar, WINDOW)
        final = plan.final_deadline
    assert len(runs) >= 2 and len(inputs) == len(runs)
    made = inputs[0]
    studied = next(i for i, r in enumerate(runs) if r.school_code == EARLY[0])
    assert made.run_id == runs[0].run_id and made.final == final and made.today == today
    assert inputs[studied].history.teachers == 10  # the scenario's ten teachers, read from its exports
    assert [r.run_id for r in inputs[1:]] == [r.run_id for r in runs[1:]]

    histories = Spy({EARLY[0]: inputs[studied].history})
    values: dict[int, dict[str, float | None]] = {r.run_id: {} for r in runs}
    lazy = RunInputs(runs, today, final, calendar, histories, values, {})
    assert histories.read == []  # nothing made yet
    part = lazy[studied:studied + 1]
    assert histories.read == [EARLY[0]] and part[0].history is histories[EARLY[0]]
    other = next(i for i, r in enumerate(runs) if r.school_code != EARLY[0])
    assert lazy[other].history is EMPTY  # a school without teachers: none, not another's
    assert lazy[-1].run_id == runs[-1].run_id
    with pytest.raises(IndexError):
        lazy[len(runs)]


def test_a_schools_sums_are_its_own_rows_of_the_provinces_arrays() -> None:
    ids = np.array([11, 12, 21, 22, 23], dtype=np.int64)
    latest = {"online_hours": np.array([1.0, 2.0, 3.0, 4.0, 5.0])}
    totals = {"online_hours": (np.arange(5.0), np.arange(5.0) * 2, np.full(5, 7.0))}
    days = np.array([-10, 0])
    schools = Schools(ids, days, latest, totals, [("A", 2), ("B", 3)])
    assert list(schools) == ["A", "B"] and len(schools) == 2 and "B" in schools and "C" not in schools
    b = schools["B"]
    assert b.teacher_ids.tolist() == [21, 22, 23] and b.current("online_hours").tolist() == [3.0, 4.0, 5.0]
    assert [v.tolist() for v in b.sums("online_hours")] == [[2.0, 3.0, 4.0], [4.0, 6.0, 8.0], [7.0] * 3]
    assert schools["A"].teacher_ids.tolist() == [11, 12] and schools.get("C") is None
