"""Import teachers' progress as the provincial platform exports it: hours, chosen points, evidence.

Rules from the seeds: each teacher studies online ≥ 25 hours and practises ≥ 25 hours in school
(000 "选学内容不少于25学时"; 001 "每位教师从30个微能力点中选取3个能力点学习"), so points are numbers
1..30, at most three, and evidence is counted per chosen point. Teacher records are personal data:
only the platform id, name, school, hours, points and results are kept (DOMAIN.md) — never a
national ID number, not even disguised as a platform account.

Province scale is a million rows: rows are checked as they stream past against the set of school
codes loaded once, staged with executemany/COPY, and merged in one statement at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date
from functools import partial
from operator import itemgetter
from pathlib import Path
from typing import cast

from sqlalchemy import Engine, or_, select, true
from sqlalchemy.orm import Session

from engine.clock import Clock, SystemClock
from engine.db import refresh_statistics
from engine.deadline import local_date
from engine.i18n import tr
from engine.imports.cells import (
    RESULTS,
    looks_like_id_number,
    parse_hours,
    parse_points,
)
from engine.imports.history import (
    VALUES,
    check_as_of,
    drop_temporary,
    earlier_import,
    file_sha256,
    merge_teachers,
    record_import,
    write_history,
)
from engine.imports.kept import adopt, keeping
from engine.imports.mapping import ColumnMapping, resolve_mapping
from engine.imports.split import Check, Record, checked_in_parts, worth_splitting
from engine.imports.staging import (
    HeaderCallback,
    ImportResult,
    Problems,
    ProgressCallback,
    check_code,
    connection_for,
    dry_result,
    duplicate,
    fold,
    missing,
    out_of_scope,
)
from engine.imports.tabular import Column, Table, open_table
from engine.models import School, Teacher
from engine.run_status import refresh_connection
from engine.text import clean_line, is_clean_line

REQUIRED = ("platform_id", "name", "school_code", "online_hours", "practice_hours", "points")
PROGRESS_EVERY = 10_000
LOCAL_TZ = "Asia/Shanghai"  # the default "today" of an export, as plans default to it



FIELDS = (
    "platform_id", "name", "school_code", "online_hours", "practice_hours",
    "points", "evidence_count", "evidence_result", "role",
)
# 人员类型: seed 002 trains 48,890 teachers and 1,260 members of the schools' management teams
# (学校信息化管理团队), and counts both. An empty cell (or no column) is a teacher.
ROLES = {"": "teacher", "教师": "teacher", "学科教师": "teacher", "teacher": "teacher",
         "管理团队": "management", "管理团队成员": "management", "信息化管理团队": "management",
         "学校信息化管理团队": "management", "管理人员": "management", "management": "management"}
_NOT_ASSESSED = ("-", "—", "无", "未测评")
# The happy path's lookups: a text found here is valid as it stands (every other text, valid or
# not, goes through the full checks below, which give the same values and name every problem).
_EVIDENCE_OK = {"": 0, "0": 0, "1": 1, "2": 2, "3": 3}
_RESULT_OK: dict[str, str | None] = {"": None, **dict.fromkeys(_NOT_ASSESSED), **RESULTS}
_CACHE_LIMIT = 100_000  # distinct hour and point texts remembered; a file has a few thousand


class _Rows:
    """Turns a file's rows into staging tuples, reporting every problem with row and column.

    ``run`` checks each row of a million-row file, so the common row costs a handful of dict and
    set lookups: texts of hours and point lists seen before in the file are remembered with their
    values, and a row is only taken through ``full_check`` (every rule, every message) when one
    of its texts is new or the quick checks do not all pass.
    """

    def __init__(self, cols: dict[str, Column], schools: set[str], problems: Problems, scoped: bool = False) -> None:
        self.cols = cols
        self.schools = schools
        self.problems = problems
        self.scoped = scoped
        self.first_seen: dict[str, int] = {}
        self.hours: dict[str, float] = {}
        self.points: dict[str, tuple[str, int]] = {}

    def run(
        self,
        records: Iterable[tuple[int, tuple[str, ...]]],
        add: Callable[[tuple[object, ...]], None],
        progress: ProgressCallback | None,
    ) -> int:
        """Check every row, ``add`` the good ones while the file has no problem; the row count."""
        # Locals, not attributes: this loop body runs a million times.
        hours, points_of, evidence_of = self.hours.get, self.points.get, _EVIDENCE_OK.get
        results, first_seen, schools = _RESULT_OK, self.first_seen, self.schools
        reported, full_check = self.problems.items, self.full_check
        total = 0
        for number, cells in records:
            total += 1
            if progress and total % PROGRESS_EVERY == 0:
                progress(total)
            pid, name, school, online_text, practice_text, points_text, evidence_text, result_text, role_text = cells
            online = hours(online_text)
            practice = hours(practice_text)
            points = points_of(points_text)
            evidence = evidence_of(evidence_text)
            if (
                online is None or practice is None or points is None or evidence is None
                or evidence > points[1] or result_text not in results or role_text not in ROLES
                or not 0 < len(pid) <= 40 or not pid.isascii() or pid in first_seen
                or (len(pid) == 18 and looks_like_id_number(pid))
                or not 0 < len(name) <= 100 or not is_clean_line(name) or school not in schools
            ):
                row = full_check(number, cells)
                if row is not None and not reported:
                    add(row)
                continue
            first_seen[pid] = number
            if not reported:  # once the file is bad, staging more rows is wasted work
                add((pid, name, school, online, practice, points[0], points[1], evidence, results[result_text],
                     ROLES[role_text]))
        return total

    def full_check(self, number: int, cells: tuple[str, ...]) -> tuple[object, ...] | None:
        """Every rule with its message; the row to stage, or None when it has a problem."""
        cols, problems = self.cols, self.problems
        before = len(problems.items) + problems.unlisted
        values = dict(zip(FIELDS, cells, strict=True))

        def bad(field: str, message: str) -> None:
            problems.add(number, cols.get(field), message)  # an optional field may have no column

        pid = fold(values["platform_id"])
        if not pid:
            bad("platform_id", missing("教师编号", "platform teacher id"))
        elif len(pid) > 40:
            bad("platform_id", tr("教师编号超过 40 个字符", "platform teacher id longer than 40 characters"))
        elif looks_like_id_number(pid):
            bad("platform_id", tr(
                "教师编号看起来是身份证号：本系统不保存身份证号，请导出平台的用户编号",
                "the platform teacher id looks like a national ID number: rollout never stores those; export the platform's user id instead",
            ))
        elif pid in self.first_seen:
            bad("platform_id", duplicate(pid, self.first_seen[pid]))
        else:
            self.first_seen[pid] = number
        name = clean_line(values["name"], "", 10**6)  # control characters and terminal escapes go
        if not name:
            bad("name", missing("姓名", "name"))
        elif len(name) > 100:
            bad("name", tr("姓名超过 100 个字", "name longer than 100 characters"))
        school: str | None = values["school_code"]
        if school not in self.schools:  # the fast path is a plain set lookup
            school, error = check_code(values["school_code"], 10, "学校标识码", "school code")
            if error:
                bad("school_code", error)
            elif school not in self.schools and self.scoped:
                bad("school_code", out_of_scope("学校", "school", str(school)))
            elif school not in self.schools:
                bad("school_code", tr(f"学校 {school} 不存在：请先导入学校", f"unknown school {school}: import the schools first"))
        hours: list[float | None] = []
        for field in ("online_hours", "practice_hours"):
            value, error = parse_hours(values[field])
            if error:
                bad(field, error)
            elif len(self.hours) < _CACHE_LIMIT:
                self.hours[values[field]] = cast(float, value)
            hours.append(value)
        points, error = parse_points(values["points"])
        joined = ",".join(map(str, points))
        if error:
            bad("points", error)
        elif len(self.points) < _CACHE_LIMIT:
            self.points[values["points"]] = (joined, len(points))
        evidence = 0
        raw = fold(values["evidence_count"])
        if raw:
            evidence = int(raw) if raw.isascii() and raw.isdigit() else -1
            if evidence < 0 or (not error and evidence > len(points)):  # bad points: one problem, not two
                bad("evidence_count", tr(
                    f"提交作品数“{raw}”应为 0 到所选能力点数（{len(points)}）之间的整数",
                    f"evidence count '{raw}' must be a whole number from 0 to the points chosen ({len(points)})",
                ))
        result: str | None = None
        raw = fold(values["evidence_result"])
        if raw and raw not in _NOT_ASSESSED:
            result = RESULTS.get(raw.casefold())
            if result is None:
                bad("evidence_result", tr(
                    f"测评结果“{raw}”无法识别：应为 优秀/合格/不合格 或留空",
                    f"evidence result '{raw}' unknown: use excellent/pass/fail or leave it empty",
                ))
        role = ROLES.get(fold(values["role"]).casefold())
        if role is None:
            bad("role", tr(f"人员类型“{values['role']}”无法识别：应为 教师/管理团队 或留空",
                           f"role '{values['role']}' unknown: use 教师 (teacher) / 管理团队 (management) or leave it empty"))
        if len(problems.items) + problems.unlisted != before:
            return None
        return (pid, name, school, hours[0], hours[1], joined, len(points), evidence, result, role)


def _part_check(table: Table, schools: set[str], source: str, scoped: bool) -> Check:
    """The checks of a part of the file (``engine.imports.split``): whether it has no problem."""
    def check(records: Iterable[Record], add: Callable[[tuple[object, ...]], None]) -> bool:
        problems = Problems(source)
        _Rows(table.columns, schools, problems, scoped).run(records, add, None)
        return not problems.items and not problems.unlisted
    return check


def import_progress(
    session_or_engine: Session | Engine,
    path: str | Path,
    mapping: ColumnMapping | str | Path | None = None,
    progress: ProgressCallback | None = None,
    *,
    as_of: date | None = None,
    full: bool = False,
    actor: str = "system",
    clock: Clock | None = None,
    file_name: str | None = None,
    mapping_name: str | None = None,
    dry_run: bool = False,
    scope: str | None = None,
    source: str | None = None,
    on_header: HeaderCallback | None = None,
    keep: str | None = None,
    staged: str | None = None,
) -> ImportResult:
    """Validate the whole file, then upsert by platform id; raises ImportFileError listing every
    bad row and writes nothing if any row is wrong. ``progress(rows)`` is called as rows pass.

    Every accepted file that changes something is recorded (``engine.imports.history``): the
    figures it changed as of ``as_of`` (the export's date; default today by ``clock``), and an
    audit event naming the file, its SHA-256, the mapping and ``actor``. The same bytes imported
    again change nothing and are not recorded again: the result's ``same_as`` names the earlier
    import. ``full`` means the file lists every teacher, so teachers it omits are marked as left
    the school (gates stop counting them); without it nothing is removed. ``file_name`` is the
    name to record when ``path`` is a temporary copy (a web upload); ``mapping_name`` the mapping's
    name when ``mapping`` is already loaded.

    ``dry_run`` stops before the merge and returns what it would do per school (the upload
    preview); ``scope`` (a region code) makes a row of a school outside that region a problem,
    never written (engine/access.py ``upload_scope``); ``source`` names the file in problems
    (an upload is stored under another name than the clerk's). ``keep`` (a dry run's) and
    ``staged`` (the commit's) name the upload whose checked rows the preview keeps and the commit
    merges without reading the file again (engine/imports/kept.py)."""
    clock = clock or SystemClock()
    now = clock.now()
    as_of = as_of or local_date(now, LOCAL_TZ)
    if mapping_name is None and isinstance(mapping, str | Path):
        mapping_name = Path(mapping).name
    mapping = resolve_mapping(mapping)
    source = source or str(path)
    name = file_name or Path(source).name
    problems = Problems(source)
    total = 0
    sha = file_sha256(path)
    with connection_for(session_or_engine) as conn:
        check_as_of(conn, source, as_of)
        query = select(School.code)
        if scope is not None:
            query = query.where(or_(School.county_code == scope, School.city_code == scope,
                                    School.province_code == scope))
        schools = set(conn.scalars(query))
        if staged is not None:
            staging = adopt(conn, Teacher, "platform_id", VALUES, staged, schools, problems, scope is not None)
            total = staging.rows
        else:
            staging = keeping(conn, Teacher, "platform_id", VALUES, keep if dry_run else None, binary=True)
            with open_table(path, mapping["teachers"], REQUIRED, source) as table:
                if on_header:
                    on_header(table.header_row, table.columns)
                found, workers = None, worth_splitting(table)
                if workers:  # a large file: checked on every core while it is good
                    with staging.stream():  # keyed by platform id (itemgetter: no Python call per row)
                        found = checked_in_parts(table, FIELDS, _part_check(table, schools, source, scope is not None),
                                                 staging.extend, itemgetter(0), progress, workers)
                    if found is None:
                        staging.clear()
                if found is None:  # read here: problems are this read's, named with their rows
                    with staging.stream():
                        found = _Rows(table.columns, schools, problems, scope is not None).run(
                            table.records(FIELDS), staging.add, progress)
                total = found
        if progress:
            progress(total)
        if problems:
            staging.drop()
        problems.raise_if_any()
        if dry_run:
            return dry_result("progress", source, total, staging.count("school_code"))
        same_as = earlier_import(conn, sha)
        counts = merge_teachers(conn, staging, as_of, full)
        changed = bool(counts.inserted or counts.updated or counts.left)
        import_id = None
        history: Callable[[], None] = partial(drop_temporary, conn)
        if changed or same_as is None:  # the same bytes again, changing nothing, are no new fact
            import_id = record_import(
                conn, at=now, as_of=as_of, file_name=name, sha256=sha,
                mapping=mapping_name or "built-in", actor=actor, full=full,
                total=total, counts=counts,
            )
            history = partial(write_history, conn, counts, import_id)
        if not changed:
            history()
        else:  # gates read teachers' progress: every run's verdict may move
            # The history is written while the verdicts are judged (it reads only the merge's rows).
            refresh_connection(conn, true(), dates=False, meanwhile=history)
            # The history grew and verdicts moved; the teachers' own columns the planner reads
            # (school, platform id, left) change only with teachers who came or left.
            grown = ("teacher",) if counts.inserted or counts.left else ()
            refresh_statistics(conn, ("teacher_progress", "school_run", *grown))
    return ImportResult(
        "progress", source, total, counts.inserted, counts.updated, counts.unchanged,
        left=counts.left, import_id=import_id, sha256=sha, as_of=as_of, same_as=same_as,
    )
