"""Scope on every route: a county officer of 370323 never sees nor changes a school of 370302.

Also: supervisors are read-only, school admins see exactly their school.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from engine.db import sessions, transaction
from engine.models import AuditEvent
from tests.engine.builders import EARLY, OTHER, event_count
from tests.web.conftest import Site, csrf_of

FOREIGN = OTHER  # county 370302


def _csrf(client: TestClient, path: str = "/") -> str:
    return csrf_of(client.get(path).text)


def test_county_officer_gets_404_for_another_county_on_every_route(site: Site) -> None:
    client = site.as_user("county")
    token = _csrf(client)
    api_token = client.get("/api/me").json()["csrf"]
    with transaction(sessions(site.engine)) as s:
        before = event_count(s)
    gets = [f"/schools/{FOREIGN}", f"/api/schools/{FOREIGN}", f"/audit?school={FOREIGN}",
            f"/audit.csv?school={FOREIGN}", f"/api/audit?school={FOREIGN}", f"/api/audit.csv?school={FOREIGN}",
            f"/audit.xlsx?school={FOREIGN}", f"/api/audit.xlsx?school={FOREIGN}"]
    for path in gets:
        assert client.get(path).status_code == 404, path
    for trigger in ("advance", "return_for_rework", "extend", "suspend"):
        r = client.post(f"/schools/{FOREIGN}/actions/{trigger}", data={"csrf": token, "reason": "x", "due": "2021-12-01"})
        assert r.status_code == 404, trigger
        r = client.post(f"/api/schools/{FOREIGN}/actions/{trigger}", json={"reason": "x", "due": "2021-12-01"},
                        headers={"X-CSRF-Token": api_token})
        assert r.status_code == 404, trigger
    with transaction(sessions(site.engine)) as s:
        assert event_count(s) == before  # nothing was written


def test_lists_and_exports_leave_out_other_counties(site: Site) -> None:
    client = site.as_user("county")
    client.post(f"/schools/{EARLY[0]}/actions/suspend", data={"csrf": _csrf(client), "reason": "停课"})
    other = site.as_user("other")
    other.post(f"/schools/{FOREIGN}/actions/suspend", data={"csrf": _csrf(other), "reason": "合并"})
    for path in ("/", "/overdue", "/audit", "/audit.csv", "/api/overview", "/api/overdue", "/api/audit",
                 "/api/audit.csv"):
        body = client.get(path).text
        assert FOREIGN not in body and "合并" not in body, path
    assert "停课" in client.get("/audit.csv").text
    assert "合并" in site.as_user("city").get("/audit.csv").text  # the city sees both counties


def test_school_admin_sees_only_their_school(site: Site) -> None:
    client = site.as_user("school")
    assert client.get(f"/schools/{EARLY[0]}").status_code == 200
    assert client.get(f"/schools/{EARLY[1]}").status_code == 404
    assert client.get(f"/api/schools/{EARLY[1]}").status_code == 404
    # Their school only, on every list; no other
    assert [r["school_code"] for r in client.get("/api/schools").json()] == [EARLY[0]]
    assert client.get("/api/overdue").json() == []  # on 07-01 nothing is late yet
    assert [r["school_code"] for r in site.as_user("county").get("/api/schools").json()].count(EARLY[1]) == 1
    schools = client.get("/api/overview").json()["schools"]
    assert [s["code"] for s in schools] == [EARLY[0]]


@pytest.mark.parametrize("trigger", ["advance", "return_for_rework", "extend", "suspend"])
def test_supervisor_cannot_post_actions(site: Site, trigger: str) -> None:
    client = site.as_user("sup")
    r = client.post(f"/schools/{EARLY[0]}/actions/{trigger}",
                    data={"csrf": _csrf(client), "reason": "x", "due": "2021-12-01"})
    assert r.status_code == 403
    r = client.post(f"/api/schools/{EARLY[0]}/actions/{trigger}", json={"reason": "x"},
                    headers={"X-CSRF-Token": client.get("/api/me").json()["csrf"]})
    assert r.status_code == 403
    with transaction(sessions(site.engine)) as s:
        assert s.scalar(select(AuditEvent.id).where(AuditEvent.actor == "sup")) is None


def test_supervisor_reads_and_exports_the_audit_trail(site: Site) -> None:
    county = site.as_user("county")
    county.post(f"/schools/{EARLY[0]}/actions/suspend", data={"csrf": _csrf(county), "reason": "停课"})
    r = site.as_user("sup").get("/audit.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith("\ufeff".encode()) and "停课" in r.text and "county" in r.text


def test_supervisor_exports_the_audit_trail_as_xlsx(site: Site) -> None:
    import io

    from openpyxl import load_workbook

    county = site.as_user("county")
    county.post(f"/schools/{EARLY[0]}/actions/suspend", data={"csrf": _csrf(county), "reason": "停课"})
    other = site.as_user("other")
    other.post(f"/schools/{FOREIGN}/actions/suspend", data={"csrf": _csrf(other), "reason": "合并"})
    r = site.as_user("sup").get("/audit.xlsx")
    assert r.status_code == 200
    sheet = load_workbook(io.BytesIO(r.content), read_only=True).worksheets[0]
    values = [[c for c in row] for row in sheet.iter_rows(values_only=True)]
    assert values[0][0] == "时间" and any("停课" in row for row in values)
    assert not any("合并" in row for row in values)  # another county's event is not exported
