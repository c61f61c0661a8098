"""Extension requests through the web: a school asks, the county approves or refuses, all audited."""

from __future__ import annotations

from engine.db import sessions, transaction
from tests.engine.builders import EARLY, OTHER, events_of
from tests.web.conftest import Site, csrf_of

SCHOOL = EARLY[0]


def test_school_requests_and_county_approves(site: Site) -> None:
    school = site.as_user("school")
    page = school.get(f"/schools/{SCHOOL}")
    r = school.post(f"/schools/{SCHOOL}/extension/request",
                    data={"csrf": csrf_of(page.text), "due": "2021-10-31", "reason": "疫情停课"})
    assert r.status_code == 303
    county = site.as_user("county")
    page = county.get(f"/schools/{SCHOOL}")
    assert "疫情停课" in page.text and "2021-10-31" in page.text
    r = county.post(f"/schools/{SCHOOL}/extension/approve", data={"csrf": csrf_of(page.text), "reason": "同意"})
    assert r.status_code == 303
    with transaction(sessions(site.engine)) as s:
        last = events_of(s, SCHOOL)[-1]
    assert (last.actor, last.trigger) == ("county", "extend") and "同意" in (last.reason or "")
    assert "2021-10-31" in county.get(f"/schools/{SCHOOL}").text


def test_refusal_and_refused_requests_are_messages(site: Site) -> None:
    county = site.as_user("county")
    token = csrf_of(county.get("/").text)
    county.post(f"/schools/{SCHOOL}/extension/approve", data={"csrf": token, "reason": "x"})
    assert "没有待审批" in county.get(f"/schools/{SCHOOL}").text
    api_token = county.get("/api/me").json()["csrf"]
    r = county.post(f"/api/schools/{SCHOOL}/extension/request", json={"due": "2023-06-30", "reason": "晚"},
                    headers={"X-CSRF-Token": api_token})
    assert r.status_code == 400 and "2022-12-31" in r.json()["error"]  # past the plan's cap
    r = county.post(f"/api/schools/{SCHOOL}/extension/request", json={"due": "2021-10-31", "reason": "晚"},
                    headers={"X-CSRF-Token": api_token})
    assert r.status_code == 200
    r = county.post(f"/api/schools/{SCHOOL}/extension/refuse", json={"reason": "材料不全"},
                    headers={"X-CSRF-Token": api_token})
    assert r.status_code == 200
    with transaction(sessions(site.engine)) as s:
        assert events_of(s, SCHOOL)[-1].trigger == "extension_refuse"


def test_scope_and_read_only_hold_for_extensions(site: Site) -> None:
    county = site.as_user("county")
    token = csrf_of(county.get("/").text)
    r = county.post(f"/schools/{OTHER}/extension/request", data={"csrf": token, "due": "2021-10-31", "reason": "x"})
    assert r.status_code == 404
    sup = site.as_user("sup")
    r = sup.post(f"/schools/{SCHOOL}/extension/request",
                 data={"csrf": csrf_of(sup.get("/").text), "due": "2021-10-31", "reason": "x"})
    assert r.status_code == 403
    assert county.post(f"/schools/{SCHOOL}/extension/request", data={"due": "2021-10-31", "reason": "x"}).status_code == 403
