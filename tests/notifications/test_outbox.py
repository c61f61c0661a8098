"""enqueue / list / retry_dead on both databases."""

from __future__ import annotations

from sqlalchemy import Engine, func, select, update

from engine.clock import FixedClock
from engine.db import sessions, transaction
from engine.models import Notification
from notifications.outbox import enqueue, list_notifications, retry_dead


def _enqueue(db: Engine, clock: FixedClock, key: str, **kw: object) -> Notification | None:
    with transaction(sessions(db)) as session:
        args: dict = dict(dedupe_key=key, kind="overdue", channel="file", address="/tmp/x",
                          subject="逾期提醒", text="正文", now=clock.now())
        args.update(kw)
        return enqueue(session, **args)


def test_enqueue_twice_keeps_one_row(db: Engine, clock: FixedClock) -> None:
    first = _enqueue(db, clock, "overdue:run:17:practice:2022-08-31:county:+7")
    again = _enqueue(db, clock, "overdue:run:17:practice:2022-08-31:county:+7", subject="changed")
    assert first is not None and first.status == "pending" and first.next_attempt_at == clock.now()
    assert again is None
    with sessions(db)() as session:
        assert session.scalar(select(func.count()).select_from(Notification)) == 1
        assert session.scalar(select(Notification.subject)) == "逾期提醒"


def test_enqueue_inside_a_rolled_back_transaction_leaves_nothing(db: Engine, clock: FixedClock) -> None:
    factory = sessions(db)
    with factory() as session:
        session.begin()
        assert enqueue(session, dedupe_key="k", kind="reminder", channel="file", address="/tmp/x",
                       subject="s", text="t", now=clock.now()) is not None
        session.rollback()
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Notification)) == 0


def test_retry_dead_requeues_only_dead_letters(db: Engine, clock: FixedClock) -> None:
    ids = [n.id for n in (_enqueue(db, clock, f"k{i}") for i in range(3)) if n is not None]
    with transaction(sessions(db)) as session:
        session.execute(update(Notification).where(Notification.id.in_(ids[:2]))
                        .values(status="dead", attempts=8, last_error="HTTP 500"))
        session.execute(update(Notification).where(Notification.id == ids[2]).values(status="sent"))
    with transaction(sessions(db)) as session:
        failed = list_notifications(session, failed=True)
        assert sorted(n.id for n in failed) == ids[:2]
        assert retry_dead(session, [ids[0], ids[2]]) == 1  # the sent one is left alone
    with transaction(sessions(db)) as session:
        row = session.get(Notification, ids[0])
        assert row is not None and (row.status, row.attempts, row.last_error) == ("pending", 0, "HTTP 500")
        assert retry_dead(session) == 1
        assert [n.status for n in list_notifications(session, status="sent")] == ["sent"]
        assert retry_dead(session) == 0
