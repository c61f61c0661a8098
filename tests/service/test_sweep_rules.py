"""The sweep's report and its lapse and bulletin messages, as the office and the recipients see them."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import FixedClock
from engine.models import Contact, Notification
from service.sweep import run_bulletins, run_sweep
from tests.engine.builders import EARLY
from tests.service.test_sweep import DUE, SCHOOL, _at, _setup, request_then_finish_planning


def test_the_sweep_report_names_every_count(factory: sessionmaker[Session], clock: FixedClock, tmp_path) -> None:
    """`rollout sweep` and the scheduler's status print the report: each count under its own name,
    and messages is the number of messages queued."""
    _setup(factory, clock, tmp_path)
    clock.set(_at(DUE + timedelta(days=1)))
    with factory() as session, session.begin():
        report = run_sweep(session, clock).as_dict()
    with factory() as session:
        queued = len(session.scalars(select(Notification)).all())
    assert set(report) == {"advanced", "items", "messages", "lapsed", "rerouted", "unrouted"}
    assert (report["advanced"], report["lapsed"], report["rerouted"], report["unrouted"]) == (0, 0, 0, [])
    assert report["messages"] == queued > 0
    assert report["items"]["overdue"] >= 1 and all(n >= 0 for n in report["items"].values())


def test_a_lapse_is_told_to_the_schools_own_active_contacts_only(factory: sessionmaker[Session], clock: FixedClock,
                                                                 tmp_path) -> None:
    """A lapsed request is the school's news: not another school's, not a contact switched off."""
    _setup(factory, clock, tmp_path)
    with factory() as session, session.begin():
        session.add(Contact(scope_code=SCHOOL, level="school", name="已停用", channel="file",
                            address=str(tmp_path / "old-outbox"), lang="zh", active=False))
        session.add(Contact(scope_code=EARLY[1], level="school", name="别校", channel="file",
                            address=str(tmp_path / "outbox"), lang="zh", active=True))
    request_then_finish_planning(factory, clock)
    with factory() as session, session.begin():
        result = run_sweep(session, clock)
    with factory() as session:
        rows = session.execute(select(Contact.name, Notification.body_text).join(Contact, Contact.id == Notification.contact_id)
                               .where(Notification.kind == "lapse")).all()
        queued = len(session.scalars(select(Notification)).all())
    assert [name for name, _ in rows] == ["学校管理员"]
    assert result.messages == queued >= 1
    body = rows[0][1]
    assert "制定规划" in body and "网络研修" in body  # the stage asked about, and the stage the school is in now


def test_each_office_bulletin_is_a_workbook_named_for_its_region_and_week(factory: sessionmaker[Session],
                                                                         clock: FixedClock, tmp_path) -> None:
    """An office files the weekly 通报 by region and ISO week; chat channels get markdown, not HTML."""
    _setup(factory, clock, tmp_path)
    with factory() as session, session.begin():
        session.add(Contact(scope_code="370323", level="county", name="县钉钉群", channel="dingtalk",
                            address="https://oapi.dingtalk.com/robot/send?access_token=x", lang="zh", active=True))
    clock.set(_at(date(2021, 10, 4)))  # Monday of ISO week 40
    with factory() as session, session.begin():
        assert run_bulletins(session, clock) == 4
    with factory() as session:
        notes = {c.name: n for n, c in session.execute(select(Notification, Contact)
                                                       .join(Contact, Contact.id == Notification.contact_id))}
    assert notes["沂源县项目办"].attachment_name == "通报-沂源县-2021W40.xlsx"
    assert notes["山东省项目办"].attachment_name == "通报-山东省-2021W40.xlsx"
    chat, mail = notes["县钉钉群"], notes["沂源县项目办"]
    assert chat.body_html is None and chat.body_markdown
    assert mail.body_html and mail.subject and mail.subject == mail.subject.strip()
