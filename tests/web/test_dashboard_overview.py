"""The overview's header, rates and ranking: what a city officer sends up on Friday."""

from __future__ import annotations

import io

from openpyxl import load_workbook

from engine.bulletin import ranked_regions
from engine.db import sessions, transaction
from engine.plan import find_plan
from tests.engine.builders import EARLY, OTHER, add_teachers
from tests.web.conftest import Site


def with_teachers(site: Site) -> None:
    with transaction(sessions(site.engine)) as s:
        add_teachers(s, EARLY[0], 3)
        add_teachers(s, EARLY[1], 1, practice=5)
        add_teachers(s, OTHER, 2, online=0, practice=0, points=0, evidence=0, result=None)


def test_header_names_the_plan_deadline_and_working_days(site: Site) -> None:
    page = site.as_user("county").get("/").text
    assert "<h1>沂源县提升工程2.0整校推进</h1>" in page and "yiyuan-2021</h1>" not in page
    assert "最终截止 2022-11-30" in page and "369 个工作日" in page  # 2021-07-01 → 2022-11-30, official calendar
    assert "页面生成于 2021-07-01 09:00" in page and "数据截至" in page


def test_region_rows_carry_rates_with_numerator_and_denominator(site: Site) -> None:
    with_teachers(site)
    client = site.as_user("city")
    d = client.get("/api/overview").json()
    by = {r["region_code"]: r for r in d["rows"]}
    assert by["370323"]["rates"]["practice_hours_met"] == {"numerator": 3, "denominator": 4, "value": 0.75}
    assert by["370302"]["rates"]["participation"] == {"numerator": 0, "denominator": 2, "value": 0.0}
    totals = {r["id"]: (r["numerator"], r["denominator"]) for r in d["rates"]}
    assert totals["participation"] == (4, 6) and totals["plan_filed"] == (0, 6)
    page = client.get("/").text
    assert 'title="3 / 4">75.0%</td>' in page and "校本实践学时达标率" in page
    sheet = load_workbook(io.BytesIO(client.get("/regions.xlsx").content)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    header = list(rows[2])
    col = header.index("校本实践学时达标率")
    first = next(r for r in rows[3:] if r[1] == "370323")
    assert first[col] == 0.75


def test_ranking_is_the_bulletins(site: Site) -> None:
    with_teachers(site)
    rows = site.as_user("prov").get("/api/overview?region=370300").json()["rows"]
    with transaction(sessions(site.engine)) as s:
        expected = ranked_regions(s, site.clock, find_plan(s, None), "370300")
    assert [(r["region_code"], r["rank"]) for r in rows] == [(r["region_code"], r["rank"]) for r in expected]


def test_county_rates_do_not_leak_other_counties(site: Site) -> None:
    with_teachers(site)
    totals = {r["id"]: (r["numerator"], r["denominator"]) for r in site.as_user("county").get("/api/overview").json()["rates"]}
    assert totals["participation"] == (4, 4)  # 淄川区's two teachers are not the county's
    school = {r["id"]: (r["numerator"], r["denominator"]) for r in site.as_user("school").get("/api/overview").json()["rates"]}
    assert school["participation"] == (3, 3)
