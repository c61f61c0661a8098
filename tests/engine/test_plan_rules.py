"""What an office reads back from a plan: its summary, and each refusal in its own words (Chinese first)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import FixedClock
from engine.db import transaction
from engine.errors import PlanFileError
from engine.plan import find_plan, load_plan, plan_summary
from tests.engine.builders import EARLY, OTHER, plan_data, seed, write_plan


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


REFUSALS: list[tuple[str, dict[str, Any], str, str]] = [
    ("year out of range", {"year": 1999}, "year", "年份应为 2000–2100 的整数，不是 1999"),
    ("year not a number", {"year": True}, "year", "年份应为 2000–2100 的整数"),
    ("plan code too long", {"plan": "x" * 101}, "plan", "计划编号应为 1–100 个字符的文字"),
    ("batches not a list", {"batches": {"b1": 1}}, "batches", "batches 应为批次列表"),
    ("unknown timezone", {"timezone": "Mars/Base"}, "timezone", "未知时区：Mars/Base"),
    ("not a date", {"final_deadline": "2022-13-01"}, "final_deadline", "不是日期（YYYY-MM-DD）：'2022-13-01'"),
    ("a batch not a mapping", {"batches": ["b1"]}, "batches[0]", "批次应为映射"),
    ("unknown batch key", {"batches": [_batch(colour="red")]}, "batches[0].colour", "未知的键“colour”"),
    ("duplicate batch id", {"batches": [_batch(share=0.5), _batch(share=0.5, schools={"pilot": True})]},
     "batches[1].id", "批次编号重复：b1"),
    ("share out of range", {"batches": [_batch(share=1.5)]}, "batches[0].share",
     "占比应为 0 到 1 之间的数（如 0.4），不是 1.5"),
    ("deadlines not a mapping", {"batches": [_batch(deadlines=["planning"])]}, "batches[0].deadlines",
     "deadlines 应为“阶段: 日期”的映射"),
    ("unknown stage", {"batches": [_batch(deadlines={"nowhere": "2021-09-30"})]}, "batches[0].deadlines.nowhere",
     "未知阶段：nowhere"),
    ("no schools", {"batches": [_batch(schools=None)]}, "batches[0].schools", "批次未指定学校"),
    ("schools not a rule", {"batches": [_batch(schools="all")]}, "batches[0].schools", "schools 应为学校代码列表或规则"),
    ("unknown rule", {"batches": [_batch(schools={"rest": True, "every": True})]}, "batches[0].schools.every",
     "未知的规则“every”"),
    ("pilot false", {"batches": [_batch(schools={"pilot": False})]}, "batches[0].schools.pilot", "pilot 只能写 true"),
    ("rest false", {"batches": [_batch(schools={"rest": False})]}, "batches[0].schools.rest", "rest 只能写 true"),
    ("codes not a list", {"batches": [_batch(schools={"codes": "3703230002"})]}, "batches[0].schools.codes",
     "codes 应为学校代码列表"),
    ("unknown school", {"batches": [_batch(schools={"codes": ["9999999999"]})]}, "batches[0].schools.codes[0]",
     "未知学校：9999999999"),
    ("binds not a list", {"final_deadline_binds": "planning"}, "final_deadline_binds",
     "final_deadline_binds 应为阶段标识列表"),
]


@pytest.mark.parametrize(("case", "over", "field", "words"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_each_refusal_says_what_is_wrong_where(factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path,
                                               case: str, over: dict[str, Any], field: str, words: str) -> None:
    """Offices fix a refused plan from the message alone: the field and the Chinese words for the problem."""
    with transaction(factory) as s:
        seed(s, clock)
    with pytest.raises(PlanFileError) as info, transaction(factory) as s:
        load_plan(s, write_plan(tmp_path, plan_data(**over)), clock)
    found = [(p.field, p.message) for p in info.value.problems]
    assert any(f == field and words in m for f, m in found), (case, found)


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
