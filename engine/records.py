"""Records kept beside ``engine.models`` (same ``Base``, same migrations) so that module stays
readable in one sitting: uploads' import jobs and the API tokens platforms push data with
(migration 0009), the per-county tallies the dashboard reads (migration 0011, engine/tally.py),
each school run's stored forecast risk (migration 0014), and the index the province forecast
reads its teachers through (migration 0015).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import UTCDateTime
from engine.models import Base, SchoolRun, Teacher

# "Is any run of this plan not derived yet?" is asked on every page (run_status.ensure_current);
# without this index it read all 50,000 runs of a province to answer no.
Index("ix_school_run_plan_derived", SchoolRun.plan_id, SchoolRun.derived_ok)

# The province forecast (engine/forecast/sums.py, issue 11 speed) reads a province's present
# teachers in (school, platform id) order: from this index alone (the school_code index alone read
# every teacher's wide row and sorted each school's by platform id). Migration 0015.
Index("ix_teacher_school_order", Teacher.school_code, Teacher.platform_id, Teacher.left_on, Teacher.id)


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


class RunTally(Base):
    """How many of a county's runs of a plan share a batch, stage, verdict, start and due date.

    The overview of a province reads ~2,000 of these instead of 50,000 runs; the states (逾期,
    即将到期 …) depend on today, so they are worked out when read, from ``due_date`` and
    ``started_at``, by the same rule as every other list (engine/school_state.py)."""

    __tablename__ = "run_tally"
    __table_args__ = (Index("ix_run_tally_plan_county", "plan_id", "county_code"),
                      Index("ix_run_tally_plan_city", "plan_id", "city_code"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plan.id"))
    province_code: Mapped[str | None] = mapped_column(String(6))
    city_code: Mapped[str | None] = mapped_column(String(6))
    county_code: Mapped[str] = mapped_column(String(6))
    batch_id: Mapped[int] = mapped_column(ForeignKey("batch.id"))
    stage: Mapped[str] = mapped_column(String(60))
    blocked: Mapped[bool] = mapped_column(Boolean)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_date: Mapped[date | None] = mapped_column(Date)
    runs: Mapped[int] = mapped_column(Integer)


class RateTally(Base):
    """A named rate's numerator and denominator over one county's runs of a plan (engine/rates.py)."""

    __tablename__ = "rate_tally"
    __table_args__ = (Index("ix_rate_tally_plan_county", "plan_id", "county_code"),
                      Index("ix_rate_tally_plan_city", "plan_id", "city_code"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plan.id"))
    province_code: Mapped[str | None] = mapped_column(String(6))
    city_code: Mapped[str | None] = mapped_column(String(6))
    county_code: Mapped[str] = mapped_column(String(6))
    rate_id: Mapped[str] = mapped_column(String(60))
    numerator: Mapped[int] = mapped_column(Integer)
    denominator: Mapped[int] = mapped_column(Integer)
class RunRisk(Base):
    """A school run's latest forecast (预警, issue 11), as the sweep or ``rollout forecast --store``
    computed it: one row per run, replaced by each computation. ``as_of_import_id`` / ``as_of`` are
    the latest progress import the forecast read; a later import, or age, makes the row stale
    (``engine.forecast.store``). ``risk`` is the larger of the two probabilities (what "at risk"
    compares with a threshold); NULL when the forecast gives neither (no history)."""

    __tablename__ = "run_risk"
    run_id: Mapped[int] = mapped_column(ForeignKey("school_run.id"), primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plan.id"), index=True)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    as_of_import_id: Mapped[int | None] = mapped_column(ForeignKey("progress_import.id"))
    as_of: Mapped[date | None] = mapped_column(Date)
    stage: Mapped[str] = mapped_column(String(60))
    status: Mapped[str] = mapped_column(String(20))  # ok | passed | no_history
    due_date: Mapped[date | None] = mapped_column(Date)
    p_miss_due: Mapped[float | None] = mapped_column(Float)
    p_miss_final: Mapped[float | None] = mapped_column(Float)
    risk: Mapped[float | None] = mapped_column(Float, index=True)
    eta_p50: Mapped[date | None] = mapped_column(Date)
    eta_p90: Mapped[date | None] = mapped_column(Date)
    eta_beyond: Mapped[bool] = mapped_column(Boolean, default=False)
    teachers_at_risk: Mapped[int] = mapped_column(Integer, default=0)
    samples: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(20))  # sweep | cli
