"""``rollout plan/status/school/advance/transition`` through the real command line."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select, update

from cli.main import main
from engine.clock import FixedClock
from engine.db import make_engine, sessions, transaction
from engine.models import AuditEvent, SchoolRun
from tests.engine.builders import (
    COUNTY,
    EARLY,
    LATE,
    OTHER,
    PILOT,
    add_teachers,
    plan_data,
    seed,
    write_plan,
)

SCHOOL = EARLY[0]


def run(db_url: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", db_url, "--now", "2021-12-15", *args])


def ok(db_url: str, *args: str) -> Result:
    result = run(db_url, *args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def failed(db_url: str, *args: str) -> str:
    result = run(db_url, *args)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert lines and lines[0].startswith("错误：")
    return result.stderr


@pytest.fixture
def loaded(db_url: str, clock: FixedClock, tmp_path: Path) -> str:
    engine = make_engine(db_url)
    try:
        with transaction(sessions(engine)) as s:
            seed(s, clock)
            add_teachers(s, SCHOOL, 3)
    finally:
        engine.dispose()
    ok(db_url, "plan", "load", str(write_plan(tmp_path, plan_data())), "--actor", "王主任")
    return db_url


def _states(db_url: str) -> dict[str, str]:
    engine = make_engine(db_url)
    try:
        with transaction(sessions(engine)) as s:
            return {r.school_code: r.state for r in s.scalars(select(SchoolRun))}
    finally:
        engine.dispose()


def test_plan_load_and_show(loaded: str) -> None:
    out = ok(loaded, "plan", "show").output
    assert "yiyuan-2021" in out and "b1" in out and "20%" in out and "第二批" in out
    data = json.loads(ok(loaded, "plan", "show", "--json").output)
    assert [(b["id"], b["schools"]) for b in data["batches"]] == [("b1", 1), ("b2", 3), ("b3", 2)]


def test_plan_load_names_batches_in_words(db_url: str, clock: FixedClock, tmp_path: Path) -> None:
    engine = make_engine(db_url)
    try:
        with transaction(sessions(engine)) as s:
            seed(s, clock)
    finally:
        engine.dispose()
    out = ok(db_url, "plan", "load", str(write_plan(tmp_path, plan_data()))).output.strip()
    assert out.startswith("已载入计划 yiyuan-2021：") and "（b1）1 所" in out and ", " not in out


def test_plan_load_bad_file_is_one_error_and_exit_1(loaded: str, tmp_path: Path) -> None:
    message = failed(loaded, "plan", "load", str(write_plan(tmp_path, plan_data(), "again.yaml")))
    assert "yiyuan-2021" in message


def test_status_table_and_json(loaded: str) -> None:
    out = ok(loaded, "status").output
    assert "沂源县(370323)" in out and "淄川区(370302)" in out and "合计" in out and "试点" in out
    rows = json.loads(ok(loaded, "status", "--json").output)
    by = {r["region_code"]: r for r in rows}
    assert by[COUNTY]["schools"] == 5 and by[COUNTY]["stages"]["planning"] == 4 and by[COUNTY]["stages"]["pilot"] == 1
    # on 12-15: EARLY's batch date 2021-09-30 and LATE's 30 working days after 09-01 have passed
    assert by[COUNTY]["overdue"] == 4 and by[COUNTY]["blocked"] == 5
    # engine.school_state: the 4 late schools are 逾期; the pilot, due 12-31, is 16 days out: 进行中
    assert by[COUNTY]["states"]["overdue"] == 4 and by[COUNTY]["states"]["in_progress"] == 1
    assert sum(by[COUNTY]["states"].values()) == 5
    assert "即将到期" in out and "受阻" not in out


def test_school_show_explains_gates(loaded: str) -> None:
    out = ok(loaded, "school", "show", SCHOOL).output
    assert SCHOOL in out and "制定规划" in out
    assert "县级已审核备案学校发展规划：未记录（需 是）✗" in out
    assert "逾期 76 天" in out
    data = json.loads(ok(loaded, "school", "show", SCHOOL, "--json").output)
    assert data["state"] == "planning" and data["due"]["date"] == "2021-09-30"
    assert [g["gate"] for g in data["gates"]] == ["plan_filed", "team_formed"]
    assert all(g["explanation"].endswith("✗") for g in data["gates"])
    assert data["history"][0]["trigger"] == "start"
    # Officials read the workflow's words; the ids `rollout transition` takes stand in brackets.
    assert "推进到下一阶段（advance）" in out and "退回整改" not in out.split("可执行操作：")[0]
    assert "（县级项目办） 开始实施 →制定规划" in out


def test_school_show_offers_only_what_the_role_may_fire(loaded: str) -> None:
    """可执行操作 offered the county office 特批完成, and `transition … override` then said 无权执行
    (issue 17, 6): the list holds only the triggers --role may fire, and each of them is accepted."""
    out = ok(loaded, "school", "show", SCHOOL).output
    offered = out.split("可执行操作：")[1].splitlines()[0]
    assert "推进到下一阶段（advance）" in offered and "（override）" not in offered
    data = json.loads(ok(loaded, "school", "show", SCHOOL, "--json").output)
    assert "override" not in data["allowed"] and "suspend" in data["allowed"]
    province = json.loads(ok(loaded, "school", "show", SCHOOL, "--json", "--role", "province_office").output)
    assert "override" in province["allowed"] and "advance" not in province["allowed"]
    supervisor = json.loads(ok(loaded, "school", "show", SCHOOL, "--json", "--role", "supervisor").output)
    assert supervisor["allowed"] == []
    ok(loaded, "transition", SCHOOL, "suspend", "--reason", "学校合并")  # what was offered is accepted


def test_english_output(loaded: str) -> None:
    result = CliRunner().invoke(main, ["--db", loaded, "--now", "2021-12-15", "--lang", "en", "school", "show", SCHOOL])
    assert result.exit_code == 0, result.output
    assert "Gates:" in result.output and "not recorded (yes needed) ✗" in result.output


def test_facts_then_advance(loaded: str) -> None:
    message = failed(loaded, "advance", SCHOOL)
    assert "关卡未通过" in message and len(message.strip().splitlines()) == 1
    assert ok(loaded, "school", "fact", SCHOOL, "team_members", "4", "--note", "名单").output.strip() == f"{SCHOOL} team_members = 4"
    ok(loaded, "school", "fact", SCHOOL, "plan_filed", "1")
    assert "未变化" in ok(loaded, "school", "fact", SCHOOL, "plan_filed", "1").output
    out = ok(loaded, "advance", SCHOOL, "--actor", "王主任").output
    assert out.strip() == f"{SCHOOL}：制定规划 → 网络研修"  # the stages' words, not ids (issue 17, 19)
    assert _states(loaded)[SCHOOL] == "online_study"
    out = ok(loaded, "advance", SCHOOL).output  # 3 teachers, all ≥ 25 h and 3 points
    assert "网络研修 → 校本实践" in out


def test_fact_role_comes_from_role_option(loaded: str) -> None:
    """--role decides which facts may be recorded (default county_office); a refusal changes nothing."""
    message = failed(loaded, "school", "fact", SCHOOL, "plan_filed", "1", "--role", "supervisor")
    assert "角色 supervisor 不能记录事实项“plan_filed”" in message and "县级项目办（county_office）" in message
    out = ok(loaded, "school", "fact", SCHOOL, "supervision_result", "1", "--role", "supervisor", "--actor", "孙督学")
    assert out.output.strip() == f"{SCHOOL} supervision_result = 1"
    env_refused = CliRunner().invoke(main, ["--db", loaded, "--now", "2021-12-15", "school", "fact", SCHOOL,
                                            "county_spot_check_done", "1"], env={"ROLLOUT_ROLE": "school_admin"})
    assert env_refused.exit_code == 1 and "school_admin" in env_refused.output
    ok(loaded, "school", "fact", SCHOOL, "plan_filed", "1")  # the default role, the county office
    engine = make_engine(loaded)
    try:
        with transaction(sessions(engine)) as s:
            events = s.scalars(select(AuditEvent).where(AuditEvent.school_code == SCHOOL).order_by(AuditEvent.id))
            facts = [(e.actor, e.role, e.trigger) for e in events if e.trigger.startswith("fact:")]
    finally:
        engine.dispose()
    assert [f[1:] for f in facts] == [("supervisor", "fact:supervision_result"), ("county_office", "fact:plan_filed")]
    assert facts[0][0] == "孙督学"


def test_advance_all_ready_region(loaded: str) -> None:
    for code in (SCHOOL, OTHER):
        ok(loaded, "school", "fact", code, "plan_filed", "1")
        ok(loaded, "school", "fact", code, "team_members", "3")
    out = ok(loaded, "advance", "--all-ready", "--region", COUNTY).output
    assert "已推进 1 所学校" in out and "制定规划 → 网络研修: 1" in out
    states = _states(loaded)
    assert states[SCHOOL] == "online_study" and states[OTHER] == "planning" and states[PILOT] == "pilot"
    data = json.loads(ok(loaded, "advance", "--all-ready", "--json").output)
    assert data["advanced"] == 2 and data["not_started"] == 0  # OTHER, and SCHOOL on to practice
    assert _states(loaded)[OTHER] == "online_study"


def test_advance_needs_code_or_all_ready(loaded: str) -> None:
    result = run(loaded, "advance")
    assert result.exit_code == 2


def test_transition_return_for_rework(loaded: str) -> None:
    ok(loaded, "school", "fact", SCHOOL, "plan_filed", "1")
    ok(loaded, "school", "fact", SCHOOL, "team_members", "3")
    ok(loaded, "advance", SCHOOL)
    message = failed(loaded, "transition", SCHOOL, "return_for_rework")
    assert "理由" in message
    out = ok(loaded, "transition", SCHOOL, "return_for_rework", "--reason", "规划需修改", "--role", "city_office").output
    assert out.strip() == f"{SCHOOL}：退回整改 网络研修 → 制定规划"
    engine = make_engine(loaded)
    try:
        with transaction(sessions(engine)) as s:
            last = s.scalars(select(AuditEvent).where(AuditEvent.school_code == SCHOOL)
                             .order_by(AuditEvent.id.desc()).limit(1)).one()
            assert (last.trigger, last.role, last.reason) == ("return_for_rework", "city_office", "规划需修改")
    finally:
        engine.dispose()


def test_transition_extend_and_stale_version(loaded: str) -> None:
    ok(loaded, "transition", SCHOOL, "extend", "--reason", "疫情", "--due", "2022-01-31")
    assert "2022-01-31" in ok(loaded, "school", "show", SCHOOL).output
    failed(loaded, "transition", SCHOOL, "extend", "--reason", "疫情", "--due", "2023-03-01")
    failed(loaded, "transition", SCHOOL, "suspend", "--reason", "x", "--expect-version", "99")
    assert _states(loaded)[SCHOOL] == "planning"


def test_errors_are_one_line(loaded: str) -> None:
    assert "3703239999" in failed(loaded, "school", "show", "3703239999")
    assert "school_admin" in failed(loaded, "advance", SCHOOL, "--role", "school_admin")
    assert "graduate" in failed(loaded, "transition", LATE[0], "graduate")


def test_init_derives_runs_left_underived_by_an_upgrade(loaded: str) -> None:
    """A database upgraded to migration 0004 holds runs with no stored status until ``init`` (or a read)."""
    engine = make_engine(loaded)
    with transaction(sessions(engine)) as s:
        expected = {r.school_code: (r.due_date, r.blocked) for r in s.scalars(select(SchoolRun))}
        s.execute(update(SchoolRun).values(derived_ok=False, due_date=None, blocked=False, failing=None))
    first = ok(loaded, "init")
    assert f"已计算 {len(expected)} 所学校的截止日期与关卡状态" in first.output
    with sessions(engine)() as s:
        assert {r.school_code: (r.due_date, r.blocked) for r in s.scalars(select(SchoolRun))} == expected
        assert all(r.derived_ok for r in s.scalars(select(SchoolRun)))
    engine.dispose()
    assert "已计算" not in ok(loaded, "init").output  # nothing left to derive


def test_a_database_locked_by_another_writer_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite "database is locked" was a traceback: wait (busy timeout), then say so (issue 12, Low)."""
    import sqlite3

    import engine.db as db_module
    from engine.clock import FixedClock
    from engine.db import make_engine, sessions, transaction, upgrade
    from tests.conftest import SHANGHAI
    from tests.engine.builders import EARLY, seed_with_plan

    path = tmp_path / "busy.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with transaction(sessions(engine)) as s:
        seed_with_plan(s, FixedClock(datetime(2021, 7, 1, 9, tzinfo=SHANGHAI)), tmp_path)
    engine.dispose()
    monkeypatch.setattr(db_module, "SQLITE_BUSY_SECONDS", 0.2)
    holder = sqlite3.connect(path)
    holder.execute("BEGIN IMMEDIATE")  # another process mid-write
    try:
        result = CliRunner().invoke(main, ["--db", f"sqlite:///{path}", "--now", "2021-07-01T10:00", "transition",
                                           EARLY[0], "suspend", "--reason", "停课"])
    finally:
        holder.rollback()
        holder.close()
    assert result.exit_code == 1, result.output
    assert "数据库正忙" in result.output and "Traceback" not in result.output
