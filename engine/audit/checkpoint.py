"""Signed checkpoints of the audit trail: what a hash chain alone cannot show.

A chain proves nothing about rows cut from its end, and a superuser who disables the triggers can
rewrite a chain and recompute every hash. A checkpoint — the head (seq, hash) of every chain, their
RFC 6962 Merkle root, signed with an Ed25519 key kept away from the database and mailed or archived
outside it — pins the trail as it was: later, every head it names must still be there, unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from engine.audit.chain import AUDIT, canonical, chain_heads, format_time
from engine.clock import Clock
from engine.errors import AuditError
from engine.i18n import tr

FORMAT = "rollout-audit-checkpoint/1"
FIELDS = ("format", "created_at", "events", "chains", "root", "heads", "public_key", "signature")
PAIRS_PER_QUERY = 5000


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """RFC 6962 §2.1 Merkle Tree Hash: 0x00 before leaves, 0x01 before nodes, split at 2^k < n."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + merkle_root(leaves[:k]) + merkle_root(leaves[k:])).digest()


def head_leaves(heads: Sequence[dict[str, Any]]) -> list[bytes]:
    return [canonical({"chain": h["chain"], "seq": h["seq"], "hash": h["hash"]}) for h in heads]


def fingerprint(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _make_parent(path: Path, mode: int = 0o755) -> None:
    """Create the folder a key or checkpoint goes into, or say in one line why not (issue 17, 10:
    ``--output checkpoints/…`` printed a traceback when ``checkpoints/`` was not there)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=mode)
    except OSError as exc:
        raise AuditError(tr(f"无法创建文件夹 {path.parent}：{exc.strerror or exc}",
                            f"cannot create the folder {path.parent}: {exc.strerror or exc}")) from exc


def generate_key(private_path: Path | str, public_path: Path | str) -> str:
    """Write a new Ed25519 key pair (PEM; private file 0600); never overwrites. Returns the fingerprint.

    Missing folders are created (the private key's as 0700)."""
    private_path, public_path = Path(private_path), Path(public_path)
    for path in (private_path, public_path):
        if path.exists():
            raise AuditError(tr(f"{path} 已存在，不会覆盖", f"{path} already exists; not overwriting it"))
    _make_parent(private_path, 0o700)
    _make_parent(public_path)
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(private_pem)
    public_path.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return fingerprint(key.public_key())


def _read_key(path: Path | str, private: bool) -> Any:
    try:
        data = Path(path).read_bytes()
        if private:
            key: Any = serialization.load_pem_private_key(data, password=None)
            expected: type = Ed25519PrivateKey
        else:
            key = serialization.load_pem_public_key(data)
            expected = Ed25519PublicKey
    except (OSError, ValueError, TypeError) as exc:
        raise AuditError(tr(f"无法读取密钥 {path}：{exc}", f"cannot read key {path}: {exc}")) from exc
    if not isinstance(key, expected):
        raise AuditError(tr(f"{path} 不是 Ed25519 密钥", f"{path} is not an Ed25519 key"))
    return key


def _signed_part(checkpoint: dict[str, Any]) -> bytes:
    return canonical({k: v for k, v in checkpoint.items() if k != "signature"})


def make_checkpoint(session: Session, private_key_path: Path | str, clock: Clock) -> dict[str, Any]:
    """Sign the current head of every chain (sorted by chain, code-point order)."""
    key: Ed25519PrivateKey = _read_key(private_key_path, private=True)
    heads = [{"chain": c, "seq": s, "hash": h} for c, (s, h) in sorted(chain_heads(session).items())]
    events = session.execute(select(func.count()).select_from(AUDIT)).scalar_one()
    checkpoint: dict[str, Any] = {
        "format": FORMAT,
        "created_at": format_time(clock.now()),
        "events": events,
        "chains": len(heads),
        "root": merkle_root(head_leaves(heads)).hex(),
        "heads": heads,
        "public_key": fingerprint(key.public_key()),
    }
    checkpoint["signature"] = base64.b64encode(key.sign(_signed_part(checkpoint))).decode("ascii")
    return checkpoint


def checkpoint_text(checkpoint: dict[str, Any]) -> str:
    """The file's JSON, one line per chain head (docs/audit.md): a diff of two checkpoints reads as
    the chains that moved, and the file stays small."""
    fields = [f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in checkpoint.items() if k != "heads"]
    heads = ",\n".join(f"  {json.dumps(h, ensure_ascii=False)}" for h in checkpoint.get("heads", []))
    at = list(checkpoint).index("heads") if "heads" in checkpoint else len(fields)
    fields.insert(at, ' "heads": [\n' + heads + "\n ]" if heads else ' "heads": []')
    return "{\n" + ",\n".join(fields) + "\n}\n"


def write_checkpoint(path: Path | str, checkpoint: dict[str, Any]) -> None:
    """Write the file once; an archived checkpoint is evidence and is never replaced."""
    path = Path(path)
    _make_parent(path)
    try:
        with open(path, "x", encoding="utf-8") as out:
            out.write(checkpoint_text(checkpoint))
    except FileExistsError as exc:
        raise AuditError(tr(f"{path} 已存在，不会覆盖", f"{path} already exists; not overwriting it")) from exc


@dataclass(frozen=True)
class CheckpointProblem:
    kind: str  # bad_signature | wrong_key | root_mismatch | tail_deleted | history_rewritten
    message: str
    chain: str | None = None
    seq: int | None = None


@dataclass
class CheckpointReport:
    ok: bool
    created_at: str
    chains: int
    events: int
    problems: list[CheckpointProblem] = field(default_factory=list)


def read_checkpoint(path: Path | str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AuditError(tr(f"无法读取检查点 {path}：{exc}", f"cannot read checkpoint {path}: {exc}")) from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise AuditError(tr(f"{path} 不是审计检查点（{FORMAT}）", f"{path} is not an audit checkpoint ({FORMAT})"))
    missing = [k for k in FIELDS if k not in data]
    heads = data.get("heads")
    if missing or not isinstance(heads, list) or not all(
        isinstance(h, dict) and isinstance(h.get("chain"), str) and isinstance(h.get("seq"), int)
        and isinstance(h.get("hash"), str) for h in heads
    ):
        what = ", ".join(missing) or "heads"
        raise AuditError(tr(f"{path}：检查点不完整（{what}）", f"{path}: incomplete checkpoint ({what})"))
    return data


def _signature_problem(data: dict[str, Any], key: Ed25519PublicKey, path: Path | str) -> CheckpointProblem | None:
    if data["public_key"] != fingerprint(key):
        return CheckpointProblem("wrong_key", tr(
            f"{path} 由另一把密钥签名（{data['public_key']}），不是所给公钥（{fingerprint(key)}）",
            f"{path} was signed by another key ({data['public_key']}), not the given public key ({fingerprint(key)})",
        ))
    try:
        key.verify(base64.b64decode(data["signature"], validate=True), _signed_part(data))
    except (InvalidSignature, ValueError, TypeError):
        return CheckpointProblem("bad_signature", tr(
            f"{path} 的签名无效：文件在签名后被改动，或不是用这把密钥签的",
            f"{path} has an invalid signature: the file was changed after signing, or another key signed it",
        ))
    return None


def _stored_hashes(session: Session, pairs: list[tuple[str, int]]) -> dict[tuple[str, int], str]:
    found: dict[tuple[str, int], str] = {}
    for start in range(0, len(pairs), PAIRS_PER_QUERY):
        chunk = pairs[start : start + PAIRS_PER_QUERY]
        rows = session.execute(
            select(AUDIT.c.chain, AUDIT.c.seq, AUDIT.c.hash).where(tuple_(AUDIT.c.chain, AUDIT.c.seq).in_(chunk))
        )
        found.update({(c, s): h for c, s, h in rows})
    return found


def verify_checkpoint(
    session: Session, checkpoint_path: Path | str, public_key_path: Path | str
) -> CheckpointReport:
    """Every head the signed file names must still be in the database, unchanged; later events are fine."""
    data = read_checkpoint(checkpoint_path)
    key: Ed25519PublicKey = _read_key(public_key_path, private=False)
    report = CheckpointReport(True, str(data["created_at"]), len(data["heads"]), int(data["events"]))
    bad = _signature_problem(data, key, checkpoint_path)
    if bad is not None:  # an unsigned file's heads prove nothing: stop here
        report.ok, report.problems = False, [bad]
        return report
    heads = data["heads"]
    if merkle_root(head_leaves(heads)).hex() != data["root"]:
        report.problems.append(CheckpointProblem("root_mismatch", tr(
            "检查点中的链头与签名的 Merkle 根不符", "the heads in the checkpoint do not match its signed Merkle root"
        )))
    current = chain_heads(session, [h["chain"] for h in heads])
    stored = _stored_hashes(session, [(h["chain"], h["seq"]) for h in heads])
    for head in heads:
        chain, seq = head["chain"], head["seq"]
        now = current.get(chain)
        if (chain, seq) not in stored:
            ends_zh = f"现在止于第 {now[0]} 条" if now else "整条链已不存在"
            ends_en = f"it now ends at event {now[0]}" if now else "the whole chain is gone"
            report.problems.append(CheckpointProblem("tail_deleted", tr(
                f"链 {chain} 第 {seq} 条已被删除（检查点时存在；{ends_zh}）",
                f"chain {chain} event {seq} was deleted (present at the checkpoint; {ends_en})",
            ), chain, seq))
        elif stored[(chain, seq)] != head["hash"]:
            report.problems.append(CheckpointProblem("history_rewritten", tr(
                f"链 {chain} 第 {seq} 条的哈希与检查点不同：历史被改写",
                f"chain {chain} event {seq} has a different hash than at the checkpoint: history rewritten",
            ), chain, seq))
    report.ok = not report.problems
    return report
