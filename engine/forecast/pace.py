"""Teachers' pace and when a school's teacher gates pass: a seeded, vectorised Monte Carlo (numpy).

Plain arrays in, plain arrays out; no database. A teacher's figures are observed at each progress
import (``engine.imports.history``). Between two observations ``k`` working days apart a gain ``g``
is ``k`` daily gains of ``g / k`` (the official calendar decides ``k``: a holiday week between two
exports is not a week of idleness). A teacher's pace is the mean of those daily gains, and its
uncertainty is resampled with the Bayesian bootstrap (Rubin 1981): each sample weighs the daily
gains by Dirichlet(1, …, 1) weights, which for gains grouped by interval is a Dirichlet over the
intervals with their day counts as parameters — one ``standard_gamma`` call for every teacher and
sample at once.

Teachers without a pace of their own (one observation only) borrow a random school-mate's
pace in each sample. When teachers cross a gate, and so when a school's gate passes, is
``engine.forecast.batch`` (for many schools at once).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
from numpy.typing import NDArray

from engine.calendar import WorkCalendar
from engine.workflow.model import Condition

NEVER = np.inf  # a crossing that does not happen at the observed pace
MODELLED_OPS = (">=", ">")  # progress only grows: other conditions cannot be projected
Floats = NDArray[np.float64]


@dataclass(frozen=True)
class TeacherHistory:
    """One school's teachers observed at its imports: ``values[field]`` is (teachers × observations),
    NaN before a teacher first appears; ``days[j]`` is observation j's working-day index (today = 0,
    earlier days negative)."""

    teacher_ids: tuple[str, ...]
    days: NDArray[np.int64]
    values: Mapping[str, Floats]

    @property
    def teachers(self) -> int:
        return len(self.teacher_ids)

    def current(self, field: str) -> Floats:
        """Each teacher's latest observed figure (NaN if never observed)."""
        v = self.field(field)
        if v.shape[1] == 0:
            return np.full(self.teachers, np.nan)
        return v[:, -1]

    def field(self, field: str) -> Floats:
        if field == "total_hours":
            return self.values["online_hours"] + self.values["practice_hours"]
        return self.values[field]

    def sums(self, field: str) -> tuple[Floats, Floats, Floats]:
        """``interval_sums`` of this history's intervals on ``field``."""
        return interval_sums(*interval_rates(self, field))


@dataclass(frozen=True)
class TeacherSums:
    """One school's teachers as the approximate method needs them, without their observations:
    per field, each teacher's latest figure and its intervals' Σ rate·days, Σ rate²·days and
    Σ days (``interval_sums``) over the window — what ``engine.forecast.sums`` computes in SQL for a
    province instead of shipping every history row. ``teacher_ids`` are database ids (the names
    and platform ids of the few teachers a forecast shows are read afterwards); ``days`` are the
    window's observation days, as in ``TeacherHistory``."""

    teacher_ids: NDArray[np.int64]
    days: NDArray[np.int64]
    latest: Mapping[str, Floats]
    totals: Mapping[str, tuple[Floats, Floats, Floats]]

    @property
    def teachers(self) -> int:
        return len(self.teacher_ids)

    def current(self, field: str) -> Floats:
        if field == "total_hours":
            return self.latest["online_hours"] + self.latest["practice_hours"]
        return self.latest[field]

    def sums(self, field: str) -> tuple[Floats, Floats, Floats]:
        return self.totals[field]


def interval_sums(rates: Floats, days: Floats) -> tuple[Floats, Floats, Floats]:
    """Per teacher (the last axis is intervals): Σ rate·days, Σ rate²·days, Σ days — all that
    ``approximate_moments`` and a teacher's own mean pace read of its intervals."""
    return (rates * days).sum(axis=-1), (rates * rates * days).sum(axis=-1), days.sum(axis=-1)


def working_day_index(calendar: WorkCalendar, today: date, dates: Sequence[date]) -> NDArray[np.int64]:
    """Each date as working days relative to ``today`` (negative before it), on the official calendar."""
    return np.array([calendar.working_days_between(today, d) for d in dates], dtype=np.int64)


def interval_rates(history: TeacherHistory, field: str) -> tuple[Floats, Floats]:
    """(rates, days), each teachers × intervals: gain per working day of each interval between
    consecutive observations, and its length in working days (0 where the interval is unknown)."""
    v = history.field(field)
    if v.shape[1] < 2:
        return np.zeros((history.teachers, 0)), np.zeros((history.teachers, 0))
    gaps = np.diff(history.days).astype(np.float64)
    gains = np.diff(v, axis=1)
    known = ~np.isnan(gains) & (gaps > 0)[None, :]
    days = np.where(known, gaps[None, :], 0.0)
    rates = np.where(known, np.maximum(np.nan_to_num(gains), 0.0) / np.where(gaps > 0, gaps, 1.0)[None, :], 0.0)
    return rates, days


def sample_paces(rates: Floats, days: Floats, samples: int, rng: np.random.Generator,
                 prior_days: float = 0.0) -> Floats:
    """Bayesian-bootstrap paces, samples × teachers; NaN for a teacher with no interval.

    ``prior_days`` > 0 adds, for every teacher, that many pseudo-days at a random school-mate's
    mean pace (drawn per sample): a teacher who stalled for the whole window is not certain never
    to resume, as schools' histories show (a stall, a holiday, a rush before the deadline)."""
    teachers, intervals = rates.shape
    if intervals == 0:
        return np.full((samples, teachers), np.nan)
    total = np.zeros((samples, teachers))
    weighted = np.zeros((samples, teachers))
    for j in range(intervals):  # one scalar-shape draw per interval: numpy's fast path
        lengths = days[:, j]
        length = float(lengths.max())
        if length <= 0:
            continue
        w = rng.standard_gamma(length, size=(samples, teachers)) * (lengths > 0)[None, :]
        total += w
        weighted += w * rates[None, :, j]
    observed = days.sum(axis=1)
    known = np.flatnonzero(observed > 0)
    if prior_days > 0 and known.size:
        means = (rates * days).sum(axis=1)[known] / observed[known]
        prior = means[rng.integers(0, known.size, size=(samples, teachers))]
        w0 = rng.standard_gamma(prior_days, size=(samples, teachers))
        weighted, total = weighted + w0 * prior, total + w0
    with np.errstate(invalid="ignore", divide="ignore"):
        paces = weighted / total
    paces[:, observed == 0] = np.nan
    return paces


def approximate_moments(rates: Floats, days: Floats, prior_days: float = 0.0) -> tuple[Floats, Floats]:
    """The mean of ``sample_paces``' draws per teacher and the log-variance of the lognormal with
    its variance (rates and days: [schools ×] teachers × intervals; school-mates along teachers).

    The Bayesian bootstrap mean of values ``x`` with Dirichlet parameters ``a`` (total ``A``) has
    mean ``Σ a·x / A`` and variance ``Σ a·(x − mean)² / (A·(A + 1))``; the school-mate's pace of
    the prior is averaged over the school-mates (its spread added by the law of total variance)."""
    return moments_from_sums(*interval_sums(rates, days), prior_days)


def moments_from_sums(gained: Floats, squares: Floats, observed: Floats,
                      prior_days: float = 0.0) -> tuple[Floats, Floats]:
    """``approximate_moments`` from the intervals' sums (``interval_sums``): [schools ×] teachers."""
    known = observed > 0
    count = known.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        own = np.where(known, gained / np.where(known, observed, 1.0), 0.0)
        pool = np.where(count > 0, own.sum(axis=-1, keepdims=True) / np.maximum(count, 1), 0.0)
        spread = np.where(count > 0, (np.where(known, own - pool, 0.0) ** 2).sum(axis=-1, keepdims=True)
                          / np.maximum(count, 1), 0.0)
        a0 = np.where(count > 0, prior_days if prior_days > 0 else 0.0, 0.0)
        total = observed + a0
        mean = (gained + a0 * pool) / total
        within = squares - 2 * mean * gained + mean * mean * observed + a0 * (spread + (pool - mean) ** 2)
        var = np.maximum(within, 0.0) / (total * (total + 1)) + (a0 / total) ** 2 * spread
        sigma2 = np.log1p(np.where(mean > 0, var / np.where(mean > 0, mean * mean, 1.0), 0.0))
    return np.where(known, mean, np.nan), np.where(known, sigma2, 0.0)


def approximate_paces(rates: Floats, days: Floats, samples: int, rng: np.random.Generator,
                      prior_days: float = 0.0) -> Floats:
    """What ``sample_paces`` draws, from its first two moments (``approximate_moments``): one
    lognormal draw per teacher and sample instead of a gamma per interval, a gamma and a
    school-mate pick (``Settings.method = "approximate"``, the province method). A lognormal keeps
    a pace positive and right-skewed like the bootstrap's; NaN for a teacher with no interval."""
    teachers, intervals = rates.shape
    if intervals == 0:
        return np.full((samples, teachers), np.nan)
    mean, sigma2 = approximate_moments(rates, days, prior_days)
    z = rng.standard_normal((samples, teachers))
    return mean[None, :] * np.exp(np.sqrt(sigma2)[None, :] * z - sigma2[None, :] / 2)


def borrow_missing(paces: Floats, rng: np.random.Generator) -> tuple[Floats, int]:
    """Teachers without a pace take a random school-mate's in each sample; how many borrowed."""
    missing = np.isnan(paces[0]) if paces.size else np.zeros(0, dtype=bool)
    have = np.flatnonzero(~missing)
    if not missing.any() or have.size == 0:
        return paces, int(missing.sum())
    picks = rng.integers(0, have.size, size=(paces.shape[0], int(missing.sum())))
    paces = paces.copy()
    paces[:, missing] = paces[:, have][np.arange(paces.shape[0])[:, None], picks]
    return paces, int(missing.sum())


def _all_met(cond: Condition, history: TeacherHistory | TeacherSums) -> bool:
    """A condition that cannot be projected only matters if some teacher does not meet it yet."""
    if cond.field == "evidence_result" or not isinstance(cond.value, int | float):
        return False
    have = history.current(cond.field)
    ops = {"<=": np.less_equal, "<": np.less, "==": np.equal, "!=": np.not_equal}
    return bool(ops[cond.op](np.nan_to_num(have), float(cond.value)).all())


def needed_teachers(kind: str, op: str, value: float, teachers: int) -> int:
    """How many teachers must cross for the gate to pass (share × teachers, or a count)."""
    target = value * teachers if kind == "share_of_teachers" else value
    if op == ">":
        return math.floor(target + 1e-9) + 1
    return math.ceil(target - 1e-9)
