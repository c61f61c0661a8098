"""``rollout forecast``: the issue's columns, the region summary, --at-risk and --json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy.orm import Session, sessionmaker

from cli.main import main
from engine.clock import FixedClock
from tests.engine.builders import COUNTY, EARLY
from tests.engine.forecast.scenario import studying_school


@pytest.fixture
def studying(factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> sessionmaker[Session]:
    return studying_school(factory, clock, tmp_path)


def run(db: sessionmaker[Session], *args: str) -> Result:
    url = db.kw["bind"].url.render_as_string(hide_password=False)
    return CliRunner().invoke(main, ["--db", url, "--now", "2021-08-02T18:30:00+08:00", *args])


def test_table_and_region_summary(studying: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    result = run(studying, "--lang", "en", "forecast", "--samples", "200")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert all(col in lines[0] for col in ("school_code", "stage", "due_date", "p_miss_due", "p_miss_final",
                                           "eta_p50", "eta_p90", "teachers_at_risk"))
    first = next(ln for ln in lines if ln.startswith(EARLY[0]))
    assert "100%" in first and "Online study" in first
    assert any(ln.startswith(f"{COUNTY} 沂源县") for ln in lines)


def test_json_with_at_risk_filter(studying: sessionmaker[Session], clock: FixedClock) -> None:
    result = run(studying, "forecast", "--at-risk", "0.9", "--json", "--samples", "200", "--region", COUNTY)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [s["school_code"] for s in data["schools"]] == [EARLY[0]]
    school = data["schools"][0]
    assert school["p_miss_due"] == 1.0 and school["teachers"][0]["platform_id"] == f"T{EARLY[0]}09"
    assert school["explain"]["samples"] == 200
    assert {r["code"]: r["at_risk"] for r in data["regions"]} == {COUNTY: 1}


def test_store_keeps_each_schools_risk_for_the_dashboard(studying: sessionmaker[Session]) -> None:
    from sqlalchemy import select

    from engine.models import SchoolRun
    from engine.records import RunRisk

    result = run(studying, "forecast", "--samples", "200", "--method", "approximate", "--store", "--json")
    assert result.exit_code == 0, result.output
    shown = {s["school_code"]: s["p_miss_due"] for s in json.loads(result.output)["schools"]}
    with studying() as s:
        stored = dict(s.execute(select(SchoolRun.school_code, RunRisk.p_miss_due)
                                .join(RunRisk, RunRisk.run_id == SchoolRun.id)).all())
        sources = set(s.scalars(select(RunRisk.source)))
    assert stored == shown and stored[EARLY[0]] == 1.0 and sources == {"cli"}
