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

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

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
    columns of ``Crossing.who`` (the teachers short of some condition); the others cross on day 0.

    Each school's draws are one call to its generator per condition (and one more when a teacher
    borrows); the arithmetic on them is one array for the group: the short (school, teacher)
    pairs are the columns of one samples × pairs array, school by school, a school's teachers in
    order — each school's ``days`` is a slice of it."""
    g, n = len(histories), histories[0].teachers
    t = Tracked(g, n)
    conditions = list(t.shorts(metric, histories, histories[0].days))
    short_of = np.zeros((g, n), dtype=bool)  # short of some condition: a column of the group's days
    for _, _, short, act, _ in conditions:
        short_of[act] |= short[act] > 0
    column = np.full((g, n), -1)
    column[short_of] = np.arange(int(short_of.sum()))
    days = np.zeros((int(short_of.sum()), samples))  # pairs × samples, 0 until a wait: waits are ≥ 0
    for c, cond, short, act, each in conditions:
        gained, squares, observed = (np.stack(x) for x in zip(*(histories[i].sums(cond.field) for i in each),
                                                              strict=True))
        mean, sigma2 = moments_from_sums(gained, squares, observed, prior_days)
        t.paced[act] &= (observed > 0).any(axis=-1)
        t.borrowed[act] = np.maximum(t.borrowed[act], np.count_nonzero(observed <= 0, axis=-1))
        sigma = np.sqrt(sigma2)
        mine, columns = short[act], column[act]
        with np.errstate(divide="ignore", invalid="ignore"):
            for rows in _slices(mine > 0):  # a few hundred pairs at a time: arrays in the cache
                wait, where = _waits(mine[rows], mean[rows], sigma[rows], observed[rows], samples,
                                     [rngs[each[j]] for j in range(rows.start, rows.stop)])
                at = columns[rows][where]
                days[at] = np.maximum(days[at], wait)
            own = np.where(observed > 0, gained / observed, np.nan)
        t.note(c, act, short, own)
    counts = short_of.sum(axis=1)
    ends = np.cumsum(counts).tolist()
    return [t.crossing(metric, i, days[end - k:end].T, np.flatnonzero(short_of[i]))
            for i, (k, end) in enumerate(zip(counts.tolist(), ends, strict=True))]


PAIRS = 256  # short (school, teacher) pairs drawn for at a time: samples × 256 floats (1 MB at 500)


def _slices(short: NDArray[np.bool_]) -> list[slice]:
    """Consecutive rows (schools) with at most ``PAIRS`` short pairs together (one school alone if more)."""
    out, start, pairs = [], 0, 0
    for j, k in enumerate(short.sum(axis=1).tolist()):
        if pairs and pairs + k > PAIRS:
            out.append(slice(start, j))
            start, pairs = j, 0
        pairs += k
    out.append(slice(start, short.shape[0]))
    return out


def _waits(short: Floats, mean: Floats, sigma: Floats, observed: Floats, samples: int,
           rngs: Sequence[np.random.Generator]) -> tuple[Floats, NDArray[np.bool_]]:
    """One condition, the schools with a short teacher (rows): days until each short teacher
    meets it, short pairs (row by row, teachers in order) × samples, and which those are. Each
    school draws a normal per sample and short teacher, then — when some short teacher has no
    pace of its own — a random school-mate per sample for each of those, whose moments it takes."""
    where = short > 0
    lacking = where & (observed <= 0)
    z, lent = [], []
    for j, rng in enumerate(rngs):
        z.append(rng.standard_normal((samples, int(where[j].sum()))).T)  # drawn sample by sample
        if lacking[j].any():
            have = np.flatnonzero(observed[j] > 0)
            picks = have[rng.integers(0, have.size, size=(samples, int(lacking[j].sum())))] if have.size else None
            lent.append((j, picks))
    normal = np.concatenate(z, axis=0)
    mu: Floats = mean[where][:, None]  # one column, broadcast over the samples (copied only when lent)
    sd: Floats = sigma[where][:, None]
    if lent:
        mu, sd = np.broadcast_to(mu, normal.shape).copy(), np.broadcast_to(sd, normal.shape).copy()
        columns = np.cumsum(where.sum(axis=1)) - where.sum(axis=1)
        for j, picks in lent:
            cols = columns[j] + np.flatnonzero(lacking[j][where[j]])
            if picks is None:
                mu[cols] = np.nan
            else:
                mu[cols], sd[cols] = mean[j][picks].T, sigma[j][picks].T
    paces = mu * np.exp(sd * normal - sd * sd / 2)
    wait = np.ceil(short[where][:, None] / paces)  # (errors ignored by the caller)
    return np.where(np.isnan(wait) | (paces <= 0), NEVER, wait), where


def short_eta(found: Sequence[Crossing], needed: int, teachers: int, samples: int) -> Floats:
    """Per school and sample, the working day its ``needed``-th teacher crosses, from crossings
    that list only the short teachers (the others crossed on day 0)."""
    g = len(found)
    if needed <= 0:
        return np.zeros((g, samples))
    if needed > teachers:
        return np.full((g, samples), NEVER)
    eta = np.zeros((g, samples))  # rank ≤ 0: enough teachers are past already
    alike: dict[int, list[int]] = defaultdict(list)  # schools by their number of short teachers
    for i, c in enumerate(found):
        alike[c.days.shape[1]].append(i)
    for short, rows in alike.items():
        rank = needed - (teachers - short)  # among the short ones: 1 … short
        if rank <= 0:
            continue
        days = np.stack([found[i].days for i in rows])
        if rank == short:  # every short teacher needed (a share of 100 %): the last to cross
            eta[rows] = days.max(axis=-1)
        else:
            eta[rows] = np.partition(days, rank - 1, axis=-1)[..., rank - 1]
    return eta


def short_lates(found: Sequence[Crossing], horizons: Sequence[int], teachers: int, samples: int) -> Floats:
    """Schools × teachers: the share of samples in which each teacher crosses after its school's
    horizon (-1: no due date, every sample late); 0 for the teachers past the conditions."""
    lates = np.zeros((len(found), teachers))
    counts = [c.days.shape[1] for c in found]
    if not sum(counts):
        return lates
    days = np.concatenate([c.days for c in found], axis=1)
    late = np.count_nonzero(days > np.repeat(np.array(horizons), counts)[None, :], axis=0) / samples
    who = np.concatenate([c.who if c.who is not None else np.arange(teachers) for c in found])
    lates[np.repeat(np.arange(len(found)), counts), who] = late
    return lates
