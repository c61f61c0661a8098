"""Pages render for every role, in Chinese by default and English on request."""

from __future__ import annotations

import re

import pytest

from tests.engine.builders import EARLY, OTHER
from tests.web.conftest import USERS, Site


@pytest.mark.parametrize("username", sorted(USERS))
def test_every_page_renders_for_every_role(site: Site, username: str) -> None:
    client = site.as_user(username)
    for path in ("/", "/overdue", "/audit"):
        r = client.get(path)
        assert r.status_code == 200, (path, r.text)
        assert "提升工程2.0整校推进" in r.text
    own = USERS[username][1] if username == "school" else (OTHER if username == "other" else EARLY[0])
    r = client.get(f"/schools/{own}")
    assert r.status_code == 200 and own in r.text


def test_overview_counts_the_county(site: Site) -> None:
    r = site.as_user("county").get("/")
    assert "沂源县" in r.text and "淄川区" not in r.text
    title = r.text.split("<title>", 1)[1].split("</title>", 1)[0]
    assert "<table" not in title and "总览" in title  # the batch table belongs in the page body
    assert r.text.count("批次进度") == 1


def test_city_overview_has_a_row_per_county(site: Site) -> None:
    r = site.as_user("city").get("/")
    assert "沂源县" in r.text and "淄川区" in r.text


def test_english_by_query_then_cookie(site: Site) -> None:
    client = site.as_user("county")
    assert "Overview" in client.get("/?lang=en").text
    assert "Overview" in client.get("/overdue").text  # the cookie keeps it
    assert "总览" in client.get("/?lang=zh").text


def test_login_page_and_static_assets_are_local(site: Site) -> None:
    client = site.client()
    page = client.get("/login")
    assert page.status_code == 200 and "/static/style.css" in page.text
    assert "http://" not in page.text and "https://" not in page.text
    css = client.get("/static/style.css")
    assert css.status_code == 200 and "font-family" in css.text


def test_pages_redirect_to_login_when_signed_out(site: Site) -> None:
    client = site.client()
    for path in ("/", "/overdue", "/audit", f"/schools/{EARLY[0]}", "/audit.csv"):
        r = client.get(path)
        assert r.status_code == 303 and r.headers["location"] == "/login"


def test_overdue_list_shows_failing_gates(site: Site) -> None:
    r = site.as_user("county").get("/schools")
    assert EARLY[0] in r.text  # planning gate (plan filed) not met yet
    assert "✗" in r.text


def test_school_page_shows_actions_only_to_office(site: Site) -> None:
    county = site.as_user("county").get(f"/schools/{EARLY[0]}")
    sup = site.as_user("sup").get(f"/schools/{EARLY[0]}")
    assert f"/schools/{EARLY[0]}/actions/" in county.text
    assert "/actions/" not in sup.text


def test_overview_chart_is_inline_svg(site: Site) -> None:
    text = site.as_user("city").get("/").text
    assert "<svg" in text
    # no inline script (CSP): every script is a local file
    assert re.findall(r"<script[^>]*>", text) == ['<script src="/static/sort.js">']


def test_overdue_filters_by_county(site: Site) -> None:
    client = site.as_user("city")
    everything = {r["school_code"] for r in client.get("/api/schools").json()}
    assert OTHER in everything and EARLY[0] in everything
    only = {r["school_code"] for r in client.get("/api/schools?region=370302").json()}
    assert only == {OTHER}
    assert OTHER in client.get("/schools?region=370302").text
    assert EARLY[0] not in client.get("/schools?region=370302").text


def test_audit_pager_links_are_url_encoded(site: Site) -> None:
    text = site.as_user("county").get("/audit?actor=a%26b%3Dc").text
    assert "actor=a%26b%3Dc" in text
