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

from collections import OrderedDict, defaultdict
from collections.abc import Mapping, Sequence
from datetime import date

import numpy as np

from engine.calendar import WorkCalendar
from engine.forecast.durations import StageDurations
from engine.i18n import tr
from engine.workflow.model import Stage

BLOCK = 128  # runs summed at a time: their arrays (~0.5 MB each) stay in the cache
GUIDE = 1 << 14  # buckets of the unit interval in ``looked_up``'s guide table (~80 KB each)
GUIDES = 32  # guide tables remembered (a server's days and plans), the oldest forgotten first


def final_misses(runs: Sequence[tuple[date, date, str, np.ndarray, np.random.Generator]],
                 later_stages: Mapping[str, Sequence[Stage]], calendar: WorkCalendar,
                 durations: Mapping[str, StageDurations], samples: int) -> list[float | str]:
    """Per run (today, final deadline, its stage, ETA samples of its current gates, its
    generator, whose last use this is): P(miss the final deadline), or the reason there is none
    (a later stage fewer than three schools finished: nothing is drawn). ``later_stages``: each
    stage's later stages (``school.next_stages``)."""
    out: list[float | str] = [0.0] * len(runs)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, run in enumerate(runs):
        groups[run[2]].append(i)
    for stage_id, members in groups.items():
        later = later_stages[stage_id]
        stays = [durations.get(stage.id, StageDurations(())) for stage in later]
        thin = next((s for s, stay in zip(later, stays, strict=True) if not stay.enough), None)
        if thin is not None:
            reason = tr(f"阶段“{thin.title.zh}”完成的学校不足 3 所", f"fewer than 3 schools finished '{thin.title.en}'")
            for i in members:
                out[i] = reason
            continue
        tables = [stay.remaining(0) for stay in stays]
        drawn = sum(table is not None for table in tables)
        for start in range(0, len(members), BLOCK):
            block = members[start:start + BLOCK]
            counts = _late(block, runs, tables, drawn, calendar, samples)
            for i, count in zip(block, counts, strict=True):
                out[i] = count / samples
    return out


def _late(block: Sequence[int], runs: Sequence[tuple[date, date, str, np.ndarray, np.random.Generator]],
          tables: Sequence[tuple[np.ndarray, np.ndarray] | None], drawn: int, calendar: WorkCalendar,
          samples: int) -> list[int]:
    """For runs of one stage: how many of each one's samples end after its final deadline."""
    # one call per run for all its stages: rows are the uniforms remaining_days draws stage by stage
    uniforms = np.stack([runs[i][4].random((drawn, samples)) for i in block]) if drawn else None
    total = np.stack([runs[i][3] for i in block])  # a copy: the runs' ETA samples stay as they are
    row = 0
    for table in tables:
        if table is None:  # nothing seen predicts the stay: inf, no draw (remaining_days)
            total = total + np.full(samples, np.inf)
            continue
        outcomes, cdf = table
        assert uniforms is not None
        total = total + np.asarray(outcomes[looked_up(cdf, uniforms[:, row])], dtype=np.float64)
        row += 1
    left = np.array([calendar.working_days_between(runs[i][0], runs[i][1]) for i in block])
    counts: list[int] = np.count_nonzero(total > left[:, None], axis=1).tolist()
    return counts


def looked_up(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``cdf.searchsorted(u, side="right")``, exactly, at a fraction of its cost on a province's
    uniforms (a binary search per random key mispredicts its branches): a guide table (Chen and
    Asau 1974) gives the answer of every bucket of ``GUIDE`` the cumulative distribution does not
    step inside; only the uniforms in the few buckets it does are searched."""
    key = tuple(cdf.tolist())
    guide = _GUIDES.get(key)
    if guide is None:
        edges = np.arange(GUIDE + 1, dtype=np.float64) / GUIDE  # exact: GUIDE is a power of two
        low, high = cdf.searchsorted(edges[:-1], side="right"), cdf.searchsorted(edges[1:], side="left")
        guide = _GUIDES[key] = (low.astype(np.int32), low != high)
        while len(_GUIDES) > GUIDES:
            _GUIDES.popitem(last=False)  # one C call: safe beside another thread's forecast
    low, split = guide
    bucket = (u * GUIDE).astype(np.int64)  # u < 1: floor(u · 2^14) exactly, the bucket [b/2^14, (b+1)/2^14)
    found = low[bucket].astype(np.intp)
    unsure = split[bucket]
    if unsure.any():
        found[unsure] = cdf.searchsorted(u[unsure], side="right")
    return found


_GUIDES: OrderedDict[tuple[float, ...], tuple[np.ndarray, np.ndarray]] = OrderedDict()
