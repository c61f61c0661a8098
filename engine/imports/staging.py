"""What the region, school and teacher-progress imports share: all-or-nothing staging, problem
lists, results, and the value checks every office file needs.

An import is all-or-nothing: rows are validated as they stream past and land in a temporary
staging table; the real table is touched only after the whole file has passed, by one UPDATE of
the rows whose values differ and one INSERT of the new ones. A bad row 900,000 therefore leaves the
database exactly as it was, and re-importing a file rewrites nothing.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Column as SAColumn
from sqlalchemy import Connection, Engine, MetaData, Table, text
from sqlalchemy.orm import DeclarativeBase, Session

from engine.errors import ImportFileError, Problem
from engine.i18n import tr
from engine.imports.tabular import Column

if TYPE_CHECKING:
    import psycopg

MAX_PROBLEMS = 1000
CHUNK_ROWS = 10_000
ProgressCallback = Callable[[int], None]
# Told where the header row is and which column each field was found in, once the header is found
# (the upload preview shows the file's header as understood, even when later rows are bad).
HeaderCallback = Callable[[int, dict[str, Column]], None]


@dataclass(frozen=True)
class ImportResult:
    """What an accepted import did: ``total`` data rows = inserted + updated + unchanged."""

    kind: str
    source: str
    total: int
    inserted: int
    updated: int
    unchanged: int
    # Progress imports only (issue 11): teachers marked left by --full, the provenance record
    # (None when the file changed nothing and was imported before), the file's SHA-256, its
    # as-of date, and the earlier import of the same bytes, if any.
    rejected: int = 0
    left: int = 0
    import_id: int | None = None
    sha256: str | None = None
    as_of: date | None = None
    same_as: int | None = None
    # Per school (progress), county (schools) or scope code (contacts): (inserted, updated,
    # unchanged). Filled by a dry run (the upload preview), empty otherwise.
    groups: tuple[tuple[str, int, int, int], ...] = ()
    dry_run: bool = False


class Problems:
    """Every problem of a file, capped so a wholly wrong file does not print a million lines."""

    def __init__(self, source: str, limit: int = MAX_PROBLEMS) -> None:
        self.source = source
        self.limit = limit
        self.items: list[Problem] = []
        self.unlisted = 0

    def add(self, row: int | None, column: Column | None, message: str) -> None:
        if len(self.items) >= self.limit:
            self.unlisted += 1
            return
        self.items.append(Problem(
            self.source,
            message,
            line=row,
            column=column.index if column else None,
            field=column.header if column else None,
        ))

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        if not self.items:
            return
        problems = list(self.items)
        if self.unlisted:
            problems.append(Problem(self.source, tr(
                f"另有 {self.unlisted} 个问题未列出（只列出前 {self.limit} 个）",
                f"{self.unlisted} more problem(s) not listed (only the first {self.limit} are shown)",
            )))
        raise ImportFileError(self.source, problems)


def dry_result(kind: str, source: str, total: int, groups: tuple[tuple[str, int, int, int], ...]) -> ImportResult:
    """The result of a dry run: totals summed from the per-group counts."""
    return ImportResult(kind, source, total, sum(g[1] for g in groups), sum(g[2] for g in groups),
                        sum(g[3] for g in groups), groups=groups, dry_run=True)


def out_of_scope(what_zh: str, what_en: str, code: str) -> str:
    """One message for a code that does not exist and one outside the uploader's region, so a
    county officer's file cannot learn which codes belong to another county (engine/access.py)."""
    return tr(f"{what_zh} {code} 不存在或不在您的管辖范围内：这一行不会导入",
              f"{what_en} {code} does not exist or is outside your region: this row is not imported")


@contextmanager
def connection_for(target: Session | Engine) -> Iterator[Connection]:
    """A session joins the caller's transaction (the caller commits); an engine gets its own."""
    if isinstance(target, Session):
        yield target.connection()
        # Rows were written with Core statements: objects the session holds may be stale.
        target.expire_all()
        return
    with target.begin() as conn:
        yield conn


# --------------------------------------------------------------------------- value checks

_SCIENTIFIC = re.compile(r"^\d(\.\d+)?[eE]\+?\d+$")


def fold(value: str) -> str:
    """Full-width digits and letters (３７０３２３) as their ASCII forms, outer spaces removed."""
    if value.isascii():  # the common case, and NFKC leaves ASCII alone
        return value.strip()
    return unicodedata.normalize("NFKC", value).strip()


def check_code(value: str, digits: int, what_zh: str, what_en: str) -> tuple[str | None, str | None]:
    """(code, None) when ``value`` is ``digits`` digits, else (None, the problem in words)."""
    code = fold(value)
    if not code:
        return None, tr(f"缺少{what_zh}", f"{what_en} is missing")
    if len(code) == digits and code.isascii() and code.isdigit():
        return code, None
    if _SCIENTIFIC.match(code):
        return None, tr(
            f"{what_zh}“{value}”被 Excel 显示成了科学计数法，位数已丢失：请把该列设为“文本”格式后重新导出",
            f"{what_en} '{value}' was turned into scientific notation by Excel and lost digits: format the column as text and export again",
        )
    return None, tr(
        f"{what_zh}“{value}”格式不对：应为 {digits} 位数字",
        f"{what_en} '{value}' is malformed: it must be {digits} digits",
    )


def duplicate(key: str, first_row: int) -> str:
    return tr(
        f"{key} 在文件中重复（第 {first_row} 行已有）",
        f"{key} appears twice in the file (first in row {first_row})",
    )


def missing(what_zh: str, what_en: str) -> str:
    return tr(f"缺少{what_zh}", f"{what_en} is missing")


# --------------------------------------------------------------------------- staging and merge


class Staging:
    """A temporary table shaped like the target's import columns; ``merge`` upserts from it.

    SQLite gets ``executemany`` of plain tuples; PostgreSQL gets ``COPY`` (the fastest way in),
    then ``ANALYZE`` so the merge's join is planned with real row counts. Inside ``stream()``
    one ``COPY`` stays open while the file is read, so the server stores rows while Python
    checks the next ones instead of waiting for chunks.
    """

    def __init__(
        self, conn: Connection, model: type[DeclarativeBase], key: str, columns: Sequence[str],
        *, kept: str | None = None, create: bool = True, binary: bool = False,
    ) -> None:
        """``kept``: the qualified name of a table that outlives the transaction (an upload's
        preview, engine/imports/kept.py) instead of a temporary one; ``create=False`` adopts an
        existing kept table with its rows. ``binary``: every row holds values of its columns'
        Python types (str, float, int, None: the progress import's checked rows), so PostgreSQL's
        ``COPY`` may take them in binary — a third of the text format's client CPU for a million
        rows (0.4 against 1.2 s), which the two cores' parse workers then have."""
        target = cast(Table, model.__table__)
        self.conn = conn
        self.target = target
        self.key = key
        self.columns = [key, *columns]
        self.name = kept or f"rollout_stage_{target.name}"
        self.kept = kept is not None
        self.postgres = conn.dialect.name == "postgresql"
        self.binary = binary and self.postgres
        self._oids: list[int] = []
        self.buffer: list[tuple[Any, ...]] = []
        self.rows = 0
        self._write: Callable[[Sequence[Any]], None] | None = None
        if not create:
            self.rows = int(conn.scalar(text(f"SELECT count(*) FROM {self.name}")) or 0)
            return
        conn.execute(text(f"DROP TABLE IF EXISTS {self.name}"))
        kwargs: dict[str, Any] = {"postgresql_on_commit": "DROP"} if self.postgres and not kept else {}
        schema, _, bare = self.name.rpartition(".")
        self.table = Table(
            bare,
            MetaData(),
            *(SAColumn(c, target.c[c].type) for c in self.columns),
            schema=schema or None,
            prefixes=(["UNLOGGED"] if self.postgres else []) if kept else ["TEMPORARY"],
            **kwargs,
        )
        self.table.create(conn)

    def _copy(self, cur: psycopg.Cursor[Any]) -> AbstractContextManager[psycopg.Copy]:
        binary = " (FORMAT BINARY)" if self.binary else ""
        return cur.copy(f"COPY {self.name} ({', '.join(self.columns)}) FROM STDIN{binary}")

    def _types(self) -> list[int]:
        """A binary ``COPY`` is told each column's type as the table has it (no cast on the way);
        asked before the ``COPY`` opens, which then has the connection to itself."""
        if self.binary and not self._oids:
            oids = {str(name): int(oid) for name, oid in self.conn.execute(text(
                "SELECT attname, atttypid::int FROM pg_attribute WHERE attrelid = CAST(:t AS regclass) "
                "AND attnum > 0 AND NOT attisdropped"), {"t": self.name})}
            self._oids = [oids[c] for c in self.columns]
        return self._oids

    @contextmanager
    def stream(self) -> Iterator[None]:
        """Rows added inside go straight into one open ``COPY`` on PostgreSQL (nothing else may
        use the connection meanwhile); elsewhere this changes nothing. The ``COPY`` is ended
        normally even when the body raises, so a caller's transaction stays usable."""
        if not self.postgres:
            yield
            return
        self.flush()
        dbapi = cast("psycopg.Connection[Any]", self.conn.connection.dbapi_connection)
        with dbapi.cursor() as cur:
            types, copy_cm = self._types(), self._copy(cur)
            copy = copy_cm.__enter__()
            if types:
                copy.set_types(types)
            self._write = copy.write_row
            try:
                yield
            finally:
                self._write = None
                copy_cm.__exit__(None, None, None)

    def add(self, row: tuple[Any, ...]) -> None:
        if self._write is not None:
            self._write(row)
            self.rows += 1
            return
        self.buffer.append(row)
        if len(self.buffer) >= CHUNK_ROWS:
            self.flush()

    def extend(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """``add`` each of ``rows`` (a part of a file checked elsewhere: one call, not one per row)."""
        if self._write is not None:
            for row in rows:
                self._write(row)
            self.rows += len(rows)
            return
        self.buffer.extend(rows)
        if len(self.buffer) >= CHUNK_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        names = ", ".join(self.columns)
        if self.postgres:
            dbapi = cast("psycopg.Connection[Any]", self.conn.connection.dbapi_connection)
            types = self._types()
            with dbapi.cursor() as cur, self._copy(cur) as copy:
                if types:
                    copy.set_types(types)
                for row in self.buffer:
                    copy.write_row(row)
        else:
            marks = ", ".join("?" for _ in self.columns)
            self.conn.exec_driver_sql(f"INSERT INTO {self.name} ({names}) VALUES ({marks})", self.buffer)
        self.rows += len(self.buffer)
        self.buffer = []

    def merge(self) -> tuple[int, int, int]:
        """Apply the staged rows; returns (inserted, updated, unchanged).

        Only changed rows are updated and only new rows inserted; unchanged rows are never
        touched. This beats one ``INSERT … ON CONFLICT DO UPDATE WHERE <differs>``: PostgreSQL
        locks (and so rewrites) every conflicting row even when the WHERE is false, and the
        speculative insertion costs a third more per new row (measured at 1M rows).
        """
        self.flush()
        if self.conn.execute(text(f"SELECT 1 FROM {self.target.name} LIMIT 1")).first() is None:
            inserted, updated = self._insert_all(), 0  # a first load: nothing to compare with
        elif self.postgres:
            self.conn.execute(text(f"ANALYZE {self.name}"))
            inserted, updated = self._merge_postgres()
        else:
            inserted, updated = self._merge_sqlite()
        self.drop()
        return inserted, updated, self.rows - inserted - updated

    def count(self, group: str) -> tuple[tuple[str, int, int, int], ...]:
        """What ``merge`` would do, per value of the staged column ``group``, without doing it:
        (group, inserted, updated, unchanged) sorted by group; the staging table is dropped.

        The preview of an upload (and ``?dry_run=1`` of the API) is the real import stopped
        here: the same parsing, checks and staging, then this count instead of the merge.
        """
        self.flush()
        target, stage, key = self.target.name, self.name, self.key
        values = self._values()
        op = "IS DISTINCT FROM" if self.postgres else "IS NOT"
        differs = " OR ".join(f"t.{c} {op} s.{c}" for c in values) or "1 = 0"
        rows = self.conn.execute(text(
            f"SELECT s.{group}, "
            f"SUM(CASE WHEN t.{key} IS NULL THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN t.{key} IS NOT NULL AND ({differs}) THEN 1 ELSE 0 END), "
            f"COUNT(*) FROM {stage} AS s LEFT JOIN {target} AS t ON t.{key} = s.{key} "
            f"GROUP BY s.{group} ORDER BY s.{group}"
        )).all()
        if not self.kept:  # a kept table waits for the commit
            self.drop()
        return tuple((str(g), int(i), int(u), int(n) - int(i) - int(u)) for g, i, u, n in rows)

    def _insert_all(self) -> int:
        """Into an empty table every staged row is new: a plain INSERT … SELECT, without the
        anti-join against the target, which made a 1M-row first load on PostgreSQL take ~1.5×
        as long (paired runs: 20 s vs 32 s, 30 s vs 44 s on a busy machine)."""
        names = ", ".join(self.columns)
        return int(self.conn.execute(text(
            f"INSERT INTO {self.target.name} ({names}) SELECT {names} FROM {self.name}"
        )).rowcount)

    def _values(self) -> list[str]:
        return [c for c in self.columns if c != self.key]

    def _merge_postgres(self) -> tuple[int, int]:
        """One join finds the new and the changed rows; the UPDATE and INSERT then touch only
        those (a re-import of an unchanged file joins the tables once, not twice)."""
        target, stage, key = self.target.name, self.name, self.key
        names = ", ".join(self.columns)
        values = self._values()
        differs = " OR ".join(f"t.{c} IS DISTINCT FROM s.{c}" for c in values) or "FALSE"
        sets = ", ".join(f"{c} = d.{c}" for c in values)
        update = (
            f"u AS (UPDATE {target} AS t SET {sets} FROM d "
            f"WHERE t.{key} = d.{key} AND NOT d.is_new RETURNING 1), "
        ) if values else ""
        counted = "(SELECT count(*) FROM u)" if values else "0"
        row = self.conn.execute(text(
            f"WITH d AS MATERIALIZED (SELECT s.*, t.{key} IS NULL AS is_new FROM {stage} AS s "
            f"LEFT JOIN {target} AS t ON t.{key} = s.{key} WHERE t.{key} IS NULL OR ({differs})), "
            f"{update}"
            f"i AS (INSERT INTO {target} ({names}) SELECT {names} FROM d WHERE d.is_new RETURNING 1) "
            f"SELECT (SELECT count(*) FROM i), {counted}"
        )).one()
        return int(row[0]), int(row[1])

    def _merge_sqlite(self) -> tuple[int, int]:
        target, stage, key = self.target.name, self.name, self.key
        values = self._values()
        updated = 0
        if values:
            sets = ", ".join(f"{c} = s.{c}" for c in values)
            differs = " OR ".join(f"t.{c} IS NOT s.{c}" for c in values)
            updated = self.conn.execute(text(
                f"UPDATE {target} AS t SET {sets} FROM {stage} AS s WHERE t.{key} = s.{key} AND ({differs})"
            )).rowcount
        names = ", ".join(self.columns)
        inserted = self.conn.execute(text(
            f"INSERT INTO {target} ({names}) SELECT {names} FROM {stage} AS s "
            f"WHERE NOT EXISTS (SELECT 1 FROM {target} AS t WHERE t.{key} = s.{key})"
        )).rowcount
        return int(inserted), int(updated)

    def clear(self) -> None:
        """Forget every row staged so far (a faster read given up part way: the rows are read
        again). Not inside ``stream()``: the connection is busy with its ``COPY`` there."""
        self.buffer = []
        self.rows = 0
        self.conn.execute(text(f"DELETE FROM {self.name}"))

    def drop(self) -> None:
        self.buffer = []
        self.conn.execute(text(f"DROP TABLE IF EXISTS {self.name}"))

