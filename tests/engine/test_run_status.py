"""The stored status (engine/run_status.py) follows every change it depends on and agrees with the
live evaluation; refreshing it never counts as a change of the run."""

from __future__ import annotations

import csv
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import FixedClock
from engine.db import transaction
from engine.facts import set_fact
from engine.imports import seed_calendar
from engine.imports.progress import import_progress
from engine.models import Plan, SchoolRun
from engine.run_status import ensure_current, refresh
from engine.runs import SYSTEM, Actor, advance_all_ready, fire
from engine.status import RunView, run_views, status_table, stored_views
from engine.tally import tally_drift
from engine.workflow.model import Workflow
from engine.workflow.versions import workflow_for_version
from tests.engine.builders import COUNTY, COUNTY_OFFICER, EARLY, LATE, OTHER, add_teachers, run_of

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _key(v: RunView) -> tuple[object, ...]:
    return (v.state, v.started, v.due, v.days_overdue, v.blocked, sorted(g.gate for g in v.gates if not g.passed))


def _agree(s: Session, clock: FixedClock) -> dict[str, RunView]:
    plan = s.scalars(select(Plan)).one()
    live = {v.school_code: v for v in run_views(s, clock, plan)}
    stored = {v.school_code: v for v in stored_views(s, clock, plan)}
    assert {k: _key(v) for k, v in stored.items()} == {k: _key(v) for k, v in live.items()}
    return stored


def _three_with_online_hours(tmp_path: Path) -> Path:
    """A platform export: three teachers of EARLY[0] with their online hours, no practice yet."""
    path = tmp_path / "progress.csv"
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(["教师ID", "姓名", "学校标识码", "网络研修学时", "校本实践学时", "所选能力点", "提交作品数", "测评结果"])
        for i in range(3):
            w.writerow([f"T{i}", f"教师{i}", EARLY[0], "30", "0", "1,2,3", "0", ""])
    return path


def test_plan_load_derives_every_run(plan: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(plan) as s:
        assert all(r.derived_ok for r in s.scalars(select(SchoolRun)))
        views = _agree(s, clock)
    assert views[EARLY[0]].blocked and views[EARLY[0]].due is not None
    assert views[EARLY[0]].due.due == date(2021, 9, 30) and views[EARLY[0]].due.source == "batch"


def test_fact_and_transition_refresh_without_bumping_the_version(plan: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(plan) as s:
        set_fact(s, clock, school_code=EARLY[0], name="plan_filed", value=1, actor=COUNTY_OFFICER)
        set_fact(s, clock, school_code=EARLY[0], name="team_members", value=4, actor=COUNTY_OFFICER)
        run = run_of(s, EARLY[0])
        assert not run.blocked and run.failing is None
        version = run.version
        assert refresh(s, SchoolRun.id == run.id) == 0  # nothing changed: nothing written
        s.execute(update(SchoolRun).where(SchoolRun.id == run.id).values(blocked=True))
        assert refresh(s, SchoolRun.id == run.id) == 1
        assert run_of(s, EARLY[0]).version == version  # derived columns are not a change of the run
        fire(s, clock, school_code=EARLY[0], trigger="advance", actor=COUNTY_OFFICER)
        run = run_of(s, EARLY[0])
        # online study: no teachers yet, so its gates have no data and fail
        assert run.state == "online_study" and run.blocked and run.failing
        _agree(s, clock)


def test_progress_import_refreshes_gates(plan: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    with transaction(plan) as s:
        set_fact(s, clock, school_code=EARLY[0], name="plan_filed", value=1, actor=COUNTY_OFFICER)
        set_fact(s, clock, school_code=EARLY[0], name="team_members", value=4, actor=COUNTY_OFFICER)
        fire(s, clock, school_code=EARLY[0], trigger="advance", actor=COUNTY_OFFICER)
        assert run_of(s, EARLY[0]).blocked
    path = _three_with_online_hours(tmp_path)
    with transaction(plan) as s:
        import_progress(s, path)
        run = run_of(s, EARLY[0])
        assert run.state == "online_study" and not run.blocked
        _agree(s, clock)


def test_calendar_change_moves_working_day_due_dates(plan: sessionmaker[Session], clock: FixedClock) -> None:
    clock.set(datetime(2021, 9, 2, 9, 0, tzinfo=SHANGHAI))
    with transaction(plan) as s:
        before = _agree(s, clock)[LATE[0]].due
        assert before is not None and before.provisional and before.source == "workflow"
        seed_calendar(s, [2021], clock)
        after = _agree(s, clock)[LATE[0]].due
    # 30 working days from 2021-09-01 cross the National Day holiday (10-01..10-07, 调休 09-18/09-26/10-09)
    assert after is not None and not after.provisional and after.due > before.due


def test_never_derived_runs_are_derived_on_first_read(plan: sessionmaker[Session], clock: FixedClock) -> None:
    """A database upgraded to migration 0004 has every run ``derived_ok = false``."""
    with transaction(plan) as s:
        _wf, expected = status_table(s, clock)
        s.execute(update(SchoolRun).values(derived_ok=False, blocked=False, failing=None, due_date=None))
        _wf, rows = status_table(s, clock)
        assert rows == expected and sum(r.blocked for r in rows) == 4
        assert ensure_current(s, s.scalars(select(Plan.id)).one()) == 0
        _agree(s, clock)


def test_sweep_candidates_come_from_the_stored_verdict(plan: sessionmaker[Session], clock: FixedClock) -> None:
    """``candidates_only`` measures only runs stored as passing, and still judges them afresh."""
    clock.set(clock.now() + timedelta(days=1))
    system = Actor(SYSTEM, SYSTEM)
    with transaction(plan) as s:
        set_fact(s, clock, school_code=EARLY[0], name="plan_filed", value=1, actor=COUNTY_OFFICER)
        set_fact(s, clock, school_code=EARLY[0], name="team_members", value=4, actor=COUNTY_OFFICER)
        fire(s, clock, school_code=EARLY[0], trigger="advance", actor=COUNTY_OFFICER)
        add_teachers(s, EARLY[0], 2)  # everything done: every later auto gate that reads teachers passes
        run = run_of(s, EARLY[0])
        assert not run.blocked
        # A stale "passes" is re-judged and refused; a stale "blocked" is not even measured.
        s.execute(update(SchoolRun).where(SchoolRun.id == run.id).values(blocked=True))
        assert advance_all_ready(s, clock, actor=system, auto_only=True, candidates_only=True).advanced == 0
        assert advance_all_ready(s, clock, actor=system, auto_only=True).advanced == 1
        _agree(s, clock)


def test_a_calendar_change_judges_runs_never_derived(plan: sessionmaker[Session], clock: FixedClock) -> None:
    """A calendar change recomputes only due dates — except on runs never derived (a database
    upgraded from before the stored status), whose gate verdict it stores too: otherwise their
    ``derived_ok`` would say "current" while ``blocked``/``failing`` still held the upgrade's blanks."""
    with transaction(plan) as s:
        s.execute(update(SchoolRun).values(derived_ok=False, blocked=False, failing=None, due_date=None))
        seed_calendar(s, [2021], clock)
        runs = {r.school_code: r for r in s.scalars(select(SchoolRun))}
        assert all(r.derived_ok for r in runs.values())
        early = runs[EARLY[0]]
        assert early.blocked and sorted(g["gate"] for g in early.failing or []) == ["plan_filed", "team_formed"]
        _agree(s, clock)


def test_a_schools_own_deadline_is_its_stored_due_date(plan: sessionmaker[Session], clock: FixedClock) -> None:
    """An office's override and an approved extension are the stage's due date (above the batch
    date), and stay so when a plan-wide refresh (a calendar change) recomputes every due date."""
    from engine.run_deadline import override_deadline

    with transaction(plan) as s:
        override_deadline(s, clock, school_code=EARLY[0], stage="planning", due=date(2021, 10, 20),
                          reason="校舍改造", actor=COUNTY_OFFICER)
        fire(s, clock, school_code=EARLY[1], trigger="extend", actor=COUNTY_OFFICER, reason="洪水",
             due=date(2021, 10, 25))
        seed_calendar(s, [2021], clock)
        stored = {r.school_code: (r.due_date, r.due_source) for r in s.scalars(select(SchoolRun))}
        _agree(s, clock)
    assert stored[EARLY[0]] == (date(2021, 10, 20), "override")
    assert stored[EARLY[1]] == (date(2021, 10, 25), "extension")
    assert stored[OTHER] == (date(2021, 9, 30), "batch")  # the same batch, no deadline of its own


def test_refreshing_a_withdrawn_run_takes_it_out_of_its_countys_tallies(plan: sessionmaker[Session],
                                                                        clock: FixedClock) -> None:
    """A run that left the plan is not derived (nothing is due from it) but its county's counts —
    schools and the rates over its teachers — must lose it when it is refreshed."""
    with transaction(plan) as s:
        add_teachers(s, EARLY[0], 3)
        plan_id = s.scalars(select(Plan.id)).one()
        run = run_of(s, EARLY[0])
        s.execute(update(SchoolRun).where(SchoolRun.id == run.id)
                  .values(withdrawn_at=clock.now(), due_date=None, due_source=None, blocked=False, failing=None))
        assert tally_drift(s, plan_id) == [COUNTY]  # the withdrawal is not counted yet
        assert refresh(s, SchoolRun.id == run.id) == 0  # nothing to derive on a withdrawn run
        assert tally_drift(s, plan_id) == []
        seed_calendar(s, [2021], clock)  # a plan-wide refresh leaves the withdrawn run underived
        s.expire_all()
        run = run_of(s, EARLY[0])
        assert (run.due_date, run.due_source, run.blocked, run.failing) == (None, None, False, None)
        assert tally_drift(s, plan_id) == []


def test_a_progress_import_keeps_the_rates_over_teachers_tallied(plan: sessionmaker[Session], clock: FixedClock,
                                                                tmp_path: Path) -> None:
    """New teachers change the county's rates over teachers, which a refresh must re-tally."""
    path = _three_with_online_hours(tmp_path)
    with transaction(plan) as s:
        import_progress(s, path)
        assert tally_drift(s, s.scalars(select(Plan.id)).one()) == []


def test_stored_due_dates_follow_the_plans_final_deadline_binding_and_extension_cap(
        factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    """Henan (seed 002): the first stage counts from the batch start; the final deadline (06-30)
    cuts only the stages it binds; an extension of an earlier stage that covers the remaining work
    makes a later stage due by the plan's extension cap (12-31), not by the final deadline."""
    from engine.models import RunDeadline
    from tests.engine.henan import SCHOOLS, henan

    entered = datetime(2021, 6, 25, 9, 0, tzinfo=SHANGHAI)
    registration, training, deliverables = SCHOOLS[0], SCHOOLS[1], SCHOOLS[2]
    with transaction(factory) as s:
        henan(s, clock, tmp_path)
        for school, stage in [(registration, "registration"), (training, "training"), (deliverables, "deliverables")]:
            s.execute(update(SchoolRun).where(SchoolRun.school_code == school)
                      .values(state=stage, stage_entered_at=entered))
        s.add(RunDeadline(run_id=_run_id(s, training), stage="registration", due=date(2021, 9, 30),
                          kind="extension", reason="延期", created_at=clock.now(), created_by="赵处长"))
        s.flush()
        refresh(s, SchoolRun.plan_id == s.scalars(select(Plan.id)).one())
        stored = {r.school_code: (r.due_date, r.due_source) for r in s.scalars(select(SchoolRun))}
        _agree(s, clock)
    assert stored[SCHOOLS[3]] == (date(2021, 3, 1), "workflow")  # assigned: 20 working days after 02-01
    assert stored[registration] == (date(2021, 6, 30), "final")  # 10 working days from 06-25, cut to 06-30
    assert stored[deliverables] == (date(2021, 7, 25), "workflow")  # not bound by the final deadline
    assert stored[training] == (date(2021, 12, 31), "extension")


def _run_id(s: Session, school: str) -> int:
    run_id = s.scalar(select(SchoolRun.id).where(SchoolRun.school_code == school))
    assert run_id is not None
    return run_id


def test_refresh_ids_refreshes_every_chunk(plan: sessionmaker[Session], clock: FixedClock,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Long id lists go in chunks (drivers' bind limits); every run in every chunk is refreshed."""
    import engine.run_status as run_status

    monkeypatch.setattr(run_status, "CHUNK", 2)
    with transaction(plan) as s:
        ids = list(s.scalars(select(SchoolRun.id).order_by(SchoolRun.id)))
        assert len(ids) == 6
        s.execute(update(SchoolRun).values(due_date=None))
        assert run_status.refresh_ids(s, ids) == 6
        assert all(r.due_date is not None for r in s.scalars(select(SchoolRun)))


def test_a_suspended_school_has_no_stored_due_date(plan: sessionmaker[Session], clock: FixedClock) -> None:
    """A hold stage has no deadline of its own: nothing is due, nothing overdue, while suspended."""
    with transaction(plan) as s:
        fire(s, clock, school_code=EARLY[0], trigger="suspend", actor=COUNTY_OFFICER, reason="学校合并")
        run = run_of(s, EARLY[0])
        assert (run.state, run.due_date, run.due_source, run.due_provisional) == ("suspended", None, None, False)
        _agree(s, clock)


def test_gates_are_judged_for_every_run_when_measured_in_chunks(plan: sessionmaker[Session], clock: FixedClock,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A province's teachers are aggregated a chunk of schools at a time: every chunk's runs get
    their own gate verdict, the same as measured in one go."""
    import engine.run_status as run_status

    with transaction(plan) as s:
        for school in (EARLY[1], LATE[1]):  # planning done: these pass, the others do not
            set_fact(s, clock, school_code=school, name="plan_filed", value=1, actor=COUNTY_OFFICER)
            set_fact(s, clock, school_code=school, name="team_members", value=4, actor=COUNTY_OFFICER)
        expected = {r.school_code: (r.blocked, r.failing) for r in s.scalars(select(SchoolRun))}
        assert len({b for b, _ in expected.values()}) == 2  # some pass, some do not
        s.execute(update(SchoolRun).values(blocked=False, failing=None))
        monkeypatch.setattr(run_status, "CHUNK", 2)
        refresh(s, SchoolRun.plan_id == s.scalars(select(Plan.id)).one())
        s.expire_all()
        assert {r.school_code: (r.blocked, r.failing) for r in s.scalars(select(SchoolRun))} == expected


def test_runs_the_caller_measured_keep_its_values_and_the_rest_are_measured_in_chunks(
        plan: sessionmaker[Session], clock: FixedClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """``values`` spares the teacher aggregation for runs the caller has just measured: those are
    judged on the values given, every other run is measured (a list of runs, in IN-list chunks
    under the drivers' bind limits) and judged on its own figures."""
    import engine.metrics as metrics
    import engine.run_status as run_status

    with transaction(plan) as s:
        for school in (EARLY[1], LATE[1]):  # planning done: these pass, the others do not
            set_fact(s, clock, school_code=school, name="plan_filed", value=1, actor=COUNTY_OFFICER)
            set_fact(s, clock, school_code=school, name="team_members", value=4, actor=COUNTY_OFFICER)
        expected = {r.school_code: (r.blocked, r.failing) for r in s.scalars(select(SchoolRun))}
        given = run_of(s, EARLY[1])  # passes on its own figures; the caller says the plan is not filed
        said = dict(metrics.values_for_run(s, plan_workflow(s), given)) | {"plan_filed": 0.0}
        s.execute(update(SchoolRun).values(blocked=False, failing=None))
        monkeypatch.setattr(run_status, "CHUNK", 2)
        refresh(s, SchoolRun.plan_id == s.scalars(select(Plan.id)).one(), values={given.id: said})
        s.expire_all()
        got = {r.school_code: (r.blocked, r.failing) for r in s.scalars(select(SchoolRun))}
    assert got[EARLY[1]][0] is True and [g["gate"] for g in got[EARLY[1]][1]] == ["plan_filed"]
    assert {k: v for k, v in got.items() if k != EARLY[1]} == {k: v for k, v in expected.items() if k != EARLY[1]}


def plan_workflow(s: Session) -> Workflow:
    return workflow_for_version(s, s.scalars(select(Plan.workflow_version_id)).one())


def test_a_teachers_only_refresh_keeps_stored_due_dates_and_dates_runs_never_derived(
        plan: sessionmaker[Session], clock: FixedClock) -> None:
    """``dates=False`` (a progress import's refresh) trusts a derived run's stored due date — no
    teacher figure moves one — but a run never derived still gets its date worked out."""
    with transaction(plan) as s:
        due = run_of(s, EARLY[0]).due_date
        assert due is not None
        s.execute(update(SchoolRun).where(SchoolRun.school_code == EARLY[0]).values(due_date=date(2030, 1, 1)))
        s.execute(update(SchoolRun).where(SchoolRun.school_code == LATE[0])
                  .values(due_date=None, due_source=None, derived_ok=False))
        refresh(s, SchoolRun.id.is_not(None), dates=False)
        assert run_of(s, EARLY[0]).due_date == date(2030, 1, 1)
        late = run_of(s, LATE[0])
        assert late.derived_ok and late.due_date is not None and late.due_source == "workflow"
        refresh(s, SchoolRun.id.is_not(None))
        assert run_of(s, EARLY[0]).due_date == due


def test_a_run_whose_failing_gates_are_unchanged_is_not_written_again(plan: sessionmaker[Session]) -> None:
    """The failing gates are compared as the JSON text the column holds: the same gates, failing by
    the same figures, compare equal (else every refresh rewrote every blocked run); other figures do not."""
    with transaction(plan) as s:
        run = run_of(s, EARLY[0])
        assert run.blocked and run.failing
        failing = [dict(g) for g in run.failing]
        assert refresh(s, SchoolRun.id.is_not(None)) == 0
        assert refresh(s, SchoolRun.id.is_not(None), dates=False) == 0
        assert refresh(s, SchoolRun.id.is_not(None), gates=False) == 0  # the stored text kept as it is
        s.execute(update(SchoolRun).where(SchoolRun.id == run.id).values(failing=[{"gate": "other"}]))
        assert refresh(s, SchoolRun.id == run.id) == 1
        s.expire_all()
        assert run_of(s, EARLY[0]).failing == failing
        s.execute(update(SchoolRun).where(SchoolRun.id == run.id).values(failing=[{"gate": "other"}], due_date=None))
        assert refresh(s, SchoolRun.id == run.id, gates=False) == 1  # a date moved: the gates are kept as they were
        s.expire_all()
        assert run_of(s, EARLY[0]).failing == [{"gate": "other"}] and run_of(s, EARLY[0]).due_date is not None


def test_meanwhile_runs_once_beside_the_judging_and_its_error_reaches_the_caller(
        plan: sessionmaker[Session]) -> None:
    """A progress import writes its history while the verdicts are judged: the work runs once, in
    another thread, is done when ``refresh`` returns (the connection is the caller's again), runs
    even when no run matches, and its error is the caller's."""
    import threading

    threads: list[int] = []

    def work() -> None:
        threads.append(threading.get_ident())

    with transaction(plan) as s:
        s.execute(update(SchoolRun).values(blocked=False))
        assert refresh(s, SchoolRun.id.is_not(None), meanwhile=work) > 0
        assert len(threads) == 1 and threads[0] != threading.get_ident()
        assert refresh(s, SchoolRun.id == -1, meanwhile=work) == 0
        assert len(threads) == 2

        def fails() -> None:
            raise RuntimeError("history write failed")

        with pytest.raises(RuntimeError, match="history write failed"):
            refresh(s, SchoolRun.id.is_not(None), meanwhile=fails)
