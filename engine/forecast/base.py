"""A teacher's figures as of the window's first import, found in the history rows after it.

The history is keyed (import, teacher) (migration 0018), so a teacher's latest row up to an import
is no longer one seek away; each row keeps the teacher's figures before it instead (``prior_*``,
NULL on a teacher's first row). A teacher's figures as of import ``hi0`` are then the prior of its
first row after ``hi0`` — NULL (absent: not yet in the history) if that row is its first — or, if
it has no row after ``hi0``, its figures now, since the teacher table always holds the figures of
its latest row (``engine.imports.history``). The forecast reads the rows after ``hi0`` anyway: they
are its window.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

NONE_YET = np.iinfo(np.int64).max  # no row after the base import seen for this teacher (yet)


def unseen(n: int) -> np.ndarray:
    """The earliest import seen per teacher, for ``take_priors``: none yet."""
    return np.full(n, NONE_YET, dtype=np.int64)


def take_priors(earliest: np.ndarray, bases: Sequence[np.ndarray], rows: np.ndarray, imports: np.ndarray,
                priors: np.ndarray) -> None:
    """Where a row (teacher position ``rows``, import ``imports``) is its teacher's earliest seen so
    far, its ``priors`` (one column per base field) become the teacher's ``bases`` (one array per
    field, holding the teachers' current figures until a row is seen) — in place, so rows may come
    in any order and in parts (a statement's rows, a part at a time, in several processes)."""
    if not rows.size:
        return
    if imports.min() != imports.max():  # several imports: keep each teacher's earliest row of them
        order = np.lexsort((imports, rows))
        rows, imports, priors = rows[order], imports[order], priors[order]
        first = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        rows, imports, priors = rows[first], imports[first], priors[first]
    earlier = imports < earliest[rows]  # rows are now one per teacher: the assignments are exact
    rows, imports, priors = rows[earlier], imports[earlier], priors[earlier]
    earliest[rows] = imports
    for c, base in enumerate(bases):
        base[rows] = priors[:, c]
