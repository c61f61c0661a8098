"""Per-robot sliding-window send limits.

Robots punish bursts: DingTalk blocks a robot for 10 minutes after more than 20 messages a minute
(errcode 130101), WeCom allows 20/min, Feishu 100/min and 5/s (LIBRARY-NOTES "Group robots").
The limiter answers "how many sends may go to this robot now" and "when is the next free slot";
the dispatcher merges messages to fit the slots and defers the rest to that time. Time comes from
an injected clock; past sends (possibly by other processes) are fed in with :meth:`record`.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from engine import Clock

RobotKey = tuple[str, str]  # (channel, address)


@dataclass(frozen=True)
class Limit:
    count: int
    window: timedelta


LIMITS: dict[str, tuple[Limit, ...]] = {
    "dingtalk": (Limit(20, timedelta(minutes=1)),),
    "wecom": (Limit(20, timedelta(minutes=1)),),
    "feishu": (Limit(100, timedelta(minutes=1)), Limit(5, timedelta(seconds=1))),
}
UNLIMITED = 1_000_000


class RateLimiter:
    def __init__(self, clock: Clock, limits: Mapping[str, tuple[Limit, ...]] | None = None) -> None:
        self.clock = clock
        self.limits = dict(LIMITS if limits is None else limits)
        self._sends: dict[RobotKey, deque[datetime]] = defaultdict(deque)

    def longest_window(self, channel: str) -> timedelta | None:
        limits = self.limits.get(channel, ())
        return max((limit.window for limit in limits), default=None)

    def record(self, key: RobotKey, at: datetime | None = None) -> None:
        sends = self._sends[key]
        sends.append(at or self.clock.now())
        if len(sends) > 1 and sends[-1] < sends[-2]:
            self._sends[key] = deque(sorted(sends))

    def _within(self, key: RobotKey, window: timedelta, now: datetime) -> list[datetime]:
        # A send exactly one window ago no longer counts: [now - window, now] is open on the left.
        return [t for t in self._sends.get(key, ()) if now - window < t <= now]

    def available(self, key: RobotKey) -> int:
        """Sends allowed to this robot right now (never negative)."""
        now = self.clock.now()
        limits = self.limits.get(key[0], ())
        if not limits:
            return UNLIMITED
        return max(0, min(limit.count - len(self._within(key, limit.window, now)) for limit in limits))

    def next_free(self, key: RobotKey) -> datetime:
        """The earliest time at which one more send is allowed."""
        now = self.clock.now()
        at = now
        for limit in self.limits.get(key[0], ()):
            recent = self._within(key, limit.window, now)
            if len(recent) >= limit.count:
                # The slot frees when the oldest send that keeps the window full leaves it.
                at = max(at, recent[len(recent) - limit.count] + limit.window)
        return at
