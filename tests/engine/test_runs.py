"""Firing transitions: every rule refuses with a reason, every transition is exactly one audit event."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

import engine.runs as runs_module
from engine.audit import verify_chains
from engine.clock import FixedClock
from engine.db import transaction
from engine.errors import AuditError, RolloutError, StaleStateError, TransitionRefused
from engine.facts import set_fact
from engine.i18n import set_language
from engine.models import RunDeadline, Teacher
from engine.runs import Outcome, advance_all_ready, fire
from engine.status import school_detail
from tests.engine.builders import (
    CITY_OFFICER,
    COUNTY,
    COUNTY_OFFICER,
    EARLY,
    LATE,
    OTHER,
    PILOT,
    PROVINCE_OFFICER,
    SCHOOL_ADMIN,
    add_teachers,
    event_count,
    events_of,
    run_of,
)

SCHOOL = EARLY[0]




def _fire(factory: sessionmaker[Session], clock: FixedClock, code: str = SCHOOL, trigger: str = "advance",
          **kw: Any) -> Outcome:
    kw.setdefault("actor", COUNTY_OFFICER)
    with transaction(factory) as s:
        return fire(s, clock, school_code=code, trigger=trigger, **kw)


def _planning_done(factory: sessionmaker[Session], clock: FixedClock, code: str = SCHOOL) -> None:
    with transaction(factory) as s:
        set_fact(s, clock, school_code=code, name="plan_filed", value=1, actor=COUNTY_OFFICER)
        set_fact(s, clock, school_code=code, name="team_members", value=4, actor=COUNTY_OFFICER)


def _state(factory: sessionmaker[Session], code: str = SCHOOL) -> tuple[str, str | None, int]:
    with transaction(factory) as s:
        run = run_of(s, code)
        return run.state, run.previous_state, run.version


def _refused(plan: sessionmaker[Session], action: Callable[[], object], error: type[RolloutError] = TransitionRefused,
             code: str = SCHOOL) -> str:
    """Assert ``action`` raises, and that neither the run nor the audit trail changed."""
    with transaction(plan) as s:
        before, events = _state(plan, code), event_count(s)
    with pytest.raises(error) as info:
        action()
    with transaction(plan) as s:
        assert _state(plan, code) == before
        assert event_count(s) == events
    return str(info.value)


def test_advance_refused_with_gate_explanations(plan: sessionmaker[Session], clock: FixedClock) -> None:
    message = _refused(plan, lambda: _fire(plan, clock))
    assert "关卡未通过" in message
    assert "县级已审核备案学校发展规划：未记录（需 是）✗" in message  # a yes/no fact, not "无数据（需 ≥ 1）"
    assert "已组建3人以上的学校信息化管理团队" in message


def test_advance_passes_once_facts_are_recorded(plan: sessionmaker[Session], clock: FixedClock) -> None:
    _planning_done(plan, clock)
    out = _fire(plan, clock)
    assert (out.from_state, out.to_state) == ("planning", "online_study")
    assert all(g.passed for g in out.gates)
    with transaction(plan) as s:
        run = run_of(s, SCHOOL)
        assert run.state == "online_study" and run.stage_entered_at == clock.now()
        last = events_of(s, SCHOOL)[-1]
        assert (last.trigger, last.from_state, last.to_state) == ("advance", "planning", "online_study")
        assert [g["passed"] for g in last.gates] == [True, True]


def test_online_study_gate_counts_teachers(plan: sessionmaker[Session], clock: FixedClock) -> None:
    _planning_done(plan, clock)
    _fire(plan, clock)
    with transaction(plan) as s:
        add_teachers(s, SCHOOL, 5)
        add_teachers(s, SCHOOL, 1, online=24.5, start=5)
    message = _refused(plan, lambda: _fire(plan, clock))
    assert "83.3%（需 ≥ 100%）" in message
    with transaction(plan) as s:
        for t in s.scalars(select(Teacher).where(Teacher.school_code == SCHOOL)):
            t.online_hours = 25
    assert _fire(plan, clock).to_state == "practice"


def test_role_refused(plan: sessionmaker[Session], clock: FixedClock) -> None:
    _planning_done(plan, clock)
    message = _refused(plan, lambda: _fire(plan, clock, actor=SCHOOL_ADMIN))
    assert "school_admin" in message and "county_office" in message
    message = _refused(plan, lambda: _fire(plan, clock, trigger="override", actor=COUNTY_OFFICER, reason="病假"))
    assert "county_office" in message


@pytest.mark.parametrize("trigger,actor,destination", [("return_for_rework", COUNTY_OFFICER, "planning"),
                                                       ("suspend", COUNTY_OFFICER, "suspended"),
                                                       ("override", CITY_OFFICER, "done")])
@pytest.mark.parametrize("reason", [None, "", "   "])
def test_reason_required(plan: sessionmaker[Session], clock: FixedClock, trigger: str, actor: Any,
                         destination: str, reason: str | None) -> None:
    _planning_done(plan, clock)
    _fire(plan, clock)  # online_study: return_for_rework is allowed from here
    message = _refused(plan, lambda: _fire(plan, clock, trigger=trigger, actor=actor, reason=reason))
    assert "理由" in message
    out = _fire(plan, clock, trigger=trigger, actor=actor, reason="县级抽查发现问题")
    # from online study: rework goes back one stage, suspend parks it, override finishes it
    assert (out.from_state, out.to_state) == ("online_study", destination)
    assert _state(plan)[:2] == (destination, "online_study" if trigger in ("return_for_rework", "suspend") else None)


def test_override_records_the_gates_it_overrode(plan: sessionmaker[Session], clock: FixedClock) -> None:
    out = _fire(plan, clock, trigger="override", actor=PROVINCE_OFFICER, reason="学校撤并")
    assert out.to_state == "done"
    assert out.overridden == ["plan_filed", "team_formed"]
    with transaction(plan) as s:
        last = events_of(s, SCHOOL)[-1]
        assert last.trigger == "override" and last.to_state == "done"
        assert last.reason is not None
        assert last.reason == "学校撤并；越过未通过的关卡：plan_filed, team_formed"
        assert [g["passed"] for g in last.gates] == [False, False]


def test_suspend_and_resume_return_to_previous_stage(plan: sessionmaker[Session], clock: FixedClock) -> None:
    _planning_done(plan, clock)
    _fire(plan, clock)
    with transaction(plan) as s:
        entered = run_of(s, SCHOOL).stage_entered_at
    clock.advance(timedelta(days=3))
    out = _fire(plan, clock, trigger="suspend", reason="学校合并")
    assert out.to_state == "suspended"
    assert _state(plan)[:2] == ("suspended", "online_study")
    message = _refused(plan, lambda: _fire(plan, clock))
    # A suspended school can only be resumed: the refusal names the stage, the trigger and the way out.
    assert message == f"学校 {SCHOOL} 处于“暂停”阶段，不能执行“advance”；可执行：恢复推进（resume）"
    clock.advance(timedelta(days=3))
    out = _fire(plan, clock, trigger="resume", actor=CITY_OFFICER)
    assert (out.from_state, out.to_state) == ("suspended", "online_study")
    with transaction(plan) as s:
        run = run_of(s, SCHOOL)
        assert run.previous_state is None
        assert run.stage_entered_at == entered  # suspended time is not extra time


def test_suspend_from_pilot_resumes_to_pilot(plan: sessionmaker[Session], clock: FixedClock) -> None:
    _fire(plan, clock, code=PILOT, trigger="suspend", reason="停课")
    assert _fire(plan, clock, code=PILOT, trigger="resume").to_state == "pilot"


def test_return_for_rework(plan: sessionmaker[Session], clock: FixedClock) -> None:
    _planning_done(plan, clock)
    _fire(plan, clock)
    out = _fire(plan, clock, trigger="return_for_rework", actor=CITY_OFFICER, reason="规划未备案")
    assert (out.from_state, out.to_state) == ("online_study", "planning")


def test_extend_within_cap_changes_due_date(plan: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(plan) as s:
        before = school_detail(s, clock, SCHOOL)["due"]
    assert (before["date"], before["source"]) == (date(2021, 9, 30), "batch")
    # each refusal says why: past the plan's cap, already past, no date given (in the user's language)
    for lang, words in (("zh", ("延期不得晚于 2022-12-31", "新的截止日期已经过去", "延期必须给出新的截止日期（--due）")),
                        ("en", ("an extension may not go past 2022-12-31", "the new due date is already past",
                                "an extension needs the new due date (--due)"))):
        set_language(lang)
        for due, word in zip((date(2023, 1, 31), date(2021, 6, 30), None), words, strict=True):
            message = _refused(plan, lambda d=due: _fire(plan, clock, trigger="extend", reason="疫情", due=d))
            assert message == word, (lang, due)
    set_language("zh")
    out = _fire(plan, clock, trigger="extend", reason="疫情", due=date(2022, 12, 31))  # cap itself is allowed
    assert out.from_state == out.to_state == "planning"
    with transaction(plan) as s:
        run = run_of(s, SCHOOL)
        rows = s.scalars(select(RunDeadline).where(RunDeadline.run_id == run.id)).all()
        assert [(r.stage, r.due, r.kind, r.reason) for r in rows] == [("planning", date(2022, 12, 31), "extension", "疫情")]
        detail = school_detail(s, clock, SCHOOL)
        assert (detail["due"]["date"], detail["due"]["source"]) == (date(2022, 12, 31), "extension")
        last = events_of(s, SCHOOL)[-1]
        assert last.trigger == "extend" and last.to_state == "planning" and "2022-12-31" in (last.reason or "")
        assert run.version == 2  # an extension bumps the optimistic lock even at the same instant
    _fire(plan, clock, trigger="extend", reason="再延", due=date(2021, 11, 30))
    with transaction(plan) as s:
        assert school_detail(s, clock, SCHOOL)["due"]["date"] == date(2021, 11, 30)
        assert len(s.scalars(select(RunDeadline)).all()) == 1


def test_batch_not_started_is_refused(plan: sessionmaker[Session], clock: FixedClock) -> None:
    message = _refused(plan, lambda: _fire(plan, clock, code=LATE[0], trigger="suspend", reason="x"), code=LATE[0])
    assert "尚未开始" in message and "2021-09-01" in message
    set_language("en")
    message = _refused(plan, lambda: _fire(plan, clock, code=LATE[0], trigger="suspend", reason="x"), code=LATE[0])
    assert "not started" in message


def test_expected_version_mismatch_is_stale(plan: sessionmaker[Session], clock: FixedClock) -> None:
    message = _refused(plan, lambda: _fire(plan, clock, trigger="suspend", reason="x", expected_version=7), StaleStateError)
    assert message == f"学校 {SCHOOL} 已被他人修改，请刷新后重试"  # which school, and what to do
    set_language("en")
    message = _refused(plan, lambda: _fire(plan, clock, trigger="suspend", reason="x", expected_version=7), StaleStateError)
    assert message == f"school {SCHOOL} was changed by someone else: reload and try again"
    set_language("zh")
    assert _fire(plan, clock, trigger="suspend", reason="x", expected_version=1).to_state == "suspended"
    assert _state(plan)[2] == 2


def test_each_transition_is_exactly_one_event(plan: sessionmaker[Session], clock: FixedClock, db: Engine) -> None:
    _planning_done(plan, clock)
    steps = [("advance", COUNTY_OFFICER, None), ("suspend", COUNTY_OFFICER, "r"), ("resume", COUNTY_OFFICER, None),
             ("return_for_rework", CITY_OFFICER, "r"), ("advance", COUNTY_OFFICER, None),
             ("override", CITY_OFFICER, "r")]
    for trigger, actor, reason in steps:
        with transaction(plan) as s:
            n = len(events_of(s, SCHOOL))
        _fire(plan, clock, trigger=trigger, actor=actor, reason=reason)
        with transaction(plan) as s:
            events = events_of(s, SCHOOL)
            assert len(events) == n + 1
            assert events[-1].trigger == trigger and events[-1].to_state == run_of(s, SCHOOL).state
    assert _state(plan)[0] == "done"
    assert verify_chains(db).ok


def test_failing_audit_write_leaves_no_state_change(plan: sessionmaker[Session], clock: FixedClock,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise AuditError("disk full")

    monkeypatch.setattr(runs_module, "append_event", broken)
    _refused(plan, lambda: _fire(plan, clock, trigger="suspend", reason="x"), AuditError)
    with transaction(plan) as s:
        assert run_of(s, SCHOOL).stage_entered_at != clock.now()


def test_unknown_school_and_trigger(plan: sessionmaker[Session], clock: FixedClock) -> None:
    from engine.errors import NotFound

    with pytest.raises(NotFound):
        _fire(plan, clock, code="3703239999")
    message = _refused(plan, lambda: _fire(plan, clock, trigger="graduate"))
    assert message == (f"学校 {SCHOOL} 处于“制定规划”阶段，不能执行“graduate”；可执行：推进到下一阶段（advance）、"
                       "延期（extend）、特批完成（override）、暂停推进（suspend）")
    _fire(plan, clock, trigger="override", actor=CITY_OFFICER, reason="学校撤并")
    # a finished school can take nothing more, and is told so
    assert _refused(plan, lambda: _fire(plan, clock)) == f"学校 {SCHOOL} 处于“完成”阶段，不能执行“advance”；可执行：无"
    set_language("en")
    assert _refused(plan, lambda: _fire(plan, clock)) == (
        f"school {SCHOOL} is in stage 'Done': 'advance' is not allowed; allowed: none")


# --- advance_all_ready ----------------------------------------------------------------------------


def test_advance_all_ready_moves_only_ready_schools(plan: sessionmaker[Session], clock: FixedClock,
                                                    db: Engine) -> None:
    _planning_done(plan, clock, SCHOOL)
    _planning_done(plan, clock, OTHER)
    with transaction(plan) as s:
        before = event_count(s)
        result = advance_all_ready(s, clock, actor=COUNTY_OFFICER)
    assert (result.advanced, result.blocked, result.not_started) == (2, 2, 2)
    assert dict(result.moves) == {("planning", "online_study"): 2}
    assert result.blocked_by == {"plan_filed": 1, "team_formed": 1, "pilot_summary": 1}
    # what `rollout advance-all` and the web report: counts, each move with its schools, the blocking gates
    assert result.as_dict() == {"advanced": 2, "blocked": 2, "not_started": 2,
                                "moves": [{"from": "planning", "to": "online_study", "schools": 2}],
                                "blocked_by": {"plan_filed": 1, "team_formed": 1, "pilot_summary": 1}}
    with transaction(plan) as s:
        assert event_count(s) == before + 2
        for code in (SCHOOL, OTHER):
            run = run_of(s, code)
            assert run.state == "online_study" and run.version >= 2
            last = events_of(s, code)[-1]
            assert (last.trigger, last.to_state) == ("advance", "online_study")
        assert run_of(s, EARLY[1]).state == "planning"
        assert run_of(s, PILOT).state == "pilot"
        assert run_of(s, LATE[0]).state == "planning"
    assert verify_chains(db).ok
    # a moved run can still be fired on (its version was bumped consistently)
    assert _fire(plan, clock, trigger="suspend", reason="x").to_state == "suspended"


def test_advance_all_ready_region_filter(plan: sessionmaker[Session], clock: FixedClock, db: Engine) -> None:
    _planning_done(plan, clock, SCHOOL)
    _planning_done(plan, clock, OTHER)
    with transaction(plan) as s:
        result = advance_all_ready(s, clock, actor=COUNTY_OFFICER, region=COUNTY)
    assert result.advanced == 1 and result.not_started == 2 and result.blocked == 2
    assert _state(plan, SCHOOL)[0] == "online_study"
    assert _state(plan, OTHER)[0] == "planning"
    with transaction(plan) as s:
        assert advance_all_ready(s, clock, actor=COUNTY_OFFICER, region="370302").advanced == 1
    assert _state(plan, OTHER)[0] == "online_study"
    assert verify_chains(db).ok


def test_advance_all_ready_respects_roles(plan: sessionmaker[Session], clock: FixedClock) -> None:
    _planning_done(plan, clock, SCHOOL)
    with transaction(plan) as s:
        result = advance_all_ready(s, clock, actor=SCHOOL_ADMIN)
    assert result.advanced == 0
    assert _state(plan, SCHOOL)[0] == "planning"


def test_system_actor_may_fire_only_auto_advances(plan: sessionmaker[Session], clock: FixedClock) -> None:
    """The sweep acts as ``system`` and may take only the ``auto: true`` advances the workflow
    names; anything else (suspend, override, return, the pilot's manual advance) needs a person
    with the role, even typed as ``--role system`` on the command line."""
    system = runs_module.Actor(runs_module.SYSTEM, runs_module.SYSTEM)
    _planning_done(plan, clock)
    with transaction(plan) as s:
        set_fact(s, clock, school_code=PILOT, name="pilot_summary_filed", value=1, actor=COUNTY_OFFICER)
    for trigger, code in (("suspend", SCHOOL), ("override", SCHOOL), ("advance", PILOT)):
        message = _refused(plan, lambda t=trigger, c=code: _fire(plan, clock, code=c, trigger=t, actor=system,
                                                                   reason="系统"), code=code)
        assert "system" in message, trigger
    assert _fire(plan, clock, actor=system).to_state == "online_study"  # planning → online_study is auto
    message = _refused(plan, lambda: _fire(plan, clock, trigger="return_for_rework", actor=system, reason="系统"))
    assert "system" in message


def test_advance_auto_takes_every_stage_already_finished(plan: sessionmaker[Session], clock: FixedClock) -> None:
    """A school whose next stage's gates already pass is not left a day in a stage it has finished:
    one sweep's ``advance_auto`` moves it through every auto advance whose gates pass, and stops at
    the first stage whose gates do not (practice: no evidence yet)."""
    _planning_done(plan, clock)
    with transaction(plan) as s:
        add_teachers(s, SCHOOL, 3, evidence=0, result=None)  # online study done, practice evidence missing
    with transaction(plan) as s:
        assert runs_module.advance_auto(s, clock) == 2
    assert _state(plan)[0] == "practice"
    with transaction(plan) as s:
        assert [(e.trigger, e.from_state, e.to_state, e.actor) for e in events_of(s, SCHOOL)[-2:]] == [
            ("advance", "planning", "online_study", "system"), ("advance", "online_study", "practice", "system")]
        assert runs_module.advance_auto(s, clock) == 0


def test_with_two_plans_advance_auto_moves_only_the_named_plan(plan: sessionmaker[Session], clock: FixedClock,
                                                               tmp_path: Any) -> None:
    """A school can be in two plans; the sweep of one plan never moves the other plan's run of it."""
    from engine.models import Plan, SchoolRun
    from engine.plan import load_plan
    from tests.engine.builders import plan_data, write_plan

    with transaction(plan) as s:
        load_plan(s, write_plan(tmp_path, plan_data(plan="other", batches=[
            {"id": "x", "start": "2021-06-01", "start_stage": "planning", "schools": {"rest": True}}]), "p2.yaml"), clock)
    with transaction(plan) as s:  # planning done in both plans: either run could advance
        for code in ("yiyuan-2021", "other"):
            set_fact(s, clock, school_code=SCHOOL, name="plan_filed", value=1, actor=COUNTY_OFFICER, plan_code=code)
            set_fact(s, clock, school_code=SCHOOL, name="team_members", value=4, actor=COUNTY_OFFICER, plan_code=code)
    with transaction(plan) as s:
        assert runs_module.advance_auto(s, clock, "other") == 1
        states = dict(s.execute(select(Plan.code, SchoolRun.state).join(Plan, Plan.id == SchoolRun.plan_id)
                                .where(SchoolRun.school_code == SCHOOL)).all())
    assert states == {"other": "online_study", "yiyuan-2021": "planning"}
    with transaction(plan) as s:
        assert runs_module.advance_auto(s, clock, "yiyuan-2021") == 1  # it was ready: only the plan named held it


def test_a_withdrawn_school_cannot_be_moved(plan: sessionmaker[Session], clock: FixedClock) -> None:
    """A school that left the plan keeps its history but takes no transition, not even by an office."""
    from sqlalchemy import update

    from engine.models import SchoolRun

    _planning_done(plan, clock)
    with transaction(plan) as s:
        s.execute(update(SchoolRun).where(SchoolRun.school_code == SCHOOL).values(withdrawn_at=clock.now()))
    assert _refused(plan, lambda: _fire(plan, clock)) == f"学校 {SCHOOL} 已退出本计划"
    set_language("en")
    assert _refused(plan, lambda: _fire(plan, clock, trigger="override", actor=CITY_OFFICER, reason="x")) == (
        f"school {SCHOOL} was withdrawn from the plan")


def test_refusals_are_explained_in_english_too(plan: sessionmaker[Session], clock: FixedClock) -> None:
    """An English-language user reads why: the allowed triggers, the roles, the reason, the gates."""
    set_language("en")
    assert _refused(plan, lambda: _fire(plan, clock, trigger="graduate")) == (
        f"school {SCHOOL} is in stage 'Planning': 'graduate' is not allowed; allowed: Advance to the next stage "
        "(advance), Extend the deadline (extend), Override to done (override), Suspend (suspend)")
    assert _refused(plan, lambda: _fire(plan, clock, actor=SCHOOL_ADMIN)) == (
        "role School admin (school_admin) may not fire 'Advance to the next stage' "
        "(allowed: County project office (county_office))")
    assert _refused(plan, lambda: _fire(plan, clock, trigger="suspend")) == "'Suspend' (suspend) needs a reason (--reason)"
    gates = _refused(plan, lambda: _fire(plan, clock))
    assert gates.startswith("gates not passed: School plan reviewed and filed by the county: not recorded (yes needed)")
    assert "✗; School IT management team" in gates  # an English list, not a Chinese one


def test_an_extension_may_end_today(plan: sessionmaker[Session], clock: FixedClock) -> None:
    """The due date itself is still on time, so today is a valid new due date; yesterday is not."""
    assert _fire(plan, clock, trigger="extend", reason="补交材料", due=date(2021, 7, 1)).to_state == "planning"
    with transaction(plan) as s:
        assert school_detail(s, clock, SCHOOL)["due"]["date"] == date(2021, 7, 1)


def test_each_extension_belongs_to_one_school_and_one_stage(plan: sessionmaker[Session], clock: FixedClock) -> None:
    """An extension replaces only the same school's deadline for the same stage — an office's
    override there becomes the extension, by whoever granted it — never another school's row or
    an earlier stage's."""
    from engine.run_deadline import override_deadline

    with transaction(plan) as s:
        override_deadline(s, clock, school_code=SCHOOL, stage="planning", due=date(2021, 10, 10), reason="水灾",
                          actor=COUNTY_OFFICER)
    _fire(plan, clock, code=EARLY[1], trigger="extend", reason="另一所", due=date(2021, 10, 20))
    _fire(plan, clock, trigger="extend", reason="疫情", due=date(2021, 10, 31), actor=CITY_OFFICER)
    _planning_done(plan, clock)
    _fire(plan, clock)  # on to online study, whose deadline is its own
    _fire(plan, clock, trigger="extend", reason="再延", due=date(2021, 12, 31))

    with transaction(plan) as s:
        code_of = {run_of(s, c).id: c for c in (SCHOOL, EARLY[1])}
        rows = [(code_of[r.run_id], r.stage, r.due, r.kind, r.reason, r.created_by)
                for r in s.scalars(select(RunDeadline).order_by(RunDeadline.run_id, RunDeadline.stage))]
        assert rows == [
            (SCHOOL, "online_study", date(2021, 12, 31), "extension", "再延", COUNTY_OFFICER.name),
            (SCHOOL, "planning", date(2021, 10, 31), "extension", "疫情", CITY_OFFICER.name),
            (EARLY[1], "planning", date(2021, 10, 20), "extension", "另一所", COUNTY_OFFICER.name)]



@pytest.mark.parametrize("region", ["370300", "370000"])  # 淄博市, 山东省: both above the two counties
def test_advance_all_ready_by_city_or_province_takes_every_county_below(plan: sessionmaker[Session],
                                                                        clock: FixedClock, region: str) -> None:
    """A region is a subtree: a city's or a province's bulk advance reaches the schools of every
    county below it, and each moved school's audit event names that school."""
    _planning_done(plan, clock, SCHOOL)
    _planning_done(plan, clock, OTHER)  # in another county of the same city
    with transaction(plan) as s:
        assert advance_all_ready(s, clock, actor=COUNTY_OFFICER, region=region).moves == {("planning", "online_study"): 2}
    with transaction(plan) as s:
        for code in (SCHOOL, OTHER):
            last = events_of(s, code)[-1]
            assert (last.school_code, last.trigger, last.to_state) == (code, "advance", "online_study")


def test_advance_all_ready_leaves_withdrawn_schools(plan: sessionmaker[Session], clock: FixedClock) -> None:
    """A school that left the plan is not moved by a bulk advance either, though its gates pass."""
    from sqlalchemy import update

    from engine.models import SchoolRun

    _planning_done(plan, clock, SCHOOL)
    _planning_done(plan, clock, OTHER)
    with transaction(plan) as s:
        s.execute(update(SchoolRun).where(SchoolRun.school_code == OTHER).values(withdrawn_at=clock.now()))
    with transaction(plan) as s:
        assert advance_all_ready(s, clock, actor=COUNTY_OFFICER).advanced == 1
    assert (_state(plan, SCHOOL)[0], _state(plan, OTHER)[0]) == ("online_study", "planning")


def test_a_batch_is_started_from_its_first_instant(plan: sessionmaker[Session], clock: FixedClock) -> None:
    """At 00:00 of its start day (the plan's time zone) a batch has started: its ready schools move,
    one at a time or in bulk, and the sweep's advance takes them too."""
    from datetime import datetime

    from tests.conftest import SHANGHAI

    clock.set(datetime(2021, 9, 1, 0, 0, tzinfo=SHANGHAI))  # batch b3's start
    _planning_done(plan, clock, LATE[0])
    with transaction(plan) as s:
        result = advance_all_ready(s, clock, actor=COUNTY_OFFICER)
        assert (result.advanced, result.not_started) == (1, 0)
    _planning_done(plan, clock, LATE[1])
    with transaction(plan) as s:
        assert runs_module.advance_auto(s, clock) == 1
    assert (_state(plan, LATE[0])[0], _state(plan, LATE[1])[0]) == ("online_study", "online_study")


def test_a_bulk_advance_after_rework_clears_the_previous_stage(plan: sessionmaker[Session], clock: FixedClock) -> None:
    """Rework remembers the stage it came back from; moving on again, alone or in bulk, forgets it
    (as ``fire`` does), so the run looks the same whichever way it advanced."""
    _planning_done(plan, clock)
    _fire(plan, clock)
    _fire(plan, clock, trigger="return_for_rework", actor=CITY_OFFICER, reason="规划未备案")
    assert _state(plan)[:2] == ("planning", "online_study")
    with transaction(plan) as s:
        assert advance_all_ready(s, clock, actor=COUNTY_OFFICER).advanced == 1
    assert _state(plan)[:2] == ("online_study", None)


def test_a_bulk_advance_records_the_move_like_a_single_advance(plan: sessionmaker[Session], clock: FixedClock) -> None:
    """The bulk path writes what ``fire`` writes: the school enters its new stage now (its deadline
    counts from today), its version moves by exactly one, a run this session holds shows the new
    stage, and its audit event names the plan, run, school, gates and workflow version."""
    from engine.models import Plan

    _planning_done(plan, clock)
    clock.advance(timedelta(days=5))
    with transaction(plan) as s:
        held = run_of(s, SCHOOL)
        version = held.version
        assert advance_all_ready(s, clock, actor=COUNTY_OFFICER).advanced == 1
        assert held.state == "online_study"  # not the stale object from before the Core UPDATE
        assert (held.stage_entered_at, held.updated_at, held.version) == (clock.now(), clock.now(), version + 1)
        plan_row = s.scalars(select(Plan)).one()
        last = events_of(s, SCHOOL)[-1]
        assert (last.plan_id, last.run_id, last.school_code, last.from_state, last.to_state) == (
            plan_row.id, held.id, SCHOOL, "planning", "online_study")
        assert [g["gate"] for g in last.gates] == ["plan_filed", "team_formed"] and all(g["passed"] for g in last.gates)
        assert last.workflow_version == events_of(s, SCHOOL)[0].workflow_version is not None


def test_a_bulk_advance_that_finds_a_school_changed_meanwhile_changes_nothing(
        plan: sessionmaker[Session], clock: FixedClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each row is guarded by its version: if another officer's commit changes one school while the
    bulk advance is judging, nothing moves and the officer is told to try again."""
    from sqlalchemy import update

    from engine.models import SchoolRun

    _planning_done(plan, clock, SCHOOL)
    _planning_done(plan, clock, OTHER)
    judge = runs_module.judge_stage
    session: list[Session] = []

    def meanwhile(*args: Any, **kwargs: Any) -> Any:  # a concurrent commit bumps OTHER's version
        session[0].execute(update(SchoolRun).where(SchoolRun.school_code == OTHER)
                           .values(version=SchoolRun.version + 1))
        return judge(*args, **kwargs)

    monkeypatch.setattr(runs_module, "judge_stage", meanwhile)
    with pytest.raises(StaleStateError) as info, transaction(plan) as s:  # the caller's transaction rolls back
        session.append(s)
        advance_all_ready(s, clock, actor=COUNTY_OFFICER)
    assert str(info.value) == "有学校在批量推进期间被他人修改，本次未做任何更改，请重试"
    assert (_state(plan, SCHOOL)[0], _state(plan, OTHER)[0]) == ("planning", "planning")
    set_language("en")
    with pytest.raises(StaleStateError) as info, transaction(plan) as s:
        session[0] = s
        advance_all_ready(s, clock, actor=COUNTY_OFFICER)
    assert str(info.value) == "schools changed during the bulk advance; nothing was changed, try again"


def test_only_an_extension_records_a_new_due_date_in_its_reason(plan: sessionmaker[Session], clock: FixedClock) -> None:
    set_language("en")
    _fire(plan, clock, trigger="extend", reason="flood", due=date(2021, 10, 31))
    _fire(plan, clock, trigger="suspend", reason="merger", due=date(2021, 11, 30))  # a stray --due is not recorded
    _fire(plan, clock, code=EARLY[1], trigger="override", actor=CITY_OFFICER, reason="closed")
    with transaction(plan) as s:
        extend, suspend = events_of(s, SCHOOL)[-2:]
        override = events_of(s, EARLY[1])[-1]
    assert override.reason == "closed；overrode failing gates: plan_filed, team_formed"
    assert extend.reason is not None and extend.reason.startswith("flood") and extend.reason.endswith("new due date 2021-10-31")
    assert suspend.reason == "merger"
