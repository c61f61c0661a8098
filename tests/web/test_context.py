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


# --- hardening (issue 12) ---------------------------------------------------------------------------

import pytest  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from engine.accounts import set_password  # noqa: E402


def _cookies(client: TestClient) -> dict[str, str]:
    return {name: value for name, value in client.cookies.items()}


def test_replayed_cookie_after_logout_is_refused(site: Site) -> None:
    """A cookie copied before logout used to work afterwards (200): the session is ended server-side."""
    client = site.as_user("county")
    stolen = _cookies(client)
    client.post("/logout", data={"csrf": csrf_of(client.get("/").text)})
    replay = site.client()
    replay.cookies.update(stolen)
    r = replay.get("/")
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert replay.get("/api/overview").status_code == 401


def test_old_session_ends_when_the_password_changes(site: Site) -> None:
    client = site.as_user("county")
    other_device = site.as_user("county")
    assert client.get("/").status_code == 200
    with transaction(sessions(site.engine)) as s:
        set_password(s, "county", "cobalt-heron-vale")  # what `rollout users passwd` runs
    assert client.get("/").status_code == 303
    assert other_device.get("/api/me").status_code == 401


def test_signing_in_again_starts_a_fresh_server_side_session(site: Site) -> None:
    client = site.as_user("county")
    first = _cookies(client)
    site.login(client, "county")
    assert client.get("/").status_code == 200
    old = site.client()
    old.cookies.update(first)  # the first session was never ended: it still holds
    assert old.get("/").status_code == 200


@pytest.mark.parametrize("path", ["/login", "/", "/overdue", "/audit", "/audit.csv", "/api/overview", f"/schools/{SCHOOL}"])
def test_every_response_has_the_security_headers(site: Site, path: str) -> None:
    client = site.client() if path == "/login" else site.as_user("county")
    r = client.get(path)
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "same-origin"
    assert r.headers["cache-control"] == "no-store"


def test_static_files_may_be_cached_but_keep_the_headers(site: Site) -> None:
    r = site.client().get("/static/style.css")
    assert r.status_code == 200 and r.headers["x-content-type-options"] == "nosniff"
    assert r.headers.get("cache-control") != "no-store"


@pytest.mark.parametrize("query", ["page=" + "1" * 23, "page=0", "page=abc", "min_days=" + "1" * 15, "min_days=-3",
                                   "until=9999-12-31", "since=0001-01-01", "since=2021-13-01"])
@pytest.mark.parametrize("path", ["/overdue", "/audit", "/api/overdue", "/api/audit", "/audit.csv"])
def test_out_of_range_query_parameters_are_a_400_with_a_message(site: Site, path: str, query: str) -> None:
    """page=10**23, min_days=10**14, until=9999-12-31 and since=0001-01-01 were 500s."""
    client = site.as_user("county")
    r = client.get(f"{path}?{query}")
    assert r.status_code == 400, r.text
    name = query.split("=")[0]
    assert name in r.text


def test_oversized_body_is_refused_before_it_is_read(site: Site) -> None:
    """A 20,000,000-character note was accepted through the facts API; the body itself is capped."""
    client = site.as_user("county")
    token = client.get("/api/me").json()["csrf"]
    r = client.post(f"/api/schools/{SCHOOL}/facts", json={"name": "plan_filed", "value": 1, "note": "注" * 200_000},
                    headers={"X-CSRF-Token": token})
    assert r.status_code == 413
    r = client.post(f"/schools/{SCHOOL}/facts", data={"name": "plan_filed", "value": "1", "note": "x" * 100_000,
                                                      "csrf": csrf_of(client.get(f"/schools/{SCHOOL}").text)})
    assert r.status_code == 413
    with transaction(sessions(site.engine)) as s:
        assert not [e for e in events_of(s, SCHOOL) if e.trigger.startswith("fact:")]


def test_an_overlong_note_through_the_api_is_a_400_and_writes_nothing(site: Site) -> None:
    client = site.as_user("county")
    token = client.get("/api/me").json()["csrf"]
    r = client.post(f"/api/schools/{SCHOOL}/facts", json={"name": "plan_filed", "value": 1, "note": "注" * 2001},
                    headers={"X-CSRF-Token": token})
    assert r.status_code == 400 and "备注太长" in r.json()["error"]
    r = client.post(f"/api/schools/{SCHOOL}/facts", json={"name": "team_members", "value": 1e308},
                    headers={"X-CSRF-Token": token})
    assert r.status_code == 400 and "0 到 50" in r.json()["error"]
    with transaction(sessions(site.engine)) as s:
        assert not [e for e in events_of(s, SCHOOL) if e.trigger.startswith("fact:")]


def test_escapes_in_a_web_form_reason_are_not_stored(site: Site) -> None:
    client = site.as_user("county")
    client.post(f"/schools/{SCHOOL}/actions/suspend",
                data={"reason": "\x1b[2J停课\x1b]0;x\x07", "csrf": csrf_of(client.get(f"/schools/{SCHOOL}").text)})
    with transaction(sessions(site.engine)) as s:
        assert events_of(s, SCHOOL)[-1].reason == "停课"
