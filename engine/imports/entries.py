"""Reading the files of bulk entries offices keep: facts (one row per school and fact) and extension
requests and decisions (one row per school and action), CSV or XLSX with Chinese headers.

This module only reads and checks the cells (codes, numbers, dates, known actions, a row written
twice); what each row means for a school — who may record the fact, whether the school is in the
fact's stage, whether a request is pending — is judged when the rows are applied
(``engine.entries``), row by row through the same functions as a single command, so a file can
never do what a command may not. Seed context: the Henan replay needed 2,237 fact entries and 248
extension requests and decisions (issue 14, item 9).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from engine.i18n import tr
from engine.imports.cells import parse_bool, school_code_cell
from engine.imports.staging import (
    Problems,
    duplicate,
    fold,
    missing,
)
from engine.imports.tabular import Column, open_table
from engine.text import MAX_NOTE, MAX_REASON

FACT_FIELDS: dict[str, tuple[str, ...]] = {
    "code": ("学校标识码", "学校代码", "学校编码", "school_code", "code"),
    "fact": ("事实项", "事实", "指标", "事项", "fact"),
    "value": ("值", "数值", "取值", "结果", "value"),
    "note": ("备注", "说明", "note"),
}
EXTENSION_FIELDS: dict[str, tuple[str, ...]] = {
    "code": ("学校标识码", "学校代码", "学校编码", "school_code", "code"),
    "action": ("操作", "事项", "类型", "action"),
    "due": ("新截止日期", "申请截止日期", "延期至", "截止日期", "due"),
    "reason": ("理由", "申请理由", "审批意见", "意见", "reason"),
}
ACTIONS = {
    "request": {"申请", "申请延期", "延期申请", "request"},
    "approve": {"批准", "同意", "通过", "approve", "approved"},
    "refuse": {"驳回", "不批准", "不同意", "refuse", "refused", "reject"},
}
_ACTION_OF_WORD = {word.casefold(): action for action, words in ACTIONS.items() for word in words}


@dataclass(frozen=True)
class FactRow:
    number: int  # the row as Excel shows it
    school_code: str
    fact: str  # the fact's id or a metric's title, as written
    value: float
    note: str | None


@dataclass(frozen=True)
class ExtensionRow:
    number: int
    school_code: str
    action: str  # request | approve | refuse
    due: date | None  # requests only
    reason: str


@dataclass(frozen=True)
class EntryFile:
    """The rows of a file, where each field's column is (to name it in a problem), and the problems."""

    columns: dict[str, Column]
    problems: Problems


def _number(text: str) -> float | None:
    """A number, or 是/否 for a yes/no fact (1/0)."""
    try:
        value = float(fold(text).replace(",", ""))
    except ValueError:
        yes = parse_bool(text)
        return None if yes is None else float(yes)
    return value if math.isfinite(value) else None


def read_fact_rows(path: str | Path, source: str | None = None) -> tuple[list[FactRow], EntryFile]:
    """Every row's cells checked; problems collected (not raised: the caller adds the school-level
    ones and raises once, so a file's every problem is listed together)."""
    problems = Problems(source or str(path))
    rows: list[FactRow] = []
    first: dict[tuple[str, str], int] = {}
    with open_table(path, FACT_FIELDS, ("code", "fact", "value"), problems.source) as table:
        cols = table.columns
        for number, cells in table:
            code = school_code_cell(cells, cols, number, problems)
            if code is None:
                continue
            fact = fold(cells["fact"])
            if not fact:
                problems.add(number, cols["fact"], missing("事实项", "fact"))
                continue
            value = _number(cells["value"])
            if value is None:
                problems.add(number, cols["value"], tr(f"值“{cells['value']}”不是数字（是/否记作 1/0）",
                                                       f"value '{cells['value']}' is not a number (yes/no as 1/0)"))
                continue
            key = (code, fact)
            if key in first:
                problems.add(number, cols["fact"], duplicate(f"{code} {fact}", first[key]))
                continue
            first[key] = number
            note = fold(cells.get("note", "")) or None
            rows.append(FactRow(number, code, fact, value, note[:MAX_NOTE] if note else None))
    return rows, EntryFile(dict(cols), problems)


def read_extension_rows(path: str | Path, source: str | None = None) -> tuple[list[ExtensionRow], EntryFile]:
    """Requests (with the date asked for) and decisions, in file order (a request may be decided
    further down the same file)."""
    problems = Problems(source or str(path))
    rows: list[ExtensionRow] = []
    first: dict[tuple[str, str], int] = {}
    with open_table(path, EXTENSION_FIELDS, ("code", "action", "reason"), problems.source) as table:
        cols = table.columns
        for number, cells in table:
            code = school_code_cell(cells, cols, number, problems)
            if code is None:
                continue
            action = _ACTION_OF_WORD.get(fold(cells["action"]).casefold())
            if action is None:
                problems.add(number, cols["action"], tr(f"操作“{cells['action']}”无法识别：应为 申请/批准/驳回",
                                                        f"action '{cells['action']}' unknown: use request/approve/refuse"))
                continue
            due: date | None = None
            raw_due = fold(cells.get("due", ""))
            if action == "request":
                try:
                    due = date.fromisoformat(raw_due.replace("/", "-"))
                except ValueError:
                    problems.add(number, cols.get("due"), tr(f"新截止日期“{raw_due}”不是日期（YYYY-MM-DD）",
                                                             f"new due date '{raw_due}' is not a date (YYYY-MM-DD)")
                                 if raw_due else missing("新截止日期", "new due date"))
                    continue
            reason = fold(cells["reason"])
            if not reason:
                problems.add(number, cols["reason"], missing("理由", "reason"))
                continue
            key = (code, action)
            if key in first:
                problems.add(number, cols["action"], duplicate(f"{code} {cells['action']}", first[key]))
                continue
            first[key] = number
            rows.append(ExtensionRow(number, code, action, due, reason[:MAX_REASON]))
    return rows, EntryFile(dict(cols), problems)
