"""The streaming check (engine/audit_verify.py): it accepts exactly what the field-by-field check accepts.

Honest rows must pass the cheap path without ever falling back; every column edited under an
intact payload, and a payload edited under intact columns, must still be named at its own event;
columns rewritten into another spelling of the same value must not be reported.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

import engine.audit.verify as verify_module
from engine.audit import EventDraft, append_events
from engine.audit.chain import canonical
from engine.audit.verify import verify_chains
from engine.db import transaction
from engine.i18n import set_language
from engine.models import AuditEvent
from tests.engine.audit.test_chain import event_id, fill, only_problem, tamper

T0 = datetime(2021, 7, 1, 1, 0, tzinfo=UTC)
AWKWARD = ['引号 " 反斜杠 \\ 换行 \n 制表 \t', "\x01\x08\x0c\x1f\x7f", "😀 \u2028 \ufeff", "", "plain"]


def awkward_drafts(chain: str = "run:1") -> list[EventDraft]:
    """Strings needing every JSON escape, NULLs, integral and other floats, nested gates, odd zones."""
    shanghai = timezone(timedelta(hours=8))
    drafts = []
    for i, text_value in enumerate(AWKWARD):
        drafts.append(EventDraft(
            chain=chain, at=datetime(2021, 7, 1, 9, 0, 0, i * 12_345, tzinfo=shanghai) + timedelta(days=i),
            actor=f"县项目办{text_value}", role="county", trigger=f"t{i}",
            plan_id=None if i % 2 else i, run_id=i if i % 2 else None,
            school_code=None if i == 1 else f"37032300{i:02d}", from_state=text_value or None,
            to_state=None if i == 2 else "practice", reason=text_value if i != 3 else None,
            gates=[] if i == 4 else [{"gate": text_value, "actual": 1 / 3 + i, "required": 25.0, "passed": True,
                                      "detail": {"z": [1.5, None, False], "a": -0.0, "big": 10**20, "e": 1e-7}}],
            workflow_version=None if i == 0 else "whole-school-2.0@1",
        ))
    # every ASCII character but NUL (PostgreSQL text cannot hold it), and a few beyond: the SQL
    # escapes must be json.dumps's, or honest rows would fall back
    every = "".join(chr(c) for c in range(1, 128)) + "学😀\u2028\u2029\ufeff\u0085"
    drafts.append(EventDraft(chain=chain, at=T0 + timedelta(days=9), actor="a", role="r", trigger="t", reason=every))
    return drafts


def no_fallback(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Record every row the cheap path had to hand to the field-by-field check."""
    handed: list[Any] = []
    real = verify_module.check_event

    def recording(row: Any, expected: int, prev_hash: str) -> Any:
        handed.append(row)
        return real(row, expected, prev_hash)

    monkeypatch.setattr(verify_module, "check_event", recording)
    return handed


def test_honest_rows_never_fall_back(db: Engine, factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    with transaction(factory) as s:
        append_events(s, awkward_drafts())
    fill(factory, chain="run:2")
    handed = no_fallback(monkeypatch)
    report = verify_chains(db)
    assert (report.ok, report.chains, report.events) == (True, 2, len(AWKWARD) + 1 + 5)
    assert handed == []


COLUMN_EDITS = [
    ("actor", "actor = '省项目办'"),
    ("role", "role = 'province'"),
    ("trigger", "\"trigger\" = 'override'"),
    ("school_code", "school_code = NULL"),
    ("from", "from_state = 'practice'"),
    ("to", "to_state = NULL"),
    ("reason", "reason = NULL"),
    ("workflow_version", "workflow_version = 'whole-school-2.0@2'"),
    ("plan_id", "plan_id = 2"),
    ("run_id", "run_id = NULL"),
    ("prev_hash", "prev_hash = '" + "e" * 64 + "'"),
    ("at", "at = at + INTERVAL '1 second'"),
    ("gates", "gates = '[{\"gate\": \"online_hours\", \"actual\": 1, \"required\": 1, \"passed\": true}]'"),
]


@pytest.mark.parametrize(("field", "assignment"), COLUMN_EDITS, ids=[f for f, _ in COLUMN_EDITS])
def test_each_column_edited_under_an_intact_payload_is_named(
    db: Engine, factory: sessionmaker[Session], field: str, assignment: str
) -> None:
    fill(factory)
    fill(factory, chain="run:2", n=2)
    if db.dialect.name == "sqlite" and field == "at":
        assignment = "at = '2021-07-01 03:00:00.000001'"
    tamper(db, f"UPDATE audit_event SET {assignment} WHERE chain = 'run:1' AND seq = 3")
    set_language("en")
    problem = verify_chains(db).problems
    assert [(p.chain, p.seq, p.event_id, p.kind) for p in problem] == [("run:1", 3, event_id(db, "run:1", 3), "edited")]
    assert field in problem[0].message


def test_payload_edited_under_intact_columns_is_named_even_with_its_hash_recomputed(
    db: Engine, factory: sessionmaker[Session]
) -> None:
    """Same value, another spelling (spaces, key order): the payload is no longer the canonical bytes."""
    fill(factory)
    with db.connect() as conn:
        payload = conn.execute(select(AuditEvent.payload).where(AuditEvent.chain == "run:1", AuditEvent.seq == 5)).scalar_one()
    respelled = json.dumps(dict(reversed(list(json.loads(payload).items()))), ensure_ascii=False).encode()
    assert json.loads(respelled) == json.loads(payload) and respelled != payload
    tamper(db, "UPDATE audit_event SET payload = :p, hash = :h WHERE chain = 'run:1' AND seq = 5",
           p=respelled, h=hashlib.sha256(respelled).hexdigest())
    assert only_problem(db) == ("run:1", 5, event_id(db, "run:1", 5), "edited")


def test_payload_not_utf8_is_named(db: Engine, factory: sessionmaker[Session]) -> None:
    fill(factory, n=3)
    tamper(db, "UPDATE audit_event SET payload = :p WHERE chain = 'run:1' AND seq = 2", p=b"\xff\xfe{")
    assert only_problem(db) == ("run:1", 2, event_id(db, "run:1", 2), "edited")


def test_another_spelling_of_the_same_values_is_not_reported(
    db: Engine, factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Gates re-spaced and re-ordered are canonicalised on the cheap path; a time SQLite holds in
    another spelling cannot be rendered there and is handed over; the full check finds nothing wrong."""
    fill(factory, n=3)
    with db.connect() as conn:
        gates = conn.execute(select(AuditEvent.gates).where(AuditEvent.chain == "run:1", AuditEvent.seq == 2)).scalar_one()
    at = "'2021-07-01T01:00:00'" if db.dialect.name == "sqlite" else "'2021-07-01 09:00:00+08'"
    spaced = json.dumps([dict(reversed(list(g.items()))) for g in gates], indent=2)
    tamper(db, "UPDATE audit_event SET gates = :g WHERE chain = 'run:1' AND seq = 2",
           f"UPDATE audit_event SET at = {at} WHERE chain = 'run:1' AND seq = 1", g=spaced)
    handed = no_fallback(monkeypatch)
    assert verify_chains(db).ok
    assert [row.seq for row in handed] == ([1] if db.dialect.name == "sqlite" else [])


def test_sqlite_value_of_another_type_in_a_column(sqlite_db: Engine) -> None:
    """SQLite keeps 'x' as text in an INTEGER column; the check must see it, not trip over it."""
    from engine.db import sessions

    fill(sessions(sqlite_db), n=3)
    tamper(sqlite_db, "UPDATE audit_event SET plan_id = 'x' WHERE chain = 'run:1' AND seq = 2",
           "UPDATE audit_event SET run_id = 1.5 WHERE chain = 'run:1' AND seq = 3")
    report = verify_chains(sqlite_db)
    assert [(p.seq, p.kind) for p in report.problems] == [(2, "edited")]


def test_threads_split_the_chains_and_keep_their_order(
    db: Engine, factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(6):
        fill(factory, chain=f"run:{i}", n=4)
    tamper(db, "UPDATE audit_event SET reason = 'x' WHERE chain = 'run:1' AND seq = 2",
           "DELETE FROM audit_event WHERE chain = 'run:4' AND seq = 1",
           "UPDATE audit_event SET hash = :h WHERE chain = 'run:5' AND seq = 4", h="f" * 64)
    monkeypatch.setattr(verify_module, "PARALLEL_FROM", 0)
    expected = [("run:1", 2, "edited"), ("run:4", 1, "deleted"), ("run:5", 4, "forged_hash")]
    for workers in (1, 2, 3):
        spans = verify_module._spans(db, workers)
        assert len(spans) == workers
        report = verify_chains(db, workers=workers)
        assert [(p.chain, p.seq, p.kind) for p in report.problems] == expected
        assert (report.ok, report.chains, report.events) == (False, 6, 23)


def test_a_rewritten_event_still_breaks_the_next_link_on_the_cheap_path(
    db: Engine, factory: sessionmaker[Session]
) -> None:
    """Columns, payload and hash all rewritten consistently: only the next event's link shows it."""
    fill(factory)
    with db.connect() as conn:
        row = conn.execute(select(AuditEvent).where(AuditEvent.chain == "run:1", AuditEvent.seq == 4)).one()
    doc = json.loads(row.payload)
    doc["actor"] = "某人"
    payload = canonical(doc)
    tamper(db, "UPDATE audit_event SET actor = '某人', payload = :p, hash = :h WHERE chain = 'run:1' AND seq = 4",
           p=payload, h=hashlib.sha256(payload).hexdigest())
    assert only_problem(db) == ("run:1", 5, event_id(db, "run:1", 5), "reordered")


def test_sqlite_blob_in_a_text_column_gets_the_full_check(sqlite_db: Engine) -> None:
    """json_quote cannot render a BLOB: every row then goes to the full check, which refuses it as before."""
    from engine.db import sessions
    from engine.errors import AuditError

    fill(sessions(sqlite_db), n=3)
    tamper(sqlite_db, "UPDATE audit_event SET actor = X'41' WHERE chain = 'run:1' AND seq = 3")
    with pytest.raises(AuditError, match="bytes"):
        verify_chains(sqlite_db)


@pytest.mark.parametrize("text", [
    '[{"gate": "x", "actual": 25.0, "b": 1e-7, "z": [1.5, null, false], "e": 1e16, "u": "学\\u0001"}]',
    "null", "[]", '{"a": 1}', '"ab"', "0.0", " []", "[] ", "[NaN]", "[1e999]", "5", "[", "",
])
def test_gates_canonicalised_as_the_full_check_would(text: str) -> None:
    """Equal to what _document makes of the column, or None (the row then gets the full check)."""
    from engine.audit.chain import normalise
    from engine.errors import AuditError

    try:
        want: bytes | None = canonical(list(normalise(json.loads(text)) or []))
    except (AuditError, ValueError, TypeError):
        want = None
    got = verify_module._Gates()(text)
    assert got == want or (got is None and text.strip() != text)
