"""The office's plan: which workflow version, which schools in which batch, when each starts,
stage deadlines per batch, the hard final deadline and the extension cap.

A plan file is validated whole (every problem with file:line:column) before anything is written;
loading creates one school run per assigned school, each audited as a ``start`` event, and the
plan itself as a ``plan_load`` event on the plan's chain.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from engine.audit.chain import EventDraft, append_event, append_events, plan_chain, run_chain
from engine.clock import Clock
from engine.db import refresh_statistics
from engine.errors import ImportFileError, NotFound, PlanFileError, Problem
from engine.i18n import tr
from engine.imports.tabular import open_table
from engine.models import Batch, Plan, School, SchoolRun
from engine.reads import remembered
from engine.run_status import refresh
from engine.text import clean_line
from engine.workflow.model import Workflow
from engine.workflow.versions import find_workflow, workflow_for_version
from engine.yaml_source import MAX_YAML_CHARS, SourceDoc, read_yaml

PLAN_KEYS = {"plan", "title", "workflow", "workflow_version", "year", "timezone", "region",
             "final_deadline", "final_deadline_binds", "extension_cap", "batches"}
BATCH_KEYS = {"id", "title", "start", "start_stage", "share", "schools", "deadlines"}
SELECTOR_KEYS = {"codes", "file", "pilot", "rest", "county"}
# Headers accepted for the school code in a batch list file (CSV/XLSX, as offices keep them).
LIST_FIELDS = {"code": ("学校标识码", "学校代码", "学校编码", "school_code", "code")}


@dataclass
class BatchSpec:
    code: str
    title: str
    start: date
    start_stage: str
    share: float | None
    deadlines: dict[str, str]
    schools: list[str] = field(default_factory=list)


@dataclass
class PlanSpec:
    code: str
    title: str
    workflow_id: str
    workflow_version: str | None
    year: int
    timezone: str
    region: str | None
    final_deadline: date | None
    extension_cap: date | None
    batches: list[BatchSpec]
    final_stages: list[str] | None = None  # stages the final deadline cuts (None: every stage)


def local_midnight_utc(day: date, tz: str) -> datetime:
    """A plan's dates are local dates; a batch starts at local midnight."""
    return datetime.combine(day, time(0, 0), tzinfo=ZoneInfo(tz)).astimezone(ZoneInfo("UTC"))


def _date(doc: SourceDoc, path: tuple[str | int, ...], value: Any, problems: list[Problem]) -> date | None:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    problems.append(doc.problem(path, tr(f"不是日期（YYYY-MM-DD）：{value!r}", f"not a date (YYYY-MM-DD): {value!r}")))
    return None


def _title(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("zh") or value.get("en") or "")
    return str(value or "")


def parse_plan(session: Session, text: str, source: str) -> tuple[PlanSpec, Workflow, int]:
    """Validate a plan file against the database (workflow, schools); raise with every problem."""
    doc = read_yaml(text, source)
    problems = list(doc.problems)
    data = doc.data
    if problems or not isinstance(data, dict):
        if not problems:
            problems.append(Problem(source, tr("计划文件应为映射", "a plan file must be a mapping"), 1, 1))
        raise PlanFileError(source, problems)
    for key in data:
        if key not in PLAN_KEYS:
            problems.append(doc.problem((key,), tr(f"未知的键“{key}”", f"unknown key '{key}'"), key=True))
    for key in ("plan", "workflow", "year", "batches"):
        if key not in data:
            problems.append(doc.problem((), tr(f"缺少必填项“{key}”", f"missing required key '{key}'")))
    if "year" in data and (isinstance(data["year"], bool) or not isinstance(data["year"], int) or not 2000 <= data["year"] <= 2100):
        problems.append(doc.problem(("year",), tr(f"年份应为 2000–2100 的整数，不是 {data['year']!r}", f"year must be a whole number 2000–2100, not {data['year']!r}")))
    if "plan" in data and (not isinstance(data["plan"], str | int) or not 0 < len(str(data["plan"])) <= 100):
        problems.append(doc.problem(("plan",), tr("计划编号应为 1–100 个字符的文字", "the plan code must be text of 1–100 characters")))
    if "batches" in data and not isinstance(data["batches"], list):
        problems.append(doc.problem(("batches",), tr("batches 应为批次列表", "batches must be a list of batches")))
    tz = str(data.get("timezone", "Asia/Shanghai"))
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(doc.problem(("timezone",), tr(f"未知时区：{tz}", f"unknown timezone: {tz}")))
        tz = "Asia/Shanghai"

    wf: Workflow | None = None
    version_id = 0
    wf_id = str(data.get("workflow", ""))
    wf_version = data.get("workflow_version")
    if wf_id:
        try:
            row = find_workflow(session, wf_id, None if wf_version is None else str(wf_version))
            wf, version_id = workflow_for_version(session, row.id), row.id
        except NotFound as exc:
            problems.append(doc.problem(("workflow",), str(exc)))

    final = _date(doc, ("final_deadline",), data["final_deadline"], problems) if "final_deadline" in data else None
    cap = _date(doc, ("extension_cap",), data["extension_cap"], problems) if "extension_cap" in data else None
    if final and cap and cap < final:
        problems.append(doc.problem(("extension_cap",), tr("延期上限早于最终截止日期", "extension cap is before the final deadline")))
    final_stages = _final_stages(doc, data, wf, problems)

    region = data.get("region")
    query = select(School.code, School.county_code, School.pilot)
    if region is not None:
        region = str(region)
        query = query.where((School.county_code == region) | (School.city_code == region) | (School.province_code == region))
    schools = {code: (county, pilot) for code, county, pilot in session.execute(query)}

    batches: list[BatchSpec] = []
    taken: dict[str, str] = {}
    raw_batches: list[Any] = data["batches"] if isinstance(data.get("batches"), list) else []
    seen_ids: set[str] = set()
    for i, raw in enumerate(raw_batches):
        base: tuple[str | int, ...] = ("batches", i)
        if not isinstance(raw, dict):
            problems.append(doc.problem(base, tr("批次应为映射", "a batch must be a mapping")))
            continue
        for key in raw:
            if key not in BATCH_KEYS:
                problems.append(doc.problem((*base, key), tr(f"未知的键“{key}”", f"unknown key '{key}'"), key=True))
        code = str(raw.get("id", f"batch{i + 1}"))
        if code in seen_ids:
            problems.append(doc.problem((*base, "id"), tr(f"批次编号重复：{code}", f"duplicate batch id: {code}")))
        seen_ids.add(code)
        start = _date(doc, (*base, "start"), raw.get("start"), problems)
        start_stage = str(raw.get("start_stage") or (wf.initial if wf else ""))
        if wf and start_stage not in (wf.initial, *wf.entry_stages):
            problems.append(doc.problem((*base, "start_stage"), tr(
                f"“{start_stage}”不是该流程允许的起始阶段（{', '.join((wf.initial, *wf.entry_stages))}）",
                f"'{start_stage}' is not an entry stage of the workflow ({', '.join((wf.initial, *wf.entry_stages))})")))
        deadlines: dict[str, str] = {}
        raw_deadlines = raw.get("deadlines") or {}
        if not isinstance(raw_deadlines, dict):
            problems.append(doc.problem((*base, "deadlines"), tr("deadlines 应为“阶段: 日期”的映射", "deadlines must map stages to dates")))
            raw_deadlines = {}
        share = raw.get("share")
        if share is not None and (isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1):
            problems.append(doc.problem((*base, "share"), tr(f"占比应为 0 到 1 之间的数（如 0.4），不是 {share!r}", f"share must be a number from 0 to 1 (e.g. 0.4), not {share!r}")))
            share = None
        for stage, value in raw_deadlines.items():
            p = (*base, "deadlines", stage)
            if wf and not wf.has_stage(stage):
                problems.append(doc.problem(p, tr(f"未知阶段：{stage}", f"unknown stage: {stage}"), key=True))
            due = _date(doc, p, value, problems)
            if due and start and due < start:
                problems.append(doc.problem(p, tr(f"截止日期 {due} 早于批次开始 {start}", f"deadline {due} is before the batch starts ({start})")))
            if due and final and due > final and (final_stages is None or stage in final_stages):
                problems.append(doc.problem(p, tr(f"截止日期 {due} 晚于最终截止日期 {final}", f"deadline {due} is after the final deadline {final}")))
            if due:
                deadlines[stage] = due.isoformat()
        spec = BatchSpec(code, _title(raw.get("title")) or code, start or date.min, start_stage, share, deadlines)
        selector = raw.get("schools")
        chosen = _select(doc, (*base, "schools"), selector, schools, taken, problems)
        for c in chosen:
            taken[c] = code
        spec.schools = chosen
        batches.append(spec)
    shares = [b.share for b in batches if b.share is not None]
    if shares and abs(sum(float(s) for s in shares) - 1.0) > 1e-6:
        problems.append(doc.problem(("batches",), tr(f"各批次占比之和应为 100%，实为 {sum(shares):.0%}", f"batch shares must sum to 100 %, they sum to {sum(shares):.0%}")))
    if problems:
        raise PlanFileError(source, problems)
    assert wf is not None
    title = clean_line(_title(data.get("title")), tr("计划名称", "plan title"), 300)
    spec_out = PlanSpec(str(data["plan"]), title or str(data["plan"]), wf_id,
                        None if wf_version is None else str(wf_version), int(data["year"]), tz, region,
                        final, cap, batches, final_stages)
    return spec_out, wf, version_id


def _final_stages(doc: SourceDoc, data: dict[str, Any], wf: Workflow | None, problems: list[Problem]) -> list[str] | None:
    """``final_deadline_binds``: the stages the final deadline cuts (002: training by 06-30, while
    "培训结束后30天内" and the evaluation after it are not cut). Absent: every stage."""
    if "final_deadline_binds" not in data:
        return None
    raw = data["final_deadline_binds"]
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        problems.append(doc.problem(("final_deadline_binds",), tr("final_deadline_binds 应为阶段标识列表", "final_deadline_binds must be a list of stage ids")))
        return None
    if "final_deadline" not in data:
        problems.append(doc.problem(("final_deadline_binds",), tr("有 final_deadline_binds 却没有 final_deadline", "final_deadline_binds without a final_deadline")))
    for i, stage in enumerate(raw):
        if wf and not wf.has_stage(stage):
            problems.append(doc.problem(("final_deadline_binds", i), tr(f"未知阶段：{stage}", f"unknown stage: {stage}")))
    return list(dict.fromkeys(raw))


def _select(doc: SourceDoc, path: tuple[str | int, ...], selector: Any, schools: dict[str, tuple[str, bool]],
            taken: dict[str, str], problems: list[Problem]) -> list[str]:
    """Schools by list (``codes``), by rule (``pilot: true``, ``county: CODE``) or ``rest: true``."""
    if selector is None:
        problems.append(doc.problem(path, tr("批次未指定学校", "the batch names no schools")))
        return []
    if isinstance(selector, list):
        selector = {"codes": selector}
    if not isinstance(selector, dict):
        problems.append(doc.problem(path, tr("schools 应为学校代码列表或规则", "schools must be a list of codes or a rule")))
        return []
    for key in selector:
        if key not in SELECTOR_KEYS:
            problems.append(doc.problem((*path, key), tr(f"未知的规则“{key}”", f"unknown rule '{key}'"), key=True))
    for flag in ("pilot", "rest"):  # `pilot: false` selected every school (engine/plan.schema.json: only true)
        if flag in selector and selector[flag] is not True:
            problems.append(doc.problem((*path, flag), tr(f"{flag} 只能写 true", f"{flag} takes only true"), key=True))
            return []
    free = [c for c in sorted(schools) if c not in taken]
    if "file" in selector:
        selector = {"codes": _codes_from_file(doc, (*path, "file"), str(selector["file"]), problems)}
    if "codes" in selector:
        out = []
        if not isinstance(selector["codes"] or [], list):
            problems.append(doc.problem((*path, "codes"), tr("codes 应为学校代码列表", "codes must be a list of school codes")))
            return []
        for j, code in enumerate(selector["codes"] or []):
            code = str(code)
            if code not in schools:
                problems.append(doc.problem((*path, "codes", j), tr(f"未知学校：{code}", f"unknown school: {code}")))
            elif code in taken:
                problems.append(doc.problem((*path, "codes", j), tr(f"学校 {code} 已在批次 {taken[code]} 中", f"school {code} is already in batch {taken[code]}")))
            else:
                out.append(code)
        return out
    chosen = free
    if selector.get("pilot") is True:
        chosen = [c for c in chosen if schools[c][1]]
    if "county" in selector:
        chosen = [c for c in chosen if schools[c][0] == str(selector["county"])]
    if not selector.get("rest") and not {"pilot", "county"} & set(selector):
        problems.append(doc.problem(path, tr("规则未选出学校", "the rule selects nothing")))
    return chosen


def _codes_from_file(doc: SourceDoc, path: tuple[str | int, ...], name: str, problems: list[Problem]) -> list[str]:
    """A batch's schools from a CSV/XLSX list (relative to the plan file), column 学校标识码."""
    file = Path(doc.source).parent / name
    if not file.is_file():
        problems.append(doc.problem(path, tr(f"找不到学校名单文件：{file}", f"school list file not found: {file}")))
        return []
    try:
        with open_table(file, LIST_FIELDS, ["code"], str(file)) as table:
            return [row["code"].strip() for _, row in table if row.get("code", "").strip()]
    except ImportFileError as exc:
        problems.extend(exc.problems)
        return []


def load_plan(session: Session, path: str | Path, clock: Clock, *, actor: str = "office", role: str = "province_office") -> Plan:
    """Load a plan file: create the plan, batches and one run per school, all audited, all or nothing."""
    path = Path(path)
    text = _read_plan(path)
    spec, wf, version_id = parse_plan(session, text, str(path))
    if session.scalar(select(Plan.id).where(Plan.code == spec.code)) is not None:
        raise PlanFileError(str(path), [Problem(str(path), tr(f"计划 {spec.code} 已存在；修改已载入的计划请用 rollout plan edit", f"plan {spec.code} already exists; change a loaded plan with rollout plan edit"), 1, 1, "plan")])
    now = clock.now()
    plan = Plan(code=spec.code, title=spec.title, workflow_version_id=version_id, year=spec.year,
                timezone=spec.timezone, final_deadline=spec.final_deadline, extension_cap=spec.extension_cap,
                final_deadline_stages=spec.final_stages,
                region_code=spec.region, source=text, loaded_at=now)
    session.add(plan)
    session.flush()
    append_event(session, chain=plan_chain(plan.id), at=now, actor=actor, role=role, trigger="plan_load",
                 plan_id=plan.id, reason=tr(f"载入计划 {path.name}", f"plan loaded from {path.name}"),
                 gates=[{"sha256": hashlib.sha256(text.encode()).hexdigest(), "schools": sum(len(b.schools) for b in spec.batches)}],
                 workflow_version=wf.key)
    drafts: list[EventDraft] = []
    for b in spec.batches:
        batch = Batch(plan_id=plan.id, code=b.code, title=b.title, start=b.start, share=b.share, deadlines=b.deadlines)
        session.add(batch)
        session.flush()
        started = local_midnight_utc(b.start, spec.timezone)
        rows = [{"plan_id": plan.id, "school_code": c, "batch_id": batch.id, "workflow_version_id": version_id,
                 "state": b.start_stage, "previous_state": None, "stage_entered_at": started,
                 "started_at": started, "updated_at": now, "version": 1} for c in b.schools]
        if rows:
            session.execute(insert(SchoolRun), rows)
        ids = session.execute(select(SchoolRun.id, SchoolRun.school_code).where(SchoolRun.batch_id == batch.id)).all()
        drafts += [EventDraft(chain=run_chain(rid), at=now, actor=actor, role=role, trigger="start", plan_id=plan.id,
                              run_id=rid, school_code=code, to_state=b.start_stage,
                              reason=tr(f"批次“{b.title}”于 {b.start} 开始", f"batch '{b.title}' starts {b.start}"),
                              workflow_version=wf.key) for rid, code in ids]
    append_events(session, drafts)
    refresh(session, SchoolRun.plan_id == plan.id)
    refresh_statistics(session.connection())
    return plan


def _read_plan(path: Path) -> str:
    """The plan file's text (UTF-8, a BOM tolerated), or a PlanFileError saying why it cannot be read."""
    try:
        if path.stat().st_size > MAX_YAML_CHARS * 4:  # refused unread: check_yaml would refuse it anyway
            raise PlanFileError(str(path), [Problem(str(path), tr(f"文件太大（上限 {MAX_YAML_CHARS:,} 个字符）", f"the file is too large (at most {MAX_YAML_CHARS:,} characters)"), 1, 1)])
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PlanFileError(str(path), [Problem(str(path), tr(f"文件不是 UTF-8 编码（第 {exc.start} 字节）", f"the file is not UTF-8 (byte {exc.start})"))]) from exc
    except OSError as exc:
        raise PlanFileError(str(path), [Problem(str(path), tr(f"无法读取文件：{exc.strerror}", f"cannot read the file: {exc.strerror}"))]) from exc


def find_plan(session: Session, code: str | None) -> Plan:
    """The named plan, or the only plan there is."""
    if code:
        plan = remembered(session, ("plan", code), lambda: session.scalar(select(Plan).where(Plan.code == code)))
        if plan is None:
            raise NotFound(tr(f"没有计划 {code}", f"no plan {code}"))
        return plan
    plans = remembered(session, ("plans",), lambda: session.scalars(select(Plan).order_by(Plan.id)).all())
    if not plans:
        raise NotFound(tr("尚未载入计划：先运行 rollout plan load", "no plan loaded yet: run 'rollout plan load' first"))
    if len(plans) > 1:
        raise NotFound(tr(f"有 {len(plans)} 个计划，请用 --plan 指定", f"there are {len(plans)} plans: name one with --plan"))
    return plans[0]


def plan_summary(session: Session, plan: Plan) -> dict[str, Any]:
    batches = session.execute(
        select(Batch.code, Batch.title, Batch.start, Batch.share, func.count(SchoolRun.id))
        .join(SchoolRun, SchoolRun.batch_id == Batch.id, isouter=True)
        .where(Batch.plan_id == plan.id).group_by(Batch.id).order_by(Batch.start, Batch.id)
    ).all()
    return {"plan": plan.code, "title": plan.title, "year": plan.year, "timezone": plan.timezone,
            "final_deadline": plan.final_deadline, "final_deadline_binds": plan.final_deadline_stages,
            "extension_cap": plan.extension_cap,
            "batches": [{"id": b[0], "title": b[1], "start": b[2], "share": b[3], "schools": b[4]} for b in batches]}
