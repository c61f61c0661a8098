"""The layout's promises, checked: contracts that cover every module, a public API that exists and
is documented, modules short enough to read in one sitting.

import-linter itself (``make lint``) checks that the code keeps the contracts in ``.importlinter``;
these tests check that the contracts still say what docs/architecture.md says they do, so a new
module cannot slip past them.
"""

from __future__ import annotations

import configparser
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS = ROOT / ".importlinter"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
PUBLIC = ["engine", "engine.workflow", "engine.audit", "engine.imports", "engine.calendar", "engine.forecast",
          "notifications", "service", "web"]
PARTS = ["engine.workflow", "engine.audit", "engine.imports", "engine.calendar", "engine.forecast"]
MAX_LINES = 400


def contracts() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(CONTRACTS, encoding="utf-8")
    return parser


def listed(section: str, key: str) -> list[str]:
    return [line.strip() for line in contracts()[section][key].splitlines() if line.strip()]


def engine_top_modules() -> set[str]:
    out = {f"engine.{p.stem}" for p in (ROOT / "engine").glob("*.py") if p.name != "__init__.py"}
    return out


def test_every_engine_module_is_protected_or_a_public_part() -> None:
    protected = set(listed("importlinter:contract:engine-api", "protected_modules"))
    packages = {f"engine.{p.name}" for p in (ROOT / "engine").iterdir()
                if (p / "__init__.py").is_file() and p.name != "migrations"}
    assert packages == set(PARTS), "a new engine package needs a public API and a line in PARTS"
    assert engine_top_modules() <= protected, sorted(engine_top_modules() - protected)
    assert {f"{p}.*" for p in PARTS} <= protected


def test_every_engine_module_sits_on_a_layer() -> None:
    layers = " ".join(listed("importlinter:contract:engine-layers", "layers"))
    named = {f"engine.{name}" for name in re.findall(r"[a-z_0-9]+", layers)}
    expected = (engine_top_modules() | set(PARTS)) - {"engine.migrations_filter"}
    assert expected <= named, sorted(expected - named)


@pytest.mark.parametrize("package", PUBLIC)
def test_public_names_exist_and_are_documented(package: str) -> None:
    module = importlib.import_module(package)
    exported = list(module.__all__)
    assert len(exported) == len(set(exported)), f"{package}.__all__ names something twice"
    assert [n for n in exported if not hasattr(module, n)] == []
    doc = ARCHITECTURE.read_text(encoding="utf-8")
    line = next((ln for ln in doc.splitlines() if ln.startswith(f"- **`{package}`**")), None)
    assert line is not None, f"docs/architecture.md '## Public API' has no line for {package}"
    assert set(re.findall(r"`(\w+)`", line.split("—", 1)[1])) == set(exported)


def test_modules_read_in_one_sitting() -> None:
    long = []
    for package in ("engine", "notifications", "service", "web", "cli"):
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            lines = len(path.read_text(encoding="utf-8").splitlines())
            if lines >= MAX_LINES:
                long.append(f"{path.relative_to(ROOT)}: {lines}")
    assert long == [], f"modules of {MAX_LINES} lines or more: {long}"


def test_import_linter_contracts_hold() -> None:
    """The same check as ``make lint``, so a broken layer also fails the test suite."""
    pytest.importorskip("importlinter")
    command = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(command), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout
