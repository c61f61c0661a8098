"""A recorded fact does not move the school by itself; the next sweep's auto advance does
(docs/workflow-files.md "Who records a fact", issue 17, 9: the doc and the behaviour agree)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from cli.main import main
from engine.clock import FixedClock
from engine.db import make_engine, sessions, transaction
from tests.engine.builders import EARLY, add_teachers, plan_data, seed, write_plan

SCHOOL = EARLY[0]


def test_fact_waits_for_the_sweep(db_url: str, clock: FixedClock, tmp_path: Path) -> None:
    engine = make_engine(db_url)
    try:
        with transaction(sessions(engine)) as s:
            seed(s, clock)
            add_teachers(s, SCHOOL, 3)
    finally:
        engine.dispose()

    def rollout(*args: str) -> str:
        result = CliRunner().invoke(main, ["--db", db_url, "--now", "2021-12-15", *args])
        assert result.exit_code == 0, result.output
        return result.output

    rollout("plan", "load", str(write_plan(tmp_path, plan_data())))
    rollout("school", "fact", SCHOOL, "plan_filed", "1")
    rollout("school", "fact", SCHOOL, "team_members", "3")
    assert "当前阶段：制定规划（planning）" in rollout("school", "show", SCHOOL)
    rollout("sweep")
    shown = rollout("school", "show", SCHOOL)
    assert "当前阶段：制定规划（planning）" not in shown
    assert "system（系统） 推进到下一阶段 制定规划→网络研修" in shown  # the sweep's auto advance did it
