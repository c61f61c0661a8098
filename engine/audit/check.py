"""Judging one audit event against the chain so far, field by field, in a clerk's words.

The slow, exact check: it rebuilds the canonical document from the columns and compares it with the
hashed payload, so it can say which fields differ. ``engine.audit.verify`` runs a cheaper check over
every row and hands only the suspects here; this function has the last word on each.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any

from engine.audit.chain import EventDraft, _document, canonical, sha256_hex
from engine.i18n import tr


@dataclass(frozen=True)
class ChainProblem:
    chain: str
    seq: int
    event_id: int | None  # None when the event is missing (deleted)
    kind: str  # edited | deleted | reordered | forged_hash
    message: str


@dataclass
class VerifyReport:
    ok: bool = True
    chains: int = 0
    events: int = 0
    problems: list[ChainProblem] = field(default_factory=list)


def _draft_from_row(row: Any) -> EventDraft:
    return EventDraft(**{f.name: getattr(row, f.name) for f in fields(EventDraft)})


def _problem(row: Any, kind: str, zh: str, en: str, seq: int | None = None) -> ChainProblem:
    event_id = None if seq is not None else row.id
    return ChainProblem(row.chain, row.seq if seq is None else seq, event_id, kind, tr(zh, en))


def check_event(row: Any, expected: int, prev_hash: str) -> ChainProblem | None:
    """The first thing wrong with ``row`` given the chain so far, named the way a clerk would say it."""
    where_zh, where_en = f"链 {row.chain} 第 {row.seq} 条（#{row.id}）", f"chain {row.chain} event {row.seq} (#{row.id})"
    payload = bytes(row.payload)
    try:
        doc = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        doc = None
    if not isinstance(doc, dict):
        return _problem(row, "edited", f"{where_zh}：内容（payload）已被改动，不是有效的 JSON",
                        f"{where_en}: payload was edited and is not valid JSON")
    if doc.get("chain") != row.chain or doc.get("seq") != row.seq:
        return _problem(
            row, "reordered",
            f"{where_zh}：记录的位置被改动（内容写明是 {doc.get('chain')} 第 {doc.get('seq')} 条）",
            f"{where_en}: moved (its payload says {doc.get('chain')} event {doc.get('seq')})",
        )
    if row.seq != expected:
        missing = f"{expected}" if row.seq == expected + 1 else f"{expected}–{row.seq - 1}"
        return _problem(
            row, "deleted",
            f"链 {row.chain} 第 {missing} 条已被删除（下一条是第 {row.seq} 条，#{row.id}）",
            f"chain {row.chain} event {missing} was deleted (next present: event {row.seq}, #{row.id})",
            seq=expected,
        )
    rebuilt = canonical(_document(_draft_from_row(row), row.seq, row.prev_hash))
    if rebuilt != payload:
        theirs = json.loads(rebuilt)
        changed = sorted(k for k in set(doc) | set(theirs) if canonical(doc.get(k)) != canonical(theirs.get(k)))
        what = ", ".join(changed) or "payload"
        return _problem(row, "edited", f"{where_zh}：已被改动（{what}）",
                        f"{where_en}: edited ({what} differ between the columns and the hashed payload)")
    if sha256_hex(payload) != row.hash:
        return _problem(row, "forged_hash", f"{where_zh}：哈希值与内容不符（哈希被伪造）",
                        f"{where_en}: stored hash does not match its payload (forged hash)")
    if row.prev_hash != prev_hash:
        return _problem(
            row, "reordered",
            f"{where_zh}：未接在第 {row.seq - 1} 条之后（顺序被调换，或第 {row.seq - 1} 条被改写并重算了哈希）",
            f"{where_en}: does not follow event {row.seq - 1} (events reordered, or event "
            f"{row.seq - 1} rewritten with a recomputed hash)",
        )
    return None
