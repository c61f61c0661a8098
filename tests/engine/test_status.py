"""Status table and school detail: counts per region and stage, blocked, overdue, gates explained."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from engine.clock import FixedClock
from engine.db import transaction
from engine.facts import set_fact
from engine.runs import fire
from engine.status import school_detail, status_table
from tests.engine.builders import (
    CITY,
    CITY_OFFICER,
    COUNTY,
    COUNTY_OFFICER,
    EARLY,
    LATE,
    OTHER,
    OTHER_COUNTY,
    PILOT,
)


def test_status_table_by_county(plan: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(plan) as s:
        _wf, rows = status_table(s, clock)
    by = {r.region_code: r for r in rows}
    assert set(by) == {COUNTY, OTHER_COUNTY}
    yy = by[COUNTY]
    assert (yy.region_name, yy.schools, yy.not_started) == ("沂源县", 5, 2)
    assert yy.stages["pilot"] == 1 and yy.stages["planning"] == 2
    assert yy.blocked == 3 and yy.overdue == 0
    assert by[OTHER_COUNTY].schools == 1


def test_overdue_after_batch_deadline(plan: sessionmaker[Session], clock: FixedClock) -> None:
    clock.set(datetime(2021, 10, 8, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
    with transaction(plan) as s:
        _wf, rows = status_table(s, clock, region=COUNTY)
        detail = school_detail(s, clock, EARLY[0])
    assert [r.region_code for r in rows] == [COUNTY]
    assert rows[0].not_started == 0 and rows[0].overdue == 2  # EARLY (due 09-30); LATE are due later
    assert detail["due"]["date"] == date(2021, 9, 30) and detail["due"]["days_overdue"] == 8


def test_status_by_city_under_a_province(plan: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(plan) as s:
        _wf, rows = status_table(s, clock, region="370000")
    assert [(r.region_code, r.schools) for r in rows] == [(CITY, 6)]


def test_school_detail(plan: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(plan) as s:
        set_fact(s, clock, school_code=EARLY[0], name="plan_filed", value=1, actor=COUNTY_OFFICER)
        d = school_detail(s, clock, EARLY[0])
    assert d["state"] == "planning" and d["batch"] == "b2" and d["started"] and d["blocked"]
    assert [g["gate"] for g in d["gates"]] == ["plan_filed", "team_formed"]
    assert d["gates"][0]["explanation"].endswith("✓")
    assert "未记录（需 ≥ 3人）✗" in d["gates"][1]["explanation"]
    assert {"advance", "suspend", "extend", "override"} <= set(d["allowed"])
    assert [e["trigger"] for e in d["history"]] == ["start", "fact:plan_filed"]
    assert d["teachers"]["teachers"] == 0


def test_not_started_school_has_no_gates_or_due(plan: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(plan) as s:
        d = school_detail(s, clock, LATE[0])
    assert not d["started"] and d["due"] is None and d["gates"] == [] and not d["blocked"]


def test_pilot_due_is_batch_date_and_done_has_none(plan: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(plan) as s:
        assert school_detail(s, clock, PILOT)["due"]["date"] == date(2021, 12, 31)
        fire(s, clock, school_code=OTHER, trigger="override", actor=CITY_OFFICER,
             reason="撤并")
        assert school_detail(s, clock, OTHER)["due"] is None
