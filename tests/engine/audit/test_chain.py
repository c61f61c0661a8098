"""The hash chain: appends verify, and each kind of tampering is named at exactly its first bad event."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta, timezone, tzinfo
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
from engine.errors import AuditError, StaleStateError, TextRefused
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


# --- Issue 13: the payload format and the refusals, stated exactly (mutation testing found them open) ---

def test_the_payload_is_the_documented_canonical_json_and_the_columns_repeat_it(factory: sessionmaker[Session]) -> None:
    """docs/audit.md "Each event stores": the payload is the canonical JSON of exactly these keys
    (sorted, no whitespace, Chinese as is), ``hash = sha256(payload)``, ``prev_hash`` links to the
    event before (64 zeros first), and the columns hold the same values (gates normalised: 25.0 → 25)."""
    with transaction(factory) as s:
        first = append_event(s, chain="run:4", at=T0, actor="县项目办", role="county_office", trigger="start",
                             to_state="planning")
        second = append_event(
            s, chain="run:4", at=datetime(2021, 7, 1, 9, 30, tzinfo=timezone(timedelta(hours=8))), actor="王主任",
            role="county_office", trigger="advance", plan_id=7, run_id=4, school_code="3703230002",
            from_state="planning", to_state="online_study", reason="规划已备案",
            gates=[{"gate": "online_25h", "actual": 25.0, "required": 0.5, "passed": True}],
            workflow_version="whole-school-2.0@1")
        expected = (
            '{"actor":"王主任","at":"2021-07-01T01:30:00.000000Z","chain":"run:4","from":"planning",'
            '"gates":[{"actual":25,"gate":"online_25h","passed":true,"required":0.5}],"plan_id":7,'
            f'"prev_hash":"{first.hash}","reason":"规划已备案","role":"county_office","run_id":4,'
            '"school_code":"3703230002","seq":2,"to":"online_study","trigger":"advance","v":1,'
            '"workflow_version":"whole-school-2.0@1"}').encode()
        assert bytes(second.payload) == expected
        assert second.hash == hashlib.sha256(expected).hexdigest()
        assert (first.seq, first.prev_hash, second.prev_hash) == (1, GENESIS, first.hash)
        assert json.loads(bytes(first.payload))["from"] is None
        assert (second.plan_id, second.run_id, second.school_code, second.from_state, second.to_state,
                second.reason, second.gates, second.workflow_version) == (
            7, 4, "3703230002", "planning", "online_study", "规划已备案",
            [{"actual": 25, "gate": "online_25h", "passed": True, "required": 0.5}], "whole-school-2.0@1")
    with factory() as s:  # the column holds the normalised value (module docstring), read back as stored
        stored = s.scalars(select(AuditEvent.gates).where(AuditEvent.chain == "run:4", AuditEvent.seq == 2)).one()
        assert type(stored[0]["actual"]) is int


def test_the_time_is_spelled_in_utc_whatever_the_servers_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    """One spelling per instant (format_time): a server set to Beijing time writes the same bytes."""
    import time

    from engine.audit.chain import format_time
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    try:
        assert format_time(datetime(2021, 7, 1, 9, 0, tzinfo=timezone(timedelta(hours=8)))) == "2021-07-01T01:00:00.000000Z"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_what_the_trail_cannot_record_is_refused_with_what_it_was(factory: sessionmaker[Session]) -> None:
    from engine.audit.chain import format_time, normalise

    class NoOffset(tzinfo):
        def utcoffset(self, dt: datetime | None) -> timedelta | None:
            return None

    with pytest.raises(AuditError, match=r"^naive datetime 2021-07-01T00:00:00 refused in the audit trail$"):
        format_time(datetime(2021, 7, 1))
    with pytest.raises(AuditError, match=r"^naive datetime 2021-07-01T00:00:00 refused"):
        format_time(datetime(2021, 7, 1, tzinfo=NoOffset()))  # a zone that gives no offset is no zone
    with pytest.raises(AuditError, match=r"^nan cannot be recorded in the audit trail \(finite numbers only\)$"):
        normalise([{"actual": float("nan")}])
    with pytest.raises(AuditError, match=r"^audit keys must be strings, not 1$"):
        normalise({1: "x"})
    with pytest.raises(AuditError, match=r"^cannot record a set in the audit trail$"):
        normalise({"x": {1}})
    with pytest.raises(AuditError, match=r"^cannot record a object in the audit trail$"), transaction(factory) as s:
        append_event(s, chain="run:1", at=T0, actor="a", role="r", trigger="t", school_code=object())  # type: ignore[arg-type]
    with pytest.raises(AuditError, match=r"^audit event needs a non-empty trigger$"), transaction(factory) as s:
        append_event(s, chain="run:1", at=T0, actor="a", role="r", trigger="")
    with factory() as s:
        assert s.scalars(select(AuditEvent)).all() == []


def test_actor_and_reason_are_cleaned_and_capped_by_name(factory: sessionmaker[Session]) -> None:
    """engine/text.py in the trail itself: escapes removed; an actor over 100 characters or a reason
    over 2 × MAX_REASON is refused naming the field, never cut; the caps themselves are kept."""
    from engine.text import MAX_REASON
    with transaction(factory) as s:
        e = append_event(s, chain="run:1", at=T0, actor="王\x1b[2J主任", role="r", trigger="t", reason="理由\x1b[31m已备案")
        assert (e.actor, e.reason) == ("王主任", "理由已备案")
        e = append_event(s, chain="run:1", at=T0, actor="甲" * 100, role="r", trigger="t", reason="乙" * (2 * MAX_REASON))
        assert (len(e.actor), len(e.reason or "")) == (100, 2 * MAX_REASON)
    for lang, actor_msg, reason_msg in (
            ("zh", "操作人太长：最多 100 个字符，实为 101 个", f"理由太长：最多 {2 * MAX_REASON} 个字符，实为 {2 * MAX_REASON + 1} 个"),
            ("en", "actor is too long: at most 100 characters, not 101",
             f"reason is too long: at most {2 * MAX_REASON} characters, not {2 * MAX_REASON + 1}")):
        set_language(lang)
        with pytest.raises(TextRefused) as info, transaction(factory) as s:
            append_event(s, chain="run:1", at=T0, actor="甲" * 101, role="r", trigger="t")
        assert str(info.value) == actor_msg
        with pytest.raises(TextRefused) as info, transaction(factory) as s:
            append_event(s, chain="run:1", at=T0, actor="a", role="r", trigger="t", reason="乙" * (2 * MAX_REASON + 1))
        assert str(info.value) == reason_msg
    set_language("zh")


def test_a_writer_that_read_an_old_head_loses_and_is_told_which_chain(
        factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/audit.md: UNIQUE (chain, seq) makes the slower writer fail with 已被他人修改, naming the chain."""
    fill(factory, chain="run:5", n=1)
    monkeypatch.setattr(audit_module, "_chain_head", lambda session, chain: (0, GENESIS))  # read before run:5's event
    for lang, message in (("zh", "审计链 run:5 已被他人修改，请重新加载后再试"),
                          ("en", "audit chain run:5 was changed by someone else; reload and try again")):
        set_language(lang)
        with pytest.raises(StaleStateError) as info, transaction(factory) as s:
            append_event(s, chain="run:5", at=T0, actor="a", role="r", trigger="t")
        assert str(info.value) == message
    set_language("zh")


def test_a_bulk_append_that_lost_names_its_first_three_chains(
        factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    real = audit_module.chain_heads
    fill(factory, chain="plan:1", n=1)  # not in the batch: never named
    for c in ("run:1", "run:2", "run:3", "run:4"):
        fill(factory, chain=c, n=1)

    def stale_heads(session: Session, chains: Iterable[str] | None = None) -> dict[str, tuple[int, str]]:
        return {c: (0, GENESIS) for c in real(session, chains)}  # as read before those events

    monkeypatch.setattr(audit_module, "chain_heads", stale_heads)
    for chains, named in ((["run:3", "run:1", "run:2"], "run:1, run:2, run:3"),
                          (["run:4", "run:3", "run:1", "run:2"], "run:1, run:2, run:3…")):
        drafts = [EventDraft(chain=c, at=T0, actor="a", role="r", trigger="advance") for c in chains]
        with pytest.raises(StaleStateError) as info, transaction(factory) as s:
            append_events(s, drafts)
        assert str(info.value) == f"审计链 {named} 已被他人修改，请重新加载后再试"


def test_chain_heads_of_named_chains_are_those_chains_own(factory: sessionmaker[Session]) -> None:
    """Two chains of the same length: each head is its own last event, and only the chains asked for."""
    from engine.audit.chain import chunked
    fill(factory, chain="run:1", n=3)
    fill(factory, chain="run:2", n=3)
    fill(factory, chain="plan:7", n=1)
    with factory() as s:
        last = {c: h for c, h in s.execute(select(AuditEvent.chain, AuditEvent.hash).where(AuditEvent.seq == 3))}
        assert chain_heads(s, ["run:2", "run:1"]) == {"run:1": (3, last["run:1"]), "run:2": (3, last["run:2"])}
    assert [list(c) for c in chunked(["a", "b", "c", "d", "e"], 2)] == [["a", "b"], ["c", "d"], ["e"]]
