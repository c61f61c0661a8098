"""New versions of the shipped workflow, as an office would write them mid-year (issue 15)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.orm import Session

from engine.clock import Clock
from engine.models import WorkflowVersion
from engine.workflow.loader import load_workflow_text
from engine.workflow.versions import register_workflow
from tests.engine.builders import WORKFLOW_PATH

_BASE: dict[str, Any] = yaml.safe_load(WORKFLOW_PATH.read_text(encoding="utf-8"))


def register_variant(session: Session, clock: Clock, version: str, change: Callable[[dict[str, Any]], None]) -> WorkflowVersion:
    """The shipped workflow with ``change`` applied to its data, loaded as ``version``."""
    data = copy.deepcopy(_BASE)
    data["version"] = version
    change(data)
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    return register_workflow(session, load_workflow_text(text, f"whole-school-{version}.yaml"), text, clock)


def online_20h(data: dict[str, Any]) -> None:
    """The province lowers the online requirement from 25 to 20 hours (same metric and gate ids)."""
    data["metrics"]["online_25h_share"]["where"] = [{"field": "online_hours", "op": ">=", "value": 20}]


def split_online_study(data: dict[str, Any]) -> None:
    """online_study becomes two stages: choose_points (points chosen), then online_hours (25 hours)."""
    stages = data["stages"]
    i = next(k for k, s in enumerate(stages) if s["id"] == "online_study")
    old = stages[i]
    points = {**old, "id": "choose_points", "title": {"zh": "选定能力点", "en": "Choose points"},
              "gates": [g for g in old["gates"] if g["id"] == "points_chosen"],
              "due": {"after_stage_entry": "20 working days"}}
    hours = {**old, "id": "online_hours", "title": {"zh": "网络研修学时", "en": "Online hours"},
             "gates": [g for g in old["gates"] if g["id"] == "online_25h"]}
    stages[i:i + 1] = [points, hours]
    out = []
    for t in data["transitions"]:
        t = dict(t)
        if t.get("from") == "online_study" and t["kind"] == "advance":
            out.append({**t, "from": "choose_points", "to": "online_hours"})
            t["from"] = "online_hours"
        elif t.get("from") == "online_study":
            t["from"] = "choose_points"
        if t.get("to") == "online_study":
            t["to"] = "choose_points" if t["kind"] == "advance" else "online_hours"
        out.append(t)
    out.append({"trigger": "return_for_rework", "kind": "return", "title": {"zh": "退回整改", "en": "Return for rework"},
                "from": "online_hours", "to": "choose_points", "roles": ["county_office", "city_office"]})
    data["transitions"] = out


def team_of_two_and_early_reminders(data: dict[str, Any]) -> None:
    """Planning needs a team of 2 (not 3), and reminds 45 days ahead as well."""
    planning = next(s for s in data["stages"] if s["id"] == "planning")
    next(g for g in planning["gates"] if g["id"] == "team_formed")["value"] = 2
    planning["remind"] = {**planning["remind"], "before_days": [45, 14, 3]}


def studying_on_two_versions(session: Session, clock: Clock, tmp_path: Path) -> None:
    """The plan seeded, b2's schools in online study with three teachers each at 22 h (EARLY[1] at
    18 h); 淄川区 (OTHER) moved to version 2, where 20 hours are enough, the rest on version 1 (25 h)."""
    from engine.facts import set_fact
    from engine.runs import fire
    from engine.version_apply import apply_move
    from tests.engine.builders import (
        CITY_OFFICER,
        COUNTY_OFFICER,
        EARLY,
        OTHER,
        OTHER_COUNTY,
        add_teachers,
        seed_with_plan,
    )

    seed_with_plan(session, clock, tmp_path)
    for code, hours in zip((*EARLY, OTHER), (22, 18, 22), strict=True):
        add_teachers(session, code, 3, online=hours, practice=0, evidence=0)
        set_fact(session, clock, school_code=code, name="plan_filed", value=1, actor=COUNTY_OFFICER)
        set_fact(session, clock, school_code=code, name="team_members", value=4, actor=COUNTY_OFFICER)
        fire(session, clock, school_code=code, trigger="advance", actor=COUNTY_OFFICER)
    register_variant(session, clock, "2", online_20h)
    apply_move(session, clock, plan_code="yiyuan-2021", to="whole-school-2.0@2", region=OTHER_COUNTY,
               reason="淄川区先按20学时", actor=CITY_OFFICER)
