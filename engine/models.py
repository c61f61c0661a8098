"""Typed SQLAlchemy models: the persistent state of a programme.

Schema changes go through Alembic migrations in ``engine/migrations``; a test checks they agree.
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
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from engine.db import UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Region(Base):
    """A GB/T 2260 administrative division: province, city or county."""
    __tablename__ = "region"
    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(10))  # province | city | county
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("region.code"), index=True)


class School(Base):
    """A school, identified by its 10-digit national school identifier (学校标识码)."""
    __tablename__ = "school"
    code: Mapped[str] = mapped_column(String(10), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    county_code: Mapped[str] = mapped_column(ForeignKey("region.code"), index=True)
    # Denormalised from the region tree at import, so status by city/province is one GROUP BY.
    city_code: Mapped[str | None] = mapped_column(String(6), index=True)
    province_code: Mapped[str | None] = mapped_column(String(6), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    rural: Mapped[bool] = mapped_column(Boolean, default=False)
    pilot: Mapped[bool] = mapped_column(Boolean, default=False)


class WorkflowVersion(Base):
    """A workflow file as loaded: runs pin to one of these and never see later edits."""
    __tablename__ = "workflow_version"
    __table_args__ = (UniqueConstraint("workflow_id", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workflow_id: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(40))
    content_hash: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text, deferred=True)  # read only when a version is parsed
    source_name: Mapped[str] = mapped_column(String(300))
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Plan(Base):
    """An office's plan: which schools run which workflow version, in which batches, by when."""
    __tablename__ = "plan"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    workflow_version_id: Mapped[int] = mapped_column(ForeignKey("workflow_version.id"))
    year: Mapped[int] = mapped_column(Integer)
    timezone: Mapped[str] = mapped_column(String(60), default="Asia/Shanghai")
    final_deadline: Mapped[date | None] = mapped_column(Date)
    extension_cap: Mapped[date | None] = mapped_column(Date)
    final_deadline_stages: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)  # final_deadline_binds; None: all
    region_code: Mapped[str | None] = mapped_column(ForeignKey("region.code"))
    # Deferred: a province's plan file is 420 KB, and every page loads its plan (3.5 ms a lookup on PG)
    source: Mapped[str] = mapped_column(Text, deferred=True)
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Batch(Base):
    """A batch of a plan (pilot, batch 1, 2, 3 …) with its start date and stage deadlines."""
    __tablename__ = "batch"
    __table_args__ = (UniqueConstraint("plan_id", "code"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plan.id"))
    code: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(200))
    start: Mapped[date] = mapped_column(Date)
    share: Mapped[float | None] = mapped_column(Float)
    # stage id -> ISO date (local to the plan's timezone); absent stages use the workflow's rule.
    deadlines: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class SchoolRun(Base):
    """One school's way through one plan's workflow: the state machine's persisted state."""
    __tablename__ = "school_run"
    __table_args__ = (
        UniqueConstraint("plan_id", "school_code"),
        Index("ix_school_run_plan_state", "plan_id", "state"),
        Index("ix_school_run_plan_due", "plan_id", "due_date"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plan.id"))
    school_code: Mapped[str] = mapped_column(ForeignKey("school.code"), index=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batch.id"), index=True)
    workflow_version_id: Mapped[int] = mapped_column(ForeignKey("workflow_version.id"))
    state: Mapped[str] = mapped_column(String(60))
    # Where a suspended or returned run came from, so 'resume' knows where to go back to.
    previous_state: Mapped[str | None] = mapped_column(String(60))
    stage_entered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)  # optimistic lock: every write (transition, fact, extension) bumps it
    contractor: Mapped[str | None] = mapped_column(String(100), index=True)  # 承训单位 (seed 002), imports/contractors
    # Derived status, stored so that a province's status table or overdue list is one indexed
    # query instead of a gate evaluation over a million teachers. engine/run_status.py recomputes
    # these in the same transaction as every change they depend on (transition, fact, progress
    # import, plan load, calendar change); ``derived_ok`` False means "not computed yet".
    due_date: Mapped[date | None] = mapped_column(Date)
    due_source: Mapped[str | None] = mapped_column(String(12))
    due_provisional: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    blocked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    failing: Mapped[Any] = mapped_column(JSON, nullable=True)  # the current stage's failing gates (GateResult dicts)
    derived_ok: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Set when a plan edit removed the school (closed, merged): the run and its history stay,
    # lists, counts and transitions leave it out (engine/plan_edit.py, migration 0008).
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __mapper_args__ = {"version_id_col": version}


class RunDeadline(Base):
    """A per-school deadline that replaces the plan's for one stage (override or extension)."""
    __tablename__ = "run_deadline"
    __table_args__ = (UniqueConstraint("run_id", "stage"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("school_run.id"))
    stage: Mapped[str] = mapped_column(String(60))
    due: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(20))  # override | extension
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(100))


class SchoolFact(Base):
    """A school-level fact a gate may test: plan filed, team members, assessment done …"""
    __tablename__ = "school_fact"
    run_id: Mapped[int] = mapped_column(ForeignKey("school_run.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[float] = mapped_column(Float)
    note: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[str] = mapped_column(String(100))


class Teacher(Base):
    """A teacher's progress as exported by the provincial platform. No national ID numbers."""
    __tablename__ = "teacher"
    __table_args__ = {"postgresql_with": {"fillfactor": 50}}  # a re-import's row versions stay on their page (0016)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform_id: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    school_code: Mapped[str] = mapped_column(ForeignKey("school.code"), index=True)
    online_hours: Mapped[float] = mapped_column(Float, default=0.0)
    practice_hours: Mapped[float] = mapped_column(Float, default=0.0)
    # Chosen micro-capability points (1..30), sorted, comma-separated; count kept for SQL gates.
    points: Mapped[str] = mapped_column(String(20), default="")
    points_count: Mapped[int] = mapped_column(Integer, default=0)
    evidence_count: Mapped[int] = mapped_column(Integer, default=0)
    evidence_result: Mapped[str | None] = mapped_column(String(12))  # pass | excellent | fail
    role: Mapped[str] = mapped_column(String(20), default="teacher", server_default="teacher")  # teacher | management (002)
    left_on: Mapped[date | None] = mapped_column(Date)  # a --full export stopped listing them: gates stop counting them


class ProgressImport(Base):
    """One accepted progress file (provenance), also on the ``import:progress`` audit chain."""
    __tablename__ = "progress_import"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    as_of: Mapped[date] = mapped_column(Date, index=True)  # the export's date, not the import's
    file_name: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    mapping: Mapped[str] = mapped_column(String(300))
    actor: Mapped[str] = mapped_column(String(100))
    full: Mapped[bool] = mapped_column(Boolean, default=False)
    total: Mapped[int] = mapped_column(Integer)
    inserted: Mapped[int] = mapped_column(Integer)
    updated: Mapped[int] = mapped_column(Integer)
    unchanged: Mapped[int] = mapped_column(Integer)
    left_school: Mapped[int] = mapped_column(Integer, default=0)  # marked left by a --full import (rows rejected: always 0, all or nothing)


class TeacherProgress(Base):
    """A teacher's figures as of one import, stored only when they changed (history, not copies), and its figures before (``prior_*``; NULL on its first row): a forecast's base (``engine.forecast.base``).
    Keyed (import, teacher) so an import appends, without foreign keys (migrations 0017, 0018; ``audit verify`` checks both ids);
    on SQLite stored in its key (WITHOUT ROWID, 0019)."""
    __tablename__ = "teacher_progress"
    __table_args__ = (PrimaryKeyConstraint("import_id", "teacher_id"), {"sqlite_with_rowid": False})
    import_id: Mapped[int] = mapped_column(Integer)  # progress_import.id
    teacher_id: Mapped[int] = mapped_column(Integer)  # teacher.id
    online_hours: Mapped[float] = mapped_column(Float)
    practice_hours: Mapped[float] = mapped_column(Float)
    points_count: Mapped[int] = mapped_column(Integer)
    evidence_count: Mapped[int] = mapped_column(Integer)
    evidence_result: Mapped[str | None] = mapped_column(String(12))
    left_school: Mapped[bool] = mapped_column(Boolean, default=False)  # this row marks the leaving
    prior_online_hours: Mapped[float | None] = mapped_column(Float)
    prior_practice_hours: Mapped[float | None] = mapped_column(Float)
    prior_points_count: Mapped[int | None] = mapped_column(Integer)
    prior_evidence_count: Mapped[int | None] = mapped_column(Integer)


class AuditEvent(Base):
    """An append-only, hash-chained record of one change (one chain per school run or plan).

    ``payload`` holds the exact canonical bytes that were hashed; the other columns are a readable,
    queryable copy that verification checks against the payload.
    """
    __tablename__ = "audit_event"
    __table_args__ = (
        UniqueConstraint("chain", "seq"),
        Index("ix_audit_event_at", "at"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    chain: Mapped[str] = mapped_column(String(40))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(100), index=True)
    role: Mapped[str] = mapped_column(String(40))
    plan_id: Mapped[int | None] = mapped_column(Integer)
    run_id: Mapped[int | None] = mapped_column(Integer)
    school_code: Mapped[str | None] = mapped_column(String(10), index=True)
    from_state: Mapped[str | None] = mapped_column(String(60))
    to_state: Mapped[str | None] = mapped_column(String(60))
    trigger: Mapped[str] = mapped_column(String(60), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    gates: Mapped[Any] = mapped_column(JSON)
    workflow_version: Mapped[str | None] = mapped_column(String(140))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    payload: Mapped[bytes] = mapped_column(LargeBinary)


class Contact(Base):
    """Who hears about a region or school: per level (school/county/city/province), channel and address.

    ``secret_ref`` names a secret (robot signing secret, SMTP password) held outside the database
    and the repo (environment or config file); the secret itself is never stored here.
    """
    __tablename__ = "contact"
    __table_args__ = (UniqueConstraint("scope_code", "level", "channel", "address"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope_code: Mapped[str] = mapped_column(String(10), index=True)  # region code or school code
    level: Mapped[str] = mapped_column(String(10))  # school | county | city | province
    name: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(20))  # email | dingtalk | wecom | feishu | file
    address: Mapped[str] = mapped_column(String(500))
    secret_ref: Mapped[str | None] = mapped_column(String(100))
    lang: Mapped[str] = mapped_column(String(2), default="zh")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Notification(Base):
    """The outbox: written in the sweep's transaction, delivered later by dispatchers.

    ``dedupe_key`` is deterministic so a sweep run twice (or after downtime) never queues twice.
    """
    __tablename__ = "notification"
    __table_args__ = (Index("ix_notification_status_next", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(300), unique=True)
    kind: Mapped[str] = mapped_column(String(30))  # reminder | overdue | escalation | bulletin
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id"))
    channel: Mapped[str] = mapped_column(String(20))
    address: Mapped[str] = mapped_column(String(500))
    secret_ref: Mapped[str | None] = mapped_column(String(100))
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    body_markdown: Mapped[str | None] = mapped_column(Text)
    attachment_name: Mapped[str | None] = mapped_column(String(200))
    attachment: Mapped[bytes | None] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending|sent|dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class NoticeItem(Base):
    """One due item (a reminder, an overdue step) already put into a notification.

    The unique ``dedupe_key`` (e.g. ``overdue:run:17:practice:2022-08-31:county:+7``) is what makes
    the sweep level-triggered and idempotent.
    """
    __tablename__ = "notice_item"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(300), unique=True)
    notification_id: Mapped[int | None] = mapped_column(ForeignKey("notification.id"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("school_run.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    level: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CalendarYear(Base):
    """A year of the official working-day calendar: official (State Council notice) or provisional."""
    __tablename__ = "calendar_year"
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(12))  # official | provisional
    source: Mapped[str] = mapped_column(String(300))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CalendarDay(Base):
    """A day that differs from Monday–Friday: a holiday on a weekday or an adjusted working weekend (调休)."""
    __tablename__ = "calendar_day"
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    year: Mapped[int] = mapped_column(ForeignKey("calendar_year.year"), index=True)
    workday: Mapped[bool] = mapped_column(Boolean)
    name: Mapped[str | None] = mapped_column(String(60))


class SchedulerState(Base):
    """Small key/value facts the scheduler keeps: leader, last sweep, last bulletin."""
    __tablename__ = "scheduler_state"
    key: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class User(Base):
    """A web user, scoped to a region subtree or one school. Passwords are argon2 hashes only."""
    __tablename__ = "app_user"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(60), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(40))  # province_office|city_office|county_office|school_admin|supervisor|contractor
    scope_code: Mapped[str] = mapped_column(String(10))  # region code (6) or school code (10)
    contractor: Mapped[str | None] = mapped_column(String(100))  # role contractor: its 承训单位 (school_run.contractor), 0012
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")  # set by an office's reset


class LoginThrottle(Base):
    """Sign-in attempts per client address in the current window (engine/accounts.py).

    Anyone may type any username, so the account lock-out alone would let one client lock every
    account out for free; this caps what one address may try, counted in one atomic statement.
    """
    __tablename__ = "login_throttle"
    client: Mapped[str] = mapped_column(String(64), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)


class WebSession(Base):
    """A signed-in browser session, held server-side so that logout, a password change or a
    disabled account ends it: the signed cookie only names it (by a random token, stored hashed)."""
    __tablename__ = "web_session"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
