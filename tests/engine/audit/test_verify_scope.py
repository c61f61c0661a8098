"""What the streaming check (engine/audit/verify.py) covers: the chains asked for, every text column's
odd values, and the connections and threads it uses.

The cheap path never has the last word, so what these tests pin is what a caller sees: which
chains are counted and reported, that a value the SQL cannot render still gets the full check
whichever column it is in, and how the work is split (one thread per CPU, at most 4; spans of
about equal events, a chain never split).
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

import engine.audit.verify as verify_module
from engine.audit.verify import verify_chains
from engine.errors import AuditError
from engine.models import AuditEvent
from tests.engine.audit.test_chain import fill, tamper


def broken_run_1(db: Engine, factory: sessionmaker[Session]) -> None:
    """run:1 edited at event 2; run:2 and run:3 intact."""
    fill(factory, chain="run:1", n=3)
    fill(factory, chain="run:2", n=4)
    fill(factory, chain="run:3", n=2)
    tamper(db, "UPDATE audit_event SET reason = 'x' WHERE chain = 'run:1' AND seq = 2")


def test_named_chains_are_the_only_ones_checked(db: Engine, factory: sessionmaker[Session]) -> None:
    """Asking for some chains checks those, each once however often it is named, and nothing else."""
    broken_run_1(db, factory)
    report = verify_chains(db, chains=["run:3", "run:2", "run:3"])
    assert (report.ok, report.chains, report.events, report.problems) == (True, 2, 6, [])
    report = verify_chains(db, chains=["run:1", "run:3"])
    assert (report.ok, report.chains, report.events) == (False, 2, 5)
    assert [(p.chain, p.seq) for p in report.problems] == [("run:1", 2)]
    assert (verify_chains(db, chains=[]).chains, verify_chains(db, chains=["run:9"]).chains) == (0, 0)


def test_named_chains_are_not_split_between_threads(
    db: Engine, factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """However large the trail, named chains are read on one connection, and only they are read."""
    broken_run_1(db, factory)
    monkeypatch.setattr(verify_module, "PARALLEL_FROM", 0)
    asked = spans_seen(monkeypatch)
    report = verify_chains(db, chains=["run:2", "run:3"], workers=3)
    assert (report.ok, report.chains, report.events) == (True, 2, 6)
    assert asked == []


def test_named_chains_through_a_session(db: Engine, factory: sessionmaker[Session]) -> None:
    """Through the caller's Session: the same chains, the same report, all chains when none are named."""
    broken_run_1(db, factory)
    with factory() as s:
        named = verify_chains(s, chains=["run:2", "run:2"])
        everything = verify_chains(s)
    assert (named.ok, named.chains, named.events) == (True, 1, 4)
    assert (everything.ok, everything.chains, everything.events) == (False, 3, 9)


def test_named_chains_beyond_one_in_list(
    db: Engine, factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """More chains than one IN (...) list holds are read in several queries, in chain order."""
    import engine.audit.chain as chain_module

    broken_run_1(db, factory)
    monkeypatch.setattr(chain_module.chunked, "__defaults__", (2,))
    report = verify_chains(db, chains=["run:3", "run:1", "run:2"])
    assert (report.chains, report.events) == (3, 9)
    assert [(p.chain, p.seq) for p in report.problems] == [("run:1", 2)]


@pytest.mark.parametrize("column", ["actor", "reason", "role", "school_code", "to_state", "trigger",
                                    "workflow_version", "prev_hash"])
def test_sqlite_blob_in_any_text_column_gets_the_full_check(sqlite_db: Engine, column: str) -> None:
    """json_quote cannot render a BLOB, before or after the gates: the whole check then runs field by
    field, which refuses the value as the chain's own check does (it is not a string)."""
    from engine.db import sessions

    fill(sessions(sqlite_db), n=3)
    tamper(sqlite_db, f"UPDATE audit_event SET {column} = X'41' WHERE seq = 3")
    with pytest.raises(AuditError, match="bytes"):
        verify_chains(sqlite_db)


def test_named_chains_stay_the_only_ones_checked_when_one_holds_a_blob(sqlite_db: Engine) -> None:
    """A BLOB the cheap path cannot render sends the check to the full comparison, over the chains
    asked for and no others: run:1, broken at event 2 before its BLOB at event 3, is reported alone
    (its BLOB is never read: a chain is judged up to its first bad event), run:2 not counted."""
    from engine.db import sessions

    broken_run_1(sqlite_db, sessions(sqlite_db))
    tamper(sqlite_db, "UPDATE audit_event SET actor = X'41' WHERE chain = 'run:1' AND seq = 3",
           "UPDATE audit_event SET reason = 'y' WHERE chain = 'run:2' AND seq = 1")
    report = verify_chains(sqlite_db, chains=["run:1", "run:3"])
    assert (report.ok, report.chains, report.events) == (False, 2, 5)
    assert [(p.chain, p.seq) for p in report.problems] == [("run:1", 2)]


def test_sqlite_blob_gates_get_the_full_check(sqlite_db: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """gates stored as a BLOB is not read as text on the cheap path (NULL): that row alone goes to the full
    check, which reads the same JSON and finds nothing wrong."""
    from engine.db import sessions
    from tests.engine.audit.test_verify import no_fallback

    fill(sessions(sqlite_db), n=3)
    tamper(sqlite_db, "UPDATE audit_event SET gates = CAST(gates AS BLOB) WHERE seq = 2")
    handed = no_fallback(monkeypatch)
    report = verify_chains(sqlite_db)
    assert [row.seq for row in handed] == [2]
    assert (report.ok, report.events) == (True, 3)


def spans_seen(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the worker counts verify_chains asks _spans for."""
    asked: list[int] = []
    real = verify_module._spans

    def recording(engine: Engine, workers: int) -> Any:
        asked.append(workers)
        return real(engine, workers)

    monkeypatch.setattr(verify_module, "_spans", recording)
    return asked


@pytest.mark.parametrize(("cpus", "workers"), [(None, 1), (1, 1), (2, 2), (3, 3), (4, 4), (8, 4), (64, 4)])
def test_one_thread_per_cpu_at_most_four(
    sqlite_db: Engine, monkeypatch: pytest.MonkeyPatch, cpus: int | None, workers: int
) -> None:
    asked = spans_seen(monkeypatch)
    monkeypatch.setattr(verify_module.os, "cpu_count", lambda: cpus)
    assert verify_chains(sqlite_db).ok
    assert verify_chains(sqlite_db, workers=3).ok
    assert asked == [workers, 3]


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite:///"])
def test_a_private_sqlite_database_is_checked_on_its_one_connection(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An in-memory (or nameless temporary) SQLite database exists only on the connection that made it:
    however many workers are asked for, it is never split between threads that could not see it."""
    from engine.db import make_engine, sessions, upgrade

    engine = make_engine(url)
    upgrade(engine)
    for i in range(4):
        fill(sessions(engine), chain=f"run:{i}", n=3)
    monkeypatch.setattr(verify_module, "PARALLEL_FROM", 0)
    assert verify_module._spans(engine, 4) == [(None, None)]
    report = verify_chains(engine, workers=4)
    assert (report.ok, report.chains, report.events) == (True, 4, 12)
    engine.dispose()


def test_an_empty_trail_is_one_span(db: Engine) -> None:
    assert verify_module._spans(db, 4) == [(None, None)]
    report = verify_chains(db, workers=4)
    assert (report.ok, report.chains, report.events) == (True, 0, 0)


def test_threads_start_at_parallel_from_events(
    db: Engine, factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Below PARALLEL_FROM events (by id range) one connection does it all; from there the work splits."""
    for i in range(3):
        fill(factory, chain=f"run:{i}", n=4)
    with db.connect() as conn:
        low, high = conn.execute(select(func.min(AuditEvent.id), func.max(AuditEvent.id))).one()
    monkeypatch.setattr(verify_module, "PARALLEL_FROM", high - low + 1)
    assert verify_module._spans(db, 3) == [(None, None)]
    monkeypatch.setattr(verify_module, "PARALLEL_FROM", high - low)
    assert len(verify_module._spans(db, 3)) == 3


def span_events(db: Engine, spans: list[tuple[str | None, str | None]]) -> list[int]:
    with db.connect() as conn:
        counts = []
        for low, high in spans:
            query = select(func.count()).select_from(AuditEvent)
            if low is not None:
                query = query.where(AuditEvent.chain >= low)
            if high is not None:
                query = query.where(AuditEvent.chain < high)
            counts.append(conn.execute(query).scalar_one())
    return counts


@pytest.mark.parametrize("first_id", [1, 5000])
@pytest.mark.parametrize("workers", [2, 3, 4])
def test_spans_hold_about_equal_events(
    db: Engine, factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch, workers: int, first_id: int
) -> None:
    """Each thread gets about its share of the events: off by less than one chain, whatever the order
    of seq numbers across chains, and wherever the ids start (a restored or trimmed database)."""
    for i in range(20):
        fill(factory, chain=f"run:{i:02d}", n=3)
    if first_id != 1:
        tamper(db, f"UPDATE audit_event SET id = id + {first_id - 1}")
    monkeypatch.setattr(verify_module, "PARALLEL_FROM", 0)
    spans = verify_module._spans(db, workers)
    counts = span_events(db, spans)
    assert len(spans) == workers and sum(counts) == 60
    assert all(abs(c - 60 / workers) <= 3 for c in counts), counts


def test_each_span_is_checked_on_its_own_in_the_thread_pool(
    db: Engine, factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every span is one check of its own chains, off the caller's thread; the parts add up to the trail."""
    import threading

    for i in range(6):
        fill(factory, chain=f"run:{i}", n=2)
    monkeypatch.setattr(verify_module, "PARALLEL_FROM", 0)
    seen: list[tuple[Any, str]] = []  # (span, thread)
    real = verify_module._verify_on

    def recording(conn: Any, chains: Any, batch: int, span: Any = (None, None)) -> Any:
        seen.append((span, threading.current_thread().name))
        return real(conn, chains, batch, span)

    monkeypatch.setattr(verify_module, "_verify_on", recording)
    for workers in (2, 3):
        seen.clear()
        spans = verify_module._spans(db, workers)
        report = verify_chains(db, workers=workers)
        assert (report.ok, report.chains, report.events) == (True, 6, 12)
        assert len(seen) == len(spans) == workers and {span for span, _ in seen} == set(spans)
        assert threading.current_thread().name not in {thread for _, thread in seen}
