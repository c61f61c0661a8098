"""What moving a school run to another workflow version changes, as plain data and plain functions.

``engine.version_move`` reads the database and fills these in; ``engine.version_apply`` writes them.
Kept apart so that the rules of a move (which stage counts as backwards, which stage a run could
be in, when the school is reminded) are testable without a database.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from engine.deadline import StageDue
from engine.errors import MoveRefused
from engine.export import SheetColumn, xlsx_bytes
from engine.gate import GateResult
from engine.i18n import tr
from engine.workflow.model import Stage, Workflow

MIGRATE = "migrate"  # a run's event: moved to another workflow version
MIGRATE_PLAN = "migrate_plan"  # the plan's event: who moved which schools, why
SHOWN = 20  # schools named in one problem line; the rest are counted


@dataclass
class SchoolMove:
    """What moving one school would change, judged under the new version against today's records."""

    run_id: int
    school_code: str
    school_name: str
    county: str
    lock: int  # the run's optimistic-lock version when it was read
    from_version: str
    to_version: str
    from_stage: str
    to_stage: str
    from_previous: str | None
    to_previous: str | None
    started: bool
    backwards: bool
    gates_before: list[GateResult]
    gates_after: list[GateResult]
    due_before: StageDue | None
    due_after: StageDue | None
    reminders_before: list[date]
    reminders_after: list[date]
    ready_before: bool
    ready_after: bool
    overdue_before: bool
    overdue_after: bool
    values: Mapping[str, float | None] = field(repr=False, default_factory=dict)

    @property
    def now_failing(self) -> list[GateResult]:
        """Gates of the new stage that fail although the old stage's gate of that id passed (or did not exist)."""
        before = {g.gate: g.passed for g in self.gates_before}
        return [g for g in self.gates_after if not g.passed and before.get(g.gate, True)]

    @property
    def now_passing(self) -> list[GateResult]:
        """Gates of the new stage that pass although the old stage's gate of that id failed."""
        before = {g.gate: g.passed for g in self.gates_before}
        return [g for g in self.gates_after if g.passed and before.get(g.gate, True) is False]

    @property
    def dropped(self) -> list[GateResult]:
        """Gates that failed before and that the new stage no longer has (as judged before)."""
        after = {g.gate for g in self.gates_after}
        return [g for g in self.gates_before if not g.passed and g.gate not in after]

    @property
    def due_changed(self) -> bool:
        return _due(self.due_before) != _due(self.due_after)

    @property
    def rescheduled(self) -> bool:
        return self.reminders_before != self.reminders_after

    def as_dict(self) -> dict[str, Any]:
        return {
            "school_code": self.school_code, "school_name": self.school_name, "county": self.county,
            "from_version": self.from_version, "to_version": self.to_version,
            "from_stage": self.from_stage, "to_stage": self.to_stage,
            "from_previous": self.from_previous, "to_previous": self.to_previous,
            "started": self.started, "backwards": self.backwards,
            "gates_now_failing": [g.explain() for g in self.now_failing],
            "gates_now_passing": [g.explain() for g in self.now_passing],
            "gates_dropped": [g.title for g in self.dropped],
            "gates_after": [g.as_dict() for g in self.gates_after],
            "due_before": _due(self.due_before), "due_after": _due(self.due_after),
            "due_source_before": self.due_before.source if self.due_before else None,
            "due_source_after": self.due_after.source if self.due_after else None,
            "reminders_before": [d.isoformat() for d in self.reminders_before],
            "reminders_after": [d.isoformat() for d in self.reminders_after],
            "ready_before": self.ready_before, "ready_after": self.ready_after,
            "becomes_ready": self.ready_after and not self.ready_before,
            "overdue_before": self.overdue_before, "overdue_after": self.overdue_after,
            "becomes_overdue": self.overdue_after and not self.overdue_before,
        }


@dataclass
class MovePreview:
    """The whole move as plain data: one ``SchoolMove`` per open run, what was left out and why."""

    plan: str
    to_version: str
    to_version_id: int
    region: str | None
    mapping: dict[str, str]
    moves: list[SchoolMove]
    finished: int = 0  # runs at a terminal stage: not moved
    already: int = 0  # open runs already on the target version

    def summary(self) -> list[dict[str, Any]]:
        """Per county: how many schools move, change stage, become ready/overdue, get new dates."""
        rows: dict[str, dict[str, int]] = {}
        for m in self.moves:
            row = rows.setdefault(m.county, dict.fromkeys(SUMMARY_KEYS, 0))
            row["schools"] += 1
            row["stage_changed"] += m.from_stage != m.to_stage
            row["backwards"] += m.backwards
            row["becomes_ready"] += m.ready_after and not m.ready_before
            row["no_longer_ready"] += m.ready_before and not m.ready_after
            row["becomes_overdue"] += m.overdue_after and not m.overdue_before
            row["no_longer_overdue"] += m.overdue_before and not m.overdue_after
            row["due_changed"] += m.due_changed
            row["reminders_rescheduled"] += m.rescheduled
            row["gates_now_failing"] += bool(m.now_failing)
            row["gates_now_passing"] += bool(m.now_passing or m.dropped)
        return [{"county": k, **rows[k]} for k in sorted(rows)]

    def as_dict(self) -> dict[str, Any]:
        return {"plan": self.plan, "to_version": self.to_version, "region": self.region, "mapping": self.mapping,
                "finished_not_moved": self.finished, "already_on_version": self.already,
                "summary": self.summary(), "schools": [m.as_dict() for m in self.moves]}


SUMMARY_KEYS = ("schools", "stage_changed", "backwards", "becomes_ready", "no_longer_ready", "becomes_overdue",
                "no_longer_overdue", "due_changed", "reminders_rescheduled", "gates_now_failing", "gates_now_passing")


def _due(due: StageDue | None) -> str | None:
    return due.due.isoformat() if due else None


def parse_mapping(pairs: Iterable[str]) -> dict[str, str]:
    """``["online_study=points", …]`` → ``{"online_study": "points"}``; a malformed or repeated entry is refused."""
    out: dict[str, str] = {}
    for pair in pairs:
        old, sep, new = (p.strip() for p in pair.partition("="))
        if not sep or not old or not new:
            raise MoveRefused([tr(f"阶段对应关系应写作 旧阶段=新阶段，不是 {pair!r}",
                                  f"a stage mapping is written old_stage=new_stage, not {pair!r}")])
        if old in out and out[old] != new:
            raise MoveRefused([tr(f"阶段 {old} 对应了两次（{out[old]}、{new}）", f"stage {old} is mapped twice ({out[old]}, {new})")])
        out[old] = new
    return out


def split_key(key: str) -> tuple[str, str]:
    """``whole-school-2.0@2`` → (id, version); the version is required."""
    wf_id, sep, version = key.rpartition("@")
    if not sep or not wf_id or not version:
        raise MoveRefused([tr(f"目标版本应写作 工作流@版本（如 whole-school-2.0@2），不是 {key!r}",
                              f"the target is written ID@VERSION (e.g. whole-school-2.0@2), not {key!r}")])
    return wf_id, version


def forward_rank(wf: Workflow) -> dict[str, int]:
    """How far along the advance edges each stage lies (longest path from a stage nothing advances into)."""
    preds: dict[str, set[str]] = defaultdict(set)
    for t in wf.transitions:
        if t.kind == "advance" and t.dest:
            preds[t.dest].update(s for s in t.sources if s != t.dest)
    rank: dict[str, int] = {}

    def walk(stage: str, seen: frozenset[str]) -> int:
        if stage not in rank:
            rank[stage] = max((walk(p, seen | {stage}) + 1 for p in preds[stage] if p not in seen), default=0)
        return rank[stage]

    for s in wf.stages:
        walk(s.id, frozenset())
    return rank


def reachable(wf: Workflow) -> set[str]:
    """Stages a run can ever be in: from the initial and entry stages along any transition."""
    seen, todo = set(), [wf.initial, *wf.entry_stages]
    while todo:
        stage = todo.pop()
        if stage in seen:
            continue
        seen.add(stage)
        todo += [t.dest for t in wf.transitions_from(stage) if t.dest and wf.has_stage(t.dest)]
    return seen


def is_backwards(old_wf: Workflow, new_wf: Workflow, old: str, new: str,
                  old_rank: dict[str, int], new_rank: dict[str, int]) -> bool:
    """A school in ``old`` sent to ``new`` lands on a stage it had already passed."""
    if old == new or not old_wf.has_stage(old) or old_wf.stage(old).hold:
        return False
    if new_wf.has_stage(old):
        return new_rank.get(new, 0) < new_rank.get(old, 0)
    if old_wf.has_stage(new):
        return old_rank.get(new, 0) < old_rank.get(old, 0)
    passed = [new_rank[s.id] for s in old_wf.stages if s.id in new_rank and old_rank.get(s.id, 0) < old_rank.get(old, 0)]
    return bool(passed) and new_rank.get(new, 0) <= max(passed)


def stage_kind(stage: Stage) -> str:
    return "terminal" if stage.terminal else "hold" if stage.hold else "working"


def reminder_dates(stage: Stage, due: StageDue | None, today: date) -> list[date]:
    """The days from today on when the school will be reminded of this stage's due date."""
    if due is None or stage.remind is None:
        return []
    return sorted({due.due - timedelta(days=b) for b in stage.remind.before_days if due.due - timedelta(days=b) >= today})


def move_workbook(preview: MovePreview) -> bytes:
    """The dry run as a workbook for the office (one row per school; formula-like text neutralised)."""
    yes, no = tr("是", "yes"), ""
    columns = [SheetColumn(tr("学校代码", "School code"), 12, "@"), SheetColumn(tr("学校名称", "School"), 24),
               SheetColumn(tr("县区", "County"), 8, "@"), SheetColumn(tr("原版本", "From version"), 20),
               SheetColumn(tr("新版本", "To version"), 20), SheetColumn(tr("原阶段", "From stage"), 14),
               SheetColumn(tr("新阶段", "To stage"), 14), SheetColumn(tr("倒退", "Backwards"), 6),
               SheetColumn(tr("改为未通过的关卡", "Gates now failing"), 40),
               SheetColumn(tr("改为通过的关卡", "Gates now passing"), 40),
               SheetColumn(tr("原截止日期", "Due before"), 12), SheetColumn(tr("新截止日期", "Due after"), 12),
               SheetColumn(tr("原提醒日期", "Reminders before"), 24), SheetColumn(tr("新提醒日期", "Reminders after"), 24),
               SheetColumn(tr("变为可推进", "Becomes ready"), 8), SheetColumn(tr("变为逾期", "Becomes overdue"), 8)]
    rows = ([m.school_code, m.school_name, m.county, m.from_version, m.to_version, m.from_stage, m.to_stage,
             yes if m.backwards else no, "；".join(g.explain() for g in m.now_failing),
             "；".join([*(g.explain() for g in m.now_passing), *(tr(f"不再要求：{g.title}", f"no longer required: {g.title}")
                                                               for g in m.dropped)]), _due(m.due_before) or "", _due(m.due_after) or "",
             " ".join(d.isoformat() for d in m.reminders_before), " ".join(d.isoformat() for d in m.reminders_after),
             yes if m.ready_after and not m.ready_before else no,
             yes if m.overdue_after and not m.overdue_before else no] for m in preview.moves)
    totals = {k: sum(row[k] for row in preview.summary()) for k in SUMMARY_KEYS}
    title = [tr(f"计划 {preview.plan} 更换流程版本为 {preview.to_version}（预览）",
                f"Plan {preview.plan} moving to {preview.to_version} (dry run)"),
             tr(f"学校 {totals['schools']} 所；阶段改变 {totals['stage_changed']}；变为可推进 {totals['becomes_ready']}；"
                f"变为逾期 {totals['becomes_overdue']}；截止日期改变 {totals['due_changed']}；提醒改期 {totals['reminders_rescheduled']}",
                f"{totals['schools']} schools; stage changed {totals['stage_changed']}; becomes ready {totals['becomes_ready']}; "
                f"becomes overdue {totals['becomes_overdue']}; due date changed {totals['due_changed']}; "
                f"reminders rescheduled {totals['reminders_rescheduled']}")]
    return xlsx_bytes(tr("更换版本预览", "Version move"), columns, rows, title)
