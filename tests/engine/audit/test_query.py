"""Filtering the trail by school, region subtree, actor, trigger and time; CSV/JSON exports."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from engine.audit import append_event
from engine.audit.query import export_csv, export_json, list_events
from engine.db import transaction
from engine.i18n import set_language
from engine.models import Region, School

T0 = datetime(2021, 7, 1, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai

SCHOOLS = [
    # code, name, county, city, province
    ("3703230001", "沂源县第一中学", "370323", "370300", "370000"),
    ("3703230002", "沂源县实验小学", "370323", "370300", "370000"),
    ("3703020001", "淄川区第二中学", "370302", "370300", "370000"),
    ("4101020001", "郑州市实验学校", "410102", "410100", "410000"),
]


def seed(db: Engine, factory: sessionmaker[Session]) -> None:
    regions = [
        ("370000", "山东省", "province", None), ("370300", "淄博市", "city", "370000"),
        ("370323", "沂源县", "county", "370300"), ("370302", "淄川区", "county", "370300"),
        ("410000", "河南省", "province", None), ("410100", "郑州市", "city", "410000"),
        ("410102", "中原区", "county", "410100"),
    ]
    with db.begin() as conn:
        conn.execute(Region.__table__.insert(), [dict(zip(("code", "name", "level", "parent_code"), r, strict=True)) for r in regions])
        conn.execute(School.__table__.insert(), [
            {"code": c, "name": n, "county_code": co, "city_code": ci, "province_code": p, "kind": "primary"}
            for c, n, co, ci, p in SCHOOLS
        ])
    with transaction(factory) as s:
        for i, (code, *_rest) in enumerate(SCHOOLS):
            append_event(s, chain=f"run:{i + 1}", at=T0 + timedelta(days=i), actor="县项目办" if i < 3 else "郑州项目办",
                         role="county", trigger="advance", run_id=i + 1, plan_id=1, school_code=code,
                         from_state="planning", to_state="online_study",
                         gates=[{"gate": "plan_filed", "actual": 1, "passed": True}])
        append_event(s, chain="plan:1", at=T0 + timedelta(days=10), actor="省项目办", role="province",
                     trigger="plan_changed", plan_id=1, reason="延长至2021-12-31")


def codes(rows: list) -> list[str | None]:
    return [r.school_code for r in rows]


def test_filters(db: Engine, factory: sessionmaker[Session]) -> None:
    seed(db, factory)
    with factory() as s:
        everything = list_events(s)
        assert codes(everything) == [c for c, *_ in SCHOOLS] + [None]  # plan events included, oldest first
        assert codes(list_events(s, school="3703230002")) == ["3703230002"]
        assert codes(list_events(s, region="370323")) == ["3703230001", "3703230002"]  # county
        assert codes(list_events(s, region="370300")) == ["3703230001", "3703230002", "3703020001"]  # city
        assert codes(list_events(s, region="410000")) == ["4101020001"]  # province
        assert list_events(s, region="999999") == []
        assert codes(list_events(s, actor="郑州项目办")) == ["4101020001"]
        assert [r.chain for r in list_events(s, trigger="plan_changed")] == ["plan:1"]
        window = list_events(s, since=T0 + timedelta(days=1), until=T0 + timedelta(days=3))
        assert codes(window) == ["3703230002", "3703020001"]  # since inclusive, until exclusive
        assert codes(list_events(s, limit=2, offset=1)) == ["3703230002", "3703020001"]
    first = everything[0]
    assert first.school_name == "沂源县第一中学"
    assert first.local_at() == "2021-07-01 09:00:00"
    assert first.at == T0


def test_csv_export_is_excel_friendly(db: Engine, factory: sessionmaker[Session]) -> None:
    seed(db, factory)
    with factory() as s:
        rows = list_events(s, region="370323")
    out = io.StringIO(newline="")
    export_csv(rows, out)
    data = out.getvalue()
    assert data.startswith("\ufeff时间,审计链,序号,学校标识码,学校,操作人")
    assert "\r\n" in data
    parsed = list(csv.reader(io.StringIO(data.lstrip("\ufeff"))))
    assert parsed[1][:5] == ["2021-07-01 09:00:00", "run:1", "1", "3703230001", "沂源县第一中学"]
    assert json.loads(parsed[1][11]) == [{"gate": "plan_filed", "actual": 1, "passed": True}]
    assert len(parsed) == 3
    set_language("en")
    english = io.StringIO()
    export_csv(rows, english)
    assert english.getvalue().startswith("\ufeffTime,Chain,Seq,School code,School,Actor")


def test_json_export(db: Engine, factory: sessionmaker[Session]) -> None:
    seed(db, factory)
    with factory() as s:
        rows = list_events(s, trigger="plan_changed")
    out = io.StringIO()
    export_json(rows, out)
    [event] = json.loads(out.getvalue())
    assert event["chain"] == "plan:1" and event["school_code"] is None
    assert event["reason"] == "延长至2021-12-31"
    assert event["at_local"] == "2021-07-11 09:00:00"
    assert datetime.fromisoformat(event["at"]) == T0 + timedelta(days=10)
