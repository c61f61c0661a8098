"""The State Council's yearly holiday notice, typed into a small YAML or CSV file, read and checked.

Notice files are refused as a whole with every problem listed, so a clerk fixes the file once
instead of once per error, and a half-valid year never becomes "official".
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import yaml

from engine.calendar.workdays import is_weekend
from engine.errors import ImportFileError, Problem
from engine.i18n import tr
from engine.yaml_source import check_yaml

NAME_MAX = 60  # calendar_day.name is String(60)
RANGE_SEPARATORS = ("..", "~", "～", "至")
# Office staff may type the keys in Chinese; both spellings mean the same field.
ALIASES = {"年份": "year", "放假": "holidays", "调休上班": "workdays", "名称": "name",
           "开始": "from", "结束": "to", "日期": "date", "类型": "kind"}
HOLIDAY_KINDS = {"holiday", "放假"}
WORKDAY_KINDS = {"workday", "上班", "调休上班"}


class CalendarFileError(ImportFileError):
    """A calendar notice file was refused; nothing was written."""


@dataclass(frozen=True)
class NoticeHoliday:
    name: str
    start: date
    end: date
    line: int | None


@dataclass(frozen=True)
class NoticeWorkday:
    day: date
    name: str | None
    line: int | None


@dataclass(frozen=True)
class Notice:
    """One year's arrangement as published: holiday ranges and 调休 working days."""

    year: int
    holidays: tuple[NoticeHoliday, ...]
    workdays: tuple[NoticeWorkday, ...]

    def holiday_days(self) -> dict[date, str]:
        """Every day off the notice names, weekends included."""
        out: dict[date, str] = {}
        for h in self.holidays:
            day = h.start
            while day <= h.end:
                out[day] = h.name
                day += timedelta(days=1)
        return out

    def exceptions(self) -> dict[date, tuple[bool, str | None]]:
        """Only the days that differ from Monday–Friday (what ``calendar_day`` stores)."""
        out: dict[date, tuple[bool, str | None]] = {
            d: (False, n) for d, n in self.holiday_days().items() if not is_weekend(d)
        }
        out.update({w.day: (True, w.name) for w in self.workdays})
        return dict(sorted(out.items()))


@dataclass
class _Raw:
    """An entry before checking: field → (text, line), from YAML or CSV alike."""

    kind: str  # holidays | workdays
    label: str  # e.g. holidays[2] or row 5, used as the field prefix in problems
    line: int | None
    fields: dict[str, tuple[str, int | None]] = field(default_factory=dict)


# --- reading ---------------------------------------------------------------------------------


def _shorthand(kind: str, text: str, line: int | None) -> dict[str, tuple[str, int | None]]:
    """``春节 2027-02-06..2027-02-12`` for a holiday, ``2027-02-14 春节`` for a working day."""
    parts = text.split(maxsplit=1)
    if kind == "workdays":
        out = {"date": (parts[0], line)} if parts else {}
        if len(parts) > 1:
            out["name"] = (parts[1], line)
        return out
    head, _, rest = text.rpartition(" ")
    span = rest
    for sep in RANGE_SEPARATORS:
        if sep in span:
            start, _, end = span.partition(sep)
            return {"name": (head, line), "from": (start, line), "to": (end, line)}
    return {"name": (head, line), "from": (span, line)}


def _read_yaml(text: str, source: str, problems: list[Problem]) -> tuple[dict[str, tuple[str, int]], list[_Raw]]:
    bounds = check_yaml(text, source)  # size, depth and alias bombs before any tree is built
    if bounds:
        problems.extend(bounds)
        return {}, []
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problems.append(Problem(source, tr(f"YAML 语法错误：{exc}", f"YAML syntax error: {exc}"),
                                line=mark.line + 1 if mark else None))
        return {}, []
    if not isinstance(root, yaml.MappingNode):
        problems.append(Problem(source, tr("文件应为含 holidays/workdays 的映射", "file must be a mapping with holidays/workdays"), line=1))
        return {}, []
    top: dict[str, tuple[str, int]] = {}
    raws: list[_Raw] = []
    for key_node, value in root.value:
        key = ALIASES.get(str(key_node.value), str(key_node.value))
        line = key_node.start_mark.line + 1
        if key == "year" and isinstance(value, yaml.ScalarNode):
            top["year"] = (str(value.value), line)
        elif key in ("holidays", "workdays") and isinstance(value, yaml.SequenceNode):
            raws += _yaml_entries(key, value, source, problems)
        elif key in ("holidays", "workdays", "year"):
            problems.append(Problem(source, tr("格式不对（应为列表）", "wrong shape (expected a list)"), line=line, field=key))
        else:
            problems.append(Problem(source, tr(f"未知字段 {key}", f"unknown field {key}"), line=line, field=key))
    return top, raws


def _yaml_entries(kind: str, seq: yaml.SequenceNode, source: str, problems: list[Problem]) -> list[_Raw]:
    raws = []
    for i, node in enumerate(seq.value):
        line = node.start_mark.line + 1
        raw = _Raw(kind, f"{kind}[{i}]", line)
        if isinstance(node, yaml.ScalarNode):
            raw.fields = _shorthand(kind, str(node.value).strip(), line)
        elif isinstance(node, yaml.MappingNode):
            for key_node, value in node.value:
                key = ALIASES.get(str(key_node.value), str(key_node.value))
                if not isinstance(value, yaml.ScalarNode) or key in raw.fields:
                    problems.append(Problem(source, tr("重复或不是单个值", "duplicate or not a single value"),
                                            line=key_node.start_mark.line + 1, field=f"{raw.label}.{key}"))
                    continue
                raw.fields[key] = (str(value.value).strip(), value.start_mark.line + 1)
        else:
            problems.append(Problem(source, tr("条目格式不对", "entry has the wrong shape"), line=line, field=raw.label))
            continue
        raws.append(raw)
    return raws


def _read_csv(text: str, source: str, problems: list[Problem]) -> list[_Raw]:
    """Columns kind,name,from,to (or 类型,名称,开始,结束); a working day uses ``from`` only."""
    reader = csv.DictReader(io.StringIO(text))
    header = [ALIASES.get(h.strip(), h.strip()) for h in reader.fieldnames or []]
    missing = {"kind", "name", "from"} - set(header)
    if missing:
        problems.append(Problem(source, tr(f"缺少列：{', '.join(sorted(missing))}", f"missing columns: {', '.join(sorted(missing))}"), line=1))
        return []
    reader.fieldnames = header
    raws = []
    for row in reader:
        line = reader.line_num
        cells = {k: (v or "").strip() for k, v in row.items() if k is not None}
        kind_text = cells.get("kind", "")
        kind = "holidays" if kind_text in HOLIDAY_KINDS else "workdays" if kind_text in WORKDAY_KINDS else ""
        if not kind:
            problems.append(Problem(source, tr(f"类型应为 放假 或 调休上班，而不是 {kind_text!r}", f"kind must be holiday or workday, not {kind_text!r}"), line=line, field="kind"))
            continue
        raw = _Raw(kind, "", line)
        names = {"from": "date"} if kind == "workdays" else {}
        for key in ("name", "from") if kind == "workdays" else ("name", "from", "to"):
            if cells.get(key):
                raw.fields[names.get(key, key)] = (cells[key], line)
        if kind == "workdays" and cells.get("to") and cells["to"] != cells["from"]:
            problems.append(Problem(source, tr("调休上班只填一天", "a working day is a single date"), line=line, field="to"))
        raws.append(raw)
    return raws


# --- checking --------------------------------------------------------------------------------


def _where(raw: _Raw, key: str) -> str:
    """``holidays[2].from`` in YAML; the CSV column name in CSV (a working day's date is ``from``)."""
    if raw.label:
        return f"{raw.label}.{key}"
    return "from" if key == "date" else key


def _date(raw: _Raw, key: str, year: int, source: str, problems: list[Problem]) -> date | None:
    where = _where(raw, key)
    if key not in raw.fields:
        problems.append(Problem(source, tr("缺少日期", "date missing"), line=raw.line, field=where))
        return None
    text, line = raw.fields[key]
    try:
        value = date.fromisoformat(text)
    except ValueError:
        problems.append(Problem(source, tr(f"不是日期（YYYY-MM-DD）：{text!r}", f"not a date (YYYY-MM-DD): {text!r}"), line=line, field=where))
        return None
    if value.year != year:
        problems.append(Problem(source, tr(f"{value} 不在 {year} 年内", f"{value} is not in {year}"), line=line, field=where))
        return None
    return value


def _name(raw: _Raw, required: bool, source: str, problems: list[Problem]) -> str | None:
    where = _where(raw, "name")
    text, line = raw.fields.get("name", ("", raw.line))
    if not text:
        if required:
            problems.append(Problem(source, tr("缺少节日名称", "holiday name missing"), line=line, field=where))
        return None
    if len(text) > NAME_MAX:
        problems.append(Problem(source, tr(f"名称超过 {NAME_MAX} 字", f"name longer than {NAME_MAX}"), line=line, field=where))
        return None
    return text


def _check(raws: list[_Raw], year: int, source: str, problems: list[Problem]) -> Notice:
    holidays: list[NoticeHoliday] = []
    workdays: list[NoticeWorkday] = []
    for raw in raws:
        known = {"name", "from", "to"} if raw.kind == "holidays" else {"name", "date"}
        for key in sorted(set(raw.fields) - known):
            problems.append(Problem(source, tr(f"未知字段 {key}", f"unknown field {key}"), line=raw.fields[key][1], field=_where(raw, key)))
        name = _name(raw, raw.kind == "holidays", source, problems)
        if raw.kind == "workdays":
            day = _date(raw, "date", year, source, problems)
            if day is not None and not is_weekend(day):
                problems.append(Problem(source, tr(f"{day} 不是周末，无需调休上班", f"{day} is not a weekend: it is a working day anyway"), line=raw.line, field=_where(raw, "date")))
            elif day is not None:
                workdays.append(NoticeWorkday(day, name, raw.line))
            continue
        start = _date(raw, "from", year, source, problems)
        end = _date(raw, "to", year, source, problems) if "to" in raw.fields else start
        if start is not None and end is not None and name is not None:
            if end < start:
                problems.append(Problem(source, tr("结束日期早于开始日期", "ends before it starts"), line=raw.fields["to"][1], field=_where(raw, "to")))
            else:
                holidays.append(NoticeHoliday(name, start, end, raw.line))
    if not raws and not problems:
        problems.append(Problem(source, tr("文件中没有放假安排", "the file lists no holidays"), line=1, field="holidays"))
    _check_overlaps(holidays, workdays, source, problems)
    return Notice(year, tuple(holidays), tuple(workdays))


def _check_overlaps(holidays: list[NoticeHoliday], workdays: list[NoticeWorkday], source: str, problems: list[Problem]) -> None:
    taken: dict[date, NoticeHoliday | NoticeWorkday] = {}
    entries: list[NoticeHoliday | NoticeWorkday] = [*holidays, *workdays]
    for entry in sorted(entries, key=lambda e: e.line or 0):
        first, last = (entry.start, entry.end) if isinstance(entry, NoticeHoliday) else (entry.day, entry.day)
        day = first
        while day <= last:
            other = taken.get(day)
            if other is not None:
                problems.append(Problem(source, tr(f"{day} 与第 {other.line} 行重叠", f"{day} overlaps line {other.line}"), line=entry.line, field="holidays" if isinstance(entry, NoticeHoliday) else "workdays"))
                break
            day += timedelta(days=1)
        day = first
        while day <= last:
            taken.setdefault(day, entry)
            day += timedelta(days=1)


def parse_notice(path: str | Path, year: int) -> Notice:
    """Read and check a notice file (``.csv`` → CSV, anything else → YAML); raise with every problem."""
    source = str(path)
    problems: list[Problem] = []
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CalendarFileError(source, [Problem(source, tr(f"无法读取：{exc}", f"cannot read: {exc}"))]) from exc
    if Path(path).suffix.lower() == ".csv":
        raws = _read_csv(text, source, problems)
    else:
        top, raws = _read_yaml(text, source, problems)
        if "year" in top and top["year"][0] != str(year):
            problems.append(Problem(source, tr(f"文件写的是 {top['year'][0]} 年，命令指定 {year} 年", f"file says {top['year'][0]}, --year says {year}"), line=top["year"][1], field="year"))
    notice = _check(raws, year, source, problems)
    if problems:
        raise CalendarFileError(source, problems)
    return notice
