"""A province's forecast on every core (issue 11 speed: 50,000 schools in ≤ 10 s on two cores).

Both halves of the work split without changing a number. The read splits by teacher id range:
each teacher's sums are its own rows' (``engine.forecast.sums``), so a part's are the same as
the whole's, and each part ships a fraction of the rows through the driver (the driver's tuples
are most of a province's read). The model splits by chunks of runs: each run draws from its own
seeded generator (``engine.forecast.school``), so a run's numbers are the same in any process.

Workers are forked, so they start at once and see the parent's inputs without a copy. Forking
a process with other threads can deadlock the child on a lock one of them held, so a process
with threads (the scheduler, the web server) forecasts on one core; so does an in-memory SQLite
database, which a worker cannot open. Workers open their own database connection (a connection
is never used across a fork) and freeze the inherited objects, so a collection in the child
never finalises the parent's connections.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from multiprocessing.pool import Pool
from typing import Any

from sqlalchemy.orm import Session

MAX_WORKERS = 4  # past four, the database and the result pickling, not the cores, set the pace
_INHERITED: Any = None  # what a forked worker reads of the parent's (set just before the fork)


def workers_for(session: Session, wanted: int) -> int:
    """How many processes a province forecast may use: ``wanted`` (0: one per core, at most
    ``MAX_WORKERS``), or 1 where forking is unsafe or a worker could not open the database."""
    if wanted == 1 or threading.active_count() > 1 or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    url = session.get_bind().engine.url
    if url.get_backend_name() == "sqlite" and (url.database in (None, "", ":memory:")
                                               or str(url.database).startswith("file:")):
        return 1
    return max(1, wanted or min(os.cpu_count() or 1, MAX_WORKERS))


def database_url(session: Session) -> str:
    """The session's database URL with its password, for a worker's own connection."""
    return session.get_bind().engine.url.render_as_string(hide_password=False)


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


@contextmanager
def frozen_heap() -> Iterator[None]:
    """The objects that exist now left out of garbage collection while a province is forecast
    here (its million inputs: each full collection walked them all, 2 of the 9 s a province's model
    took on one core); collected again afterwards. Forked workers freeze theirs at start."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def inherited() -> Any:
    """In a forked worker: what the parent passed to ``forked``."""
    return _INHERITED


def mapped(pool: Pool | None, work: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Any]:
    """``work`` over ``items`` in the pool's processes (here without one), in order, each result
    as soon as it and those before it are done (this process may use it while the rest run)."""
    if pool is None:
        return (work(item) for item in items)
    return pool.imap(work, items, chunksize=1)
