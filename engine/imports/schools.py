"""Import schools: the unit that moves through the programme (整校推进, whole-school advancement).

A school hangs under a county-level region (the county office is the responsible body, 责任主体);
its city and province codes are copied from the region tree so progress by city or province is one
GROUP BY.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, Engine, not_, or_, select
from sqlalchemy.orm import Session

from engine.db import refresh_statistics
from engine.i18n import tr
from engine.imports.cells import BOOL_WORDS, parse_bool
from engine.imports.mapping import ColumnMapping, resolve_mapping
from engine.imports.staging import (
    HeaderCallback,
    ImportResult,
    Problems,
    ProgressCallback,
    Staging,
    check_code,
    connection_for,
    dry_result,
    duplicate,
    fold,
    missing,
    out_of_scope,
)
from engine.imports.tabular import open_table
from engine.models import Region, School
from engine.tally import retally_all
from engine.text import clean_line

REQUIRED = ("code", "name", "county_code", "kind", "rural")
KINDS = {
    "kindergarten": ("幼儿园", "学前", "学前教育", "kindergarten"),
    "primary": ("小学", "primary"),
    "junior": ("初中", "初级中学", "junior"),
    "senior": ("高中", "高级中学", "普通高中", "senior"),
    "nine_year": ("九年一贯制", "九年一贯制学校", "nine_year"),
    "complete_secondary": ("完全中学", "完中", "complete_secondary"),
    "vocational": ("中职", "中等职业学校", "职业高中", "职高", "中专", "vocational"),
    "special": ("特殊教育", "特殊教育学校", "特教", "special"),
}
_KIND_OF_WORD = {word.casefold(): kind for kind, words in KINDS.items() for word in words}
_KIND_HINT = "幼儿园/小学/初中/高中/九年一贯制/完全中学/中职/特殊教育"


def parse_kind(value: str) -> str | None:
    return _KIND_OF_WORD.get(fold(value).casefold())


def _region_tree(conn: Connection) -> dict[str, tuple[str, str | None]]:
    rows = conn.execute(select(Region.code, Region.level, Region.parent_code))
    return {code: (level, parent) for code, level, parent in rows}


def ancestors(county: str, tree: dict[str, tuple[str, str | None]]) -> tuple[str | None, str | None]:
    """(city_code, province_code) of a county. A county the province runs directly (省直管县(市),
    济源示范区) is its own city-level unit: seed 002 addresses them beside the 省辖市, so the province
    view ranks them as peers of the cities and their city-level escalations go to their own office
    (they used to share one row "?" and lose those escalations)."""
    city: str | None = None
    province: str | None = None
    code = tree[county][1]
    while code is not None and code in tree:
        level, parent = tree[code]
        if level == "city" and city is None:
            city = code
        elif level == "province":
            province = code
            break
        code = parent
    if city is None and province is not None:
        city = county
    return city, province


def import_schools(
    session: Session | Engine,
    path: str | Path,
    mapping: ColumnMapping | str | Path | None = None,
    progress: ProgressCallback | None = None,
    *,
    dry_run: bool = False,
    scope: str | None = None,
    source: str | None = None,
    on_header: HeaderCallback | None = None,
) -> ImportResult:
    """Validate every row against the region tree, then upsert by school code (学校标识码);
    raises ImportFileError and writes nothing if any row is wrong.

    ``dry_run`` returns what would change per county without writing (the upload preview);
    ``scope`` (a region code) makes a county outside that region, or a school code another
    region already holds, a problem of its row; ``source`` names the file in problems."""
    mapping = resolve_mapping(mapping)
    source = source or str(path)
    problems = Problems(source)
    first_seen: dict[str, int] = {}
    total = 0
    with connection_for(session) as conn:
        tree = _region_tree(conn)
        foreign: set[str] = set()  # schools held by another region than the uploader's
        if scope is not None:
            foreign = set(conn.scalars(select(School.code).where(not_(or_(
                School.county_code == scope, School.city_code == scope, School.province_code == scope)))))
        staging = Staging(
            conn,
            School,
            "code",
            ["name", "county_code", "city_code", "province_code", "kind", "rural", "pilot"],
        )
        with open_table(path, mapping["schools"], REQUIRED, source) as table:
            cols = table.columns
            if on_header:
                on_header(table.header_row, cols)
            for number, cells in table:
                total += 1
                if progress and total % 10_000 == 0:
                    progress(total)
                code, error = check_code(cells["code"], 10, "学校标识码", "school code")
                if error:
                    problems.add(number, cols["code"], error)
                elif code in first_seen:
                    problems.add(number, cols["code"], duplicate(str(code), first_seen[str(code)]))
                elif code is not None:
                    first_seen[code] = number
                    if code in foreign:
                        problems.add(number, cols["code"], out_of_scope("学校", "school", code))
                name = clean_line(cells["name"], "", 10**6)  # control characters and escapes go
                if not name:
                    problems.add(number, cols["name"], missing("学校名称", "school name"))
                elif len(name) > 200:
                    problems.add(number, cols["name"], tr("学校名称超过 200 个字", "school name longer than 200 characters"))
                county, error = check_code(cells["county_code"], 6, "县区代码", "county code")
                if error:
                    problems.add(number, cols["county_code"], error)
                elif county not in tree:
                    problems.add(number, cols["county_code"], tr(
                        f"县区 {county} 不存在：请先导入行政区划", f"unknown county {county}: import the regions first"
                    ))
                elif tree[str(county)][0] != "county":
                    problems.add(number, cols["county_code"], tr(
                        f"{county} 不是县级区划：学校应挂在县/区下", f"{county} is not a county-level region: a school belongs to a county or district"
                    ))
                elif scope is not None and scope != county and scope not in ancestors(str(county), tree):
                    problems.add(number, cols["county_code"], out_of_scope("县区", "county", str(county)))
                kind = parse_kind(cells["kind"])
                if kind is None:
                    raw = cells["kind"]
                    problems.add(number, cols["kind"], missing("学段/类型", "school kind") if not raw else tr(
                        f"学段/类型“{raw}”无法识别：应为 {_KIND_HINT}", f"school kind '{raw}' unknown: use {_KIND_HINT} or {', '.join(KINDS)}"
                    ))
                rural = parse_bool(cells["rural"])
                if rural is None:
                    raw = cells["rural"]
                    problems.add(number, cols["rural"], missing("是否农村", "rural flag") if not raw else tr(
                        f"“{raw}”不是 {BOOL_WORDS}", f"'{raw}' is not one of {BOOL_WORDS}"
                    ))
                pilot: bool | None = False
                if cells.get("pilot"):
                    pilot = parse_bool(cells["pilot"])
                    if pilot is None:
                        problems.add(number, cols["pilot"], tr(
                            f"“{cells['pilot']}”不是 {BOOL_WORDS}", f"'{cells['pilot']}' is not one of {BOOL_WORDS}"
                        ))
                if problems:
                    continue  # once a file is bad, staging more rows is wasted work
                city, province = ancestors(str(county), tree)
                staging.add((code, name, county, city, province, kind, rural, pilot))
        if progress:
            progress(total)
        if problems:
            staging.drop()
        problems.raise_if_any()
        if dry_run:
            return dry_result("schools", source, total, staging.count("county_code"))
        inserted, updated, unchanged = staging.merge()
        if updated:  # a school moved to another county: the counts of both counties change
            retally_all(conn)
        if inserted:
            refresh_statistics(conn)
    return ImportResult("schools", source, total, inserted, updated, unchanged)
