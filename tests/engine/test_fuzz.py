"""Fuzzing what offices send (issue 12, "keep it fixed"): CSV, XLSX, workflow and plan files.

Each file is built from the pieces that broke things before — BOMs before GBK bytes, NUL bytes,
formula-like and full-width text, ``2_5`` and ``1e2`` hours, cells under no header, huge fields,
aliases and deep nesting, control characters — mixed at random. Whatever comes in, the answer is a
success or a ``RolloutError`` (one clear error naming the file), never another exception, and a
refused file leaves the database exactly as it was.

Bounded and deterministic in the suite (``derandomize``: the same examples every run, a few
seconds); ``make fuzz`` runs many more (``ROLLOUT_FUZZ_EXAMPLES``).
"""

from __future__ import annotations

import os
import uuid
from io import BytesIO
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import FixedClock
from engine.db import transaction
from engine.errors import RolloutError
from engine.imports import import_progress
from engine.models import AuditEvent, Plan, SchoolRun, Teacher
from engine.plan import load_plan
from engine.workflow import load_workflow_text
from tests.engine.builders import ALL_SCHOOLS, WORKFLOW_PATH, plan_data, seed

EXAMPLES = int(os.environ.get("ROLLOUT_FUZZ_EXAMPLES", "15"))
FUZZ = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])

HEADERS = ["教师编号", "姓名", "学校标识码", "线上学时", "校本实践学时", "能力点", "提交作品数", "测评结果",
           "备注", "身份证号", "", "=HYPERLINK(\"x\")"]
CELLS = st.one_of(
    st.sampled_from(["", "T0001", "张三", "25", "30.5", "2_5", "1e2", "nan", "inf", "-1", "２５", "1001",
                     "3,11,15", "3、11、15", "1,2,3,4", "31", "3", "合格", "优秀", "不合格", "maybe", "=1+1",
                     "@SUM(A1)", "\t=1", "\x1b[2J张三", "\u202e学校", "T\x0001", "\ufeffT0002", '"quoted"',
                     "line\nbreak", "110101199003077777", "x" * 140_000, "3.7032300e+09"]),
    st.sampled_from(ALL_SCHOOLS),
    st.text(max_size=12),
)


def _snapshot(db: Engine) -> tuple[object, ...]:
    with Session(db) as s:
        return (tuple(s.execute(select(Teacher.__table__).order_by(Teacher.id)).all()),
                s.scalar(select(func.count()).select_from(AuditEvent)), s.scalar(select(func.count()).select_from(Plan)),
                s.scalar(select(func.count()).select_from(SchoolRun)))


def _seeded(factory: sessionmaker[Session], clock: FixedClock) -> None:
    with transaction(factory) as s:
        seed(s, clock)


def _check(db: Engine, attempt: object) -> None:
    """The property: success or a RolloutError, and a refusal changes nothing."""
    before = _snapshot(db)
    try:
        attempt()  # type: ignore[operator]
    except RolloutError as exc:
        assert str(exc).strip()
        assert _snapshot(db) == before


rows_strategy = st.lists(st.lists(CELLS, min_size=0, max_size=10), min_size=0, max_size=6)
header_strategy = st.one_of(st.just(HEADERS[:8]), st.lists(st.sampled_from(HEADERS), min_size=1, max_size=10))


@FUZZ
@given(header=header_strategy, rows=rows_strategy,
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "gb18030", "bom+gbk", "utf-16"]),
       delimiter=st.sampled_from([",", "\t", ";"]), garbage=st.binary(max_size=40))
def test_csv_progress_files(db: Engine, factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path,
                            header: list[str], rows: list[list[str]], encoding: str, delimiter: str, garbage: bytes) -> None:
    if not _snapshot(db)[3] and not _has_schools(db):
        _seeded(factory, clock)
    text = "\r\n".join(delimiter.join(_quote(c, delimiter) for c in row) for row in [header, *rows])
    if encoding == "bom+gbk":
        data = b"\xef\xbb\xbf" + text.encode("gbk", errors="replace") + garbage
    else:
        data = text.encode(encoding, errors="replace")
    path = tmp_path / f"{uuid.uuid4().hex}.csv"
    path.write_bytes(data)
    _check(db, lambda: import_progress(db, path))


@FUZZ
@given(header=header_strategy, rows=rows_strategy, cut=st.integers(min_value=0, max_value=100),
       far=st.sampled_from([None, "XFD1048576", "AA70", "ZZ2000"]))
def test_xlsx_progress_files(db: Engine, factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path,
                             header: list[str], rows: list[list[str]], cut: int, far: str | None) -> None:
    if not _has_schools(db):
        _seeded(factory, clock)
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in [header, *rows]:
        sheet.append([ILLEGAL_CHARACTERS_RE.sub("", c)[:30_000] for c in row])  # openpyxl refuses those itself
    if far:
        sheet[far] = "x"
    out = BytesIO()
    book.save(out)
    data = out.getvalue()
    if cut < 20:  # a truncated download
        data = data[: len(data) * cut // 20]
    path = tmp_path / f"{uuid.uuid4().hex}.xlsx"
    path.write_bytes(data)
    _check(db, lambda: import_progress(db, path))


SHIPPED = WORKFLOW_PATH.read_text(encoding="utf-8").splitlines()
SNIPPETS = st.sampled_from([
    "", "  - &a [x, x, x]", "b: &b [*a, *a, *a]", "c: [*b, *b]", "x: " + "[" * 60 + "]" * 60, "\x00", "\x07",
    "\t- {trigger: advance}", "version: 2", "stages: []", "  - id: done", "    gates: [{metric: nope}]",
    "roles: {county_office: {zh: 县}}", ": :", "'unterminated", "- [", "metrics: {m: {kind: fact}}",
    "workflow: whole-school-2.0", "  due: {after_stage_entry: -5}", "    range: [5, 1]",
])


@FUZZ
@given(edits=st.lists(st.tuples(st.integers(min_value=0, max_value=len(SHIPPED)), st.booleans(), SNIPPETS), max_size=6))
def test_workflow_files(edits: list[tuple[int, bool, str]]) -> None:
    lines = list(SHIPPED)
    for at, replace, snippet in edits:
        if replace and at < len(lines):
            lines[at] = snippet
        else:
            lines.insert(at, snippet)
    try:
        load_workflow_text("\n".join(lines), "fuzz.yaml")
    except RolloutError as exc:
        assert "fuzz.yaml" in str(exc)


PLAN_VALUES = st.one_of(st.sampled_from(["2021-13-45", "yesterday", None, [], {}, -1, 10**30, "&a", "*a", "\x00",
                                         "x" * 1000, "planning", "nope", ALL_SCHOOLS[0], [ALL_SCHOOLS[0]] * 3]),
                        st.text(max_size=8), st.integers())
PLAN_KEYS = st.sampled_from(["plan", "title", "workflow", "workflow_version", "year", "timezone", "region",
                             "final_deadline", "extension_cap", "batches", "surprise"])
BATCH_KEYS = st.sampled_from(["id", "title", "start", "start_stage", "share", "schools", "deadlines", "odd"])


@FUZZ
@given(top=st.dictionaries(PLAN_KEYS, PLAN_VALUES, max_size=3), batch=st.dictionaries(BATCH_KEYS, PLAN_VALUES, max_size=3),
       raw=st.sampled_from(["", "\x00", "a: &a [1]\nb: [*a]\n", "[" * 100, "plan: [\n"]))
def test_plan_files(db: Engine, factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path,
                    top: dict[str, object], batch: dict[str, object], raw: str) -> None:
    if not _has_schools(db):
        _seeded(factory, clock)
    data = plan_data(plan=f"p-{uuid.uuid4().hex[:8]}")
    data.update(top)
    if isinstance(data.get("batches"), list) and data["batches"]:
        data["batches"][0] = {**data["batches"][0], **batch}
    path = tmp_path / f"{uuid.uuid4().hex}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True) + raw, encoding="utf-8")

    def attempt() -> None:
        with transaction(factory) as s:
            load_plan(s, path, clock)

    _check(db, attempt)


def _has_schools(db: Engine) -> bool:
    from engine.models import School

    with Session(db) as s:
        return bool(s.scalar(select(func.count()).select_from(School)))


def _quote(cell: str, delimiter: str) -> str:
    if any(ch in cell for ch in (delimiter, '"', "\n", "\r")):
        return '"' + cell.replace('"', '""') + '"'
    return cell
