"""Charts are server-rendered (HTML words, SVG bars, no script), each with its table; responses are gzip-compressed;
the OpenAPI document describes the new endpoints."""

from __future__ import annotations

import re

from engine.db import sessions, transaction
from engine.runs import fire
from tests.engine.builders import CITY_OFFICER, EARLY
from tests.web.conftest import Site


def figure(page: str, caption: str) -> str:
    match = re.search(rf"<figcaption>{re.escape(caption)}</figcaption>.*?</figure>", page, re.S)
    assert match, caption
    return match.group(0)


def test_completion_by_region_bars_follow_the_table(site: Site) -> None:
    with transaction(sessions(site.engine)) as s:
        fire(s, site.clock, school_code=EARLY[0], trigger="override", actor=CITY_OFFICER, reason="学校合并，特批完成")
    page = site.as_user("city").get("/").text
    chart = figure(page, "各地区完成率")
    assert "<script" not in chart
    labels = re.findall(r'<span class="bar-label" title="[^"]*">([^<]+)</span>', chart)
    assert labels == ["沂源县", "淄川区"]  # ranked as in the table above it
    widths = [float(w) for w in re.findall(r'<rect class="done" width="([\d.]+)"', chart)]
    assert widths == [20.0, 0.0]  # 1 of 5 done, 0 of 1: percent of the bar's width
    assert ">20.0%</td>" in page  # the table alternative says the same


def test_batch_chart_marks_the_planned_share(site: Site) -> None:
    page = site.as_user("county").get("/").text
    chart = figure(page, "各批次完成比例（红线：计划占比）")
    marks = re.findall(r'<line class="planned" x1="([\d.]+)"', chart)
    assert [float(x) for x in marks] == [20.0, 40.0, 40.0]  # the batches' planned 20/40/40 % of the bar
    assert "制定规划 2021-09-30" in page  # the batch's own stage deadline in the table


def test_pages_and_api_are_gzip_compressed(site: Site) -> None:
    client = site.as_user("city")
    for path in ("/", "/schools", "/api/overview"):
        r = client.get(path, headers={"Accept-Encoding": "gzip"})
        assert r.status_code == 200 and r.headers.get("content-encoding") == "gzip", path


def test_openapi_describes_lists_and_queue(site: Site) -> None:
    doc = site.client().get("/api/openapi.json").json()
    paths = doc["paths"]
    assert {"/api/schools", "/api/overdue", "/api/extensions", "/api/overview"} <= set(paths)
    params = {p["name"] for p in paths["/api/schools"]["get"]["parameters"]}
    assert {"state", "stage", "gate", "min_days", "region", "sort", "page", "plan"} <= params
