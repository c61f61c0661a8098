"""``rollout facts import``, ``rollout extension import`` and ``extension approve --all`` end to end."""

from __future__ import annotations

import json
from datetime import datetime

from click.testing import CliRunner, Result
from sqlalchemy import func, select

from cli.main import main
from engine.clock import FixedClock
from engine.db import make_engine, sessions, transaction
from engine.models import AuditEvent, SchoolRun
from tests.conftest import SHANGHAI
from tests.engine.henan import GONGYI, SCHOOLS, henan, write_csv


def run(db_url: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", db_url, "--now", "2021-02-10T09:00", *args])


def test_bulk_entry_from_the_command_line(db_url: str, tmp_path) -> None:
    engine = make_engine(db_url)
    try:
        with transaction(sessions(engine)) as s:
            henan(s, FixedClock(datetime(2021, 2, 10, 9, tzinfo=SHANGHAI)), tmp_path)
    finally:
        engine.dispose()
    office = ["--role", "province_office", "--actor", "王玥"]
    facts = write_csv(tmp_path / "事实.csv", ["学校标识码", "事实项", "值"],
                      [[c, f, "1"] for c in SCHOOLS for f in ("contractor_assigned", "selection_rate")])
    got = run(db_url, "facts", "import", str(facts), *office)
    assert got.exit_code == 0, got.output
    assert "记录 20" in got.output
    assert "未变 20" in run(db_url, "facts", "import", str(facts), *office).output  # idempotent
    assert run(db_url, "sweep").exit_code == 0  # the gates the file opened: all in registration now

    bad = write_csv(tmp_path / "坏.csv", ["学校标识码", "事实项", "值"], [[SCHOOLS[0], "registration_rate", "2"]])
    refused = run(db_url, "facts", "import", str(bad), *office, "--json")
    assert refused.exit_code == 1
    body = json.loads(refused.output)
    assert body["accepted"] is False and [(p["row"], p["header"]) for p in body["problems"]] == [(2, "值")]

    ext = write_csv(tmp_path / "延期.csv", ["学校标识码", "操作", "新截止日期", "理由"],
                    [[c, "申请", "2021-09-30", "承训单位申请"] for c in SCHOOLS])
    got = run(db_url, "extension", "import", str(ext), *office, "--requester", "承训单位甲", "--requester-role", "contractor")
    assert got.exit_code == 0, got.output
    got = run(db_url, "extension", "approve", "--all", "--region", GONGYI, "--reason", "同意", *office)
    assert got.exit_code == 0 and "2 项" in got.output, got.output
    got = run(db_url, "extension", "refuse", "--all", "--reason", "不予延期", *office)
    assert got.exit_code == 0 and f"{len(SCHOOLS) - 2} 项" in got.output, got.output
    assert run(db_url, "extension", "approve", "--reason", "x", *office).exit_code == 2  # neither a code nor --all
    engine = make_engine(db_url)
    try:
        with transaction(sessions(engine)) as s:
            assert s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.trigger == "extend")) == 2
            assert set(s.scalars(select(SchoolRun.state))) == {"registration"}
    finally:
        engine.dispose()
