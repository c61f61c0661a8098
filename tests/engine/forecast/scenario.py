"""A school in online study with three progress exports: what the forecast's database tests share."""

from __future__ import annotations

import csv
from datetime import date, datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from engine.clock import FixedClock
from engine.db import transaction
from engine.facts import set_fact
from engine.imports.progress import import_progress
from engine.plan import load_plan
from engine.runs import fire
from engine.workflow.loader import load_workflow_text, read_source
from engine.workflow.versions import register_workflow
from tests.conftest import SHANGHAI
from tests.engine.builders import (
    COUNTY_OFFICER,
    EARLY,
    LATE,
    OTHER,
    OTHER_COUNTY,
    PILOT,
    WORKFLOW_PATH,
    add_regions,
    add_school,
    plan_data,
    seed_with_plan,
    write_plan,
)

HEADER = ["教师编号", "姓名", "学校标识码", "线上学时", "校本实践学时", "能力点"]


def export(path: Path, hours: dict[str, float]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        for pid, h in hours.items():
            writer.writerow([pid, f"教师{pid[-2:]}", EARLY[0], f"{h:g}", "0", "1,2,3"])
    return path


def slow_teacher_hours(week: int) -> dict[str, float]:
    """Nine teachers gaining 3 h a fortnight, one (T…09) half an hour."""
    return {f"T{EARLY[0]}{i:02d}": 4.0 + 3.0 * week for i in range(9)} | {f"T{EARLY[0]}09": 1.0 + 0.5 * week}


def seed_warning_workflow(session: Session, clock: FixedClock, tmp_path: Path, warn: float) -> None:
    """The builders' regions, schools and plan on the shipped workflow with ``warn_at_risk`` set."""
    text = read_source(WORKFLOW_PATH).replace("      repeat_days: 7\n", f"      repeat_days: 7\n      warn_at_risk: {warn}\n", 1)
    assert "warn_at_risk" in text
    add_regions(session)
    add_school(session, PILOT, pilot=True)
    for code in (*EARLY, *LATE):
        add_school(session, code)
    add_school(session, OTHER, county=OTHER_COUNTY)
    register_workflow(session, load_workflow_text(text, "whole-school-2.0.yaml"), text, clock)
    load_plan(session, write_plan(tmp_path, plan_data()), clock)


def studying_school(factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path,
                    warn: float | None = None) -> sessionmaker[Session]:
    """The builders' plan; EARLY[0] in online study since 2021-07-01 with three exports two weeks
    apart: nine teachers at a good pace, one (T…09) barely moving. The clock ends on 2021-08-02."""
    with transaction(factory) as s:
        if warn is None:
            seed_with_plan(s, clock, tmp_path)
        else:
            seed_warning_workflow(s, clock, tmp_path, warn)
    with transaction(factory) as s:
        for name, value in (("plan_filed", 1.0), ("team_members", 4.0)):
            set_fact(s, clock, school_code=EARLY[0], name=name, value=value, actor=COUNTY_OFFICER)
        fire(s, clock, school_code=EARLY[0], trigger="advance", actor=COUNTY_OFFICER)
    for week, day in enumerate((date(2021, 7, 5), date(2021, 7, 19), date(2021, 8, 2))):
        hours = slow_teacher_hours(week)
        clock.set(datetime(day.year, day.month, day.day, 18, tzinfo=SHANGHAI))
        import_progress(factory.kw["bind"], export(tmp_path / f"e{week}.csv", hours), as_of=day, clock=clock)
    return factory
