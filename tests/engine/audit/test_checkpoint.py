"""Signed checkpoints: round trip, tail deletion, rewritten history, wrong keys, RFC 6962 roots."""

from __future__ import annotations

import hashlib
import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from engine.audit import append_event, verify_chains
from engine.audit.chain import canonical
from engine.audit.checkpoint import (
    generate_key,
    make_checkpoint,
    merkle_root,
    verify_checkpoint,
    write_checkpoint,
)
from engine.clock import FixedClock
from engine.db import transaction
from engine.errors import AuditError

T0 = datetime(2021, 7, 1, 1, 0, tzinfo=UTC)


def H(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def append(factory: sessionmaker[Session], chain: str, n: int, reason: str = "按计划") -> None:
    with transaction(factory) as s:
        for i in range(n):
            append_event(s, chain=chain, at=T0 + timedelta(days=i), actor="县项目办", role="county",
                         trigger="advance", reason=reason)


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    private, public = tmp_path / "audit.key", tmp_path / "audit.pub"
    generate_key(private, public)
    return private, public


def checkpoint(factory: sessionmaker[Session], private: Path, path: Path, clock: FixedClock) -> dict:
    with factory() as s:
        signed = make_checkpoint(s, private, clock)
    write_checkpoint(path, signed)
    return signed


def check(factory: sessionmaker[Session], path: Path, public: Path) -> list[tuple[str, str | None, int | None]]:
    with factory() as s:
        report = verify_checkpoint(s, path, public)
    assert report.ok == (not report.problems)
    return [(p.kind, p.chain, p.seq) for p in report.problems]


def three_chains_checkpointed(factory: sessionmaker[Session], private: Path, tmp_path: Path,
                              clock: FixedClock) -> Path:
    """Chains of 4, 2 and 1 events and a checkpoint of them: the tail, loss and change cases."""
    append(factory, "run:1", 4)
    append(factory, "run:2", 2)
    append(factory, "run:3", 1)
    path = tmp_path / "cp.json"
    checkpoint(factory, private, path, clock)
    return path


def delete_rows(db: Engine, where: str) -> None:
    with db.begin() as conn:
        if db.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER IF EXISTS audit_event_no_delete"))
        else:
            conn.execute(text("ALTER TABLE audit_event DISABLE TRIGGER USER"))
        conn.execute(text(f"DELETE FROM audit_event WHERE {where}"))


def test_merkle_root_matches_rfc6962_vectors() -> None:
    """Derived by hand from RFC 6962 §2.1 (and equal to Certificate Transparency's published vectors)."""
    a, b, c = b"", b"\x00", b"\x10"
    assert merkle_root([]) == H(b"")
    assert merkle_root([a]) == H(b"\x00" + a)
    assert merkle_root([a]).hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    two = H(b"\x01" + H(b"\x00" + a) + H(b"\x00" + b))
    assert merkle_root([a, b]) == two
    assert two.hex() == "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"
    three = H(b"\x01" + two + H(b"\x00" + c))  # split at 2, the largest power of two < 3
    assert merkle_root([a, b, c]) == three
    assert three.hex() == "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"


def test_round_trip(factory: sessionmaker[Session], keys: tuple[Path, Path], tmp_path: Path, clock: FixedClock) -> None:
    private, public = keys
    append(factory, "run:1", 3)
    append(factory, "plan:1", 1)
    path = tmp_path / "cp.json"
    signed = checkpoint(factory, private, path, clock)
    on_disk = json.loads(path.read_text(encoding="utf-8"))
    assert on_disk == signed
    assert on_disk["format"] == "rollout-audit-checkpoint/1"
    assert on_disk["created_at"] == "2021-07-01T01:00:00.000000Z"
    assert (on_disk["events"], on_disk["chains"]) == (4, 2)
    assert [h["chain"] for h in on_disk["heads"]] == ["plan:1", "run:1"]
    leaves = [canonical({"chain": h["chain"], "seq": h["seq"], "hash": h["hash"]}) for h in on_disk["heads"]]
    assert on_disk["root"] == H(b"\x01" + H(b"\x00" + leaves[0]) + H(b"\x00" + leaves[1])).hex()
    assert check(factory, path, public) == []
    with pytest.raises(AuditError, match="已存在"):
        write_checkpoint(path, signed)


def test_new_events_after_checkpoint_are_fine(
    factory: sessionmaker[Session], keys: tuple[Path, Path], tmp_path: Path, clock: FixedClock
) -> None:
    private, public = keys
    append(factory, "run:1", 2)
    path = tmp_path / "cp.json"
    checkpoint(factory, private, path, clock)
    append(factory, "run:1", 2)
    append(factory, "run:2", 1)
    assert check(factory, path, public) == []


def test_tail_deletion_is_detected(
    db: Engine, factory: sessionmaker[Session], keys: tuple[Path, Path], tmp_path: Path, clock: FixedClock
) -> None:
    private, public = keys
    path = three_chains_checkpointed(factory, private, tmp_path, clock)
    delete_rows(db, "chain = 'run:1' AND seq >= 3")
    delete_rows(db, "chain = 'run:3'")
    assert verify_chains(db).ok  # the chains alone cannot see their tails cut
    assert check(factory, path, public) == [("tail_deleted", "run:1", 4), ("tail_deleted", "run:3", 1)]


def test_rewritten_history_is_detected(
    db: Engine, factory: sessionmaker[Session], keys: tuple[Path, Path], tmp_path: Path, clock: FixedClock
) -> None:
    private, public = keys
    append(factory, "run:1", 3)
    append(factory, "run:2", 2)
    path = tmp_path / "cp.json"
    checkpoint(factory, private, path, clock)
    delete_rows(db, "chain = 'run:2'")
    append(factory, "run:2", 3, reason="改写后的历史")  # a consistent chain again, longer even
    assert verify_chains(db).ok
    assert check(factory, path, public) == [("history_rewritten", "run:2", 2)]


def test_bad_signature_and_wrong_key(
    factory: sessionmaker[Session], keys: tuple[Path, Path], tmp_path: Path, clock: FixedClock
) -> None:
    private, public = keys
    append(factory, "run:1", 2)
    path = tmp_path / "cp.json"
    signed = checkpoint(factory, private, path, clock)

    edited = dict(signed, events=1)
    (tmp_path / "edited.json").write_text(json.dumps(edited), encoding="utf-8")
    assert [k for k, *_ in check(factory, tmp_path / "edited.json", public)] == ["bad_signature"]

    other_private, other_public = tmp_path / "other.key", tmp_path / "other.pub"
    generate_key(other_private, other_public)
    assert [k for k, *_ in check(factory, path, other_public)] == ["wrong_key"]

    # Signed by another key that claims to be ours: the fingerprint matches, the signature does not.
    other = checkpoint(factory, other_private, tmp_path / "other.json", clock)
    posing = dict(other, public_key=signed["public_key"])
    (tmp_path / "posing.json").write_text(json.dumps(posing), encoding="utf-8")
    assert [k for k, *_ in check(factory, tmp_path / "posing.json", public)] == ["bad_signature"]


def test_keygen_refuses_to_overwrite_and_protects_the_private_key(keys: tuple[Path, Path]) -> None:
    private, public = keys
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in private.read_bytes() and b"PUBLIC KEY" in public.read_bytes()
    before = private.read_bytes()
    with pytest.raises(AuditError, match="已存在"):
        generate_key(private, public.with_name("new.pub"))
    assert private.read_bytes() == before


def test_unreadable_files_give_clear_errors(
    factory: sessionmaker[Session], keys: tuple[Path, Path], tmp_path: Path, clock: FixedClock
) -> None:
    private, public = keys
    path = tmp_path / "cp.json"
    checkpoint(factory, private, path, clock)
    with factory() as s, pytest.raises(AuditError, match="audit.key"):
        verify_checkpoint(s, path, private)  # a private key where the public key belongs
    junk = tmp_path / "junk.json"
    junk.write_text("not json", encoding="utf-8")
    with factory() as s, pytest.raises(AuditError, match="junk.json"):
        verify_checkpoint(s, junk, public)
    incomplete = tmp_path / "incomplete.json"
    incomplete.write_text(json.dumps({"format": "rollout-audit-checkpoint/1", "heads": []}), encoding="utf-8")
    with factory() as s, pytest.raises(AuditError, match="signature"):
        verify_checkpoint(s, incomplete, public)


def test_heads_that_disagree_with_the_signed_root_are_detected(
    factory: sessionmaker[Session], keys: tuple[Path, Path], tmp_path: Path, clock: FixedClock
) -> None:
    """The Merkle root is what gets mailed out and compared by hand; a validly signed file whose
    heads do not hash to its root (a faulty or dishonest signer dropped a chain after computing the
    root) proves nothing about the dropped chain and is reported, not accepted."""
    import base64

    from cryptography.hazmat.primitives import serialization

    from engine.audit.checkpoint import _signed_part

    private, public = keys
    append(factory, "run:1", 2)
    append(factory, "run:2", 1)
    with factory() as s:
        signed = make_checkpoint(s, private, clock)
    trimmed = dict(signed, heads=[h for h in signed["heads"] if h["chain"] != "run:2"])
    key = serialization.load_pem_private_key(private.read_bytes(), password=None)
    trimmed["signature"] = base64.b64encode(key.sign(_signed_part(trimmed))).decode("ascii")  # type: ignore[union-attr]
    path = tmp_path / "trimmed.json"
    write_checkpoint(path, trimmed)
    assert check(factory, path, public) == [("root_mismatch", None, None)]
