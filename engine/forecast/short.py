"""The approximate method's crossings, drawn only for the teachers still short (issue 11 speed).

A teacher who already meets a condition crosses it on day 0 in every sample, whatever its pace:
drawing its pace is work without effect. In a province most teachers are past most conditions
(the benchmark's: 94 % of teachers have their 25 online hours), so here each school draws one
lognormal pace per sample for each teacher short of each condition (``pace.moments_from_sums``)
and nothing for the others, and a school's gate passes on the day its ``needed − already``-th
short teacher crosses (``short_eta``). The draws come from the school's own generator in a fixed
order (condition by condition, its short teachers in order), so a school's numbers depend on its
own data and seed only. A teacher without a pace of its own takes, per sample, a random
school-mate's moments (the bootstrap path lends the school-mate's drawn pace instead: the same
distribution per teacher, without the two being equal in a sample).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.forecast.batch import Crossing, Tracked
from engine.forecast.pace import (
    NEVER,
    Floats,
    TeacherHistory,
    TeacherSums,
    moments_from_sums,
)
from engine.workflow.model import Metric


def short_crossing(metric: Metric, histories: Sequence[TeacherHistory | TeacherSums], samples: int,
                   rngs: Sequence[np.random.Generator], prior_days: float = 0.0) -> list[Crossing]:
    """``batch.group_crossing`` for the approximate method: ``Crossing.days`` holds only the
    columns of ``Crossing.who`` (the teachers short of some condition); the others cross on day 0."""
    g, n = len(histories), histories[0].teachers
    t = Tracked(g, n)
    waits: list[dict[int, Floats]] = [{} for _ in range(g)]  # per school: short teacher → days per sample
    for c, cond, short, act, each in t.shorts(metric, histories, histories[0].days):
        gained, squares, observed = (np.stack(x) for x in zip(*(histories[i].sums(cond.field) for i in each),
                                                              strict=True))
        mean, sigma2 = moments_from_sums(gained, squares, observed, prior_days)
        sigma = np.sqrt(sigma2)
        t.paced[act] &= (observed > 0).any(axis=-1)
        t.borrowed[act] = np.maximum(t.borrowed[act], np.count_nonzero(observed <= 0, axis=-1))
        with np.errstate(divide="ignore", invalid="ignore"):  # once a group: ~10 µs each, 4,000 a chunk in _draw
            for j, i in enumerate(each):
                _draw(waits[i], short[i], mean[j], sigma[j], observed[j], samples, rngs[i])
            own = np.where(observed > 0, gained / observed, np.nan)
        t.note(c, act, short, own)
    out = []
    for i in range(g):
        order = sorted(waits[i])
        days = np.stack([waits[i][k] for k in order], axis=1) if order else np.zeros((samples, 0))
        out.append(t.crossing(metric, i, days, np.array(order, dtype=np.int64)))
    return out


def _draw(waits: dict[int, Floats], short: Floats, mean: Floats, sigma: Floats, observed: Floats, samples: int,
          rng: np.random.Generator) -> None:
    """One school, one condition: days until each short teacher meets it, folded into ``waits``
    (a teacher's days for a metric are the latest of its conditions')."""
    idx = np.flatnonzero(short > 0)
    z = rng.standard_normal((samples, idx.size))
    mu: Floats = mean[idx]  # one row, broadcast over the samples (copied per sample only when lent)
    sd: Floats = sigma[idx]
    lacking = observed[idx] <= 0
    if lacking.any():  # no pace of its own: a random school-mate's, per sample
        mu, sd = np.broadcast_to(mu, z.shape).copy(), np.broadcast_to(sd, z.shape).copy()
        have = np.flatnonzero(observed > 0)
        if have.size:
            picks = have[rng.integers(0, have.size, size=(samples, int(lacking.sum())))]
            mu[:, lacking], sd[:, lacking] = mean[picks], sigma[picks]
        else:
            mu[:, lacking] = np.nan
    paces = mu * np.exp(sd * z - sd * sd / 2)
    wait = np.ceil(short[idx][None, :] / paces)  # (errors ignored by the caller)
    wait = np.where(np.isnan(wait) | (paces <= 0), NEVER, wait)
    for k, t in enumerate(idx.tolist()):
        waits[t] = np.maximum(waits[t], wait[:, k]) if t in waits else wait[:, k]


def short_eta(found: Sequence[Crossing], needed: int, teachers: int, samples: int) -> Floats:
    """Per school and sample, the working day its ``needed``-th teacher crosses, from crossings
    that list only the short teachers (the others crossed on day 0)."""
    g = len(found)
    if needed <= 0:
        return np.zeros((g, samples))
    if needed > teachers:
        return np.full((g, samples), NEVER)
    width = max((c.days.shape[1] for c in found), default=0)
    padded = np.full((g, samples, max(width, 1)), NEVER)
    for i, c in enumerate(found):
        padded[i, :, :c.days.shape[1]] = c.days
    rank = needed - (teachers - np.array([c.days.shape[1] for c in found]))  # among the short ones
    ordered = np.sort(padded, axis=-1)
    at = np.clip(rank - 1, 0, padded.shape[-1] - 1)
    eta = np.take_along_axis(ordered, np.broadcast_to(at[:, None, None], (g, samples, 1)), axis=-1)[..., 0]
    eta = np.where((rank <= 0)[:, None], 0.0, eta)
    return np.where((rank > width)[:, None], NEVER, eta)
