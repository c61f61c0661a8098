"""Gates judged and explained in words an official reads: no data is not 0 %, 99.6 % is not 100 %."""

from __future__ import annotations

import pytest

from engine.gate import all_passed, failing, format_value, judge, judge_stage
from engine.i18n import set_language
from tests.engine.builders import shipped_workflow

WF = shipped_workflow()
ONLINE = WF.stage("online_study")
ONLINE_GATE = ONLINE.gates[0]
ONLINE_METRIC = WF.metrics[ONLINE_GATE.metric]


def test_failing_share_is_explained_in_chinese() -> None:
    r = judge(ONLINE_GATE, ONLINE_METRIC, 0.83)
    assert not r.passed
    text = r.explain()
    assert "83%" in text and "需 ≥ 100%" in text and text.endswith("✗")
    assert ONLINE_GATE.title.zh in text


def test_explained_in_english() -> None:
    set_language("en")
    text = judge(ONLINE_GATE, ONLINE_METRIC, 0.83).explain()
    assert "83%" in text and "≥ 100% needed" in text and ONLINE_GATE.title.en in text


def test_a_count_says_its_unit_in_each_language() -> None:
    """The team gate counts people: 需 ≥ 3人 in Chinese, "≥ 3 people needed" in English (the
    workflow file writes the unit as officials do)."""
    team_gate = next(g for g in WF.stage("planning").gates if WF.metrics[g.metric].unit == "人")
    r = judge(team_gate, WF.metrics[team_gate.metric], 2)
    assert "：2人（需 ≥ 3人）✗" in r.explain()
    set_language("en")
    assert r.explain().endswith(": 2 people (≥ 3 people needed) ✗")
    assert format_value(1, "期", english=True) == "1 cohort(s)" and format_value(4, "间", english=True) == "4间"


def test_no_data_is_not_zero_and_fails() -> None:
    r = judge(ONLINE_GATE, ONLINE_METRIC, None)
    assert not r.passed
    assert "无数据" in r.explain()
    set_language("en")
    assert "no data" in r.explain()
    assert "no data (" in r.explain()


@pytest.mark.parametrize("value,shown", [(0.996, "99.6%"), (0.9999, "99.9%"), (0.99999, "99.9%")])
def test_share_never_rounds_up_to_100(value: float, shown: str) -> None:
    assert format_value(value, "share") == shown
    r = judge(ONLINE_GATE, ONLINE_METRIC, value)
    assert not r.passed
    assert f"{shown}（" in r.explain()
    assert "100%（" not in r.explain()


def test_full_share_passes() -> None:
    r = judge(ONLINE_GATE, ONLINE_METRIC, 1.0)
    assert r.passed and "100%" in r.explain() and r.explain().endswith("✓")


def test_units_of_counts_and_facts() -> None:
    team = WF.stage("planning").gates[1]
    r = judge(team, WF.metrics[team.metric], 2.0)
    assert not r.passed and "2人" in r.explain() and "≥ 3人" in r.explain()


def test_judge_stage_reports_each_gate_and_missing_metrics_as_no_data() -> None:
    results = judge_stage(WF, WF.stage("planning"), {"plan_filed": 1.0})
    assert [r.gate for r in results] == ["plan_filed", "team_formed"]
    assert results[0].passed and not results[1].passed and results[1].actual is None
    assert not all_passed(results)
    assert [r.gate for r in failing(results)] == ["team_formed"]
    assert results[1].as_dict()["required"] == 3


def test_no_data_is_said_in_full() -> None:
    r = judge(ONLINE_GATE, ONLINE_METRIC, None)
    assert r.explain() == f"{ONLINE_GATE.title.zh}：无数据（需 ≥ 100%）✗"


@pytest.mark.parametrize(("value", "unit", "shown"), [
    (3, "count", "3"), (2, "bool", "2"), (2.5, "", "2.5"),  # bare numbers: no unit word to show
    (4, "人", "4人"), (30, "学时", "30学时"),  # a unit the workflow names is written after the number
])
def test_units_are_written_after_the_number_except_counts_and_yes_no(value: float, unit: str, shown: str) -> None:
    assert format_value(value, unit) == shown


def test_a_yes_no_fact_reads_yes_or_no_and_unrecorded_is_said_so() -> None:
    """Issue 10: "县级已审核备案学校发展规划：无数据（需 ≥ 1）" is not how an official speaks."""
    filed = WF.metrics["plan_filed"]
    assert filed.unit == "bool"  # range [0, 1], no unit: the loader calls it a yes/no fact
    gate = next(g for s in WF.stages for g in s.gates if g.metric == "plan_filed")
    assert judge(gate, filed, None).explain() == f"{gate.title.zh}：未记录（需 是）✗"
    assert judge(gate, filed, 0).explain() == f"{gate.title.zh}：否（需 是）✗"
    assert judge(gate, filed, 1).explain() == f"{gate.title.zh}：是（需 是）✓"
    set_language("en")
    assert judge(gate, filed, None).explain() == f"{gate.title.en}: not recorded (yes needed) ✗"
    set_language("zh")
    team = WF.metrics["team_members"]  # a fact with a unit: the number, and 未记录 while unrecorded
    team_gate = next(g for s in WF.stages for g in s.gates if g.metric == "team_members")
    assert judge(team_gate, team, None).explain() == f"{team_gate.title.zh}：未记录（需 ≥ 3人）✗"
    assert format_value(1, "bool") == "是" and format_value(0, "bool", english=True) == "no"


@pytest.mark.parametrize(("op", "value", "asked"), [
    ("==", 0, "需 否"),  # only "no" passes: the gate asks for 否
    ("<", 1, "需 否"),
    (">", 0, "需 是"),
    (">=", 0, "需 ≥ 0"),  # both pass: not a yes/no question, said as a comparison
])
def test_a_yes_no_gate_asks_for_the_one_answer_that_passes(op: str, value: float, asked: str) -> None:
    from dataclasses import replace

    filed = WF.metrics["plan_filed"]
    gate = replace(next(g for s in WF.stages for g in s.gates if g.metric == "plan_filed"), op=op, value=value)
    assert f"：是（{asked}）" in judge(gate, filed, 1).explain()


def test_a_result_records_which_gate_and_metric_it_judged() -> None:
    """The audit event keeps each gate's result; it must say what was measured, not only the verdict."""
    got = judge(ONLINE_GATE, ONLINE_METRIC, 0.5).as_dict()
    assert (got["gate"], got["metric"], got["op"], got["required"], got["actual"], got["passed"]) == (
        "online_25h", "online_25h_share", ">=", 1.0, 0.5, False)
