"""One shared machine per workflow version; gates decide advances; no shortcuts around them."""

from __future__ import annotations

import pytest

from engine.errors import TransitionRefused
from engine.workflow.machine import SchoolMachine, Token, machine_for
from tests.engine.builders import shipped_workflow

WF = shipped_workflow()


def test_machine_is_built_once_per_workflow() -> None:
    m = machine_for(WF)
    assert machine_for(WF) is m
    assert machine_for(shipped_workflow()) is m  # same id, version and content


def test_no_auto_transitions() -> None:
    m = machine_for(WF)
    assert not any(name.startswith("to_") for name in m.machine.events)
    token = Token("planning")
    with pytest.raises(TransitionRefused):
        m.fire(token, "to_done", gates_ok=True)
    assert token.state == "planning"
    assert not hasattr(token, "to_done")


def test_advance_needs_gates() -> None:
    m = machine_for(WF)
    token = Token("planning")
    assert m.fire(token, "advance", gates_ok=False) is False
    assert token.state == "planning"
    assert m.fire(token, "advance", gates_ok=True) is True
    assert token.state == "online_study"


def test_trigger_not_allowed_from_stage_is_refused() -> None:
    token = Token("done")
    with pytest.raises(TransitionRefused):
        machine_for(WF).fire(token, "advance", gates_ok=True)
    with pytest.raises(TransitionRefused):
        machine_for(WF).fire(Token("planning"), "no_such_trigger", gates_ok=True)


@pytest.mark.parametrize("stage", ["pilot", "planning", "online_study", "practice", "assessment", "supervision"])
def test_resume_returns_to_previous_state(stage: str) -> None:
    m = machine_for(WF)
    token = Token(stage)
    assert m.fire(token, "suspend", gates_ok=False)
    assert token.state == "suspended"
    token.previous_state = stage
    assert m.fire(token, "resume", gates_ok=False)
    assert token.state == stage


def test_return_and_override_ignore_gates() -> None:
    m = SchoolMachine(WF)
    token = Token("practice")
    assert m.fire(token, "return_for_rework", gates_ok=False) and token.state == "online_study"
    assert m.fire(token, "override", gates_ok=False) and token.state == "done"
