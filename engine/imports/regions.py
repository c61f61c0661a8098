"""Import the administrative-division tree (GB/T 2260 six-digit codes) an office works in.

Level and parent can be left out: the code says both (xx0000 province, xxxx00 city, else county;
a county's parent is its city xxxx00, or the province when that city does not exist, as for the
counties a province administers directly, e.g. 济源市 419001 under 河南省 410000).

A directly administered county whose code does name an existing city (巩义市 410181 under the code
of 郑州市, 邓州市 411381, 永城市 411481 — seed 002's 省直管县(市)) is marked in the file: the column
省直管 = 是 (or a parent code equal to the province's) puts it directly under the province. Such a
county is a peer of the cities: its schools' city-level code is the county itself
(``engine.imports.schools.ancestors``), so it has its own row in the province's views and bulletins
and its own city-level contacts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from engine.i18n import tr
from engine.imports.cells import parse_bool
from engine.imports.mapping import ColumnMapping, resolve_mapping
from engine.imports.staging import (
    ImportResult,
    Problems,
    ProgressCallback,
    Staging,
    check_code,
    connection_for,
    duplicate,
    fold,
)
from engine.imports.tabular import Column, open_table
from engine.models import Region
from engine.text import clean_line

LEVELS = ("province", "city", "county")
LEVEL_NAMES_ZH = {"province": "省级", "city": "市级", "county": "县级"}
_LEVEL_WORDS = {
    "province": {"省", "省级", "自治区", "直辖市", "province"},
    "city": {"市", "市级", "地级", "地级市", "地市", "地区", "自治州", "盟", "city", "prefecture"},
    "county": {"县", "县级", "区", "县区", "区县", "县级市", "旗", "county", "district"},
}
_LEVEL_OF_WORD = {word: level for level, words in _LEVEL_WORDS.items() for word in words}
REQUIRED = ("code", "name")


def level_of_code(code: str) -> str:
    """GB/T 2260: the last four digits zero means a province, the last two a city."""
    if code.endswith("0000"):
        return "province"
    if code.endswith("00"):
        return "city"
    return "county"


def parse_level(value: str) -> str | None:
    return _LEVEL_OF_WORD.get(fold(value).casefold())


def infer_parent(code: str, level: str, known: set[str] | dict[str, str]) -> str | None:
    """The parent the code implies, given which regions exist (None for a province)."""
    if level == "province":
        return None
    province = code[:2] + "0000"
    if level == "city":
        return province
    city = code[:4] + "00"
    return city if city in known else province


@dataclass
class _Row:
    number: int
    code: str
    name: str
    level: str
    parent: str | None


def _read(
    path: str | Path, mapping: ColumnMapping, problems: Problems
) -> tuple[list[_Row], dict[str, Column]]:
    rows: list[_Row] = []
    first_seen: dict[str, int] = {}
    with open_table(path, mapping["regions"], REQUIRED, problems.source) as table:
        cols = table.columns
        for number, cells in table:
            code, error = check_code(cells["code"], 6, "行政区划代码", "region code")
            if error or code is None:
                problems.add(number, cols["code"], error or "")
                continue
            if code.startswith("00"):
                problems.add(number, cols["code"], tr(
                    f"行政区划代码“{code}”无效：省级代码不能以 00 开头", f"region code '{code}' is not valid: no province code starts with 00"
                ))
                continue
            if code in first_seen:
                problems.add(number, cols["code"], duplicate(code, first_seen[code]))
                continue
            first_seen[code] = number
            name = clean_line(cells["name"], "", 10**6)  # control characters and escapes go
            if not name:
                problems.add(number, cols["name"], tr("缺少区划名称", "region name is missing"))
            elif len(name) > 100:
                problems.add(number, cols["name"], tr("区划名称超过 100 个字", "region name longer than 100 characters"))
            level = level_of_code(code)
            given = cells.get("level", "")
            if given and "level" in cols:
                parsed = parse_level(given)
                if parsed is None:
                    problems.add(number, cols["level"], tr(
                        f"级别“{given}”无法识别：应为 省/市/县（或 province/city/county）",
                        f"level '{given}' unknown: use 省/市/县 (or province/city/county)",
                    ))
                elif parsed != level:
                    problems.add(number, cols["level"], tr(
                        f"级别“{given}”与代码 {code} 不符（按 GB/T 2260 该代码是{LEVEL_NAMES_ZH[level]}）",
                        f"level '{given}' contradicts code {code} (by GB/T 2260 it is a {level})",
                    ))
            parent = None
            given_parent = cells.get("parent_code", "")
            if given_parent and "parent_code" in cols:
                parent, error = check_code(given_parent, 6, "上级区划代码", "parent code")
                if error:
                    problems.add(number, cols["parent_code"], error)
            given_direct = cells.get("direct", "")
            if given_direct and "direct" in cols:
                direct = parse_bool(given_direct)
                province = code[:2] + "0000"
                if direct is None:
                    problems.add(number, cols["direct"], tr(f"省直管“{given_direct}”无法识别：应为 是/否",
                                                            f"directly administered '{given_direct}' unknown: use 是/否 (yes/no)"))
                elif direct and level != "county":
                    problems.add(number, cols["direct"], tr(f"只有县级区划可以省直管，{code} 是{LEVEL_NAMES_ZH[level]}",
                                                            f"only a county can be directly administered; {code} is a {level}"))
                elif direct and parent is not None and parent != province:
                    problems.add(number, cols["direct"], tr(f"省直管县的上级应为省 {province}，不是 {parent}",
                                                            f"a directly administered county's parent is the province {province}, not {parent}"))
                elif direct:
                    parent = province
            rows.append(_Row(number, code, name, level, parent))
    return rows, cols


def _resolve_parents(rows: list[_Row], existing: dict[str, str], problems: Problems, cols: dict[str, Column]) -> None:
    known = dict(existing)
    known.update((r.code, r.level) for r in rows)
    rank = {level: i for i, level in enumerate(LEVELS)}
    for row in rows:
        given = row.parent is not None
        parent = row.parent if given else infer_parent(row.code, row.level, known)
        row.parent = parent
        if parent is None:
            continue  # a province, or a malformed parent code (already reported)
        column = cols.get("parent_code") if given else cols.get("code")
        if parent == row.code:
            problems.add(row.number, column, tr("上级区划不能是自己", "a region cannot be its own parent"))
        elif parent not in known:
            problems.add(row.number, column, tr(
                f"上级区划 {parent} 不存在：请先导入或在本文件中列出",
                f"parent region {parent} does not exist: import it first or list it in this file",
            ))
        elif rank[known[parent]] >= rank[row.level]:
            problems.add(row.number, column, tr(
                f"上级区划 {parent} 是{LEVEL_NAMES_ZH[known[parent]]}，不能管辖{LEVEL_NAMES_ZH[row.level]}区划 {row.code}",
                f"parent region {parent} is a {known[parent]} and cannot contain the {row.level} {row.code}",
            ))


def import_regions(
    session: Session | Engine,
    path: str | Path,
    mapping: ColumnMapping | str | Path | None = None,
    progress: ProgressCallback | None = None,
) -> ImportResult:
    """Validate the whole file, then upsert by code; raises ImportFileError and writes nothing
    if any row is wrong."""
    mapping = resolve_mapping(mapping)
    source = str(path)
    problems = Problems(source)
    rows, columns = _read(path, mapping, problems)
    if progress:
        progress(len(rows))
    with connection_for(session) as conn:
        existing = {code: level for code, level in conn.execute(select(Region.code, Region.level))}
        _resolve_parents(rows, existing, problems, columns)
        problems.raise_if_any()
        staging = Staging(conn, Region, "code", ["name", "level", "parent_code"])
        for row in rows:
            staging.add((row.code, row.name, row.level, row.parent))
        inserted, updated, unchanged = staging.merge()
    if isinstance(session, Session):
        session.info.pop("region_levels", None)  # engine.regions remembers levels per session
    return ImportResult("regions", source, len(rows), inserted, updated, unchanged)
