"""账号管理 in the web: per role and scope; a reset password must be changed before anything else."""

from __future__ import annotations

import re
from io import BytesIO

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import select

from engine.db import sessions, transaction
from engine.models import AuditEvent, User
from tests.engine.builders import CITY, EARLY, OTHER
from tests.web.conftest import PASSWORD, Site, csrf_of


def temp_password(html: str) -> str:
    match = re.search(r"<code>([^<]+)</code>", html)
    assert match, "no temporary password shown"
    return match.group(1)


def test_county_adds_a_school_admin_who_must_change_the_password(site: Site) -> None:
    county = site.as_user("county")
    page = county.get("/accounts")
    assert page.status_code == 200 and "school" in page.text  # its school's admin is listed
    r = county.post("/accounts", data={"csrf": csrf_of(page.text), "username": "liu", "role": "school_admin",
                                       "scope": EARLY[1], "display_name": "刘老师"})
    assert r.status_code == 200
    temporary = temp_password(r.text)
    liu = site.client()
    site.login(liu, "liu", temporary)
    r = liu.get("/")
    assert r.status_code == 303 and r.headers["location"] == "/account/password"
    assert liu.get("/api/me").status_code == 403
    form = liu.get("/account/password")
    r = liu.post("/account/password", data={"csrf": csrf_of(form.text), "current": temporary,
                                             "new": "another-kite-77", "again": "another-kite-77"})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    fresh = site.client()
    site.login(fresh, "liu", "another-kite-77")
    assert fresh.get("/").status_code == 200
    with transaction(sessions(site.engine)) as s:
        user = s.scalar(select(User).where(User.username == "liu"))
        assert user is not None
        assert s.scalar(select(AuditEvent.actor).where(AuditEvent.chain == f"user:{user.id}")) == "county"


@pytest.mark.parametrize(("role", "scope"), [("city_office", CITY), ("school_admin", OTHER)])
def test_nothing_above_the_offices_own_role_or_scope(site: Site, role: str, scope: str) -> None:
    county = site.as_user("county")
    page = county.get("/accounts")
    r = county.post("/accounts", data={"csrf": csrf_of(page.text), "username": "x", "role": role, "scope": scope})
    assert r.status_code == 403
    with transaction(sessions(site.engine)) as s:
        assert s.scalar(select(User).where(User.username == "x")) is None


@pytest.mark.parametrize("user", ["school", "sup"])
def test_schools_and_supervisors_have_no_account_pages(site: Site, user: str) -> None:
    client = site.as_user(user)
    assert client.get("/accounts").status_code == 403
    assert "/accounts" not in client.get("/").text


def test_another_county_cannot_reset_or_disable(site: Site) -> None:
    other = site.as_user("other")
    page = other.get("/accounts")
    assert ">school<" not in page.text  # the county's school admin is not listed
    assert other.post("/accounts/school/reset", data={"csrf": csrf_of(page.text)}).status_code == 404
    assert other.post("/accounts/school/disable", data={"csrf": csrf_of(page.text)}).status_code == 404
    site.login(site.client(), "school")  # still signs in with its own password


def test_reset_and_disable_by_the_county(site: Site) -> None:
    county = site.as_user("county")
    page = county.get("/accounts")
    r = county.post("/accounts/school/reset", data={"csrf": csrf_of(page.text)})
    temporary = temp_password(r.text)
    old = site.client()
    page = old.get("/login")
    assert old.post("/login", data={"username": "school", "password": PASSWORD, "csrf": csrf_of(page.text)}).status_code == 401
    site.login(site.client(), "school", temporary)
    r = county.post("/accounts/school/disable", data={"csrf": csrf_of(county.get("/accounts").text)})
    assert r.status_code == 303
    page = old.get("/login")
    assert old.post("/login", data={"username": "school", "password": temporary, "csrf": csrf_of(page.text)}).status_code == 401


def test_bulk_add_answers_with_the_temporary_passwords(site: Site) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(["用户名", "姓名", "角色", "范围"])
    sheet.append(["s2", "二校", "学校管理员", EARLY[1]])
    out = BytesIO()
    book.save(out)
    county = site.as_user("county")
    page = county.get("/accounts")
    r = county.post("/accounts/bulk", data={"csrf": csrf_of(page.text)},
                    files={"file": ("accounts.xlsx", out.getvalue(), "application/octet-stream")})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.openxmlformats")
    rows = list(load_workbook(BytesIO(r.content)).active.iter_rows(values_only=True))
    [row] = [x for x in rows if x and x[0] == "s2"]
    site.login(site.client(), "s2", str(row[4]))
    bad = Workbook()
    bad.active.append(["用户名", "姓名", "角色", "范围"])
    bad.active.append(["s3", "越权", "city_office", CITY])
    out = BytesIO()
    bad.save(out)
    r = county.post("/accounts/bulk", data={"csrf": csrf_of(county.get("/accounts").text)},
                    files={"file": ("accounts.xlsx", out.getvalue(), "application/octet-stream")})
    assert r.status_code == 303
    assert "不能授予比自己更高的角色" in county.get("/accounts").text
