"""The sweep's report and its lapse and bulletin messages, as the office and the recipients see them."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from engine import KINDS
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


# An office's own template may use every key docs/notifications.md lists for its message.
LAPSE_KEYS = ("{{ kind }}|{{ recipient.name }}|{{ plan_title }}|{{ school_code }}|{{ stage_title }}|"
              "{{ now_stage_title }}|{{ due_date }}|{{ request_seq }}")
BULLETIN_KEYS = ("{{ office.name }}|{{ office.level }}|{{ plan_title }}|{{ period }}|"
                 "{% for r in rows %}{{ r.region_code }}:{{ r.schools }};{% endfor %}|{{ contractors|length }}|"
                 "{% for r in rates %}{{ r.id }};{% endfor %}")


def office_templates(tmp_path: Path, files: dict[str, str]) -> Path:
    """An office's own ``--templates`` folder holding ``files`` (name → Jinja text)."""
    office = tmp_path / "office"
    office.mkdir()
    for name, body in files.items():
        (office / name).write_text(body, encoding="utf-8")
    return office


def test_an_office_lapse_template_gets_the_documented_context(factory: sessionmaker[Session], clock: FixedClock,
                                                               tmp_path) -> None:
    """`--templates` reaches the lapse notice too, with every key of its documented context."""
    _setup(factory, clock, tmp_path)
    office = office_templates(tmp_path, {"lapse.zh.md.j2": LAPSE_KEYS})
    request_then_finish_planning(factory, clock)
    with factory() as session, session.begin():
        run_sweep(session, clock, templates=office)
    with factory() as session:
        body = session.scalars(select(Notification.body_markdown).where(Notification.kind == "lapse")).one()
    assert body == f"lapse|学校管理员|沂源县提升工程2.0整校推进|{SCHOOL}|制定规划|网络研修|2021-10-30|2"  # seq 2: the request follows the start on the chain


def test_a_lapse_with_no_school_contact_is_counted_but_sends_nothing(factory: sessionmaker[Session],
                                                                     clock: FixedClock, tmp_path) -> None:
    """The request still lapses (the chain says so); the report counts no message it did not queue."""
    _setup(factory, clock, tmp_path)
    with factory() as session, session.begin():
        session.execute(update(Contact).where(Contact.level == "school").values(active=False))
    request_then_finish_planning(factory, clock)
    with factory() as session, session.begin():
        result = run_sweep(session, clock)
    with factory() as session:
        queued = len(session.scalars(select(Notification)).all())
    assert (result.advanced, result.lapsed, result.messages, queued) == (1, 1, 0, 0)


def test_an_office_bulletin_template_gets_the_documented_context(factory: sessionmaker[Session], clock: FixedClock,
                                                                  tmp_path) -> None:
    _setup(factory, clock, tmp_path)
    office = office_templates(tmp_path, {"bulletin.zh.md.j2": BULLETIN_KEYS})
    clock.set(_at(date(2021, 10, 4)))
    with factory() as session, session.begin():
        assert run_bulletins(session, clock, templates=office) == 3
    with factory() as session:
        bodies = dict(session.execute(select(Contact.level, Notification.body_markdown)
                                      .join(Contact, Contact.id == Notification.contact_id)).all())
    rates = r"participation;online\_hours\_met;practice\_hours\_met;evidence\_submitted;passed;plan\_filed;"
    assert bodies == {  # a county ranks itself, the province its cities; no contractors in this plan
        level: f"{name}|{level}|沂源县提升工程2.0整校推进|2021年第40周|{row}:1;|0|{rates}"
        for level, name, row in [("county", "沂源县项目办", "370323"), ("city", "淄博市项目办", "370323"),
                                 ("province", "山东省项目办", "370300")]}


def test_with_two_plans_the_sweep_and_the_bulletins_work_on_the_plan_named(factory: sessionmaker[Session],
                                                                           clock: FixedClock, tmp_path) -> None:
    """A second plan (another county's) in the database: each step of a sweep or bulletin run works
    on the plan named, never asks which plan is meant, and never touches the other's schools."""
    from engine.plan import load_plan
    from tests.engine.builders import OTHER, OTHER_COUNTY, plan_data, write_plan

    _setup(factory, clock, tmp_path)
    request_then_finish_planning(factory, clock)  # in yiyuan-2021: it advances and its request lapses
    other = {"id": "z", "title": "淄川", "start": "2021-06-15", "start_stage": "planning", "share": 1.0,
             "schools": {"codes": [OTHER]}, "deadlines": {"planning": DUE.isoformat()}}
    with factory() as session, session.begin():
        load_plan(session, write_plan(tmp_path, plan_data(plan="zichuan", batches=[other]), "p2.yaml"), clock)
        session.add(Contact(scope_code=OTHER_COUNTY, level="county", name="淄川区项目办", channel="file",
                            address=str(tmp_path / "outbox"), lang="zh", active=True))
    with factory() as session, session.begin():
        assert run_sweep(session, clock, "zichuan").as_dict() == {
            "advanced": 0, "items": dict.fromkeys(KINDS, 0), "messages": 0, "lapsed": 0, "rerouted": 0,
            "unrouted": []}  # 20 days before its due date: nothing due yet
        mine = run_sweep(session, clock, "yiyuan-2021")
        assert (mine.advanced, mine.lapsed, mine.messages) == (1, 1, 1)
    clock.set(_at(date(2021, 10, 4)))
    with factory() as session, session.begin():
        assert run_bulletins(session, clock, "yiyuan-2021") == 3  # not 淄川区's office: none of its schools
        # 淄川区, and the city and province over both plans: each plan's bulletin is its own (the
        # week's dedupe key names the plan; without it the second plan's was dropped as a repeat).
        assert run_bulletins(session, clock, "zichuan") == 3
        assert run_bulletins(session, clock, "zichuan") == 0  # but once a week
    with factory() as session:
        told = Counter(session.scalars(select(Contact.name).join(Notification, Notification.contact_id == Contact.id)
                                       .where(Notification.kind == "bulletin")))
    assert told["沂源县项目办"] == told["淄川区项目办"] == 1 and told["淄博市项目办"] == told["山东省项目办"] == 2


def test_each_channel_gets_the_formats_it_can_show(factory: sessionmaker[Session], clock: FixedClock, tmp_path) -> None:
    """Chat robots (DingTalk, WeCom, Feishu) show markdown and no HTML; mail has HTML and no
    markdown; the file outbox keeps both. Each row carries its contact's address and secret name,
    and is due at once."""
    _setup(factory, clock, tmp_path)
    channels = {"dingtalk": "https://oapi.dingtalk.com/robot/send?access_token=a", "wecom": "https://qyapi.weixin.qq.com/x",
                "feishu": "https://open.feishu.cn/x", "email": "school@example.cn"}
    with factory() as session, session.begin():
        for channel, address in channels.items():
            session.add(Contact(scope_code=SCHOOL, level="school", name=channel, channel=channel, address=address,
                                secret_ref=f"{channel}-secret", lang="zh", active=True))
    clock.set(_at(DUE + timedelta(days=1)))
    with factory() as session, session.begin():
        assert run_sweep(session, clock).messages == 5  # one overdue digest per school contact
    with factory() as session:
        got = {c.name: (n.channel, n.address, n.secret_ref, n.body_html is not None, n.body_markdown is not None,
                        n.created_at == n.next_attempt_at == clock.now())
               for n, c in session.execute(select(Notification, Contact).join(Contact, Contact.id == Notification.contact_id)
                                           .where(Contact.level == "school"))}
    assert got == {name: (name, address, f"{name}-secret", name == "email", name != "email", True)
                   for name, address in channels.items()} | {"学校管理员": ("file", str(tmp_path / "outbox"), None, True, True, True)}


def test_an_item_no_one_receives_is_reported_with_its_school(factory: sessionmaker[Session], clock: FixedClock,
                                                             tmp_path) -> None:
    """The school's overdue notice has no school contact to go to: the report names level, kind
    and school, so the office can add the contact (nothing is dropped silently)."""
    _setup(factory, clock, tmp_path)
    with factory() as session, session.begin():
        session.execute(update(Contact).where(Contact.level == "school").values(active=False))
    clock.set(_at(DUE + timedelta(days=1)))
    with factory() as session, session.begin():
        assert run_sweep(session, clock).unrouted == [{"level": "school", "kind": "overdue", "school": SCHOOL}]
