"""Sliding windows per robot with an injected clock."""

from __future__ import annotations

from datetime import timedelta

from engine.clock import FixedClock
from notifications.ratelimit import UNLIMITED, RateLimiter

DT = ("dingtalk", "https://oapi.dingtalk.com/robot/send?access_token=a")
FS = ("feishu", "https://open.feishu.cn/open-apis/bot/v2/hook/x")


def test_dingtalk_twenty_per_minute_sliding(clock: FixedClock) -> None:
    start = clock.now()
    limiter = RateLimiter(clock)
    for _ in range(15):
        limiter.record(DT)
    clock.advance(timedelta(seconds=30))
    for _ in range(5):
        limiter.record(DT)
    assert limiter.available(DT) == 0
    assert limiter.next_free(DT) == start + timedelta(minutes=1)
    clock.advance(timedelta(seconds=30))  # the first 15 left the window
    assert limiter.available(DT) == 15
    assert limiter.next_free(DT) == clock.now()


def test_other_robots_and_channels_are_independent(clock: FixedClock) -> None:
    limiter = RateLimiter(clock)
    for _ in range(20):
        limiter.record(DT)
    assert limiter.available(("dingtalk", "other")) == 20
    assert limiter.available(("file", "/tmp")) == UNLIMITED


def test_feishu_five_per_second_and_hundred_per_minute(clock: FixedClock) -> None:
    limiter = RateLimiter(clock)
    for _ in range(5):
        limiter.record(FS)
    assert limiter.available(FS) == 0
    assert limiter.next_free(FS) == clock.now() + timedelta(seconds=1)
    for _ in range(19):
        clock.advance(timedelta(seconds=1))
        assert limiter.available(FS) == 5
        for _ in range(5):
            limiter.record(FS)
    clock.advance(timedelta(seconds=1))
    assert limiter.available(FS) == 0  # 100 in the last minute
    first = clock.now() - timedelta(seconds=20)
    assert limiter.next_free(FS) == first + timedelta(minutes=1)


def test_sends_recorded_out_of_order(clock: FixedClock) -> None:
    limiter = RateLimiter(clock)
    limiter.record(DT, clock.now() - timedelta(seconds=10))
    limiter.record(DT, clock.now() - timedelta(seconds=50))
    assert limiter.available(DT) == 18
