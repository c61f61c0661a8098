"""The workflow files rollout ships: all valid, and whole-school-2.0 carries the seeds' gates."""

from __future__ import annotations

from datetime import date

import pytest

from engine.workflow.loader import load_workflow_file, validate_files
from engine.workflow.model import DueRule, Workflow
from engine.workflow.versions import shipped_workflow_paths


def _load(name: str) -> Workflow:
    (path,) = [p for p in shipped_workflow_paths() if p.name == name]
    return load_workflow_file(path)


def test_every_shipped_file_validates() -> None:
    paths = shipped_workflow_paths()
    assert len(paths) >= 2
    result = validate_files(paths)
    assert result == {str(p): [] for p in paths}


def test_shipped_ids_are_unique_and_match_file_names() -> None:
    workflows = [load_workflow_file(p) for p in shipped_workflow_paths()]
    assert len({wf.id for wf in workflows}) == len(workflows)
    for path, wf in zip(shipped_workflow_paths(), workflows, strict=True):
        assert path.stem == wf.id


def _gates(wf: Workflow, stage: str) -> set[tuple[str, str, float]]:
    return {(g.metric, g.op, g.value) for g in wf.stage(stage).gates}


def test_whole_school_stages_and_roots() -> None:
    wf = _load("whole-school-2.0.yaml")
    assert [s.id for s in wf.stages] == [
        "pilot", "planning", "online_study", "practice", "assessment", "supervision", "done", "suspended"
    ]
    assert wf.initial == "planning" and wf.entry_stages == ("pilot",)
    assert wf.stage("done").terminal and wf.stage("suspended").hold
    assert set(wf.roles) == {"school_admin", "county_office", "city_office", "province_office", "supervisor"}


@pytest.mark.parametrize(
    ("stage", "gates"),
    [
        ("pilot", {("pilot_summary_filed", ">=", 1.0)}),
        ("planning", {("plan_filed", ">=", 1.0), ("team_members", ">=", 3.0)}),
        ("online_study", {("online_25h_share", ">=", 1.0), ("points_chosen_share", ">=", 1.0)}),
        ("practice", {("practice_25h_share", ">=", 1.0), ("points_evidence_share", ">=", 1.0)}),
        ("assessment", {("assessment_entered", ">=", 1.0), ("county_spot_check_done", ">=", 1.0)}),
        ("supervision", {("supervision_result", ">=", 1.0)}),
    ],
)
def test_whole_school_has_the_seed_gates(stage: str, gates: set[tuple[str, str, float]]) -> None:
    wf = _load("whole-school-2.0.yaml")
    assert _gates(wf, stage) == gates
    assert all(g.source for g in wf.stage(stage).gates)  # every gate cites its seed


def test_whole_school_metrics_follow_the_seeds() -> None:
    m = _load("whole-school-2.0.yaml").metrics
    assert [(c.field, c.op, c.value) for c in m["online_25h_share"].where] == [("online_hours", ">=", 25.0)]
    assert [(c.field, c.op, c.value) for c in m["practice_25h_share"].where] == [("practice_hours", ">=", 25.0)]
    assert [(c.field, c.value) for c in m["points_evidence_share"].where] == [("points_count", 3.0), ("evidence_count", 3.0)]
    assert m["assessed_share"].where[0].value == ("pass", "excellent")
    assert m["teachers"].kind == "count_of_teachers"
    for fact in ("pilot_summary_filed", "plan_filed", "team_members", "assessment_entered", "county_spot_check_done", "supervision_result"):
        assert m[fact].kind == "fact" and m[fact].fact == fact


def test_whole_school_deadlines_and_reminders() -> None:
    wf = _load("whole-school-2.0.yaml")
    assert wf.stage("supervision").due == DueRule("date", date=date(2022, 11, 30))  # 001 hard final date
    assert wf.stage("planning").due == DueRule("after_stage_entry", amount=30, working_days=True)
    for stage in ("pilot", "planning", "online_study", "practice", "assessment", "supervision"):
        remind = wf.stage(stage).remind
        assert remind is not None
        assert remind.before_days == (14, 3) and remind.repeat_days == 7
        assert [(e.after_days, e.to) for e in remind.escalate] == [(0, "school"), (7, "county"), (30, "city"), (60, "province")]


def test_whole_school_transitions() -> None:
    wf = _load("whole-school-2.0.yaml")
    order = ["pilot", "planning", "online_study", "practice", "assessment", "supervision", "done"]
    for src, dst in zip(order, order[1:], strict=False):
        t = wf.transition_for("advance", src)
        assert t is not None and t.dest == dst and t.roles == ("county_office",)
    assert wf.auto_advance_from("pilot") is None
    assert wf.auto_advance_from("online_study") is not None
    suspend = wf.transition_for("suspend", "practice")
    assert suspend is not None and suspend.dest == "suspended" and suspend.reason_required
    resume = wf.transition_for("resume", "suspended")
    assert resume is not None and resume.dest == "@previous"
    override = wf.transition_for("override", "online_study")
    assert override is not None and override.dest == "done"
    assert set(override.roles) == {"province_office", "city_office"} and override.reason_required
    back = wf.transition_for("return_for_rework", "supervision")
    assert back is not None and back.dest == "assessment" and back.reason_required
    assert wf.transitions_from("done") == []


def test_henan_contractor_is_a_different_fact_gated_workflow() -> None:
    wf = _load("henan-contractor-2021.yaml")
    assert wf.id == "henan-contractor-2021" and "contractor" in wf.roles
    assert ("briefings_submitted", ">=", 3.0) in _gates(wf, "training")  # 002 至少3期《工作简报》
    assert wf.stage("training").due == DueRule("date", date=date(2021, 6, 30))
    assert wf.stage("deliverables").due == DueRule("after_stage_entry", amount=30)  # 培训结束后30天内
    # gates test facts only; the teacher counts (teachers, management team) are for reports
    gated = {g.metric for s in wf.stages for g in s.gates}
    assert all(wf.metrics[m].kind == "fact" for m in gated)
    assert {m.id for m in wf.metrics.values() if m.kind != "fact"} == {"management_members", "trainees"}
    extend = wf.transition_for("extend", "training")
    assert extend is not None and extend.dest is None and extend.roles == ("province_office",)
    assert extend.covers == "remaining_to_cap"  # 002 三 获批后最迟于2021年底前完成


def test_every_shipped_fact_names_its_roles() -> None:
    """The shipped files say who records each fact explicitly (no reliance on the advance default)."""
    from engine.yaml_source import read_yaml

    for path in shipped_workflow_paths():
        data = read_yaml(path.read_text(encoding="utf-8"), str(path)).data
        facts = {k: m for k, m in data["metrics"].items() if m["kind"] == "fact"}
        assert facts and all(m.get("roles") for m in facts.values()), path.name


def test_whole_school_fact_roles_follow_the_seeds() -> None:
    wf = _load("whole-school-2.0.yaml")
    assert wf.fact_roles("plan_filed") == ("county_office",)  # 003 县级审核备案
    assert wf.fact_roles("county_spot_check_done") == ("county_office",)  # 000 四(一) 县区级……抽检
    assert set(wf.fact_roles("supervision_result")) == {"supervisor", "county_office", "city_office"}
    assert set(wf.fact_roles("team_members")) == {"school_admin", "county_office"}
    assert [m.fact for m in wf.facts_for_role("supervisor")] == ["supervision_result"]
    assert wf.facts_for_role("province_office") == []
    # the county, the responsible body, may record (and reset) every fact
    assert {m.fact for m in wf.facts_for_role("county_office")} == {
        m.fact for m in wf.metrics.values() if m.kind == "fact"}


def test_henan_fact_roles_follow_the_seed() -> None:
    wf = _load("henan-contractor-2021.yaml")
    assert wf.fact_roles("contractor_assigned") == ("province_office",)  # 002 二 公开招标
    assert "city_office" in wf.fact_roles("selection_rate")  # 002 (八) 各省辖市……遴选报送
    assert "contractor" in wf.fact_roles("briefings_submitted")  # 002 (六) 提交至少3期《工作简报》
    assert "evaluator" in wf.fact_roles("evaluation_done") and "contractor" not in wf.fact_roles("evaluation_done")
    # the evaluator returns deliverables for rework, so it may reset the fact the return needs
    back = wf.transition_for("return_for_rework", "evaluation")
    checklist = [g.metric for g in wf.stage("deliverables").gates]  # 002 (六): four items, each gated
    assert checklist == ["self_evaluation_submitted", "course_resources_submitted", "case_collection_share",
                         "publicity_submitted"]
    assert back is not None and "evaluator" in back.roles and all("evaluator" in wf.fact_roles(m) for m in checklist)
    assert {m.fact for m in wf.facts_for_role("province_office")} == {m.fact for m in wf.metrics.values() if m.kind == "fact"}
