"""Forked worker processes for a province's Python work (issue 11 speed: the forecast's read and
model, a million-row file's checks), on every core.

Workers are forked, so they start at once and see the parent's objects without a copy or a
pickle (``inherited``). Forking a process with other threads can deadlock the child on a lock
one of them held, so a process with threads (the scheduler, the web server) stays on one core
(``fork_safe``). Workers freeze the inherited objects, so a collection in the child never
finalises the parent's objects (its database connections among them); a worker never uses a
connection it inherited.
"""

from __future__ import annotations

import gc
import multiprocessing
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.pool import Pool
from typing import Any

_INHERITED: Any = None  # what a forked worker reads of the parent's (set just before the fork)


def fork_safe() -> bool:
    """This process may fork workers: it has no other thread, and the platform forks."""
    return threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods()


@contextmanager
def forked(workers: int, inherited: Any = None) -> Iterator[Pool]:
    """A pool of ``workers`` forked processes that see ``inherited`` (``inherited()`` in them)."""
    global _INHERITED
    _INHERITED = inherited
    collecting = gc.isenabled()
    gc.disable()  # while results arrive: a full collection walks a province's million objects (0.5 s each)
    try:
        with multiprocessing.get_context("fork").Pool(workers, initializer=gc.freeze) as pool:
            yield pool
    finally:
        _INHERITED = None
        if collecting:
            gc.enable()


def inherited() -> Any:
    """In a forked worker: what the parent passed to ``forked``."""
    return _INHERITED
