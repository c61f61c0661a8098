"""The append-only, hash-chained audit trail: writing events and checking that none was changed.

Supervisors (督导) review the trail and its results feed school ratings, so a change made behind the
engine's back must be visible. Each event's payload is canonical JSON that names the hash of the
event before it; the hash of the payload is stored beside it. There is one chain per school run
(``run:<id>``) or plan (``plan:<id>``) rather than one global chain, so offices advancing different
schools at the same time never wait on each other. A chain cannot reveal its own tail being cut;
signed checkpoints (``engine.audit.checkpoint``) do that.

Numbers inside ``gates``: finite floats only (NaN/∞ are refused). An integral float is written as an
integer (25.0 → 25), as ECMAScript/RFC 8785 would, so a value hashes the same whether a caller passed
25 or 25.0; any other float is written in Python's shortest round-trip form, which JSON reads back
exactly. The normalised value is what is stored in the ``gates`` column too.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime
from typing import Any, cast

from sqlalchemy import Table, and_, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.errors import AuditError, StaleStateError
from engine.i18n import tr
from engine.models import AuditEvent
from engine.text import MAX_REASON, clean_line, clean_text

GENESIS = "0" * 64
PAYLOAD_VERSION = 1
CHUNK = 10_000  # chains per IN (...) list: one query for 10,000 schools, under every driver's limit
AUDIT: Table = cast(Table, AuditEvent.__table__)


def run_chain(run_id: int) -> str:
    return f"run:{run_id}"


def plan_chain(plan_id: int) -> str:
    return f"plan:{plan_id}"


@dataclass(frozen=True)
class EventDraft:
    """An event not yet placed in its chain (no seq, no hashes): what bulk callers build."""

    chain: str
    at: datetime
    actor: str
    role: str
    trigger: str
    plan_id: int | None = None
    run_id: int | None = None
    school_code: str | None = None
    from_state: str | None = None
    to_state: str | None = None
    reason: str | None = None
    gates: Sequence[Mapping[str, Any]] | None = None
    workflow_version: str | None = None


def format_time(at: datetime) -> str:
    """ISO-8601 UTC with microseconds and 'Z': one spelling per instant, whatever zone came in."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise AuditError(f"naive datetime {at.isoformat()} refused in the audit trail")
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def normalise(value: Any) -> Any:
    """The JSON value that ``canonical`` encodes (see the module docstring for numbers)."""
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise AuditError(f"{value} cannot be recorded in the audit trail (finite numbers only)")
        return int(value) if value.is_integer() else value
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise AuditError(f"audit keys must be strings, not {key!r}")
            out[key] = normalise(item)
        return out
    if isinstance(value, list | tuple):
        return [normalise(item) for item in value]
    raise AuditError(f"cannot record a {type(value).__name__} in the audit trail")


def canonical(obj: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8 (not \\u escapes): the same object always gives the same bytes."""
    return json.dumps(
        normalise(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _document(d: EventDraft, seq: int, prev_hash: str) -> dict[str, Any]:
    return {
        "v": PAYLOAD_VERSION,
        "chain": d.chain,
        "seq": seq,
        "at": format_time(d.at),
        "actor": d.actor,
        "role": d.role,
        "plan_id": d.plan_id,
        "run_id": d.run_id,
        "school_code": d.school_code,
        "from": d.from_state,
        "to": d.to_state,
        "trigger": d.trigger,
        "reason": d.reason,
        "gates": normalise(list(d.gates or [])),
        "workflow_version": d.workflow_version,
        "prev_hash": prev_hash,
    }


def _row(d: EventDraft, seq: int, prev_hash: str) -> dict[str, Any]:
    """Column values for one event; ``payload`` is the exact bytes that were hashed."""
    # The trail keeps text forever: whatever a caller passes is cleaned and capped here too
    # (engine/text.py), so no writer can leave terminal escapes or a 20-million-character reason.
    d = replace(d, actor=clean_line(d.actor, tr("操作人", "actor"), 100),
                reason=clean_text(d.reason, tr("理由", "reason"), MAX_REASON * 2))
    for name in ("chain", "actor", "role", "trigger"):
        if not getattr(d, name):
            raise AuditError(f"audit event needs a non-empty {name}")
    doc = _document(d, seq, prev_hash)
    try:  # _document has normalised every value already: encode without walking it twice
        payload = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                             allow_nan=False).encode("utf-8")
    except (TypeError, ValueError):  # something a caller passed that normalise must judge
        payload = canonical(doc)
    values = {f.name: getattr(d, f.name) for f in fields(EventDraft)}
    values.update(seq=seq, gates=doc["gates"], prev_hash=prev_hash, payload=payload)
    values["hash"] = sha256_hex(payload)
    return values


def _stale(chain: str) -> StaleStateError:
    return StaleStateError(
        tr(
            f"审计链 {chain} 已被他人修改，请重新加载后再试",
            f"audit chain {chain} was changed by someone else; reload and try again",
        )
    )


def _chain_head(session: Session, chain: str) -> tuple[int, str]:
    row = session.execute(
        select(AUDIT.c.seq, AUDIT.c.hash)
        .where(AUDIT.c.chain == chain)
        .order_by(AUDIT.c.seq.desc())
        .limit(1)
    ).first()
    return (0, GENESIS) if row is None else (row[0], row[1])


def append_event(
    session: Session,
    *,
    chain: str,
    at: datetime,
    actor: str,
    role: str,
    trigger: str,
    plan_id: int | None = None,
    run_id: int | None = None,
    school_code: str | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    reason: str | None = None,
    gates: Sequence[Mapping[str, Any]] | None = None,
    workflow_version: str | None = None,
) -> AuditEvent:
    """Append one event inside the caller's transaction; a racing writer on the chain loses."""
    draft = EventDraft(
        chain=chain, at=at, actor=actor, role=role, trigger=trigger, plan_id=plan_id,
        run_id=run_id, school_code=school_code, from_state=from_state, to_state=to_state,
        reason=reason, gates=gates, workflow_version=workflow_version,
    )
    session.flush()  # the caller's own pending rows first, so an IntegrityError below is ours
    seq, prev_hash = _chain_head(session, chain)
    event = AuditEvent(**_row(draft, seq + 1, prev_hash))
    session.add(event)
    try:
        session.flush()
    except IntegrityError as exc:
        raise _stale(chain) from exc
    return event


def chunked(items: Sequence[str], size: int = CHUNK) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _heads_query(chains: Sequence[str] | None) -> Any:
    last = select(AUDIT.c.chain, func.max(AUDIT.c.seq).label("seq"))
    if chains is not None:
        last = last.where(AUDIT.c.chain.in_(chains))
    sub = last.group_by(AUDIT.c.chain).subquery()
    return select(AUDIT.c.chain, AUDIT.c.seq, AUDIT.c.hash).join(
        sub, and_(AUDIT.c.chain == sub.c.chain, AUDIT.c.seq == sub.c.seq)
    )


def chain_heads(session: Session, chains: Iterable[str] | None = None) -> dict[str, tuple[int, str]]:
    """chain → (last seq, its hash): what a checkpoint signs and where appends continue."""
    if chains is None:
        return {c: (s, h) for c, s, h in session.execute(_heads_query(None))}
    heads: dict[str, tuple[int, str]] = {}
    for chunk in chunked(sorted(set(chains))):
        heads.update({c: (s, h) for c, s, h in session.execute(_heads_query(chunk))})
    return heads


def append_events(session: Session, events: Sequence[EventDraft]) -> int:
    """Bulk append (e.g. 10,000 schools advanced at once): one head query, one bulk INSERT."""
    if not events:
        return 0
    session.flush()
    heads = chain_heads(session, {e.chain for e in events})
    rows = []
    for draft in events:
        seq, prev_hash = heads.get(draft.chain, (0, GENESIS))
        row = _row(draft, seq + 1, prev_hash)
        heads[draft.chain] = (seq + 1, row["hash"])
        rows.append(row)
    try:
        session.execute(insert(AUDIT), rows)
    except IntegrityError as exc:
        raise _stale(", ".join(sorted(heads)[:3]) + ("…" if len(heads) > 3 else "")) from exc
    return len(rows)
