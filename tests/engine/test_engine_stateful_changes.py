"""Random sequences of transitions, facts, teacher-data changes, version moves and plan edits
(issue 15) keep the engine's invariants: the run's state is its chain's last to_state, the state is
what the trail says, stored status is live status, chains verify, and no advance went past a
failing gate. Separate from test_engine_stateful.py, whose independent model of the rules knows
one workflow version and one plan; here the invariants are the oracle."""

from __future__ import annotations

import shutil
import tempfile
from datetime import date, timedelta
from pathlib import Path

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import select, update

from engine.audit import run_chain, verify_chains
from engine.clock import FixedClock
from engine.db import make_engine, sessions, transaction
from engine.errors import RolloutError
from engine.facts import set_fact
from engine.models import AuditEvent, Plan, SchoolRun, Teacher
from engine.run_status import refresh
from engine.runs import SYSTEM, Actor, advance_all_ready, fire
from engine.status import RunView, run_views, stored_views
from tests.engine.builders import EARLY, PILOT, add_teachers, seed_with_plan
from tests.engine.stateful_changes import ChangeRules

SCHOOLS = (PILOT, *EARLY)
TRIGGERS = ("advance", "return_for_rework", "suspend", "resume", "extend", "override", "graduate")
ROLES = ("county_office", "city_office", "province_office", "school_admin", "supervisor", SYSTEM)
FACTS = ("pilot_summary_filed", "plan_filed", "team_members", "assessment_entered", "county_spot_check_done",
         "supervision_result")
HOURS = ("online_hours", "practice_hours", "points_count", "evidence_count")


def _machine(template: Path, clock: FixedClock) -> type[RuleBasedStateMachine]:
    class Engine(ChangeRules, RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.dir = Path(tempfile.mkdtemp())
            shutil.copy(template, self.dir / "rollout.db")
            self.engine = make_engine(f"sqlite:///{self.dir / 'rollout.db'}")
            self.factory = sessions(self.engine)
            self.clock = FixedClock(clock.now())
            with transaction(self.factory) as s:
                seed_with_plan(s, self.clock, self.dir)
                for code in SCHOOLS:
                    add_teachers(s, code, 2, online=20, practice=20, points=2, evidence=1)
                self.setup_changes(s)

        def teardown(self) -> None:
            self.engine.dispose()
            shutil.rmtree(self.dir, ignore_errors=True)

        @rule(school=st.sampled_from(SCHOOLS), trigger=st.sampled_from(TRIGGERS), role=st.sampled_from(ROLES),
              reason=st.sampled_from([None, "", "县级决定"]), due_days=st.integers(-10, 600))
        def fire_trigger(self, school: str, trigger: str, role: str, reason: str | None, due_days: int) -> None:
            due = date(2021, 7, 1) + timedelta(days=due_days)
            try:
                with transaction(self.factory) as s:
                    fire(s, self.clock, school_code=school, trigger=trigger, actor=Actor("测试", role),
                         reason=reason, due=due)
            except RolloutError:
                pass  # refusals are fine; the invariants check nothing half-happened

        @rule(school=st.sampled_from(SCHOOLS), name=st.sampled_from(FACTS), value=st.sampled_from([0.0, 1.0, 3.0]))
        def record_fact(self, school: str, name: str, value: float) -> None:
            value = value if name == "team_members" else min(value, 1.0)  # yes/no facts take 0–1 (their range)
            try:
                with transaction(self.factory) as s:
                    set_fact(s, self.clock, school_code=school, name=name, value=value, actor=Actor("测试", "county_office"))
            except RolloutError:
                pass  # a later stage's fact is refused whole (issue 14 bug 4); the invariants check the rest

        @rule(school=st.sampled_from(SCHOOLS), column=st.sampled_from(HOURS), value=st.sampled_from([0, 3, 24.9, 25, 30]))
        def change_teacher_data(self, school: str, column: str, value: float) -> None:
            if column in ("points_count", "evidence_count"):
                value = int(min(value, 3))
            with transaction(self.factory) as s:
                s.execute(update(Teacher).where(Teacher.school_code == school).values({column: value}))
                refresh(s, SchoolRun.school_code == school)  # what a progress import does after its merge

        @rule(role=st.sampled_from(("county_office", SYSTEM)))
        def bulk_advance(self, role: str) -> None:
            with transaction(self.factory) as s:
                advance_all_ready(s, self.clock, actor=Actor("批量", role))

        @rule(days=st.integers(0, 40))
        def time_passes(self, days: int) -> None:
            self.clock.advance(timedelta(days=days))

        @invariant()
        def state_matches_last_event(self) -> None:
            with transaction(self.factory) as s:
                for run in s.scalars(select(SchoolRun)):
                    last = s.scalars(select(AuditEvent).where(AuditEvent.chain == run_chain(run.id))
                                     .order_by(AuditEvent.seq.desc()).limit(1)).one()
                    assert last.to_state == run.state, (run.school_code, last.trigger)

        @invariant()
        def stored_status_matches_live(self) -> None:
            """What lists and counts read (stored) is what judging afresh says (live)."""
            with transaction(self.factory) as s:
                plan = s.scalars(select(Plan)).one()
                live = {v.run_id: _summary(v) for v in run_views(s, self.clock, plan)}
                stored = {v.run_id: _summary(v) for v in stored_views(s, self.clock, plan)}
                assert stored == live

        @invariant()
        def chains_verify(self) -> None:
            assert verify_chains(self.engine).ok

        @invariant()
        def no_advance_past_a_failing_gate(self) -> None:
            with transaction(self.factory) as s:
                for e in s.scalars(select(AuditEvent).where(AuditEvent.trigger == "advance")):
                    assert all(g["passed"] for g in e.gates), e.gates

    return Engine


def _summary(v: RunView) -> tuple[object, ...]:
    return (v.state, v.started, v.due, v.days_overdue, v.blocked, sorted(g.gate for g in v.gates if not g.passed))


def test_engine_invariants_hold_through_changes_during_the_year(sqlite_template: Path, clock: FixedClock) -> None:
    # derandomised like the oracle test's CI profile: the same sequences every run, no shrinking
    machine = _machine(sqlite_template, clock)
    run_state_machine_as_test(machine, settings=settings(
        max_examples=20, stateful_step_count=20, deadline=None, derandomize=True, database=None,
        phases=[Phase.explicit, Phase.reuse, Phase.generate], suppress_health_check=[HealthCheck.too_slow]))
