"""The overview's school states (engine.school_state) per role: one state per school, counts that
add up, each state linked to its own list, and lists and downloads that never leave the scope."""

from __future__ import annotations

import io
import re
from datetime import datetime

import pytest
from openpyxl import load_workbook

from tests.conftest import SHANGHAI
from tests.engine.builders import EARLY, LATE, OTHER, PILOT
from tests.web.conftest import USERS, Site

IN_SCOPE = {  # the schools each user may see (seed: five in 沂源县, one in 淄川区)
    "prov": {PILOT, *EARLY, *LATE, OTHER}, "city": {PILOT, *EARLY, *LATE, OTHER},
    "county": {PILOT, *EARLY, *LATE}, "sup": {PILOT, *EARLY, *LATE}, "other": {OTHER}, "school": {EARLY[0]},
}


def late(site: Site) -> None:
    """2021-10-11: the first batch's planning deadline (2021-09-30) has passed."""
    site.clock.set(datetime(2021, 10, 11, 9, tzinfo=SHANGHAI))


@pytest.mark.parametrize("username", sorted(USERS))
def test_states_add_up_and_each_state_list_holds_exactly_its_schools(site: Site, username: str) -> None:
    late(site)
    client = site.as_user(username)
    overview = client.get("/api/overview").json()
    counts = {s["id"]: s["count"] for s in overview["states"]}
    assert sum(counts.values()) == overview["totals"]["schools"] == len(IN_SCOPE[username])
    listed: set[str] = set()
    for state, n in counts.items():
        r = client.get(f"/api/schools?state={state}")
        codes = {row["school_code"] for row in r.json()}
        assert int(r.headers["X-Total-Count"]) == n == len(codes), state
        assert all(row["school_state"] == state for row in r.json())
        assert not codes & listed  # exactly one state per school
        listed |= codes
    assert listed == IN_SCOPE[username]  # never another region's school


def test_county_states_on_the_demo_dates(site: Site) -> None:
    client = site.as_user("county")
    counts = {s["id"]: s["count"] for s in client.get("/api/overview").json()["states"]}
    assert counts["in_progress"] == 3 and counts["not_started"] == 2  # 07-01: the rest start 09-01
    late(site)
    client = site.as_user("county")  # a new session: the old one expired with the clock's jump
    counts = {s["id"]: s["count"] for s in client.get("/api/overview").json()["states"]}
    # EARLY is past 09-30; LATE (30 working days from 09-01, after National Day) is due within the
    # 14-day reminder horizon; the pilot (due 12-31) is not
    assert (counts["overdue"], counts["due_soon"], counts["in_progress"]) == (2, 2, 1)


def test_legend_links_each_state_to_its_list(site: Site) -> None:
    late(site)
    client = site.as_user("county")
    page = client.get("/").text
    assert "受阻" not in page
    links = dict(re.findall(r'<a href="/schools\?state=([a-z_]+)[^"]*"><strong>[^<]+</strong> <span class="count">(\d+)</span>', page))
    assert links["overdue"] == "2" and sum(map(int, links.values())) == 5
    overdue = client.get("/schools?state=overdue").text
    assert EARLY[0] in overdue and EARLY[1] in overdue and PILOT not in overdue
    assert "共 2 所" in overdue
    # /overdue is the overdue list, not "overdue or blocked"
    assert PILOT not in client.get("/overdue").text and EARLY[0] in client.get("/overdue").text


def test_filters_by_gate_stage_and_days(site: Site) -> None:
    late(site)
    client = site.as_user("city")
    by_gate = {r["school_code"] for r in client.get("/api/schools?gate=plan_filed").json()}
    assert by_gate == {*EARLY, *LATE, OTHER}  # every school in planning, none has its plan filed
    assert {r["school_code"] for r in client.get("/api/schools?gate=pilot_summary").json()} == {PILOT}
    assert {r["school_code"] for r in client.get("/api/schools?stage=pilot").json()} == {PILOT}
    assert {r["school_code"] for r in client.get("/api/overdue?min_days=11").json()} == {*EARLY, OTHER}
    assert client.get("/api/overdue?min_days=12").json() == []
    assert client.get("/api/schools?state=blocked").status_code == 400
    assert client.get("/api/schools?gate=nonsense").status_code == 400


@pytest.mark.parametrize("username", ["county", "city", "other", "school"])
def test_overdue_xlsx_has_title_headers_words_and_only_the_scope(site: Site, username: str) -> None:
    late(site)
    client = site.as_user(username)
    r = client.get("/overdue.xlsx")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(r.content)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert "沂源县提升工程2.0整校推进" in str(rows[0][0]) and "逾期" in str(rows[0][0])
    assert "数据截至：2021-10-11 09:00" in str(rows[1][0])
    assert rows[2][:5] == ("学校代码", "学校名称", "区县", "状态", "阶段")
    assert sheet.freeze_panes == "A4"
    assert sheet.column_dimensions["B"].width == 30
    body = rows[3:]
    expected = {c for c in IN_SCOPE[username] if c in (*EARLY, OTHER)}
    assert {row[0] for row in body} == expected
    assert all(row[3] == "逾期" and row[4] == "制定规划" and row[6] == 11 for row in body)
    assert all("planning" not in str(row) for row in body)  # workflow words, never ids
    csv = client.get("/overdue.csv")
    assert csv.text.startswith("\ufeff") and "学校代码" in csv.text
    assert {c for c in IN_SCOPE["prov"] if c in csv.text} == expected


def test_region_table_downloads_with_the_bulletin_ranking(site: Site) -> None:
    late(site)
    client = site.as_user("city")
    ranked = client.get("/api/overview").json()["rows"]
    assert [r["region_code"] for r in ranked] == ["370323", "370302"]  # 1 of 5 overdue-free beats 0 of 1
    sheet = load_workbook(io.BytesIO(client.get("/regions.xlsx").content)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[2][:4] == ("排名", "地区代码", "地区", "学校数")
    assert [(r[0], r[2]) for r in rows[3:]] == [(1, "沂源县"), (2, "淄川区")]
    assert client.get("/regions.pdf").status_code == 404


def test_drill_down_and_breadcrumbs_stay_in_scope(site: Site) -> None:
    prov = site.as_user("prov")
    page = prov.get("/").text
    assert '<a href="/?region=370300&amp;plan=yiyuan-2021">淄博市</a>' in page
    county = prov.get("/?region=370323").text
    assert '<a href="/?region=370000&amp;plan=yiyuan-2021">山东省</a>' in county and f"/schools/{EARLY[0]}" in county
    other = site.as_user("other")
    assert other.get("/?region=370323").status_code == 404  # a sibling county is not theirs
    assert other.get("/?region=370300").status_code == 404  # nor the city above them
    assert site.as_user("city").get("/api/overview?region=370302").json()["crumbs"][-1]["name"] == "淄川区"


def test_the_default_order_puts_schools_with_no_due_date_last(site: Site) -> None:
    """Overdue longest first, then the nearest due date, then the finished (no due date): SQLite
    sorts NULL first, which put a county's finished schools at the top of its 'most urgent'."""
    from engine.db import sessions, transaction
    from engine.runs import fire
    from tests.engine.builders import CITY_OFFICER

    with transaction(sessions(site.engine)) as s:
        fire(s, site.clock, school_code=EARLY[1], trigger="override", actor=CITY_OFFICER, reason="撤并")
    rows = site.as_user("county").get("/api/schools").json()
    dues = [r["due"] for r in rows]
    shown = dues[:dues.index(None)]
    assert shown == sorted(shown) and all(d is None for d in dues[len(shown):])  # no date after the first without
    assert [r["school_code"] for r in rows[len(shown):]] == [EARLY[1], *LATE]  # finished, then not started
