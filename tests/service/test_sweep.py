"""The sweep over a Yiyuan-style stage: exact reminders, alerts and escalations per recipient,
exactly once across repeated sweeps and outages; an extension or catching up stops the alerts."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import FixedClock
from engine.facts import set_fact
from engine.models import Contact, NoticeItem, Notification
from engine.runs import fire
from service.sweep import run_bulletins, run_sweep
from tests.conftest import SHANGHAI
from tests.engine.builders import (
    CITY,
    COUNTY,
    COUNTY_OFFICER,
    EARLY,
    PROVINCE,
    plan_data,
    seed,
    write_plan,
)

SCHOOL = EARLY[0]
DUE = date(2021, 9, 30)  # the batch's planning deadline


def _setup(factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    from engine.plan import load_plan

    batch = {"id": "b2", "title": "第一批", "start": "2021-06-15", "start_stage": "planning", "share": 1.0,
             "schools": {"codes": [SCHOOL]}, "deadlines": {"planning": DUE.isoformat()}}
    with factory() as session, session.begin():
        seed(session, clock)
        load_plan(session, write_plan(tmp_path, plan_data(batches=[batch])), clock)
        for scope, level, name in [(SCHOOL, "school", "学校管理员"), (COUNTY, "county", "沂源县项目办"),
                                   (CITY, "city", "淄博市项目办"), (PROVINCE, "province", "山东省项目办")]:
            session.add(Contact(scope_code=scope, level=level, name=name, channel="file",
                                address=str(tmp_path / "outbox"), lang="zh", active=True))


def _at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 9, tzinfo=SHANGHAI)


def _sweep(factory: sessionmaker[Session], clock: FixedClock, day: date) -> None:
    clock.set(_at(day))
    with factory() as session, session.begin():
        run_sweep(session, clock)


def _per_recipient(factory: sessionmaker[Session]) -> Counter[tuple[str, str]]:
    with factory() as session:
        rows = session.execute(select(Contact.level, Notification.kind).join(Contact, Contact.id == Notification.contact_id))
        return Counter((level, kind) for level, kind in rows)


def test_a_year_of_daily_sweeps_sends_the_exact_expected_messages(factory, clock, tmp_path) -> None:
    _setup(factory, clock, tmp_path)
    day = date(2021, 9, 1)
    while day <= DUE + timedelta(days=62):
        _sweep(factory, clock, day)
        day += timedelta(days=1)
    assert _per_recipient(factory) == Counter({
        ("school", "reminder"): 2,  # 14 and 3 days before
        ("school", "overdue"): 9,  # overdue days 1..62, repeated every 7 days → rounds 0..8
        ("county", "escalation"): 8,  # from +7: rounds 0..7
        ("city", "escalation"): 5,  # from +30: rounds 0..4
        ("province", "escalation"): 1,  # from +60
    })


def test_sweeping_twice_sends_nothing_new(factory, clock, tmp_path) -> None:
    _setup(factory, clock, tmp_path)
    _sweep(factory, clock, DUE + timedelta(days=8))
    first = _per_recipient(factory)
    _sweep(factory, clock, DUE + timedelta(days=8))
    assert _per_recipient(factory) == first == Counter({("school", "overdue"): 1, ("county", "escalation"): 1})
    with factory() as session:
        body = session.scalars(select(Notification.body_text).where(Notification.kind == "overdue")).one()
    assert "✗" in body  # the digest says which gate is still failing (plan not filed, no team)


def test_ten_day_outage_yields_one_catch_up_per_recipient(factory, clock, tmp_path) -> None:
    _setup(factory, clock, tmp_path)
    _sweep(factory, clock, DUE + timedelta(days=1))
    _sweep(factory, clock, DUE + timedelta(days=11))  # ten days without a sweep
    got = _per_recipient(factory)
    assert got == Counter({("school", "overdue"): 2, ("county", "escalation"): 1})
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(NoticeItem)) == 3


def test_an_extension_stops_the_alerts(factory, clock, tmp_path) -> None:
    _setup(factory, clock, tmp_path)
    _sweep(factory, clock, DUE + timedelta(days=2))
    clock.set(_at(DUE + timedelta(days=3)))
    with factory() as session, session.begin():
        fire(session, clock, school_code=SCHOOL, trigger="extend", actor=COUNTY_OFFICER,
             reason="校舍改造，延期两周", due=DUE + timedelta(days=20))
    before = sum(_per_recipient(factory).values())
    for d in range(4, 18):
        _sweep(factory, clock, DUE + timedelta(days=d))
    counts = _per_recipient(factory)
    # No overdue alert after the extension: only the new due date's 14- and 3-day reminders.
    assert sum(counts.values()) - before == 2
    assert counts == Counter({("school", "overdue"): 1, ("school", "reminder"): 2})


def test_catching_up_advances_the_school_and_ends_the_alerts(factory, clock, tmp_path) -> None:
    _setup(factory, clock, tmp_path)
    _sweep(factory, clock, DUE + timedelta(days=1))
    clock.set(_at(DUE + timedelta(days=2)))
    with factory() as session, session.begin():
        set_fact(session, clock, school_code=SCHOOL, name="team_members", value=4, actor=COUNTY_OFFICER)
        set_fact(session, clock, school_code=SCHOOL, name="plan_filed", value=1, actor=COUNTY_OFFICER)
    clock.set(_at(DUE + timedelta(days=9)))
    with factory() as session, session.begin():
        result = run_sweep(session, clock)
    assert result.advanced == 1
    assert result.items["overdue"] == 0 and result.items["escalation"] == 0


def test_the_sweep_lapses_a_request_the_school_outgrew_and_tells_the_school(factory, clock, tmp_path) -> None:
    """Issue 14 bug 1: the school advances before the office decides; the sweep closes the request."""
    from engine.extension import pending_requests
    _setup(factory, clock, tmp_path)
    request_then_finish_planning(factory, clock)
    with factory() as session, session.begin():
        first = run_sweep(session, clock)
        assert (first.advanced, first.lapsed) == (1, 1)
        assert pending_requests(session) == []
    with factory() as session, session.begin():
        assert run_sweep(session, clock).lapsed == 0  # closed once
    assert _per_recipient(factory)[("school", "lapse")] == 1
    with factory() as session:
        body = session.scalars(select(Notification.body_text).where(Notification.kind == "lapse")).one()
    assert SCHOOL in body and "已失效" in body and "制定规划" in body


def test_bulletins_go_out_once_a_week_with_a_workbook(factory, clock, tmp_path) -> None:
    _setup(factory, clock, tmp_path)
    clock.set(_at(date(2021, 10, 4)))  # a Monday
    with factory() as session, session.begin():
        first = run_bulletins(session, clock)
        again = run_bulletins(session, clock)
    assert (first, again) == (3, 0)  # county, city and province offices; deduplicated per ISO week
    with factory() as session:
        note = session.scalars(select(Notification).where(Notification.kind == "bulletin")).first()
        assert note is not None and note.attachment and note.attachment[:2] == b"PK"
        assert note.attachment_name and note.attachment_name.endswith(".xlsx")


def test_office_templates_are_used_by_the_sweep_the_bulletins_and_the_cli(factory, clock, tmp_path, db_url) -> None:
    """The override folder existed only as a render() argument nobody passed (issue 12, Medium 8):
    `rollout sweep/bulletin --templates DIR` (and `scheduler run`, ROLLOUT_TEMPLATES) use it."""
    from click.testing import CliRunner

    from cli.main import main

    _setup(factory, clock, tmp_path)
    office = tmp_path / "office-templates"
    office.mkdir()
    (office / "digest.zh.md.j2").write_text("本县模板：{{ recipient.name }}，{{ items|length }} 所", encoding="utf-8")
    (office / "bulletin.zh.md.j2").write_text("本县通报：{{ office.name }}", encoding="utf-8")
    clock.set(_at(DUE + timedelta(days=1)))
    with factory() as session, session.begin():
        run_sweep(session, clock, templates=office)
    with factory() as session:
        bodies = [n.body_markdown for n in session.scalars(select(Notification))]
    assert bodies and all(b and b.startswith("本县模板：") for b in bodies)
    result = CliRunner().invoke(main, ["--db", db_url, "--now", "2021-10-04T09:00", "bulletin", "--templates", str(office)])
    assert result.exit_code == 0, result.output
    with factory() as session:
        bulletins = [n.body_markdown for n in session.scalars(select(Notification).where(Notification.kind == "bulletin"))]
    assert bulletins and all(b and b.startswith("本县通报：") for b in bulletins)
    (office / "digest.zh.md.j2").write_text("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
                                            encoding="utf-8")
    clock.set(_at(DUE + timedelta(days=8)))
    runaway = CliRunner().invoke(main, ["--db", db_url, "--now", "2021-10-08T09:00", "sweep", "--templates", str(office)])
    assert runaway.exit_code == 1 and "digest.zh.md.j2" in runaway.output  # a clean error, within seconds


def test_one_sweep_passes_every_auto_gate_already_met(factory, clock, tmp_path) -> None:
    """A school that has finished planning *and* online study moves two stages in one sweep (and is
    no longer alerted for planning): the sweep never leaves it a day in a stage it has finished."""
    from engine.runs import find_run
    from tests.engine.builders import add_teachers

    _setup(factory, clock, tmp_path)
    clock.set(_at(DUE + timedelta(days=2)))
    with factory() as session, session.begin():
        set_fact(session, clock, school_code=SCHOOL, name="team_members", value=4, actor=COUNTY_OFFICER)
        set_fact(session, clock, school_code=SCHOOL, name="plan_filed", value=1, actor=COUNTY_OFFICER)
        add_teachers(session, SCHOOL, 2, evidence=0, result=None)  # online study done, practice not
        result = run_sweep(session, clock)
        assert result.advanced == 2 and find_run(session, SCHOOL).state == "practice"
        assert result.items["overdue"] == 0 and result.items["escalation"] == 0


def request_then_finish_planning(factory: sessionmaker[Session], clock: FixedClock) -> None:
    """20 days before the due date the school asks for 30 more days, then meets planning's gates:
    the next sweep advances it, and its request lapses with the stage it was for."""
    from engine.extension import request_extension
    from tests.engine.builders import SCHOOL_ADMIN

    clock.set(_at(DUE - timedelta(days=20)))
    with factory() as session, session.begin():
        request_extension(session, clock, school_code=SCHOOL, due=DUE + timedelta(days=30), reason="校舍改造",
                          actor=SCHOOL_ADMIN)
        set_fact(session, clock, school_code=SCHOOL, name="team_members", value=4, actor=COUNTY_OFFICER)
        set_fact(session, clock, school_code=SCHOOL, name="plan_filed", value=1, actor=COUNTY_OFFICER)
