"""The overview's header, rates and ranking: what a city officer sends up on Friday."""

from __future__ import annotations

import io
import re

from openpyxl import load_workbook

from engine.bulletin import ranked_regions
from engine.db import sessions, transaction
from engine.plan import find_plan
from tests.engine.builders import EARLY, LATE, OTHER, add_teachers
from tests.engine.forecast.test_store import store_constructed
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


def test_data_as_of_names_the_newest_progress_import(site: Site, tmp_path) -> None:
    """数据截至 is the export date of the newest progress file, its name and when it came in — not
    the page's time: an officer must see that the figures are as old as the last export."""
    import csv
    from datetime import date

    from engine.clock import FixedClock
    from engine.imports import import_progress

    assert "未记录导入时间" in site.as_user("county").get("/").text  # nothing imported yet
    rows = [["教师编号", "姓名", "学校标识码", "线上学时", "校本实践学时", "能力点", "提交作品数", "测评结果"],
            ["T9001", "测试甲", EARLY[0], "25", "10", "1,2,3", "3", "合格"]]
    for name, as_of, hours in (("周一导出.csv", date(2021, 6, 28), "25"), ("周三导出.csv", date(2021, 6, 30), "26")):
        path = tmp_path / name
        rows[1][3] = hours
        with path.open("w", encoding="utf-8", newline="") as handle:
            csv.writer(handle).writerows(rows)
        with transaction(sessions(site.engine)) as s:
            import_progress(s, path, as_of=as_of, clock=FixedClock(site.clock.now()), actor="county")
    page = site.as_user("county").get("/").text
    assert "数据截至 2021-06-30（周三导出.csv，2021-07-01 09:00 导入）" in page
    assert "周一导出.csv" not in page
    # A second source (another platform's export, read through its own column mapping): each
    # source's newest file is named, newest first, so an older one is not hidden by a newer one.
    mapping = tmp_path / "实践平台.yaml"
    mapping.write_text("teachers:\n  platform_id: [研修编号]\n", encoding="utf-8")
    practice = tmp_path / "实践平台导出.csv"
    with practice.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([["研修编号", *rows[0][1:]], rows[1]])
    with transaction(sessions(site.engine)) as s:
        import_progress(s, practice, as_of=date(2021, 7, 1), clock=FixedClock(site.clock.now()), actor="county",
                        mapping=mapping)
    page = site.as_user("county").get("/").text
    assert ("数据截至 实践平台.yaml：2021-07-01（实践平台导出.csv，2021-07-01 09:00 导入）；"
            "标准格式：2021-06-30（周三导出.csv，2021-07-01 09:00 导入）") in page


def test_region_rows_count_the_schools_at_risk_and_link_to_them(site: Site) -> None:
    """有风险: the stored forecast risk (issue 11) per child region, and its list, in scope."""
    store_constructed(sessions(site.engine), site.clock)  # at 0.7: EARLY[0], LATE[0] (沂源县), OTHER (淄川区)
    city = site.as_user("city")
    d = city.get("/api/overview").json()
    assert {r["region_code"]: r["at_risk"] for r in d["rows"]} == {"370323": 2, "370302": 1}
    assert d["at_risk"] == 3
    listed = {row["school_code"] for row in city.get("/api/schools?at_risk=1&region=370323").json()}
    assert listed == {EARLY[0], LATE[0]}
    assert "有风险" in city.get("/").text
    county = site.as_user("county")
    assert {row["school_code"] for row in county.get("/api/schools?at_risk=1").json()} == {EARLY[0], LATE[0]}
    assert {row["school_code"] for row in site.as_user("other").get("/api/schools?at_risk=1").json()} == {OTHER}


def test_the_county_overview_counts_its_schools_as_the_full_list_does(site: Site) -> None:
    """The overview's 本县学校 total comes from the tallies, the list's from a count of the runs:
    the link "查看全部" must lead to as many schools as the heading says."""
    client = site.as_user("county")
    heading = re.search(r"本县学校 <span class=\"hint\">共 (\d+) 所", client.get("/").text)
    listed = re.search(r"共 (\d+) 所 · 第", client.get("/schools?region=370323").text)
    assert heading and listed and heading.group(1) == listed.group(1) == "5"
