"""``rollout plan edit`` and ``rollout school deadline`` through the real command line."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from cli.main import main
from engine.clock import FixedClock
from engine.db import make_engine, sessions, transaction
from tests.engine.builders import EARLY, OTHER, plan_data, seed, write_plan


def run(db_url: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", db_url, "--now", "2021-07-01T09:00", *args])


def test_edit_shows_the_diff_then_applies_with_a_reason(db_url: str, clock: FixedClock, tmp_path: Path) -> None:
    engine = make_engine(db_url)
    with transaction(sessions(engine)) as s:
        seed(s, clock)
    engine.dispose()
    assert run(db_url, "plan", "load", str(write_plan(tmp_path, plan_data()))).exit_code == 0
    again = run(db_url, "plan", "load", str(write_plan(tmp_path, plan_data())))
    assert again.exit_code == 1 and "rollout plan edit" in again.stderr
    data = plan_data(final_deadline="2022-11-20")
    data["batches"][1]["schools"] = {"codes": [EARLY[0], OTHER]}
    edited = write_plan(tmp_path, data, "edited.yaml")
    shown = run(db_url, "--lang", "en", "plan", "edit", str(edited))
    assert shown.exit_code == 0, shown.output
    assert "nothing changed" in shown.output and EARLY[1] in shown.output and "2022-11-20" in shown.output
    as_json = json.loads(run(db_url, "plan", "edit", str(edited), "--json").output)
    assert {c["kind"] for c in as_json["changes"]} == {"final_deadline", "school_removed"} and not as_json["applied"]
    no_reason = run(db_url, "plan", "edit", str(edited), "--apply", "--role", "province_office")
    assert no_reason.exit_code == 1 and "理由" in no_reason.stderr
    applied = run(db_url, "plan", "edit", str(edited), "--apply", "--reason", "学校撤并", "--role", "province_office")
    assert applied.exit_code == 0 and "已修改计划 yiyuan-2021（2 项）" in applied.output
    assert "没有修改" in run(db_url, "plan", "edit", str(edited)).output
    deadline = run(db_url, "school", "deadline", EARLY[0], "--stage", "planning", "--due", "2021-08-20",
                   "--reason", "补报材料")
    assert deadline.exit_code == 0, deadline.output
    show = json.loads(run(db_url, "school", "show", EARLY[0], "--json").output)
    assert show["due"]["date"] == "2021-08-20" and show["due"]["source"] == "override"
    assert run(db_url, "audit", "verify").exit_code == 0
