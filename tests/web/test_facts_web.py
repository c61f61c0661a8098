"""Recording school facts through the web and the API: the workflow's fact roles decide who may,
the scope decides which schools, and supervisors record only what the workflow grants them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from engine.db import sessions, transaction
from engine.models import AuditEvent, Plan, SchoolFact, SchoolRun
from engine.plan import load_plan
from tests.engine.builders import (
    EARLY,
    OTHER,
    event_count,
    events_of,
    plan_data,
    run_of,
    write_plan,
)
from tests.web.conftest import Site, csrf_of

SCHOOL = EARLY[0]  # county 370323; the "school" user's school
FOREIGN = OTHER  # county 370302


def _options(html: str) -> list[str]:
    """The fact names the record-fact form offers (empty when the form is not shown)."""
    form = re.search(r'<form method="post" action="/schools/\d+/facts".*?</form>', html, re.S)
    return re.findall(r'<option value="([^"]+)"', form.group(0)) if form else []


def _api_token(client: TestClient) -> dict[str, str]:
    return {"X-CSRF-Token": client.get("/api/me").json()["csrf"]}


def _fact_events(site: Site, code: str = SCHOOL) -> list[tuple[str, str, str, str | None]]:
    with transaction(sessions(site.engine)) as s:
        return [(e.actor, e.role, e.trigger, e.reason) for e in events_of(s, code) if e.trigger.startswith("fact:")]


def _fact_value(site: Site, name: str, code: str = SCHOOL) -> float | None:
    with transaction(sessions(site.engine)) as s:
        fact = s.get(SchoolFact, (run_of(s, code).id, name))
        return None if fact is None else fact.value


def test_county_records_a_fact_from_the_school_page(site: Site) -> None:
    client = site.as_user("county")
    page = client.get(f"/schools/{SCHOOL}")
    assert "记录事实" in page.text and "选择事实项" in page.text
    # the facts the planning stage's gates test come first, marked; then the rest (for rework)
    assert _options(page.text) == ["plan_filed", "team_members", "pilot_summary_filed", "assessment_entered",
                                   "county_spot_check_done", "supervision_result"]
    assert page.text.count("本阶段需要") == 2
    r = client.post(f"/schools/{SCHOOL}/facts",
                    data={"csrf": csrf_of(page.text), "name": "plan_filed", "value": "1", "note": "规划已审核备案"})
    assert r.status_code == 303 and r.headers["location"] == f"/schools/{SCHOOL}"
    page = client.get(f"/schools/{SCHOOL}")
    assert "已记录 学校发展规划已审核备案 = 1" in page.text and "当前 1" in page.text
    assert _fact_events(site) == [("county", "county_office", "fact:plan_filed", "规划已审核备案")]
    client.post(f"/schools/{SCHOOL}/facts", data={"csrf": csrf_of(page.text), "name": "plan_filed", "value": "1"})
    assert "学校发展规划已审核备案 = 1（未变化）" in client.get(f"/schools/{SCHOOL}").text
    assert len(_fact_events(site)) == 1  # the same value again writes no event


def test_supervisor_records_the_supervision_result_and_nothing_else(site: Site) -> None:
    sup = site.as_user("sup")
    page = sup.get(f"/schools/{SCHOOL}")
    # the school is in planning: the form offers a supervisor nothing (督导考核结果 is for supervision)
    assert _options(page.text) == [] and "记录事实" not in page.text
    assert "/actions/" not in page.text and "/extension/" not in page.text  # still read-only otherwise
    token = csrf_of(page.text)
    r = sup.post(f"/schools/{SCHOOL}/facts", data={"csrf": token, "name": "supervision_result", "value": "1",
                                                   "note": "督导考核通过"})
    assert r.status_code == 303
    assert _fact_value(site, "supervision_result") == 1
    r = sup.post(f"/schools/{SCHOOL}/facts", data={"csrf": token, "name": "plan_filed", "value": "1"})
    assert r.status_code == 403 and "不能记录事实项“plan_filed”" in r.text and "县级项目办" in r.text
    r = sup.post(f"/schools/{SCHOOL}/actions/advance", data={"csrf": token})
    assert r.status_code == 403
    headers = _api_token(sup)
    r = sup.post(f"/api/schools/{SCHOOL}/facts", json={"name": "supervision_result", "value": 0}, headers=headers)
    assert r.status_code == 200 and r.json() == {"school_code": SCHOOL, "name": "supervision_result",
                                                  "title": "督导考核结果（1=通过）", "value": 0, "changed": True}
    r = sup.post(f"/api/schools/{SCHOOL}/facts", json={"name": "plan_filed", "value": 1}, headers=headers)
    assert r.status_code == 403 and "plan_filed" in r.json()["error"]
    for trigger in ("advance", "return_for_rework", "suspend", "extend"):
        r = sup.post(f"/api/schools/{SCHOOL}/actions/{trigger}", json={"reason": "x", "due": "2021-12-01"}, headers=headers)
        assert r.status_code == 403, trigger
    assert _fact_value(site, "plan_filed") is None
    assert _fact_events(site) == [("sup", "supervisor", "fact:supervision_result", "督导考核通过"),
                                  ("sup", "supervisor", "fact:supervision_result", None)]


@pytest.mark.parametrize(("username", "fact"), [("city", "plan_filed"), ("prov", "plan_filed"),
                                                ("school", "county_spot_check_done"), ("school", "supervision_result")])
def test_roles_the_workflow_does_not_name_get_403(site: Site, username: str, fact: str) -> None:
    client = site.as_user(username)
    page = client.get(f"/schools/{SCHOOL}")
    assert fact not in _options(page.text)
    r = client.post(f"/schools/{SCHOOL}/facts", data={"csrf": csrf_of(page.text), "name": fact, "value": "1"})
    assert r.status_code == 403
    r = client.post(f"/api/schools/{SCHOOL}/facts", json={"name": fact, "value": 1}, headers=_api_token(client))
    assert r.status_code == 403
    assert _fact_events(site) == []


def test_each_role_is_offered_exactly_its_facts(site: Site) -> None:
    offered = {u: [f["name"] for f in site.as_user(u).get(f"/api/schools/{SCHOOL}/facts").json()]
               for u in ("prov", "city", "county", "school", "sup")}
    assert offered == {
        "prov": [],
        "city": ["supervision_result"],
        "county": ["pilot_summary_filed", "plan_filed", "team_members", "assessment_entered",
                   "county_spot_check_done", "supervision_result"],
        "school": ["team_members", "assessment_entered"],
        "sup": ["supervision_result"],
    }
    assert "记录事实" not in site.as_user("prov").get(f"/schools/{SCHOOL}").text  # no form without a fact to offer


def test_school_admin_records_their_team(site: Site) -> None:
    client = site.as_user("school")
    page = client.get(f"/schools/{SCHOOL}")
    assert _options(page.text) == ["team_members", "assessment_entered"]
    r = client.post(f"/schools/{SCHOOL}/facts", data={"csrf": csrf_of(page.text), "name": "team_members", "value": "4"})
    assert r.status_code == 303 and _fact_value(site, "team_members") == 4
    listed = client.get(f"/api/schools/{SCHOOL}/facts").json()
    assert listed[0]["name"] == "team_members" and listed[0]["value"] == 4 and listed[0]["recorded_by"] == "school"
    r = client.post(f"/schools/{EARLY[1]}/facts", data={"csrf": csrf_of(page.text), "name": "team_members", "value": "4"})
    assert r.status_code == 404  # another school of the same county


def test_other_region_is_404_and_writes_nothing(site: Site) -> None:
    with transaction(sessions(site.engine)) as s:
        before = event_count(s)
    for username in ("county", "sup"):
        client = site.as_user(username)
        token = csrf_of(client.get("/").text)
        r = client.post(f"/schools/{FOREIGN}/facts", data={"csrf": token, "name": "supervision_result", "value": "1"})
        assert r.status_code == 404, username
        headers = _api_token(client)
        r = client.post(f"/api/schools/{FOREIGN}/facts", json={"name": "supervision_result", "value": 1}, headers=headers)
        assert r.status_code == 404, username
        assert client.get(f"/api/schools/{FOREIGN}/facts").status_code == 404
        r = client.post("/api/schools/3703239999/facts", json={"name": "plan_filed", "value": 1}, headers=headers)
        assert r.status_code == 404  # a school that does not exist answers the same
    with transaction(sessions(site.engine)) as s:
        assert event_count(s) == before


def test_missing_or_wrong_csrf_is_refused(site: Site) -> None:
    for username in ("county", "sup"):
        client = site.as_user(username)
        r = client.post(f"/schools/{SCHOOL}/facts", data={"name": "supervision_result", "value": "1"})
        assert r.status_code == 403 and "CSRF" in r.text
        r = client.post(f"/schools/{SCHOOL}/facts", data={"csrf": "forged", "name": "supervision_result", "value": "1"})
        assert r.status_code == 403
        r = client.post(f"/api/schools/{SCHOOL}/facts", json={"name": "supervision_result", "value": 1})
        assert r.status_code == 403
    with transaction(sessions(site.engine)) as s:
        assert s.scalar(select(AuditEvent.id).where(AuditEvent.trigger.like("fact:%"))) is None


@pytest.mark.parametrize(("body", "needle"), [
    ({"name": "plan_filed"}, "value"),
    ({"name": "plan_filed", "value": "yes"}, "value"),
    ({"name": "plan_filed", "value": "nan"}, "value"),
    ({"name": "plan_filed", "value": None}, "value"),
    ({"value": 1}, "事实项"),
    ({"name": "online_hours", "value": 1}, "没有事实项“online_hours”"),
])
def test_bad_input_is_400_with_a_message(site: Site, body: dict[str, object], needle: str) -> None:
    client = site.as_user("county")
    r = client.post(f"/api/schools/{SCHOOL}/facts", json=body, headers=_api_token(client))
    assert r.status_code == 400 and needle in r.json()["error"]
    assert _fact_events(site) == []


def test_page_shows_bad_input_as_a_message_and_speaks_english(site: Site) -> None:
    client = site.as_user("county")
    page = client.get(f"/schools/{SCHOOL}?lang=en")
    assert "Record a fact" in page.text and "<label>Fact" in page.text
    r = client.post(f"/schools/{SCHOOL}/facts", data={"csrf": csrf_of(page.text), "name": "plan_filed", "value": "abc"})
    assert r.status_code == 303
    assert "value is not a number: abc" in client.get(f"/schools/{SCHOOL}").text
    r = client.post(f"/schools/{SCHOOL}/facts", data={"csrf": csrf_of(page.text), "name": "team_members", "value": "3.0"})
    assert "recorded School IT management team members = 3" in client.get(f"/schools/{SCHOOL}").text
    sup = site.as_user("sup")
    r = sup.post(f"/api/schools/{SCHOOL}/facts?lang=en", json={"name": "plan_filed", "value": 1}, headers=_api_token(sup))
    assert r.json()["error"] == ("role supervisor may not record the fact 'plan_filed'; "
                                 "allowed: County project office (county_office)")


def test_a_recorded_fact_opens_the_gate(site: Site) -> None:
    """The web path is the engine's: facts recorded here are what the advance then tests."""
    client = site.as_user("county")
    headers = _api_token(client)
    assert client.post(f"/api/schools/{SCHOOL}/actions/advance", json={}, headers=headers).status_code == 400
    school = site.as_user("school")
    school.post(f"/api/schools/{SCHOOL}/facts", json={"name": "team_members", "value": 3}, headers=_api_token(school))
    client.post(f"/api/schools/{SCHOOL}/facts", json={"name": "plan_filed", "value": True}, headers=headers)
    r = client.post(f"/api/schools/{SCHOOL}/actions/advance", json={}, headers=headers)
    assert r.status_code == 200 and r.json()["to_state"] == "online_study"


def test_openapi_describes_the_fact_endpoints(site: Site) -> None:
    paths = site.client().get("/api/openapi.json").json()["paths"]
    facts = paths["/api/schools/{code}/facts"]
    assert set(facts) >= {"get", "post"}
    post = facts["post"]
    assert set(post["responses"]) == {"200", "400", "403", "404", "409"}
    assert post["requestBody"]["content"]["application/json"]["schema"]["required"] == ["name", "value"]


def test_with_two_plans_a_school_page_and_its_forms_work_in_the_plan_shown(site: Site, tmp_path: Path) -> None:
    """The 2.0 programme and a second plan holding the same schools: the page defaults to the newest
    plan holding the school, ``?plan=`` picks the other, and a form records in the plan it shows."""
    with transaction(sessions(site.engine)) as s:
        load_plan(s, write_plan(tmp_path, plan_data(plan="other-2022", year=2022), "other.yaml"), site.clock)
    client = site.as_user("county")
    assert client.get(f"/api/schools/{SCHOOL}").json()["plan"] == "other-2022"
    page = client.get(f"/schools/{SCHOOL}?plan=yiyuan-2021")
    assert page.status_code == 200 and '<input type="hidden" name="plan" value="yiyuan-2021">' in page.text
    r = client.post(f"/schools/{SCHOOL}/facts", data={"csrf": csrf_of(page.text), "name": "plan_filed", "value": "1",
                                                      "plan": "yiyuan-2021"})
    assert r.status_code == 303
    with transaction(sessions(site.engine)) as s:
        recorded = {code for code, in s.execute(
            select(Plan.code).join(SchoolRun, SchoolRun.plan_id == Plan.id).join(SchoolFact, SchoolFact.run_id == SchoolRun.id)
            .where(SchoolRun.school_code == SCHOOL, SchoolFact.name == "plan_filed"))}
    assert recorded == {"yiyuan-2021"}
    assert client.get(f"/schools/{SCHOOL}").status_code == 200  # no ?plan=: the newest, no "there are 2 plans"
