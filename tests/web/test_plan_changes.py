"""The plan's change history page and the per-school deadline override form (issue 15, web parts)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

from engine import edit_plan, override_deadline
from engine.db import sessions, transaction
from engine.runs import Actor
from tests.engine.builders import EARLY, OTHER, PROVINCE_OFFICER, events_of, plan_data, write_plan
from tests.web.conftest import Site, csrf_of

SCHOOL = EARLY[0]


def _override(site: Site, code: str, due: date, reason: str, actor: Actor) -> None:
    with transaction(sessions(site.engine)) as s:
        override_deadline(s, site.clock, school_code=code, stage="planning", due=due, reason=reason, actor=actor)


def _rows(html: str) -> list[str]:
    body = html.split('<tbody>', 1)[1].split('</tbody>', 1)[0]
    return re.findall(r"<tr>(.*?)</tr>", body, re.S)


def test_county_sets_a_deadline_and_it_shows_in_the_history(site: Site) -> None:
    county = site.as_user("county")
    page = county.get(f"/schools/{SCHOOL}")
    assert 'id="override"' in page.text and "单独设定截止日期" in page.text and "2021-09-30" in page.text
    r = county.post(f"/schools/{SCHOOL}/deadline",
                    data={"csrf": csrf_of(page.text), "stage": "planning", "due": "2021-10-15", "reason": "暴雨停课"})
    assert r.status_code == 303 and r.headers["location"] == f"/schools/{SCHOOL}"
    page = county.get(f"/schools/{SCHOOL}")
    assert "2021-10-15" in page.text and "2021-09-30" not in page.text.split('id="override"')[0]
    with transaction(sessions(site.engine)) as s:
        last = events_of(s, SCHOOL)[-1]
    assert (last.trigger, last.actor, last.reason) == ("deadline_override", "county", "暴雨停课")
    history = county.get("/plan/changes")
    assert history.status_code == 200
    rows = _rows(history.text)
    assert len(rows) == 1 and "单独设定截止日期" in rows[0] and "暴雨停课" in rows[0]
    assert "用户county" in rows[0] and "县级项目办" in rows[0]  # display name and role in words
    assert "制定规划 截止日期改为 2021-10-15" in rows[0]  # the stage in words, not its id
    assert "共 1 条" in history.text


def test_another_countys_override_is_never_listed_to_a_county_officer(site: Site) -> None:
    _override(site, OTHER, date(2021, 10, 20), "淄川区调整", Actor("other", "county_office"))
    _override(site, SCHOOL, date(2021, 10, 15), "沂源县调整", Actor("county", "county_office"))
    county = site.as_user("county").get("/plan/changes").text
    assert "沂源县调整" in county and "淄川区调整" not in county and OTHER not in county and "共 1 条" in county
    other = site.as_user("other").get("/plan/changes").text
    assert "淄川区调整" in other and "沂源县调整" not in other
    city = site.as_user("city").get("/plan/changes").text
    assert "淄川区调整" in city and "沂源县调整" in city and "共 2 条" in city
    school = site.as_user("school")
    mine = school.get("/plan/changes")
    assert mine.status_code == 200 and "沂源县调整" in mine.text and "淄川区调整" not in mine.text


def test_a_school_admin_and_a_supervisor_cannot_set_deadlines(site: Site) -> None:
    for name in ("school", "sup"):
        client = site.as_user(name)
        page = client.get(f"/schools/{SCHOOL}")
        assert page.status_code == 200 and 'id="override"' not in page.text
        r = client.post(f"/schools/{SCHOOL}/deadline",
                        data={"csrf": csrf_of(page.text), "stage": "planning", "due": "2021-10-15", "reason": "x"})
        assert r.status_code == 403, name
    with transaction(sessions(site.engine)) as s:
        assert all(e.trigger != "deadline_override" for e in events_of(s, SCHOOL))
    # The link is for offices and supervisors.
    assert 'href="/plan/changes"' in site.as_user("sup").get("/").text
    assert 'href="/plan/changes"' not in site.as_user("school").get(f"/schools/{SCHOOL}").text


def test_scope_csrf_and_refusals_of_the_form(site: Site) -> None:
    county = site.as_user("county")
    page = county.get(f"/schools/{SCHOOL}")
    token = csrf_of(page.text)
    r = county.post(f"/schools/{OTHER}/deadline", data={"csrf": token, "due": "2021-10-15", "reason": "x"})
    assert r.status_code == 404  # another county's school is not found for this officer
    r = county.post(f"/schools/{SCHOOL}/deadline", data={"due": "2021-10-15", "reason": "x"})
    assert r.status_code == 403  # no CSRF token
    r = county.post(f"/schools/{SCHOOL}/deadline", data={"csrf": token, "stage": "planning", "due": "2023-06-30", "reason": "x"})
    assert r.status_code == 303
    assert "2022-12-31" in county.get(f"/schools/{SCHOOL}").text  # past the plan's cap: the refusal, as a message
    r = county.post(f"/schools/{SCHOOL}/deadline", data={"csrf": token, "stage": "planning", "due": "2021-10-15", "reason": " "})
    assert r.status_code == 303 and "理由" in county.get(f"/schools/{SCHOOL}").text
    with transaction(sessions(site.engine)) as s:
        assert all(e.trigger != "deadline_override" for e in events_of(s, SCHOOL))


def test_a_plan_edit_shows_with_its_reason_and_diff_to_the_plans_office_only(site: Site, tmp_path: Path) -> None:
    path = write_plan(tmp_path / "..", plan_data(final_deadline="2022-10-31"), name="plan-edit.yaml")
    with transaction(sessions(site.engine)) as s:
        edit_plan(s, path, site.clock, reason="省厅通知提前结项", actor=PROVINCE_OFFICER, apply=True)
    city = site.as_user("city").get("/plan/changes").text
    rows = _rows(city)
    assert len(rows) == 1 and "修改实施方案" in rows[0] and "省厅通知提前结项" in rows[0]
    assert "最终截止日期" in rows[0] and "2022-11-30 → 2022-10-31" in rows[0] and "整个计划" in rows[0]
    # The plan's region is the city: a county officer sees its own schools' changes, not the plan's diff.
    assert "省厅通知提前结项" not in site.as_user("county").get("/plan/changes").text
    assert "省厅通知提前结项" in site.as_user("prov").get("/plan/changes").text


def test_the_history_is_paged_newest_first_with_a_total(site: Site) -> None:
    for day in range(1, 53):  # 52 overrides: a page of 50 and a page of 2
        _override(site, SCHOOL, date(2021, 8, 1) + timedelta(days=day), f"第{day}次",
                  Actor("county", "county_office"))
    county = site.as_user("county")
    first = county.get("/plan/changes").text
    rows = _rows(first)
    assert len(rows) == 50 and "第52次" in rows[0] and "第3次" in rows[-1]
    assert "共 52 条" in first and "1 / 2" in first and "page=2" in first
    second = _rows(county.get("/plan/changes?page=2").text)
    assert len(second) == 2 and "第2次" in second[0] and "第1次" in second[1]


def test_english(site: Site) -> None:
    _override(site, SCHOOL, date(2021, 10, 15), "flood", Actor("county", "county_office"))
    county = site.as_user("county")
    page = county.get("/plan/changes?lang=en").text
    assert "Plan change history" in page and "Deadline set for this school" in page and "due on 2021-10-15" in page
    assert "Set this school" in county.get(f"/schools/{SCHOOL}?lang=en").text
