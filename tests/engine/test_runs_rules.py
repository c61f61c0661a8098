"""Firing transitions (engine/runs.py): bulk advances over a plan whose schools follow two workflow
versions (docs/changing-mid-year.md), each school judged by the version it is on; what one
transition records; the words of what is not found or too long; the extension cap."""

from __future__ import annotations

from datetime import UTC, date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import FixedClock
from engine.db import transaction
from engine.errors import NotFound, TextRefused, TransitionRefused
from engine.facts import set_fact
from engine.i18n import set_language
from engine.models import Plan, RunDeadline, SchoolRun, Teacher
from engine.plan import load_plan
from engine.reads import remember_reads
from engine.run_status import refresh
from engine.runs import Actor, advance_all_ready, advance_auto, find_run, fire
from tests.engine.builders import (
    CITY_OFFICER,
    COUNTY_OFFICER,
    EARLY,
    OTHER,
    PILOT,
    add_school,
    events_of,
    plan_data,
    run_of,
    seed,
    seed_with_plan,
    write_plan,
)
from tests.engine.version_builders import studying_on_two_versions

STUDYING = (*EARLY, OTHER)


def _set_hours(s: Session, code: str, hours: float) -> None:
    """A progress import of ``code``'s teachers at ``hours`` online, refreshing its stored status."""
    s.execute(update(Teacher).where(Teacher.school_code == code).values(online_hours=hours))
    refresh(s, SchoolRun.school_code == code)


@pytest.fixture
def two_versions(factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> sessionmaker[Session]:
    """b2's schools in online study, all three teachers of each at 22 h (EARLY[1] at 18 h);
    淄川区 (OTHER) moved to version 2, where 20 hours are enough, the rest still on version 1 (25 h)."""
    with transaction(factory) as s:
        studying_on_two_versions(s, clock, tmp_path)
    return factory


def test_the_sweep_judges_each_school_by_its_own_version(two_versions: sessionmaker[Session],
                                                         clock: FixedClock) -> None:
    """22 hours pass version 2's gate and fail version 1's. Then the other way round: a version with
    no school ready never keeps the other version's ready schools from moving."""
    with transaction(two_versions) as s:
        assert advance_auto(s, clock) == 1  # version 1 has no school ready, version 2 has OTHER
        assert {c: run_of(s, c).state for c in STUDYING} == {
            EARLY[0]: "online_study", EARLY[1]: "online_study", OTHER: "practice"}
    with transaction(two_versions) as s:
        _set_hours(s, EARLY[0], 25)
    with transaction(two_versions) as s:
        assert advance_auto(s, clock) == 1  # now version 1 has a ready school, version 2 none
        assert {c: run_of(s, c).state for c in STUDYING} == {
            EARLY[0]: "practice", EARLY[1]: "online_study", OTHER: "practice"}


def test_an_officers_bulk_advance_moves_each_version_ready_school_once(two_versions: sessionmaker[Session],
                                                                       clock: FixedClock) -> None:
    with transaction(two_versions) as s:
        result = advance_all_ready(s, clock, actor=COUNTY_OFFICER)
        assert (result.advanced, dict(result.moves)) == (1, {("online_study", "practice"): 1})
        assert run_of(s, OTHER).state == "practice" and run_of(s, EARLY[0]).state == "online_study"
        assert result.blocked_by["online_25h"] == 2  # EARLY's two, on version 1


def test_a_school_moved_into_a_source_stage_after_the_measurement_waits_for_the_next_pass(
        factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A concurrent commit resumes EARLY[0] into planning after the bulk advance measured: it was not
    measured, so it is left for the next pass, and the schools that were measured and ready still move."""
    import engine.runs as runs_module

    with transaction(factory) as s:
        seed_with_plan(s, clock, tmp_path)
        fire(s, clock, school_code=EARLY[0], trigger="suspend", actor=COUNTY_OFFICER, reason="合并")
        for code in (*EARLY, OTHER):
            set_fact(s, clock, school_code=code, name="plan_filed", value=1, actor=COUNTY_OFFICER)
            set_fact(s, clock, school_code=code, name="team_members", value=4, actor=COUNTY_OFFICER)
    measure = runs_module.metric_values

    def meanwhile(session: Session, *args: object, **kwargs: object) -> object:
        values = measure(session, *args, **kwargs)  # type: ignore[arg-type]
        session.execute(update(SchoolRun).where(SchoolRun.school_code == EARLY[0]).values(state="planning"))
        return values

    monkeypatch.setattr(runs_module, "metric_values", meanwhile)
    with transaction(factory) as s:
        result = advance_all_ready(s, clock, actor=COUNTY_OFFICER)
        assert result.advanced == 2
        assert {c: run_of(s, c).state for c in (*EARLY, OTHER)} == {
            EARLY[0]: "planning", EARLY[1]: "online_study", OTHER: "online_study"}


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_school_or_run_not_found_is_named(factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path,
                                            lang: str) -> None:
    with transaction(factory) as s:
        seed_with_plan(s, clock, tmp_path)
        add_school(s, "3703239999")  # imported after the plan was loaded: in no plan
    set_language(lang)
    with factory() as s:
        for code, zh, en in (("3703230099", "没有学校 3703230099", "no school 3703230099"),
                             ("3703239999", "学校 3703239999 不在计划 yiyuan-2021 中",
                              "school 3703239999 is not in plan yiyuan-2021")):
            with pytest.raises(NotFound) as info:
                find_run(s, code)
            assert str(info.value) == (zh if lang == "zh" else en)


def test_a_page_that_remembers_its_reads_finds_each_schools_own_run_in_each_plan(
        factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    with transaction(factory) as s:
        seed_with_plan(s, clock, tmp_path)
        load_plan(s, write_plan(tmp_path, plan_data(plan="other", batches=[
            {"id": "x", "start": "2021-06-01", "schools": {"rest": True}}]), "p2.yaml"), clock)
    with factory() as s:
        remember_reads(s)
        found = [(find_run(s, c, p).school_code, find_plan_code(s, find_run(s, c, p).plan_id))
                 for c, p in ((PILOT, "yiyuan-2021"), (OTHER, "yiyuan-2021"), (OTHER, "other"), (PILOT, "other"))]
    assert found == [(PILOT, "yiyuan-2021"), (OTHER, "yiyuan-2021"), (OTHER, "other"), (PILOT, "other")]


def find_plan_code(s: Session, plan_id: int) -> str:
    plan = s.get(Plan, plan_id)
    assert plan is not None
    return plan.code


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_reason_and_an_actors_name_have_their_limits(factory: sessionmaker[Session], clock: FixedClock,
                                                       tmp_path: Path, lang: str) -> None:
    """A reason is stored forever: at most 2000 characters; an actor's name at most 100."""
    with transaction(factory) as s:
        seed_with_plan(s, clock, tmp_path)
        fire(s, clock, school_code=PILOT, trigger="suspend", actor=Actor("王" * 100, "county_office"), reason="理" * 2000)
    set_language(lang)
    for actor, reason, zh, en in (
            (COUNTY_OFFICER, "理" * 2001, "理由太长：最多 2000 个字符，实为 2001 个",
             "reason is too long: at most 2000 characters, not 2001"),
            (Actor("王" * 101, "county_office"), "x", "操作人太长：最多 100 个字符，实为 101 个",
             "actor is too long: at most 100 characters, not 101")):
        with pytest.raises(TextRefused) as info, transaction(factory) as s:
            fire(s, clock, school_code=EARLY[0], trigger="suspend", actor=actor, reason=reason)
        assert str(info.value) == (zh if lang == "zh" else en)


def test_a_transition_records_who_when_and_what_in_its_event_and_the_run(factory: sessionmaker[Session],
                                                                         clock: FixedClock, tmp_path: Path) -> None:
    with transaction(factory) as s:
        plan = seed_with_plan(s, clock, tmp_path)
        plan_id = plan.id
    clock.advance(timedelta(days=2))
    with transaction(factory) as s:
        out = fire(s, clock, school_code=EARLY[0], trigger="suspend", actor=COUNTY_OFFICER, reason=" 学校合并 ")
        assert (out.school_code, out.trigger, out.from_state, out.to_state, out.overridden) == (
            EARLY[0], "suspend", "planning", "suspended", [])
        assert [g.gate for g in out.gates] == ["plan_filed", "team_formed"]
    with transaction(factory) as s:
        run = run_of(s, EARLY[0])
        assert (run.state, run.previous_state, run.version) == ("suspended", "planning", 2)
        assert run.updated_at.replace(tzinfo=UTC) == clock.now().astimezone(UTC)
        event = events_of(s, EARLY[0])[-1]
        assert (event.actor, event.role, event.plan_id, event.run_id, event.school_code, event.reason) == (
            COUNTY_OFFICER.name, "county_office", plan_id, run.id, EARLY[0], "学校合并")
        assert event.at.replace(tzinfo=UTC) == clock.now().astimezone(UTC)
        assert [(g["gate"], g["passed"]) for g in event.gates] == [("plan_filed", False), ("team_formed", False)]
        assert event.workflow_version == events_of(s, EARLY[0])[0].workflow_version is not None
        assert run.blocked is False  # the stored status is refreshed: a suspended school is not blocked


def test_without_an_extension_cap_the_final_deadline_is_the_cap(factory: sessionmaker[Session], clock: FixedClock,
                                                                tmp_path: Path) -> None:
    """docs/plan-files.md: a plan with final_deadline 2022-11-30 and no extension_cap refuses
    `extend --due 2022-12-31`; a second extension replaces the first, recording who and when."""
    data = plan_data()
    del data["extension_cap"]
    with transaction(factory) as s:
        seed(s, clock)
        load_plan(s, write_plan(tmp_path, data), clock)
    with pytest.raises(TransitionRefused) as info, transaction(factory) as s:
        fire(s, clock, school_code=EARLY[0], trigger="extend", actor=COUNTY_OFFICER, reason="疫情", due=date(2022, 12, 31))
    assert str(info.value) == "延期不得晚于 2022-11-30"
    with transaction(factory) as s:
        fire(s, clock, school_code=EARLY[0], trigger="extend", actor=COUNTY_OFFICER, reason="疫情", due=date(2022, 11, 30))
    clock.advance(timedelta(days=1))
    with transaction(factory) as s:
        fire(s, clock, school_code=EARLY[0], trigger="extend", actor=CITY_OFFICER, reason="再延", due=date(2022, 10, 31))
    with transaction(factory) as s:
        rows = s.scalars(select(RunDeadline)).all()
        assert [(r.stage, r.due, r.kind, r.reason, r.created_by, r.created_at.replace(tzinfo=UTC)) for r in rows] == [
            ("planning", date(2022, 10, 31), "extension", "再延", CITY_OFFICER.name, clock.now().astimezone(UTC))]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_role_refusal_names_the_role_and_every_allowed_role_by_title(
        factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path, lang: str) -> None:
    """Officials read role titles, ids in brackets for the command line; an override allows two roles."""
    with transaction(factory) as s:
        seed_with_plan(s, clock, tmp_path)
    set_language(lang)
    with pytest.raises(TransitionRefused) as info, transaction(factory) as s:
        fire(s, clock, school_code=EARLY[0], trigger="override", actor=COUNTY_OFFICER, reason="撤并")
    assert str(info.value) == (
        "角色 县级项目办（county_office） 无权执行“特批完成”（允许：省项目办（province_office）、市级项目办（city_office））"
        if lang == "zh" else
        "role County project office (county_office) may not fire 'Override to done' "
        "(allowed: Province project office (province_office), City project office (city_office))")


def test_a_transition_moves_the_named_plans_run_and_a_batch_has_started_at_its_first_instant(
        factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    """With two plans, `--plan` picks the run; at 00:00 (the plan's zone) of its start day a school may move."""
    from datetime import datetime

    from tests.conftest import SHANGHAI

    with transaction(factory) as s:
        seed_with_plan(s, clock, tmp_path)
        load_plan(s, write_plan(tmp_path, plan_data(plan="other", batches=[
            {"id": "x", "start": "2021-09-01", "start_stage": "planning", "schools": {"rest": True}}]), "p2.yaml"), clock)
    clock.set(datetime(2021, 9, 1, 0, 0, tzinfo=SHANGHAI))
    with transaction(factory) as s:
        fire(s, clock, school_code=EARLY[0], trigger="suspend", actor=COUNTY_OFFICER, reason="合并", plan_code="other")
    with transaction(factory) as s:
        states = {p: find_run(s, EARLY[0], p).state for p in ("yiyuan-2021", "other")}
    assert states == {"yiyuan-2021": "planning", "other": "suspended"}


def test_an_advance_refused_lists_every_failing_gate_in_chinese(factory: sessionmaker[Session], clock: FixedClock,
                                                               tmp_path: Path) -> None:
    with transaction(factory) as s:
        seed_with_plan(s, clock, tmp_path)
    with pytest.raises(TransitionRefused) as info, transaction(factory) as s:
        fire(s, clock, school_code=EARLY[0], trigger="advance", actor=COUNTY_OFFICER)
    message = str(info.value)
    assert message.startswith("关卡未通过：县级已审核备案学校发展规划：")
    assert message.count("；") == 1 and message.split("；")[1].startswith("已组建3人以上的学校信息化管理团队")
