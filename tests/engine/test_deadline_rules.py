"""What an approved extension that covers the rest of the work does to the later stages (issue 14).

Seed 002 三: "承训单位可向……执行办公室提出延期申请,获批后最迟于2021年底前完成". The Henan workflow
(workflows/henan-contractor-2021.yaml) says so with ``covers: remaining_to_cap`` on ``extend``;
engine/deadline.py's docstring states the rules: a schedule date (a batch date) before the date
the extension was granted until is the old plan and gives way to the covered end; a rule counted
from entering the stage is the school's own pace and stands, within the covered end; the latest
extension of an earlier stage decides.
"""

from __future__ import annotations

from datetime import date

from engine.calendar.workdays import WorkCalendar
from engine.deadline import Cover, StageDue, extension_cover, stage_due
from engine.workflow.loader import load_workflow_file, load_workflow_text
from engine.workflow.model import Workflow
from tests.engine.builders import REPO

HENAN_FILE = REPO / "workflows" / "henan-contractor-2021.yaml"
HENAN = load_workflow_file(HENAN_FILE)
CAP = date(2021, 12, 31)  # the plan's extension cap: "最迟于2021年底前"
GRANTED = date(2021, 9, 30)  # training extended until 09-30
TRAINING_EXTENDED = {"training": (GRANTED, "extension")}
MON_FRI = WorkCalendar({}, {2021, 2022})


def _variant(registration_covers: str | None) -> Workflow:
    """Henan with a second ``extend`` for registration alone, covering ``registration_covers``."""
    text = HENAN_FILE.read_text(encoding="utf-8")
    shared = "    from: [registration, training, deliverables]\n    roles: [province_office]"
    assert shared in text
    own = "" if registration_covers is None else f"\n    covers: {registration_covers}"
    extra = ("  - trigger: extend\n    kind: extend\n    title: {zh: 报名延期, en: Extend registration}\n"
             f"    from: registration\n    roles: [province_office]{own}\n\n")
    text = text.replace(shared, shared.replace("registration, ", "")).replace(
        "  - trigger: override\n", extra + "  - trigger: override\n", 1)
    return load_workflow_text(text, "henan-variant.yaml")


def deliverables_due(entered: date, *, batch: dict[str, str] | None = None,
                     calendar: WorkCalendar = MON_FRI) -> StageDue | None:
    """Deliverables ("培训结束后30天内": 30 days after entry) after training was extended."""
    return stage_due(HENAN.stage("deliverables"), batch_start=date(2021, 3, 1), stage_entered=entered,
                     batch_deadlines=batch or {}, run_deadline=None, final_deadline=date(2021, 6, 30),
                     calendar=calendar, binds_final=False,
                     cover=extension_cover(HENAN, "deliverables", TRAINING_EXTENDED, CAP))


def test_a_school_that_finished_early_keeps_its_own_30_days() -> None:
    """Training extended to 09-30 but ended 07-01: deliverables are due 30 days later, 07-31, not at
    the cap (the relative rule is the school's own pace, within the covered end)."""
    assert deliverables_due(date(2021, 7, 1)) == StageDue(date(2021, 7, 31), False, "workflow")


def test_a_rule_landing_on_the_covered_end_is_the_workflows_own_date() -> None:
    """Entered 12-01: 30 days is 12-31, the cap itself; only a date past the cap is moved to it."""
    assert deliverables_due(date(2021, 12, 1)) == StageDue(CAP, False, "workflow")
    assert deliverables_due(date(2021, 12, 2)) == StageDue(CAP, False, "extension")


def test_a_batch_date_before_the_granted_date_is_the_old_plan() -> None:
    """The batch's 07-30 for deliverables was the plan the school was given more time against: the
    covered end applies, however early the school entered the stage."""
    for entered in (date(2021, 7, 1), date(2021, 9, 20)):
        assert deliverables_due(entered, batch={"deliverables": "2021-07-30"}) == StageDue(CAP, False, "extension")


def test_a_batch_date_from_the_granted_date_on_stands_within_the_covered_end() -> None:
    on_the_day = deliverables_due(date(2021, 9, 20), batch={"deliverables": "2021-09-30"})
    assert on_the_day == StageDue(GRANTED, False, "batch")  # not before the granted date: not the old plan
    later = deliverables_due(date(2021, 9, 20), batch={"deliverables": "2021-10-15"})
    assert later == StageDue(date(2021, 10, 15), False, "batch")
    past = deliverables_due(date(2021, 9, 20), batch={"deliverables": "2022-01-15"})
    assert past == StageDue(CAP, False, "extension")


def test_the_covered_end_is_never_provisional() -> None:
    """The cap is a date the office set, not a count of working days: even before the year's
    official calendar is imported (every count provisional), the covered end is firm."""
    no_official_year = WorkCalendar({}, set())
    got = deliverables_due(date(2021, 9, 20), batch={"deliverables": "2021-07-30"}, calendar=no_official_year)
    assert got == StageDue(CAP, False, "extension")


def test_an_extension_on_a_stage_the_workflow_cannot_extend_covers_nothing() -> None:
    """Only an ``extend`` transition that says ``covers`` moves later stages: an extension recorded
    on ``assigned`` (no ``extend`` from it in this workflow) leaves registration to its own rule."""
    assert extension_cover(HENAN, "registration", {"assigned": (GRANTED, "extension")}, CAP) is None
    assert extension_cover(_variant(None), "deliverables", {"registration": (GRANTED, "extension")}, CAP) is None


def test_without_a_cap_the_rest_is_due_by_the_extensions_own_date() -> None:
    assert extension_cover(HENAN, "deliverables", TRAINING_EXTENDED, None) == Cover(GRANTED, GRANTED)


def test_the_latest_extension_of_an_earlier_stage_decides() -> None:
    both = {"registration": (date(2021, 5, 31), "extension"), "training": (GRANTED, "extension")}
    assert extension_cover(HENAN, "evaluation", both, CAP) == Cover(GRANTED, CAP)
    # registration's own extend covers only its stage: training's, after it, still covers the rest
    assert extension_cover(_variant(None), "deliverables", both, CAP) == Cover(GRANTED, CAP)
    # registration's covers the rest up to its own date, training's up to the cap
    mixed = _variant("remaining")
    later_first = {"registration": (date(2021, 10, 31), "extension"), "training": (GRANTED, "extension")}
    assert extension_cover(mixed, "evaluation", later_first, CAP) == Cover(date(2021, 10, 31), date(2021, 10, 31))
    assert extension_cover(mixed, "evaluation", both, CAP) == Cover(GRANTED, CAP)
    # granted until the same day: the later stage's extension is the one in force
    same_day = {"registration": (GRANTED, "extension"), "training": (GRANTED, "extension")}
    assert extension_cover(mixed, "evaluation", same_day, CAP) == Cover(GRANTED, CAP)
