"""The append-only, hash-chained audit trail: appending, verifying, reading, and signed checkpoints.

One chain per school run and per plan (``run_chain``, ``plan_chain``); ``verify_chains`` names the
first edited, deleted, reordered or forged event of each; ``list_events`` and the exports are what
supervisors read; a checkpoint (``make_checkpoint``) reveals cut tails and rewritten chains.
"""

from engine.audit.chain import (
    EventDraft,
    append_event,
    append_events,
    chain_heads,
    plan_chain,
    run_chain,
)
from engine.audit.check import ChainProblem, VerifyReport
from engine.audit.checkpoint import (
    CheckpointProblem,
    CheckpointReport,
    generate_key,
    make_checkpoint,
    read_checkpoint,
    verify_checkpoint,
    write_checkpoint,
)
from engine.audit.query import (
    LOCAL_TZ,
    EventRow,
    cells,
    count_events,
    export_csv,
    export_json,
    headers,
    list_events,
)
from engine.audit.verify import verify_chains

__all__ = [
    "EventDraft", "append_event", "append_events", "chain_heads", "plan_chain", "run_chain",
    "ChainProblem", "VerifyReport", "verify_chains",
    "CheckpointProblem", "CheckpointReport", "generate_key", "make_checkpoint", "read_checkpoint",
    "verify_checkpoint", "write_checkpoint",
    "LOCAL_TZ", "EventRow", "cells", "export_csv", "export_json", "headers", "count_events", "list_events",
]
