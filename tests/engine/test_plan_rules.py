"""What an office reads back from a plan: its summary, and each refusal in its own words (Chinese first)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import FixedClock
from engine.db import transaction
from engine.errors import PlanFileError, TextRefused
from engine.i18n import set_language
from engine.models import Plan, SchoolRun, WorkflowVersion
from engine.plan import find_plan, load_plan, plan_summary
from tests.engine.builders import (
    ALL_SCHOOLS,
    CITY,
    COUNTY,
    EARLY,
    OTHER,
    OTHER_COUNTY,
    PILOT,
    PROVINCE,
    plan_data,
    seed,
    write_plan,
)


def test_the_plan_summary_shows_every_setting_and_the_batches_in_start_order(
        factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    """`rollout plan show`: the plan as loaded; batches by start date, an empty batch with 0 schools."""
    data = plan_data()
    data["batches"].insert(0, {"id": "b9", "title": "补充批", "start": "2021-10-01", "start_stage": "planning",
                               "schools": {"codes": []}})
    data["batches"][1]["share"] = None
    data["batches"][2]["share"] = 0.6
    data["batches"][3]["share"] = 0.4
    with transaction(factory) as s:
        seed(s, clock)
        load_plan(s, write_plan(tmp_path, data), clock)
        summary = plan_summary(s, find_plan(s, None))
    assert summary == {
        "plan": "yiyuan-2021", "title": "沂源县提升工程2.0整校推进", "year": 2021, "timezone": "Asia/Shanghai",
        "final_deadline": date(2022, 11, 30), "final_deadline_binds": None, "extension_cap": date(2022, 12, 31),
        "batches": [
            {"id": "b1", "title": "试点", "start": date(2021, 6, 1), "share": None, "schools": 1},
            {"id": "b2", "title": "第一批", "start": date(2021, 6, 15), "share": 0.6, "schools": len([*EARLY, OTHER])},
            {"id": "b3", "title": "第二批", "start": date(2021, 9, 1), "share": 0.4, "schools": 2},
            {"id": "b9", "title": "补充批", "start": date(2021, 10, 1), "share": None, "schools": 0},
        ]}


def _batch(**over: Any) -> dict[str, Any]:
    return {"id": "b1", "start": "2021-06-01", "share": 1.0, "schools": {"rest": True}, **over}


REFUSALS: list[tuple[str, dict[str, Any], str, str, str]] = [
    ("unknown key", {"colour": "blue"}, "colour", "未知的键“colour”", "unknown key 'colour'"),
    ("year out of range", {"year": 1999}, "year", "年份应为 2000–2100 的整数，不是 1999",
     "year must be a whole number 2000–2100, not 1999"),
    ("year past 2100", {"year": 2101}, "year", "年份应为 2000–2100 的整数，不是 2101",
     "year must be a whole number 2000–2100, not 2101"),
    ("year not a number", {"year": True}, "year", "年份应为 2000–2100 的整数，不是 True",
     "year must be a whole number 2000–2100, not True"),
    ("year as text", {"year": "2021"}, "year", "年份应为 2000–2100 的整数，不是 '2021'",
     "year must be a whole number 2000–2100, not '2021'"),
    ("plan code too long", {"plan": "x" * 101}, "plan", "计划编号应为 1–100 个字符的文字",
     "the plan code must be text of 1–100 characters"),
    ("plan code empty", {"plan": ""}, "plan", "计划编号应为 1–100 个字符的文字",
     "the plan code must be text of 1–100 characters"),
    ("plan code a list", {"plan": ["a"]}, "plan", "计划编号应为 1–100 个字符的文字",
     "the plan code must be text of 1–100 characters"),
    ("batches not a list", {"batches": {"b1": 1}}, "batches", "batches 应为批次列表", "batches must be a list of batches"),
    ("unknown timezone", {"timezone": "Mars/Base"}, "timezone", "未知时区：Mars/Base", "unknown timezone: Mars/Base"),
    ("not a date", {"final_deadline": "2022-13-01"}, "final_deadline", "不是日期（YYYY-MM-DD）：'2022-13-01'",
     "not a date (YYYY-MM-DD): '2022-13-01'"),
    ("unknown workflow", {"workflow": "nope"}, "workflow", "数据库中没有工作流 nope@1（先用 rollout workflow load 加载）",
     "no workflow nope@1 in the database (load it with rollout workflow load)"),
    ("cap not a date", {"extension_cap": "soon"}, "extension_cap", "不是日期（YYYY-MM-DD）：'soon'",
     "not a date (YYYY-MM-DD): 'soon'"),
    ("cap before the final deadline", {"extension_cap": "2022-11-29"}, "extension_cap", "延期上限早于最终截止日期",
     "extension cap is before the final deadline"),
    ("a batch not a mapping", {"batches": ["b1"]}, "batches[0]", "批次应为映射", "a batch must be a mapping"),
    ("unknown batch key", {"batches": [_batch(colour="red")]}, "batches[0].colour", "未知的键“colour”",
     "unknown key 'colour'"),
    ("duplicate batch id", {"batches": [_batch(share=0.5), _batch(share=0.5, schools={"pilot": True})]},
     "batches[1].id", "批次编号重复：b1", "duplicate batch id: b1"),
    ("a batch without a start", {"batches": [_batch(start=None)]}, "batches[0].start", "不是日期（YYYY-MM-DD）：None",
     "not a date (YYYY-MM-DD): None"),
    ("not an entry stage", {"batches": [_batch(start_stage="online_study")]}, "batches[0].start_stage",
     "“online_study”不是该流程允许的起始阶段（planning, pilot）",
     "'online_study' is not an entry stage of the workflow (planning, pilot)"),
    ("share out of range", {"batches": [_batch(share=1.5)]}, "batches[0].share",
     "占比应为 0 到 1 之间的数（如 0.4），不是 1.5", "share must be a number from 0 to 1 (e.g. 0.4), not 1.5"),
    ("share below 0", {"batches": [_batch(share=-0.1)]}, "batches[0].share",
     "占比应为 0 到 1 之间的数（如 0.4），不是 -0.1", "share must be a number from 0 to 1 (e.g. 0.4), not -0.1"),
    ("share not a number", {"batches": [_batch(share=True)]}, "batches[0].share",
     "占比应为 0 到 1 之间的数（如 0.4），不是 True", "share must be a number from 0 to 1 (e.g. 0.4), not True"),
    ("shares not 100 %", {"batches": [_batch(share=0.8)]}, "batches", "各批次占比之和应为 100%，实为 80%",
     "batch shares must sum to 100 %, they sum to 80%"),
    ("deadlines not a mapping", {"batches": [_batch(deadlines=["planning"])]}, "batches[0].deadlines",
     "deadlines 应为“阶段: 日期”的映射", "deadlines must map stages to dates"),
    ("unknown stage", {"batches": [_batch(deadlines={"nowhere": "2021-09-30"})]}, "batches[0].deadlines.nowhere",
     "未知阶段：nowhere", "unknown stage: nowhere"),
    ("a deadline not a date", {"batches": [_batch(deadlines={"planning": "soon"})]}, "batches[0].deadlines.planning",
     "不是日期（YYYY-MM-DD）：'soon'", "not a date (YYYY-MM-DD): 'soon'"),
    ("deadline before the start", {"batches": [_batch(deadlines={"planning": "2021-05-31"})]},
     "batches[0].deadlines.planning", "截止日期 2021-05-31 早于批次开始 2021-06-01",
     "deadline 2021-05-31 is before the batch starts (2021-06-01)"),
    ("deadline after the final", {"batches": [_batch(deadlines={"planning": "2022-12-01"})]},
     "batches[0].deadlines.planning", "截止日期 2022-12-01 晚于最终截止日期 2022-11-30",
     "deadline 2022-12-01 is after the final deadline 2022-11-30"),
    ("no schools", {"batches": [_batch(schools=None)]}, "batches[0].schools", "批次未指定学校", "the batch names no schools"),
    ("schools not a rule", {"batches": [_batch(schools="all")]}, "batches[0].schools", "schools 应为学校代码列表或规则",
     "schools must be a list of codes or a rule"),
    ("unknown rule", {"batches": [_batch(schools={"rest": True, "every": True})]}, "batches[0].schools.every",
     "未知的规则“every”", "unknown rule 'every'"),
    ("a rule that selects nothing", {"batches": [_batch(schools={})]}, "batches[0].schools", "规则未选出学校",
     "the rule selects nothing"),
    ("pilot false", {"batches": [_batch(schools={"pilot": False})]}, "batches[0].schools.pilot", "pilot 只能写 true",
     "pilot takes only true"),
    ("rest false", {"batches": [_batch(schools={"rest": False})]}, "batches[0].schools.rest", "rest 只能写 true",
     "rest takes only true"),
    ("codes not a list", {"batches": [_batch(schools={"codes": "3703230002"})]}, "batches[0].schools.codes",
     "codes 应为学校代码列表", "codes must be a list of school codes"),
    ("unknown school", {"batches": [_batch(schools={"codes": ["9999999999"]})]}, "batches[0].schools.codes[0]",
     "未知学校：9999999999", "unknown school: 9999999999"),
    ("a school outside the plan's region", {"region": OTHER_COUNTY, "batches": [_batch(schools={"codes": [PILOT]})]},
     "batches[0].schools.codes[0]", f"未知学校：{PILOT}", f"unknown school: {PILOT}"),
    ("a school in two batches", {"batches": [_batch(share=0.5, schools={"codes": [PILOT]}),
                                             _batch(id="b2", share=0.5, schools={"codes": [PILOT]})]},
     "batches[1].schools.codes[0]", f"学校 {PILOT} 已在批次 b1 中", f"school {PILOT} is already in batch b1"),
    ("binds not a list", {"final_deadline_binds": "planning"}, "final_deadline_binds",
     "final_deadline_binds 应为阶段标识列表", "final_deadline_binds must be a list of stage ids"),
    ("binds not stage ids", {"final_deadline_binds": [1]}, "final_deadline_binds",
     "final_deadline_binds 应为阶段标识列表", "final_deadline_binds must be a list of stage ids"),
    ("binds an unknown stage", {"final_deadline_binds": ["planning", "nowhere"]}, "final_deadline_binds[1]",
     "未知阶段：nowhere", "unknown stage: nowhere"),
]


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize(("case", "over", "field", "zh", "en"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_each_refusal_says_what_is_wrong_where(factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path,
                                               case: str, over: dict[str, Any], field: str, zh: str, en: str,
                                               lang: str) -> None:
    """Offices fix a refused plan from the message alone: the field and the words for the problem,
    in Chinese by default and in English on request; nothing is written."""
    with transaction(factory) as s:
        seed(s, clock)
    set_language(lang)
    with pytest.raises(PlanFileError) as info, transaction(factory) as s:
        load_plan(s, write_plan(tmp_path, plan_data(**over)), clock)
    found = [(p.field, p.message) for p in info.value.problems]
    assert (field, zh if lang == "zh" else en) in found, (case, found)
    with transaction(factory) as s:
        assert s.scalar(select(func.count()).select_from(Plan)) == 0


def test_a_missing_required_key_is_named(factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    data = plan_data()
    del data["year"]
    with transaction(factory) as s:
        seed(s, clock)
    with pytest.raises(PlanFileError) as info, transaction(factory) as s:
        load_plan(s, write_plan(tmp_path, data), clock)
    assert any("缺少必填项“year”" in p.message for p in info.value.problems)


def test_a_plan_file_that_is_not_a_mapping_is_refused(factory: sessionmaker[Session], clock: FixedClock,
                                                     tmp_path: Path) -> None:
    with transaction(factory) as s:
        seed(s, clock)
    with pytest.raises(PlanFileError) as info, transaction(factory) as s:
        load_plan(s, write_plan(tmp_path, "- just\n- a list\n"), clock)
    assert [(p.line, p.message[:8]) for p in info.value.problems] == [(1, "计划文件应为映射")]


@pytest.mark.parametrize(("level", "region", "schools"), [
    ("province", PROVINCE, set(ALL_SCHOOLS)), ("city", CITY, set(ALL_SCHOOLS)),
    ("county", OTHER_COUNTY, {OTHER}), ("county", COUNTY, set(ALL_SCHOOLS) - {OTHER})])
def test_a_plans_region_at_any_level_limits_its_schools(factory: sessionmaker[Session], clock: FixedClock,
                                                        tmp_path: Path, level: str, region: str, schools: set[str]) -> None:
    """docs/plan-files.md `region`: only schools of this province, city or county may be selected."""
    data = plan_data(region=int(region), batches=[{"id": "all", "start": "2021-06-01", "schools": {"rest": True}}])
    with transaction(factory) as s:
        seed(s, clock)
        load_plan(s, write_plan(tmp_path, data), clock)
        assert set(s.scalars(select(SchoolRun.school_code))) == schools, level


def test_a_plan_follows_the_workflow_version_it_names_else_the_latest(factory: sessionmaker[Session],
                                                                      clock: FixedClock, tmp_path: Path) -> None:
    from tests.engine.version_builders import online_20h, register_variant

    with transaction(factory) as s:
        seed(s, clock)
        register_variant(s, clock, "2", online_20h)
        pinned = load_plan(s, write_plan(tmp_path, plan_data(plan="pinned", workflow_version=1)), clock)
        latest = plan_data(plan="latest")
        del latest["workflow_version"]
        unpinned = load_plan(s, write_plan(tmp_path, latest, "latest.yaml"), clock)
        versions = {p.code: s.get(WorkflowVersion, p.workflow_version_id) for p in (pinned, unpinned)}
        assert {c: v.version for c, v in versions.items() if v} == {"pinned": "1", "latest": "2"}
        assert {r.workflow_version_id for r in s.scalars(select(SchoolRun).where(SchoolRun.plan_id == pinned.id))} == {
            pinned.workflow_version_id}


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_plan_title_holds_at_most_300_characters(factory: sessionmaker[Session], clock: FixedClock,
                                                   tmp_path: Path, lang: str) -> None:
    with transaction(factory) as s:
        seed(s, clock)
        assert load_plan(s, write_plan(tmp_path, plan_data(title="题" * 300)), clock).title == "题" * 300
    set_language(lang)
    with pytest.raises(TextRefused) as info, transaction(factory) as s:
        load_plan(s, write_plan(tmp_path, plan_data(plan="long", title="题" * 301), "long.yaml"), clock)
    assert str(info.value) == ("计划名称太长：最多 300 个字符，实为 301 个" if lang == "zh" else
                               "plan title is too long: at most 300 characters, not 301")


def test_a_numeric_plan_code_and_county_are_read_as_text(factory: sessionmaker[Session], clock: FixedClock,
                                                         tmp_path: Path) -> None:
    """YAML reads `plan: 2021` and `county: 370302` as numbers; they are codes all the same."""
    data = plan_data(plan=2021, final_deadline_binds=["online_study", "online_study"], batches=[
        {"id": "c", "start": "2021-06-01", "schools": {"county": int(OTHER_COUNTY)}}])
    with transaction(factory) as s:
        seed(s, clock)
        load_plan(s, write_plan(tmp_path, data), clock)
        plan = find_plan(s, "2021")
        assert plan.final_deadline_stages == ["online_study"]  # a stage named twice is bound once
        assert list(s.scalars(select(SchoolRun.school_code))) == [OTHER]


def test_batches_that_are_not_a_list_are_the_one_problem(factory: sessionmaker[Session], clock: FixedClock,
                                                         tmp_path: Path) -> None:
    """A mapping where the batch list belongs is reported once, not also read as batches."""
    with transaction(factory) as s:
        seed(s, clock)
    with pytest.raises(PlanFileError) as info, transaction(factory) as s:
        load_plan(s, write_plan(tmp_path, plan_data(batches={"b1": {"start": "2021-06-01"}})), clock)
    assert [(p.field, p.message) for p in info.value.problems] == [("batches", "batches 应为批次列表")]


def test_every_batch_is_checked_after_a_bad_one(factory: sessionmaker[Session], clock: FixedClock,
                                                tmp_path: Path) -> None:
    """docs/plan-files.md: every problem is listed, so a batch that is not a mapping does not hide the next."""
    with transaction(factory) as s:
        seed(s, clock)
    data = plan_data(batches=["b1", {"id": "b2", "start": "2021-06-01", "colour": "red", "schools": {"rest": True}}])
    with pytest.raises(PlanFileError) as info, transaction(factory) as s:
        load_plan(s, write_plan(tmp_path, data), clock)
    assert [(p.field, p.message) for p in info.value.problems] == [
        ("batches[0]", "批次应为映射"), ("batches[1].colour", "未知的键“colour”")]


def test_an_unknown_workflow_is_reported_alone_for_batches_without_a_start_stage(
        factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    """Without the workflow there is no initial stage to default to: the file is refused for the workflow."""
    with transaction(factory) as s:
        seed(s, clock)
    data = plan_data(workflow="nope", batches=[{"id": "b1", "start": "2021-06-01", "schools": {"rest": True}}])
    with pytest.raises(PlanFileError) as info, transaction(factory) as s:
        load_plan(s, write_plan(tmp_path, data), clock)
    assert [p.field for p in info.value.problems] == ["workflow"]
