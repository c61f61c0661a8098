"""A window's base from the rows after its first import (``engine.forecast.base``): the prior
figures of each teacher's earliest row, whatever order and parts the rows come in."""

from __future__ import annotations

import numpy as np

from engine.forecast.base import take_priors, unseen


def test_each_teacher_takes_its_earliest_rows_priors_whatever_the_order_and_parts() -> None:
    now = np.array([[10.0, 1.0], [20.0, 2.0], [30.0, 3.0]])  # three teachers' figures now
    bases = [now[:, 0].copy(), now[:, 1].copy()]
    earliest = unseen(3)
    # teacher 0: rows at imports 7 and 5 (5's priors win), in two parts, the later import first;
    # teacher 1: two imports in one part, the later listed first; teacher 2: no row (keeps now).
    take_priors(earliest, bases, np.array([0, 1, 1]), np.array([7, 9, 6]),
                np.array([[7.0, 0.7], [9.0, 0.9], [6.0, 0.6]]))
    take_priors(earliest, bases, np.array([0]), np.array([5]), np.array([[5.0, np.nan]]))
    take_priors(earliest, bases, np.array([0, 1]), np.array([8, 8]), np.array([[8.0, 0.8], [8.1, 0.81]]))
    np.testing.assert_array_equal(bases[0], [5.0, 6.0, 30.0])
    np.testing.assert_array_equal(bases[1], [np.nan, 0.6, 3.0])  # a NULL prior: not yet there
    assert earliest.tolist()[:2] == [5, 6] and earliest[2] == np.iinfo(np.int64).max


def test_no_rows_change_nothing() -> None:
    bases = [np.array([1.0, 2.0])]
    earliest = unseen(2)
    take_priors(earliest, bases, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros((0, 1)))
    assert bases[0].tolist() == [1.0, 2.0] and (earliest == unseen(2)).all()
