"""The JSON API: same data, same actions, same permissions as the pages; OpenAPI description."""

from __future__ import annotations

from datetime import date, datetime

import pytest

import web.lists as lists
from engine.db import sessions, transaction
from engine.facts import set_fact
from engine.runs import fire
from tests.conftest import SHANGHAI
from tests.engine.builders import COUNTY_OFFICER, EARLY, LATE, OTHER, PILOT, events_of
from tests.web.conftest import Site

SCHOOL = EARLY[0]


def test_api_requires_a_session(site: Site) -> None:
    client = site.client()
    for path in ("/api/me", "/api/overview", "/api/overdue", f"/api/schools/{SCHOOL}", "/api/audit"):
        assert client.get(path).status_code == 401, path


def test_api_data(site: Site) -> None:
    client = site.as_user("county")
    me = client.get("/api/me").json()
    assert me["role"] == "county_office" and me["scope"] == "370323" and me["csrf"]
    overview = client.get("/api/overview").json()
    assert overview["plan"] == "yiyuan-2021" and overview["totals"]["schools"] == 5
    assert overview["level"] == "county" and [c["code"] for c in overview["crumbs"]] == ["370323"]
    assert sum(s["count"] for s in overview["states"]) == 5  # every school in exactly one state
    overdue = client.get("/api/schools").json()
    assert SCHOOL in {r["school_code"] for r in overdue}
    assert all(r["failing"] for r in overdue if r["blocked"])
    detail = client.get(f"/api/schools/{SCHOOL}").json()
    assert detail["state"] == "planning" and "return_for_rework" not in detail["allowed"]
    assert client.get("/api/schools?stage=pilot").json() == [r for r in overdue if r["state"] == "pilot"]


def test_api_action_through_the_engine(site: Site) -> None:
    with transaction(sessions(site.engine)) as s:
        set_fact(s, site.clock, school_code=SCHOOL, name="plan_filed", value=1, actor=COUNTY_OFFICER)
        set_fact(s, site.clock, school_code=SCHOOL, name="team_members", value=4, actor=COUNTY_OFFICER)
    client = site.as_user("county")
    headers = {"X-CSRF-Token": client.get("/api/me").json()["csrf"]}
    r = client.post(f"/api/schools/{SCHOOL}/actions/advance", json={}, headers=headers)
    assert r.status_code == 200 and r.json()["to_state"] == "online_study"
    r = client.post(f"/api/schools/{SCHOOL}/actions/return_for_rework", json={}, headers=headers)
    assert r.status_code == 400 and "理由" in r.json()["error"]  # the engine's rule, as a message
    r = client.post(f"/api/schools/{SCHOOL}/actions/return_for_rework", json={"reason": "缺材料", "version": 1},
                    headers=headers)
    assert r.status_code == 409
    r = client.post(f"/api/schools/{SCHOOL}/actions/return_for_rework", json={"reason": "缺材料"}, headers=headers)
    assert r.status_code == 200 and r.json()["to_state"] == "planning"
    with transaction(sessions(site.engine)) as s:
        last = events_of(s, SCHOOL)[-1]
    assert (last.actor, last.trigger, last.reason) == ("county", "return_for_rework", "缺材料")
    events = client.get(f"/api/audit?school={SCHOOL}&trigger=return_for_rework").json()
    assert [e["reason"] for e in events["events"]] == ["缺材料"] and events["chains"]["ok"] is True


def test_api_rejects_bad_bodies(site: Site) -> None:
    client = site.as_user("county")
    headers = {"X-CSRF-Token": client.get("/api/me").json()["csrf"], "content-type": "application/json"}
    assert client.post(f"/api/schools/{SCHOOL}/actions/advance", content=b"{nope", headers=headers).status_code == 400
    assert client.post(f"/api/schools/{SCHOOL}/actions/advance", content=b"[1]", headers=headers).status_code == 400


def test_openapi_describes_the_api(site: Site) -> None:
    spec = site.client().get("/api/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    for path in ("/api/overview", "/api/overdue", "/api/schools/{code}", "/api/schools/{code}/actions/{trigger}",
                 "/api/audit", "/api/audit.csv", "/api/me"):
        assert path in paths, path
    assert "post" in paths["/api/schools/{code}/actions/{trigger}"]
    assert not any(p.startswith("/schools") for p in paths)  # pages are not part of the API


def test_audit_pagination_and_date_filters(site: Site) -> None:
    client = site.as_user("city")
    token = client.get("/api/me").json()["csrf"]
    for i in range(50):  # with the six start events: 56, two pages
        trigger = "suspend" if i % 2 == 0 else "resume"
        r = client.post(f"/api/schools/{SCHOOL}/actions/{trigger}", json={"reason": f"r{i}"},
                        headers={"X-CSRF-Token": token})
        assert r.status_code == 200
    first = client.get("/api/audit").json()
    assert len(first["events"]) == 50 and first["more"] is True and first["total"] == 56
    assert first["events"][0]["reason"] == "r49"  # newest first
    ids = [e["id"] for e in first["events"]]
    assert ids == sorted(ids, reverse=True)
    second = client.get("/api/audit?page=2").json()
    assert second["more"] is False and second["events"][0]["id"] < first["events"][-1]["id"]
    assert first["events"][0]["actor_name"] == "用户city"  # the display name, not the username
    page = client.get("/audit?page=2").text
    assert "第 2 / 2 页" in page and "共 56 条" in page and "审计记录完整" in page
    assert client.get("/api/audit?since=2021-07-02").json()["events"] == []
    assert len(client.get("/api/audit?until=2021-07-01&actor=city").json()["events"]) == 50
    assert client.get("/api/audit?since=not-a-date").status_code == 400


def test_batch_progress_against_the_plan(site: Site) -> None:
    batches = site.as_user("county").get("/api/overview").json()["batches"]
    # Yiyuan's five schools: pilot 1, early 2, rest 2 (the sixth school is in another county)
    assert [(b["code"], b["schools"], b["planned_share"]) for b in batches] == [("b1", 1, 0.2), ("b2", 2, 0.4), ("b3", 2, 0.4)]
    assert [b["share"] for b in batches] == [0.2, 0.4, 0.4] and all(b["done"] == 0 for b in batches)
    assert [b["schools"] for b in site.as_user("city").get("/api/overview").json()["batches"]] == [1, 3, 2]
    assert "20%" in site.as_user("county").get("/").text


def test_overdue_sorts(site: Site) -> None:
    """On 2021-10-20 the early batch (due 09-30) is 20 days overdue, the rest (30 working days
    from 09-01: 10-13) 7 days, the pilot (due 12-31) not at all, and the other county's school,
    extended to 10-15, 5 days: every sort gives a different order."""
    with transaction(sessions(site.engine)) as s:
        fire(s, site.clock, school_code=OTHER, trigger="extend", actor=COUNTY_OFFICER, reason="校舍改造",
             due=date(2021, 10, 15))
    site.clock.set(datetime(2021, 10, 20, 9, 0, tzinfo=SHANGHAI))
    client = site.as_user("city")

    def listed(query: str) -> list[tuple[str, int]]:
        return [(r["school_code"], r["days_overdue"]) for r in client.get(f"/api/schools{query}").json()]

    yiyuan = [(EARLY[0], 20), (EARLY[1], 20), (LATE[0], 7), (LATE[1], 7), (PILOT, 0)]
    assert listed("") == [*yiyuan[:4], (OTHER, 5), (PILOT, 0)]  # most overdue first
    assert listed("?sort=school") == sorted([*yiyuan, (OTHER, 5)])
    assert listed("?sort=county") == [(OTHER, 5), *yiyuan]  # 淄川区 370302, then 沂源县 370323


def test_overdue_pages(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """A province's list is paged in SQL: pages are disjoint, cover everything, and the total is told."""
    client = site.as_user("city")
    everything = client.get("/api/schools?sort=school")
    total = int(everything.headers["X-Total-Count"])
    assert total == len(everything.json()) >= 3
    monkeypatch.setattr(lists, "LIST_PAGE", 2)
    pages = [client.get(f"/api/schools?sort=school&page={p}") for p in (1, 2, 3, 4)]
    assert [len(p.json()) for p in pages][:2] == [2, 2 if total >= 4 else total - 2]
    assert all(p.headers["X-Total-Count"] == str(total) for p in pages)
    assert [r for p in pages for r in p.json()] == everything.json()
    html = client.get("/schools?page=1").text
    assert "page=2" in html and f"共 {total} 所" in html
