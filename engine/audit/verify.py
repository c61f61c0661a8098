"""Verifying the audit trail: name the first edited, deleted, reordered or forged event of each chain.

Re-encoding every event in Python costs ≈ 40 µs, so a million events took half a minute. Here the
database renders each row's columns as the canonical JSON they must have been hashed from, around the
``gates`` value (``_rendered``), and Python only checks, per row, ``seq`` and the link to the
previous hash, ``sha256(payload) == hash`` and ``payload == rendered before + gates + rendered
after`` (``gates`` canonicalised from the column text, cached by that text). Every field of the
canonical document is in that comparison, so a column edited under an intact payload, or a payload
edited under intact columns, fails it.

A row that fails any cheap check is read again in full and judged by ``check_event``, the original
field-by-field comparison, which writes the message; it also has the last word, so a row the cheap
path merely could not render (a column of an unexpected SQLite type, a time written another way)
is not reported unless ``check_event`` finds it bad. The cheap path only ever accepts a row ``check_event``
would accept: the SQL renders strings, integers and times exactly as ``canonical`` does (the same
JSON escapes; tests compare them) and gives NULL, so no match, for anything else.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from typing import Any, cast

from sqlalchemy import Connection, Engine, func, literal_column, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from engine.audit.chain import AUDIT, GENESIS, chunked
from engine.audit.check import VerifyReport, check_event

PARALLEL_FROM = 50_000  # events (by id range) below which one connection is quicker than threads
GATES_CACHE = 4096  # distinct gates texts remembered; cleared when full, so memory stays flat

# Keys of the canonical document in sorted order, with the column each comes from and its kind.
_BEFORE_GATES = [("actor", "actor", "str"), ("at", "at", "time"), ("chain", "chain", "str"),
                 ("from", "from_state", "str")]
_AFTER_GATES = [("plan_id", "plan_id", "int"), ("prev_hash", "prev_hash", "str"),
                ("reason", "reason", "str"), ("role", "role", "str"), ("run_id", "run_id", "int"),
                ("school_code", "school_code", "str"), ("seq", "seq", "int"), ("to", "to_state", "str"),
                ("trigger", "trigger", "str"), ("v", "1", "lit"), ("workflow_version", "workflow_version", "str")]

_TIME_GLOB = ("'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] "
              "[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]'")
_SQLITE = {
    # TEXT affinity keeps the string columns TEXT or NULL (a BLOB makes json_quote fail: then the
    # whole check runs the slow way), and json_quote escapes exactly as json.dumps(ensure_ascii=False).
    "str": ("json_quote({c})", None),
    # an INTEGER column can still hold text or a REAL, which SQLAlchemy would read as such
    "int": ("ifnull({c}, 'null')", "typeof({c}) IN ('integer', 'null')"),
    # only SQLAlchemy's own spelling, which datetime.fromisoformat reads back as exactly these digits
    "time": ("substr({c}, 1, 10) || 'T' || substr({c}, 12) || 'Z'", f"typeof({{c}}) = 'text' AND {{c}} GLOB {_TIME_GLOB}"),
}
_POSTGRESQL = {
    "str": ("coalesce(to_json({c})::text, 'null')", None),
    "int": ("coalesce({c}::text, 'null')", None),
    # Python's datetime holds years 1–9999 only
    "time": ("to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US') || 'Z'",
             "{c} >= '0001-01-01 00:00:00+00' AND {c} < '10000-01-01 00:00:00+00'"),
}


def _rendered(dialect: str, parts: list[tuple[str, str, str]], opening: str, closing: str) -> str:
    """SQL for the canonical JSON text of ``parts`` as bytes, e.g. ``{"actor":"…",…,"gates":``.

    NULL when a value is of a type the rendering cannot vouch for: then the row is not accepted
    on the cheap path. SQLite builds the text with one printf (a chain of || copies it ≈ 30 times).
    """
    sql = _SQLITE if dialect == "sqlite" else _POSTGRESQL
    template, values, guards = "", [], []
    for i, (key, column, kind) in enumerate(parts):
        template += f"{opening if i == 0 else ','}\"{key}\":"
        if kind == "lit":
            template += column
            continue
        render, guard = sql[kind]
        template += '"%s"' if kind == "time" else "%s"
        values.append(render.format(c=column))
        if guard:
            guards.append(guard.format(c=column))
    template += closing
    if dialect == "sqlite":
        text = f"printf('{template}', {', '.join(values)})"
    else:  # || yields NULL for a NULL piece; format() would write it as ''
        pieces = template.split("%s")
        text = " || ".join(f"'{piece}'" + (f" || {value}" if n < len(values) else "")
                           for n, (piece, value) in enumerate(zip(pieces, [*values, ""], strict=True)))
    if guards:
        text = f"CASE WHEN {' AND '.join(guards)} THEN {text} END"
    return f"CAST({text} AS BLOB)" if dialect == "sqlite" else f"convert_to({text}, 'UTF8')"


def _columns(dialect: str, render: bool) -> list[Any]:
    """What the cheap path reads; without ``render`` every row goes to ``check_event``."""
    gates = "CASE WHEN typeof(gates) = 'text' THEN gates END" if dialect == "sqlite" else "gates::text"
    before = _rendered(dialect, _BEFORE_GATES, "{", ",\"gates\":") if render else "NULL"
    after = _rendered(dialect, _AFTER_GATES, ",", "}") if render else "NULL"
    return [
        AUDIT.c.id, AUDIT.c.chain, AUDIT.c.seq, AUDIT.c.prev_hash, AUDIT.c.hash, AUDIT.c.payload,
        literal_column(before), literal_column(after), literal_column(gates),  # read by position
    ]


# The errors below are never shown: _Gates catches them and hands the row to check_event, which
# words the refusal. A bare ValueError says all they need to.
def _refuse_constant(name: str) -> Any:
    raise ValueError  # NaN, Infinity: cannot be recorded in the audit trail


def _number(text: str) -> int | float:
    """What ``normalise`` makes of a JSON float: integral → int, non-finite refused."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError  # cannot be recorded in the audit trail
    return int(value) if value.is_integer() else value


# the C scanner json.loads drives (set in JSONDecoder.__init__; typeshed does not declare it)
_scan: Callable[[str, int], tuple[Any, int]] = cast(
    Any, json.JSONDecoder(parse_float=_number, parse_constant=_refuse_constant)).scan_once


def _decode(text: str) -> Any:
    """json.loads without its wrapper (no surrounding whitespace, which SQLAlchemy never writes)."""
    value, end = _scan(text, 0)
    if end != len(text):
        raise ValueError  # extra data after the JSON value
    return value


def _encoder() -> Callable[[Any], str]:
    """canonical()'s json.dumps settings, the C encoder built once instead of on every call."""
    plain = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return plain.encode
    chunks = make(None, plain.default, json.encoder.encode_basestring, None, ":", ",", True, False, False)
    return lambda value: "".join(chunks(value, 0))


_encode = _encoder()


class _Gates:
    """canonical(normalise(list(gates or []))) for a column text, as ``_document`` builds it."""

    def __init__(self) -> None:
        self.cache: dict[str, bytes | None] = {}

    def __call__(self, text: str | None) -> bytes | None:
        if text is None:
            return None
        found = self.cache.get(text, b"")
        if found != b"":
            return found
        try:
            value: bytes | None = _encode(list(_decode(text) or [])).encode()
        except (ValueError, TypeError, RecursionError, StopIteration):
            value = None  # not JSON, or not something _document accepts: let check_event say so
        if len(self.cache) >= GATES_CACHE:
            self.cache.clear()
        self.cache[text] = value
        return value


def _verify_rows(conn: Connection, rows: Iterable[Any], report: VerifyReport) -> None:
    sha256 = hashlib.sha256
    gates = _Gates()
    full = select(*AUDIT.c)
    chain: str | None = None
    expected, prev_hash, broken = 1, GENESIS, False
    for event_id, row_chain, seq, prev, digest, payload, before, after, gates_text in rows:
        if row_chain != chain:
            chain, expected, prev_hash, broken = row_chain, 1, GENESIS, False
            report.chains += 1
        report.events += 1
        if broken:
            continue
        if (
            seq == expected and prev == prev_hash and type(payload) is bytes
            and before is not None and after is not None
            and sha256(payload).hexdigest() == digest
        ):
            canonical_gates = gates(gates_text)
            if canonical_gates is not None and payload == before + canonical_gates + after:
                expected, prev_hash = seq + 1, digest
                continue
        row = conn.execute(full.where(AUDIT.c.id == event_id)).one()
        problem = check_event(row, expected, prev_hash)
        if problem is not None:
            report.problems.append(problem)
            broken = True
            continue
        expected, prev_hash = row.seq + 1, row.hash


def _verify_on(conn: Connection, chains: Iterable[str] | None, batch: int,
               span: tuple[str | None, str | None] = (None, None)) -> VerifyReport:
    chains = None if chains is None else sorted(set(chains))
    if conn.dialect.name != "sqlite":
        return _verify_span(conn, chains, batch, span, render=True)
    try:
        return _verify_span(conn, chains, batch, span, render=True)
    except DBAPIError:
        # json_quote refuses a BLOB someone wrote into a text column: check every row in full
        # instead, as before (a failed SELECT leaves an SQLite transaction usable).
        return _verify_span(conn, chains, batch, span, render=False)


def _verify_span(conn: Connection, chains: list[str] | None, batch: int,
                 span: tuple[str | None, str | None], render: bool) -> VerifyReport:
    report = VerifyReport()
    base = select(*_columns(conn.dialect.name, render)).order_by(AUDIT.c.chain, AUDIT.c.seq)
    if span[0] is not None:
        base = base.where(AUDIT.c.chain >= span[0])
    if span[1] is not None:
        base = base.where(AUDIT.c.chain < span[1])
    # yield_per streams (a server-side cursor on PostgreSQL): memory stays flat at 1,000,000 events.
    streaming = conn.execution_options(yield_per=batch)
    statements = (
        [base] if chains is None else [base.where(AUDIT.c.chain.in_(c)) for c in chunked(chains)]
    )
    for statement in statements:
        _verify_rows(conn, streaming.execute(statement), report)
    report.ok = not report.problems
    return report


def _spans(engine: Engine, workers: int) -> list[tuple[str | None, str | None]]:
    """Split the chains into ``workers`` runs of about equal events; a chain is never split."""
    if workers < 2 or (engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:")):
        return [(None, None)]  # an in-memory SQLite database is private to one connection
    with engine.connect() as conn:
        low, high = conn.execute(select(func.min(AUDIT.c.id), func.max(AUDIT.c.id))).one()
        if low is None or high - low < PARALLEL_FROM:
            return [(None, None)]
        at_offset = select(AUDIT.c.chain).order_by(AUDIT.c.chain, AUDIT.c.seq).limit(1)
        bounds = [conn.execute(at_offset.offset((high - low) * k // workers)).scalar() for k in range(1, workers)]
    cuts = sorted({b for b in bounds if b is not None})
    edges: list[str | None] = [None, *cuts, None]
    return list(pairwise(edges))


def _merged(reports: list[VerifyReport]) -> VerifyReport:
    merged = VerifyReport()
    for part in reports:  # spans are in chain order, so problems stay in chain order
        merged.chains += part.chains
        merged.events += part.events
        merged.problems.extend(part.problems)
    merged.ok = not merged.problems
    return merged


def verify_chains(
    bind: Engine | Session, *, chains: Iterable[str] | None = None, batch: int = 2000,
    workers: int | None = None,
) -> VerifyReport:
    """Check every chain (or the named ones) and name the first bad event of each.

    Checking the whole trail through an Engine splits the chains between ``workers`` threads (one
    per CPU, at most 4), each with its own connection: the database's share of the work (reading
    and rendering rows, the PostgreSQL server) then runs in parallel. Each chain is read whole by one
    thread in one snapshot, which is all a chain's check needs. Through a Session (the caller's
    transaction) or for named chains, one connection does it all.
    """
    if isinstance(bind, Session):
        return _verify_on(bind.connection(), chains, batch)
    spans = [(None, None)] if chains is not None else _spans(bind, workers or min(4, os.cpu_count() or 1))
    if len(spans) == 1:
        with bind.connect() as conn:
            return _verify_on(conn, chains, batch)

    def run(span: tuple[str | None, str | None]) -> VerifyReport:
        with bind.connect() as conn:
            return _verify_on(conn, None, batch, span)

    with ThreadPoolExecutor(len(spans)) as pool:
        return _merged(list(pool.map(run, spans)))
