"""PostgreSQL only: the database itself refuses to change audit rows, even in replica mode."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DBAPIError

from engine.audit import append_event, verify_chains
from engine.db import make_engine, sessions, transaction, upgrade
from engine.models import AuditEvent

pytestmark = pytest.mark.postgres

REFUSED = [
    "UPDATE audit_event SET reason = 'x'",
    "DELETE FROM audit_event",
    "TRUNCATE audit_event",
]


@pytest.fixture
def pg(pg_schema: Any) -> Iterator[Engine]:
    engine = make_engine(pg_schema.url)
    upgrade(engine)
    with transaction(sessions(engine)) as s:
        for i in range(3):
            append_event(s, chain="run:1", at=datetime(2021, 7, 1, i, tzinfo=UTC), actor="a", role="county", trigger="t")
    yield engine
    engine.dispose()


def count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(AuditEvent)).scalar_one()


@pytest.mark.parametrize("statement", REFUSED)
@pytest.mark.parametrize("replica", [False, True], ids=["origin", "replica"])
def test_changes_are_refused(pg: Engine, statement: str, replica: bool) -> None:
    with pytest.raises(DBAPIError, match="append-only"), pg.begin() as conn:
        if replica:
            conn.execute(text("SET session_replication_role = replica"))
        conn.execute(text(statement))
    assert count(pg) == 3
    assert verify_chains(pg).ok


def test_inserts_still_work_in_replica_mode(pg: Engine) -> None:
    """The triggers guard changes only: appending is what the application does."""
    with pg.begin() as conn:
        conn.execute(text("SET session_replication_role = replica"))
    with transaction(sessions(pg)) as s:
        append_event(s, chain="run:1", at=datetime(2021, 7, 2, tzinfo=UTC), actor="a", role="county", trigger="t")
    assert count(pg) == 4
