"""Stage gates as plain functions over plain data: compare a metric value with a requirement and
say why in words an official understands ("83 % of teachers have ≥ 25 online hours; 100 % needed").

No database here: ``engine.metrics`` computes the numbers in SQL, this module judges them.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields

from engine.i18n import tr
from engine.workflow.model import Gate, Metric, Stage, Workflow

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}
_OP_WORDS = {">=": "≥", ">": ">", "<=": "≤", "<": "<", "==": "=", "!=": "≠"}


@dataclass(frozen=True)
class GateResult:
    """One gate judged: enough to show, audit and re-check later."""

    gate: str
    title_zh: str
    title_en: str
    metric: str
    unit: str
    op: str
    required: float
    actual: float | None  # None: no data (no teacher records, fact not recorded)
    passed: bool
    # The metric's kind: a fact nobody has recorded reads 未记录, not 无数据 (issue 10). Stored
    # results from before it was kept have none and read as before.
    kind: str = ""

    def as_dict(self) -> dict[str, object]:
        # Every field is a scalar: no need for dataclasses.asdict's recursive deep copy, which
        # was a tenth of a bulk advance over 10,000 schools.
        return {name: getattr(self, name) for name in _FIELDS}

    @property
    def title(self) -> str:
        return tr(self.title_zh, self.title_en)

    def explain(self) -> str:
        """E.g. ``网络研修满25学时的教师占比：83%（需 ≥ 100%）✗``."""
        def said(english: bool) -> tuple[str, str]:
            wanted = _yes_no_wanted(self.op, self.required) if self.unit == "bool" else None
            if wanted is not None:  # a yes/no fact: "需 是", never "需 ≥ 1"
                need = format_value(wanted, "bool", english=english)
            else:  # a comparison; on a yes/no fact that both answers pass, the bare number (≥ 0, not ≥ 否)
                unit = "" if self.unit == "bool" else self.unit
                need = f"{_OP_WORDS[self.op]} {format_value(self.required, unit, english=english)}"
            if self.actual is None:
                missing = ("not recorded", "未记录") if self.kind == "fact" else ("no data", "无数据")
                return missing[0] if english else missing[1], need
            return format_value(self.actual, self.unit, english=english), need

        mark = "✓" if self.passed else "✗"
        (have_zh, need_zh), (have_en, need_en) = said(False), said(True)
        return tr(f"{self.title_zh}：{have_zh}（需 {need_zh}）{mark}", f"{self.title_en}: {have_en} ({need_en} needed) {mark}")


_FIELDS = tuple(f.name for f in fields(GateResult))


def _yes_no_wanted(op: str, required: float) -> int | None:
    """What a gate over a yes/no fact asks for: 1 (是), 0 (否), or None when its test is not a plain one."""
    passes = {v for v in (0, 1) if _OPS[op](v, required)}
    return passes.pop() if len(passes) == 1 else None


# Workflow files write units as officials do (人, 期); an English page says the word instead.
UNIT_EN = {"人": " people", "期": " cohort(s)", "学时": " h", "个": ""}


def format_value(value: float, unit: str, *, english: bool = False) -> str:
    if unit == "bool" and value in (0, 1):  # a yes/no fact (range [0, 1], no unit): 是 / 否
        return ("yes" if value else "no") if english else ("是" if value else "否")
    if english:
        unit = UNIT_EN.get(unit, unit)
    if unit == "share":
        pct = value * 100
        # Never round 99.6 % up to "100 %" when the gate needs 100 %: floor to one decimal.
        shown = math.floor(pct * 10) / 10
        return f"{shown:g}%"
    text = f"{value:g}"
    return f"{text}{unit}" if unit and unit not in ("count", "bool") else text


def judge(gate: Gate, metric: Metric, actual: float | None) -> GateResult:
    passed = actual is not None and _OPS[gate.op](actual, gate.value)
    return GateResult(
        gate=gate.id,
        title_zh=gate.title.zh,
        title_en=gate.title.en,
        metric=metric.id,
        unit=metric.unit,
        op=gate.op,
        required=gate.value,
        actual=actual,
        passed=passed,
        kind=metric.kind,
    )


def judge_stage(wf: Workflow, stage: Stage, values: Mapping[str, float | None]) -> list[GateResult]:
    """Every exit gate of ``stage`` against the school's metric ``values`` (metric id → value)."""
    return [judge(g, wf.metrics[g.metric], values.get(g.metric)) for g in stage.gates]


def all_passed(results: list[GateResult]) -> bool:
    return all(r.passed for r in results)


def failing(results: list[GateResult]) -> list[GateResult]:
    return [r for r in results if not r.passed]
