"""What one read-only request has already looked up: its plan, run, school and workflow hash.

A web page is one transaction, and the engine's functions it calls each find what they need by
key: the school page asked the database for its school 7 times, its plan 6 times, its run 4 times
and its workflow's hash 6 times — 50 statements, each a round trip to PostgreSQL (55–78 ms
against SQLite's 22–33 at full size). SQLAlchemy's identity map would answer ``session.get`` for
free, but it holds objects weakly: one that nobody kept is gone by the next call. A session marked
with ``remember_reads`` keeps every object it loads until it closes and answers repeated lookups
by key from a memo.

Only for sessions that do not replace what they read — a GET page, an export — so a remembered
answer cannot go stale: such a session never deletes, re-keys or reloads a plan, a run or a
workflow version. It may refresh a run's stored status (``ensure_current`` after an upgrade): those
are Core UPDATEs of derived columns, which the pages read by query, never from the kept objects. Without the mark every
lookup goes to the database as before (commands, POSTs, the scheduler).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import Session

T = TypeVar("T")
_MEMO = "rollout.read_memo"
_KEPT = "rollout.read_kept"


def remember_reads(session: Session) -> None:
    """Mark ``session`` as read-only for the life of its request: keep what it loads, memoize lookups."""
    if _MEMO in session.info:
        return
    kept: list[Any] = []
    session.info[_MEMO] = {}
    session.info[_KEPT] = kept

    @event.listens_for(session, "loaded_as_persistent")
    def _keep(_session: Session, instance: Any) -> None:
        kept.append(instance)


def remembered(session: Session, key: Hashable, load: Callable[[], T]) -> T:
    """``load()``, once per key for a session marked with ``remember_reads``; every time otherwise."""
    memo: dict[Hashable, Any] | None = session.info.get(_MEMO)
    if memo is None:
        return load()
    if key not in memo:
        memo[key] = load()
    return memo[key]
