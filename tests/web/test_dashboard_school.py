"""The school page: state and deadline in words, the teachers holding a gate back by name (and as
XLSX), the stage timeline, reminders sent, facts and decisions only where they make sense, and the
pending extension queue decided in place."""

from __future__ import annotations

import io
import re
from datetime import timedelta

from openpyxl import load_workbook
from sqlalchemy import select, update

from engine.db import sessions, transaction
from engine.extension import request_extension
from engine.facts import set_fact
from engine.models import Contact, NoticeItem, Notification, SchoolRun
from engine.runs import fire
from tests.engine.builders import COUNTY_OFFICER, EARLY, OTHER, SCHOOL_ADMIN, add_teachers
from tests.web.conftest import Site, csrf_of

SCHOOL = EARLY[0]


def into_practice(site: Site) -> None:
    """EARLY[0] through planning and online study for real; two of its five teachers short in practice."""
    with transaction(sessions(site.engine)) as s:
        add_teachers(s, SCHOOL, 3)
        add_teachers(s, SCHOOL, 2, practice=10, evidence=1, result=None, start=3)
        set_fact(s, site.clock, school_code=SCHOOL, name="plan_filed", value=1, actor=COUNTY_OFFICER)
        set_fact(s, site.clock, school_code=SCHOOL, name="team_members", value=4, actor=COUNTY_OFFICER)
        fire(s, site.clock, school_code=SCHOOL, trigger="advance", actor=COUNTY_OFFICER)
        fire(s, site.clock, school_code=SCHOOL, trigger="advance", actor=COUNTY_OFFICER)


def visible(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html)


def test_school_admin_sees_who_holds_the_school_back(site: Site) -> None:
    into_practice(site)
    client = site.as_user("school")
    page = client.get(f"/schools/{SCHOOL}").text
    rows = re.findall(r"<tr><td>(T\d+)</td><td>([^<]+)</td><td>([\d.]+)</td><td>([\d.]+)</td>", page)
    assert rows == [(f"T{SCHOOL}0003", "教师3", "30", "10"), (f"T{SCHOOL}0004", "教师4", "30", "10")]
    assert "全体教师校本实践满25学时；全体教师已按3个能力点提交测评证据" in page
    assert "未测评" in page and "未达标的教师" in page
    assert "2022-08-31 ·  剩余 426 天" in visible(page) and "进行中" in page  # practice ends 2022-08-31 (001 第三阶段)
    sheet = load_workbook(io.BytesIO(client.get(f"/schools/{SCHOOL}/teachers.xlsx").content)).active
    assert sheet is not None
    cells = list(sheet.iter_rows(values_only=True))
    assert "未达标教师（校本实践）" in str(cells[0][0]) and cells[2][:4] == ("平台账号", "姓名", "网络研修学时", "校本实践学时")
    assert [r[:4] for r in cells[3:]] == [(f"T{SCHOOL}0003", "教师3", 30, 10), (f"T{SCHOOL}0004", "教师4", 30, 10)]
    assert client.get(f"/schools/{EARLY[1]}/teachers.xlsx").status_code == 404  # not their school
    api = client.get(f"/api/schools/{SCHOOL}").json()
    assert [t["name"] for t in api["holdouts"]] == ["教师3", "教师4"]
    assert api["holdouts"][0]["gates"] == ["practice_25h", "evidence_submitted"]


def test_timeline_and_history_in_words(site: Site) -> None:
    into_practice(site)
    page = site.as_user("county").get(f"/schools/{SCHOOL}").text
    timeline = page.split("阶段时间线", 1)[1].split("提醒与督办", 1)[0]
    stages = re.findall(r"<tr><td>([^<]+)</td><td>(\d{4}-\d\d-\d\d)</td>", timeline)
    assert [t for t, _d in stages] == ["制定规划", "网络研修", "校本实践"]
    assert "2022-08-31" in timeline and "（当前）" in timeline
    history = page.split(">历史<", 1)[1]
    assert "用户county" not in history and "王主任" in history  # the CLI's actor name as recorded
    assert "推进到下一阶段" in history and "advance" not in visible(history)


def test_reminders_sent_are_listed_with_recipient_channel_and_delivery(site: Site) -> None:
    with transaction(sessions(site.engine)) as s:
        run_id = s.scalar(select(SchoolRun.id).where(SchoolRun.school_code == SCHOOL))
        contact = Contact(scope_code="370323", level="county", name="沂源县项目办", channel="dingtalk", address="robot-1")
        s.add(contact)
        s.flush()
        now = site.clock.now()
        note = Notification(dedupe_key="k1", kind="escalation", contact_id=contact.id, channel="dingtalk", address="robot-1",
                            subject="s", body_text="b", status="sent", next_attempt_at=now, created_at=now,
                            sent_at=now + timedelta(minutes=1))
        s.add(note)
        s.flush()
        s.add(NoticeItem(dedupe_key="overdue:x", notification_id=note.id, run_id=run_id, kind="escalation",
                         level="county", created_at=now))
    page = site.as_user("county").get(f"/schools/{SCHOOL}").text
    notices = page.split("提醒与督办", 1)[1].split(">历史<", 1)[0]
    assert "逐级督办" in notices and "县级 · 沂源县项目办" in notices and "dingtalk" in notices
    assert "已送达 2021-07-01 09:01" in notices
    assert "逐级督办" not in site.as_user("other").get(f"/schools/{OTHER}").text


def test_supervisor_is_offered_the_supervision_result_only_in_supervision(site: Site) -> None:
    sup = site.as_user("sup")
    assert "记录事实" not in sup.get(f"/schools/{SCHOOL}").text
    with transaction(sessions(site.engine)) as s:
        s.execute(update(SchoolRun).where(SchoolRun.school_code == SCHOOL).values(state="supervision"))
    page = sup.get(f"/schools/{SCHOOL}").text
    assert re.findall(r'<option value="([^"]+)"', page.split("记录事实", 1)[1].split("</form>", 1)[0]) == ["supervision_result"]


def test_extension_queue_decided_in_place_only_by_offices(site: Site) -> None:
    with transaction(sessions(site.engine)) as s:
        request_extension(s, site.clock, school_code=SCHOOL, due=site.clock.now().date() + timedelta(days=120),
                          reason="教师外出培训", actor=SCHOOL_ADMIN)
    school = site.as_user("school")
    page = school.get(f"/schools/{SCHOOL}").text
    assert "待审批" in page and "/extension/approve" not in page and "等待上级项目办审批" in page
    assert "/extension/approve" not in school.get("/extensions").text
    assert site.as_user("other").get("/api/extensions").json() == []  # another county's queue is empty
    county = site.as_user("county")
    queue = county.get("/extensions")
    assert "教师外出培训" in queue.text and "测试学校0002" in queue.text and "共 1 项" in queue.text
    (row,) = county.get("/api/extensions").json()
    with sessions(site.engine)() as s:  # the queue shows the due date the request would move
        due_now = s.scalar(select(SchoolRun.due_date).where(SchoolRun.school_code == SCHOOL))
    assert due_now is not None and row["current_due"] == due_now.isoformat()
    assert f'data-label="当前截止">{due_now}</td>' in queue.text
    r = county.post(f"/schools/{SCHOOL}/extension/approve?from=queue",
                    data={"csrf": csrf_of(queue.text), "reason": "同意"})
    assert r.status_code == 303 and r.headers["location"] == "/extensions"
    after = county.get("/extensions").text
    assert "已批准延期" in after and "没有待审批的延期申请" in after


def test_school_page_shows_the_early_warning_and_the_teachers_at_risk(site: Site, tmp_path) -> None:
    """预警 on the school page (issue 11): with three exports of history, the slow teacher of
    tests/engine/forecast/scenario.py makes a miss likely and is named with the hours short;
    before any history the page says there is no forecast yet rather than guessing."""
    from datetime import date, datetime

    from engine.db import sessions, transaction
    from engine.facts import set_fact
    from engine.imports import import_progress
    from engine.runs import fire
    from tests.conftest import SHANGHAI
    from tests.engine.builders import COUNTY_OFFICER, EARLY
    from tests.engine.forecast.scenario import export, slow_teacher_hours

    factory = sessions(site.engine)
    with transaction(factory) as s:
        for name, value in (("plan_filed", 1.0), ("team_members", 4.0)):
            set_fact(s, site.clock, school_code=EARLY[0], name=name, value=value, actor=COUNTY_OFFICER)
        fire(s, site.clock, school_code=EARLY[0], trigger="advance", actor=COUNTY_OFFICER)
    before = site.as_user("county").get(f"/schools/{EARLY[0]}").text
    assert "<h2>预警</h2>" in before and "暂无预测" in before and "<strong>" not in before.split("<h2>预警</h2>")[1].split("<h2>")[0]
    for week, day in enumerate((date(2021, 7, 5), date(2021, 7, 19), date(2021, 8, 2))):
        site.clock.set(datetime(day.year, day.month, day.day, 18, tzinfo=SHANGHAI))
        import_progress(site.engine, export(tmp_path / f"e{week}.csv", slow_teacher_hours(week)), as_of=day, clock=site.clock)
    page = site.as_user("county").get(f"/schools/{EARLY[0]}").text
    assert "<h2>预警</h2>" in page
    assert "错过本阶段截止日期的可能性 <strong>100%</strong>" in page
    assert f"<td>T{EARLY[0]}09</td>" in page  # the slow teacher, by platform id
