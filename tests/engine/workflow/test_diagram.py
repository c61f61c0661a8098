"""The Mermaid diagram shows the workflow's stages, transitions and gates."""

from __future__ import annotations

import re

from engine.i18n import set_language
from engine.workflow.diagram import mermaid
from engine.workflow.loader import load_workflow_file
from engine.workflow.versions import WORKFLOWS_DIR

WHOLE_SCHOOL = WORKFLOWS_DIR / "whole-school-2.0.yaml"


def test_mermaid_state_diagram_of_whole_school() -> None:
    wf = load_workflow_file(WHOLE_SCHOOL)
    text = mermaid(wf)
    assert "stateDiagram-v2" in text
    for stage in wf.stages:
        assert f'state "{stage.title.zh}" as {stage.id}' in text
    assert "planning --> online_study: 推进到下一阶段 [plan_filed & team_formed] (auto)" in text
    assert "pilot --> planning: 推进到下一阶段 [pilot_summary]\n" in text  # pilot's advance is manual
    assert "online_study --> planning: 退回整改" in text
    assert "suspended --> practice: 恢复" in text  # resume drawn back to every suspendable stage
    assert "practice --> practice: 延期 [internal]" in text
    assert "[*] --> planning" in text and "[*] --> pilot" in text
    assert "done --> [*]" in text
    assert "s_active" not in text.split("classDef s_active", 1)[1]  # no stage drawn as current


def test_every_edge_uses_declared_stages() -> None:
    wf = load_workflow_file(WHOLE_SCHOOL)
    edges = re.findall(r"^\s*(\w+) --> (\w+):", mermaid(wf), re.M)
    assert len(edges) >= 20
    for src, dst in edges:
        assert wf.has_stage(src) and wf.has_stage(dst)


def test_labels_follow_the_language() -> None:
    set_language("en")
    text = mermaid(load_workflow_file(WHOLE_SCHOOL))
    assert 'state "Online study" as online_study' in text
    assert "supervision --> done: Advance to the next stage [supervision_passed] (auto) | Override to done" in text
