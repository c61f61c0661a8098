"""The engine's only source of time.

Nothing in the engine calls ``datetime.now()``: it asks a :class:`Clock`. The CLI passes a
:class:`FixedClock` when ``--now`` is given, so a whole programme year can be replayed, and tests
move a clock by hand.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that only moves when told to (replays, tests, ``--now``)."""

    def __init__(self, at: datetime):
        self._at = as_utc(at)

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        self._at = as_utc(at)

    def advance(self, delta: timedelta) -> None:
        self._at = self._at + delta


def as_utc(at: datetime) -> datetime:
    """Refuse naive datetimes: a naive time is ambiguous between UTC and the plan's zone."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at.isoformat()} has no timezone")
    return at.astimezone(UTC)


def parse_timestamp(text: str, default_tz: str = "Asia/Shanghai") -> datetime:
    """Parse ``--now`` values: ISO date or datetime; without an offset it is local to ``default_tz``."""
    from zoneinfo import ZoneInfo

    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValueError(f"not an ISO date/time: {text!r}") from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(default_tz))
    return value.astimezone(UTC)
