"""dispatch()'s bookkeeping rules, with in-process channels: what is sent is what was queued, each
failure or deferral touches only its own rows and only while the claim is held, every row is
counted, and a robot's sends are counted from the table across passes.

Found by mutation testing (issue 13): test_dispatcher.py drives real servers and checks that each
message arrives once, but not these."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event

from engine.clock import FixedClock
from engine.db import sessions, transaction
from notifications.dispatcher import dispatch
from notifications.message import DeliveryError, OutgoingMessage
from notifications.outbox import enqueue, retry_dead
from notifications.ratelimit import Limit
from tests.notifications.notify_servers import statuses
from tests.notifications.test_dispatcher import CrashingChannel, queue, rows

BIG = "校" * 4000  # 12 KB: two never fit in one 18 KB DingTalk send, so nothing is merged


class Recorder:
    """A channel that accepts every message and keeps it."""

    def __init__(self) -> None:
        self.got: list[OutgoingMessage] = []

    def send(self, msg: OutgoingMessage) -> None:
        self.got.append(msg)


class Failing:
    """A channel that refuses the messages whose key is in ``keys`` (all when None)."""

    def __init__(self, *, retryable: bool, keys: set[str] | None = None) -> None:
        self.retryable, self.keys = retryable, keys
        self.sent: list[str] = []

    def send(self, msg: OutgoingMessage) -> None:
        if self.keys is None or msg.key in self.keys:
            raise DeliveryError(f"refused {msg.key}", retryable=self.retryable)
        self.sent.append(msg.key)


def test_the_message_sent_is_the_message_queued(db: Engine, clock: FixedClock) -> None:
    """Subject, every body form and the attachment reach the channel as they were queued."""
    with transaction(sessions(db)) as session:
        enqueue(session, dedupe_key="k1", kind="digest", channel="email", address="a@example.org",
                subject="逾期提醒", text="纯文本", html="<p>网页</p>", markdown="**标记**",
                attachment_name="名单.xlsx", attachment=b"PK\x03\x04", now=clock.now())
    recorder = Recorder()
    assert dispatch(db, clock, worker_id="w", channels={"email": recorder}).sent == 1
    [msg] = recorder.got
    assert (msg.channel, msg.address, msg.key, msg.date) == ("email", "a@example.org", "k1", clock.now())
    assert (msg.subject, msg.text, msg.html, msg.markdown) == ("逾期提醒", "纯文本", "<p>网页</p>", "**标记**")
    assert (msg.attachment_name, msg.attachment) == ("名单.xlsx", b"PK\x03\x04")


def test_one_failed_message_leaves_the_others_of_the_pass_alone(db: Engine, clock: FixedClock) -> None:
    queue(db, clock, 3, channel="file", address="/unused")
    channel = Failing(retryable=True, keys={"m:0"})
    result = dispatch(db, clock, worker_id="w", channels={"file": channel}, rng=random.Random(1))
    assert (result.sent, result.retrying, channel.sent) == (2, 1, ["m:1", "m:2"])
    assert [(r.dedupe_key, r.status, r.attempts) for r in rows(db)] == [
        ("m:0", "pending", 1), ("m:1", "sent", 0), ("m:2", "sent", 0)]


def test_every_failed_row_is_counted(db: Engine, clock: FixedClock) -> None:
    queue(db, clock, 3, channel="file", address="/unused")
    result = dispatch(db, clock, worker_id="w", channels={"file": Failing(retryable=True)})
    assert (result.claimed, result.retrying, result.dead) == (3, 3, 0)
    assert statuses(db) == {"pending": 3}


def test_a_dead_letter_waits_for_no_retry_time(db: Engine, clock: FixedClock) -> None:
    """A dead row is not scheduled again: re-queued with no time given, it is due at once."""
    queue(db, clock, 1, channel="file", address="/unused")
    result = dispatch(db, clock, worker_id="w", channels={"file": Failing(retryable=False)}, rng=random.Random(7))
    [row] = rows(db)
    assert (result.dead, row.status, row.next_attempt_at) == (1, "dead", clock.now())
    with transaction(sessions(db)) as session:
        assert retry_dead(session) == 1
    assert dispatch(db, clock, worker_id="w", channels={"file": Recorder()}).sent == 1


def test_a_full_window_holds_back_only_its_own_robot(db: Engine, clock: FixedClock) -> None:
    """Two robots, one send a minute each, two messages each: each robot gets one now; the
    other message of each waits, released (no claim on it), and both waits are counted."""
    for name in ("a", "b"):
        queue(db, clock, 2, channel="dingtalk", address=f"https://robot/{name}", body=BIG, prefix=name)
    recorder = Recorder()
    result = dispatch(db, clock, worker_id="w", channels={"dingtalk": recorder},
                      limits={"dingtalk": (Limit(1, timedelta(minutes=1)),)})
    assert (result.sent, result.messages, result.deferred) == (2, 2, 2)
    assert sorted(m.key for m in recorder.got) == ["a:0", "b:0"]
    by_key = {r.dedupe_key: r for r in rows(db)}
    assert {k: r.status for k, r in by_key.items()} == {"a:0": "sent", "a:1": "pending", "b:0": "sent", "b:1": "pending"}
    for key in ("a:1", "b:1"):
        assert by_key[key].claimed_by is None and by_key[key].claimed_until is None
        assert by_key[key].next_attempt_at == clock.now() + timedelta(minutes=1)


def test_a_robots_sends_are_counted_from_the_table_in_a_later_pass(db: Engine, clock: FixedClock) -> None:
    """Each send marks its rows with its own id and time, so the next pass (or another process)
    sees how many sends the robot's window already holds, and when the window frees."""
    queue(db, clock, 2, channel="dingtalk", address="https://robot/a", body=BIG)
    clock.advance(timedelta(hours=1))  # sent an hour after they were queued
    sent_at = clock.now()
    limits = {"dingtalk": (Limit(2, timedelta(minutes=1)),)}
    first = dispatch(db, clock, worker_id="w", channels={"dingtalk": Recorder()}, limits=limits)
    assert (first.sent, first.messages) == (2, 2)
    sent = rows(db)
    assert len({r.claimed_by for r in sent}) == 2 and all(r.next_attempt_at == sent_at for r in sent)
    queue(db, clock, 1, channel="dingtalk", address="https://robot/a", prefix="now")  # the same instant
    queue(db, clock, 1, channel="dingtalk", address="https://robot/b", prefix="other")  # another robot
    queue(db, clock, 1, channel="feishu", address="https://robot/a", prefix="feishu")  # another channel
    later = Recorder()
    second = dispatch(db, clock, worker_id="other", channels={"dingtalk": later, "feishu": later},
                      limits={**limits, "feishu": (Limit(2, timedelta(minutes=1)),)})
    assert (second.claimed, second.sent, second.deferred) == (3, 2, 1)
    assert sorted(m.key for m in later.got) == ["feishu:0", "other:0"]
    [waiting] = [r for r in rows(db) if r.status == "pending"]
    assert (waiting.dedupe_key, waiting.next_attempt_at) == ("now:0", sent_at + timedelta(minutes=1))
    clock.advance(timedelta(seconds=30))
    queue(db, clock, 1, channel="dingtalk", address="https://robot/a", prefix="late")
    assert dispatch(db, clock, worker_id="w", channels={"dingtalk": later}, limits=limits).sent == 0
    clock.advance(timedelta(seconds=31))  # the first two sends are out of the window now
    assert dispatch(db, clock, worker_id="w", channels={"dingtalk": later}, limits=limits).sent == 2
    assert statuses(db) == {"sent": 6}


def test_the_documented_defaults_batch_of_50_and_8_attempts(db: Engine, clock: FixedClock) -> None:
    """docs/notifications.md: ``batch_size=50, max_attempts=8``."""
    queue(db, clock, 51, channel="file", address="/unused")
    assert dispatch(db, clock, worker_id="w", channels={"file": Recorder()}).claimed == 50
    assert dispatch(db, clock, worker_id="w", channels={"file": Recorder()}).claimed == 1
    queue(db, clock, 1, channel="file", address="/unused", prefix="f")
    failing = {"file": Failing(retryable=True)}
    for attempt in range(1, 9):
        dispatch(db, clock, worker_id="w", channels=failing)
        assert statuses(db) == {"sent": 51, "pending" if attempt < 8 else "dead": 1}
        clock.advance(timedelta(hours=7))


def test_a_dispatcher_that_lost_its_claim_leaves_the_takers_rows_alone(db: Engine, clock: FixedClock) -> None:
    """A send that hangs past the claim and then fails: the rows now belong to the dispatcher
    that took them over and sent them; the late failure neither re-queues them nor defers them."""
    queue(db, clock, 3, channel="dingtalk", address="https://robot/a")
    taker = Recorder()
    outcome: dict[str, Any] = {}

    class HangsThenFails:
        def send(self, msg: OutgoingMessage) -> None:
            clock.advance(timedelta(minutes=11))  # the claim expires while this send hangs
            outcome["taker"] = dispatch(db, clock, worker_id="taker", channels={"dingtalk": taker})
            raise DeliveryError("timed out", retryable=True)

    slow = dispatch(db, clock, worker_id="slow", channels={"dingtalk": HangsThenFails()})
    assert outcome["taker"].sent == 3 and slow.sent == 0
    assert statuses(db) == {"sent": 3}
    assert all(r.claimed_by is not None and r.claimed_by.startswith("taker:") for r in rows(db))
    assert all(r.attempts == 0 and r.last_error is None and r.next_attempt_at == r.sent_at for r in rows(db))


class Slow:
    """Accepts each message after ``minutes[i]`` minutes on the clock; ``during`` runs at the
    end of each send (another dispatcher's pass, say)."""

    def __init__(self, clock: FixedClock, minutes: list[float], during: Any = None) -> None:
        self.clock, self.minutes, self.during = clock, minutes, during
        self.keys: list[str] = []

    def send(self, msg: OutgoingMessage) -> None:
        self.clock.advance(timedelta(minutes=self.minutes[len(self.keys)]))
        self.keys.append(msg.key)
        if self.during:
            self.during()


def test_a_long_pass_keeps_its_claim_while_sends_take_up_to_half_of_it(db: Engine, clock: FixedClock) -> None:
    """Six sends of five minutes each (30 minutes, the claim is 10): the claim is renewed once half
    of it has gone, so a rival dispatcher polling after every send never gets a row."""
    queue(db, clock, 6, channel="file", address="/unused")
    rival = Recorder()
    claims: list[int] = []
    slow = Slow(clock, [5] * 6, lambda: claims.append(
        dispatch(db, clock, worker_id="rival", channels={"file": rival}).claimed))
    result = dispatch(db, clock, worker_id="slow", channels={"file": slow})
    assert (result.sent, slow.keys, claims, rival.got) == (6, [f"m:{i}" for i in range(6)], [0] * 6, [])


def test_a_claim_renewed_at_half_time_covers_a_send_longer_than_half(db: Engine, clock: FixedClock) -> None:
    queue(db, clock, 2, channel="file", address="/unused")
    rival = Recorder()
    slow = Slow(clock, [5, 9], lambda: dispatch(db, clock, worker_id="rival", channels={"file": rival}))
    assert dispatch(db, clock, worker_id="slow", channels={"file": slow}).sent == 2
    assert rival.got == []


def test_a_renewed_claim_is_trusted_for_half_its_hold_like_the_first(db: Engine, clock: FixedClock) -> None:
    """A renewal, like the claim itself, is good for half the hold without asking the table
    again: a pass renews once per half hold, not before every send (a 50-row batch would cost 50
    more writes on the outbox, each contending with the other dispatchers' claims). The first send
    takes the first half (5 of 10 minutes), so the claim is renewed once; the five quick sends after
    it fall inside the renewal's own first half."""
    queue(db, clock, 6, channel="file", address="/unused")
    renewals: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.startswith("UPDATE notification SET claimed_until"):
            renewals.append(statement)

    event.listen(db, "before_cursor_execute", seen)
    try:
        result = dispatch(db, clock, worker_id="w", channels={"file": Slow(clock, [5, 0, 0, 0, 0, 0])})
    finally:
        event.remove(db, "before_cursor_execute", seen)
    assert (result.sent, len(renewals)) == (6, 1)


def test_a_claim_holds_up_to_its_last_instant(db: Engine, clock: FixedClock) -> None:
    """A send that takes exactly the claim time (10 minutes): at that instant the rows are still
    this dispatcher's, so a rival gets none and the pass goes on."""
    queue(db, clock, 3, channel="file", address="/unused")
    rival = Recorder()
    slow = Slow(clock, [10, 0, 0], lambda: dispatch(db, clock, worker_id="rival", channels={"file": rival}))
    assert dispatch(db, clock, worker_id="slow", channels={"file": slow}).sent == 3
    assert rival.got == []


def test_an_expired_claim_stops_the_pass_even_if_nobody_took_the_rows(db: Engine, clock: FixedClock) -> None:
    """Past its claim a dispatcher cannot know whether another has the rows: it stops, and the
    next pass sends the rest."""
    queue(db, clock, 3, channel="file", address="/unused")
    slow = Slow(clock, [11, 0, 0])
    assert dispatch(db, clock, worker_id="slow", channels={"file": slow}).sent == 1
    assert statuses(db) == {"sent": 1, "pending": 2}
    assert dispatch(db, clock, worker_id="next", channels={"file": Recorder()}).sent == 2


def test_a_renewal_extends_only_the_dispatchers_own_rows(db: Engine, clock: FixedClock) -> None:
    """Rows a crashed dispatcher left claimed still come free when its claim ends, even while
    another dispatcher renews its own claim."""
    queue(db, clock, 2, channel="file", address="/unused", prefix="orphan")
    with pytest.raises(RuntimeError):
        dispatch(db, clock, worker_id="dies", channels={"file": CrashingChannel(ok=0)})
    clock.advance(timedelta(minutes=1))
    queue(db, clock, 2, channel="file", address="/unused", prefix="own")
    slow = Slow(clock, [5, 5])
    assert dispatch(db, clock, worker_id="slow", channels={"file": slow}).sent == 2  # renewed at minute 6
    assert slow.keys == ["own:0", "own:1"]
    assert dispatch(db, clock, worker_id="next", channels={"file": Recorder()}).sent == 2  # minute 11


def test_delivered_and_dead_rows_never_fill_a_pass(db: Engine, clock: FixedClock) -> None:
    """A pass's batch counts only due pending rows: the outbox's history cannot starve new ones."""
    queue(db, clock, 1, channel="file", address="/unused", prefix="old")
    queue(db, clock, 1, channel="email", address="a@example.org", prefix="gone")
    dispatch(db, clock, worker_id="w", channels={"file": Recorder()})  # email: no channel, dead
    assert statuses(db) == {"sent": 1, "dead": 1}
    clock.advance(timedelta(minutes=1))
    queue(db, clock, 1, channel="file", address="/unused", prefix="new")
    assert dispatch(db, clock, worker_id="w", channels={"file": Recorder()}, batch_size=1).sent == 1
    assert statuses(db) == {"sent": 2, "dead": 1}
    sent = [r.claimed_by for r in rows(db) if r.status == "sent"]
    assert len(set(sent)) == 2 and all(c is not None and "/" in c for c in sent)


def test_a_pass_takes_at_most_its_batch(db: Engine, clock: FixedClock) -> None:
    queue(db, clock, 3, channel="file", address="/unused")
    first = Recorder()
    assert dispatch(db, clock, worker_id="w", channels={"file": first}, batch_size=2).claimed == 2
    assert [m.key for m in first.got] == ["m:0", "m:1"]  # the oldest first
    assert statuses(db) == {"sent": 2, "pending": 1}
    assert [r.claimed_by for r in rows(db) if r.status == "pending"] == [None]  # the third was never claimed


def test_a_pass_that_lost_its_claim_sends_none_of_its_chat_rows(db: Engine, clock: FixedClock) -> None:
    """A single message hangs past the claim and another dispatcher takes over the pass's rows and
    sends them: the late pass stops before its next single and must not go on to send the
    robot message a second time."""
    queue(db, clock, 2, channel="file", address="/unused", prefix="file")
    queue(db, clock, 1, channel="dingtalk", address="https://robot/a", prefix="robot")
    taker = Recorder()
    hang = Slow(clock, [11, 0], lambda: dispatch(db, clock, worker_id="taker", channels={"file": taker, "dingtalk": taker}))
    late = Recorder()
    slow = dispatch(db, clock, worker_id="slow", channels={"file": hang, "dingtalk": late})
    assert sorted(m.key for m in taker.got) == ["file:0", "file:1", "robot:0"] and late.got == []
    assert (slow.sent, hang.keys, statuses(db)) == (0, ["file:0"], {"sent": 3})


def test_after_a_robot_fails_the_rest_wait_at_least_the_backoff_base(db: Engine, clock: FixedClock) -> None:
    queue(db, clock, 3, channel="dingtalk", address="https://robot/a")
    result = dispatch(db, clock, worker_id="w", channels={"dingtalk": Failing(retryable=True, keys={"m:0"})},
                      rng=random.Random(2))
    assert (result.retrying, result.deferred) == (1, 2)
    rest = [r for r in rows(db) if r.dedupe_key != "m:0"]
    assert all(r.next_attempt_at == clock.now() + timedelta(minutes=1) and r.attempts == 0 for r in rest)
    assert dispatch(db, clock, worker_id="w", channels={"dingtalk": Recorder()}).claimed == 0


def test_without_channels_given_the_configured_ones_deliver(db: Engine, clock: FixedClock, tmp_path: Path) -> None:
    queue(db, clock, 1, channel="file", address=str(tmp_path / "out"))
    assert dispatch(db, clock, worker_id="w").sent == 1
    assert len(list((tmp_path / "out").iterdir())) == 1
