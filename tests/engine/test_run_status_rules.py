"""``ensure_current`` (engine/run_status.py): a database upgraded from before the stored status has
every run underived; the first read of a plan derives that plan's runs and says how many."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import FixedClock
from engine.db import transaction
from engine.models import Plan, SchoolRun
from engine.plan import load_plan
from engine.reads import remember_reads
from engine.run_status import ensure_current
from tests.engine.builders import plan_data, write_plan


def _two_plans_never_derived(s: Session, clock: FixedClock, tmp_path: Path) -> dict[str, int]:
    """The fixture's plan and a second one over the same schools, every run ``derived_ok = false``
    (as after migration 0004); plan code → plan id."""
    load_plan(s, write_plan(tmp_path, plan_data(plan="other", batches=[
        {"id": "x", "start": "2021-06-01", "schools": {"rest": True}}]), "p2.yaml"), clock)
    s.execute(update(SchoolRun).values(derived_ok=False))
    return {code: plan_id for plan_id, code in s.execute(select(Plan.id, Plan.code))}


def _underived(s: Session, plan_id: int) -> int:
    return s.scalar(select(func.count()).select_from(SchoolRun)
                    .where(SchoolRun.plan_id == plan_id, SchoolRun.derived_ok.is_(False))) or 0


def test_each_plan_is_derived_on_its_own_first_read_and_counts_its_own_runs(
        plan: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    """Deriving is per plan: ``ensure_current(plan)`` derives that plan's runs and returns how many
    (``rollout init`` reports the sum). A read-only request (``remember_reads``) that reads two plans
    asks once per plan: having derived the first does not answer for the second."""
    with transaction(plan) as s:
        ids = _two_plans_never_derived(s, clock, tmp_path)
        runs = {code: _underived(s, plan_id) for code, plan_id in ids.items()}
        assert all(runs.values())
        remember_reads(s)
        assert ensure_current(s, ids["yiyuan-2021"]) == runs["yiyuan-2021"]
        assert ensure_current(s, ids["other"]) == runs["other"]
        assert {code: _underived(s, plan_id) for code, plan_id in ids.items()} == {code: 0 for code in ids}


def test_asking_again_in_the_same_read_derives_nothing_and_says_so(
        plan: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    """Once a read-only request has asked about a plan, its runs are derived and nothing the request
    does un-derives one: asking again derives no run, and the count it returns is 0."""
    with transaction(plan) as s:
        ids = _two_plans_never_derived(s, clock, tmp_path)
        remember_reads(s)
        assert ensure_current(s, ids["yiyuan-2021"]) > 0
        assert ensure_current(s, ids["yiyuan-2021"]) == 0
