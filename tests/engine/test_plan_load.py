"""What a plan load writes and what it reads (docs/plan-files.md): the runs, batches and events it
records, the documented defaults and limits, the batch list files, the file itself, and finding a plan."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.audit import plan_chain
from engine.clock import FixedClock
from engine.db import transaction
from engine.errors import NotFound, PlanFileError
from engine.i18n import set_language
from engine.models import AuditEvent, Batch, Plan, SchoolRun
from engine.plan import find_plan, load_plan, local_midnight_utc, plan_summary
from engine.reads import remember_reads
from engine.yaml_source import MAX_YAML_CHARS
from tests.engine.builders import (
    ALL_SCHOOLS,
    EARLY,
    LATE,
    OTHER,
    PILOT,
    plan_data,
    seed,
    write_plan,
)


def _refused(factory: sessionmaker[Session], clock: FixedClock, path: Path) -> list[tuple[str | None, str]]:
    with pytest.raises(PlanFileError) as info, transaction(factory) as s:
        load_plan(s, path, clock)
    return [(p.field, p.message) for p in info.value.problems]


@pytest.fixture
def seeded(factory: sessionmaker[Session], clock: FixedClock) -> sessionmaker[Session]:
    with transaction(factory) as s:
        seed(s, clock)
    return factory


@pytest.fixture
def english() -> Iterator[None]:
    set_language("en")
    yield
    set_language("zh")


def test_the_load_records_the_plan_its_batches_runs_and_events(seeded: sessionmaker[Session], clock: FixedClock,
                                                                tmp_path: Path) -> None:
    """The plan keeps its file's text; each run starts at its batch's local midnight; the plan_load
    event names the file, its SHA-256 and the school count; each start event names the batch."""
    path = write_plan(tmp_path, plan_data())
    now = clock.now()
    with transaction(seeded) as s:
        load_plan(s, path, clock, actor="省项目办", role="province_office")
    with transaction(seeded) as s:
        plan = find_plan(s, None)
        assert (plan.title, plan.year, plan.timezone, plan.region_code, plan.final_deadline, plan.extension_cap,
                plan.final_deadline_stages) == ("沂源县提升工程2.0整校推进", 2021, "Asia/Shanghai", "370300",
                                                 date(2022, 11, 30), date(2022, 12, 31), None)
        assert plan.source == path.read_text(encoding="utf-8")
        assert plan.loaded_at.replace(tzinfo=UTC) == now.astimezone(UTC)
        batches = {b.code: (b.title, b.start, b.share, b.deadlines) for b in s.scalars(select(Batch))}
        assert batches == {"b1": ("试点", date(2021, 6, 1), 0.2, {"pilot": "2021-12-31"}),
                           "b2": ("第一批", date(2021, 6, 15), 0.4, {"planning": "2021-09-30"}),
                           "b3": ("第二批", date(2021, 9, 1), 0.4, {})}
        early = s.scalar(select(SchoolRun).where(SchoolRun.school_code == EARLY[0]))
        assert early is not None
        assert early.stage_entered_at.replace(tzinfo=UTC) == datetime(2021, 6, 14, 16, tzinfo=UTC)
        assert early.started_at.replace(tzinfo=UTC) == datetime(2021, 6, 14, 16, tzinfo=UTC)
        assert early.updated_at.replace(tzinfo=UTC) == now.astimezone(UTC)
        load = s.scalars(select(AuditEvent).where(AuditEvent.chain == plan_chain(plan.id))).one()
        sha = hashlib.sha256(path.read_text(encoding="utf-8").encode()).hexdigest()
        assert (load.actor, load.role, load.reason, load.gates) == (
            "省项目办", "province_office", "载入计划 plan.yaml", [{"sha256": sha, "schools": len(ALL_SCHOOLS)}])
        starts = {e.school_code: (e.actor, e.role, e.from_state, e.to_state, e.reason)
                  for e in s.scalars(select(AuditEvent).where(AuditEvent.trigger == "start"))}
        assert starts[PILOT] == ("省项目办", "province_office", None, "pilot", "批次“试点”于 2021-06-01 开始")
        assert starts[LATE[0]] == ("省项目办", "province_office", None, "planning", "批次“第二批”于 2021-09-01 开始")
        assert {e.workflow_version for e in s.scalars(select(AuditEvent))} == {load.workflow_version}
        assert load.workflow_version and load.plan_id == plan.id
        runs = {r.id: r for r in s.scalars(select(SchoolRun))}
        for e in s.scalars(select(AuditEvent).where(AuditEvent.trigger == "start")):
            assert e.run_id is not None
            assert (e.plan_id, runs[e.run_id].school_code, e.at.replace(tzinfo=UTC)) == (
                plan.id, e.school_code, now.astimezone(UTC))
        # the runs' stored status is derived at once (run_status): b2's planning due on its batch date
        assert (early.derived_ok, early.due_date) == (True, date(2021, 9, 30))


def test_the_load_events_are_worded_in_english_on_request(seeded: sessionmaker[Session], clock: FixedClock,
                                                          tmp_path: Path, english: None) -> None:
    with transaction(seeded) as s:
        load_plan(s, write_plan(tmp_path, plan_data(), "year.yaml"), clock)
    with transaction(seeded) as s:
        reasons = {e.trigger if e.trigger == "plan_load" else e.school_code: e.reason for e in s.scalars(select(AuditEvent))}
    assert reasons["plan_load"] == "plan loaded from year.yaml"
    assert reasons[PILOT] == "batch '试点' starts 2021-06-01"


def test_a_plan_without_its_optional_keys_takes_the_documented_defaults(seeded: sessionmaker[Session],
                                                                         clock: FixedClock, tmp_path: Path) -> None:
    """docs/plan-files.md: title defaults to the code, timezone to Asia/Shanghai, the region to every
    school (a title left empty counts as none); a batch's id to batch1, batch2…, its title to the id,
    its start stage to the initial one."""
    text = ("plan: bare\ntitle: {zh: '', en: ''}\nworkflow: whole-school-2.0\nyear: 2021\nbatches:\n"
            f"  - {{start: 2021-06-01, schools: [{OTHER}]}}\n"
            "  - {title: {en: Rest}, start: 2021-09-01, schools: {rest: true}}\n")
    with transaction(seeded) as s:
        load_plan(s, write_plan(tmp_path, text), clock)
        summary = plan_summary(s, find_plan(s, None))
        states = {r.school_code: r.state for r in s.scalars(select(SchoolRun))}
    assert (summary["title"], summary["timezone"], summary["final_deadline"], summary["extension_cap"]) == (
        "bare", "Asia/Shanghai", None, None)
    assert [(b["id"], b["title"], b["schools"]) for b in summary["batches"]] == [
        ("batch1", "batch1", 1), ("batch2", "Rest", len(ALL_SCHOOLS) - 1)]
    assert set(states.values()) == {"planning"} and set(states) == set(ALL_SCHOOLS)


def test_the_limits_themselves_are_accepted(seeded: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    """Years 2000 and 2100, a 100-character code, shares 0 and 1, a deadline on the start day and one
    on the final deadline, an extension cap on the final deadline: all inside the documented limits."""
    for i, (year, code) in enumerate(((2000, "y" * 100), (2100, "z"))):
        data = plan_data(plan=code, year=year, extension_cap="2022-11-30", batches=[
            {"id": "a", "start": "2021-06-01", "share": 0, "schools": {"pilot": True},
             "deadlines": {"pilot": "2021-06-01", "planning": "2022-11-30"}},
            {"id": "b", "start": "2021-06-01", "share": 1, "schools": {"rest": True}}])
        with transaction(seeded) as s:
            plan = load_plan(s, write_plan(tmp_path, data, f"p{i}.yaml"), clock)
            assert (plan.code, plan.year) == (code, year)


def test_a_plan_keeps_its_own_timezone(seeded: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    """docs/plan-files.md: ``timezone`` is the zone of the plan's dates: a batch starts at that
    zone's local midnight, and the plan keeps the zone for the deadlines it judges later."""
    with transaction(seeded) as s:
        plan = load_plan(s, write_plan(tmp_path, plan_data(timezone="Asia/Urumqi")), clock)  # UTC+6
        assert (plan.timezone, plan_summary(s, plan)["timezone"]) == ("Asia/Urumqi", "Asia/Urumqi")
        pilot = s.scalar(select(SchoolRun).where(SchoolRun.school_code == PILOT))
        assert pilot is not None
        assert pilot.started_at.replace(tzinfo=UTC) == datetime(2021, 5, 31, 18, tzinfo=UTC)  # 2021-06-01 00:00 +06


def test_a_real_rule_that_matches_no_school_is_allowed(seeded: sessionmaker[Session], clock: FixedClock,
                                                       tmp_path: Path) -> None:
    """docs/plan-files.md: a batch is refused for a rule that selects nothing (``{}``) and allowed
    when a real rule matches none; pilot and county together pick that county's pilot schools."""
    data = plan_data(batches=[
        {"id": "none", "start": "2021-06-01", "schools": {"pilot": True, "county": OTHER[:6]}},
        {"id": "pilot", "start": "2021-06-01", "schools": {"pilot": True, "county": PILOT[:6]}},
        {"id": "rest", "start": "2021-06-01", "schools": {"rest": True}}])
    with transaction(seeded) as s:
        load_plan(s, write_plan(tmp_path, data), clock)
        assert [(b["id"], b["schools"]) for b in plan_summary(s, find_plan(s, None))["batches"]] == [
            ("none", 0), ("pilot", 1), ("rest", len(ALL_SCHOOLS) - 1)]
        assert s.scalar(select(SchoolRun.school_code).join(Batch).where(Batch.code == "pilot")) == PILOT


def test_batches_starting_the_same_day_are_shown_in_file_order(seeded: sessionmaker[Session], clock: FixedClock,
                                                              tmp_path: Path) -> None:
    data = plan_data(batches=[{"id": i, "start": "2021-06-01", "schools": {"codes": [c]}}
                              for i, c in (("z", PILOT), ("a", OTHER), ("m", EARLY[0]))])
    with transaction(seeded) as s:
        load_plan(s, write_plan(tmp_path, data), clock)
        assert [b["id"] for b in plan_summary(s, find_plan(s, None))["batches"]] == ["z", "a", "m"]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_each_missing_required_key_is_named(seeded: sessionmaker[Session], clock: FixedClock, tmp_path: Path,
                                            lang: str) -> None:
    set_language(lang)
    for key in ("plan", "workflow", "year", "batches"):
        data = plan_data()
        del data[key]
        words = f"缺少必填项“{key}”" if lang == "zh" else f"missing required key '{key}'"
        assert _refused(seeded, clock, write_plan(tmp_path, data)) == [(None, words)], key  # that problem alone


def test_a_plan_file_that_is_not_a_mapping_is_refused_in_english_too(seeded: sessionmaker[Session],
                                                                     clock: FixedClock, tmp_path: Path,
                                                                     english: None) -> None:
    path = write_plan(tmp_path, "- a list\n")
    assert _refused(seeded, clock, path) == [(None, "a plan file must be a mapping")]
    with pytest.raises(PlanFileError) as info, transaction(seeded) as s:
        load_plan(s, path, clock)
    assert str(info.value).startswith(f"{path}: 1 problem(s)\n")  # the file, then where in it: its start
    assert [(p.source, p.line, p.column) for p in info.value.problems] == [(str(path), 1, 1)]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_final_deadline_binds_without_a_final_deadline_is_refused(seeded: sessionmaker[Session], clock: FixedClock,
                                                                  tmp_path: Path, lang: str) -> None:
    set_language(lang)
    data = plan_data(final_deadline_binds=["online_study"])
    del data["final_deadline"], data["extension_cap"]
    words = ("有 final_deadline_binds 却没有 final_deadline" if lang == "zh" else
             "final_deadline_binds without a final_deadline")
    assert _refused(seeded, clock, write_plan(tmp_path, data)) == [("final_deadline_binds", words)]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_plan_code_is_loaded_once(seeded: sessionmaker[Session], clock: FixedClock, tmp_path: Path, lang: str) -> None:
    with transaction(seeded) as s:
        load_plan(s, write_plan(tmp_path, plan_data()), clock)
    set_language(lang)
    words = ("计划 yiyuan-2021 已存在；修改已载入的计划请用 rollout plan edit" if lang == "zh" else
             "plan yiyuan-2021 already exists; change a loaded plan with rollout plan edit")
    again = write_plan(tmp_path, plan_data(), "again.yaml")
    assert _refused(seeded, clock, again) == [("plan", words)]
    # docs/plan-files.md: listed as FILE:LINE:COLUMN: [KEY] what is wrong; the code is the file's
    # own identity, so the mark is the file's start
    with pytest.raises(PlanFileError) as info, transaction(seeded) as s:
        load_plan(s, again, clock)
    assert [str(p) for p in info.value.problems] == [f"{again}:1:1: [plan] {words}"]
    assert info.value.source == str(again)


def test_the_plan_file_itself_must_be_readable_utf8_text(seeded: sessionmaker[Session], clock: FixedClock,
                                                         tmp_path: Path) -> None:
    """A UTF-8 BOM (Windows Notepad) is tolerated; another encoding, an oversized file or one that
    cannot be read is refused with why."""
    bom = tmp_path / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbf" + write_plan(tmp_path, plan_data()).read_bytes())
    with transaction(seeded) as s:
        assert load_plan(s, bom, clock).title == "沂源县提升工程2.0整校推进"
    gbk = tmp_path / "gbk.yaml"
    gbk.write_bytes("plan: 计划\n".encode("gb18030"))
    assert _refused(seeded, clock, gbk) == [(None, "文件不是 UTF-8 编码（第 6 字节）")]
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (MAX_YAML_CHARS * 4 + 1))
    assert _refused(seeded, clock, big) == [(None, f"文件太大（上限 {MAX_YAML_CHARS:,} 个字符）")]
    assert _refused(seeded, clock, tmp_path) == [(None, "无法读取文件：Is a directory")]
    # each refusal names the file itself; an oversized file is marked at its start (FILE:1:1, as the
    # yaml check marks text that is too long), a file that cannot be decoded or read has no place in it
    for path, place in ((gbk, (None, None)), (big, (1, 1)), (tmp_path, (None, None))):
        with pytest.raises(PlanFileError) as info, transaction(seeded) as s:
            load_plan(s, path, clock)
        assert [info.value.source, *(p.source for p in info.value.problems)] == [str(path), str(path)]
        assert [(p.line, p.column) for p in info.value.problems] == [place], path
    padded = tmp_path / "padded.yaml"  # a 1 MB plan (a long comment) is well inside the limit
    padded.write_text(write_plan(tmp_path, plan_data(plan="padded")).read_text(encoding="utf-8")
                      + "#" * 1_000_000 + "\n", encoding="utf-8")
    with transaction(seeded) as s:
        assert load_plan(s, padded, clock).code == "padded"
    set_language("en")
    assert _refused(seeded, clock, gbk) == [(None, "the file is not UTF-8 (byte 6)")]
    assert _refused(seeded, clock, big) == [(None, f"the file is too large (at most {MAX_YAML_CHARS:,} characters)")]
    assert _refused(seeded, clock, tmp_path) == [(None, "cannot read the file: Is a directory")]
    set_language("zh")


def test_a_batch_list_file_is_read_like_an_import(seeded: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    """Any of the documented code headers; blank codes skipped, codes trimmed."""
    (tmp_path / "b.csv").write_text(f"学校代码,学校名称\n {PILOT} ,x\n,空\n{OTHER},y\n", encoding="utf-8")
    data = plan_data(batches=[{"id": "a", "start": "2021-06-01", "schools": {"file": "b.csv"}},
                              {"id": "b", "start": "2021-06-01", "schools": {"rest": True}}])
    with transaction(seeded) as s:
        load_plan(s, write_plan(tmp_path, data), clock)
        assert sorted(s.scalars(select(SchoolRun.school_code).join(Batch).where(Batch.code == "a"))) == sorted([PILOT, OTHER])


def test_a_bad_batch_list_file_is_refused_naming_that_file(seeded: sessionmaker[Session], clock: FixedClock,
                                                           tmp_path: Path) -> None:
    """The office fixes the list, not the plan: the problem names the list file, and nothing loads."""
    (tmp_path / "list.csv").write_text(f"学校名称\n{PILOT}\n", encoding="utf-8")
    data = plan_data(batches=[{"id": "a", "start": "2021-06-01", "schools": {"file": "list.csv"}}])
    with pytest.raises(PlanFileError) as info, transaction(seeded) as s:
        load_plan(s, write_plan(tmp_path, data), clock)
    assert [p.source for p in info.value.problems] == [str(tmp_path / "list.csv")]
    assert "学校标识码" in info.value.problems[0].message
    with transaction(seeded) as s:
        assert s.scalar(select(Plan.id)) is None


def test_a_missing_batch_list_file_is_named_in_english_too(seeded: sessionmaker[Session], clock: FixedClock,
                                                           tmp_path: Path, english: None) -> None:
    data = plan_data(batches=[{"id": "a", "start": "2021-06-01", "schools": {"file": "nope.csv"}}])
    assert _refused(seeded, clock, write_plan(tmp_path, data)) == [
        ("batches[0].schools.file", f"school list file not found: {tmp_path / 'nope.csv'}")]


def _two_plans(factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    with transaction(factory) as s:
        load_plan(s, write_plan(tmp_path, plan_data()), clock)
        load_plan(s, write_plan(tmp_path, plan_data(plan="other", batches=[
            {"id": "x", "start": "2021-06-01", "schools": {"rest": True}}]), "p2.yaml"), clock)


def test_a_page_that_remembers_its_reads_finds_each_plan_by_its_own_code(seeded: sessionmaker[Session],
                                                                         clock: FixedClock, tmp_path: Path) -> None:
    _two_plans(seeded, clock, tmp_path)
    with seeded() as s:
        remember_reads(s)
        assert [find_plan(s, c).code for c in ("other", "yiyuan-2021", "other")] == ["other", "yiyuan-2021", "other"]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_find_plan_says_why_it_found_none(seeded: sessionmaker[Session], clock: FixedClock, tmp_path: Path,
                                          lang: str) -> None:
    set_language(lang)
    words: dict[str, Any] = {
        "none": ("尚未载入计划：先运行 rollout plan load", "no plan loaded yet: run 'rollout plan load' first"),
        "missing": ("没有计划 missing", "no plan missing"),
        "two": ("有 2 个计划，请用 --plan 指定", "there are 2 plans: name one with --plan")}
    pick = 0 if lang == "zh" else 1
    with seeded() as s, pytest.raises(NotFound) as info:
        find_plan(s, None)
    assert str(info.value) == words["none"][pick]
    _two_plans(seeded, clock, tmp_path)
    for key, code in (("missing", "missing"), ("two", None)):
        with seeded() as s, pytest.raises(NotFound) as info:
            find_plan(s, code)
        assert str(info.value) == words[key][pick]


def test_a_batch_starts_at_the_plans_local_midnight_in_utc_whatever_the_servers_zone(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Start times are stored in UTC: a server set to another zone must not change them."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        start = local_midnight_utc(date(2021, 6, 1), "Asia/Shanghai")
    finally:
        monkeypatch.undo()
        time.tzset()
    assert start == datetime(2021, 5, 31, 16, tzinfo=UTC)
    assert start.utcoffset() == timedelta(0) and start.tzname() == "UTC"


KEYS_PLAN = """\
plan: keys
workflow: whole-school-2.0
year: 2021
colour: blue
batches:
  - id: b1
    start: 2021-06-01
    colour: red
    schools:
      every: true
      pilot: false
    deadlines:
      nowhere: 2021-09-30
"""


def test_a_misspelt_key_is_pointed_at_itself(seeded: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    """An unknown key, rule or stage is marked where the key is written (line:column), not at its value."""
    path = write_plan(tmp_path, KEYS_PLAN)
    with pytest.raises(PlanFileError) as info, transaction(seeded) as s:
        load_plan(s, path, clock)
    assert info.value.source == str(path)  # the refusal names the file
    marks = {p.field: (p.line, p.column) for p in info.value.problems}
    assert marks["colour"] == (4, 1)
    assert marks["batches[0].colour"] == (8, 5)
    assert marks["batches[0].schools.every"] == (10, 7)
    assert marks["batches[0].schools.pilot"] == (11, 7)
    assert marks["batches[0].deadlines.nowhere"] == (13, 7)
