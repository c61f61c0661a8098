"""The rules of a workflow file that a JSON Schema cannot say: ids that must exist, a graph that
must hang together, durations and dates that must mean something.

They run even when the schema already found problems (written defensively against wrong
types), so a clerk sees every problem of a file in one go rather than one round per fix.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from datetime import date
from typing import Any

from engine.errors import Problem
from engine.i18n import tr
from engine.workflow.model import PREVIOUS, DueRule
from engine.yaml_source import SourceDoc

NUMERIC_FIELDS = ("online_hours", "practice_hours", "total_hours", "points_count", "evidence_count")
# Kinds whose reason is always required: they undo, pause, bend or bypass the normal path.
REASON_FORCED = ("return", "suspend", "override", "extend")
LEAVING_KINDS = ("advance", "return", "override")
_EN_DURATION = re.compile(r"^\s*(\d+)\s*(working\s+)?days?\s*$", re.IGNORECASE)
_ZH_DURATION = re.compile(r"^\s*(\d+)\s*(个工作日|工作日|天|日)\s*$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_duration(text: str) -> tuple[int, bool] | None:
    """``"30 working days"`` → ``(30, True)``; ``"90天"`` → ``(90, False)``; None if not a duration."""
    match = _EN_DURATION.match(text)
    if match:
        amount, working = int(match.group(1)), bool(match.group(2))
    else:
        match = _ZH_DURATION.match(text)
        if not match:
            return None
        amount, working = int(match.group(1)), "工作日" in match.group(2)
    return (amount, working) if amount > 0 else None


def parse_date(text: str) -> date | None:
    if not _ISO_DATE.match(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def due_rule(due: dict[str, Any]) -> DueRule | None:
    """The DueRule a valid ``due`` mapping stands for (None if it is not valid)."""
    for kind, value in due.items():
        if not isinstance(value, str):
            return None
        if kind == "date":
            day = parse_date(value)
            return DueRule("date", date=day) if day else None
        parsed = parse_duration(value)
        if parsed is None:
            return None
        return DueRule(kind, amount=parsed[0], working_days=parsed[1])
    return None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _items(value: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    for i, item in enumerate(_list(value)):
        if isinstance(item, dict):
            yield i, item


def star_sources(stages: list[dict[str, Any]], dest: Any) -> list[str]:
    """What ``from: "*"`` means: every stage that is neither terminal nor hold, except the
    transition's own destination (a rule never loops a stage onto itself)."""
    ids = (
        s["id"]
        for s in stages
        if isinstance(s.get("id"), str) and not s.get("terminal") and not s.get("hold") and s["id"] != dest
    )
    return list(dict.fromkeys(ids))


def sources_of(transition: dict[str, Any], stages: list[dict[str, Any]]) -> list[tuple[str, int | None]]:
    """(stage id, index in the ``from`` list or None) for each stage the transition leaves."""
    raw = transition.get("from")
    if raw == "*":
        return [(s, None) for s in star_sources(stages, transition.get("to"))]
    if isinstance(raw, str):
        return [(raw, None)]
    return [(s, i) for i, s in enumerate(_list(raw)) if isinstance(s, str)]


def default_fact_roles(transitions: Any) -> list[str]:
    """Who may record a fact whose metric names no ``roles``: the roles that may fire an ``advance``.

    Recording the fact a gate tests is as strong as moving the school past that gate (an ``auto``
    advance follows on the next sweep), so by default exactly the roles trusted with advancing
    are trusted with the facts; anyone else (a supervisor, a school) must be named explicitly.
    """
    roles = (r for _, t in _items(transitions) if t.get("kind") == "advance"
             for r in _list(t.get("roles")) if isinstance(r, str))
    return list(dict.fromkeys(roles))


class Checker:
    """Collects semantic problems of one parsed document."""

    def __init__(self, doc: SourceDoc):
        self.doc = doc
        self.data = _dict(doc.data)
        self.problems: list[Problem] = []
        self.stages = [s for _, s in _items(self.data.get("stages"))]
        self.stage_by_id: dict[str, dict[str, Any]] = {}
        self.metrics = _dict(self.data.get("metrics"))
        self.roles = _dict(self.data.get("roles"))

    def add(self, path: tuple[str | int, ...], zh: str, en: str, *, key: bool = False) -> None:
        self.problems.append(self.doc.problem(path, tr(zh, en), key=key))

    def run(self) -> list[Problem]:
        self.check_stages()
        self.check_metrics()
        self.check_roots()
        self.check_transitions()
        self.check_graph()
        return self.problems

    # -- stages, gates, due dates, reminders ------------------------------------------------
    def check_stages(self) -> None:
        for i, stage in _items(self.data.get("stages")):
            sid = stage.get("id")
            if isinstance(sid, str):
                if sid in self.stage_by_id:
                    self.add(("stages", i, "id"), f"阶段标识 {sid} 重复", f"duplicate stage id {sid}")
                else:
                    self.stage_by_id[sid] = stage
            if stage.get("terminal") is True and stage.get("hold") is True:
                self.add(("stages", i, "hold"), "阶段不能同时是 terminal 和 hold", "a stage cannot be both terminal and hold", key=True)
            if stage.get("terminal") is True or stage.get("hold") is True:
                what = "terminal" if stage.get("terminal") is True else "hold"
                for k in ("gates", "due", "remind"):
                    if k in stage:
                        self.add(("stages", i, k), f"{what} 阶段不能有 {k}", f"a {what} stage cannot have {k}", key=True)
            self.check_gates(i, stage)
            if isinstance(stage.get("due"), dict):
                self.check_due(("stages", i, "due"), stage["due"])
            self.check_remind(("stages", i, "remind"), _dict(stage.get("remind")))

    def check_gates(self, i: int, stage: dict[str, Any]) -> None:
        seen: set[str] = set()
        for g, gate in _items(stage.get("gates")):
            path = ("stages", i, "gates", g)
            gid = gate.get("id")
            if isinstance(gid, str):
                if gid in seen:
                    self.add((*path, "id"), f"本阶段内门槛标识 {gid} 重复", f"duplicate gate id {gid} in this stage")
                seen.add(gid)
            metric = gate.get("metric")
            if isinstance(metric, str) and metric not in self.metrics:
                self.add((*path, "metric"), f"门槛引用了未定义的指标 {metric}", f"gate refers to undefined metric {metric}")
                continue
            kind = _dict(self.metrics.get(metric)).get("kind") if isinstance(metric, str) else None
            value = gate.get("value")
            if kind == "share_of_teachers" and isinstance(value, int | float) and not isinstance(value, bool):
                if not 0 <= value <= 1:
                    self.add((*path, "value"), f"比例门槛的值必须在 0 到 1 之间（{value}）；95% 写作 0.95", f"a share gate value must lie between 0 and 1 ({value}); write 95% as 0.95")

    def check_due(self, path: tuple[str | int, ...], due: dict[str, Any]) -> None:
        for kind, value in due.items():
            if not isinstance(value, str) or kind not in ("date", "after_stage_entry", "after_batch_start"):
                continue  # the schema reports wrong types and keys
            if kind == "date" and parse_date(value) is None:
                self.add((*path, kind), f"不是有效日期：{value}（应写成 YYYY-MM-DD）", f"not a valid date: {value} (write YYYY-MM-DD)")
            elif kind != "date" and parse_duration(value) is None:
                self.add((*path, kind), f"不是有效期限：{value}（如 \"30 days\"、\"20 working days\"、\"30天\"、\"20个工作日\"，天数为正整数）", f"not a valid duration: {value} (e.g. \"30 days\", \"20 working days\", \"30天\", \"20个工作日\"; a positive whole number)")

    def check_remind(self, path: tuple[str | int, ...], remind: dict[str, Any]) -> None:
        last: int | None = None
        for e, step in _items(remind.get("escalate")):
            after = step.get("after_days")
            if not isinstance(after, int) or isinstance(after, bool):
                continue
            if last is not None and after <= last:
                self.add((*path, "escalate", e, "after_days"), f"升级步骤的 after_days 必须递增（{after} 不大于 {last}）", f"escalation steps' after_days must ascend ({after} is not above {last})")
            last = after

    # -- metrics ---------------------------------------------------------------------------------
    def check_metrics(self) -> None:
        for mid, metric in self.metrics.items():
            if not isinstance(metric, dict):
                continue
            path: tuple[str | int, ...] = ("metrics", mid)
            kind = metric.get("kind")
            if kind == "fact":
                if "where" in metric:
                    self.add((*path, "where"), "fact 类指标不能有 where 条件（事实由学校记录，不按教师统计）", "a fact metric cannot have where conditions (facts are recorded per school, not counted over teachers)", key=True)
                if "fact" not in metric:
                    self.add(path, "fact 类指标必须用 fact: 指明事实名称", "a fact metric must name its fact with fact:", key=True)
                self.check_fact_roles(path, metric)
                span = metric.get("range")
                if isinstance(span, list) and len(span) == 2 and all(isinstance(v, int | float) for v in span) and span[0] > span[1]:
                    self.add((*path, "range"), "range 的下限大于上限", "the range's low end is above its high end")
            elif kind in ("share_of_teachers", "count_of_teachers"):
                if "fact" in metric:
                    self.add((*path, "fact"), f"{kind} 类指标不能有 fact 键（只有 fact 类有）", f"a {kind} metric cannot have a fact key (only fact metrics do)", key=True)
                if "range" in metric:
                    self.add((*path, "range"), f"{kind} 类指标不能有 range 键（只有 fact 类指标记录数值）", f"a {kind} metric cannot have a range key (only fact metrics are recorded)", key=True)
                if "roles" in metric:
                    self.add((*path, "roles"), f"{kind} 类指标不能有 roles 键（只有 fact 类指标需要说明谁可以记录）", f"a {kind} metric cannot have a roles key (only fact metrics say who may record them)", key=True)
                if "before_stage" in metric:
                    self.add((*path, "before_stage"), f"{kind} 类指标不能有 before_stage 键（只有 fact 类指标由人记录）", f"a {kind} metric cannot have a before_stage key (only fact metrics are recorded by people)", key=True)
                if kind == "share_of_teachers" and "where" not in metric:
                    self.add(path, "比例类指标必须有 where 条件（否则恒为 100%）", "a share metric needs where conditions (otherwise it is always 100%)", key=True)
            for c, cond in _items(metric.get("where")):
                self.check_condition((*path, "where", c), cond)

    def check_fact_roles(self, path: tuple[str | int, ...], metric: dict[str, Any]) -> None:
        if "roles" not in metric:
            if not default_fact_roles(self.data.get("transitions")):
                self.add(path, "fact 类指标没有 roles，且没有任何 advance 流转可作默认角色：请用 roles: 指明谁可以记录该事实", "a fact metric without roles needs an advance transition whose roles it defaults to: name who may record the fact with roles:", key=True)
            return
        for r, role in enumerate(_list(metric.get("roles"))):
            if isinstance(role, str) and role not in self.roles:
                self.add((*path, "roles", r), f"角色 {role} 未在 roles 中声明", f"role {role} is not declared under roles")

    def check_condition(self, path: tuple[str | int, ...], cond: dict[str, Any]) -> None:
        field, op, value = cond.get("field"), cond.get("op"), cond.get("value")
        if field == "evidence_result" and isinstance(op, str) and op != "in":
            self.add((*path, "op"), "evidence_result 只能用 op: in 和结果列表（如 [pass, excellent]）", "evidence_result only takes op: in with a list of results (e.g. [pass, excellent])")
        elif field in NUMERIC_FIELDS and op == "in":
            self.add((*path, "op"), f"{field} 是数值字段，不能用 in；请用 >= > <= < == !=", f"{field} is numeric: use >= > <= < == != rather than in")
        elif op == "in" and not isinstance(value, list) and "value" in cond:
            self.add((*path, "value"), "op: in 需要一个列表作为值", "op: in needs a list as its value")
        elif isinstance(op, str) and op != "in" and isinstance(value, list):
            self.add((*path, "value"), f"op: {op} 需要一个数字作为值", f"op: {op} needs a number as its value")

    # -- initial, entry stages -------------------------------------------------------------------
    def check_roots(self) -> None:
        initial = self.data.get("initial")
        if isinstance(initial, str):
            stage = self.stage_by_id.get(initial)
            if stage is None:
                self.add(("initial",), f"初始阶段 {initial} 未定义", f"initial stage {initial} is not defined")
            elif stage.get("terminal") is True or stage.get("hold") is True:
                self.add(("initial",), f"初始阶段 {initial} 不能是 terminal 或 hold 阶段", f"initial stage {initial} cannot be a terminal or hold stage")
        for i, sid in enumerate(_list(self.data.get("entry_stages"))):
            if isinstance(sid, str) and sid not in self.stage_by_id:
                self.add(("entry_stages", i), f"入口阶段 {sid} 未定义", f"entry stage {sid} is not defined")

    # -- transitions -------------------------------------------------------------------------------
    def check_transitions(self) -> None:
        pairs: dict[tuple[str, str], int] = {}
        kinds: dict[str, str] = {}
        for t, rule in _items(self.data.get("transitions")):
            path: tuple[str | int, ...] = ("transitions", t)
            kind, trigger, dest = rule.get("kind"), rule.get("trigger"), rule.get("to")
            if isinstance(trigger, str) and isinstance(kind, str):
                if kinds.setdefault(trigger, kind) != kind:
                    self.add((*path, "kind"), f"触发器 {trigger} 已用于 {kinds[trigger]} 类，不能再用于 {kind} 类", f"trigger {trigger} is already used for kind {kinds[trigger]}, not {kind}")
            self.check_kind_rules(path, rule)
            if isinstance(dest, str) and dest != PREVIOUS and dest not in self.stage_by_id:
                self.add((*path, "to"), f"目标阶段 {dest} 未定义", f"destination stage {dest} is not defined")
            for sid, idx in sources_of(rule, self.stages):
                spath = (*path, "from") if idx is None else (*path, "from", idx)
                stage = self.stage_by_id.get(sid)
                if stage is None:
                    self.add(spath, f"来源阶段 {sid} 未定义", f"source stage {sid} is not defined")
                    continue
                if stage.get("terminal") is True:
                    self.add(spath, f"{sid} 是终止阶段，不能有离开它的流转", f"{sid} is a terminal stage: no transition may leave it")
                if isinstance(trigger, str):
                    if (trigger, sid) in pairs:
                        line = self.doc.at(("transitions", pairs[(trigger, sid)])).line
                        self.add((*path, "trigger"), f"触发器 {trigger} 从阶段 {sid} 出发的流转已在第 {line} 行定义", f"trigger {trigger} from stage {sid} is already defined at line {line}")
                    else:
                        pairs[(trigger, sid)] = t
            for r, role in enumerate(_list(rule.get("roles"))):
                if isinstance(role, str) and role not in self.roles:
                    self.add((*path, "roles", r), f"角色 {role} 未在 roles 中声明", f"role {role} is not declared under roles")

    def check_kind_rules(self, path: tuple[str | int, ...], rule: dict[str, Any]) -> None:
        kind, dest = rule.get("kind"), rule.get("to")
        if rule.get("auto") is True and kind != "advance":
            self.add((*path, "auto"), f"auto 只允许用于 advance 类流转，不能用于 {kind}", f"auto is only allowed on advance transitions, not {kind}", key=True)
        if "covers" in rule and kind != "extend":
            self.add((*path, "covers"), f"covers 只允许用于 extend（延期）类流转，不能用于 {kind}", f"covers is only allowed on extend transitions, not {kind}", key=True)
        if kind == "resume" and dest != PREVIOUS:
            self.add((*path, "to") if "to" in rule else path, "resume 类流转必须写 to: \"@previous\"", "a resume transition must have to: \"@previous\"")
        elif kind == "extend" and "to" in rule:
            self.add((*path, "to"), "extend（延期）流转停留在原阶段，不能有 to", "an extend transition stays in its stage and cannot have to", key=True)
        elif kind in ("advance", "return", "suspend", "override"):
            if "to" not in rule:
                self.add(path, f"{kind} 类流转必须有 to（目标阶段）", f"a {kind} transition needs to (its destination stage)")
            elif dest == PREVIOUS:
                self.add((*path, "to"), "\"@previous\" 只能用于 resume 类流转", "\"@previous\" is only allowed on resume transitions")

    # -- the graph as a whole ----------------------------------------------------------------------
    def check_graph(self) -> None:
        edges: dict[str, set[str]] = {sid: set() for sid in self.stage_by_id}
        exits: dict[str, set[str]] = {sid: set() for sid in self.stage_by_id}
        for _, rule in _items(self.data.get("transitions")):
            dest, kind = rule.get("to"), rule.get("kind")
            for sid, _idx in sources_of(rule, self.stages):
                if sid not in edges:
                    continue
                if isinstance(dest, str) and dest in self.stage_by_id:
                    edges[sid].add(dest)
                    if kind in LEAVING_KINDS and dest != sid:
                        exits[sid].add(dest)
                if kind == "resume":
                    exits[sid].add(PREVIOUS)
        index: dict[str, int] = {}
        for i, stage in _items(self.data.get("stages")):
            if isinstance(stage.get("id"), str):
                index.setdefault(stage["id"], i)
        for sid, stage in self.stage_by_id.items():
            path = ("stages", index[sid], "id")
            if stage.get("terminal") is True:
                continue
            if stage.get("hold") is True and not exits[sid]:
                self.add(path, f"暂停阶段 {sid} 没有离开它的流转（请加 resume）", f"hold stage {sid} has no transition leaving it (add a resume)")
            elif stage.get("hold") is not True and not (exits[sid] - {PREVIOUS}):
                self.add(path, f"阶段 {sid} 既非终止也非暂停，却没有推进、退回或特批的出路", f"stage {sid} is neither terminal nor hold but has no advance, return or override leaving it")
        roots = [r for r in [self.data.get("initial"), *_list(self.data.get("entry_stages"))] if r in self.stage_by_id]
        if not roots:
            return
        seen = set(roots)
        queue = deque(roots)
        while queue:
            for nxt in edges[queue.popleft()]:
                if nxt not in seen:
                    seen.add(nxt)
                    queue.append(nxt)
        for sid in self.stage_by_id:
            if sid not in seen:
                self.add(("stages", index[sid], "id"), f"阶段 {sid} 从初始阶段或入口阶段（entry_stages）都无法到达", f"stage {sid} cannot be reached from the initial stage or any entry stage")


def check(doc: SourceDoc) -> list[Problem]:
    return Checker(doc).run()
