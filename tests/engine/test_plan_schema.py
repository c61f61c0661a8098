"""engine/plan.schema.json and the plan loader (engine/plan.py) agree, and the documented plans are valid.

The loader checks plan files by hand (it also needs the database: workflows, stages, schools); the
schema is for editors and other tools. They agree on the keys, on what is required, and on every
structural refusal below: a file one refuses, the other refuses too, at the same key.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator, FormatChecker
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import FixedClock
from engine.db import transaction
from engine.errors import PlanFileError
from engine.plan import BATCH_KEYS, PLAN_KEYS, SELECTOR_KEYS, parse_plan
from tests.engine.builders import plan_data, seed

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "engine" / "plan.schema.json").read_text(encoding="utf-8"))
VALIDATOR = Draft202012Validator(SCHEMA, format_checker=FormatChecker())


def as_json(data: Any) -> Any:
    """What YAML gives (dates as date objects) as the JSON the schema describes."""
    return json.loads(json.dumps(data, default=lambda v: v.isoformat() if isinstance(v, date) else str(v)))


def schema_errors(data: dict[str, Any]) -> list[str]:
    return sorted("/".join(map(str, e.absolute_path)) for e in VALIDATOR.iter_errors(as_json(data)))


def loader_problems(factory: sessionmaker[Session], data: dict[str, Any]) -> list[str]:
    with transaction(factory) as s:
        try:
            parse_plan(s, yaml.safe_dump(as_json(data), allow_unicode=True), "plan.yaml")
        except PlanFileError as exc:
            return [p.field or "" for p in exc.problems]
    return []


def test_schema_is_a_valid_schema() -> None:
    Draft202012Validator.check_schema(SCHEMA)


def test_the_same_keys() -> None:
    assert set(SCHEMA["properties"]) == PLAN_KEYS
    assert set(SCHEMA["$defs"]["batch"]["properties"]) == BATCH_KEYS
    assert set(SCHEMA["$defs"]["selector"]["oneOf"][1]["properties"]) == SELECTOR_KEYS
    assert set(SCHEMA["required"]) == {"plan", "workflow", "year", "batches"}


def _set(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(data)
    target = out
    for key in path[:-1]:
        target = target[key]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return out


class _Delete:
    """Marks a key to remove; a stable repr keeps the test ids the same in every worker."""

    def __repr__(self) -> str:
        return "<deleted>"


DELETE = _Delete()
BAD = [
    (("deadline",), "2022-11-30"),                  # unknown key
    (("year",), "2021"),                            # a year as text
    (("year",), 1999),
    (("plan",), ""),
    (("batches",), {"id": "b1"}),                   # not a list
    (("final_deadline",), "2022-13-01"),
    (("batches", 0, "share"), 1.5),
    (("batches", 0, "share"), True),
    (("batches", 0, "colour"), "red"),              # unknown batch key
    (("batches", 0, "start"), "next monday"),
    (("batches", 0, "schools"), {"pilots": True}),  # unknown selector
    (("batches", 0, "schools"), {"pilot": False}),  # only true
    (("batches", 0, "schools"), {}),                # selects nothing
    (("batches", 0, "schools"), "all"),
    (("batches", 0, "deadlines"), ["2021-12-31"]),
    (("batches", 0, "deadlines", "pilot"), "soon"),
    (("final_deadline_binds",), "planning"),       # a list of stage ids
    (("workflow",), DELETE),
    (("batches", 0, "start"), DELETE),
    (("batches", 0, "schools"), DELETE),
]


@pytest.mark.parametrize(("path", "value"), BAD, ids=[f"{'.'.join(map(str, p))}={v!r}" for p, v in BAD])
def test_both_refuse(factory: sessionmaker[Session], clock: FixedClock, path: tuple[Any, ...], value: Any) -> None:
    with transaction(factory) as s:
        seed(s, clock)
    good = plan_data()
    assert schema_errors(good) == [] and loader_problems(factory, good) == []
    bad = _set(good, path, value)
    assert schema_errors(bad), f"the schema accepts {path}={value!r}"
    assert loader_problems(factory, bad), f"the loader accepts {path}={value!r}"


def documented_plans() -> list[tuple[str, str]]:
    """Every plan shown in docs/plan-files.md and README.md, and the example file."""
    found = [("docs/examples/yiyuan-2021.yaml", (ROOT / "docs" / "examples" / "yiyuan-2021.yaml").read_text(encoding="utf-8"))]
    for page in ("docs/plan-files.md", "README.md"):
        text = (ROOT / page).read_text(encoding="utf-8")
        for n, block in enumerate(re.findall(r"^```yaml\n(.*?)^```", text, re.M | re.S)):
            if re.search(r"^plan:", block, re.M):
                found.append((f"{page} #{n + 1}", block))
    return found


@pytest.mark.parametrize(("where", "text"), documented_plans(), ids=[w for w, _ in documented_plans()])
def test_documented_plans_are_valid(where: str, text: str) -> None:
    assert schema_errors(yaml.safe_load(text)) == [], where


def test_docs_show_both_seed_plans() -> None:
    names = {yaml.safe_load(text)["plan"] for _, text in documented_plans()}
    assert {"yiyuan-2021", "jiangsu-2020"} <= names
