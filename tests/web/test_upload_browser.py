"""导入数据 in a real headless Chromium: a county officer's GB18030 file with one bad row, fixed,
previewed, confirmed; the school's gate moves; another county's officer cannot see the job.

Uses the live server and browser set-up of ``test_browser.py`` (skipped, with the reason, where
Playwright or Chromium is missing). Screenshots at 1366 and 390 px wide go to
``test-artifacts/screenshots/upload-*.png``.
"""

from __future__ import annotations

from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
from openpyxl import load_workbook

from tests.web.conftest import PASSWORD
from tests.web.test_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    SCHOOL,
    SCREENSHOTS,
    Browser,
    Live,
    live,
    sync_api,
)

__all__ = ["live"]  # the fixture, imported so pytest finds it here
pytestmark = pytest.mark.browser

HEADER = "教师编号,姓名,学校标识码,线上学时,校本实践学时,能力点,提交作品数,测评结果\n"
# The seed's three teachers of SCHOOL have 10 h online (its online-study gate fails); the file
# brings them to 30 h. The bad version has an hours cell Excel users do type.
ROWS = [f"T{SCHOOL}{i:04d},教师{i},{SCHOOL},30,28,\"1,5,9\",3,合格\n" for i in range(3)]
BAD = [*ROWS[:2], f"T{SCHOOL}0002,教师2,{SCHOOL},三十,28,\"1,5,9\",3,合格\n"]


class Shots(Browser):
    def shot(self, name: str) -> None:
        width = self.page.viewport_size["width"] if self.page.viewport_size else 0
        path = SCREENSHOTS / f"upload-{len(self.shots) + 1:02d}-{name}-{width}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.shots.append(path)

    def login(self, username: str) -> None:
        self.page.goto(f"{self.base}/login")
        self.page.get_by_label("用户名").fill(username)
        self.page.get_by_label("密码").fill(PASSWORD)
        self.page.get_by_role("button", name="登录").click()
        self.page.wait_for_url(f"{self.base}/")

    def both_widths(self, name: str) -> None:
        self.shot(name)
        self.page.set_viewport_size({"width": 390, "height": 844})
        self.shot(name)
        self.page.set_viewport_size({"width": 1366, "height": 900})


@pytest.fixture
def shots(live: Live) -> Iterator[Shots]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("upload-*.png"):
        old.unlink()
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(locale="zh-CN", accept_downloads=True, viewport={"width": 1366, "height": 900})
            page = context.new_page()
            page.set_default_timeout(20_000)
            yield Shots(page, live.base)
            context.close()
        finally:
            browser.close()


def _upload(b: Shots, rows: list[str]) -> None:
    page = b.page
    page.goto(f"{b.base}/imports")
    page.locator("#kind").select_option("progress")
    page.set_input_files("#file", files=[{"name": "沂源县进度.csv", "mimeType": "text/csv",
                                          "buffer": (HEADER + "".join(rows)).encode("gb18030")}])
    page.get_by_role("button", name="上传并预览").click()
    page.wait_for_url(f"{b.base}/imports/*")


def test_county_fixes_a_bad_row_previews_and_imports(shots: Shots) -> None:
    b, page, expect = shots, shots.page, sync_api.expect
    b.login("county")
    page.goto(f"{b.base}/schools/{SCHOOL}")
    failing_before = page.locator("ul.gates li.bad").count()
    assert failing_before > 0

    page.goto(f"{b.base}/")
    page.get_by_role("link", name="导入数据").click()
    page.wait_for_url(f"{b.base}/imports")
    expect(page.locator("#as-of")).to_contain_text("尚未从网页导入")
    b.both_widths("form")

    _upload(b, BAD)
    expect(page.locator("#state")).to_contain_text("有问题")
    problem = page.locator("tr.problem")
    expect(problem).to_have_count(1)
    expect(problem).to_contain_text("4")  # the row as Excel shows it (header = row 1)
    expect(problem).to_contain_text("线上学时")
    expect(problem).to_contain_text("不是数字")
    expect(page.locator("#confirm")).to_have_count(0)  # a file with problems cannot be confirmed
    b.both_widths("problems")
    with page.expect_download() as info:
        page.locator("#problems-xlsx").click()
    rows = list(load_workbook(BytesIO(Path(info.value.path()).read_bytes())).active.iter_rows(values_only=True))
    assert any(r and r[0] == 4 and "三十" in r for r in rows), rows  # the clerk's row beside its problem

    _upload(b, ROWS)
    expect(page.locator("#state")).to_contain_text("可以导入")
    expect(page.locator("#encoding")).to_contain_text("gb18030")
    expect(page.locator("#counts")).to_contain_text("更新 3")
    expect(page.locator("main")).to_contain_text(SCHOOL)  # counts per school
    b.both_widths("preview")
    page.locator("#confirm").click()
    expect(page.locator("p.flash.ok")).to_contain_text("已导入 沂源县进度.csv")
    expect(page.locator("#state")).to_contain_text("已导入")
    b.shot("imported")
    job_url = page.url

    page.goto(f"{b.base}/imports")
    expect(page.locator("#as-of")).to_contain_text("沂源县进度.csv · county")
    page.goto(f"{b.base}/schools/{SCHOOL}")
    assert page.locator("ul.gates li.bad").count() < failing_before  # the school's numbers moved
    b.shot("school-after")

    page.get_by_role("button", name="退出").click()
    page.wait_for_url(f"{b.base}/login")
    b.login("other")
    response = page.goto(job_url)
    assert response is not None and response.status == 404  # another county cannot see the job
    b.shot("other-county-404")

    assert len(b.shots) == 9 and all(p.stat().st_size > 0 for p in b.shots)
    # The one 404 is the other county's look at the job, which the test asked for.
    assert b.foreign == [] and [e for e in b.errors if f"{job_url}: " not in e] == [], (b.foreign, b.errors)
    # A download is an aborted navigation, as the audit CSV in test_browser.py.
    expected = {f"{job_url}: HTTP 404"}
    assert [f for f in b.failures if f not in expected and not f.endswith("/problems.xlsx: net::ERR_ABORTED")] == [], b.failures
