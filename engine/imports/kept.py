"""An upload's checked rows kept from its preview for its commit, so a file is parsed once (issue 16).

The preview of a progress upload is the real import stopped before the merge (a dry run). Without
this the commit read, parsed, checked and staged the whole file a second time: a province's
million-row export took three times as long through the web as ``rollout progress import``.
Instead the preview stages into a table that outlives its transaction, named by the upload's job
and SHA-256 (``key``), and the commit merges from that table:

- PostgreSQL: an ``UNLOGGED`` table ``rollout_kept_<key>`` (no WAL traffic; lost in a crash, and
  then the commit simply reads the file again).
- SQLite: a table in the side database ``<file>-stage`` that the web's connections attach
  (``make_engine(kept_stage=True)``), so staging a million rows never takes the main database's
  write lock. Without it (the CLI, a ``file:`` URL) nothing is kept and the commit re-reads.

On SQLite the side database commits just after the main file (each file of a WAL database commits
on its own), so for a moment a job may read ``ready`` before its kept rows are visible, or stay
listed after its commit dropped them. Neither is unsafe: the commit merges kept rows only when as
many are kept as the preview counted, else reads the file; rows left behind are pruned.

What the commit still does itself: the caller re-checks the stored file's SHA-256 against the
previewed one, and ``adopt`` re-checks what may have moved in the database since the preview
(every staged school still exists inside the uploader's region). The merge and its audit are the
same all-or-nothing transaction as a plain import.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy import Connection, text
from sqlalchemy.orm import DeclarativeBase

from engine.db import STAGE_SCHEMA
from engine.errors import Problem
from engine.i18n import tr
from engine.imports.staging import Problems, Staging, out_of_scope

PREFIX = "rollout_kept_"
_KEY = re.compile(r"^[0-9a-z_]{1,60}$")


def _checked(key: str) -> str:
    if not _KEY.match(key):  # the key ends up in SQL text: digits, lower-case letters, underscores only
        raise ValueError(f"bad kept-staging key {key!r}")
    return key


def kept_supported(conn: Connection) -> bool:
    """Whether this connection can keep staged rows past its transaction."""
    if conn.dialect.name == "postgresql":
        return True
    names = {row[1] for row in conn.exec_driver_sql("PRAGMA database_list")}
    return STAGE_SCHEMA in names


def kept_table(conn: Connection, key: str) -> str:
    """The qualified name of the kept table for ``key`` (it may not exist)."""
    name = PREFIX + _checked(key)
    return name if conn.dialect.name == "postgresql" else f"{STAGE_SCHEMA}.{name}"


def kept_keys(conn: Connection) -> list[str]:
    """The keys of every kept table (to prune those whose job is no longer waiting)."""
    if not kept_supported(conn):
        return []
    if conn.dialect.name == "postgresql":
        names = conn.scalars(text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                                  "AND tablename LIKE 'rollout\\_kept\\_%'"))
    else:
        names = conn.scalars(text(f"SELECT name FROM {STAGE_SCHEMA}.sqlite_master WHERE type = 'table' "
                                  "AND name LIKE 'rollout\\_kept\\_%' ESCAPE '\\'"))
    return [n[len(PREFIX):] for n in names if _KEY.match(n[len(PREFIX):])]


def kept_rows(conn: Connection, key: str) -> int | None:
    """How many rows are kept under ``key``, or None when nothing is."""
    if key not in kept_keys(conn):
        return None
    return int(conn.scalar(text(f"SELECT count(*) FROM {kept_table(conn, key)}")) or 0)


def drop_kept(conn: Connection, key: str) -> None:
    if kept_supported(conn):
        conn.execute(text(f"DROP TABLE IF EXISTS {kept_table(conn, key)}"))


def keeping(conn: Connection, model: type[DeclarativeBase], key_column: str, columns: Sequence[str],
            key: str | None, *, binary: bool = False) -> Staging:
    """A staging table for a dry run: kept under ``key`` when the connection can keep one, else
    the ordinary temporary table (``binary``: ``Staging``'s)."""
    if key is None or not kept_supported(conn):
        return Staging(conn, model, key_column, columns, binary=binary)
    return Staging(conn, model, key_column, columns, kept=kept_table(conn, key), binary=binary)


def adopt(conn: Connection, model: type[DeclarativeBase], key_column: str, columns: Sequence[str], key: str,
          schools: set[str], problems: Problems, scoped: bool) -> Staging:
    """The kept rows of ``key`` as the staging of a commit. A school staged at the preview that is
    gone now, or no longer in the uploader's region, is a problem (``problems``), as a re-read
    would have found."""
    staging = Staging(conn, model, key_column, columns, kept=kept_table(conn, key), create=False)
    codes = conn.scalars(text(f"SELECT DISTINCT school_code FROM {staging.name}")).all()
    for code in sorted(str(c) for c in codes if c not in schools):
        message = out_of_scope("学校", "school", code) if scoped else tr(
            f"学校 {code} 不存在：请先导入学校", f"unknown school {code}: import the schools first")
        problems.items.append(Problem(problems.source, message))
    return staging
