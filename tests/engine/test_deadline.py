"""Due dates: run deadline > batch date > workflow rule, capped by the final deadline, on the calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime

from engine.calendar.workdays import WorkCalendar
from engine.deadline import StageDue, days_overdue, local_date, stage_due
from engine.workflow.model import Stage
from tests.engine.builders import shipped_workflow

WF = shipped_workflow()
PLANNING = WF.stage("planning")  # due: 30 working days after stage entry
PILOT = WF.stage("pilot")  # due: 2021-12-31
MON_FRI = WorkCalendar({}, {2021, 2022})
FINAL = date(2022, 11, 30)


def maybe_due(stage: Stage = PLANNING, *, batch: dict[str, str] | None = None,
              run: tuple[date, str] | None = None, final: date | None = FINAL,
              calendar: WorkCalendar = MON_FRI) -> StageDue | None:
    return stage_due(stage, batch_start=date(2021, 9, 1), stage_entered=date(2021, 9, 1),
                     batch_deadlines=batch or {}, run_deadline=run, final_deadline=final, calendar=calendar)


def due(stage: Stage = PLANNING, *, batch: dict[str, str] | None = None, run: tuple[date, str] | None = None,
        final: date | None = FINAL, calendar: WorkCalendar = MON_FRI) -> StageDue:
    got = maybe_due(stage, batch=batch, run=run, final=final, calendar=calendar)
    assert got is not None
    return got


def test_run_deadline_beats_batch_beats_workflow() -> None:
    both = due(batch={"planning": "2021-10-15"}, run=(date(2021, 11, 1), "extension"))
    assert (both.due, both.source) == (date(2021, 11, 1), "extension")
    batch = due(batch={"planning": "2021-10-15"})
    assert (batch.due, batch.source) == (date(2021, 10, 15), "batch")
    rule = due()
    assert rule.source == "workflow"


def test_working_day_rule_counts_monday_to_friday() -> None:
    # 2021-09-01 is a Wednesday: 30 working days later is Wednesday 2021-10-13.
    got = due()
    assert got.due == date(2021, 10, 13) and not got.provisional


def test_working_day_rule_uses_the_official_calendar() -> None:
    # National Day week 2021-10-01..07 off; 2021-09-26 (Sun) and 10-09 (Sat) worked (调休).
    exceptions = {date(2021, 10, d): False for d in (1, 4, 5, 6, 7)}
    exceptions |= {date(2021, 9, 26): True, date(2021, 10, 9): True}
    official = WorkCalendar(exceptions, {2021, 2022})
    assert due(calendar=official).due == date(2021, 10, 18)  # 5 holidays, 2 make-up days: 3 later
    assert due(calendar=official).due != due().due


def test_year_without_official_calendar_is_provisional() -> None:
    assert due(calendar=WorkCalendar({}, set())).provisional


def test_workflow_rule_capped_by_final_deadline() -> None:
    got = due(PILOT, final=date(2021, 12, 1))
    assert (got.due, got.source) == (date(2021, 12, 1), "final")
    got = due(final=date(2021, 10, 1))
    assert (got.due, got.source) == (date(2021, 10, 1), "final")
    assert due(PILOT).due == date(2021, 12, 31)


def test_run_extension_may_pass_final_deadline() -> None:
    got = due(run=(date(2022, 12, 20), "extension"))
    assert got.due == date(2022, 12, 20)


def test_terminal_and_hold_stages_have_no_due_date() -> None:
    assert maybe_due(WF.stage("done")) is None
    assert maybe_due(WF.stage("suspended")) is None


def test_overdue_counts_from_the_day_after() -> None:
    assert days_overdue(date(2021, 10, 13), date(2021, 10, 13)) == 0
    assert days_overdue(date(2021, 10, 13), date(2021, 10, 15)) == 2
    assert days_overdue(date(2021, 10, 13), date(2021, 10, 1)) == 0


def test_local_date_uses_the_plan_zone() -> None:
    at = datetime(2021, 9, 30, 17, 0, tzinfo=UTC)  # 01:00 on 10-01 in Shanghai
    assert local_date(at, "Asia/Shanghai") == date(2021, 10, 1)


def test_due_rule_counts_from_its_own_anchor() -> None:
    """`after_stage_entry` counts from the day the school entered the stage, `after_batch_start`
    from the day its batch started (docs/workflow-files.md "Due dates"): a school that entered
    planning weeks after its batch began gets its 30 days from entry, not from the batch start."""
    from dataclasses import replace

    from engine.workflow.model import DueRule

    batch_start, entered = date(2021, 9, 1), date(2021, 10, 11)

    def due_of(rule: DueRule) -> date:
        stage = replace(PLANNING, due=rule)
        got = stage_due(stage, batch_start=batch_start, stage_entered=entered, batch_deadlines={},
                        run_deadline=None, final_deadline=FINAL, calendar=MON_FRI)
        assert got is not None and got.source == "workflow"
        return got.due

    assert due_of(DueRule("after_stage_entry", amount=30)) == date(2021, 11, 10)  # entry + 30 days
    assert due_of(DueRule("after_batch_start", amount=90)) == date(2021, 11, 30)  # batch start + 90 days
    # 2021-10-11 is a Monday: 10 working days later is Monday 2021-10-25; from the batch start
    # (Wednesday 09-01) it would be Wednesday 09-15.
    assert due_of(DueRule("after_stage_entry", amount=10, working_days=True)) == date(2021, 10, 25)
    assert due_of(DueRule("after_batch_start", amount=10, working_days=True)) == date(2021, 9, 15)


def test_only_working_day_counts_are_provisional() -> None:
    """"Provisional" warns that a date was counted Monday–Friday because the year's official
    calendar is missing; a fixed date (workflow, batch, extension or the final deadline) does not
    depend on the calendar and is never provisional, even in such a year."""
    unknown_year = WorkCalendar({}, set())
    assert due(calendar=unknown_year).provisional  # counted in working days
    fixed = [due(PILOT, calendar=unknown_year), due(batch={"planning": "2021-10-15"}, calendar=unknown_year),
             due(run=(date(2021, 11, 1), "extension"), calendar=unknown_year),
             due(final=date(2021, 10, 1), calendar=unknown_year)]
    assert [(d.source, d.provisional) for d in fixed] == [
        ("workflow", False), ("batch", False), ("extension", False), ("final", False)]


def test_a_stage_without_a_rule_is_due_by_the_final_deadline() -> None:
    """001: every teacher completes by 2022年11月30日: a stage with no due rule of its own still has
    the plan's final deadline; only without a final deadline has it no date at all."""
    from dataclasses import replace

    open_ended = replace(PLANNING, due=None)
    got = due(open_ended)
    assert (got.due, got.source, got.provisional) == (FINAL, "final", False)
    assert maybe_due(open_ended, final=None) is None
    assert due(open_ended, batch={"planning": "2021-10-15"}).source == "batch"  # a batch date still wins


def test_a_rule_landing_on_the_final_deadline_is_not_capped() -> None:
    """Capped means moved earlier: a workflow date equal to the final deadline is the workflow's."""
    got = due(PILOT, final=date(2021, 12, 31))
    assert (got.due, got.source) == (date(2021, 12, 31), "workflow")


# -- issue 14: what an extension covers, which stages the final deadline binds ------------------
from engine.deadline import Cover, extension_cover  # noqa: E402
from engine.workflow.loader import load_workflow_file  # noqa: E402
from tests.engine.builders import REPO  # noqa: E402

HENAN = load_workflow_file(REPO / "workflows" / "henan-contractor-2021.yaml")
TRAINING_END = date(2021, 6, 30)


def henan_due(stage: str, entered: date, *, deadlines: dict[str, tuple[date, str]] | None = None,
              binds: bool = True, cap: date = date(2021, 12, 31)) -> StageDue:
    cover = extension_cover(HENAN, stage, deadlines or {}, cap)
    got = stage_due(HENAN.stage(stage), batch_start=date(2021, 3, 1), stage_entered=entered, batch_deadlines={},
                    run_deadline=(deadlines or {}).get(stage), final_deadline=TRAINING_END, calendar=MON_FRI,
                    binds_final=binds, cover=cover)
    assert got is not None
    return got


def test_a_relative_stage_the_final_deadline_does_not_bind_keeps_its_30_days() -> None:
    """002 "培训结束后30天内": training ended 06-20, deliverables due 07-20, not 06-30."""
    assert henan_due("deliverables", date(2021, 6, 20)).due == TRAINING_END  # bound: the old cut
    kept = henan_due("deliverables", date(2021, 6, 20), binds=False)
    assert (kept.due, kept.source) == (date(2021, 7, 20), "workflow")


def test_an_extension_that_covers_the_rest_moves_the_later_stages() -> None:
    """002 "获批后最迟于2021年底前完成": after an extended training, the next stage is not overdue."""
    extended = {"training": (date(2021, 9, 30), "extension")}
    assert extension_cover(HENAN, "deliverables", extended, date(2021, 12, 31)) == Cover(date(2021, 9, 30), date(2021, 12, 31))
    assert extension_cover(HENAN, "training", extended, date(2021, 12, 31)) is None  # its own stage: the run deadline
    # finished training 09-20: deliverables 30 days later, even though the plan's final is 06-30
    got = henan_due("deliverables", date(2021, 9, 20), deadlines=extended)
    assert (got.due, got.source) == (date(2021, 10, 20), "workflow")
    # finished 12-15: 30 days would be 2022-01-14, the cap stops it at 12-31
    late = henan_due("deliverables", date(2021, 12, 15), deadlines=extended)
    assert (late.due, late.source) == (date(2021, 12, 31), "extension")


def test_an_extension_covering_its_stage_only_leaves_later_stages_alone() -> None:
    wf = shipped_workflow()  # whole-school-2.0: extend without covers
    assert extension_cover(wf, "online_study", {"planning": (date(2021, 12, 1), "extension")}, date(2022, 12, 31)) is None
    assert extension_cover(wf, "online_study", {"planning": (date(2021, 12, 1), "override")}, None) is None


def test_covers_remaining_ends_the_rest_at_the_extension_date() -> None:
    from engine.workflow.loader import load_workflow_text
    text = (REPO / "workflows" / "henan-contractor-2021.yaml").read_text(encoding="utf-8")
    wf = load_workflow_text(text.replace("covers: remaining_to_cap", "covers: remaining"), "henan.yaml")
    extended = {"training": (date(2021, 9, 30), "extension")}
    assert extension_cover(wf, "evaluation", extended, date(2021, 12, 31)) == Cover(date(2021, 9, 30), date(2021, 9, 30))


def test_covers_is_only_for_extend() -> None:
    import pytest

    from engine.errors import WorkflowFileError
    from engine.workflow.loader import load_workflow_text
    text = (REPO / "workflows" / "henan-contractor-2021.yaml").read_text(encoding="utf-8")
    bad = text.replace("from: assigned, to: registration, roles: [province_office], auto: true}",
                       "from: assigned, to: registration, roles: [province_office], auto: true, covers: remaining}")
    with pytest.raises(WorkflowFileError, match=r"transitions\[0\]\.covers"):
        load_workflow_text(bad, "henan.yaml")
    with pytest.raises(WorkflowFileError, match="covers"):
        load_workflow_text(text.replace("covers: remaining_to_cap", "covers: everything"), "henan.yaml")
