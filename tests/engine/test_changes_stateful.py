"""The engine's state-machine test with changes during the year added (issue 15): version moves and plan
edits among the random transitions, facts, teacher data and time, and every invariant that does not
need the documented-rules model still holding (state = the chain's last event, stored = live status,
chains verify, no advance past a failing gate, and audit verify's state check).

The model of ``test_engine_stateful.py`` knows version 1 of the shipped workflow and a plan never
edited, so after a move its verdicts are not the engine's: here its check is off and a refusal is
fine (the invariants check that nothing half-happened).
"""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path

from hypothesis import strategies as st
from hypothesis.stateful import rule, run_state_machine_as_test

from engine.clock import FixedClock
from engine.db import transaction
from engine.errors import RolloutError
from engine.runs import Actor, fire
from tests.engine.stateful_changes import ChangeRules
from tests.engine.test_engine_stateful import PROFILES, ROLES, SCHOOLS, TRIGGERS, _machine


def test_changes_during_the_year_keep_the_invariants(sqlite_template: Path, clock: FixedClock) -> None:
    base = _machine(sqlite_template, clock)

    class WithChanges(ChangeRules, base):  # type: ignore[valid-type, misc]
        def __init__(self) -> None:
            super().__init__()
            with transaction(self.factory) as s:
                self.setup_changes(s)

        def engine_agrees_with_the_model(self) -> None:
            """Not an invariant here (see the module docstring)."""

        @rule(school=st.sampled_from(SCHOOLS), trigger=st.sampled_from(TRIGGERS), role=st.sampled_from(ROLES),
              reason=st.sampled_from([None, "", "县级决定"]), due_days=st.integers(-10, 600))
        def fire_trigger(self, school: str, trigger: str, role: str, reason: str | None, due_days: int) -> None:
            due = date(2021, 7, 1) + timedelta(days=due_days)
            try:
                with transaction(self.factory) as s:
                    fire(s, self.clock, school_code=school, trigger=trigger, actor=Actor("测试", role),
                         reason=reason, due=due)
            except RolloutError:
                pass

    profile = os.environ.get("ROLLOUT_STATEFUL_PROFILE", "ci")
    run_state_machine_as_test(WithChanges, settings=PROFILES[profile])
