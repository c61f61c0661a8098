"""Directly administered counties (省直管县(市), 济源示范区) are peers of the cities, and an escalation
with no recipient at its level goes up a level and is reported, never dropped (issue 14 item 5)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.bulletin import ranked_regions
from engine.clock import FixedClock
from engine.models import Contact, NoticeItem, Notification, Region, School
from engine.plan import find_plan
from engine.status import school_detail, status_table
from service.sweep import run_sweep
from tests.conftest import SHANGHAI
from tests.engine.henan import DIRECT, GONGYI, PROVINCE, SCHOOLS, ZHENGZHOU, ZHONGYUAN, henan


def _setup(factory: sessionmaker[Session], clock: FixedClock, tmp_path) -> None:
    with factory() as s, s.begin():
        henan(s, clock, tmp_path)
        for scope, level, name in [(PROVINCE, "province", "省执行办"), (ZHENGZHOU, "city", "郑州市教育局")]:
            s.add(Contact(scope_code=scope, level=level, name=name, channel="file", address=str(tmp_path / "out"),
                          lang="zh", active=True))


def test_direct_counties_sit_under_the_province_and_rank_beside_the_cities(factory, clock, tmp_path) -> None:
    _setup(factory, clock, tmp_path)
    with factory() as s:
        parents = dict(s.execute(select(Region.code, Region.parent_code)).all())
        assert {c: parents[c] for c in DIRECT} == dict.fromkeys(DIRECT, PROVINCE)
        assert parents[ZHONGYUAN] == ZHENGZHOU
        assert s.get(School, f"{GONGYI}0001").city_code == GONGYI  # its own city-level unit
        _, rows = status_table(s, clock, region=PROVINCE)
        assert {r.region_code: (r.region_name, r.schools) for r in rows} == {
            ZHENGZHOU: ("郑州市", 2), GONGYI: ("巩义市", 2), "411300": ("南阳市", 2), "411381": ("邓州市", 2),
            "419001": ("济源市", 2)}
        ranked = ranked_regions(s, clock, find_plan(s, None), PROVINCE)
        assert "?" not in {r["region_code"] for r in ranked} and len(ranked) == 5


def test_an_escalation_with_no_recipient_goes_up_and_is_reported(factory, clock, tmp_path) -> None:
    _setup(factory, clock, tmp_path)
    with factory() as s:
        due = school_detail(s, clock, SCHOOLS[0])["due"]["date"]  # contractor assignment: 20 working days
    day = due + timedelta(days=5)  # city escalation at +3, province at +10
    clock.set(datetime(day.year, day.month, day.day, 9, tzinfo=SHANGHAI))
    with factory() as s, s.begin():
        result = run_sweep(s, clock)
    # 郑州's city office hears of its two schools; the other four units have no city-level contact:
    # their eight schools' city escalations go to the province office, and are counted as rerouted.
    assert result.rerouted == 8
    with factory() as s:
        got = {(level, n.subject.count("转报") > 0) for level, n in s.execute(
            select(Contact.level, Notification).join(Contact, Contact.id == Notification.contact_id))}
        assert got == {("city", False), ("province", True)}
        items = s.execute(select(NoticeItem.level, Contact.level).join(Notification, Notification.id == NoticeItem.notification_id)
                          .join(Contact, Contact.id == Notification.contact_id)).all()
        assert sorted(items).count(("city", "province")) == 8 and sorted(items).count(("city", "city")) == 2
        body = s.scalars(select(Notification.body_text).join(Contact, Contact.id == Notification.contact_id)
                         .where(Contact.level == "province")).one()
        assert "巩义市" in body or GONGYI in body
    # no school has a contact: their overdue notices reach no one, and the sweep says so
    assert sorted({(u["level"], u["kind"]) for u in result.unrouted}) == [("school", "overdue")]
    assert len(result.unrouted) == len(SCHOOLS)
