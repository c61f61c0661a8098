"""Pages show the workflow's words, not its ids: action buttons, the message after an action, stage
columns, history, audit trail and roles, in Chinese by default and English with ?lang=en. The
JSON API keeps the ids (machines need them) and adds the titles beside them."""

from __future__ import annotations

import html
import re

from engine import labels
from engine.i18n import set_language
from engine.workflow.loader import load_workflow_text
from tests.engine.builders import EARLY, WORKFLOW_PATH
from tests.web.conftest import Site, csrf_of

SCHOOL = EARLY[0]  # in planning, its gates not met: blocked
IDS = ("advance", "return_for_rework", "suspend", "resume", "extend", "override", "planning", "online_study",
       "suspended", "county_office", "supervisor", "plan_filed")


def visible(page: str) -> str:
    """The text a user reads: tags (and so form addresses, option values) removed."""
    body = page.split("<body>", 1)[-1]
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


def assert_no_ids(page: str) -> None:
    text = visible(page)
    shown = [i for i in IDS if re.search(rf"\b{i}\b", text)]
    assert shown == [], shown


def test_school_page_buttons_and_stage_in_words(site: Site) -> None:
    client = site.as_user("county")
    page = client.get(f"/schools/{SCHOOL}").text
    text = visible(page)
    for words in ("制定规划", "推进到下一阶段", "暂停推进", "延期", "→ 网络研修", "县级项目办"):
        assert words in text, words
    assert "特批完成" not in text  # only city and province offices may override: no button for the county
    assert f'action="/schools/{SCHOOL}/actions/advance"' in page  # the id stays in the address
    assert_no_ids(page)
    english = client.get(f"/schools/{SCHOOL}?lang=en").text
    for words in ("Planning", "Advance to the next stage", "Suspend", "Extend the deadline",
                  "→ Online study", "County project office"):
        assert words in visible(english), words
    assert_no_ids(english)


def test_reason_is_required_where_the_workflow_requires_one(site: Site) -> None:
    city = _forms(site.as_user("city").get(f"/schools/{SCHOOL}").text)
    county = _forms(site.as_user("county").get(f"/schools/{SCHOOL}").text)
    assert sorted(city) == ["extend", "override", "suspend"]  # the buttons the role may use
    assert sorted(county) == ["advance", "extend", "suspend"]
    assert re.search(r'<input name="reason" required>', county["suspend"])  # suspend always needs one
    assert re.search(r'<input name="reason" required>', city["override"])
    assert 'name="reason"' not in county["advance"]  # advance asks for none


def _forms(page: str) -> dict[str, str]:
    """The action forms on a school page, by trigger."""
    return dict(re.findall(r'<form method="post" action="/schools/\d+/actions/(\w+)".*?>(.*?)</form>', page, re.S))


def test_action_message_history_and_audit_in_words(site: Site) -> None:
    client = site.as_user("county")
    page = client.get(f"/schools/{SCHOOL}").text
    version = re.search(r'name="version" value="(\d+)"', page)
    assert version
    r = client.post(f"/schools/{SCHOOL}/actions/suspend",
                    data={"csrf": csrf_of(page), "reason": "学校合并", "version": version.group(1)})
    assert r.status_code == 303
    page = client.get(f"/schools/{SCHOOL}").text
    assert "已执行“暂停推进”：制定规划 → 暂停" in visible(page)
    history = visible(page).split("历史", 1)[1]
    assert "暂停推进" in history and "制定规划 → 暂停" in history and "county (县级项目办)" in history
    assert "开始实施" in history  # the run's start event reads in words too
    assert_no_ids(page)
    assert "恢复推进" in visible(page)  # the suspended school offers resume, in words

    audit = client.get("/audit").text
    rows = visible(audit.split("<tbody>", 1)[1])
    assert "暂停推进" in rows and "制定规划 → 暂停" in rows and "学校合并" in rows
    assert_no_ids(audit.split("<tbody>", 1)[1])
    assert '<option value="suspend" >暂停推进</option>' in audit  # the filter offers words, sends the id
    filtered = client.get("/audit?trigger=suspend").text
    assert 'value="suspend" selected' in filtered and "学校合并" in filtered

    english = client.get("/audit?lang=en").text
    rows = visible(english.split("<tbody>", 1)[1])
    assert "Suspend" in rows and "Planning → Suspended" in rows and "County project office" in rows


def test_overdue_and_overview_show_stage_titles(site: Site) -> None:
    client = site.as_user("county")
    page = client.get("/schools").text
    row = re.search(rf'<tr><td><a href="/schools/{SCHOOL}">.*?</tr>', page, re.S)
    assert row and "制定规划" in row.group(0) and "planning" not in visible(row.group(0))
    assert '<option value="planning" >制定规划</option>' in page  # the stage filter, in words
    assert "Planning" in visible(client.get("/schools?lang=en").text)
    overview = client.get("/?lang=zh").text
    # each state of the legend leads to its own list
    links = re.findall(r'<a href="(/schools\?state=[a-z_]+)[^"]*"><strong>([^<]+)</strong>', overview)
    assert [t for _h, t in links] == ["逾期", "即将到期", "可推进", "进行中", "未开始", "暂停", "已完成"]
    assert len({h for h, _t in links}) == 7 and "受阻" not in overview
    assert "县级项目办" in visible(overview)  # the header names the role in words
    assert_no_ids(overview)


def test_api_keeps_ids_and_adds_titles(site: Site) -> None:
    client = site.as_user("county")
    row = next(r for r in client.get("/api/schools").json() if r["school_code"] == SCHOOL)
    assert (row["state"], row["stage_title"]) == ("planning", "制定规划")
    detail = client.get(f"/api/schools/{SCHOOL}?lang=en").json()
    assert detail["allowed"] == ["advance", "extend", "override", "suspend"]
    advance = next(a for a in detail["actions"] if a["trigger"] == "advance")
    assert advance == {"trigger": "advance", "title": "Advance to the next stage", "kind": "advance",
                       "to": "online_study", "to_title": "Online study", "reason_required": False}
    token = {"X-CSRF-Token": client.get("/api/me").json()["csrf"]}
    r = client.post(f"/api/schools/{SCHOOL}/actions/suspend?lang=zh", json={"reason": "学校合并"}, headers=token)
    assert r.status_code == 200, r.text
    assert r.json() | {"overridden": []} == {
        "school_code": SCHOOL, "trigger": "suspend", "from_state": "planning", "to_state": "suspended",
        "overridden": [], "trigger_title": "暂停推进", "from_title": "制定规划", "to_title": "暂停"}
    event = client.get(f"/api/audit?school={SCHOOL}&trigger=suspend").json()["events"][0]
    assert (event["trigger"], event["trigger_title"], event["from_state"], event["from_title"]) == (
        "suspend", "暂停推进", "planning", "制定规划")
    assert (event["role"], event["role_title"]) == ("county_office", "县级项目办")


def test_favicon_is_local_and_linked(site: Site) -> None:
    client = site.client()
    assert '<link rel="icon" href="/static/favicon.svg"' in client.get("/login").text
    icon = client.get("/static/favicon.svg")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    r = client.get("/favicon.ico")
    assert r.status_code == 301 and r.headers["location"] == "/static/favicon.svg"


def test_words_fall_back_for_files_without_titles_and_unknown_ids() -> None:
    source = WORKFLOW_PATH.read_text(encoding="utf-8")
    head, transitions = source.split("\ntransitions:\n", 1)  # an older file: transitions without titles
    transitions = re.sub(r"title: (&\w+ )?(\{[^}]*\}|\*\w+), ", "", transitions)
    transitions = re.sub(r"\n +title: [^\n]*", "", transitions)
    assert "title" not in transitions
    wf = load_workflow_text(f"{head}\ntransitions:\n{transitions}", "older.yaml")
    assert wf.transition_for("suspend", "planning") is not None
    set_language("zh")
    assert labels.trigger_title(wf, "advance", "planning") == "推进"
    assert labels.trigger_title(wf, "return_for_rework", "online_study") == "退回整改"
    assert labels.trigger_title(wf, "override", "planning") == "特批推进"
    assert labels.trigger_title(wf, "fact:plan_filed") == "记录事实：学校发展规划已审核备案"
    assert labels.trigger_title(wf, "extension_request") == "申请延期"
    assert labels.trigger_title(wf, "something_new") == "something_new"  # never hidden
    assert labels.stage_title(wf, "gone") == "gone" and labels.stage_title(None, None) == ""
    assert labels.role_title("county_office") == "县级项目办" and labels.role_title("robot") == "robot"
    set_language("en")
    assert labels.trigger_title(wf, "extend", "planning") == "Extend deadline"
    assert labels.role_title("supervisor", wf) == "Supervisor"
    set_language("zh")
