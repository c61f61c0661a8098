"""API 令牌 in the web: an office issues (shown once), lists and revokes its platforms' tokens,
scoped like accounts, audited, CSRF-protected; the token works on the import API until revoked."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from engine.db import sessions, transaction
from engine.models import AuditEvent, User
from engine.records import ApiToken
from tests.engine.builders import CITY, COUNTY, OTHER_COUNTY
from tests.web.conftest import Site, csrf_of

ROWS = {"rows": [{"教师编号": "T1", "姓名": "张", "学校标识码": "3703230002", "线上学时": "30",
                  "校本实践学时": "28", "能力点": "1,5,9", "提交作品数": "3", "测评结果": "合格"}]}


def issued(html: str) -> str:
    match = re.search(r'<p class="flash ok" id="issued">.*?<code class="hash">([^<]+)</code>', html, re.S)
    assert match, "no token shown"
    return match.group(1)


def issue(client, name: str, role: str = "county_office", scope: str = COUNTY):  # type: ignore[no-untyped-def]
    page = client.get("/tokens")
    return client.post("/tokens", data={"csrf": csrf_of(page.text), "name": name, "role": role, "scope": scope,
                                        "days": "30"})


def test_a_county_issues_a_token_shown_once_that_imports_until_revoked(site: Site) -> None:
    county = site.as_user("county")
    r = issue(county, "county-platform")
    assert r.status_code == 200
    token = issued(r.text)
    assert token.startswith("rlt_")
    listing = county.get("/tokens").text
    assert "county-platform" in listing and token[:12] in listing and token not in listing  # never again
    api = site.client()
    headers = {"Authorization": f"Bearer {token}"}
    assert api.post("/api/imports/progress?dry_run=1", json=ROWS, headers=headers).status_code == 200
    with transaction(sessions(site.engine)) as s:
        account = s.scalars(select(User).where(User.username == "county-platform")).one()
        assert (account.role, account.scope_code) == ("county_office", COUNTY)
        assert s.scalars(select(ApiToken.token_hash)).one() != token  # stored hashed
        events = s.scalars(select(AuditEvent).where(AuditEvent.chain == f"user:{account.id}")).all()
        assert [(e.trigger, e.actor) for e in events] == [("token_add", "county")]
        assert token not in (events[0].reason or "") and token[:12] in (events[0].reason or "")
    page = county.get("/tokens")
    r = county.post("/tokens/county-platform/revoke", data={"csrf": csrf_of(page.text), "prefix": token[:12]})
    assert r.status_code == 303
    assert "已吊销" in county.get("/tokens").text
    assert api.post("/api/imports/progress?dry_run=1", json=ROWS, headers=headers).status_code == 401
    with transaction(sessions(site.engine)) as s:
        assert s.scalar(select(AuditEvent.trigger).where(AuditEvent.trigger == "token_revoke")) == "token_revoke"


@pytest.mark.parametrize(("role", "scope"), [("city_office", CITY), ("county_office", OTHER_COUNTY)])
def test_nothing_above_the_offices_own_role_or_scope(site: Site, role: str, scope: str) -> None:
    county = site.as_user("county")
    assert issue(county, "too-high", role, scope).status_code == 403
    with transaction(sessions(site.engine)) as s:
        assert s.scalar(select(User).where(User.username == "too-high")) is None


def test_another_countys_tokens_are_neither_listed_nor_revocable(site: Site) -> None:
    token = issued(issue(site.as_user("county"), "county-platform").text)
    other = site.as_user("other")
    assert "county-platform" not in other.get("/tokens").text
    page = other.get("/tokens")
    r = other.post("/tokens/county-platform/revoke", data={"csrf": csrf_of(page.text), "prefix": token[:12]})
    assert r.status_code == 404
    # Nor can it issue itself a token of the county's service account.
    assert issue(other, "county-platform", "county_office", OTHER_COUNTY).status_code == 404
    province = site.as_user("prov")
    assert "county-platform" in province.get("/tokens").text  # the province manages its whole region


def test_a_persons_account_gets_no_token(site: Site) -> None:
    province = site.as_user("prov")
    r = issue(province, "county")
    assert r.status_code == 303 and r.headers["location"] == "/tokens"
    assert "不是服务账号" in province.get("/tokens").text


@pytest.mark.parametrize("user", ["school", "sup"])
def test_schools_and_supervisors_have_no_token_page(site: Site, user: str) -> None:
    client = site.as_user(user)
    assert client.get("/tokens").status_code == 403
    assert issue_raw(client).status_code == 403


def issue_raw(client):  # type: ignore[no-untyped-def]
    page = client.get("/")
    return client.post("/tokens", data={"csrf": csrf_of(page.text), "name": "x", "role": "school_admin",
                                        "scope": "3703230002"})


def test_without_csrf_or_signed_out_nothing_is_issued(site: Site) -> None:
    county = site.as_user("county")
    r = county.post("/tokens", data={"name": "no-csrf", "role": "county_office", "scope": COUNTY})
    assert r.status_code in (400, 403)
    anonymous = site.client()
    r = anonymous.post("/tokens", data={"name": "anon", "role": "county_office", "scope": COUNTY})
    assert r.status_code in (303, 401, 403)
    with transaction(sessions(site.engine)) as s:
        assert s.scalars(select(ApiToken)).all() == []
