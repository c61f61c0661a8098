"""Verifying a checkpoint (engine/audit/checkpoint.py): what the report says, in which words, and when
it stops.

A report names every head the database lost or changed, in the clerk's words of docs/audit.md, and
carries the file's own date and counts; a file whose signature does not hold proves nothing, so its
heads are not judged at all.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

import engine.audit.checkpoint as checkpoint_module
from engine.audit.checkpoint import (
    CheckpointReport,
    fingerprint,
    make_checkpoint,
    verify_checkpoint,
    write_checkpoint,
)
from engine.clock import FixedClock
from engine.i18n import set_language
from tests.engine.audit.test_checkpoint import (  # noqa: F401 (keys: a fixture)
    append,
    checkpoint,
    delete_rows,
    keys,
    three_chains_checkpointed,
)


def report_of(factory: sessionmaker[Session], path: Path, public: Path) -> CheckpointReport:
    with factory() as s:
        return verify_checkpoint(s, path, public)


def resigned(private: Path, data: dict[str, Any], path: Path) -> Path:
    """``data`` signed again with ``private``: a valid file whose contents the test chose."""
    key = serialization.load_pem_private_key(private.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    data = dict(data)
    data.pop("signature", None)
    data["signature"] = base64.b64encode(key.sign(checkpoint_module._signed_part(data))).decode("ascii")
    write_checkpoint(path, data)
    return path


@pytest.mark.parametrize("language", ["zh", "en"])
def test_each_lost_or_changed_head_is_named_in_words(
    db: Engine, factory: sessionmaker[Session], keys: tuple[Path, Path], tmp_path: Path,  # noqa: F811
    clock: FixedClock, language: str,
) -> None:
    private, public = keys
    path = three_chains_checkpointed(factory, private, tmp_path, clock)
    delete_rows(db, "chain = 'run:1' AND seq >= 3")
    delete_rows(db, "chain IN ('run:2', 'run:3')")
    append(factory, "run:2", 3, reason="改写后的历史")
    set_language(language)
    report = report_of(factory, path, public)
    assert (report.ok, report.created_at, report.chains, report.events) == (False, "2021-07-01T01:00:00.000000Z", 3, 7)
    assert [(p.kind, p.chain, p.seq) for p in report.problems] == [
        ("tail_deleted", "run:1", 4), ("history_rewritten", "run:2", 2), ("tail_deleted", "run:3", 1)]
    words = [p.message for p in report.problems]
    if language == "en":
        assert words == [
            "chain run:1 event 4 was deleted (present at the checkpoint; it now ends at event 2)",
            "chain run:2 event 2 has a different hash than at the checkpoint: history rewritten",
            "chain run:3 event 1 was deleted (present at the checkpoint; the whole chain is gone)",
        ]
    else:
        assert words == [
            "链 run:1 第 4 条已被删除（检查点时存在；现在止于第 2 条）",
            "链 run:2 第 2 条的哈希与检查点不同：历史被改写",
            "链 run:3 第 1 条已被删除（检查点时存在；整条链已不存在）",
        ]


def test_an_intact_trail_reports_the_files_date_and_counts(
    factory: sessionmaker[Session], keys: tuple[Path, Path], tmp_path: Path, clock: FixedClock  # noqa: F811
) -> None:
    private, public = keys
    append(factory, "run:1", 2)
    append(factory, "plan:1", 1)
    path = tmp_path / "cp.json"
    checkpoint(factory, private, path, clock)
    append(factory, "run:1", 5)  # later events change neither the verdict nor the file's counts
    report = report_of(factory, path, public)
    assert (report.ok, report.created_at, report.chains, report.events, report.problems) == (
        True, "2021-07-01T01:00:00.000000Z", 2, 3, [])


def test_an_unsigned_file_is_not_judged_further(
    db: Engine, factory: sessionmaker[Session], keys: tuple[Path, Path], tmp_path: Path, clock: FixedClock  # noqa: F811
) -> None:
    """A bad signature is the only problem reported, even when the heads it names are gone too."""
    private, public = keys
    append(factory, "run:1", 3)
    signed = checkpoint(factory, private, tmp_path / "cp.json", clock)
    delete_rows(db, "chain = 'run:1'")
    set_language("en")
    for name, signature in [("edited", signed["signature"][:-4] + "AAA="), ("not-base64", "***"),
                            ("not-text", 12345), ("short", "c2ln")]:
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(dict(signed, signature=signature)), encoding="utf-8")
        report = report_of(factory, path, public)
        assert (report.ok, report.chains, report.events) == (False, 1, 3), name
        assert [(p.kind, p.chain, p.seq) for p in report.problems] == [("bad_signature", None, None)], name
        assert report.problems[0].message == (
            f"{path} has an invalid signature: the file was changed after signing, or another key signed it")
    set_language("zh")
    assert [p.message for p in report_of(factory, path, public).problems] == [
        f"{path} 的签名无效：文件在签名后被改动，或不是用这把密钥签的"]


def test_a_file_of_another_key_names_both_fingerprints(
    factory: sessionmaker[Session], keys: tuple[Path, Path], tmp_path: Path, clock: FixedClock  # noqa: F811
) -> None:
    private, public = keys
    other_private, other_public = tmp_path / "other.key", tmp_path / "other.pub"
    from engine.audit.checkpoint import generate_key

    other = generate_key(other_private, other_public)
    append(factory, "run:1", 1)
    path = tmp_path / "cp.json"
    signed = checkpoint(factory, private, path, clock)
    set_language("en")
    report = report_of(factory, path, other_public)
    assert not report.ok
    assert [p.message for p in report.problems] == [
        f"{path} was signed by another key ({signed['public_key']}), not the given public key ({other})"]
    set_language("zh")
    assert [p.message for p in report_of(factory, path, other_public).problems] == [
        f"{path} 由另一把密钥签名（{signed['public_key']}），不是所给公钥（{other}）"]
    key = serialization.load_pem_public_key(public.read_bytes())
    assert signed["public_key"] == fingerprint(key) != other  # type: ignore[arg-type]


def test_a_root_that_does_not_match_does_not_stop_the_head_checks(
    db: Engine, factory: sessionmaker[Session], keys: tuple[Path, Path], tmp_path: Path, clock: FixedClock  # noqa: F811
) -> None:
    private, public = keys
    append(factory, "run:1", 2)
    append(factory, "run:2", 2)
    with factory() as s:
        signed = make_checkpoint(s, private, clock)
    path = resigned(private, dict(signed, root="0" * 64), tmp_path / "cp.json")
    delete_rows(db, "chain = 'run:2' AND seq = 2")
    set_language("en")
    report = report_of(factory, path, public)
    assert [(p.kind, p.chain, p.seq) for p in report.problems] == [
        ("root_mismatch", None, None), ("tail_deleted", "run:2", 2)]
    assert report.problems[0].message == "the heads in the checkpoint do not match its signed Merkle root"
    set_language("zh")
    assert report_of(factory, path, public).problems[0].message == "检查点中的链头与签名的 Merkle 根不符"


def test_many_heads_are_looked_up_in_several_queries(
    db: Engine, factory: sessionmaker[Session], keys: tuple[Path, Path], tmp_path: Path,  # noqa: F811
    clock: FixedClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """More heads than one query's list holds: every one is still found (or missed) by its own pair."""
    private, public = keys
    for i in range(5):
        append(factory, f"run:{i}", 2)
    path = tmp_path / "cp.json"
    checkpoint(factory, private, path, clock)
    delete_rows(db, "chain = 'run:3' AND seq = 2")
    for per_query in (1, 2, 4, 5, 5000):
        monkeypatch.setattr(checkpoint_module, "PAIRS_PER_QUERY", per_query)
        report = report_of(factory, path, public)
        assert [(p.kind, p.chain, p.seq) for p in report.problems] == [("tail_deleted", "run:3", 2)], per_query


def test_heads_are_signed_in_code_point_order_with_the_event_count(
    factory: sessionmaker[Session], keys: tuple[Path, Path], clock: FixedClock  # noqa: F811
) -> None:
    private, _ = keys
    for chain, n in [("run:b", 1), ("学校:1", 2), ("Run:Z", 3), ("run:a", 1)]:
        append(factory, chain, n)
    with factory() as s:
        signed = make_checkpoint(s, private, clock)
    assert [(h["chain"], h["seq"]) for h in signed["heads"]] == [("Run:Z", 3), ("run:a", 1), ("run:b", 1), ("学校:1", 2)]
    assert (signed["events"], signed["chains"]) == (7, 4)
    assert list(signed) == ["format", "created_at", "events", "chains", "root", "heads", "public_key", "signature"]
