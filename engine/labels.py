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

from engine.extension import LAPSE, REFUSE, REQUEST
from engine.i18n import tr
from engine.imports.contractors import ASSIGN
from engine.workflow.model import PREVIOUS, Text, Transition, Workflow

# Web users' roles (engine.accounts.ROLES), for pages that have no workflow at hand (the header).
ROLE_TITLES = {
    "province_office": Text("省项目办", "Province project office"),
    "city_office": Text("市级项目办", "City project office"),
    "county_office": Text("县级项目办", "County project office"),
    "school_admin": Text("学校管理员", "School admin"),
    "supervisor": Text("督导人员", "Supervisor"),
}
EVENT_TITLES = {
    "plan_load": Text("加载实施方案", "Plan loaded"),
    "start": Text("开始实施", "Started"),
    REQUEST: Text("申请延期", "Extension requested"),
    REFUSE: Text("驳回延期申请", "Extension refused"),
    LAPSE: Text("延期申请失效", "Extension request lapsed"),
    ASSIGN: Text("分配承训单位", "Contractor assigned"),
}
FACT_PREFIX = "fact:"


def role_title(role: str | None, wf: Workflow | None = None) -> str:
    if not role:
        return ""
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
