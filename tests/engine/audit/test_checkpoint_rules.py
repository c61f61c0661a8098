"""Signed checkpoints (engine/audit/checkpoint.py): the file's layout, what a reader refuses and why,
what each problem says, and the RFC 6962 tree beyond three leaves.

A checkpoint is evidence read by people (a diff of two files, a root read over the phone, a clerk's
message naming a chain), so the layout and the words are part of the rule, not decoration.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from sqlalchemy.orm import Session, sessionmaker

from engine.audit.checkpoint import (
    checkpoint_text,
    fingerprint,
    generate_key,
    make_checkpoint,
    merkle_root,
    read_checkpoint,
    verify_checkpoint,
    write_checkpoint,
)
from engine.clock import FixedClock
from engine.errors import AuditError
from engine.i18n import set_language
from tests.engine.audit.test_checkpoint import H, append, checkpoint, delete_rows, keys  # noqa: F401 (fixture)


def tree(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 written out for up to 8 leaves, without the recursion under test."""
    leaf = [H(b"\x00" + x) for x in leaves]

    def node(a: bytes, b: bytes) -> bytes:
        return H(b"\x01" + a + b)

    shapes = {
        4: lambda: node(node(leaf[0], leaf[1]), node(leaf[2], leaf[3])),
        5: lambda: node(node(node(leaf[0], leaf[1]), node(leaf[2], leaf[3])), leaf[4]),
        7: lambda: node(node(node(leaf[0], leaf[1]), node(leaf[2], leaf[3])), node(node(leaf[4], leaf[5]), leaf[6])),
        8: lambda: node(node(node(leaf[0], leaf[1]), node(leaf[2], leaf[3])),
                        node(node(leaf[4], leaf[5]), node(leaf[6], leaf[7]))),
    }
    return shapes[len(leaves)]()


# Certificate Transparency's test leaves and published roots (RFC 6962 reference vectors)
CT_LEAVES = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43",
             bytes(range(0x50, 0x58)), bytes(range(0x60, 0x70))]
CT_ROOTS = {
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}


@pytest.mark.parametrize("n", sorted(CT_ROOTS))
def test_merkle_root_splits_at_the_largest_power_of_two_below_n(n: int) -> None:
    """4 and 8 leaves make full trees; 5 and 7 split at 4, never at n itself."""
    assert merkle_root(CT_LEAVES[:n]) == tree(CT_LEAVES[:n])
    assert merkle_root(CT_LEAVES[:n]).hex() == CT_ROOTS[n]


def test_fingerprint_is_the_sha256_of_the_raw_public_key(keys: tuple[Path, Path]) -> None:  # noqa: F811
    private, public = keys
    key = serialization.load_pem_public_key(public.read_bytes())
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert len(raw) == 32
    assert fingerprint(key) == "sha256:" + hashlib.sha256(raw).hexdigest()  # type: ignore[arg-type]


SAMPLE: dict[str, Any] = {
    "format": "rollout-audit-checkpoint/1", "created_at": "2021-08-01T02:00:00.000000Z", "events": 4,
    "chains": 2, "root": "ab" * 32,
    "heads": [{"chain": "plan:1", "seq": 1, "hash": "c" * 64}, {"chain": "学校:1", "seq": 3, "hash": "d" * 64}],
    "public_key": "sha256:" + "e" * 64, "signature": "c2ln",
}


def test_checkpoint_text_is_one_line_per_field_and_per_head() -> None:
    """A diff of two checkpoints reads as the chains that moved; Chinese stays readable, not \\u escapes."""
    assert checkpoint_text(SAMPLE) == (
        '{\n'
        ' "format": "rollout-audit-checkpoint/1",\n'
        ' "created_at": "2021-08-01T02:00:00.000000Z",\n'
        ' "events": 4,\n'
        ' "chains": 2,\n'
        f' "root": "{"ab" * 32}",\n'
        ' "heads": [\n'
        f'  {{"chain": "plan:1", "seq": 1, "hash": "{"c" * 64}"}},\n'
        f'  {{"chain": "学校:1", "seq": 3, "hash": "{"d" * 64}"}}\n'
        ' ],\n'
        f' "public_key": "sha256:{"e" * 64}",\n'
        ' "signature": "c2ln"\n'
        '}\n'
    )
    assert json.loads(checkpoint_text(SAMPLE)) == SAMPLE


def test_checkpoint_text_of_an_empty_trail_and_of_a_dict_without_heads() -> None:
    empty = dict(SAMPLE, heads=[], chains=0, events=0)
    text = checkpoint_text(empty)
    assert ' "root": "' + "ab" * 32 + '",\n "heads": [],\n "public_key"' in text
    assert json.loads(text) == empty
    headless = {k: v for k, v in SAMPLE.items() if k != "heads"}
    assert json.loads(checkpoint_text(headless)) == dict(headless, heads=[])
    assert checkpoint_text(headless).endswith(' "signature": "c2ln",\n "heads": []\n}\n')


def test_missing_folders_are_created_for_keys_and_checkpoints(
    factory: sessionmaker[Session], tmp_path: Path, clock: FixedClock
) -> None:
    """``--output checkpoints/…`` into a folder not yet there works; the private key's folder is 0700."""
    private, public = tmp_path / "secret" / "deep" / "audit.key", tmp_path / "pub" / "audit.pub"
    generate_key(private, public)
    assert stat.S_IMODE(private.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(public.parent.stat().st_mode) == 0o755 & ~umask  # a public key's folder is readable
    append(factory, "run:1", 1)
    path = tmp_path / "checkpoints" / "2021" / "cp.json"
    checkpoint(factory, private, path, clock)
    assert json.loads(path.read_text(encoding="utf-8"))["events"] == 1


def test_a_folder_that_cannot_be_made_is_named_in_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "plain-file"
    blocker.write_text("x", encoding="utf-8")
    set_language("en")
    with pytest.raises(AuditError, match=r"^cannot create the folder .*plain-file/sub: Not a directory$"):
        write_checkpoint(blocker / "sub" / "cp.json", SAMPLE)
    set_language("zh")
    with pytest.raises(AuditError, match=r"^无法创建文件夹 .*plain-file/keys：Not a directory$"):
        generate_key(blocker / "keys" / "audit.key", tmp_path / "audit.pub")
    assert not (tmp_path / "audit.pub").exists()


def test_keygen_refuses_an_existing_public_key_too(tmp_path: Path) -> None:
    public = tmp_path / "audit.pub"
    public.write_bytes(b"old")
    set_language("en")
    with pytest.raises(AuditError, match="audit.pub already exists; not overwriting it"):
        generate_key(tmp_path / "audit.key", public)
    assert public.read_bytes() == b"old" and not (tmp_path / "audit.key").exists()


def test_an_existing_checkpoint_is_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "cp.json"
    path.write_text("evidence", encoding="utf-8")
    set_language("en")
    with pytest.raises(AuditError, match=r"cp.json already exists; not overwriting it$"):
        write_checkpoint(path, SAMPLE)
    assert path.read_text(encoding="utf-8") == "evidence"


def test_keys_that_are_not_ed25519_or_not_keys_are_refused(
    factory: sessionmaker[Session], keys: tuple[Path, Path], tmp_path: Path, clock: FixedClock  # noqa: F811
) -> None:
    private, public = keys
    ec = generate_private_key(SECP256R1())
    ec_private, ec_public = tmp_path / "ec.key", tmp_path / "ec.pub"
    ec_private.write_bytes(ec.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    ec_public.write_bytes(ec.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo))
    append(factory, "run:1", 1)
    path = tmp_path / "cp.json"
    checkpoint(factory, private, path, clock)
    set_language("en")
    with factory() as s, pytest.raises(AuditError, match=r"ec.key is not an Ed25519 key$"):
        make_checkpoint(s, ec_private, clock)
    with factory() as s, pytest.raises(AuditError, match=r"ec.pub is not an Ed25519 key$"):
        verify_checkpoint(s, path, ec_public)
    set_language("zh")
    with factory() as s, pytest.raises(AuditError, match=r"ec.pub 不是 Ed25519 密钥$"):
        verify_checkpoint(s, path, ec_public)
    set_language("en")
    with factory() as s, pytest.raises(AuditError, match=r"^cannot read key .*missing.key: "):
        make_checkpoint(s, tmp_path / "missing.key", clock)
    with factory() as s, pytest.raises(AuditError, match=r"^cannot read key .*audit.pub: "):
        make_checkpoint(s, public, clock)  # a public key where the private key belongs


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(("data", "what"), [
    ({k: v for k, v in SAMPLE.items() if k not in ("signature", "root")}, "root, signature"),
    ({k: v for k, v in SAMPLE.items() if k != "created_at"}, "created_at"),
    (dict(SAMPLE, heads="plan:1"), "heads"),
    (dict(SAMPLE, heads=["plan:1"]), "heads"),
    (dict(SAMPLE, heads=[{"chain": "plan:1", "seq": 1}]), "heads"),
    (dict(SAMPLE, heads=[{"chain": 1, "seq": 1, "hash": "c"}]), "heads"),
    (dict(SAMPLE, heads=[{"chain": "plan:1", "seq": "1", "hash": "c"}]), "heads"),
    (dict(SAMPLE, heads=[{"chain": "plan:1", "seq": 1, "hash": None}]), "heads"),
    (dict(SAMPLE, heads=[{"seq": 1, "hash": "c"}]), "heads"),
])
def test_an_incomplete_checkpoint_names_what_is_missing(tmp_path: Path, data: dict[str, Any], what: str) -> None:
    path = write_json(tmp_path / "cp.json", data)
    set_language("en")
    with pytest.raises(AuditError, match=rf"cp.json: incomplete checkpoint \({what}\)$"):
        read_checkpoint(path)


@pytest.mark.parametrize("data", [[SAMPLE], "rollout-audit-checkpoint/1", dict(SAMPLE, format="other/1"),
                                  {k: v for k, v in SAMPLE.items() if k != "format"}])
def test_a_file_that_is_not_a_checkpoint_says_so(tmp_path: Path, data: Any) -> None:
    path = write_json(tmp_path / "cp.json", data)
    set_language("en")
    with pytest.raises(AuditError, match=r"cp.json is not an audit checkpoint \(rollout-audit-checkpoint/1\)$"):
        read_checkpoint(path)
    set_language("zh")
    with pytest.raises(AuditError, match=r"cp.json 不是审计检查点（rollout-audit-checkpoint/1）$"):
        read_checkpoint(path)


def test_an_unreadable_checkpoint_file_says_so(tmp_path: Path) -> None:
    set_language("en")
    with pytest.raises(AuditError, match=r"^cannot read checkpoint .*none.json: "):
        read_checkpoint(tmp_path / "none.json")
    (tmp_path / "bad.json").write_bytes(b"\xff{")
    with pytest.raises(AuditError, match=r"^cannot read checkpoint .*bad.json: "):
        read_checkpoint(tmp_path / "bad.json")
    assert read_checkpoint(write_json(tmp_path / "ok.json", SAMPLE)) == SAMPLE
