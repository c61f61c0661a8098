"""The loader: every rule of a workflow file, each reported at its exact file:line:column."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from engine.errors import Problem, WorkflowFileError
from engine.i18n import set_language
from engine.workflow import loader
from engine.workflow import model as wfmod
from engine.workflow.checks import parse_duration
from engine.workflow.loader import load_workflow_file, load_workflow_text, schema, validate_files
from engine.workflow.model import PREVIOUS, DueRule

BASE = """\
workflow: demo
version: "1"
title: {zh: 演示, en: Demo}
initial: start
roles:
  office: {zh: 项目办, en: Office}
metrics:
  hours_share:
    title: {zh: 学时占比, en: Hours share}
    kind: share_of_teachers
    where:
      - {field: online_hours, op: ">=", value: 25}
  filed:
    title: {zh: 已备案, en: Filed}
    kind: fact
    fact: filed
stages:
  - id: start
    title: {zh: 开始, en: Start}
    gates:
      - {id: g1, title: {zh: 门槛, en: Gate}, metric: hours_share, op: ">=", value: 1}
    due: {after_stage_entry: 10 working days}
    remind:
      before_days: [3]
      escalate:
        - {after_days: 0, to: school}
        - {after_days: 7, to: county}
  - id: end
    title: {zh: 结束, en: End}
    terminal: true
  - id: parked
    title: {zh: 暂停, en: Parked}
    hold: true
transitions:
  - {trigger: go, kind: advance, from: start, to: end, roles: [office], auto: true}
  - {trigger: park, kind: suspend, from: "*", to: parked, roles: [office]}
  - {trigger: unpark, kind: resume, from: parked, to: "@previous", roles: [office]}
  - {trigger: later, kind: extend, from: "*", roles: [office]}
"""


@pytest.fixture(autouse=True)
def _english() -> Iterator[None]:
    set_language("en")
    yield


def mutate(old: str, new: str, text: str = BASE) -> str:
    assert text.count(old) == 1, f"{old!r} must occur exactly once"
    return text.replace(old, new)


def problems(text: str) -> list[Problem]:
    with pytest.raises(WorkflowFileError) as info:
        load_workflow_text(text, "demo.yaml")
    assert info.value.source == "demo.yaml"
    return info.value.problems


def pos(text: str, needle: str, nth: int = 0) -> tuple[int, int]:
    """1-based line and column of the nth occurrence of ``needle``."""
    at = -1
    for _ in range(nth + 1):
        at = text.index(needle, at + 1)
    line = text.count("\n", 0, at) + 1
    column = at - (text.rfind("\n", 0, at) + 1) + 1
    return line, column


def only(text: str) -> Problem:
    found = problems(text)
    assert len(found) == 1, "\n".join(map(str, found))
    return found[0]


def test_base_file_loads() -> None:
    wf = load_workflow_text(BASE, "demo.yaml")
    assert wf.key == "demo@1"
    assert [s.id for s in wf.stages] == ["start", "end", "parked"]
    assert wf.stage("start").due == DueRule("after_stage_entry", amount=10, working_days=True)
    assert wf.metrics["hours_share"].unit == "share"
    assert wf.source_name == "demo.yaml"
    assert len(wf.content_hash) == 64


def test_positions_are_one_based_and_exact() -> None:
    text = mutate('version: "1"', "version: 1")
    p = only(text)
    assert (p.line, p.column, p.field) == (2, 10, "version")
    assert str(p) == 'demo.yaml:2:10: [version] version must be a quoted string, e.g. "1"'


# -- unknown keys, at every level -------------------------------------------------------------------
UNKNOWN_KEYS = [
    ('version: "1"', 'version: "1"\ncolour: red', "colour", "colour"),
    ("{zh: 演示, en: Demo}", "{zh: 演示, en: Demo, fr: Démo}", "fr", "title.fr"),
    ("  office: {zh: 项目办, en: Office}", "  office: {zh: 项目办, en: Office, de: Amt}", "de", "roles.office.de"),
    ("    kind: fact", "    kind: fact\n    colour: red", "colour", "metrics.filed.colour"),
    ('value: 25}', 'value: 25, unit: h}', "unit", "metrics.hours_share.where[0].unit"),
    ("    terminal: true", "    terminal: true\n    colour: red", "colour", "stages[1].colour"),
    ('op: ">=", value: 1}', 'op: ">=", value: 1, weight: 2}', "weight", "stages[0].gates[0].weight"),
    ("{after_stage_entry: 10 working days}", "{after_stage_entry: 10 working days, grace: 3}", "grace", "stages[0].due.grace"),
    ("      before_days: [3]", "      before_days: [3]\n      channel: sms", "channel", "stages[0].remind.channel"),
    ("{after_days: 0, to: school}", "{after_days: 0, to: school, via: sms}", "via", "stages[0].remind.escalate[0].via"),
    ("roles: [office], auto: true}", "roles: [office], auto: true, when: now}", "when", "transitions[0].when"),
]


@pytest.mark.parametrize(("old", "new", "needle", "field"), UNKNOWN_KEYS, ids=[c[3] for c in UNKNOWN_KEYS])
def test_unknown_keys_are_refused_at_every_level(old: str, new: str, needle: str, field: str) -> None:
    text = mutate(old, new)
    p = only(text)
    assert p.field == field
    assert (p.line, p.column) == pos(text, needle + ":")
    assert p.message.startswith(f"unknown key {needle}; allowed here:")


def test_duplicate_yaml_key_points_at_the_second() -> None:
    text = mutate("initial: start", "initial: start\ninitial: end")
    p = only(text)
    assert (p.line, p.column) == (5, 1)
    assert p.message == "duplicate key initial (first at line 4)"


def test_yaml_syntax_error_has_a_position() -> None:
    p = only(mutate("title: {zh: 演示, en: Demo}", "title: {zh: 演示, en: Demo"))
    assert p.line is not None and p.column is not None
    assert p.message.startswith("YAML syntax error")


def test_empty_and_non_mapping_files() -> None:
    assert only("").message == "the file is empty"
    assert only("- a\n- b\n").message.startswith("the file's top level must be a mapping")


def test_missing_required_key_points_at_its_mapping() -> None:
    text = mutate("    title: {zh: 结束, en: End}\n", "")
    p = only(text)
    assert (p.line, p.column) == pos(text, "id: end")
    assert p.message == "missing required key title"


# -- one broken rule at a time -------------------------------------------------------------------
# (case, old, new, needle marking the expected position, which occurrence of it, message start)
RULES: list[tuple[str, str, str, str, int, str]] = [
    ("bad gate op", 'metric: hours_share, op: ">="', 'metric: hours_share, op: "=>"', '"=>"', 0, '"=>" is not allowed; choose one of: >=, >, <=, <, ==, !='),
    ("bad workflow id", "workflow: demo", "workflow: Demo_1", "Demo_1", 0, "a workflow id may contain only"),
    ("bad role id", "  office: {zh", "  office: {zh: x, en: y}\n  Bad-Role: {zh", "Bad-Role", 0, "Bad-Role: an id may contain only"),
    ("duplicate stage id", "  - id: parked", "  - id: start", "start\n    title: {zh: 暂停", 0, "duplicate stage id start"),
    ("duplicate gate id", '      - {id: g1, title: {zh: 门槛, en: Gate}, metric: hours_share, op: ">=", value: 1}',
     '      - {id: g1, title: {zh: 门槛, en: Gate}, metric: hours_share, op: ">=", value: 1}\n      - {id: g1, title: {zh: 门槛, en: Gate}, metric: filed, op: ">=", value: 1}',
     "g1", 1, "duplicate gate id g1 in this stage"),
    ("duplicate trigger+from", "  - {trigger: later,", "  - {trigger: go, kind: advance, from: start, to: parked, roles: [office]}\n  - {trigger: later,",
     "go", 1, "trigger go from stage start is already defined at line 35"),
    ("unknown from", "from: parked, to:", "from: limbo, to:", "limbo", 0, "source stage limbo is not defined"),
    ("unknown to", "from: start, to: end,", "from: start, to: finish,", "finish", 0, "destination stage finish is not defined"),
    ("unknown initial", "initial: start", "initial: begin", "begin", 0, "initial stage begin is not defined"),
    ("gate unknown metric", "metric: hours_share, op", "metric: hours, op", "hours, op: \">=\", value: 1}", 0, "gate refers to undefined metric hours"),
    ("where on fact", "    fact: filed", "    fact: filed\n    where: [{field: online_hours, op: '>=', value: 1}]", "where:", 1, "a fact metric cannot have where conditions"),
    ("fact without name", "    fact: filed\n", "", "filed:", 0, "a fact metric must name its fact with fact:"),
    ("share without where", "    kind: share_of_teachers\n    where:\n      - {field: online_hours, op: \">=\", value: 25}\n",
     "    kind: share_of_teachers\n", "hours_share:", 0, "a share metric needs where conditions"),
    ("undeclared role", "to: end, roles: [office]", "to: end, roles: [office, mayor]", "mayor", 0, "role mayor is not declared under roles"),
    ("in on numeric field", 'op: ">=", value: 25', "op: in, value: [pass]", "in,", 0, "online_hours is numeric"),
    ("numeric op on evidence_result", "field: online_hours", "field: evidence_result", '">=", value: 25', 0, "evidence_result only takes op: in"),
    ("bad duration", "10 working days", "ten working days", "ten", 0, "not a valid duration: ten working days"),
    ("zero duration", "10 working days", "0 days", "0 days", 0, "not a valid duration: 0 days"),
    ("impossible date", "{after_stage_entry: 10 working days}", "{date: 2022-02-30}", "2022-02-30", 0, "not a valid date: 2022-02-30"),
    ("escalation not ascending", "{after_days: 7, to: county}", "{after_days: 0, to: county}", "0, to: county", 0, "escalation steps' after_days must ascend (0 is not above 0)"),
    ("share gate above 1", 'op: ">=", value: 1}', 'op: ">=", value: 95}', "95", 0, "a share gate value must lie between 0 and 1 (95)"),
    ("auto on suspend", 'to: parked, roles: [office]}', 'to: parked, roles: [office], auto: true}', "auto", 1, "auto is only allowed on advance transitions, not suspend"),
    ("resume without @previous", 'to: "@previous"', "to: start", "start,", 1, 'a resume transition must have to: "@previous"'),
    ("@previous on advance", "from: start, to: end,", 'from: start, to: "@previous",', '"@previous",', 0, '"@previous" is only allowed on resume transitions'),
    ("extend with to", 'from: "*", roles: [office]}', 'from: "*", to: end, roles: [office]}', "to: end", 1, "an extend transition stays in its stage and cannot have to"),
    ("advance without to", "from: start, to: end,", "from: start,", "{trigger: go", 0, "a advance transition needs to"),
    ("leaving a terminal stage", "from: parked, to:", "from: [parked, end], to:", "end]", 0, "end is a terminal stage: no transition may leave it"),
    ("terminal with gates", "    terminal: true", "    terminal: true\n    due: {date: 2022-11-30}", "due: {date", 0, "a terminal stage cannot have due"),
    ("initial is hold", "initial: start", "initial: parked", "parked", 0, "initial stage parked cannot be a terminal or hold stage"),
    ("no way out", "  - id: parked", "  - id: stuck\n    title: {zh: 卡住, en: Stuck}\n  - id: parked", "stuck", 0, "stage stuck is neither terminal nor hold but has no advance"),
    ("hold without resume", '  - {trigger: unpark, kind: resume, from: parked, to: "@previous", roles: [office]}\n', "", "parked", 0, "hold stage parked has no transition leaving it"),
    ("trigger with two kinds", "{trigger: park, kind: suspend", "{trigger: go, kind: suspend", "suspend", 0, "trigger go is already used for kind advance, not suspend"),
    ("undeclared fact role", "    fact: filed", "    fact: filed\n    roles: [office, mayor]", "mayor", 0, "role mayor is not declared under roles"),
    ("empty fact roles", "    fact: filed", "    fact: filed\n    roles: []", "[]", 0, "must not be empty"),
    ("repeated fact role", "    fact: filed", "    fact: filed\n    roles: [office, office]", "[office, office]", 0, "the list repeats an item"),
    ("roles on a share metric", "    kind: share_of_teachers\n", "    kind: share_of_teachers\n    roles: [office]\n", "roles: [office]\n    where", 0,
     "a share_of_teachers metric cannot have a roles key"),
    ("fact without roles and no advance", "{trigger: go, kind: advance, from: start, to: end, roles: [office], auto: true}",
     "{trigger: go, kind: override, from: start, to: end, roles: [office]}", "filed:", 0, "a fact metric without roles needs an advance transition"),
]


@pytest.mark.parametrize(("case", "old", "new", "needle", "nth", "message"), RULES, ids=[r[0] for r in RULES])
def test_each_rule_is_reported_at_its_place(case: str, old: str, new: str, needle: str, nth: int, message: str) -> None:
    text = mutate(old, new)
    found = problems(text)
    matching = [p for p in found if p.message.startswith(message)]
    assert matching, f"{case}: expected {message!r}, got:\n" + "\n".join(map(str, found))
    p = matching[0]
    assert (p.line, p.column) == pos(text, needle, nth), str(p)


def test_unreachable_stage_is_reported() -> None:
    text = mutate(
        "  - id: parked",
        "  - id: island\n    title: {zh: 孤岛, en: Island}\n  - id: parked",
    )
    text = mutate("  - {trigger: later,", "  - {trigger: go, kind: advance, from: island, to: end, roles: [office]}\n  - {trigger: later,", text)
    p = only(text)
    assert p.message == "stage island cannot be reached from the initial stage or any entry stage"
    assert (p.line, p.column) == pos(text, "island")


def test_entry_stages_make_a_stage_reachable() -> None:
    text = mutate(
        "  - id: parked",
        "  - id: pilot\n    title: {zh: 试点, en: Pilot}\n  - id: parked",
    )
    text = mutate("  - {trigger: later,", "  - {trigger: go, kind: advance, from: pilot, to: start, roles: [office]}\n  - {trigger: later,", text)
    assert only(text).message.startswith("stage pilot cannot be reached")
    wf = load_workflow_text(mutate("initial: start", "initial: start\nentry_stages: [pilot]", text), "x")
    assert wf.entry_stages == ("pilot",)
    p = only(mutate("initial: start", "initial: start\nentry_stages: [pilot, nowhere]", text))
    assert p.message == "entry stage nowhere is not defined"
    assert p.field == "entry_stages[1]"


def test_a_file_with_several_problems_reports_all_in_file_order() -> None:
    text = BASE.replace('version: "1"', "version: 1").replace("initial: start", "initial: begin")
    text = text.replace("to: end, roles: [office]", "to: end, roles: [mayor]").replace("10 working days", "soon")
    found = problems(text)
    assert [p.field for p in found] == [
        "version",
        "initial",
        "stages[0].due.after_stage_entry",
        "transitions[0].roles[0]",
    ]
    assert [p.line for p in found] == sorted(p.line or 0 for p in found)


def test_messages_are_chinese_by_default() -> None:
    set_language("zh")
    p = only(mutate("initial: start", "initial: begin"))
    assert p.message == "初始阶段 begin 未定义"


# -- what a valid file turns into ------------------------------------------------------------------------
def test_star_means_every_working_stage_except_the_destination() -> None:
    wf = load_workflow_text(BASE, "x")
    park = wf.transition_for("park", "start")
    assert park is not None and park.sources == ("start",)
    later = wf.transition_for("later", "start")
    assert later is not None and later.dest is None and later.sources == ("start",)
    unpark = wf.transition_for("unpark", "parked")
    assert unpark is not None and unpark.dest == PREVIOUS


def test_reason_is_forced_for_kinds_that_bend_the_path_and_titles_default() -> None:
    text = BASE.replace("roles: [office], auto: true}", "roles: [office], auto: true, reason: optional}")
    text = text.replace('to: parked, roles: [office]}', 'to: parked, roles: [office], reason: optional}')
    wf = load_workflow_text(text, "x")
    by_trigger = {t.trigger: t for t in wf.transitions}
    assert by_trigger["go"].reason_required is False
    assert by_trigger["park"].reason_required is True
    assert by_trigger["later"].reason_required is True
    assert by_trigger["unpark"].reason_required is False
    assert by_trigger["go"].title.en == "Advance"
    assert by_trigger["later"].title.zh == "延期"
    wf = load_workflow_text(BASE.replace("roles: [office], auto: true}", "roles: [office], reason: required}"), "x")
    assert wf.transitions[0].reason_required is True and wf.transitions[0].auto is False


def test_boolean_gate_value_means_one_or_zero() -> None:
    text = BASE.replace("metric: hours_share, op: \">=\", value: 1}", "metric: filed, op: \"==\", value: true}")
    assert load_workflow_text(text, "x").stage("start").gates[0].value == 1.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 day", (1, False)),
        ("30 days", (30, False)),
        ("3 working day", (3, True)),
        ("20 Working Days", (20, True)),
        ("30天", (30, False)),
        ("20个工作日", (20, True)),
        ("20 个工作日", (20, True)),
        ("0 days", None),
        ("-3 days", None),
        ("2.5 days", None),
        ("30 weeks", None),
    ],
)
def test_durations(text: str, expected: tuple[int, bool] | None) -> None:
    assert parse_duration(text) == expected


def test_dates_may_be_yaml_dates_or_strings() -> None:
    for value in ("2022-11-30", '"2022-11-30"'):
        wf = load_workflow_text(BASE.replace("{after_stage_entry: 10 working days}", f"{{date: {value}}}"), "x")
        assert wf.stage("start").due == DueRule("date", date=date(2022, 11, 30))


def test_after_batch_start_in_chinese() -> None:
    wf = load_workflow_text(BASE.replace("{after_stage_entry: 10 working days}", "{after_batch_start: 90天}"), "x")
    assert wf.stage("start").due == DueRule("after_batch_start", amount=90)


def test_anchors_and_aliases_are_followed() -> None:
    text = BASE.replace("    title: {zh: 开始, en: Start}", "    title: &t {zh: 开始, en: Start}")
    text = text.replace("    title: {zh: 结束, en: End}", "    title: *t")
    wf = load_workflow_text(text, "x")
    assert wf.stage("end").title == wf.stage("start").title
    assert wf.stage("end").title.en == "Start"


def test_content_hash_ignores_layout_and_comments_but_not_rules() -> None:
    h = load_workflow_text(BASE, "x").content_hash
    relaid = "# a comment\n" + BASE.replace("title: {zh: 演示, en: Demo}", "title:\n  zh: 演示   # inline\n  en: Demo\n")
    assert load_workflow_text(relaid, "y").content_hash == h
    changed = BASE.replace("value: 25}", "value: 20}")
    assert load_workflow_text(changed, "x").content_hash != h


# -- the schema is the single source of truth for keys -----------------------------------------------------
def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema()["$defs"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _object_schemas(node: dict[str, Any], seen: set[int] | None = None) -> Iterator[dict[str, Any]]:
    seen = set() if seen is None else seen
    node = _resolve(node)
    if id(node) in seen:
        return
    seen.add(id(node))
    if "properties" in node:
        yield node
    children: list[Any] = list(node.get("properties", {}).values())
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            children.append(node[key])
    for key in ("anyOf", "oneOf"):
        children.extend(node.get(key, []))
    for child in children:
        yield from _object_schemas(child, seen)


def test_schema_is_valid_and_closed_everywhere() -> None:
    Draft202012Validator.check_schema(schema())
    objects = list(_object_schemas(schema()))
    assert len(objects) == 10  # top, text, metric, condition, stage, gate, due, remind, escalation, transition
    for node in objects:
        assert node.get("additionalProperties") is False, sorted(node["properties"])


def test_loader_reads_exactly_the_schema_keys() -> None:
    defs = schema()["$defs"]
    pairs = {
        "top": (schema(), loader.TOP_KEYS),
        "text": (defs["text"], loader.TEXT_KEYS),
        "metric": (defs["metric"], loader.METRIC_KEYS),
        "condition": (defs["condition"], loader.CONDITION_KEYS),
        "stage": (defs["stage"], loader.STAGE_KEYS),
        "gate": (defs["gate"], loader.GATE_KEYS),
        "due": (defs["due"], loader.DUE_KEYS),
        "remind": (defs["remind"], loader.REMIND_KEYS),
        "escalation": (defs["escalation"], loader.ESCALATION_KEYS),
        "transition": (defs["transition"], loader.TRANSITION_KEYS),
    }
    seen = {id(node) for node in _object_schemas(schema())}
    assert seen == {id(node) for node, _ in pairs.values()}
    for name, (node, keys) in pairs.items():
        assert set(node["properties"]) == set(keys), name
    # the enums the schema allows are the ones the dataclasses module names
    assert defs["metric"]["properties"]["kind"]["enum"] == list(wfmod.METRIC_KINDS)
    assert defs["condition"]["properties"]["field"]["enum"] == list(wfmod.TEACHER_FIELDS)
    assert defs["gate"]["properties"]["op"]["enum"] == list(wfmod.NUMERIC_OPS)
    assert defs["transition"]["properties"]["kind"]["enum"] == list(wfmod.TRANSITION_KINDS)
    assert set(defs["due"]["properties"]) == set(wfmod.DUE_KINDS)
    assert defs["escalation"]["properties"]["to"]["enum"] == list(wfmod.ESCALATION_LEVELS)


FULL = """\
workflow: full
version: "2"
title: {zh: 全, en: Full}
description: every key once
initial: a
entry_stages: [p]
roles:
  office: {zh: 办, en: Office}
metrics:
  m: {title: {zh: m, en: M}, kind: share_of_teachers, unit: "%", where: [{field: evidence_result, op: in, value: [pass, excellent]}]}
  f: {title: {zh: f, en: F}, kind: fact, fact: f_fact, roles: [office], range: [1, 9], before_stage: wait}
stages:
  - id: p
    title: {zh: p, en: P}
    gates: [{id: g, title: {zh: g, en: G}, metric: f, op: ">", value: 0, source: "001 试点"}]
    due: {after_batch_start: 5 days}
  - id: a
    title: {zh: a, en: A}
    gates: [{id: g, title: {zh: g, en: G}, metric: m, op: ">=", value: 0.5}]
    due: {date: 2022-11-30}
    remind: {before_days: [2], repeat_days: 3, escalate: [{after_days: 1, to: city}]}
  - {id: b, title: {zh: b, en: B}, due: {after_stage_entry: 3 working days}}
  - {id: z, title: {zh: z, en: Z}, terminal: true}
  - {id: h, title: {zh: h, en: H}, hold: true}
transitions:
  - {trigger: go, kind: advance, title: {zh: 走, en: Go}, from: [p, a, b], to: z, roles: [office], auto: true, reason: required}
  - {trigger: redo, kind: return, from: a, to: b, roles: [office]}
  - {trigger: park, kind: suspend, from: "*", to: h, roles: [office]}
  - {trigger: back, kind: resume, from: h, to: "@previous", roles: [office]}
  - {trigger: more, kind: extend, from: a, roles: [office], covers: remaining}
"""


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _schema_paths(node: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """Every key path the schema allows, ids of roles/metrics left out (``metrics.kind``)."""
    node = _resolve(node)
    for key, child in node.get("properties", {}).items():
        yield _join(prefix, key)
        yield from _schema_paths(child, _join(prefix, key))
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            yield from _schema_paths(node[key], prefix)
    for child in node.get("anyOf", []):
        yield from _schema_paths(child, prefix)


def _data_paths(data: Any, prefix: str = "", ids: bool = False) -> Iterator[str]:
    """Every key path a document uses, in the same form as :func:`_schema_paths`."""
    if isinstance(data, dict):
        for key, value in data.items():
            if ids:  # keys of roles/metrics are ids, not keys of the format
                yield from _data_paths(value, prefix)
                continue
            yield _join(prefix, key)
            yield from _data_paths(value, _join(prefix, key), ids=_join(prefix, key) in ("roles", "metrics"))
    elif isinstance(data, list):
        for item in data:
            yield from _data_paths(item, prefix)


def test_every_schema_key_reaches_the_dataclasses() -> None:
    """The FULL file uses every key the schema has; each dataclass field then differs from its default."""
    from engine.yaml_source import read_yaml

    used = set(_data_paths(read_yaml(FULL, "full.yaml").data))
    assert set(_schema_paths(schema())) <= used, set(_schema_paths(schema())) - used
    wf = load_workflow_text(FULL, "full.yaml")
    assert wf.description == "every key once" and wf.entry_stages == ("p",)
    m = wf.metrics["m"]
    assert (m.unit, m.where[0].value) == ("%", ("pass", "excellent"))
    assert wf.metrics["f"].fact == "f_fact" and wf.metrics["f"].roles == ("office",)
    assert (wf.metrics["f"].low, wf.metrics["f"].high) == (1, 9)
    assert wf.metrics["f"].before_stage == "wait" and wf.early_rule("f_fact") == "wait" and wf.fact_stage("f_fact") == "p"
    p, a = wf.stage("p"), wf.stage("a")
    assert p.gates[0].source == "001 试点" and p.due == DueRule("after_batch_start", amount=5)
    assert a.remind is not None and a.remind.repeat_days == 3 and a.remind.before_days == (2,)
    assert wf.stage("z").terminal and wf.stage("h").hold
    go = wf.transitions[0]
    assert (go.title.en, go.sources, go.auto, go.reason_required) == ("Go", ("p", "a", "b"), True, True)
    assert wf.stage("b").due == DueRule("after_stage_entry", amount=3, working_days=True)
    assert wf.transitions[-1].covers == "remaining" and go.covers == "stage"
    assert {f.name for f in dataclasses.fields(wfmod.Transition)} == {
        "trigger", "kind", "sources", "dest", "roles", "title", "auto", "reason_required", "covers"
    }


def test_fact_roles_are_explicit_or_the_advance_roles() -> None:
    """Without ``roles`` a fact may be recorded by whoever may advance a school, and by no one else."""
    text = mutate("  office: {zh: 项目办, en: Office}", "  office: {zh: 项目办, en: Office}\n  clerk: {zh: 文员, en: Clerk}\n"
                  "  boss: {zh: 主任, en: Boss}\n  inspector: {zh: 督导, en: Inspector}")
    text = mutate("to: end, roles: [office], auto: true}", "to: end, roles: [office, clerk], auto: true}", text)
    text = mutate("to: parked, roles: [office]}", "to: parked, roles: [boss]}", text)  # suspend: not an advance
    wf = load_workflow_text(text, "x")
    assert wf.metrics["filed"].roles == ("office", "clerk")
    assert wf.metrics["hours_share"].roles == ()  # teacher metrics are not recorded by anyone
    assert wf.fact_roles("filed") == ("office", "clerk") and wf.fact_roles("nothing") == ()
    assert [m.id for m in wf.facts_for_role("clerk")] == ["filed"] and wf.facts_for_role("boss") == []
    explicit = load_workflow_text(mutate("    fact: filed", "    fact: filed\n    roles: [inspector]", text), "x")
    assert explicit.fact_roles("filed") == ("inspector",)
    assert explicit.facts_for_role("office") == [] and [m.id for m in explicit.facts_for_role("inspector")] == ["filed"]


def test_two_metrics_on_one_fact_grant_together() -> None:
    text = mutate("  office: {zh: 项目办, en: Office}", "  office: {zh: 项目办, en: Office}\n  inspector: {zh: 督导, en: Inspector}")
    text = mutate("    fact: filed\n", "    fact: filed\n  filed_again:\n    title: {zh: 再, en: Again}\n    kind: fact\n    fact: filed\n"
                  "    roles: [inspector]\n", text)
    wf = load_workflow_text(text, "x")
    assert wf.fact_roles("filed") == ("office", "inspector")
    assert [m.id for m in wf.facts_for_role("inspector")] == ["filed"]  # one entry per fact


def test_fact_role_problem_in_chinese() -> None:
    set_language("zh")
    text = mutate("    fact: filed", "    fact: filed\n    roles: [mayor]")
    p = only(text)
    assert (p.message, p.field) == ("角色 mayor 未在 roles 中声明", "metrics.filed.roles[0]")
    assert (p.line, p.column) == pos(text, "mayor")
    assert str(p).startswith(f"demo.yaml:{p.line}:{p.column}: ")


# -- files -------------------------------------------------------------------------------------------------
def test_validate_files_reports_per_file(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(BASE, encoding="utf-8")
    bom = tmp_path / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbf" + BASE.encode("utf-8"))
    gbk = tmp_path / "gbk.yaml"
    gbk.write_bytes(BASE.encode("gb18030"))
    missing = tmp_path / "missing.yaml"
    result = validate_files([good, bom, gbk, missing])
    assert result[str(good)] == [] and result[str(bom)] == []
    assert result[str(gbk)][0].message.startswith("the file is not UTF-8")
    assert result[str(missing)][0].message.startswith("cannot read the file")
    assert load_workflow_file(good).source_name == str(good)


def test_problem_list_is_json_friendly() -> None:
    found = problems(mutate("initial: start", "initial: begin"))
    assert json.loads(json.dumps([dataclasses.asdict(p) for p in found]))[0]["line"] == 4
