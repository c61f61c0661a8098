from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from cli.main import main
from engine.clock import FixedClock
from engine.db import make_engine, sessions, transaction
from tests.engine.builders import EARLY, seed_with_plan


def test_request_list_approve_through_the_cli(db_url: str, clock: FixedClock, tmp_path: Path) -> None:
    engine = make_engine(db_url)
    with transaction(sessions(engine)) as s:
        seed_with_plan(s, clock, tmp_path)
    engine.dispose()
    base = ["--db", db_url, "--now", "2021-07-02"]
    run = CliRunner().invoke
    asked = run(main, [*base, "extension", "request", EARLY[0], "--due", "2021-10-31", "--reason", "校舍改造",
                       "--role", "school_admin", "--actor", "刘老师"])
    assert asked.exit_code == 0, asked.output
    listed = run(main, [*base, "extension", "list", "--json"])
    assert '"2021-10-31"' in listed.output and EARLY[0] in listed.output
    refused = run(main, [*base, "extension", "approve", EARLY[0], "--reason", "同意", "--role", "school_admin"])
    assert refused.exit_code == 1 and "无权审批" in refused.output
    approved = run(main, [*base, "extension", "approve", EARLY[0], "--reason", "同意", "--actor", "王主任"])
    assert approved.exit_code == 0, approved.output
    assert run(main, [*base, "extension", "list", "--json"]).output.strip() == "[]"
