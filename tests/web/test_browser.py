"""The dashboard in a real headless Chromium, as an office and a supervisor use it.

The other web tests talk to the app through Starlette's TestClient, which never runs the HTML:
a form whose field is misnamed, a link that points nowhere, a download that is not a download or
a stylesheet that does not load would all pass there. Here the real app runs under uvicorn on a
loopback port and Playwright drives Debian's ``chromium`` through the pages by their links,
forms and buttons. Every page visited is saved as a PNG under ``test-artifacts/screenshots/`` so
a person can look at what the test saw.

Skipped, with the reason, where the ``playwright`` package or the browser is missing (a
newcomer's laptop); ``.ci/run`` installs both. ``ROLLOUT_TEST_CHROMIUM`` names another browser
binary (e.g. on macOS). No browser build is ever downloaded (``playwright install`` is not used).
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import uvicorn
from openpyxl import load_workbook

from engine.accounts import add_user
from engine.clock import FixedClock
from engine.db import make_engine, sessions, transaction
from engine.facts import set_fact
from engine.runs import fire
from tests.conftest import REPO
from tests.engine.builders import COUNTY_OFFICER, EARLY, add_teachers, seed_with_plan
from tests.web.conftest import PASSWORD, USERS
from web.app import create_app

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("ROLLOUT_TEST_CHROMIUM", "/usr/bin/chromium")
# Headless, as root, on a closed network: no sandbox (root), and none of the background traffic
# to Google hosts (component updates, sync, QUIC probes) that would hang or log errors here.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
SCHOOL = EARLY[0]
REASON = "网络研修学时不足，请组织补学"

sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="the playwright package is not installed (pip install -e '.[test]')")
if not Path(CHROMIUM).exists():
    pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium (or set ROLLOUT_TEST_CHROMIUM)",
                allow_module_level=True)


@dataclass
class Live:
    base: str


def _seed(db_url: str, clock: FixedClock, tmp_path: Path) -> None:
    """The shared seed plus one school moved on to online study, where its teachers fall short."""
    engine = make_engine(db_url)
    try:
        with transaction(sessions(engine)) as s:
            seed_with_plan(s, clock, tmp_path)
            for name, (role, scope) in USERS.items():
                add_user(s, clock, username=name, role=role, scope=scope, password=PASSWORD,
                         display_name=f"用户{name}")
            set_fact(s, clock, school_code=SCHOOL, name="plan_filed", value=1, actor=COUNTY_OFFICER)
            set_fact(s, clock, school_code=SCHOOL, name="team_members", value=4, actor=COUNTY_OFFICER)
            fire(s, clock, school_code=SCHOOL, trigger="advance", actor=COUNTY_OFFICER)
            add_teachers(s, SCHOOL, 3, online=10.0)  # under 25 h each: the online-study gate fails
    finally:
        engine.dispose()


@pytest.fixture
def live(sqlite_template: Path, clock: FixedClock, tmp_path: Path) -> Iterator[Live]:
    """The real app under uvicorn in a thread, on a loopback port the test bound itself."""
    path = tmp_path / "rollout.db"
    shutil.copy(sqlite_template, path)
    db_url = f"sqlite:///{path}"
    _seed(db_url, clock, tmp_path)
    app = create_app(db_url, clock, secret_key="browser-test-secret")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # log_config=None: leave pytest's logging alone; uvicorn's own loggers still propagate.
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True)
    thread.start()
    try:
        ready = threading.Event()
        for _ in range(500):  # up to ~10 s for the lifespan start-up; not a timing assertion
            if server.started or not thread.is_alive():
                break
            ready.wait(0.02)
        assert server.started, "uvicorn did not start"
        yield Live(f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
    assert not thread.is_alive(), "uvicorn did not stop"


class Browser:
    """One page in a fresh Chromium context, with every request, failure and console error kept."""

    def __init__(self, page: sync_api.Page, base: str, prefix: str = ""):
        self.page = page
        self.base = base
        self.prefix = prefix
        self.shots: list[Path] = []
        self.foreign: list[str] = []
        self.failures: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda r: None if r.url.startswith(base) else self.foreign.append(r.url))
        page.on("requestfailed", self._failed)
        page.on("console", self._console)
        page.on("response", lambda r: self.failures.append(f"{r.url}: HTTP {r.status}") if r.status >= 400 else None)

    def _failed(self, request: sync_api.Request) -> None:
        # Aborted, not failed: the CSV link turns into a download, and the browser drops a tab
        # icon still loading when the test clicks on to the next page. An icon that is missing
        # answers 404, which the response hook catches.
        aborted = request.failure == "net::ERR_ABORTED"
        download = request.url.startswith(f"{self.base}/audit.csv") or ".xlsx" in request.url
        if not (aborted and (download or request.url.endswith("/favicon.svg"))):
            self.failures.append(f"{request.url}: {request.failure}")

    def _console(self, message: sync_api.ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"{message.location.get('url')}: {message.text}")

    def shot(self, name: str) -> None:
        path = SCREENSHOTS / f"{self.prefix}{len(self.shots) + 1:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.shots.append(path)

    def login(self, username: str) -> None:
        self.page.goto(f"{self.base}/login")
        self.page.get_by_label("用户名").fill(username)
        self.page.get_by_label("密码").fill(PASSWORD)
        self.page.get_by_role("button", name="登录").click()
        self.page.wait_for_url(f"{self.base}/")


@pytest.fixture(scope="module", autouse=True)
def _fresh_screenshots() -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()  # only this run's pictures, so a stale one cannot pass for a page that broke


def _browser(live: Live, width: int, height: int, prefix: str) -> Iterator[Browser]:
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(locale="zh-CN", accept_downloads=True,
                                          viewport={"width": width, "height": height})
            page = context.new_page()
            page.set_default_timeout(20_000)
            yield Browser(page, live.base, prefix)
            context.close()
        finally:
            browser.close()


@pytest.fixture
def browser_page(live: Live) -> Iterator[Browser]:
    yield from _browser(live, 1280, 800, "")


@pytest.fixture
def desktop(live: Live) -> Iterator[Browser]:
    """1366 × 768, the office's laptop."""
    yield from _browser(live, 1366, 768, "desktop-")


@pytest.fixture
def phone(live: Live) -> Iterator[Browser]:
    """390 × 844, a phone."""
    yield from _browser(live, 390, 844, "phone-")


def test_officer_returns_a_blocked_school_and_the_supervisor_exports_it(browser_page: Browser) -> None:
    b = browser_page
    page = b.page
    expect = sync_api.expect

    page.goto(f"{b.base}/")  # signed out: sent to the form
    page.wait_for_url(f"{b.base}/login")
    expect(page.get_by_role("heading", name="登录")).to_be_visible()
    b.shot("login")

    b.login("county")
    expect(page.locator("h1")).to_contain_text("沂源县提升工程2.0整校推进")  # the plan's title, not its code
    expect(page.locator("ul.legend").first).to_contain_text("进行中")
    expect(page.locator("main")).not_to_contain_text("受阻")
    expect(page.locator("figure.chart svg.bar").first).to_be_visible()
    assert page.evaluate("getComputedStyle(document.body).margin") == "0px"  # style.css loaded
    icon = page.locator('link[rel="icon"]').get_attribute("href")
    assert icon and page.request.get(f"{b.base}{icon}").ok  # the tab has an icon, no 404 on every load
    b.shot("overview-county")

    page.get_by_role("link", name="学校清单").click()
    page.wait_for_url(f"{b.base}/schools")
    row = page.locator("tr", has=page.locator(f'a[href="/schools/{SCHOOL}"]'))
    expect(row).to_contain_text("网络研修")  # the stage's title, not its id
    expect(row).not_to_contain_text("online_study")
    expect(row).to_contain_text("✗")  # the failing gate is named on the list
    b.shot("schools-list")

    row.get_by_role("link").click()
    page.wait_for_url(f"{b.base}/schools/{SCHOOL}")
    expect(page.locator("dl.facts")).to_contain_text("网络研修")
    expect(page.locator("ul.gates li.bad").first).to_be_visible()
    for trigger in ("advance", "return_for_rework", "extend"):  # buttons in words, ids only in the address
        expect(page.get_by_role("button", name=trigger, exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name="退回整改")).to_be_visible()
    expect(page.get_by_role("button", name="延期", exact=True)).to_be_visible()
    b.shot("school-blocked")

    form = page.locator(f'form[action="/schools/{SCHOOL}/actions/return_for_rework"]')
    assert form.get_by_label("理由").evaluate("e => e.required")  # the workflow requires a reason
    form.get_by_label("理由").fill(REASON)
    form.get_by_role("button", name="退回整改").click()
    page.wait_for_url(f"{b.base}/schools/{SCHOOL}")
    expect(page.locator("p.flash.ok")).to_contain_text("已执行“退回整改”：网络研修 → 制定规划")
    expect(page.locator("dl.facts")).to_contain_text("制定规划")
    history = page.locator("tr", has_text="退回整改")
    expect(history).to_have_count(1)
    expect(history).to_contain_text(REASON)
    expect(history).to_contain_text("用户county (县级项目办)")  # the display name
    expect(page.locator("main")).not_to_contain_text("return_for_rework")
    b.shot("school-returned")

    page.get_by_role("link", name="审计记录").click()
    page.wait_for_url(f"{b.base}/audit")
    expect(page.locator("p.flash")).to_contain_text("审计记录完整")  # the chains still verify
    audit_row = page.locator("tbody tr", has_text="退回整改")
    expect(audit_row).to_have_count(1)
    expect(audit_row).to_contain_text("网络研修 → 制定规划")
    expect(audit_row).to_contain_text(REASON)
    expect(audit_row).to_contain_text(SCHOOL)
    b.shot("audit-county")

    page.get_by_role("button", name="退出").click()
    page.wait_for_url(f"{b.base}/login")
    page.goto(f"{b.base}/audit")  # the session really ended
    page.wait_for_url(f"{b.base}/login")
    b.shot("logged-out")

    b.login("sup")
    expect(page.locator("header .who")).to_contain_text("督导人员")
    b.shot("overview-supervisor")
    page.goto(f"{b.base}/schools/{SCHOOL}")
    expect(page.locator("tr", has_text="退回整改")).to_contain_text(REASON)
    expect(page.locator('form[action*="/actions/"]')).to_have_count(0)  # supervisors only read
    b.shot("school-supervisor")
    page.get_by_role("link", name="审计记录").click()
    page.wait_for_url(f"{b.base}/audit")
    page.locator("select[name=trigger]").select_option(label="退回整改")
    page.get_by_role("button", name="查询").click()
    page.wait_for_url(f"{b.base}/audit?*trigger=return_for_rework*")
    expect(page.locator("tbody tr")).to_have_count(1)
    b.shot("audit-supervisor")

    with page.expect_download() as info:
        page.get_by_role("link", name="导出 CSV").click()
    download = info.value
    assert download.suggested_filename == "audit.csv"
    raw = Path(download.path()).read_bytes()
    (SCREENSHOTS.parent / "audit.csv").write_bytes(raw)
    assert raw.startswith(b"\xef\xbb\xbf"), "no UTF-8 BOM: Excel would read the file as GBK"
    rows = list(csv.reader(io.StringIO(raw[3:].decode("utf-8"), newline="")))
    header = rows[0]
    for name in ("时间", "学校标识码", "学校", "操作人", "角色", "操作", "原阶段", "新阶段", "理由"):
        assert name in header, (name, header)
    records = [dict(zip(header, r, strict=True)) for r in rows[1:]]
    assert len(records) == 1, records  # the filter on the page carried into the export
    (record,) = records
    assert (record["学校标识码"], record["操作"], record["理由"]) == (SCHOOL, "return_for_rework", REASON)
    assert (record["操作人"], record["原阶段"], record["新阶段"]) == ("county", "online_study", "planning")

    assert [p.name for p in b.shots] == [
        "01-login.png", "02-overview-county.png", "03-schools-list.png", "04-school-blocked.png",
        "05-school-returned.png", "06-audit-county.png", "07-logged-out.png", "08-overview-supervisor.png",
        "09-school-supervisor.png", "10-audit-supervisor.png"]
    assert all(p.stat().st_size > 0 for p in b.shots)
    assert b.foreign == [], "the pages reached beyond the app (CDN, fonts …)"
    assert b.failures == [] and b.errors == [], (b.failures, b.errors)


LATE_DAY = datetime(2021, 10, 11, 9, tzinfo=ZoneInfo("Asia/Shanghai"))  # the first batch's planning is late


def _flow(b: Browser) -> list[str]:
    """Province → city → county → school as the province officer; the overdue XLSX as the county;
    the teachers holding the school back as its admin, who asks for more time; the county approves
    it from its queue. Returns the overdue file's school codes."""
    page, expect = b.page, sync_api.expect
    b.login("prov")
    expect(page.locator("h1")).to_contain_text("沂源县提升工程2.0整校推进")
    b.shot("overview-province")
    page.locator("#regions").get_by_role("link", name="淄博市").click()
    page.wait_for_url("**/?region=370300*")
    expect(page.locator("nav.crumbs")).to_contain_text("山东省")
    b.shot("overview-city")
    page.locator("#regions").get_by_role("link", name="沂源县").click()
    page.wait_for_url("**/?region=370323*")
    expect(page.locator("nav.crumbs")).to_contain_text("淄博市")
    b.shot("overview-county")
    page.get_by_role("link", name="测试学校0002").first.click()
    page.wait_for_url(f"{b.base}/schools/{SCHOOL}")
    expect(page.locator("dl.facts")).to_contain_text("网络研修")
    b.shot("school-province")
    page.get_by_role("button", name="退出").click()
    page.wait_for_url(f"{b.base}/login")

    b.login("county")
    page.get_by_role("link", name="逾期清单").click()
    page.wait_for_url(f"{b.base}/overdue")
    expect(page.locator("main table")).to_contain_text(EARLY[1])
    b.shot("overdue-county")
    with page.expect_download() as info:
        page.get_by_role("link", name="Excel (XLSX)").click()
    raw = Path(info.value.path()).read_bytes()
    (SCREENSHOTS.parent / f"{b.prefix}overdue.xlsx").write_bytes(raw)
    sheet = load_workbook(io.BytesIO(raw)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert "沂源县提升工程2.0整校推进 · 逾期" == rows[0][0]
    assert "沂源县（370323）" in str(rows[1][0]) and "2021-10-11 09:00" in str(rows[1][0])
    assert rows[2][:5] == ("学校代码", "学校名称", "区县", "状态", "阶段") and sheet.freeze_panes == "A4"
    page.goto(f"{b.base}/audit")
    b.shot("audit-county")
    page.goto(f"{b.base}/no-such-page")
    expect(page.locator("h1")).to_contain_text("页面不存在")
    b.shot("not-found")
    page.goto(f"{b.base}/")
    page.get_by_role("button", name="退出").click()
    page.wait_for_url(f"{b.base}/login")

    b.login("school")
    page.goto(f"{b.base}/schools/{SCHOOL}")
    holdouts = page.locator("#holdouts tbody tr")
    expect(holdouts).to_have_count(3)
    expect(holdouts.first).to_contain_text("教师0")
    expect(holdouts.first).to_contain_text("全体教师网络研修满25学时")
    b.shot("school-admin")
    # The school asks for two more weeks; the county decides in its queue, in place.
    page.get_by_label("申请截止日期").fill("2021-11-18")
    page.locator('form[action$="/extension/request"]').get_by_label("理由").fill("三位教师支教外出，申请延期两周")
    page.get_by_role("button", name="申请延期").click()
    expect(page.locator("main")).to_contain_text("等待上级项目办审批")
    page.get_by_role("button", name="退出").click()
    page.wait_for_url(f"{b.base}/login")
    b.login("county")
    page.get_by_role("link", name="延期审批").click()
    queue = page.locator("main table tbody tr")
    expect(queue).to_have_count(1)
    expect(queue.first).to_contain_text("三位教师支教外出")
    b.shot("extensions-county")
    approve = queue.first.get_by_role("button", name="批准").bounding_box()
    width = page.viewport_size["width"] if page.viewport_size else 0
    assert approve and approve["x"] + approve["width"] <= width, (approve, width)  # on screen, no sideways hunt
    queue.first.locator('form[action$="/extension/approve?from=queue"]').get_by_label("意见").fill("同意，11月18日前完成")
    queue.first.get_by_role("button", name="批准").click()
    expect(page.locator("h1")).to_contain_text("共 0 项")
    page.goto(f"{b.base}/schools/{SCHOOL}")
    expect(page.locator("dl.facts")).to_contain_text("2021-11-18")
    return [str(r[0]) for r in rows[3:]]


def _unexpected(b: Browser) -> list[str]:
    """Failures and console errors, less the one 404 the flow asks for on purpose."""
    return [f for f in b.failures + b.errors if "/no-such-page" not in f]


def test_drill_down_download_and_teachers_at_1366(desktop: Browser, clock: FixedClock) -> None:
    clock.set(LATE_DAY)
    assert _flow(desktop) == [EARLY[1]]  # EARLY[0] moved on in June; the rest are not late yet
    assert desktop.foreign == [] and _unexpected(desktop) == []


def test_every_page_fits_a_phone(phone: Browser, clock: FixedClock) -> None:
    """390 px: no page-level horizontal scroll (wide tables scroll in their own box), tap targets
    of at least 40 px, a header of at most 15 % of the screen, chart labels readable."""
    clock.set(LATE_DAY)
    assert _flow(phone) == [EARLY[1]]
    page = phone.page
    for path in ("/", f"/schools/{SCHOOL}", "/audit", "/extensions", "/overdue", "/schools"):
        page.goto(f"{phone.base}{path}")
        wide = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert wide <= 0, (path, wide)
        header = page.evaluate("document.querySelector('header').getBoundingClientRect().height")
        assert header <= 0.15 * 844, (path, header)
        small = page.evaluate("""() => [...document.querySelectorAll('button, nav a, .legend a, a.button')]
            .filter(e => e.offsetParent !== null && e.getBoundingClientRect().height < 40)
            .map(e => e.textContent.trim())""")
        assert small == [], (path, small)
        # Chart words are text at the page's size, not an SVG scaled down to 7 px.
        tiny = page.evaluate("""() => [...document.querySelectorAll('figure.chart .bar-label, figure.chart .bar-value')]
            .filter(e => parseFloat(getComputedStyle(e).fontSize) < 12).map(e => e.textContent.trim())""")
        assert tiny == [], (path, tiny)
    assert phone.foreign == [] and _unexpected(phone) == []
