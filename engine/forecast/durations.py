"""How long a stage takes, from the schools that already went through it: Kaplan–Meier (scipy).

Fact gates (plan filed, supervision result) have no pace to extrapolate: a county files a plan
when it files it. What can be said is how long schools of the same plan took from entering the
stage to leaving it — counted in working days — with the schools still in it as right-censored
observations (they have taken *at least* that long), which is what the Kaplan–Meier estimator is
for (``scipy.stats.ecdf`` over ``CensoredData``). For a school that has already spent ``e`` days
in the stage, the remaining time is drawn from the estimate conditioned on "longer than ``e``";
the mass the estimate leaves beyond the longest observed stay is "not within what we have seen"
(infinite), never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

MIN_FINISHED = 3  # fewer schools through a stage than this is no history


@dataclass(frozen=True)
class StageDurations:
    """Working days spent in one stage: ``finished`` by schools that left it, ``ongoing`` so far
    by schools still in it."""

    finished: tuple[int, ...]
    ongoing: tuple[int, ...] = ()

    @property
    def enough(self) -> bool:
        return len(self.finished) >= MIN_FINISHED

    @cached_property
    def _fit(self) -> tuple[NDArray[np.float64], NDArray[np.float64], float]:
        """The Kaplan–Meier estimate once per stage (not once per school: a province's 50,000
        schools share four): its points, the mass at each, and the survival beyond the last."""
        from scipy import (
            stats,  # imported when needed: scipy.stats costs a second at every CLI start
        )

        data = stats.CensoredData(
            uncensored=np.asarray(self.finished, dtype=float),
            right=np.asarray(self.ongoing, dtype=float),
        )
        sf = stats.ecdf(data).sf
        points = np.asarray(sf.quantiles, dtype=float)
        survival = np.asarray(sf.probabilities, dtype=float)
        before = np.concatenate(([1.0], survival[:-1]))
        beyond = float(survival[-1]) if survival.size else 1.0
        return points, before - survival, beyond  # the probability of ending exactly at each point

    @cached_property
    def _given(self) -> dict[int, tuple[NDArray[np.float64], NDArray[np.float64]] | None]:
        return {}

    def remaining(self, elapsed: int) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
        """(outcomes, cumulative probabilities) of the days still needed after ``elapsed`` (None:
        nothing seen predicts it), computed once per elapsed value."""
        if elapsed not in self._given:
            points, mass, beyond = self._fit
            masses = np.where(points > elapsed, mass, 0.0)
            total = masses.sum() + beyond
            if total <= 0:
                self._given[elapsed] = None
            else:  # the cumulative distribution exactly as Generator.choice(p=...) builds it, once
                cdf = np.cumsum(np.concatenate((masses, [beyond])) / total)
                self._given[elapsed] = (np.concatenate((points - elapsed, [np.inf])), cdf / cdf[-1])
        return self._given[elapsed]


def remaining_days(durations: StageDurations, elapsed: int, samples: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """Samples of the working days a school ``elapsed`` days into the stage still needs.

    ``inf`` where the estimate puts the stay beyond every stay observed. Requires ``enough``."""
    table = durations.remaining(elapsed)
    if table is None:  # every finished stay was shorter than this one: nothing seen predicts it
        return np.full(samples, np.inf)
    outcomes, cdf = table
    # What rng.choice(outcomes, size=samples, p=...) draws (the same uniforms, the same search),
    # without re-checking and re-summing p for each of a province's schools.
    return np.asarray(outcomes[cdf.searchsorted(rng.random(samples), side="right")], dtype=np.float64)
