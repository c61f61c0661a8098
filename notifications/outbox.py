"""The outbox table's front door: queue a notification once, look at it, re-queue dead letters.

``enqueue`` runs inside the caller's transaction (the sweep's), so a notification exists exactly
when the decision that caused it was committed. The dedupe key makes a second enqueue a no-op —
``INSERT … ON CONFLICT DO NOTHING`` on both SQLite and PostgreSQL, so two sweeps racing on the same
key never raise an IntegrityError or abort the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from engine import Notification, as_utc
from notifications.channels import CHANNEL_NAMES

STATUSES = ("pending", "sent", "dead")


def enqueue(session: Session, **fields: Any) -> Notification | None:
    """Queue one notification (``fields`` as for ``outgoing``); ``None`` when its dedupe key is
    already queued (or sent)."""
    row = outgoing(**fields)
    new_id = enqueue_many(session, [row]).get(str(row["dedupe_key"]))
    return None if new_id is None else session.get(Notification, new_id)


def outgoing(
    *,
    dedupe_key: str,
    kind: str,
    channel: str,
    address: str,
    subject: str,
    text: str,
    html: str | None = None,
    markdown: str | None = None,
    secret_ref: str | None = None,
    contact_id: int | None = None,
    attachment_name: str | None = None,
    attachment: bytes | None = None,
    now: datetime,
) -> dict[str, object]:
    """One outbox row, checked, ready for ``enqueue_many``."""
    if channel not in CHANNEL_NAMES:
        raise ValueError(f"unknown channel {channel!r}; expected one of {CHANNEL_NAMES}")
    now = as_utc(now)
    return dict(
        dedupe_key=dedupe_key, kind=kind, contact_id=contact_id, channel=channel, address=address,
        secret_ref=secret_ref, subject=subject[:300], body_text=text, body_html=html,
        body_markdown=markdown, attachment_name=attachment_name, attachment=attachment,
        status="pending", attempts=0, next_attempt_at=now, created_at=now,
    )


def enqueue_many(session: Session, rows: Sequence[dict[str, object]]) -> dict[str, int]:
    """Queue many rows in one statement; returns dedupe key → id of the rows that were new.

    A sweep that falls due for 5,000 schools queues 5,000 digests: one multi-row
    ``INSERT … ON CONFLICT DO NOTHING RETURNING`` instead of 5,000 round trips."""
    if not rows:
        return {}
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = cast(Table, Notification.__table__)
    stmt = insert(table).on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(table.c.dedupe_key, table.c.id)
    return {key: int(new_id) for key, new_id in session.connection().execute(stmt, list(rows))}


def failed_filter() -> object:
    """Dead letters, and pending rows that already failed at least once."""
    return or_(
        Notification.status == "dead",
        and_(Notification.status == "pending", Notification.attempts > 0),
    )


def list_notifications(
    session: Session, status: str | None = None, limit: int = 100, *, failed: bool = False
) -> list[Notification]:
    """Newest first."""
    stmt = select(Notification).order_by(Notification.id.desc()).limit(limit)
    if status is not None:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {status!r}")
        stmt = stmt.where(Notification.status == status)
    if failed:
        stmt = stmt.where(failed_filter())  # type: ignore[arg-type]
    return list(session.scalars(stmt))


def retry_dead(session: Session, ids: Sequence[int] | None = None, *, now: datetime | None = None) -> int:
    """Put dead letters back in the queue with a fresh attempt budget; returns how many.

    ``ids=None`` re-queues every dead letter. Rows that are not dead are left alone, so retrying
    a delivered notification can never send it twice. The last error is kept for the record.
    """
    values: dict[str, object] = {"status": "pending", "attempts": 0, "claimed_by": None, "claimed_until": None}
    if now is not None:
        values["next_attempt_at"] = as_utc(now)
    stmt = update(Notification).where(Notification.status == "dead").values(**values)
    if ids is not None:
        if not ids:
            return 0
        stmt = stmt.where(Notification.id.in_(list(ids)))
    result = session.execute(stmt.execution_options(synchronize_session=False))
    return int(result.rowcount)  # type: ignore[attr-defined]
