"""The database's state bound to its audit trail: every table a chain describes must say what it says.

The hash chains (``engine.audit.verify``) prove the *events* were not changed. They say nothing of
the tables read every day: an application role could ``UPDATE school_run SET state='done'`` with
no event, and ``audit verify`` passed while ``school show`` said 完成. Here the tables are treated
as what they are, a projection of the events: each run's chain is replayed the way ``runs.fire``,
``facts.set_fact``, ``extension`` and ``plan.load_plan`` wrote it, and the result must equal

* the run's stage, the stage it was returned or suspended from, and when it entered its stage
  (a run's start is its batch's start, local midnight);
* its deadline extensions (stage → due date, who, when), from the engine-written
  ``新截止日期 YYYY-MM-DD`` / ``new due date YYYY-MM-DD`` part of each ``extend`` event's reason;
* its school facts (name → value, note, who, when), from each ``fact:<name>`` event;
* the plan's stored file, by the SHA-256 its ``plan_load`` event recorded;

and within every chain time never goes backwards (an event appended "before" the chain's first one
is a forgery the hashes cannot see). The first disagreement of each run is named. Teachers'
progress is not on a chain yet (docs/audit.md says so): it is what a progress import brings in.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.audit.chain import AUDIT
from engine.extension import LAPSE, REFUSE, REQUEST
from engine.i18n import tr
from engine.imports.contractors import ASSIGN
from engine.imports.history import history_orphans
from engine.models import Batch, Plan, RunDeadline, SchoolFact, SchoolRun, WorkflowVersion
from engine.plan import local_midnight_utc
from engine.plan_edit import BATCH_MOVE, PLAN_EDIT, WITHDRAW
from engine.run_deadline import DEADLINE_OVERRIDE
from engine.tally import tally_drift
from engine.version_rules import MIGRATE
from engine.workflow.model import Workflow
from engine.workflow.versions import workflow_for_version

_NEW_DUE = re.compile(r"(?:新截止日期|new due date) (\d{4}-\d{2}-\d{2})")
_NOT_TRANSITIONS = {"start", REQUEST, REFUSE, LAPSE, ASSIGN}


@dataclass(frozen=True)
class StateProblem:
    chain: str
    school_code: str | None
    kind: str  # state | version | withdrawn | stage_entry | deadline | fact | time | unchained | orphan | plan | event
    message: str


@dataclass
class StateReport:
    ok: bool = True
    runs: int = 0
    plans: int = 0
    problems: list[StateProblem] = field(default_factory=list)


@dataclass
class _Replay:
    """What one run's chain says its row and its deadline and fact rows must hold."""

    state: str | None = None
    previous: str | None = None
    entered: datetime | None = None
    deadlines: dict[str, tuple[date, datetime, str, int]] = field(default_factory=dict)
    facts: dict[str, tuple[float, str | None, datetime, str, int]] = field(default_factory=dict)
    problem: tuple[str, str, str] | None = None  # (kind, zh, en): the chain contradicts itself
    version: str | None = None  # the workflow version the chain says the run is on (start, migrate)
    wf: Workflow | None = None  # … and that version, parsed: later transitions are judged by it
    withdrawn: datetime | None = None  # when a plan edit withdrew the school (engine.plan_edit)

    def fail(self, kind: str, zh: str, en: str) -> None:
        if self.problem is None:
            self.problem = (kind, zh, en)


def _events(session: Session, batch: int) -> Iterator[Any]:
    cols = [AUDIT.c.chain, AUDIT.c.seq, AUDIT.c.at, AUDIT.c.actor, AUDIT.c.trigger, AUDIT.c.from_state,
            AUDIT.c.to_state, AUDIT.c.reason, AUDIT.c.gates, AUDIT.c.school_code, AUDIT.c.workflow_version]
    stmt = select(*cols).order_by(AUDIT.c.chain, AUDIT.c.seq).execution_options(yield_per=batch)
    yield from session.execute(stmt)


def _time(value: datetime | None) -> str:
    return "—" if value is None else value.isoformat().replace("+00:00", "Z")


def _replay(ev: Any, wf: Workflow | None, replay: _Replay, start: datetime | None,
            lookup: Callable[[str | None], Workflow | None] = lambda key: None) -> None:
    where_zh, where_en = f"第 {ev.seq} 条（{ev.trigger}）", f"event {ev.seq} ({ev.trigger})"
    if ev.trigger == "start":
        replay.state, replay.previous, replay.entered = ev.to_state, None, start
        replay.version, replay.wf = ev.workflow_version, lookup(ev.workflow_version)
        return
    if ev.trigger == MIGRATE:
        _replay_move(ev, replay, lookup, where_zh, where_en)
        return
    if ev.trigger in (WITHDRAW, BATCH_MOVE, DEADLINE_OVERRIDE):
        _replay_edit(ev, replay, where_zh, where_en)
        return
    wf = replay.wf or wf
    if ev.trigger.startswith("fact:"):
        change = (ev.gates or [{}])[0]
        if not isinstance(change, dict) or "new" not in change:
            replay.fail("event", f"{where_zh}没有记录事实的新值", f"{where_en} does not record the fact's new value")
            return
        name = str(change.get("fact", ev.trigger[5:]))
        replay.facts[name] = (float(change["new"]), ev.reason, ev.at, ev.actor, ev.seq)
        return
    if ev.trigger in _NOT_TRANSITIONS:
        return
    t = wf.transition_for(ev.trigger, ev.from_state) if wf is not None and ev.from_state else None
    if t is None:
        replay.fail("event", f"{where_zh}：流程中没有从“{ev.from_state}”出发的这一操作",
                    f"{where_en}: the workflow has no such transition from '{ev.from_state}'")
        return
    if ev.from_state != replay.state:
        replay.fail("event", f"{where_zh}写明从“{ev.from_state}”出发，但此前的记录停在“{replay.state}”",
                    f"{where_en} says it left '{ev.from_state}', but the events before it end in '{replay.state}'")
    if t.kind == "extend":
        found = _NEW_DUE.findall(ev.reason or "")
        if found:
            replay.deadlines[ev.from_state] = (date.fromisoformat(found[-1]), ev.at, ev.actor, ev.seq)
        return
    if ev.to_state != ev.from_state:
        replay.previous = ev.from_state if t.kind in ("return", "suspend") else None
        replay.state = ev.to_state
        if t.kind not in ("suspend", "resume"):
            replay.entered = ev.at


def _replay_move(ev: Any, replay: _Replay, lookup: Callable[[str | None], Workflow | None],
                 where_zh: str, where_en: str) -> None:
    """A version move (engine.version_apply): new version, mapped stage and previous stage, deadlines
    renamed through the mapping; the stage entry time is kept."""
    record = next((g["migration"] for g in ev.gates or [] if isinstance(g, dict) and isinstance(g.get("migration"), dict)), None)
    if record is None or not isinstance(record.get("map"), dict):
        replay.fail("event", f"{where_zh}没有记录版本与阶段对应关系", f"{where_en} does not record the versions and the mapping")
        return
    if ev.from_state != replay.state or (record.get("previous") or [None])[0] != replay.previous:
        replay.fail("event", f"{where_zh}写明从“{ev.from_state}”出发，但此前的记录停在“{replay.state}”",
                    f"{where_en} says it left '{ev.from_state}', but the events before it end in '{replay.state}'")
    mapping = {str(k): str(v) for k, v in record["map"].items()}
    replay.state = ev.to_state
    replay.previous = (record.get("previous") or [None, None])[1]
    replay.deadlines = {mapping.get(stage, stage): due for stage, due in replay.deadlines.items()}
    replay.version, replay.wf = ev.workflow_version, lookup(ev.workflow_version)


def _replay_edit(ev: Any, replay: _Replay, where_zh: str, where_en: str) -> None:
    """Plan edits and per-school deadline overrides: withdrawn, moved batch (stage entry recorded), own deadline."""
    record = next((g for g in ev.gates or [] if isinstance(g, dict)), {})
    if ev.trigger == WITHDRAW:
        replay.withdrawn = ev.at
        return
    if ev.trigger == DEADLINE_OVERRIDE:
        try:
            replay.deadlines[str(record["stage"])] = (date.fromisoformat(str(record["due"])), ev.at, ev.actor, ev.seq)
        except (KeyError, ValueError):
            replay.fail("event", f"{where_zh}没有记录阶段和截止日期", f"{where_en} does not record the stage and due date")
        return
    try:
        entered = datetime.fromisoformat(str(record["entered"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        replay.fail("event", f"{where_zh}没有记录进入阶段的时间", f"{where_en} does not record the stage entry time")
        return
    replay.state, replay.previous, replay.entered = ev.to_state, record.get("previous"), entered


def _compare(run: SchoolRun, replay: _Replay, deadlines: dict[str, RunDeadline],
             facts: dict[str, SchoolFact], version: str | None = None) -> tuple[str, str, str] | None:
    """The first field of the run's rows that differs from the replay, in a clerk's words."""
    if replay.problem is not None:
        return replay.problem
    if run.withdrawn_at != replay.withdrawn:
        return ("withdrawn", f"退出计划的时间为 {_time(run.withdrawn_at)}，审计记录表明应为 {_time(replay.withdrawn)}",
                f"withdrawn at {_time(run.withdrawn_at)}, its events say {_time(replay.withdrawn)}")
    if version is not None and replay.version is not None and version != replay.version:
        return ("version", f"流程版本为 {version}，审计记录表明应为 {replay.version}",
                f"workflow version is {version}, but its events say {replay.version}")
    if run.state != replay.state:
        return ("state", f"阶段为“{run.state}”，审计记录却表明应为“{replay.state}”",
                f"stage is '{run.state}', but its events say '{replay.state}'")
    if run.previous_state != replay.previous:
        return ("state", f"暂停/退回前的阶段为“{run.previous_state}”，审计记录表明应为“{replay.previous}”",
                f"the stage it was suspended or returned from is '{run.previous_state}', its events say '{replay.previous}'")
    if replay.entered is not None and run.stage_entered_at != replay.entered:
        return ("stage_entry", f"进入当前阶段的时间为 {_time(run.stage_entered_at)}，审计记录表明应为 {_time(replay.entered)}",
                f"entered its stage at {_time(run.stage_entered_at)}, its events say {_time(replay.entered)}")
    for stage in sorted(set(deadlines) | set(replay.deadlines)):
        row, want = deadlines.get(stage), replay.deadlines.get(stage)
        if row is None or want is None:
            have = "—" if row is None else str(row.due)
            said_zh = "—" if want is None else f"{want[0]}（第 {want[3]} 条）"
            said_en = "—" if want is None else f"{want[0]} (event {want[3]})"
            return ("deadline", f"阶段“{stage}”的延期截止日期为 {have}，审计记录表明应为 {said_zh}",
                    f"the extended due date of stage '{stage}' is {have}, its events say {said_en}")
        if (row.due, row.created_at, row.created_by) != want[:3]:
            return ("deadline", f"阶段“{stage}”的延期为 {row.due}（{row.created_by}，{_time(row.created_at)}），"
                    f"第 {want[3]} 条审计记录为 {want[0]}（{want[2]}，{_time(want[1])}）",
                    f"the extension of stage '{stage}' is {row.due} ({row.created_by}, {_time(row.created_at)}), "
                    f"event {want[3]} says {want[0]} ({want[2]}, {_time(want[1])})")
    for name in sorted(set(facts) | set(replay.facts)):
        fact, said = facts.get(name), replay.facts.get(name)
        if fact is None or said is None:
            have = "—" if fact is None else f"{fact.value:g}"
            expected = "—" if said is None else f"{said[0]:g}"
            return ("fact", f"事实“{name}”为 {have}，审计记录表明应为 {expected}", f"fact '{name}' is {have}, its events say {expected}")
        if (fact.value, fact.note, fact.recorded_at, fact.recorded_by) != said[:4]:
            return ("fact", f"事实“{name}”为 {fact.value:g}（{fact.recorded_by}，{_time(fact.recorded_at)}），"
                    f"第 {said[4]} 条审计记录为 {said[0]:g}（{said[3]}，{_time(said[2])}）",
                    f"fact '{name}' is {fact.value:g} ({fact.recorded_by}, {_time(fact.recorded_at)}), "
                    f"event {said[4]} says {said[0]:g} ({said[3]}, {_time(said[2])})")
    return None


def verify_state(session: Session, *, batch: int = 5000) -> StateReport:
    """Replay every chain and compare it with the rows it describes; the first disagreement per run."""
    report = StateReport()
    runs = {r.id: r for r in session.scalars(select(SchoolRun))}
    plans = {p.id: p for p in session.scalars(select(Plan))}
    starts = {b.id: local_midnight_utc(b.start, plans[b.plan_id].timezone) for b in session.scalars(select(Batch))
              if b.plan_id in plans}
    deadlines: dict[int, dict[str, RunDeadline]] = defaultdict(dict)
    for d in session.scalars(select(RunDeadline)):
        deadlines[d.run_id][d.stage] = d
    facts: dict[int, dict[str, SchoolFact]] = defaultdict(dict)
    for f in session.scalars(select(SchoolFact)):
        facts[f.run_id][f.name] = f
    workflows: dict[int, Workflow] = {}
    version_ids = {f"{w.workflow_id}@{w.version}": w.id for w in session.scalars(select(WorkflowVersion))}
    by_key: dict[str, Workflow | None] = {}

    def lookup(key: str | None) -> Workflow | None:
        if key is None or key not in version_ids:
            return None
        if key not in by_key:
            by_key[key] = workflow_for_version(session, version_ids[key])
        return by_key[key]

    def problem(chain: str, school: str | None, kind: str, zh: str, en: str) -> None:
        report.problems.append(StateProblem(chain, school, kind, tr(zh, en)))

    seen: set[int] = set()
    plan_files: dict[str, Any] = {}
    chain: str | None = None
    replay, last_at, run, school, broken_time = _Replay(), None, None, None, False

    def finish() -> None:
        if chain is None or run is None:
            return
        found = _compare(run, replay, deadlines.get(run.id, {}), facts.get(run.id, {}),
                         workflows[run.workflow_version_id].key)
        if found is not None:
            kind, zh, en = found
            problem(chain, run.school_code, kind, f"学校 {run.school_code}（{chain}）：{zh}", f"school {run.school_code} ({chain}): {en}")

    for ev in _events(session, batch):
        if ev.chain != chain:
            finish()
            chain, replay, last_at, run, school, broken_time = ev.chain, _Replay(), None, None, ev.school_code, False
            kind, _, ident = ev.chain.partition(":")
            number = int(ident) if ident.isdigit() else None
            if kind == "run":
                report.runs += 1
                run = runs.get(number) if number is not None else None
                if run is None:
                    problem(chain, school, "orphan", f"审计链 {chain} 对应的学校实施记录不存在（已被删除？）",
                            f"chain {chain} belongs to no school run (deleted?)")
                else:
                    seen.add(run.id)
                    if run.workflow_version_id not in workflows:
                        workflows[run.workflow_version_id] = workflow_for_version(session, run.workflow_version_id)
            elif kind == "plan":
                report.plans += 1
        if last_at is not None and ev.at < last_at and not broken_time:
            broken_time = True
            problem(ev.chain, ev.school_code, "time",
                    f"审计链 {ev.chain} 第 {ev.seq} 条的时间 {_time(ev.at)} 早于前一条的 {_time(last_at)}：时间不能倒流",
                    f"chain {ev.chain} event {ev.seq} is dated {_time(ev.at)}, before the event before it ({_time(last_at)})")
        last_at = ev.at if last_at is None else max(last_at, ev.at)
        if run is not None:
            if ev.school_code != run.school_code:
                replay.fail("event", f"第 {ev.seq} 条记录的学校是 {ev.school_code}", f"event {ev.seq} names school {ev.school_code}")
            _replay(ev, workflows[run.workflow_version_id], replay, starts.get(run.batch_id), lookup)
        elif ev.trigger in ("plan_load", PLAN_EDIT) and chain is not None and chain.startswith("plan:"):
            plan_files[chain] = ev  # the last file recorded (load, then each edit) is the one stored
    finish()
    for plan_chain_id, ev in plan_files.items():
        _check_plan(plans.get(int(plan_chain_id[5:])) if plan_chain_id[5:].isdigit() else None, ev, problem)
    for run_id in sorted(set(runs) - seen):
        r = runs[run_id]
        problem(f"run:{run_id}", r.school_code, "unchained", f"学校 {r.school_code} 的实施记录（run:{run_id}）没有任何审计记录",
                f"school {r.school_code}'s run (run:{run_id}) has no audit events at all")
    for plan in plans.values():
        # The dashboard's counts come from the per-county tallies: they must equal a recount.
        for county in tally_drift(session, plan.id):
            problem(f"plan:{plan.id}", None, "tally", f"计划 {plan.code} 中县区 {county} 的汇总计数与逐校重算不符",
                    f"plan {plan.code}: the stored counts of county {county} differ from a recount of its schools")
    teachers, imports = history_orphans(session)
    if teachers or imports:
        problem("import:progress", None, "history", f"学习进度历史中有 {teachers} 名教师、{imports} 次导入在库中不存在",
                f"the progress history names {teachers} teacher(s) and {imports} import(s) that do not exist")
    report.ok = not report.problems
    return report


def _check_plan(plan: Plan | None, ev: Any, problem: Any) -> None:
    recorded = next((g.get("sha256") for g in ev.gates or [] if isinstance(g, dict)), None)
    if plan is None:
        problem(ev.chain, None, "orphan", f"审计链 {ev.chain} 对应的计划不存在", f"chain {ev.chain} belongs to no plan")
    elif recorded is not None and hashlib.sha256(plan.source.encode()).hexdigest() != recorded:
        problem(ev.chain, None, "plan", f"计划 {plan.code} 保存的计划文件与载入时（{ev.chain} 第 {ev.seq} 条）记录的 SHA-256 不符",
                f"plan {plan.code}'s stored file differs from the SHA-256 recorded when it was loaded ({ev.chain} event {ev.seq})")
