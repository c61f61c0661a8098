"""Steps of the engine's state-machine test for changes during the year (issue 15): version moves and
plan edits. A mixin, so ``test_engine_stateful.py`` gains them with three lines and its invariants
(state = the chain's last event, stored = live status, chains verify) cover them too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import FixedClock
from engine.db import transaction
from engine.errors import RolloutError
from engine.models import Plan
from engine.plan_edit import edit_plan
from engine.projection import verify_state
from engine.version_apply import apply_move
from engine.workflow.versions import workflow_for_version
from tests.engine.builders import EARLY, OTHER, PROVINCE_OFFICER, plan_data, write_plan
from tests.engine.version_builders import online_20h, register_variant, split_online_study

# Each target with the mapping that lets every other version's stages reach it.
MAPS = {"1": {"choose_points": "online_study", "online_hours": "online_study"},
        "2": {"choose_points": "online_study", "online_hours": "online_study"},
        "3": {"online_study": "choose_points"}}


class ChangeRules:
    factory: sessionmaker[Session]
    clock: FixedClock
    dir: Path

    def setup_changes(self, session: Session) -> None:
        register_variant(session, self.clock, "2", online_20h)
        register_variant(session, self.clock, "3", split_online_study)

    @rule(version=st.sampled_from(sorted(MAPS)), region=st.sampled_from([None, "370302"]))
    def move_to_version(self, version: str, region: str | None) -> None:
        try:
            with transaction(self.factory) as s:
                apply_move(s, self.clock, plan_code=None, to=f"whole-school-2.0@{version}", mapping=MAPS[version],
                           region=region, reason="年中调整", actor=PROVINCE_OFFICER)
        except RolloutError:
            pass  # e.g. a map naming a stage no run's version has: refused whole, checked below

    @rule(drop=st.booleans(), final=st.sampled_from(["2022-11-30", "2022-11-20"]))
    def edit_the_plan(self, drop: bool, final: str) -> None:
        with transaction(self.factory) as s:
            plan = s.scalars(select(Plan)).one()
            pinned = workflow_for_version(s, plan.workflow_version_id).version
        data: dict[str, Any] = plan_data(workflow_version=pinned, final_deadline=final)
        if drop:
            data["batches"][1]["schools"] = {"codes": [EARLY[0], OTHER]}
        try:
            with transaction(self.factory) as s:
                edit_plan(s, write_plan(self.dir, data, "edited.yaml"), self.clock, reason="计划调整",
                          actor=PROVINCE_OFFICER, apply=True)
        except RolloutError:
            pass  # a withdrawn school listed again, a cap below a granted extension …

    @invariant()
    def state_is_its_trail(self) -> None:
        with transaction(self.factory) as s:
            report = verify_state(s)
        assert report.ok, [p.message for p in report.problems]
