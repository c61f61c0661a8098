"""A statement's rows straight from the driver's cursor into numpy arrays, a part at a time (issue
11 speed): a province's forecast reads millions of rows, and every Python object per row counts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from itertools import chain, islice
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    import psycopg

PART = 20_000  # rows turned into arrays at a time (their Python tuples: ~12 MB)
STREAMED = 2_000  # rows a PostgreSQL result chunk holds (libpq's chunked rows mode)


def statement(sql: str) -> Any:
    """``sql`` as text, its ``:codes`` (a list of school codes) expanded when bound."""
    return text(sql).bindparams(bindparam("codes", expanding=True)) if ":codes" in sql else text(sql)


def parts(session: Session, stmt: Any, params: dict[str, Any]) -> Iterator[Sequence[Any]]:
    """The statement's rows as the driver's tuples, ``PART`` at a time, streamed. Straight from the
    DBAPI cursor: SQLAlchemy's Row objects and their partitions cost ~1.5 µs a row, a tenth of a
    province's read (3,000,000 rows).

    PostgreSQL streams the result in chunks (``Cursor.stream``): the server sends rows while the
    client turns the last ones into arrays. A server-side cursor's ``FETCH`` waited for the server
    to make each part and the server for the client to ask: half a province's 2,000,000 history
    rows took 2.7–3.2 s that way, 1.4 s streamed (memory stays bounded: the socket holds the rest)."""
    conn = session.connection()
    used = set(re.findall(r":(\w+)", stmt.text))
    named = {k: v for k, v in params.items() if k in used}  # a statement binds only its own names
    compiled = stmt.bindparams(**named).compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    bound = compiled.params
    args: Any = tuple(bound[k] for k in compiled.positiontup or ()) if compiled.positional else bound
    raw = conn.connection.dbapi_connection
    assert raw is not None
    if conn.dialect.name == "postgresql" and chunked():
        with cast("psycopg.Connection[Any]", raw).cursor(binary=True) as streaming:
            rows = streaming.stream(compiled.string, args, size=STREAMED)
            while chunk := list(islice(rows, PART)):
                yield chunk
        return
    # SQLite's own cursor; on PostgreSQL a server-side one where libpq cannot stream in chunks (before 17)
    cursor = raw.cursor(name="forecast_read", binary=True) if conn.dialect.name == "postgresql" else raw.cursor()
    try:
        cursor.execute(compiled.string, args)
        while part := cursor.fetchmany(PART):
            yield part
    finally:
        cursor.close()


def chunked() -> bool:
    """Whether the PostgreSQL driver's libpq streams a result in chunks (17 and later)."""
    from psycopg import pq

    return pq.version() >= 170_000


def arrays(session: Session, stmt: Any, params: dict[str, Any]) -> Iterator[np.ndarray]:
    """The rows as float arrays (NULL: NaN), a part at a time (never a province's rows in a list).
    One flat iterator into ``np.fromiter``: 3.5× faster than transposing in Python, and ``np.array``
    of the tuples inspects each one for its shape first."""
    for part in parts(session, stmt, params):
        width = len(part[0])
        yield np.fromiter(chain.from_iterable(part), dtype=np.float64, count=len(part) * width).reshape(-1, width)


def present_rows(row_of: np.ndarray, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows of ``table`` (teacher id first) that are of teachers ``row_of`` lists (its position
    of each teacher id, -1: not one of them), and those positions."""
    who = table[:, 0].astype(np.int64)
    keep = who < row_of.size
    keep[keep] = row_of[who[keep]] >= 0
    return row_of[who[keep]], table[keep]
