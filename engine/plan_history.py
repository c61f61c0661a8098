"""A plan's change history (issue 15): which audit events are changes, who sees which, and the
one-line summary an official reads for each.

The changes are the events the mid-year tools write: a plan edit (``plan_edit``, with the diff),
a plan's schools moved to a new workflow version (``migrate_plan``, and ``migrate`` per school),
a school withdrawn (``withdraw``) or moved to another batch (``batch_move``), and an office's
per-school deadline (``deadline_override``). Scope is the audit page's (``audit_filter``): a
school's events only to those who may see the school; a plan-level event (no school) only to an
office or supervisor whose region contains the plan's region, since its diff names schools all
over the plan (a county officer sees the per-school events of their own schools instead).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from engine.access import audit_filter, is_school_user, region_subtree
from engine.i18n import tr
from engine.models import Plan, User
from engine.plan_edit import BATCH_MOVE, PLAN_EDIT, WITHDRAW
from engine.run_deadline import DEADLINE_OVERRIDE
from engine.version_rules import MIGRATE, MIGRATE_PLAN

CHANGE_TRIGGERS = (PLAN_EDIT, MIGRATE_PLAN, MIGRATE, WITHDRAW, BATCH_MOVE, DEADLINE_OVERRIDE)
CHANGE_WORDS = {
    "title": ("计划名称", "title"), "final_deadline": ("最终截止日期", "final deadline"),
    "extension_cap": ("延期上限", "extension cap"), "batch_added": ("新增批次", "batch added"),
    "batch_start": ("批次开始日期", "batch start"), "batch_deadlines": ("批次阶段截止日期", "batch deadlines"),
    "school_added": ("加入学校", "school added"), "school_removed": ("学校退出（保留记录）", "school withdrawn (history kept)"),
    "school_moved": ("学校调整批次", "school moved to another batch"),
}


def sees_plan_events(session: Session, user: User, plan: Plan) -> bool:
    """Whether the user's region contains the plan's (a plan without a region: province offices)."""
    if is_school_user(user):
        return False
    if plan.region_code is None:
        return user.role == "province_office"
    return plan.region_code in region_subtree(session, user.scope_code)


def change_filter(session: Session, user: User, plan: Plan) -> dict[str, Any]:
    """Keyword arguments for ``engine.audit.list_events`` / ``count_events``: the plan's change
    events the user may see."""
    return audit_filter(user) | {"plan_id": plan.id, "triggers": CHANGE_TRIGGERS,
                                 "plan_events": sees_plan_events(session, user, plan)}


def change_value(v: Any) -> str:
    """A plan change's before/after value in words (the CLI's diff and the web's history alike)."""
    if v is None:
        return "—"
    if isinstance(v, dict):
        return ", ".join(f"{k} {d}" for k, d in sorted(v.items())) or "—"
    return str(v)


def change_lines(changes: list[dict[str, Any]]) -> list[str]:
    """A plan edit's diff (``PlanChange.as_dict`` rows), one line each: "最终截止日期 plan：2022-06-30 → 2022-07-15"."""
    out = []
    for c in changes:
        zh, en = CHANGE_WORDS.get(c.get("kind", ""), (c.get("kind", ""), c.get("kind", "")))
        out.append(f"{tr(zh, en)} {c.get('subject', '')}: {change_value(c.get('before'))} → {change_value(c.get('after'))}")
    return out


def change_summary(trigger: str, gates: Any, stage_words: dict[str, str] | None = None) -> list[str]:
    """What the change event did, in words (its reason is shown beside it); ``stage_words`` maps
    stage ids to titles."""
    items = gates if isinstance(gates, list) else []
    first = items[0] if items and isinstance(items[0], dict) else {}
    words = stage_words or {}
    if trigger == PLAN_EDIT:
        return change_lines(first.get("changes") or [])
    if trigger == DEADLINE_OVERRIDE and first:
        stage = words.get(first.get("stage", ""), first.get("stage", ""))
        return [tr(f"{stage} 截止日期改为 {first.get('due')}", f"{stage} due on {first.get('due')}")]
    if trigger == BATCH_MOVE and first:
        return [tr(f"批次 {first.get('from_batch')} → {first.get('to_batch')}",
                   f"batch {first.get('from_batch')} → {first.get('to_batch')}")]
    if trigger == MIGRATE_PLAN and first:
        olds = "、".join(first.get("from") or [])
        return [tr(f"{olds} → {first.get('to')}，{first.get('schools')} 所学校",
                   f"{olds} → {first.get('to')}, {first.get('schools')} schools")]
    if trigger == MIGRATE and isinstance(first.get("migration"), dict):
        m = first["migration"]
        return [tr(f"流程版本 {m.get('from')} → {m.get('to')}", f"workflow version {m.get('from')} → {m.get('to')}")]
    return []
