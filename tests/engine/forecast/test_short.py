"""The approximate method draws only for teachers still short (``engine.forecast.short``): the
gate's day from the short ones equals the k-th crossing over every teacher, teachers past a
condition cost no draw, and a school's numbers do not depend on its neighbours'."""

from __future__ import annotations

import numpy as np

from engine.forecast.batch import Crossing, group_eta
from engine.forecast.pace import TeacherHistory
from engine.forecast.short import short_crossing, short_eta
from engine.workflow import WORKFLOWS_DIR, load_workflow_file

WF = load_workflow_file(WORKFLOWS_DIR / "whole-school-2.0.yaml")
ONLINE = WF.metrics["online_25h_share"]
DAYS = np.array([-10, -5, 0])


def school(online: list[list[float]]) -> TeacherHistory:
    values = np.array(online, dtype=float)
    zeros = np.zeros_like(values)
    return TeacherHistory(tuple(f"T{i}" for i in range(len(online))), DAYS,
                          {"online_hours": values, "practice_hours": zeros, "points_count": zeros + 3,
                           "evidence_count": zeros})


def test_the_gate_day_from_short_teachers_is_the_kth_crossing_of_all() -> None:
    rng = np.random.default_rng(5)
    teachers, samples = 8, 50
    found, dense = [], []
    for short in (0, 1, 3, 8):
        who = np.sort(rng.choice(teachers, short, replace=False))
        days = rng.integers(1, 40, (samples, short)).astype(float)
        days[rng.random(days.shape) < 0.1] = np.inf  # some never cross
        full = np.zeros((samples, teachers))
        full[:, who] = days
        found.append(Crossing(days, np.zeros(teachers), ("",) * teachers, np.zeros(teachers), 0, True, True, who))
        dense.append(full)
    for needed in (0, 1, 5, 6, 8, 9):
        np.testing.assert_array_equal(short_eta(found, needed, teachers, samples), group_eta(np.stack(dense), needed))


def test_teachers_past_the_condition_draw_nothing_and_cross_on_day_zero() -> None:
    done = school([[20, 25, 30], [10, 20, 26]])  # both past 25 h
    rng = np.random.default_rng(1)
    before = rng.bit_generator.state
    [crossing] = short_crossing(ONLINE, [done], 100, [rng], prior_days=10)
    assert rng.bit_generator.state == before  # no draw
    assert crossing.who is not None and crossing.who.size == 0 and crossing.days.shape == (100, 0)
    assert short_eta([crossing], 2, 2, 100).max() == 0.0


def test_a_schools_draws_are_its_own() -> None:
    """Alone or beside a school with more short teachers, a school gets the same days."""
    mine = school([[5, 10, 15], [20, 25, 30], [0, 2, 4]])
    other = school([[1, 2, 3], [1, 2, 3], [1, 1, 1]])
    [alone] = short_crossing(ONLINE, [mine], 200, [np.random.default_rng([0, 7])], prior_days=10)
    _, beside = short_crossing(ONLINE, [other, mine], 200, [np.random.default_rng([0, 8]), np.random.default_rng([0, 7])],
                               prior_days=10)
    assert alone.who is not None and list(alone.who) == [0, 2]  # T1 has its 25 h
    np.testing.assert_array_equal(alone.days, beside.days)
    assert alone.shortfall.tolist() == [10.0, 0.0, 21.0] and alone.field == ("online_hours", "", "online_hours")
