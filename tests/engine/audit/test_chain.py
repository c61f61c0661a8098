"""The hash chain: appends verify, and each kind of tampering is named at exactly its first bad event."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

import engine.audit.chain as audit_module
from engine.audit import (
    EventDraft,
    append_event,
    append_events,
    chain_heads,
    run_chain,
    verify_chains,
)
from engine.audit.chain import GENESIS, canonical
from engine.db import transaction
from engine.errors import AuditError, StaleStateError
from engine.i18n import set_language
from engine.models import AuditEvent

T0 = datetime(2021, 7, 1, 1, 0, tzinfo=UTC)
GATES = [{"gate": "online_hours", "actual": 0.8333333333333334, "required": 1.0, "passed": False}]


def fill(factory: sessionmaker[Session], chain: str = "run:1", n: int = 5) -> None:
    with transaction(factory) as s:
        for i in range(n):
            append_event(
                s, chain=chain, at=T0 + timedelta(hours=i), actor="县项目办", role="county",
                trigger=f"step{i + 1}", run_id=1, plan_id=1, school_code="3703230001",
                from_state="planning", to_state="online_study", reason=f"第{i + 1}步", gates=GATES,
                workflow_version="whole-school-2.0@1",
            )


def tamper(db: Engine, *statements: str, **params: Any) -> None:
    """Run raw SQL as someone who can get past the append-only triggers (owner of the file / superuser)."""
    with db.begin() as conn:
        if db.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER IF EXISTS audit_event_no_update"))
            conn.execute(text("DROP TRIGGER IF EXISTS audit_event_no_delete"))
        else:
            conn.execute(text("ALTER TABLE audit_event DISABLE TRIGGER USER"))
        for statement in statements:
            conn.execute(text(statement), params)


def only_problem(db: Engine) -> tuple[str, int, int | None, str]:
    report = verify_chains(db)
    assert not report.ok
    assert len(report.problems) == 1, report.problems
    p = report.problems[0]
    return p.chain, p.seq, p.event_id, p.kind


def event_id(db: Engine, chain: str, seq: int) -> int:
    with db.connect() as conn:
        return conn.execute(
            select(AuditEvent.id).where(AuditEvent.chain == chain, AuditEvent.seq == seq)
        ).scalar_one()


def test_appends_build_a_chain_that_verifies(db: Engine, factory: sessionmaker[Session]) -> None:
    fill(factory)
    fill(factory, chain="plan:1", n=2)
    report = verify_chains(db)
    assert (report.ok, report.chains, report.events, report.problems) == (True, 2, 7, [])
    with factory() as s:
        rows = s.scalars(select(AuditEvent).where(AuditEvent.chain == "run:1").order_by(AuditEvent.seq)).all()
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0].prev_hash == GENESIS
    for before, after in zip(rows, rows[1:], strict=False):
        assert after.prev_hash == before.hash
    for row in rows:
        assert hashlib.sha256(row.payload).hexdigest() == row.hash
    doc = json.loads(rows[0].payload)
    assert doc["at"] == "2021-07-01T01:00:00.000000Z"
    assert doc["gates"][0]["required"] == 1  # integral float written as an integer
    assert rows[0].gates == doc["gates"]
    assert verify_chains(db, chains=["plan:1"]).events == 2


def test_canonical_encoding_is_stable() -> None:
    shanghai = timezone(timedelta(hours=8))
    obj = {"b": [1, 2.5, 3.0, True, None], "a": "学校", "at": datetime(2021, 7, 1, 9, 0, tzinfo=shanghai)}
    expected = '{"a":"学校","at":"2021-07-01T01:00:00.000000Z","b":[1,2.5,3,true,null]}'.encode()
    assert canonical(obj) == expected
    assert canonical(dict(reversed(list(obj.items())))) == expected
    assert canonical({"x": 25}) == canonical({"x": 25.0})
    for bad in (float("nan"), float("inf"), datetime(2021, 7, 1), {1: "x"}, object()):
        with pytest.raises(AuditError):
            canonical({"v": bad})


def test_edited_column_is_caught_though_payload_untouched(db: Engine, factory: sessionmaker[Session]) -> None:
    fill(factory)
    tamper(db, "UPDATE audit_event SET reason = '已完成' WHERE chain = 'run:1' AND seq = 3")
    set_language("en")
    report = verify_chains(db)
    problem = report.problems[0]
    assert (problem.chain, problem.seq, problem.event_id, problem.kind) == ("run:1", 3, event_id(db, "run:1", 3), "edited")
    assert "reason" in problem.message


def test_edited_payload_is_caught(db: Engine, factory: sessionmaker[Session]) -> None:
    fill(factory)
    with db.connect() as conn:
        payload = conn.execute(
            select(AuditEvent.payload).where(AuditEvent.chain == "run:1", AuditEvent.seq == 2)
        ).scalar_one()
    forged = bytes(payload).replace("第2步".encode(), "第9步".encode())
    assert forged != payload
    tamper(db, "UPDATE audit_event SET payload = :p WHERE chain = 'run:1' AND seq = 2", p=forged)
    assert only_problem(db) == ("run:1", 2, event_id(db, "run:1", 2), "edited")


def test_deleted_middle_event_is_named(db: Engine, factory: sessionmaker[Session]) -> None:
    fill(factory)
    fill(factory, chain="run:2", n=3)
    tamper(db, "DELETE FROM audit_event WHERE chain = 'run:1' AND seq = 3")
    assert only_problem(db) == ("run:1", 3, None, "deleted")
    report = verify_chains(db)
    assert report.chains == 2 and report.events == 7


def test_deleted_first_event_is_named(db: Engine, factory: sessionmaker[Session]) -> None:
    fill(factory, n=3)
    tamper(db, "DELETE FROM audit_event WHERE chain = 'run:1' AND seq = 1")
    assert only_problem(db) == ("run:1", 1, None, "deleted")


def test_reordered_events_are_named(db: Engine, factory: sessionmaker[Session]) -> None:
    fill(factory)
    tamper(
        db,
        "UPDATE audit_event SET seq = -2 WHERE chain = 'run:1' AND seq = 2",
        "UPDATE audit_event SET seq = 2 WHERE chain = 'run:1' AND seq = 3",
        "UPDATE audit_event SET seq = 3 WHERE chain = 'run:1' AND seq = -2",
    )
    assert only_problem(db) == ("run:1", 2, event_id(db, "run:1", 2), "reordered")


def test_forged_hash_is_named(db: Engine, factory: sessionmaker[Session]) -> None:
    fill(factory)
    tamper(db, "UPDATE audit_event SET hash = :h WHERE chain = 'run:1' AND seq = 4", h="f" * 64)
    assert only_problem(db) == ("run:1", 4, event_id(db, "run:1", 4), "forged_hash")


def test_rewritten_event_with_recomputed_hash_breaks_the_next_link(
    db: Engine, factory: sessionmaker[Session]
) -> None:
    fill(factory)
    with db.connect() as conn:
        row = conn.execute(select(AuditEvent).where(AuditEvent.chain == "run:1", AuditEvent.seq == 2)).one()
    doc = json.loads(row.payload)
    doc["reason"] = "改写"
    payload = canonical(doc)
    tamper(
        db,
        "UPDATE audit_event SET reason = '改写', payload = :p, hash = :h WHERE chain = 'run:1' AND seq = 2",
        p=payload, h=hashlib.sha256(payload).hexdigest(),
    )
    assert only_problem(db) == ("run:1", 3, event_id(db, "run:1", 3), "reordered")


def test_chain_heads(factory: sessionmaker[Session]) -> None:
    fill(factory, n=3)
    fill(factory, chain="plan:7", n=1)
    with factory() as s:
        heads = chain_heads(s)
        last = s.scalars(select(AuditEvent.hash).where(AuditEvent.chain == "run:1", AuditEvent.seq == 3)).one()
    assert set(heads) == {"run:1", "plan:7"}
    assert heads["run:1"] == (3, last)


def test_bulk_append_hashes_match_single_appends(db: Engine, factory: sessionmaker[Session]) -> None:
    drafts = [
        EventDraft(chain=run_chain(i % 3), at=T0 + timedelta(minutes=i), actor="省项目办", role="province",
                   trigger="advance", run_id=i % 3, school_code=f"37032300{i:02d}", gates=GATES)
        for i in range(7)
    ]
    fill(factory, chain=run_chain(0), n=1)  # bulk continues an existing chain
    with factory() as s:  # one by one, then rolled back
        single = [(e.chain, e.seq, e.hash, e.payload) for e in (append_event(s, **vars(d)) for d in drafts)]
        s.rollback()
    with transaction(factory) as s:
        assert append_events(s, drafts) == 7
        assert append_events(s, []) == 0
    with factory() as s:
        bulk = [
            (r.chain, r.seq, r.hash, bytes(r.payload))
            for r in s.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()[1:]
        ]
    assert bulk == single
    assert [seq for chain, seq, *_ in bulk if chain == "run:0"] == [2, 3, 4]
    assert verify_chains(db).ok


def race(factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch, n: int = 2) -> list[Any]:
    """``n`` writers read the same chain head, then all insert: the unique (chain, seq) decides."""
    barrier = threading.Barrier(n, timeout=20)
    real: Callable[[Session, str], tuple[int, str]] = audit_module._chain_head

    def slow_head(session: Session, chain: str) -> tuple[int, str]:
        head = real(session, chain)
        barrier.wait()
        return head

    monkeypatch.setattr(audit_module, "_chain_head", slow_head)
    results: list[Any] = [None] * n

    def writer(i: int) -> None:
        try:
            with transaction(factory) as s:
                results[i] = append_event(s, chain="run:9", at=T0, actor=f"writer{i}", role="county", trigger="advance").seq
        except (StaleStateError, AuditError) as exc:
            results[i] = exc

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_concurrent_appends_on_one_chain_one_wins(
    db: Engine, factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    results = race(factory, monkeypatch)
    assert sorted(r for r in results if isinstance(r, int)) == [1]
    stale = [r for r in results if isinstance(r, StaleStateError)]
    assert len(stale) == 1
    assert "重新加载" in str(stale[0])
    report = verify_chains(db)
    assert report.ok and report.events == 1


def test_bad_input_is_refused_before_writing(factory: sessionmaker[Session]) -> None:
    with pytest.raises(AuditError), transaction(factory) as s:
        append_event(s, chain="run:1", at=datetime(2021, 7, 1), actor="a", role="r", trigger="t")
    with pytest.raises(AuditError), transaction(factory) as s:
        append_event(s, chain="run:1", at=T0, actor="", role="r", trigger="t")
    with factory() as s:
        assert s.scalars(select(AuditEvent)).all() == []
