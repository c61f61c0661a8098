"""P(miss the final deadline) for a chunk at once (``engine.forecast.final``) is what drawing each
run's later stages one by one with ``remaining_days`` gives, and the guide-table look-up is
``searchsorted`` exactly — on the cumulative distribution's own values and the buckets' edges too."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from engine.calendar import WorkCalendar
from engine.forecast.durations import StageDurations, remaining_days
from engine.forecast.final import GUIDE, final_misses, looked_up
from engine.forecast.school import next_stages
from tests.engine.builders import shipped_workflow

WF = shipped_workflow()
PLAIN = WorkCalendar({}, set())
TODAY = date(2022, 3, 1)


@pytest.mark.parametrize("finished", [(4, 9, 12), tuple(range(1, 400)), (20, 20, 21, 60, 61, 62, 79)])
def test_the_guide_table_finds_what_searchsorted_finds(finished: tuple[int, ...]) -> None:
    table = StageDurations(finished, (3, 30)).remaining(0)
    assert table is not None
    cdf = table[1]
    edges = np.arange(GUIDE + 1) / GUIDE
    tricky = np.concatenate([cdf, np.nextafter(cdf, 0), np.nextafter(cdf, 1), edges, np.nextafter(edges, 0)])
    u = np.concatenate([tricky[(tricky >= 0) & (tricky < 1)], np.random.default_rng(3).random(50_000)])
    np.testing.assert_array_equal(looked_up(cdf, u), cdf.searchsorted(u, side="right"))


def old_final(eta: np.ndarray, stage: str, final: date, durations: dict, rng: np.random.Generator) -> float | None:
    """The per-run computation final_misses replaced: stage by stage, one remaining_days each."""
    total = eta.copy()
    for later in next_stages(WF, stage):
        stay = durations.get(later.id, StageDurations(()))
        if not stay.enough:
            return None
        total = total + remaining_days(stay, 0, eta.size, rng)
    return float(np.count_nonzero(total > PLAIN.working_days_between(TODAY, final)) / total.size)


@pytest.mark.parametrize("supervision", [StageDurations((10, 30, 50), (5,)), StageDurations((0, 0, 0))])
def test_a_chunk_at_once_is_each_run_drawn_alone(supervision: StageDurations) -> None:
    """Runs of two stages, two deadlines; a stay nothing predicts (all finished at 0) draws nothing."""
    durations = {s.id: StageDurations((5, 10, 20, 40), (8,)) for s in WF.stages} | {"supervision": supervision}
    stages = ["online_study", "practice", "online_study", "assessment", "practice"]
    finals = [date(2022, 6, 30), date(2022, 9, 30), date(2022, 9, 30), date(2022, 4, 15), date(2022, 6, 30)]
    etas = [np.random.default_rng(i).integers(0, 60, 300).astype(float) for i in range(len(stages))]
    later = {s: next_stages(WF, s) for s in set(stages)}
    runs = [(TODAY, f, s, e, np.random.default_rng([0, i])) for i, (s, f, e) in enumerate(zip(stages, finals, etas, strict=True))]
    got = final_misses(runs, later, PLAIN, durations, 300)
    expected = [old_final(e, s, f, durations, np.random.default_rng([0, i]))
                for i, (s, f, e) in enumerate(zip(stages, finals, etas, strict=True))]
    assert got == expected
    if supervision.finished == (0, 0, 0):
        assert got == [1.0] * len(runs)  # every stage's way ends in supervision: never within what was seen
    else:
        assert len(set(got)) > 2  # the runs differ: the check is not of constants


def test_a_later_stage_too_few_finished_gives_a_reason_not_a_number() -> None:
    durations = {s.id: StageDurations((5, 10, 20, 40)) for s in WF.stages} | {"assessment": StageDurations((4, 9))}
    rng = np.random.default_rng(1)
    before = rng.bit_generator.state
    [reason] = final_misses([(TODAY, date(2022, 9, 30), "online_study", np.zeros(100), rng)],
                            {"online_study": next_stages(WF, "online_study")}, PLAIN, durations, 100)
    assert isinstance(reason, str) and "3" in reason
    assert rng.bit_generator.state == before  # nothing drawn
