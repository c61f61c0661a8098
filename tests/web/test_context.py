"""Sessions, CSRF, lock-out and errors: the checks every request goes through."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from engine.db import sessions, transaction
from engine.facts import set_fact
from engine.models import AuditEvent
from tests.engine.builders import COUNTY_OFFICER, EARLY, events_of
from tests.web.conftest import PASSWORD, Site, csrf_of

SCHOOL = EARLY[0]


def test_session_cookie_is_httponly_and_samesite_strict(site: Site) -> None:
    client = site.client()
    page = client.get("/login")
    r = client.post("/login", data={"username": "county", "password": PASSWORD, "csrf": csrf_of(page.text)})
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


def test_post_without_csrf_token_is_refused(site: Site) -> None:
    with transaction(sessions(site.engine)) as s:
        before = len(events_of(s, SCHOOL))
    client = site.as_user("county")
    r = client.post(f"/schools/{SCHOOL}/actions/suspend", data={"reason": "停课"})
    assert r.status_code == 403
    r = client.post(f"/schools/{SCHOOL}/actions/suspend", data={"reason": "停课", "csrf": "forged"})
    assert r.status_code == 403
    r = client.post(f"/api/schools/{SCHOOL}/actions/suspend", json={"reason": "停课"})
    assert r.status_code == 403
    assert client.post("/logout").status_code == 403
    fresh = site.client()
    fresh.get("/login")
    assert fresh.post("/login", data={"username": "county", "password": PASSWORD}).status_code == 403
    with transaction(sessions(site.engine)) as s:
        assert len(events_of(s, SCHOOL)) == before


def test_expired_session_redirects_to_login(site: Site) -> None:
    client = site.as_user("county")
    assert client.get("/").status_code == 200
    site.clock.advance(timedelta(hours=8, minutes=1))
    r = client.get("/")
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert client.get("/api/overview").status_code == 401
    site.clock.advance(timedelta(minutes=-30))  # the session was cleared, not just judged old
    assert client.get("/").status_code == 303


def test_logout_ends_the_session(site: Site) -> None:
    client = site.as_user("county")
    r = client.post("/logout", data={"csrf": csrf_of(client.get("/").text)})
    assert r.status_code == 303
    assert client.get("/").status_code == 303


def test_lock_out_after_five_failures_for_fifteen_minutes(site: Site) -> None:
    client = site.client()
    token = csrf_of(client.get("/login").text)
    for _ in range(5):
        r = client.post("/login", data={"username": "county", "password": "wrong", "csrf": token})
        assert r.status_code == 401
    r = client.post("/login", data={"username": "county", "password": PASSWORD, "csrf": token})
    assert r.status_code == 401 and "锁定" in r.text
    site.clock.advance(timedelta(minutes=14))
    assert client.post("/login", data={"username": "county", "password": PASSWORD, "csrf": token}).status_code == 401
    site.clock.advance(timedelta(minutes=2))
    assert client.post("/login", data={"username": "county", "password": PASSWORD, "csrf": token}).status_code == 303


def test_disabled_user_loses_access(site: Site) -> None:
    from engine.accounts import disable_user

    client = site.as_user("county")
    with transaction(sessions(site.engine)) as s:
        disable_user(s, "county")
    assert client.get("/").status_code == 303


def test_return_for_rework_through_the_web_is_audited_as_the_web_user(site: Site) -> None:
    with transaction(sessions(site.engine)) as s:
        set_fact(s, site.clock, school_code=SCHOOL, name="plan_filed", value=1, actor=COUNTY_OFFICER)
        set_fact(s, site.clock, school_code=SCHOOL, name="team_members", value=4, actor=COUNTY_OFFICER)
    client = site.as_user("county")
    page = client.get(f"/schools/{SCHOOL}")
    r = client.post(f"/schools/{SCHOOL}/actions/advance", data={"csrf": csrf_of(page.text)})
    assert r.status_code == 303
    page = client.get(f"/schools/{SCHOOL}")
    assert "已执行“推进到下一阶段”：制定规划 → 网络研修" in page.text  # the flash message, in words
    assert "<td>推进到下一阶段</td><td>制定规划 → 网络研修</td>" in page.text  # and the history
    r = client.post(f"/schools/{SCHOOL}/actions/return_for_rework",
                    data={"csrf": csrf_of(page.text), "reason": "规划未备案"})
    assert r.status_code == 303
    with transaction(sessions(site.engine)) as s:
        last = s.scalars(select(AuditEvent).where(AuditEvent.school_code == SCHOOL)
                         .order_by(AuditEvent.id.desc())).first()
    assert last is not None
    assert (last.actor, last.role, last.trigger, last.reason) == ("county", "county_office", "return_for_rework", "规划未备案")
    assert (last.from_state, last.to_state) == ("online_study", "planning")
    audit = client.get(f"/audit?school={SCHOOL}")
    assert "规划未备案" in audit.text


def test_engine_refusal_is_shown_as_a_message(site: Site) -> None:
    with transaction(sessions(site.engine)) as s:
        before = len(events_of(s, SCHOOL))
    client = site.as_user("county")
    r = client.post(f"/schools/{SCHOOL}/actions/advance", data={"csrf": csrf_of(client.get("/").text)})
    assert r.status_code == 303 and r.headers["location"] == f"/schools/{SCHOOL}"
    page = client.get(f"/schools/{SCHOOL}")
    assert "关卡未通过" in page.text
    r = client.post(f"/schools/{SCHOOL}/actions/return_for_rework", data={"csrf": csrf_of(page.text)})
    assert "不能执行" in client.get(f"/schools/{SCHOOL}").text  # not allowed from planning
    with transaction(sessions(site.engine)) as s:
        assert len(events_of(s, SCHOOL)) == before


def test_stale_form_is_refused(site: Site) -> None:
    client = site.as_user("county")
    page = client.get(f"/schools/{SCHOOL}")
    token = csrf_of(page.text)
    client.post(f"/schools/{SCHOOL}/actions/suspend", data={"csrf": token, "reason": "a", "version": "1"})
    client.post(f"/schools/{SCHOOL}/actions/resume", data={"csrf": token, "version": "1"})
    assert "已被他人修改" in client.get(f"/schools/{SCHOOL}").text


def test_extend_through_the_web(site: Site) -> None:
    client = site.as_user("county")
    token = csrf_of(client.get("/").text)
    r = client.post(f"/schools/{SCHOOL}/actions/extend", data={"csrf": token, "reason": "疫情", "due": "2021-10-20"})
    assert r.status_code == 303
    assert "2021-10-20" in client.get(f"/schools/{SCHOOL}").text
    client.post(f"/schools/{SCHOOL}/actions/extend", data={"csrf": token, "reason": "x", "due": "20/10/2021"})
    assert "不是日期" in client.get(f"/schools/{SCHOOL}").text
