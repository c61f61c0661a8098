"""A province's forecast on every core (issue 11 speed: 50,000 schools in ≤ 10 s on two cores).

Both halves of the work split without changing a number. The read splits by teacher id range:
each teacher's sums are its own rows' (``engine.forecast.sums``), so a part's are the same as
the whole's, and each part ships a fraction of the rows through the driver (the driver's tuples
are most of a province's read). The model splits by chunks of runs: each run draws from its own
seeded generator (``engine.forecast.school``), so a run's numbers are the same in any process.

Workers are forked (``engine.forks``: not in a process with threads); an in-memory SQLite
database, which a worker cannot open, is forecast on one core. Workers open their own database
connection: a connection is never used across a fork.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from multiprocessing.pool import Pool
from typing import Any

from sqlalchemy.orm import Session

from engine.forks import fork_safe, forked, inherited

__all__ = ["MAX_WORKERS", "database_url", "forked", "frozen_heap", "inherited", "mapped", "workers_for"]

MAX_WORKERS = 4  # past four, the database and the result pickling, not the cores, set the pace


def workers_for(session: Session, wanted: int) -> int:
    """How many processes a province forecast may use: ``wanted`` (0: one per core, at most
    ``MAX_WORKERS``), or 1 where forking is unsafe or a worker could not open the database."""
    if wanted == 1 or not fork_safe():
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
def frozen_heap() -> Iterator[None]:
    """The objects that exist now left out of garbage collection while a province is forecast
    here (its million inputs: each full collection walked them all, 2 of the 9 s a province's model
    took on one core); collected again afterwards. Forked workers freeze theirs at start."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def mapped(pool: Pool | None, work: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Any]:
    """``work`` over ``items`` in the pool's processes (here without one), in order, each result
    as soon as it and those before it are done (this process may use it while the rest run)."""
    if pool is None:
        return (work(item) for item in items)
    return pool.imap(work, items, chunksize=1)
