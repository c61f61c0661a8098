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


def remaining_days(durations: StageDurations, elapsed: int, samples: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """Samples of the working days a school ``elapsed`` days into the stage still needs.

    ``inf`` where the estimate puts the stay beyond every stay observed. Requires ``enough``."""
    from scipy import stats  # imported when needed: scipy.stats costs a second at every CLI start

    data = stats.CensoredData(
        uncensored=np.asarray(durations.finished, dtype=float),
        right=np.asarray(durations.ongoing, dtype=float),
    )
    sf = stats.ecdf(data).sf
    points = np.asarray(sf.quantiles, dtype=float)
    survival = np.asarray(sf.probabilities, dtype=float)
    before = np.concatenate(([1.0], survival[:-1]))
    mass = before - survival  # the probability of ending exactly at each point
    later = points > elapsed
    masses = np.where(later, mass, 0.0)
    beyond = float(survival[-1]) if survival.size else 1.0
    total = masses.sum() + beyond
    if total <= 0:  # every finished stay was shorter than this one: nothing seen predicts it
        return np.full(samples, np.inf)
    outcomes = np.concatenate((points - elapsed, [np.inf]))
    probabilities = np.concatenate((masses, [beyond])) / total
    return np.asarray(rng.choice(outcomes, size=samples, p=probabilities), dtype=np.float64)
