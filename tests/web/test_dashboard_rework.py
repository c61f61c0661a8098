"""The rework list (退回整改): schools sent back by a ``kind: return`` transition and not moved on
since, on the overview, as a page, as XLSX and in the API, within the user's scope only."""

from __future__ import annotations

import io

from openpyxl import load_workbook

from engine.db import sessions, transaction
from engine.runs import fire
from tests.engine.builders import COUNTY_OFFICER
from tests.web.conftest import Site
from tests.web.test_dashboard_school import SCHOOL, into_practice


def send_back(site: Site) -> None:
    with transaction(sessions(site.engine)) as s:
        fire(s, site.clock, school_code=SCHOOL, trigger="return_for_rework", actor=COUNTY_OFFICER,
             reason="实践记录不全，退回补做")


def test_a_school_sent_back_is_on_the_rework_list_until_it_moves_on(site: Site) -> None:
    into_practice(site)
    county = site.as_user("county")
    assert county.get("/api/overview").json()["rework"] == 0
    send_back(site)
    assert county.get("/api/overview").json()["rework"] == 1
    r = county.get("/api/schools?rework=1")
    assert [row["school_code"] for row in r.json()] == [SCHOOL] and r.headers["X-Total-Count"] == "1"
    page = county.get("/rework").text
    assert "退回整改清单" in page and SCHOOL in page
    sheet = load_workbook(io.BytesIO(county.get("/rework.xlsx").content)).active
    assert sheet is not None
    cells = list(sheet.iter_rows(values_only=True))
    assert "退回整改清单" in str(cells[0][0])
    assert [row[0] for row in cells[3:]] == [SCHOOL]
    # Another county's officer never sees it, not even as a count.
    other = site.as_user("other")
    assert other.get("/api/overview").json()["rework"] == 0
    assert other.get("/api/schools?rework=1").json() == []
    # Back in practice again (the online study gates still pass): off the list.
    with transaction(sessions(site.engine)) as s:
        fire(s, site.clock, school_code=SCHOOL, trigger="advance", actor=COUNTY_OFFICER)
    assert county.get("/api/schools?rework=1").json() == []
    assert county.get("/api/overview").json()["rework"] == 0
