"""The words an official reads for the ids the engine stores: stage, transition and role titles.

Stages, transitions and roles take their titles from the workflow file (a transition without one
gets its kind's default from the loader). The audit trail also holds events that are not
transitions (a plan loaded, a run started, a fact recorded, an extension requested or refused):
those read from the built-in words below. An id nobody titled shows as itself, so nothing is
ever hidden. Pages and `rollout school show` show these words; the JSON API keeps the ids and
adds the titles beside them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from engine.audit.query import EventRow, cells
from engine.errors import NotFound
from engine.extension import LAPSE, REFUSE, REQUEST
from engine.i18n import tr
from engine.imports.contractors import ASSIGN
from engine.plan_edit import BATCH_MOVE, PLAN_EDIT, WITHDRAW
from engine.run_deadline import DEADLINE_OVERRIDE
from engine.version_rules import MIGRATE, MIGRATE_PLAN
from engine.workflow.model import PREVIOUS, Text, Transition, Workflow
from engine.workflow.versions import find_workflow, workflow_for_version

# Web users' roles (engine.accounts.ROLES), for pages that have no workflow at hand (the header).
ROLE_TITLES = {
    "province_office": Text("省项目办", "Province project office"),
    "city_office": Text("市级项目办", "City project office"),
    "county_office": Text("县级项目办", "County project office"),
    "school_admin": Text("学校管理员", "School admin"),
    "supervisor": Text("督导人员", "Supervisor"),
    "contractor": Text("承训单位", "Contractor"),
}
EVENT_TITLES = {
    "plan_load": Text("加载实施方案", "Plan loaded"),
    "start": Text("开始实施", "Started"),
    REQUEST: Text("申请延期", "Extension requested"),
    REFUSE: Text("驳回延期申请", "Extension refused"),
    LAPSE: Text("延期申请失效", "Extension request lapsed"),
    ASSIGN: Text("分配承训单位", "Contractor assigned"),
    MIGRATE: Text("更换流程版本", "Moved to a new workflow version"),
    PLAN_EDIT: Text("修改实施方案", "Plan edited"),
    WITHDRAW: Text("退出计划", "Withdrawn from the plan"),
    BATCH_MOVE: Text("调整批次", "Moved to another batch"),
    DEADLINE_OVERRIDE: Text("单独设定截止日期", "Deadline set for this school"),
    MIGRATE_PLAN: Text("实施方案更换流程版本", "Plan's schools moved to a new workflow version"),
}
FACT_PREFIX = "fact:"


def role_title(role: str | None, wf: Workflow | None = None) -> str:
    if not role:
        return ""
    if role == "system":  # engine.runs.SYSTEM: the sweep's auto advances
        return tr("系统", "system")
    title = (wf.roles.get(role) if wf else None) or ROLE_TITLES.get(role)
    return str(title) if title else role


def stage_title(wf: Workflow | None, stage: str | None) -> str:
    if not stage:
        return ""
    return str(wf.stage(stage).title) if wf and wf.has_stage(stage) else stage


def fact_title(wf: Workflow | None, name: str) -> str:
    """A school fact's words: the title of the first metric that tests it."""
    metric = next((m for m in wf.metrics.values() if m.kind == "fact" and m.fact == name), None) if wf else None
    return str(metric.title) if metric else name


def transition(wf: Workflow | None, trigger: str, state: str | None) -> Transition | None:
    """The transition ``trigger`` fired from ``state``, else the first one with that trigger."""
    if wf is None:
        return None
    found = wf.transition_for(trigger, state) if state else None
    return found or next((t for t in wf.transitions if t.trigger == trigger), None)


def trigger_title(wf: Workflow | None, trigger: str, state: str | None = None) -> str:
    """What ``trigger`` (fired from ``state``) is called: the transition's title, or an event's."""
    if trigger.startswith(FACT_PREFIX):
        what = fact_title(wf, trigger[len(FACT_PREFIX):])
        return tr(f"记录事实：{what}", f"fact recorded: {what}")
    if trigger in EVENT_TITLES:
        return str(EVENT_TITLES[trigger])
    found = transition(wf, trigger, state)
    return str(found.title) if found else trigger


def action_label(wf: Workflow, trigger: str, state: str) -> dict[str, Any]:
    """One button on the school page: the trigger (the form's address), its words and what it asks."""
    t = transition(wf, trigger, state)
    if t is None:
        return {"trigger": trigger, "title": trigger, "kind": "", "to": None, "to_title": "", "reason_required": False}
    to = None if t.dest in (None, PREVIOUS, state) else t.dest
    return {"trigger": trigger, "title": str(t.title), "kind": t.kind, "to": to, "to_title": stage_title(wf, to),
            "reason_required": t.reason_required}


def event_label(wf: Workflow | None, row: dict[str, Any]) -> dict[str, Any]:
    """An audit event as a dict with the titles of its trigger, stages and role added."""
    return row | {"trigger_title": trigger_title(wf, row["trigger"], row.get("from_state")),
                  "from_title": stage_title(wf, row.get("from_state")),
                  "to_title": stage_title(wf, row.get("to_state")),
                  "role_title": role_title(row.get("role"), wf)}


def audit_triggers(wf: Workflow) -> list[str]:
    """Every trigger the audit trail of a plan on ``wf`` can hold: transitions, built-in events, facts."""
    ids = [*wf.triggers(), *EVENT_TITLES]
    ids += [f"{FACT_PREFIX}{f}" for f in dict.fromkeys(m.fact for m in wf.metrics.values() if m.fact)]
    return ids


def event_cells(session: Session, rows: list[EventRow]) -> list[list[Any]]:
    """The audit table's cells (``engine.audit.cells``) with the role, action and stages in words, as
    docs/workflow-files.md promises: ``audit list`` and the Chinese-header export showed
    ``county_office``, ``fact:plan_filed``, ``planning`` (issue 17, 18). Each event reads the
    titles of the workflow version it was recorded under; JSON output keeps the ids."""
    found: dict[str, Workflow | None] = {}

    def workflow(key: str | None) -> Workflow | None:
        if not key:
            return None
        if key not in found:
            wf_id, _, version = key.rpartition("@")
            try:
                found[key] = workflow_for_version(session, find_workflow(session, wf_id or key, version or None).id)
            except NotFound:
                found[key] = None  # a version no longer stored: its ids show as themselves
        return found[key]

    out = []
    for row in rows:
        wf = workflow(row.workflow_version)
        c = cells(row)
        c[6], c[7] = role_title(row.role, wf), trigger_title(wf, row.trigger, row.from_state)
        c[8], c[9] = stage_title(wf, row.from_state), stage_title(wf, row.to_state)
        out.append(c)
    return out
