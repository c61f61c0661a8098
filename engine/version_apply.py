"""Carrying out a workflow version move: all or nothing, audited, safe against concurrent advances.

``engine.version_move.preview_move`` validates and judges every school; this module writes what it
found, in the caller's transaction:

* one ``UPDATE … WHERE id = ? AND version = ?`` per run (the optimistic lock of ``runs.fire``):
  if an officer advanced a school after it was judged, no row matches, and nothing moves
  (``StaleStateError``) — the office runs the move again and the school is judged afresh;
  an officer who acts after the move committed gets the same clean "reload and try again";
* per-school deadlines follow their stage through the mapping;
* one ``migrate`` event per run on its chain (old and new version, the mapping, the stage the run
  was suspended or returned from, every gate of the new stage judged), one ``migrate_plan`` event
  on the plan's chain with the reason and the per-county summary;
* the stored status of every moved run recomputed under the new version (``engine.run_status``);
* a whole-plan move also re-pins the plan, so schools added later and the sweep's reminder rules
  follow the new version (a region's move leaves the plan's own version as it was).

``engine.projection`` replays the ``migrate`` event, so ``audit verify`` keeps binding the tables to
the trail after a move.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import CursorResult, Table, bindparam, update
from sqlalchemy.orm import Session

from engine.audit.chain import EventDraft, append_event, append_events, plan_chain, run_chain
from engine.clock import Clock
from engine.errors import MoveRefused, StaleStateError
from engine.gate import GateResult, all_passed
from engine.i18n import tr
from engine.models import RunDeadline, SchoolRun
from engine.plan import find_plan
from engine.run_status import expire_runs, refresh_ids
from engine.runs import Actor
from engine.tally import retally, retally_where
from engine.text import MAX_REASON, clean_line, clean_text
from engine.version_move import preview_move
from engine.version_rules import MIGRATE, MIGRATE_PLAN, MovePreview, SchoolMove

# Moving schools onto other rules is the province's or a city's decision, never a county's alone
# (000 §(八): the province sets the programme's requirements; the county carries them out).
MOVE_ROLES = ("province_office", "city_office")
CHUNK = 5000


def migration_record(m: SchoolMove, mapping: Mapping[str, str]) -> dict[str, Any]:
    """What a ``migrate`` event records beside the gates: replayed by ``engine.projection``."""
    return {"migration": {"from": m.from_version, "to": m.to_version, "map": dict(mapping),
                          "previous": [m.from_previous, m.to_previous]}}


def _snapshot(g: GateResult) -> dict[str, Any]:
    """A gate as the move judged it; its titles are the recorded version's (kept short: one event per run)."""
    return {"gate": g.gate, "metric": g.metric, "op": g.op, "required": g.required, "actual": g.actual, "passed": g.passed}


def apply_move(session: Session, clock: Clock, *, plan_code: str | None, to: str, reason: str, actor: Actor,
               mapping: Mapping[str, str] | None = None, region: str | None = None,
               preview: MovePreview | None = None) -> MovePreview:
    """Move every open run of the plan (or region) to ``to``; returns the preview it carried out.

    ``preview`` (from an earlier ``preview_move``, e.g. the one the office read) is carried out as
    it stands: a school that changed since it was judged makes the whole move stale, nothing moves.
    """
    text = clean_text(reason, tr("理由", "reason"), MAX_REASON)
    if not text or not text.strip():
        raise MoveRefused([tr("更换流程版本必须填写理由（--reason）", "a version move needs a reason (--reason)")])
    actor = Actor(clean_line(actor.name, tr("操作人", "actor"), 100), actor.role)
    if actor.role not in MOVE_ROLES:
        raise MoveRefused([tr(f"角色 {actor.role} 无权更换流程版本（允许：{'、'.join(MOVE_ROLES)}）",
                              f"role {actor.role} may not move schools to another version (allowed: {', '.join(MOVE_ROLES)})")])
    mapping = dict(mapping or {})
    plan = find_plan(session, plan_code)
    fresh = preview is None
    if preview is None:
        preview = preview_move(session, clock, plan_code=plan_code, to=to, mapping=mapping, region=region)
    elif (preview.plan, preview.to_version, preview.mapping, preview.region) != (plan.code, to, mapping, region):
        raise MoveRefused([tr("预览与本次更换的计划、版本、对应关系或地区不一致", "the preview is of another plan, version, mapping or region")])
    if not preview.moves:
        return preview
    now = clock.now()
    table = cast(Table, SchoolRun.__table__)
    updates = [{"b_id": m.run_id, "b_version": m.lock, "workflow_version_id": preview.to_version_id,
                "state": m.to_stage, "previous_state": m.to_previous, "updated_at": now, "version": m.lock + 1,
                **(_stored_status(m) if fresh else {})}
               for m in preview.moves]
    stmt = update(table).where(table.c.id == bindparam("b_id"), table.c.version == bindparam("b_version"))
    changed = cast(CursorResult[Any], session.connection().execute(stmt, updates)).rowcount
    if changed != len(updates):
        raise StaleStateError(tr("有学校在更换流程版本期间被他人修改，本次未做任何更改，请重新预览后再试",
                                 "schools changed during the version move; nothing was changed: preview again and retry"))
    ids = [m.run_id for m in preview.moves]
    deadlines = cast(Table, RunDeadline.__table__)
    for old, new in mapping.items():
        if old != new:
            for i in range(0, len(ids), CHUNK):
                session.connection().execute(update(deadlines).where(
                    deadlines.c.run_id.in_(ids[i:i + CHUNK]), deadlines.c.stage == old).values(stage=new))
    if region is None:
        plan.workflow_version_id = preview.to_version_id
    append_event(session, chain=plan_chain(plan.id), at=now, actor=actor.name, role=actor.role, trigger=MIGRATE_PLAN,
                 plan_id=plan.id, reason=text,
                 gates=[{"to": preview.to_version, "from": sorted({m.from_version for m in preview.moves}),
                         "map": mapping, "region": region, "schools": len(preview.moves),
                         "summary": preview.summary()}],
                 workflow_version=preview.to_version)
    append_events(session, [
        EventDraft(chain=run_chain(m.run_id), at=now, actor=actor.name, role=actor.role, trigger=MIGRATE,
                   plan_id=plan.id, run_id=m.run_id, school_code=m.school_code, from_state=m.from_stage,
                   to_state=m.to_stage, reason=text,
                   gates=[migration_record(m, mapping), *(_snapshot(g) for g in m.gates_after)],
                   workflow_version=m.to_version)
        for m in preview.moves])
    expire_runs(session, set(ids))
    if not fresh:  # an earlier preview's values may be older than today's teacher records: judged afresh
        refresh_ids(session, ids)
    # Stages were renamed without refresh (when fresh), and a whole-plan move may change the rates.
    if region is None:
        retally(session, plan.id)
    else:
        for i in range(0, len(ids), CHUNK):
            retally_where(session, SchoolRun.id.in_(ids[i:i + CHUNK]))
    return preview


def _stored_status(m: SchoolMove) -> dict[str, Any]:
    """The run's stored status under the new version, as ``engine.run_status.refresh`` derives it: the
    preview judged the same gates and due date in this transaction, so the move writes them at once."""
    due = m.due_after
    return {"due_date": due.due if due else None, "due_source": due.source if due else None,
            "due_provisional": bool(due and due.provisional),
            "blocked": bool(m.gates_after) and not all_passed(m.gates_after),
            "failing": [g.as_dict() for g in m.gates_after if not g.passed] or None, "derived_ok": True}
