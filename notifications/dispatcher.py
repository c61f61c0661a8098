"""Deliver due outbox rows: claim, send, mark — each step its own transaction.

Why this shape (issue 3: "exactly once, even across restarts and outages"):

* **Claim, then commit.** Due rows (pending, ``next_attempt_at <= now``, claim absent or expired)
  are claimed by setting ``claimed_by``/``claimed_until`` and committing before anything is sent.
  On PostgreSQL the claim uses ``SELECT … FOR UPDATE SKIP LOCKED``, so any number of dispatcher
  processes get disjoint rows. SQLite silently ignores SKIP LOCKED (LIBRARY-NOTES), so there the
  claim is one atomic ``UPDATE … WHERE claimed_until IS NULL OR claimed_until < now`` under
  SQLite's single writer lock; still, **run one dispatcher process on SQLite**.
* **Mark each message sent right after its own send**, in its own transaction. A dispatcher that
  dies mid-batch leaves only unsent rows behind; their claim expires and another pass sends them.
* **The one unavoidable window**: the far end accepted a message and the process died before the
  sent mark committed. That message is sent again after the claim expires. Email keeps a
  Message-ID derived from the dedupe key so clients can fold the repeat; the file channel writes the
  same file name again (idempotent). Robots have no idempotency key, so a repeat is possible there.
* **Failures** add an attempt and back off with full jitter, ``uniform(0, min(cap, base·2^n))``;
  after ``max_attempts`` (or at once for errors that retrying cannot fix) the row is dead until
  someone runs ``rollout notify retry``.
* **Robots' rate limits**: messages for one robot are merged when there are more of them than free
  slots in its window, and the rest wait until the window frees (``next_attempt_at``). A sent row
  keeps ``claimed_by`` = the id of the send that carried it and ``next_attempt_at`` = its send time,
  so a later pass (or another process) can count a robot's recent sends from the table.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, func, or_, select, update

from engine import Clock, Notification, RolloutError
from notifications.channels import CHAT_CHANNELS, default_channels, dingtalk, feishu, wecom
from notifications.merge import Unit, pack
from notifications.message import Channel, DeliveryError, OutgoingMessage
from notifications.outbox import enqueue, list_notifications, retry_dead
from notifications.ratelimit import Limit, RateLimiter, RobotKey

__all__ = ["DispatchResult", "dispatch", "enqueue", "list_notifications", "retry_dead"]

N = Notification
SIZE_CAPS = {"dingtalk": dingtalk.MAX_BYTES, "wecom": wecom.MAX_BYTES, "feishu": feishu.MAX_BYTES}
ERROR_CHARS = 2000


@dataclass
class DispatchResult:
    claimed: int = 0  # outbox rows taken in this pass
    sent: int = 0  # rows delivered
    messages: int = 0  # sends made (a merged send delivers several rows)
    retrying: int = 0  # rows that failed and will be tried again
    dead: int = 0  # rows given up on
    deferred: int = 0  # rows waiting for a robot's rate window


@dataclass(frozen=True)
class _Row:
    id: int
    dedupe_key: str
    channel: str
    address: str
    secret_ref: str | None
    subject: str
    body_text: str
    body_html: str | None
    body_markdown: str | None
    attachment_name: str | None
    attachment: bytes | None
    attempts: int


@dataclass(frozen=True)
class Backoff:
    base: timedelta = timedelta(minutes=1)
    cap: timedelta = timedelta(hours=6)

    def delay(self, attempts_before: int, rng: random.Random) -> timedelta:
        ceiling = min(self.cap.total_seconds(), self.base.total_seconds() * 2 ** min(attempts_before, 40))
        return timedelta(seconds=rng.uniform(0, ceiling))


def _due(now: datetime) -> object:
    return and_(
        N.status == "pending",
        N.next_attempt_at <= now,
        or_(N.claimed_until.is_(None), N.claimed_until < now),
    )


def _claim(engine: Engine, now: datetime, token: str, batch_size: int, hold: timedelta) -> list[_Row]:
    due = _due(now)
    order = (N.next_attempt_at, N.id)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            ids = list(conn.scalars(
                select(N.id).where(due).order_by(*order).limit(batch_size)  # type: ignore[arg-type]
                .with_for_update(skip_locked=True)
            ))
            if not ids:
                return []
            conn.execute(update(N).where(N.id.in_(ids)).values(claimed_by=token, claimed_until=now + hold))
        else:
            picked = select(N.id).where(due).order_by(*order).limit(batch_size)  # type: ignore[arg-type]
            conn.execute(
                update(N).where(N.id.in_(picked.scalar_subquery()), due)  # type: ignore[arg-type]
                .values(claimed_by=token, claimed_until=now + hold)
            )
        cols = [getattr(N, f) for f in _Row.__dataclass_fields__]
        rows = conn.execute(
            select(*cols).where(N.claimed_by == token, N.status == "pending").order_by(*order)
        ).all()
    return [_Row(*row) for row in rows]


def _message(row: _Row, now: datetime) -> OutgoingMessage:
    return OutgoingMessage(
        channel=row.channel, address=row.address, secret_ref=row.secret_ref, subject=row.subject,
        text=row.body_text, html=row.body_html, markdown=row.body_markdown,
        attachment_name=row.attachment_name, attachment=row.attachment, key=row.dedupe_key, date=now,
    )


def _seed_limiter(engine: Engine, limiter: RateLimiter, keys: set[RobotKey], now: datetime) -> None:
    """Feed the limiter the sends already made to these robots, by any process."""
    with engine.connect() as conn:
        for channel, address in keys:
            window = limiter.longest_window(channel)
            if window is None:
                continue
            stmt = (
                select(func.max(N.next_attempt_at))
                .where(N.status == "sent", N.next_attempt_at > now - window, N.next_attempt_at <= now)
                .where(N.channel == channel, N.address == address)
                .group_by(N.claimed_by)
            )
            for at in conn.scalars(stmt):
                limiter.record((channel, address), at)


class _Pass:
    """One dispatch pass: the claimed rows, their token, and the bookkeeping after each send."""

    def __init__(self, engine: Engine, clock: Clock, token: str, hold: timedelta,
                 max_attempts: int, rng: random.Random, backoff: Backoff) -> None:
        self.engine, self.clock, self.token, self.hold = engine, clock, token, hold
        self.max_attempts, self.rng, self.backoff = max_attempts, rng, backoff
        self.now = clock.now()
        self.claimed_until = self.now + hold
        self.result = DispatchResult()
        self.sends = 0

    def keep_claim(self) -> bool:
        """Extend the claim before it can expire mid-pass; False when another dispatcher took it."""
        now = self.clock.now()
        if now + self.hold / 2 < self.claimed_until:
            return True
        with self.engine.begin() as conn:
            result = conn.execute(
                update(N).where(N.claimed_by == self.token, N.status == "pending", N.claimed_until >= now)
                .values(claimed_until=now + self.hold)
            )
        renewed = bool(result.rowcount)
        # Lost: every later check must go to the table again (and fail), not trust a renewal
        # that never happened; a pass once sent its chat rows after losing the claim on a single.
        self.claimed_until = now + self.hold if renewed else now
        return renewed

    def sent(self, ids: Sequence[int]) -> None:
        now = self.clock.now()
        self.sends += 1
        with self.engine.begin() as conn:
            done = conn.execute(
                update(N).where(N.id.in_(ids), N.claimed_by == self.token)
                .values(status="sent", sent_at=now, next_attempt_at=now, last_error=None,  # no stale error on a sent row (issue 17, 19)
                        claimed_by=f"{self.token}/{self.sends}", claimed_until=None)
            ).rowcount
        self.result.sent += int(done)
        self.result.messages += 1

    def failed(self, rows: Sequence[_Row], error: DeliveryError) -> datetime:
        """Record a failed send; returns when the rows will be tried again."""
        now = self.clock.now()
        message = str(error)[:ERROR_CHARS]
        retry_at = now
        with self.engine.begin() as conn:
            for row in rows:
                attempts = row.attempts + 1
                dead = not error.retryable or attempts >= self.max_attempts
                at = now if dead else now + self.backoff.delay(row.attempts, self.rng)
                retry_at = max(retry_at, at)
                conn.execute(
                    update(N).where(N.id == row.id, N.claimed_by == self.token)
                    .values(status="dead" if dead else "pending", attempts=attempts, last_error=message,
                            next_attempt_at=at, claimed_by=None, claimed_until=None)
                )
                if dead:
                    self.result.dead += 1
                else:
                    self.result.retrying += 1
        return retry_at

    def defer(self, ids: Sequence[int], until: datetime) -> None:
        if not ids:
            return
        with self.engine.begin() as conn:
            conn.execute(
                update(N).where(N.id.in_(ids), N.claimed_by == self.token)
                .values(next_attempt_at=until, claimed_by=None, claimed_until=None)
            )
        self.result.deferred += len(ids)


def _deliver(run: _Pass, channels: Mapping[str, Channel], unit: Unit, rows: Sequence[_Row]) -> DeliveryError | None:
    channel = channels.get(unit.message.channel)
    try:
        if channel is None:
            raise DeliveryError(f"no channel '{unit.message.channel}' configured", retryable=False)
        channel.send(unit.message)
    except DeliveryError as exc:
        run.failed(rows, exc)
        return exc
    except RolloutError as exc:
        # Configuration the user must fix (e.g. ROLLOUT_CONFIG names a missing file): park the
        # rows as dead letters with the reason instead of aborting the whole pass.
        error = DeliveryError(str(exc), retryable=False)
        run.failed(rows, error)
        return error
    run.sent(unit.ids)
    return None


def dispatch(
    engine: Engine,
    clock: Clock,
    *,
    worker_id: str,
    batch_size: int = 50,
    max_attempts: int = 8,
    channels: Mapping[str, Channel] | None = None,
    rng: random.Random | None = None,
    limits: Mapping[str, tuple[Limit, ...]] | None = None,
    backoff: Backoff | None = None,
    claim_for: timedelta = timedelta(minutes=10),
) -> DispatchResult:
    """One pass over the outbox: claim up to ``batch_size`` due rows and try to deliver them."""
    channels = default_channels() if channels is None else channels
    run = _Pass(engine, clock, f"{worker_id[:60]}:{uuid.uuid4().hex[:16]}", claim_for,
                max_attempts, rng or random.Random(), backoff or Backoff())
    rows = _claim(engine, run.now, run.token, batch_size, claim_for)
    run.result.claimed = len(rows)
    by_id = {row.id: row for row in rows}
    robots: dict[RobotKey, list[Unit]] = defaultdict(list)
    singles: list[Unit] = []
    for row in rows:
        unit = Unit((row.id,), _message(row, run.now))
        if row.channel in CHAT_CHANNELS:
            robots[(row.channel, row.address)].append(unit)
        else:
            singles.append(unit)
    limiter = RateLimiter(clock, limits)
    _seed_limiter(engine, limiter, set(robots), run.now)

    for unit in singles:
        if not run.keep_claim():
            break
        _deliver(run, channels, unit, [by_id[i] for i in unit.ids])
    for key, units in robots.items():
        by_secret: dict[str | None, list[Unit]] = defaultdict(list)
        for unit in units:
            by_secret[unit.message.secret_ref].append(unit)
        for group in by_secret.values():
            send_now, later = pack(group, limiter.available(key), SIZE_CAPS.get(key[0], 4096))
            for index, unit in enumerate(send_now):
                if not run.keep_claim():
                    return run.result
                error = _deliver(run, channels, unit, [by_id[i] for i in unit.ids])
                limiter.record(key)
                if error is not None and error.retryable:
                    # The robot is down or blocking us: do not hammer it with the rest now.
                    until = limiter.next_free(key)
                    rest = [i for u in send_now[index + 1:] for i in u.ids]
                    run.defer(rest, max(until, run.now + run.backoff.base))
                    break
            run.defer([i for u in later for i in u.ids], limiter.next_free(key))
    return run.result
