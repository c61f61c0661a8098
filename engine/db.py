"""Database engines, sessions and schema upgrades for SQLite (embedded default) and PostgreSQL.

The schema is owned by Alembic (``engine/migrations``); ``upgrade`` is what ``rollout init`` runs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, DateTime, Engine, create_engine, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from engine.errors import DatabaseUnavailable, RolloutError
from engine.i18n import tr

MIGRATIONS = Path(__file__).parent / "migrations"
DEFAULT_URL = "sqlite:///rollout.db"
SQLITE_BUSY_SECONDS = 30  # how long a writer waits for another process's write to finish
# Where an upload's preview keeps its checked rows for the commit (engine/imports/kept.py): on
# SQLite a side database ``<file>-stage`` attached to the web's connections (``kept_stage=True``).
STAGE_SCHEMA = "rollout_stage"
# Driver messages that mean "cannot reach the database" (wrong URL, server down, connection dropped).
_UNREACHABLE = ("could not connect", "connection refused", "could not translate host", "connection timeout",
                "timeout expired", "server closed the connection", "terminating connection", "connection is closed",
                "password authentication failed", "does not exist", "no password supplied", "ssl", "consuming input failed",
                "unable to open database file", "connection to server")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC in, aware UTC out, on both databases.

    SQLite drops offsets on ``DateTime(timezone=True)`` (LIBRARY-NOTES: 09:00+02:00 reads back as
    naive 09:00), so we convert to UTC before binding and re-attach UTC when reading.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r} refused: store aware UTC times")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def normalise_url(url: str) -> str:
    """Accept the ``postgresql://`` URLs people copy from psql docs (we drive psycopg 3), and a plain
    file path for SQLite: ``--db /srv/rollout/rollout.db`` means ``sqlite:////srv/rollout/rollout.db``
    — the four slashes tripped people up (issue 17, 12)."""
    if "://" not in url and not url.startswith("sqlite:"):
        return f"sqlite:///{Path(url).expanduser()}"
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str = DEFAULT_URL, *, kept_stage: bool = False, **kwargs: Any) -> Engine:
    """``kept_stage``: attach the side database uploads keep their previewed rows in (SQLite; the
    web and its upload worker ask for it, the CLI does not need it)."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        _require_folder(url)
        kwargs.setdefault("connect_args", {}).setdefault("timeout", SQLITE_BUSY_SECONDS)
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            if ":memory:" not in url and url != "sqlite://":
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            database = make_url(url).database or ""
            if kept_stage and not database.startswith("file:"):
                side = f"{database}-stage" if database and database != ":memory:" else ":memory:"
                cur.execute(f"ATTACH DATABASE ? AS {STAGE_SCHEMA}", (side,))
                if side != ":memory:":  # a page listing kept rows never waits for a preview writing them
                    cur.execute(f"PRAGMA {STAGE_SCHEMA}.journal_mode=WAL")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _require_folder(url: str) -> None:
    """A SQLite file whose folder is missing: say which folder, and how an absolute path is written."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    folder = Path(database).parent
    if not folder.is_dir():
        if Path(database).is_absolute():
            raise DatabaseUnavailable(tr(f"数据库文件 {database} 所在的文件夹 {folder} 不存在",
                                         f"the folder {folder} of the database file {database} does not exist"))
        hint = f"sqlite:///{Path('/') / database}"
        raise DatabaseUnavailable(tr(
            f"数据库文件 {database} 所在的文件夹 {folder} 不存在（相对路径按当前目录计算）；绝对路径请写 {hint} 或直接写 /{database}",
            f"the folder {folder} of the database file {database} does not exist (relative to the current directory); "
            f"an absolute path is {hint}, or just /{database}"))


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # configparser treats % as interpolation; URLs carry %-escapes (e.g. search_path options)
    cfg.set_main_option(
        "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
    )
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the schema to ``revision`` (idempotent)."""
    from alembic import command

    cfg = alembic_config(engine)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            refresh_statistics(conn)  # a new index has no statistics: SQLite would then prefer it blindly
    except DBAPIError as exc:
        # The application role (docs/audit.md) may not create tables: that was a 116-line traceback
        # ending in "permission denied for schema public" (issue 17, 11). Say who must run it.
        if "permission denied" not in str(exc.orig or exc).lower() and "readonly database" not in str(exc.orig or exc).lower():
            raise
        user = engine.url.username or ""
        raise RolloutError(tr(
            f"角色 {user} 无权创建或修改表结构：请以数据库所有者（owner）角色运行 rollout init（docs/audit.md），本次未做任何更改",
            f"role {user} may not create or change the schema: run 'rollout init' as the owner role (docs/audit.md); nothing was changed",
        )) from exc


def current_revision(engine: Engine) -> str | None:
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def require_schema(engine: Engine) -> None:
    """Fail with a useful message instead of 'no such table' when ``init`` was not run."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    have = current_revision(engine)
    if have != head:
        where = engine.url.render_as_string()
        if have is None:
            raise RolloutError(tr(f"数据库 {where} 尚无表结构：请先运行 rollout init",
                                  f"database {where} has no schema: run 'rollout init'"))
        raise RolloutError(tr(f"数据库 {where} 的表结构版本为 {have}，程序需要 {head}：请运行 rollout init",
                              f"database {where} is at schema {have}, code expects {head}: run 'rollout init'"))


def database_error(exc: BaseException) -> DatabaseUnavailable | None:
    """The one-line error for a database that is busy or cannot be reached, or None for anything
    else (which is a bug and keeps its traceback). Nothing was written: the transaction rolled back."""
    if not isinstance(exc, DBAPIError):
        return None
    first = (str(exc.orig) if exc.orig is not None else str(exc)).strip().splitlines()
    detail = first[0] if first else type(exc).__name__
    lowered = detail.lower()
    if "database is locked" in lowered or "database table is locked" in lowered:
        return DatabaseUnavailable(tr(
            f"数据库正忙：另一个进程写入超过 {SQLITE_BUSY_SECONDS} 秒仍未结束，本次未做任何更改，请稍后重试",
            f"the database is busy: another process kept writing for over {SQLITE_BUSY_SECONDS} s; nothing was changed, try again later"))
    if exc.connection_invalidated or any(word in lowered for word in _UNREACHABLE):
        return DatabaseUnavailable(tr(f"无法连接数据库（{detail}）：请检查 --db / ROLLOUT_DB 和数据库服务；本次未做任何更改",
                                      f"cannot reach the database ({detail}): check --db / ROLLOUT_DB and the database server; nothing was changed"))
    return None


def sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back everything on any error."""
    with factory() as session, session.begin():
        yield session


# Tables whose size changes by thousands of rows at a time (imports, plan loads).
BULK_TABLES = ("school", "school_run", "teacher", "teacher_progress", "audit_event")


def refresh_statistics(conn: Connection, tables: Sequence[str] = BULK_TABLES) -> None:
    """Let the query planner see the tables as they are after a bulk change.

    Without statistics SQLite picks the plan index for "this county's runs" and reads a whole
    province (95 ms instead of 8 ms at 50,000 schools); a sampled ANALYZE (analysis_limit) costs
    about 0.1 s there, for the whole database. PostgreSQL's autovacuum gets there eventually;
    ANALYZE now is sampled too, of the ``tables`` the change touched (each 0.1–0.3 s at a
    province's size: a progress import that only updated teachers need not sample them again)."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA analysis_limit=1000")
        conn.exec_driver_sql("ANALYZE")
    else:
        for table in tables:
            conn.exec_driver_sql(f"ANALYZE {table}")
