"""Early-warning notices (预警, issue 11): the sweep warns a school and its county once its
forecast crosses ``warn_at_risk`` before the due date — once per crossing, not daily, once after an
outage, again only after the school fell below and rose back."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import FixedClock
from engine.imports.progress import import_progress
from engine.models import Contact, NoticeItem, Notification
from service import run_bulletins, run_sweep
from tests.conftest import SHANGHAI
from tests.engine.builders import COUNTY, EARLY
from tests.engine.forecast.scenario import export, slow_teacher_hours, studying_school
from tests.service.test_sweep_rules import office_templates

AT_RISK_ROWS = "{% for r in rows %}{{ r.region_code }}:{{ r.at_risk }};{% endfor %}"  # a bulletin of its rows' 有风险


@pytest.fixture
def warned(factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> sessionmaker[Session]:
    studying_school(factory, clock, tmp_path, warn=0.7)
    with factory() as s, s.begin():
        for scope, level in ((EARLY[0], "school"), (COUNTY, "county")):
            s.add(Contact(scope_code=scope, level=level, name=f"{level}联系人", channel="file",
                          address=str(tmp_path / "outbox"), lang="zh", active=True))
    return factory


def sweep(factory: sessionmaker[Session], clock: FixedClock, day: date) -> dict[str, int]:
    clock.set(datetime(day.year, day.month, day.day, 20, tzinfo=SHANGHAI))
    with factory() as s, s.begin():
        return run_sweep(s, clock).items


def warnings(factory: sessionmaker[Session]) -> list[tuple[str, str]]:
    with factory() as s:
        rows = s.execute(select(Contact.level, Notification.body_text).join(Contact, Contact.id == Notification.contact_id)
                         .where(Notification.kind == "warning").order_by(Notification.id))
        return [(level, body) for level, body in rows]


def reimport(factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path, day: date, hours: dict[str, float]) -> None:
    clock.set(datetime(day.year, day.month, day.day, 18, tzinfo=SHANGHAI))
    import_progress(factory.kw["bind"], export(tmp_path / f"x{day}.csv", hours), as_of=day, clock=clock)


def test_a_crossing_warns_the_school_and_county_once(warned: sessionmaker[Session], clock: FixedClock) -> None:
    from engine.records import RunRisk

    assert sweep(warned, clock, date(2021, 8, 2))["warning"] == 2
    with warned() as s:  # the sweep keeps the risks it computed, for the dashboard (engine/forecast/store.py)
        assert s.scalar(select(func.count()).select_from(RunRisk)) == 4  # one per started school
    sent = warnings(warned)
    assert [level for level, _ in sent] == ["school", "county"]
    assert "预警" in sent[0][1] and "逾期概率：100%" in sent[0][1] and "教师09 差 23" in sent[0][1]
    assert sweep(warned, clock, date(2021, 8, 2))["warning"] == 0  # the same day again
    assert sweep(warned, clock, date(2021, 8, 3))["warning"] == 0  # still above: no daily repeat
    assert len(warnings(warned)) == 2


def test_after_an_outage_one_warning_not_one_per_day(warned: sessionmaker[Session], clock: FixedClock) -> None:
    assert sweep(warned, clock, date(2021, 8, 12))["warning"] == 2  # ten days without a sweep
    assert sweep(warned, clock, date(2021, 8, 13))["warning"] == 0
    assert len(warnings(warned)) == 2


def test_falling_below_rearms_and_a_new_crossing_warns_again(warned: sessionmaker[Session], clock: FixedClock,
                                                               tmp_path: Path) -> None:
    sweep(warned, clock, date(2021, 8, 2))
    caught_up = slow_teacher_hours(3) | {f"T{EARLY[0]}09": 20.0}  # the slow teacher rushed: 1.85 h a day
    reimport(warned, clock, tmp_path, date(2021, 8, 16), caught_up)
    assert sweep(warned, clock, date(2021, 8, 16))["warning"] == 0
    with warned() as s:
        kinds = Counter(s.scalars(select(NoticeItem.kind)))
    assert kinds["warning_clear"] == 1 and kinds["warning"] == 2
    stalled = caught_up  # then all ten stop studying for a month
    reimport(warned, clock, tmp_path, date(2021, 8, 30), stalled)
    reimport(warned, clock, tmp_path, date(2021, 9, 13), stalled)
    assert sweep(warned, clock, date(2021, 9, 13))["warning"] == 2
    assert len(warnings(warned)) == 4


def test_no_threshold_no_warning(factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    studying_school(factory, clock, tmp_path)  # the shipped workflow sets no warn_at_risk
    assert sweep(factory, clock, date(2021, 8, 2))["warning"] == 0


def test_the_weekly_bulletin_counts_schools_at_risk(warned: sessionmaker[Session], clock: FixedClock) -> None:
    from engine.models import Region

    with warned() as s, s.begin():
        s.add(Contact(scope_code=s.scalar(select(Region.code).where(Region.level == "city")), level="city",
                      name="淄博市项目办", channel="file", address="outbox", lang="zh", active=True))
    clock.set(datetime(2021, 8, 2, 20, tzinfo=SHANGHAI))
    with warned() as s, s.begin():
        assert run_bulletins(s, clock) == 2  # the county's and the city's
    with warned() as s:
        bodies = dict(s.execute(select(Contact.level, Notification.body_text).join(Contact, Contact.id == Notification.contact_id)
                                .where(Notification.kind == "bulletin")).all())
    assert "沂源县（370323）" in bodies["city"] and "预警（可能逾期）1 所" in bodies["city"]


def test_warning_outcomes_count_the_warned_runs_that_then_missed(warned: sessionmaker[Session], clock: FixedClock) -> None:
    from engine import find_plan, warning_outcomes

    sweep(warned, clock, date(2021, 8, 2))
    with warned() as s:
        plan = find_plan(s, None)
        assert warning_outcomes(s, clock, plan) == (1, 0, 1)  # warned, the due date (2021-11-04) ahead
        clock.set(datetime(2021, 11, 10, 9, tzinfo=SHANGHAI))
        assert warning_outcomes(s, clock, plan) == (1, 1, 0)  # still in online study after it: missed


def test_each_offices_bulletin_counts_the_schools_at_risk_in_each_of_its_rows(warned: sessionmaker[Session],
                                                                             clock: FixedClock, tmp_path: Path) -> None:
    """Every row of every office's ranking carries its own at-risk count (0 where none is): the
    county's own row, the city's counties, the province's cities; a second plan changes none of it."""
    from engine.models import Region
    from engine.plan import load_plan
    from tests.engine.builders import plan_data, write_plan

    with warned() as s, s.begin():
        for level in ("city", "province"):
            s.add(Contact(scope_code=s.scalar(select(Region.code).where(Region.level == level)), level=level,
                          name=f"{level}联系人", channel="file", address="outbox", lang="zh", active=True))
        load_plan(s, write_plan(tmp_path, plan_data(plan="other", batches=[
            {"id": "x", "start": "2021-06-01", "start_stage": "planning", "schools": {"rest": True}}]), "p2.yaml"), clock)
    office = office_templates(tmp_path, {"bulletin.zh.md.j2": AT_RISK_ROWS})
    clock.set(datetime(2021, 8, 2, 20, tzinfo=SHANGHAI))
    with warned() as s, s.begin():
        assert run_bulletins(s, clock, "yiyuan-2021", templates=office) == 3
    with warned() as s:
        bodies = dict(s.execute(select(Contact.level, Notification.body_markdown).join(Contact, Contact.id == Notification.contact_id)
                                .where(Notification.kind == "bulletin")).all())
    assert bodies == {"county": "370323:1;", "city": "370302:0;370323:1;", "province": "370300:1;"}


def test_a_region_whose_schools_have_not_started_counts_none_at_risk(warned: sessionmaker[Session],
                                                                     clock: FixedClock, tmp_path: Path) -> None:
    """Before 淄川区's one school starts (its batch on 2021-06-15) nothing is forecast there: its
    row of the city's bulletin says 0 at risk, not blank and not one."""
    from engine.models import Region

    with warned() as s, s.begin():
        s.add(Contact(scope_code=s.scalar(select(Region.code).where(Region.level == "city")), level="city",
                      name="淄博市项目办", channel="file", address="outbox", lang="zh", active=True))
    office = office_templates(tmp_path, {"bulletin.zh.md.j2": AT_RISK_ROWS})
    clock.set(datetime(2021, 6, 10, 20, tzinfo=SHANGHAI))
    with warned() as s, s.begin():
        assert run_bulletins(s, clock, templates=office) == 2
    with warned() as s:
        bodies = dict(s.execute(select(Contact.level, Notification.body_markdown).join(Contact, Contact.id == Notification.contact_id)
                                .where(Notification.kind == "bulletin")).all())
    assert bodies == {"county": "370323:0;", "city": "370302:0;370323:0;"}


def test_the_bulletin_counts_at_risk_at_the_workflows_own_threshold(factory: sessionmaker[Session], clock: FixedClock,
                                                                     tmp_path: Path) -> None:
    """A workflow that warns at 30 % counts a school whose forecast gives it about half a chance of
    missing its due date as at risk (docs/workflow-files.md `warn_at_risk`), not only those above 70 %."""
    from engine.forecast.api import forecast_plan, risk_of

    studying_school(factory, clock, tmp_path, warn=0.3)
    reimport(factory, clock, tmp_path, date(2021, 8, 16), slow_teacher_hours(3) | {f"T{EARLY[0]}09": 9.0})
    with factory() as s, s.begin():
        s.add(Contact(scope_code=COUNTY, level="county", name="县项目办", channel="file", address="outbox",
                      lang="zh", active=True))
    office = office_templates(tmp_path, {"bulletin.zh.md.j2": AT_RISK_ROWS})
    clock.set(datetime(2021, 8, 16, 20, tzinfo=SHANGHAI))
    with factory() as s:
        risks = [risk_of(f) for f in forecast_plan(s, clock)[1] if f.school_code == EARLY[0]]
    assert len(risks) == 1 and risks[0] is not None and 0.3 <= risks[0] < 0.7  # between the two thresholds
    with factory() as s, s.begin():
        assert run_bulletins(s, clock, templates=office) == 1
    with factory() as s:
        body = s.scalar(select(Notification.body_markdown).where(Notification.kind == "bulletin"))
    assert body == "370323:1;"
