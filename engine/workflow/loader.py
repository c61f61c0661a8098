"""Turn a workflow YAML file into :class:`engine.workflow.model.Workflow`, or say exactly what is wrong.

Structure is checked against ``engine/workflow.schema.json`` (the single source of truth for
which keys exist), meaning against ``engine.workflow.checks``; every problem comes back with
file:line:column so the clerk who edits the file can find it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from engine.errors import Problem, WorkflowFileError
from engine.i18n import tr
from engine.workflow.checks import REASON_FORCED, check, default_fact_roles, due_rule, sources_of
from engine.workflow.model import (
    PREVIOUS,
    Condition,
    EscalationStep,
    Gate,
    Metric,
    Rate,
    ReminderRule,
    SchoolCondition,
    Stage,
    Text,
    Transition,
    Workflow,
)
from engine.yaml_source import MAX_YAML_CHARS, SourceDoc, read_yaml

SCHEMA_PATH = Path(__file__).with_name("schema.json")

# The keys each builder below reads; a test checks they equal the schema's properties.
TOP_KEYS = ("workflow", "version", "title", "description", "initial", "entry_stages", "roles", "metrics", "rates", "stages",
            "transitions")
TEXT_KEYS = ("zh", "en")
METRIC_KEYS = ("title", "kind", "where", "fact", "unit", "range", "roles", "before_stage")
DEFAULT_RANGE = {"share": (0.0, 1.0)}  # else FACT_RANGE
FACT_RANGE = (0.0, 1_000_000.0)
CONDITION_KEYS = ("field", "op", "value")
RATE_KEYS = ("title", "description", "over", "numerator", "denominator")
FACT_CONDITION_KEYS = ("fact", "op", "value")
STAGE_CONDITION_KEYS = ("stage",)
STAGE_KEYS = ("id", "title", "gates", "due", "remind", "terminal", "hold")
GATE_KEYS = ("id", "title", "metric", "op", "value", "source")
DUE_KEYS = ("after_stage_entry", "after_batch_start", "date")
REMIND_KEYS = ("before_days", "repeat_days", "escalate", "warn_at_risk")
ESCALATION_KEYS = ("after_days", "to")
TRANSITION_KEYS = ("trigger", "kind", "title", "from", "to", "roles", "auto", "reason", "covers")

DEFAULT_TITLES = {
    "advance": Text("推进", "Advance"),
    "return": Text("退回整改", "Return for rework"),
    "suspend": Text("暂停", "Suspend"),
    "resume": Text("恢复", "Resume"),
    "extend": Text("延期", "Extend deadline"),
    "override": Text("特批推进", "Override"),
}

_TYPE_NAMES = {
    "string": ("文本", "text"),
    "object": ("映射（键: 值）", "a mapping (key: value)"),
    "array": ("列表", "a list"),
    "integer": ("整数", "a whole number"),
    "number": ("数字", "a number"),
    "boolean": ("true 或 false", "true or false"),
}


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The workflow-file JSON Schema (parsed once)."""
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return loaded


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    return Draft202012Validator(schema())


def content_hash(data: Any) -> str:
    """SHA-256 of the parsed document as canonical JSON: comments and layout do not count."""
    canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# -- schema errors in plain words, at the right place ----------------------------------------------
def _type_text(expected: Any) -> tuple[str, str]:
    names = [expected] if isinstance(expected, str) else list(expected)
    zh = " 或 ".join(_TYPE_NAMES.get(n, (n, n))[0] for n in names)
    en = " or ".join(_TYPE_NAMES.get(n, (n, n))[1] for n in names)
    return zh, en


def _schema_problem(doc: SourceDoc, error: ValidationError) -> list[Problem]:
    path = tuple(error.absolute_path)
    kind = error.validator
    custom = error.schema.get("x-message") if isinstance(error.schema, dict) else None
    if "propertyNames" in error.relative_schema_path or "propertyNames" in error.schema_path:
        name = str(error.instance)
        msg = tr(custom["zh"], custom["en"]) if custom else error.message
        return [doc.problem((*path, name), f"{name}: {msg}", key=True)]
    if kind == "additionalProperties" and isinstance(error.instance, dict):
        allowed = list(error.schema.get("properties", {}))
        extra = [k for k in error.instance if k not in allowed]
        return [
            doc.problem(
                (*path, k),
                tr(f"未知的键 {k}；此处允许的键：{'、'.join(allowed)}", f"unknown key {k}; allowed here: {', '.join(allowed)}"),
                key=True,
            )
            for k in extra
        ]
    if kind == "required" and isinstance(error.instance, dict):
        missing = [k for k in error.validator_value if k not in error.instance]
        return [doc.problem(path, tr(f"缺少必需的键 {k}", f"missing required key {k}"), key=True) for k in missing]
    if custom:
        return [doc.problem(path, tr(custom["zh"], custom["en"]))]
    value = json.dumps(error.instance, ensure_ascii=False) if not isinstance(error.instance, dict | list) else ""
    if kind == "type":
        zh, en = _type_text(error.validator_value)
        return [doc.problem(path, tr(f"应为{zh}，实际是 {value or type(error.instance).__name__}", f"must be {en}, not {value or type(error.instance).__name__}"))]
    if kind == "enum":
        choices = ", ".join(str(c) for c in error.validator_value)
        return [doc.problem(path, tr(f"{value} 不是允许的值；可选：{choices}", f"{value} is not allowed; choose one of: {choices}"))]
    if kind in ("minItems", "minProperties", "minLength"):
        return [doc.problem(path, tr("不能为空", "must not be empty"))]
    if kind == "uniqueItems":
        return [doc.problem(path, tr("列表中有重复项", "the list repeats an item"))]
    if kind == "minimum":
        return [doc.problem(path, tr(f"不能小于 {error.validator_value}（实际 {value}）", f"must be at least {error.validator_value} (not {value})"))]
    if kind == "maxLength":
        return [doc.problem(path, tr(f"太长（最多 {error.validator_value} 个字符）", f"too long (at most {error.validator_value} characters)"))]
    return [doc.problem(path, tr(f"不符合格式要求：{error.message}", f"does not match the format: {error.message}"))]


def _schema_problems(doc: SourceDoc) -> list[Problem]:
    problems: list[Problem] = []
    for error in _validator().iter_errors(doc.data):
        problems.extend(_schema_problem(doc, error))
    return problems


def _sorted(problems: Iterable[Problem]) -> list[Problem]:
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p.line or 0, p.column or 0))


def problems_of(doc: SourceDoc) -> list[Problem]:
    """Every problem of a parsed document: YAML, schema and semantic, in file order."""
    if doc.data is None:
        if doc.problems:
            return list(doc.problems)
        return [doc.problem((), tr("文件为空", "the file is empty"))]
    if not isinstance(doc.data, dict):
        return [*doc.problems, doc.problem((), tr("文件顶层必须是映射（workflow: …）", "the file's top level must be a mapping (workflow: …)"))]
    return _sorted([*doc.problems, *_schema_problems(doc), *check(doc)])


# -- building the dataclasses (only ever from a document without problems) ---------------------------
def _text(value: dict[str, str]) -> Text:
    return Text(zh=value["zh"], en=value["en"])


def _metric(mid: str, m: dict[str, Any], default_roles: tuple[str, ...]) -> Metric:
    where = tuple(
        Condition(c["field"], c["op"], tuple(c["value"]) if isinstance(c["value"], list) else float(c["value"]))
        for c in m.get("where", [])
    )
    # A fact recorded as 0/1 with no unit is a yes/no question: shown 是/否 (engine.gate.format_value).
    yes_no = m["kind"] == "fact" and list(m.get("range") or ()) == [0, 1]
    unit = m.get("unit", "share" if m["kind"] == "share_of_teachers" else "bool" if yes_no else "")
    roles = tuple(m.get("roles", default_roles)) if m["kind"] == "fact" else ()
    low, high = m.get("range") or DEFAULT_RANGE.get(unit, FACT_RANGE)
    return Metric(id=mid, title=_text(m["title"]), kind=m["kind"], where=where, fact=m.get("fact"), unit=unit,
                  roles=roles, low=float(low), high=float(high), before_stage=m.get("before_stage", "refuse"))


def _condition(c: dict[str, Any]) -> Condition | SchoolCondition:
    if "field" in c:
        return Condition(c["field"], c["op"], tuple(c["value"]) if isinstance(c["value"], list) else float(c["value"]))
    if "fact" in c:
        return SchoolCondition(fact=c["fact"], op=c["op"], value=float(c["value"]))
    return SchoolCondition(stages=tuple(c["stage"]))


def _rate(rid: str, r: dict[str, Any]) -> Rate:
    return Rate(id=rid, title=_text(r["title"]), over=r["over"],
                numerator=tuple(_condition(c) for c in r["numerator"]),
                denominator=tuple(_condition(c) for c in r.get("denominator", [])),
                description=_text(r["description"]) if "description" in r else None)


def _stage(s: dict[str, Any]) -> Stage:
    gates = tuple(
        Gate(g["id"], _text(g["title"]), g["metric"], g["op"], float(g["value"]), g.get("source"))
        for g in s.get("gates", [])
    )
    remind = None
    if "remind" in s:
        r = s["remind"]
        remind = ReminderRule(
            before_days=tuple(r.get("before_days", ())),
            escalate=tuple(EscalationStep(e["after_days"], e["to"]) for e in r.get("escalate", ())),
            repeat_days=r.get("repeat_days"),
            warn_at_risk=float(r["warn_at_risk"]) if "warn_at_risk" in r else None,
        )
    return Stage(
        id=s["id"],
        title=_text(s["title"]),
        gates=gates,
        due=due_rule(s["due"]) if "due" in s else None,
        remind=remind,
        terminal=bool(s.get("terminal", False)),
        hold=bool(s.get("hold", False)),
    )


def _transition(t: dict[str, Any], stages: list[dict[str, Any]]) -> Transition:
    kind = t["kind"]
    return Transition(
        trigger=t["trigger"],
        kind=kind,
        sources=tuple(s for s, _ in sources_of(t, stages)),
        dest=None if kind == "extend" else (PREVIOUS if kind == "resume" else t["to"]),
        roles=tuple(t["roles"]),
        title=_text(t["title"]) if "title" in t else DEFAULT_TITLES[kind],
        auto=bool(t.get("auto", False)),
        reason_required=kind in REASON_FORCED or t.get("reason") == "required",
        covers=t.get("covers", "stage"),
    )


def _workflow(data: dict[str, Any], source: str) -> Workflow:
    fact_roles = tuple(default_fact_roles(data["transitions"]))
    return Workflow(
        id=data["workflow"],
        version=data["version"],
        title=_text(data["title"]),
        initial=data["initial"],
        roles={k: _text(v) for k, v in data["roles"].items()},
        metrics={k: _metric(k, v, fact_roles) for k, v in data.get("metrics", {}).items()},
        stages=tuple(_stage(s) for s in data["stages"]),
        transitions=tuple(_transition(t, data["stages"]) for t in data["transitions"]),
        source_name=source,
        content_hash=content_hash(data),
        description=data.get("description", ""),
        entry_stages=tuple(data.get("entry_stages", ())),
        rates={k: _rate(k, v) for k, v in data.get("rates", {}).items()},
    )


# -- public API -------------------------------------------------------------------------------------------
def load_workflow_text(text: str, source: str) -> Workflow:
    """Parse and validate ``text``; raise WorkflowFileError listing every problem.

    A text read before gives the same (frozen) workflow again: registering a workflow, loading a
    plan and the first request of each process read the shipped files again and again, and the
    schema check alone takes 70 ms a file. A file with problems is read afresh each time, so its
    messages come in the language of the moment."""
    return _load_workflow_text(text, source)


@lru_cache(maxsize=32)
def _load_workflow_text(text: str, source: str) -> Workflow:
    doc = read_yaml(text, source)
    problems = problems_of(doc)
    if problems:
        raise WorkflowFileError(source, problems)
    return _workflow(doc.data, source)


def read_source(path: str | Path) -> str:
    """The file's text (UTF-8, a BOM tolerated); unreadable files are a WorkflowFileError."""
    name = str(path)
    try:
        if Path(path).stat().st_size > MAX_YAML_CHARS * 4:  # refused unread: check_yaml would refuse it anyway
            raise WorkflowFileError(name, [Problem(name, tr(f"文件太大（上限 {MAX_YAML_CHARS:,} 个字符）", f"the file is too large (at most {MAX_YAML_CHARS:,} characters)"), 1, 1)])
        return Path(path).read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise WorkflowFileError(name, [Problem(name, tr(f"文件不是 UTF-8 编码（第 {exc.start} 字节）", f"the file is not UTF-8 (byte {exc.start})"))]) from exc
    except OSError as exc:
        raise WorkflowFileError(name, [Problem(name, tr(f"无法读取文件：{exc.strerror}", f"cannot read the file: {exc.strerror}"))]) from exc


def load_workflow_file(path: str | Path) -> Workflow:
    return load_workflow_text(read_source(path), str(path))


def validate_files(paths: Iterable[str | Path]) -> dict[str, list[Problem]]:
    """Each file's problems (an empty list means the file is fine)."""
    result: dict[str, list[Problem]] = {}
    for path in paths:
        try:
            load_workflow_file(path)
        except WorkflowFileError as exc:
            result[str(path)] = list(exc.problems)
        else:
            result[str(path)] = []
    return result
