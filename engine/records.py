"""The persistent state of uploads: import jobs and the API tokens platforms push data with.

Kept beside ``engine.models`` (same ``Base``, same migrations) so that module stays readable in
one sitting; migration 0009 creates both tables.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import UTCDateTime
from engine.models import Base


class ImportJob(Base):
    """One file brought in through the web or the API: uploaded, previewed, then committed.

    The file itself lies in the upload folder under ``stored_name``; its SHA-256 is checked again
    before the commit, so what is written is what was previewed. ``problems`` and ``groups`` are
    the preview (JSON, capped at the importers' MAX_PROBLEMS); ``rows_read`` moves while a
    background job reads. ``idempotency_key`` makes an API retry return the first result.
    """

    __tablename__ = "import_job"
    __table_args__ = (UniqueConstraint("user_id", "idempotency_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    username: Mapped[str] = mapped_column(String(60))
    role: Mapped[str] = mapped_column(String(40))
    scope_code: Mapped[str] = mapped_column(String(10), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    mapping: Mapped[str] = mapped_column(String(100))
    filename: Mapped[str] = mapped_column(String(200))
    stored_name: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    encoding: Mapped[str | None] = mapped_column(String(20))
    columns: Mapped[Any] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(20))  # uploaded|reading|ready|problems|committing|imported|failed
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    rows_expected: Mapped[int | None] = mapped_column(Integer)
    total: Mapped[int | None] = mapped_column(Integer)
    inserted: Mapped[int | None] = mapped_column(Integer)
    updated: Mapped[int | None] = mapped_column(Integer)
    unchanged: Mapped[int | None] = mapped_column(Integer)
    groups: Mapped[Any] = mapped_column(JSON)
    problems: Mapped[Any] = mapped_column(JSON)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    committed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


class ApiToken(Base):
    """A platform's API token for a service account (a ``User`` that never signs in with a
    password). Only the SHA-256 of the token is kept: it is shown once, when issued."""

    __tablename__ = "api_token"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))  # what `tokens list` shows to tell tokens apart
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Requests in the current minute (engine/tokens.py throttle: 429 above the limit).
    window_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    window_count: Mapped[int] = mapped_column(Integer, default=0)
