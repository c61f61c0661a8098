"""Hostile YAML (issue 12, Medium 4 and the YAML items of Low): a bounded, located refusal.

A 377-byte workflow of nested aliases used 2.9 GB and hit MemoryError after 45 s, a plan file the
same; a 63 MB workflow took 2 minutes and 1.8 GB; a NUL byte raised ReaderError and deep nesting
RecursionError, both as tracebacks. Every reader of office YAML (workflow, plan, calendar notice,
column mapping) must answer with one problem that names the place.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from engine.calendar import parse_notice
from engine.clock import FixedClock
from engine.db import transaction
from engine.errors import ImportFileError, PlanFileError, RolloutError
from engine.imports import load_mapping
from engine.plan import load_plan
from engine.workflow import WORKFLOWS_DIR, load_workflow_file, validate_files
from engine.yaml_source import MAX_DEPTH, check_yaml, read_yaml
from tests.engine.builders import seed

# Nine levels of nine: 9**9 = 387 million strings once expanded (the 377-byte file of the report).
BOMB = "a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n" + "".join(
    f"{b}: &{b} [{','.join(['*' + a] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True))
DEEP = "a: " + "[" * 5000 + "]" * 5000 + "\n"
NUL = "workflow: x\nversion: \"1\x00\"\n"
CONTROL = "plan: p\ntitle: \x07bell\n"
HUGE = "a: [" + ",".join(["1"] * 1_100_000) + "]\n"


def test_the_bomb_is_small_and_refused_at_the_nested_alias() -> None:
    assert len(BOMB.encode()) < 400
    (problem,) = check_yaml(BOMB, "w.yaml")
    assert (problem.line, problem.column) == (3, 8) and "*b" in problem.message  # b holds aliases of a


@pytest.mark.parametrize("text,line,words", [(DEEP, 1, f"{MAX_DEPTH} 层"), (NUL, 2, "U+0000"), (CONTROL, 2, "U+0007"),
                                             (HUGE, 1, "太大")])
def test_each_bound_is_one_located_problem(text: str, line: int, words: str) -> None:
    doc = read_yaml(text, "f.yaml")
    assert doc.data is None
    (problem,) = doc.problems
    assert problem.line == line and words in problem.message and problem.source == "f.yaml"


def test_reuse_of_a_plain_anchored_value_is_allowed() -> None:
    """The shipped workflows name a title once (``&advance``) and repeat it (``*advance``)."""
    text = "t: &title {zh: 推进, en: Advance}\nx: [*title, *title, *title]\n"
    doc = read_yaml(text, "f.yaml")
    assert doc.problems == [] and doc.data["x"] == [{"zh": "推进", "en": "Advance"}] * 3
    assert all(problems == [] for problems in validate_files(sorted(WORKFLOWS_DIR.glob("*.yaml"))).values())


@pytest.mark.parametrize("text", [BOMB, DEEP, NUL, HUGE])
def test_workflow_files(tmp_path: Path, text: str) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RolloutError) as caught:
        load_workflow_file(path)
    assert str(path) in str(caught.value) and len(caught.value.problems) == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("text", [BOMB, DEEP, NUL, CONTROL])
def test_plan_files_write_nothing(factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path, text: str) -> None:
    with transaction(factory) as s:
        seed(s, clock)
    path = tmp_path / "plan.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PlanFileError) as caught, transaction(factory) as s:
        load_plan(s, path, clock)
    assert caught.value.problems[0].line is not None


def test_plan_file_not_utf8(factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_bytes("plan: 计划\n".encode("gbk"))
    with pytest.raises(PlanFileError, match="UTF-8"), transaction(factory) as s:
        load_plan(s, path, clock)


@pytest.mark.parametrize("text", [BOMB, DEEP, NUL])
def test_calendar_notice_and_mapping_files(tmp_path: Path, text: str) -> None:
    notice, mapping = tmp_path / "2027.yaml", tmp_path / "mapping.yaml"
    notice.write_text(text, encoding="utf-8")
    mapping.write_text(text, encoding="utf-8")
    with pytest.raises(ImportFileError):
        parse_notice(notice, 2027)
    with pytest.raises(ImportFileError):
        load_mapping(mapping)
