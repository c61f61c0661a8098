"""dispatch() on both databases against real local servers: exactly once across failures,
outages, timeouts and crashes; backoff; dead letters; rate-limit merging."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from engine.clock import FixedClock
from engine.db import sessions, transaction
from engine.models import Notification
from notifications.channels.dingtalk import DingTalkChannel
from notifications.channels.file import FileChannel
from notifications.channels.wecom import WeComChannel
from notifications.dispatcher import Backoff, dispatch
from notifications.message import Channel, OutgoingMessage
from notifications.outbox import enqueue
from notifications.ratelimit import Limit
from notifications.secrets import Secrets
from tests.notifications.notify_servers import SECRETS, RobotServer, statuses


def robots(timeout: float = 0.3) -> dict[str, Channel]:
    return {"dingtalk": DingTalkChannel(SECRETS, timeout=timeout), "wecom": WeComChannel(timeout=timeout),
            "file": FileChannel()}


def queue(db: Engine, clock: FixedClock, n: int, *, channel: str, address: str, body: str = "第{i}条",
          secret_ref: str | None = None, prefix: str = "m") -> None:
    with transaction(sessions(db)) as session:
        for i in range(n):
            text = body.format(i=i)
            enqueue(session, dedupe_key=f"{prefix}:{i}", kind="overdue", channel=channel, address=address,
                    subject=f"逾期提醒 {i}", text=text, markdown=text, secret_ref=secret_ref, now=clock.now())


def rows(db: Engine) -> list[Notification]:
    with sessions(db)() as session:
        return list(session.scalars(select(Notification).order_by(Notification.id)))


def delivered_markers(robot: RobotServer, n: int, prefix: str = "MSG") -> Counter[int]:
    """How often each numbered message body reached the robot (merged sends carry several)."""
    seen: Counter[int] = Counter()
    for got in robot.state.accepted:
        text = got.body.get("markdown", {}).get("text") or got.body.get("markdown", {}).get("content", "")
        for i in range(n):
            seen[i] += text.count(f"<{prefix}{i}>")
    return seen


def dt_address(robot: RobotServer) -> str:
    return f"{robot.base}/robot/send?access_token=tok"


def test_file_channel_delivers_and_marks_sent(db: Engine, clock: FixedClock, tmp_path: Path) -> None:
    queue(db, clock, 3, channel="file", address=str(tmp_path / "out"))
    result = dispatch(db, clock, worker_id="w1", channels=robots())
    assert (result.claimed, result.sent, result.messages) == (3, 3, 3)
    assert len(list((tmp_path / "out").iterdir())) == 3
    assert all(r.status == "sent" and r.sent_at == clock.now() and r.claimed_until is None for r in rows(db))
    assert dispatch(db, clock, worker_id="w1", channels=robots()).claimed == 0


def test_future_rows_are_not_due(db: Engine, clock: FixedClock, tmp_path: Path) -> None:
    queue(db, clock, 1, channel="file", address=str(tmp_path))
    early = FixedClock(clock.now() - timedelta(seconds=1))
    assert dispatch(db, early, worker_id="w", channels=robots()).claimed == 0


def test_retryable_failure_backs_off_with_full_jitter(db: Engine, clock: FixedClock, robot: RobotServer) -> None:
    robot.state.default = "http:500"
    queue(db, clock, 1, channel="wecom", address=f"{robot.base}/cgi-bin/webhook/send?key=k")
    result = dispatch(db, clock, worker_id="w", channels=robots(), rng=random.Random(7))
    expected = clock.now() + timedelta(seconds=random.Random(7).uniform(0, 60))
    [row] = rows(db)
    assert (result.retrying, row.status, row.attempts) == (1, "pending", 1)
    assert row.next_attempt_at == expected
    assert "HTTP 500" in (row.last_error or "") and "key=k" not in (row.last_error or "")
    assert row.claimed_by is None and row.claimed_until is None


class MaxRandom(random.Random):
    """Returns the top of the jitter range so the ceiling can be checked."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_backoff_ceiling_doubles_then_caps() -> None:
    backoff = Backoff(base=timedelta(seconds=30), cap=timedelta(hours=1))
    assert [backoff.delay(n, MaxRandom()).total_seconds() for n in range(9)] == [
        30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    spread = {backoff.delay(3, random.Random(seed)).total_seconds() for seed in range(50)}
    assert min(spread) >= 0 and max(spread) <= 240 and len(spread) == 50  # full jitter, not fixed


def test_outage_then_recovery_delivers_each_once(db: Engine, clock: FixedClock, robot_port: RobotServer) -> None:
    queue(db, clock, 3, channel="dingtalk", address=dt_address(robot_port), body="<MSG{i}>", secret_ref="DT_ROBOT")
    first = dispatch(db, clock, worker_id="w", channels=robots(), rng=random.Random(1))
    assert (first.sent, first.retrying, first.deferred) == (0, 1, 2)  # no hammering a dead robot
    robot_port.start()
    for _ in range(4):
        clock.advance(timedelta(hours=7))
        dispatch(db, clock, worker_id="w", channels=robots(), rng=random.Random(1))
    assert statuses(db) == {"sent": 3}
    assert delivered_markers(robot_port, 3) == Counter({0: 1, 1: 1, 2: 1})
    assert robot_port.state.bad_signatures == 0
    # `notify list` showed the outage's error beside a message later sent (issue 17, 19)
    assert [(r.last_error, r.attempts > 0) for r in rows(db) if r.attempts] and all(r.last_error is None for r in rows(db))


def test_timeouts_500s_and_rate_limit_codes_end_in_one_delivery_each(
    db: Engine, clock: FixedClock, robot: RobotServer
) -> None:
    robot.state.script = ["sleep", "http:502", "errcode:130101", "ok", "http:500"]
    robot.state.sleep_s = 1.0
    queue(db, clock, 4, channel="dingtalk", address=dt_address(robot), body="<MSG{i}>", secret_ref="DT_ROBOT")
    for _ in range(12):
        dispatch(db, clock, worker_id="w", channels=robots(timeout=0.3), rng=random.Random(3))
        clock.advance(timedelta(hours=7))
    assert statuses(db) == {"sent": 4}
    assert delivered_markers(robot, 4) == Counter({0: 1, 1: 1, 2: 1, 3: 1})
    assert robot.state.attempts == 4 + 4  # four scripted failures, then one success per message


def test_dead_letter_after_max_attempts_then_retry(db: Engine, clock: FixedClock, robot: RobotServer) -> None:
    robot.state.default = "http:503"
    queue(db, clock, 1, channel="wecom", address=f"{robot.base}/cgi-bin/webhook/send?key=k")
    for _ in range(3):
        dispatch(db, clock, worker_id="w", channels=robots(), max_attempts=3)
        clock.advance(timedelta(hours=7))
    [row] = rows(db)
    assert (row.status, row.attempts) == ("dead", 3)
    assert dispatch(db, clock, worker_id="w", channels=robots()).claimed == 0  # dead stays dead


def test_not_retryable_error_is_dead_at_once(db: Engine, clock: FixedClock, robot: RobotServer) -> None:
    queue(db, clock, 1, channel="dingtalk", address=dt_address(robot), secret_ref="DT_ROBOT")
    wrong = {"dingtalk": DingTalkChannel(Secrets({"ROLLOUT_SECRET_DT_ROBOT": "wrong"}), timeout=1)}
    result = dispatch(db, clock, worker_id="w", channels=wrong)
    [row] = rows(db)
    assert (result.dead, row.status, row.attempts) == (1, "dead", 1)
    assert "310000" in (row.last_error or "")


def test_row_for_an_unconfigured_channel_is_dead(db: Engine, clock: FixedClock) -> None:
    queue(db, clock, 1, channel="email", address="a@example.org")
    dispatch(db, clock, worker_id="w", channels={"file": FileChannel()})
    [row] = rows(db)
    assert row.status == "dead" and "email" in (row.last_error or "")


def test_missing_config_file_makes_dead_letters_not_a_crash(db: Engine, clock: FixedClock, robot: RobotServer) -> None:
    queue(db, clock, 2, channel="dingtalk", address=dt_address(robot), secret_ref="DT_ROBOT")
    broken = {"dingtalk": DingTalkChannel(Secrets({"ROLLOUT_CONFIG": "/nonexistent/rollout.toml"}), timeout=1)}
    result = dispatch(db, clock, worker_id="w", channels=broken)
    assert result.dead == 2 and robot.state.attempts == 0
    assert all("/nonexistent/rollout.toml" in (r.last_error or "") for r in rows(db))


class CrashingChannel:
    """Delivers ``ok`` messages, then the process 'dies' (an unexpected exception)."""

    def __init__(self, ok: int) -> None:
        self.ok = ok
        self.keys: list[str] = []

    def send(self, msg: OutgoingMessage) -> None:
        if len(self.keys) >= self.ok:
            raise RuntimeError("simulated crash")
        self.keys.append(msg.key)


def test_crash_mid_batch_leaves_claims_that_expire(db: Engine, clock: FixedClock) -> None:
    queue(db, clock, 5, channel="file", address="/unused")
    crashing = CrashingChannel(ok=2)
    with pytest.raises(RuntimeError):
        dispatch(db, clock, worker_id="dies", channels={"file": crashing})
    assert statuses(db) == {"sent": 2, "pending": 3}
    survivor = CrashingChannel(ok=100)
    assert dispatch(db, clock, worker_id="w2", channels={"file": survivor}).claimed == 0  # still claimed
    clock.advance(timedelta(minutes=11))
    assert dispatch(db, clock, worker_id="w2", channels={"file": survivor}).sent == 3
    assert sorted(crashing.keys + survivor.keys) == [f"m:{i}" for i in range(5)]


def test_45_messages_for_one_dingtalk_robot_are_merged_into_the_window(
    db: Engine, clock: FixedClock, robot: RobotServer
) -> None:
    body = "<MSG{i}> " + "某某县第一实验小学校本实践逾期；" * 60  # ~1.9 KB each, 85 KB in all
    queue(db, clock, 45, channel="dingtalk", address=dt_address(robot), body=body, secret_ref="DT_ROBOT")
    result = dispatch(db, clock, worker_id="w", channels=robots(timeout=2))
    assert result.sent == 45 and result.deferred == 0
    assert 1 < len(robot.state.accepted) <= 20
    assert all(len(r.body["markdown"]["text"].encode()) <= 18_000 for r in robot.state.accepted)
    assert delivered_markers(robot, 45) == Counter({i: 1 for i in range(45)})
    assert statuses(db) == {"sent": 45}


def test_full_window_defers_the_rest_across_passes(db: Engine, clock: FixedClock, robot: RobotServer) -> None:
    limits = {"dingtalk": (Limit(2, timedelta(minutes=1)),)}
    body = "<MSG{i}> " + "校" * 2500  # 7.5 KB: two fit in one 18 KB send
    queue(db, clock, 15, channel="dingtalk", address=dt_address(robot), body=body, secret_ref="DT_ROBOT")
    passes: list[Any] = []
    for _ in range(12):
        passes.append(dispatch(db, clock, worker_id="w", channels=robots(timeout=2), limits=limits))
        passes.append(dispatch(db, clock, worker_id="w", channels=robots(timeout=2), limits=limits))  # same minute
        clock.advance(timedelta(seconds=61))
    assert statuses(db) == {"sent": 15}
    assert delivered_markers(robot, 15) == Counter({i: 1 for i in range(15)})
    stamps = sorted(int(r.query["timestamp"]) for r in robot.state.accepted)
    assert all(later - earlier >= 60_000 for earlier, later in zip(stamps, stamps[2:], strict=False))
    assert passes[0].deferred == 11 and passes[1].claimed == 0


def test_a_dispatcher_whose_claim_was_taken_over_does_not_mark_the_row(db: Engine, clock: FixedClock) -> None:
    """Only the holder of a claim marks a row. A dispatcher stuck in a send past its claim (10
    minutes) has lost the row to the one that took it over; when its send finally returns it must
    not overwrite the taker's mark (who sent it, when) nor count the row as its own delivery."""
    queue(db, clock, 1, channel="file", address="/unused")
    taker = CrashingChannel(ok=100)
    outcome: dict[str, Any] = {}

    class Stuck:
        def __init__(self) -> None:
            self.keys: list[str] = []

        def send(self, msg: OutgoingMessage) -> None:
            self.keys.append(msg.key)
            clock.advance(timedelta(minutes=11))  # the claim expires while this send hangs
            outcome["taker"] = dispatch(db, clock, worker_id="taker", channels={"file": taker})

    stuck = Stuck()
    slow = dispatch(db, clock, worker_id="slow", channels={"file": stuck})
    assert outcome["taker"].sent == 1 and slow.sent == 0 and slow.claimed == 1
    (row,) = rows(db)
    assert row.status == "sent" and row.claimed_by is not None and row.claimed_by.startswith("taker:")
    assert stuck.keys == taker.keys == ["m:0"]  # the unavoidable repeat, documented in the module
