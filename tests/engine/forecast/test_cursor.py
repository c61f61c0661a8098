"""The forecast's driver-level read (``engine.forecast.cursor``): a statement's rows a part at a
time, as floats with NULL as NaN, and on PostgreSQL never the whole result in the client's memory
— streamed in libpq's chunks, or held by a server-side cursor where libpq is older than 17."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

import engine.forecast.cursor as cursor

FIVE = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) "
        "SELECT i, CASE WHEN i = 3 THEN NULL ELSE i * 0.5 END FROM n ORDER BY i")


def test_rows_come_as_floats_a_part_at_a_time_with_null_as_nan(
        factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cursor, "PART", 2)
    with factory() as s:
        tables = list(cursor.arrays(s, text(FIVE), {}))
    assert [t.shape for t in tables] == [(2, 2), (2, 2), (1, 2)]
    whole = np.concatenate(tables)
    assert whole.dtype == np.float64
    np.testing.assert_array_equal(whole, [[1, 0.5], [2, 1.0], [3, np.nan], [4, 2.0], [5, 2.5]])


def _postgres(s: Session) -> None:
    if s.get_bind().dialect.name != "postgresql":
        pytest.skip("PostgreSQL's cursors (SQLite's driver reads from its own file a step at a time)")


def test_postgresql_streams_the_result_in_chunks(factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    """With libpq 17 or later the rows come through ``Cursor.stream`` in ``STREAMED``-row chunks."""
    import psycopg

    sizes: list[Any] = []
    real = psycopg.Cursor.stream

    def spied(self: psycopg.Cursor[Any], *args: Any, **kwargs: Any) -> Any:
        sizes.append(kwargs.get("size"))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(cursor, "chunked", lambda: True)
    monkeypatch.setattr(psycopg.Cursor, "stream", spied)
    monkeypatch.setattr(cursor, "PART", 2)
    with factory() as s:
        _postgres(s)
        rows = [tuple(r) for part in cursor.parts(s, text(FIVE), {}) for r in part]
    assert sizes == [cursor.STREAMED]
    assert [r[0] for r in rows] == [1, 2, 3, 4, 5] and rows[2][1] is None


def test_before_libpq_17_a_server_side_cursor_holds_the_rest(
        factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    """Between two parts the rest of the result waits on the server, in a cursor of the
    transaction's, and the cursor is closed once read."""
    monkeypatch.setattr(cursor, "chunked", lambda: False)
    monkeypatch.setattr(cursor, "PART", 2)
    held: list[int] = []
    with factory() as s:
        _postgres(s)
        count = text("SELECT count(*) FROM pg_cursors WHERE NOT is_holdable")
        for part in cursor.parts(s, text(FIVE), {}):
            assert len(part) <= 2
            held.append(int(s.scalar(count) or 0))
        after = int(s.scalar(count) or 0)
    assert held == [1, 1, 1] and after == 0
