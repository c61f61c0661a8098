"""P(miss the final deadline) for a chunk of runs at once (issue 11 speed).

A run's final deadline is missed when its current gates' days plus a Kaplan–Meier draw of every
later stage's stay exceed the working days left until it. The draws are the run's own, as
``durations.remaining_days`` makes them — ``samples`` uniforms from the run's generator per later
stage, looked up in the stage's cumulative distribution — but each run's uniforms for all its
later stages come from one call (the same stream: a generator's doubles fill an array in order)
and the look-ups and sums are one array per stage for every run of the chunk in that stage, not
~15 small numpy calls per run. The numbers are those of drawing stage by stage, run by run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import date

import numpy as np

from engine.calendar import WorkCalendar
from engine.forecast.durations import StageDurations
from engine.i18n import tr
from engine.workflow.model import Stage

Later = tuple[Stage, ...]


def final_misses(runs: Sequence[tuple[date, date, Later, np.ndarray, np.random.Generator]],
                 calendar: WorkCalendar, durations: Mapping[str, StageDurations],
                 samples: int) -> list[float | str]:
    """Per run (today, final deadline, later stages, ETA samples of its current gates, its
    generator, whose last use this is): P(miss the final deadline), or the reason there is none
    (a later stage fewer than three schools finished: nothing is drawn)."""
    out: list[float | str] = [0.0] * len(runs)
    groups: dict[Later, list[int]] = defaultdict(list)
    for i, (_, _, later, _, _) in enumerate(runs):
        groups[later].append(i)
    for later, members in groups.items():
        stays = [durations.get(stage.id, StageDurations(())) for stage in later]
        thin = next((s for s, stay in zip(later, stays, strict=True) if not stay.enough), None)
        if thin is not None:
            reason = tr(f"阶段“{thin.title.zh}”完成的学校不足 3 所", f"fewer than 3 schools finished '{thin.title.en}'")
            for i in members:
                out[i] = reason
            continue
        tables = [stay.remaining(0) for stay in stays]
        drawn = sum(table is not None for table in tables)
        # one call per run for all its stages: rows are the uniforms remaining_days draws stage by stage
        uniforms = np.stack([runs[i][4].random((drawn, samples)) for i in members]) if drawn else None
        total = np.stack([runs[i][3] for i in members])  # a copy: the runs' ETA samples stay as they are
        row = 0
        for table in tables:
            if table is None:  # nothing seen predicts the stay: inf, no draw (remaining_days)
                total = total + np.full(samples, np.inf)
                continue
            outcomes, cdf = table
            assert uniforms is not None
            total = total + np.asarray(outcomes[cdf.searchsorted(uniforms[:, row], side="right")], dtype=np.float64)
            row += 1
        left = np.array([calendar.working_days_between(runs[i][0], runs[i][1]) for i in members])
        counts = np.count_nonzero(total > left[:, None], axis=1)
        for i, count in zip(members, counts.tolist(), strict=True):
            out[i] = count / samples
    return out
