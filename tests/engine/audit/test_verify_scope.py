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
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

import engine.audit.verify as verify_module
from engine.audit.verify import verify_chains
from engine.errors import AuditError
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
