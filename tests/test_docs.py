"""Keep the docs from drifting away from the code.

The README's command reference must list exactly the commands the ``rollout`` app has (a new
command without a line there fails here, on purpose), docs/architecture.md must name every module,
and the two commands on the README's first screen must be real Makefile targets that CI runs.
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from cli.main import main

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
PACKAGES = ("engine", "notifications", "service", "web", "cli")


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> set[str]:
    """Every command and subcommand of the app as 'rollout a b', walked recursively."""
    out: set[str] = set()
    for name, command in group.commands.items():
        path = (*prefix, name)
        out.add(" ".join(("rollout", *path)))
        if isinstance(command, click.Group):
            out |= command_paths(command, path)
    return out


def readme_section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"README.md has no '## {title}' section"
    return match.group(1)


def reference_commands() -> set[str]:
    """The `rollout …` entries of the command reference: the command words before any option/argument."""
    found: set[str] = set()
    for span in re.findall(r"`(rollout [^`]*)`", readme_section("Command reference")):
        words = []
        for word in span.split():
            if not re.fullmatch(r"[a-z][a-z0-9-]*", word):
                break
            words.append(word)
        found.add(" ".join(words))
    return found


def test_command_walk_sees_nested_commands() -> None:
    # Guards the walker itself: if it stopped recursing, the reference test below would prove little.
    paths = command_paths(main)
    assert "rollout audit verify" in paths and "rollout status" in paths


def test_readme_lists_every_command() -> None:
    missing = command_paths(main) - reference_commands()
    assert not missing, f"README.md '## Command reference' lacks: {sorted(missing)}"


def test_readme_lists_no_command_that_does_not_exist() -> None:
    listed = reference_commands()
    # An entry that is a group prefix of a real command (e.g. 'rollout audit') is fine only if it exists.
    extra = listed - command_paths(main)
    assert not extra, f"README.md '## Command reference' lists commands that do not exist: {sorted(extra)}"


def modules() -> set[str]:
    out = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            rel = path.relative_to(ROOT)
            if path.name == "__init__.py" or rel.parts[:2] == ("engine", "migrations"):
                continue
            out.add(rel.as_posix())
    return out


def test_module_walk_finds_modules() -> None:
    found = modules()
    assert "engine/runs.py" in found and "notifications/channels/email.py" in found
    assert not any(m.startswith("engine/migrations/") for m in found)


def test_architecture_names_every_module() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:engine|notifications|service|web|cli)/[\w/]+\.py)`", text))
    missing = modules() - named
    assert not missing, f"docs/architecture.md does not name: {sorted(missing)}"


def test_architecture_names_only_existing_modules() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    named = set(re.findall(r"(?<![\w/])((?:engine|notifications|service|web|cli)/[\w/]+\.py)\b", text))
    gone = sorted(m for m in named if not (ROOT / m).is_file())
    assert not gone, f"docs/architecture.md names modules that do not exist: {gone}"


def first_code_block_commands() -> list[str]:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"^```[^\n]*\n(.*?)^```", text, re.M | re.S)
    assert match, "README.md has no code block"
    lines = [line.split("#", 1)[0].strip() for line in match.group(1).splitlines()]
    return [line for line in lines if line]


def test_readme_first_code_block_is_make_demo_and_make_test() -> None:
    assert first_code_block_commands() == ["make demo", "make test"]
    text = README.read_text(encoding="utf-8")
    # First screen: the block comes right after a short intro, before any section.
    assert text.index("```") < text.index("\n## ")


def test_makefile_has_demo_and_test_targets() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([A-Za-z][\w-]*):", makefile, re.M))
    assert {"demo", "test"} <= targets


def test_ci_runs_make_test() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    commands = [line.split("#", 1)[0].strip() for line in ci.splitlines()]
    assert any(re.match(r"make test(\s|$)", c) for c in commands)


def test_readme_links_to_existing_docs() -> None:
    text = README.read_text(encoding="utf-8")
    links = re.findall(r"\]\((docs/[^)#]+)", text)
    assert links, "README.md links to no docs/ page"
    assert [link for link in links if not (ROOT / link).is_file()] == []
    for doc in (ROOT / "docs").glob("*.md"):
        assert f"docs/{doc.name}" in links, f"README.md does not link docs/{doc.name}"


def test_make_demo_leaves_nothing_untracked() -> None:
    """`make demo` left rollout-demo.db untracked and not ignored (issue 17, 19); the README's day
    writes rollout.db, outbox/, secrets/, checkpoints/ and the export in the repository root."""
    import fnmatch

    patterns = [p.strip() for p in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
                if p.strip() and not p.startswith("#")]

    def ignored(name: str) -> bool:
        return any(fnmatch.fnmatch("/" + name, p) or fnmatch.fnmatch(name, p.strip("/")) for p in patterns)

    for name in ("rollout-demo.db", "rollout-demo.db-wal", "rollout-demo-files", "rollout.db", "rollout.db-wal",
                 "outbox", "secrets", "checkpoints", "rollout-audit.pub", "审计记录.csv"):
        assert ignored(name), f".gitignore does not ignore {name}"
