"""When teachers cross a gate's conditions, and so when a school's gate passes — for a group of
schools at once (same stage, same number of teachers, same observation days: one array per group
instead of one per school). Plain arrays in, plain arrays out; no database.

A teacher crosses a condition (``online_hours >= 25`` …) after ``ceil(shortfall / pace)`` working
days (never at pace 0), a metric when it has crossed all of its conditions; a school's
share-of-teachers gate passes on the day its k-th teacher crosses, ``k = ceil(required share ×
teachers)`` — one ``np.partition`` per group. The paces come from ``engine.forecast.pace``.

Every school draws from its own generator, in the same order whether it is forecast alone or with
a province (each step draws for every school of the group in turn, then computes for all), so a
school's numbers never depend on which other schools were forecast with it; ``teacher_crossing``
is a group of one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from engine.forecast.pace import (
    MODELLED_OPS,
    NEVER,
    Floats,
    TeacherHistory,
    TeacherSums,
    _all_met,
    borrow_missing,
    moments_from_sums,
    sample_paces,
)
from engine.workflow.model import Condition, Metric


@dataclass(frozen=True)
class Crossing:
    """When each teacher meets a metric's conditions: samples × teachers working days (0 = already,
    inf = not at this pace), plus what the teachers-at-risk list shows."""

    days: Floats
    shortfall: Floats  # per teacher, in the metric's first unmet condition's unit (0 when met)
    field: Sequence[str]  # that condition's field per teacher ("" when met)
    pace: Floats  # the teacher's own mean pace on that field in the window (NaN when unknown)
    borrowed: int
    modelled: bool  # False: a condition progress cannot project (e.g. evidence_result in …)
    paced: bool  # some teacher short of a condition has an observed pace on its field
    who: NDArray[np.int64] | None = None  # the teachers ``days``' columns are (None: all; the others: day 0)


@dataclass
class Tracked:
    """What a metric's crossings carry across its conditions, per school of a group: each teacher's
    largest shortfall, that condition's index and the teacher's own pace on it (what the
    teachers-at-risk list shows), teachers lent a pace, and whether the gate can be projected."""

    schools: int
    teachers: int
    shortfall: Floats = field(init=False)
    worst: NDArray[np.int64] = field(init=False)
    shown: Floats = field(init=False)
    borrowed: NDArray[np.int64] = field(init=False)
    modelled: NDArray[np.bool_] = field(init=False)
    paced: NDArray[np.bool_] = field(init=False)
    _names: NDArray[np.object_] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        g, n = self.schools, self.teachers
        self.shortfall, self.worst, self.shown = np.zeros((g, n)), np.full((g, n), -1), np.full((g, n), np.nan)
        self.borrowed, self.modelled, self.paced = np.zeros(g, dtype=np.int64), np.ones(g, dtype=bool), np.ones(g, dtype=bool)

    def shorts(self, metric: Metric, histories: Sequence[TeacherHistory | TeacherSums],
               obs: np.ndarray) -> Iterator[tuple[int, Condition, Floats, np.ndarray, list[int]]]:
        """The metric's projectable conditions some teacher is short of: (index, condition,
        shortfall schools × teachers, the schools with a short teacher as an array and a list).
        A condition progress cannot project counts only if unmet; without two observations there is no pace."""
        for c, cond in enumerate(metric.where):
            if not isinstance(cond.value, int | float) or cond.op not in MODELLED_OPS:
                self.modelled &= np.array([_all_met(cond, h) for h in histories])
                continue
            need = float(cond.value) + (1e-9 if cond.op == ">" else 0.0)
            short = np.maximum(need - np.nan_to_num(np.stack([h.current(cond.field) for h in histories]), nan=0.0), 0.0)
            act = np.flatnonzero(short.any(axis=1))
            if act.size == 0:
                continue
            if obs.size < 2:
                self.paced[act] = False
                continue
            yield c, cond, short, act, [int(i) for i in act]

    def note(self, c: int, act: np.ndarray, short: Floats, own: Floats) -> None:
        """Condition ``c``'s shortfalls of the schools ``act``: keep each teacher's largest."""
        better = short[act] > self.shortfall[act]
        self.worst[act] = np.where(better, c, self.worst[act])
        self.shown[act] = np.where(better, own, self.shown[act])
        self.shortfall[act] = np.maximum(self.shortfall[act], short[act])

    def crossing(self, metric: Metric, i: int, days: Floats, who: NDArray[np.int64] | None = None) -> Crossing:
        if self._names is None:  # once a group: the field of each condition index (-1: none, "")
            self._names = np.array([cond.field for cond in metric.where] + [""], dtype=object)
        return Crossing(days, self.shortfall[i], tuple(self._names[self.worst[i]]), self.shown[i],
                        int(self.borrowed[i]), bool(self.modelled[i]), bool(self.paced[i]), who)


def group_rates(values: Floats, days: np.ndarray) -> tuple[Floats, Floats]:
    """``pace.interval_rates`` for stacked schools: values (schools × teachers × observations)."""
    gaps = np.diff(days).astype(np.float64)
    gains = np.diff(values, axis=-1)
    known = ~np.isnan(gains) & (gaps > 0)
    span = np.where(known, gaps, 0.0)
    rates = np.where(known, np.maximum(np.nan_to_num(gains), 0.0) / np.where(gaps > 0, gaps, 1.0), 0.0)
    return rates, span


def _observed(history: TeacherHistory | TeacherSums) -> TeacherHistory:
    if isinstance(history, TeacherSums):
        raise ValueError("the bootstrap resamples a teacher's intervals: it needs the observations, not their sums")
    return history


def group_crossing(metric: Metric, histories: Sequence[TeacherHistory | TeacherSums], samples: int,
                   rngs: Sequence[np.random.Generator], prior_days: float = 0.0,
                   method: str = "bootstrap") -> list[Crossing]:
    """Working days until each teacher of each school meets every condition of ``metric``, per
    sample. The schools have the same teacher count and observation days."""
    g, n = len(histories), histories[0].teachers
    obs = histories[0].days
    days = np.zeros((g, samples, n))
    t = Tracked(g, n)
    for c, cond, short, act, each in t.shorts(metric, histories, obs):
        if method == "approximate":  # from the intervals' sums: a TeacherHistory or TeacherSums
            gained, squares, observed = (np.stack(x) for x in zip(*(histories[i].sums(cond.field) for i in each),
                                                                  strict=True))
            mean, sigma2 = moments_from_sums(gained, squares, observed, prior_days)
            z = np.stack([rngs[i].standard_normal((samples, n)) for i in each])
            paces = mean[:, None, :] * np.exp(np.sqrt(sigma2)[:, None, :] * z - sigma2[:, None, :] / 2)
            paces = np.where((observed > 0)[:, None, :], paces, np.nan)
        else:
            rates, gaps = group_rates(np.stack([_observed(histories[i]).field(cond.field) for i in each]), obs)
            gained, observed = (rates * gaps).sum(axis=-1), gaps.sum(axis=-1)
            paces = np.stack([sample_paces(rates[j], gaps[j], samples, rngs[i], prior_days) for j, i in enumerate(each)])
        t.paced[act] &= (observed > 0).any(axis=-1)
        for j, i in enumerate(each):
            paces[j], lent = borrow_missing(paces[j], rngs[i])
            t.borrowed[i] = max(t.borrowed[i], lent)
        s = short[act][:, None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            wait = np.where(s > 0, np.ceil(s / paces), 0.0)
            own = np.where(observed > 0, gained / observed, np.nan)
        wait = np.where(np.isnan(wait) | (paces <= 0) & (s > 0), NEVER, wait)
        t.note(c, act, short, own)
        days[act] = np.maximum(days[act], wait)
    return [t.crossing(metric, i, days[i]) for i in range(g)]


def teacher_crossing(metric: Metric, history: TeacherHistory | TeacherSums, samples: int, rng: np.random.Generator,
                     prior_days: float = 0.0, method: str = "bootstrap") -> Crossing:
    """One school's ``group_crossing``."""
    return group_crossing(metric, [history], samples, [rng], prior_days, method)[0]


def group_eta(days: Floats, needed: int) -> Floats:
    """Per school and sample, the working day the needed-th teacher crosses (inf if fewer ever
    do): ``days`` is schools × samples × teachers."""
    schools, samples, teachers = days.shape
    if needed <= 0:
        return np.zeros((schools, samples))
    if needed > teachers:
        return np.full((schools, samples), NEVER)
    return np.partition(days, needed - 1, axis=-1)[..., needed - 1]
