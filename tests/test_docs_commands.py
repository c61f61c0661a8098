"""Run the docs: every shell block of README.md and of docs/*.md, in a scratch copy of the repository.

A newcomer follows the docs literally (issue 17), so the docs are executed, not just read — like
datasette's cog-checked docs, but run:

- A *command block* is a fenced block marked ``bash``/``sh``/``shell``/``console``, or an unmarked
  one whose first command starts with ``rollout`` or ``make``. Blocks without commands (YAML, SQL,
  tables, diagrams, unit files) are not run, so a new page never needs anything from this file.
- A command block that cannot run here (it starts a service, needs PostgreSQL roles, writes under
  ``/etc``) carries ``<!-- docs-test: skip (why) -->`` on the line before it, and is skipped with
  that reason. A block that starts the web server or the resident scheduler is skipped even
  unmarked, so a new page that shows one does not hang the suite.
- A ``text`` block right after a command block (only blank lines between) is that block's output:
  the block's standard output must be exactly that text (trailing spaces ignored). Messages on
  standard error are not compared.
- README.md runs first, from nothing, in a copy of the repository whose ``.venv`` is the one
  running the tests (what ``make demo`` made). Every docs page then runs in its own copy of the
  state the README's day leaves — the database, the files, the environment it exported (the page
  may say "with the README's set-up").

Blocks of one page share one bash process (``set -e``): a failing command fails the page and names
its block. ``rollout`` in the blocks is ``cli.main:main`` — what the console script runs — served by
tests/docs_forkserver.py, which imports the CLI once and forks per command: forty fresh imports took
minutes of wall time on a busy machine. The console script itself is run once (``--version``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHELLS = {"bash", "sh", "shell", "console"}
SKIP = re.compile(r"<!--\s*docs-test:\s*skip\s*\(([^)]*)\)\s*-->")
FENCE = re.compile(r"^(`{3,})([\w+-]*)[^\n]*\n(.*?)^\1\s*$", re.M | re.S)
SERVICE = re.compile(r"(^|[\s;&|])rollout\s+(serve\b|scheduler\s+run\b(?!.*--once))", re.M)
COPY_IGNORE = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.pyc", ".pytest_cache", ".mypy_cache",
                                     ".ruff_cache", ".hypothesis", ".import_linter_cache", "*.egg-info",
                                     "rollout.db*", "rollout-demo*", "test-artifacts", "out")
PAGE_SECONDS = 300  # a hung block fails its page, never the whole run


@dataclass
class Block:
    page: str
    line: int
    text: str
    expected: str | None = None
    skip: str | None = None

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def _commands(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def blocks(page: str, text: str) -> list[Block]:
    """The command blocks of a page, each with its shown output and skip reason."""
    out: list[Block] = []
    found = list(FENCE.finditer(text))
    for i, match in enumerate(found):
        lang, body = match.group(2).lower(), match.group(3)
        commands = _commands(body)
        if lang not in SHELLS and not (lang == "" and commands and re.match(r"(rollout|make)\s", commands[0])):
            continue
        if not commands:
            continue
        line = text.count("\n", 0, match.start()) + 1
        before = text[:match.start()].rstrip().rsplit("\n", 1)[-1]
        marked = SKIP.search(before)
        block = Block(page, line, body, skip=marked.group(1).strip() if marked else None)
        if block.skip is None and SERVICE.search(body):
            block.skip = "starts a long-running service"
        following = found[i + 1] if i + 1 < len(found) else None
        if following is not None and following.group(2).lower() == "text" and not text[match.end():following.start()].strip():
            block.expected = following.group(3)
        out.append(block)
    return out


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _normal(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_") and k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(LANG="C.UTF-8", LC_ALL="C.UTF-8", PYTHONDONTWRITEBYTECODE="1", PYTHONUTF8="1")
    return env


MARK = "@@docs-test block {}@@"


def run_page(page: list[Block], workdir: Path, env: dict[str, str], server: str, env_out: Path | None = None) -> None:
    """Run a page's blocks in one bash process; fail naming the first block that failed or drifted."""
    runnable = [b for b in page if b.skip is None]
    client = ROOT / "tests" / "docs_forkserver.py"
    script = ["set -e", f"rollout() {{ '{sys.executable}' -S '{client}' --client '{server}' \"$@\"; }}"]
    for n, block in enumerate(runnable):
        script += [f"echo '{MARK.format(n)}'", block.text]
    if env_out is not None:
        script.append(f"env -0 > '{env_out}'")
    result = subprocess.run(["bash", "-c", "\n".join(script)], cwd=workdir, env=env, capture_output=True,
                            text=True, encoding="utf-8", errors="replace", timeout=PAGE_SECONDS, check=False)
    parts = re.split(r"^@@docs-test block (\d+)@@\n", result.stdout, flags=re.M)
    outputs = {int(parts[i]): parts[i + 1] for i in range(1, len(parts) - 1, 2)}
    if result.returncode != 0:
        failed = runnable[max(outputs)] if outputs else runnable[0]
        pytest.fail(f"{failed.where}: a command failed (exit {result.returncode}):\n{failed.text}\n"
                    f"--- stdout\n{outputs.get(max(outputs, default=0), '')}\n--- stderr\n{result.stderr[-3000:]}")
    for n, block in enumerate(runnable):
        if block.expected is not None:
            assert _normal(outputs.get(n, "")) == _normal(block.expected), (
                f"{block.where}: the output shown after this block is not what it prints:\n"
                f"--- shown\n{block.expected}\n--- printed\n{outputs.get(n, '')}")


def _venv() -> Path:
    if sys.prefix == sys.base_prefix:
        pytest.skip("the docs run with the virtualenv 'make' sets up (.venv); this Python is not in one")
    return Path(sys.prefix)


@pytest.fixture(scope="module")
def forkserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``rollout`` for the shell: the CLI imported once, forked per command (tests/docs_forkserver.py)."""
    path = str(tmp_path_factory.mktemp("fork") / "rollout.sock")
    server = subprocess.Popen([sys.executable, "-m", "tests.docs_forkserver", path], cwd=ROOT, env=_environment(),
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        yield path
    finally:
        server.terminate()
        server.wait(timeout=30)
        if server.stdout is not None:
            server.stdout.close()


@pytest.fixture(scope="module")
def after_readme(tmp_path_factory: pytest.TempPathFactory, forkserver: str) -> tuple[Path, dict[str, str]]:
    """A copy of the repository after the README's day, and the environment the README exported."""
    venv = _venv()
    work = tmp_path_factory.mktemp("docs") / "rollout"
    shutil.copytree(ROOT, work, ignore=COPY_IGNORE)
    (work / ".venv").symlink_to(venv, target_is_directory=True)
    # The console script itself (the fork server stands in for it below, for speed).
    real = subprocess.run([str(work / ".venv" / "bin" / "rollout"), "--version"], cwd=work, env=_environment(),
                          capture_output=True, text=True, check=False)
    assert real.returncode == 0 and "rollout" in real.stdout, real.stderr
    readme = blocks("README.md", (ROOT / "README.md").read_text(encoding="utf-8"))
    env_file = work.parent / "readme.env"
    run_page(readme, work, _environment(), forkserver, env_out=env_file)
    exported = dict(item.split("=", 1) for item in env_file.read_text(encoding="utf-8").split("\0") if "=" in item)
    return work, exported


def test_block_finder() -> None:
    """Guards the parser: commands found, output attached, markers honoured, other blocks ignored."""
    text = ("Intro\n\n```bash\nrollout status\n```\n\n```text\nA  B\n```\n\n<!-- docs-test: skip (needs PostgreSQL) -->\n"
            "```sh\nrollout --db postgresql://x init\n```\n\n```yaml\nplan: x\n```\n\n```\nrollout calendar show 2026\n```\n\n"
            "```\n+----+\n```\n\n```sh\nrollout serve --port 8000\n```\n")
    found = blocks("p.md", text)
    assert [(b.line, b.expected, b.skip) for b in found] == [
        (3, "A  B\n", None), (12, None, "needs PostgreSQL"), (20, None, None), (28, None, "starts a long-running service")]


def test_readme_day_runs_as_written(after_readme: tuple[Path, dict[str, str]]) -> None:
    work, env = after_readme
    assert (work / "rollout.db").is_file() and env.get("ROLLOUT_NOW")
    assert list((work / "outbox").rglob("*.eml")), "the day's notifications were not delivered to outbox/"
    exported = (work / "审计记录.csv").read_bytes()
    assert exported.startswith("\ufeff时间".encode()) and "县级项目办".encode() in exported


def test_readme_plan_block_is_the_example_file() -> None:
    """The plan shown in the README is the file the day loads, not a look-alike."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = re.search(r"this is `docs/examples/yiyuan-2021.yaml`:\n\n```yaml\n(.*?)^```", readme, re.M | re.S)
    assert shown, "README.md no longer shows docs/examples/yiyuan-2021.yaml"
    assert shown.group(1) == (ROOT / "docs" / "examples" / "yiyuan-2021.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize("page", [p.relative_to(ROOT).as_posix() for p in pages()[1:]])
def test_docs_page_runs_as_written(page: str, after_readme: tuple[Path, dict[str, str]], forkserver: str,
                                   tmp_path: Path) -> None:
    found = blocks(page, (ROOT / page).read_text(encoding="utf-8"))
    if not [b for b in found if b.skip is None]:
        pytest.skip(f"{page} shows no command to run")
    work, env = after_readme
    copy = tmp_path / "rollout"
    shutil.copytree(work, copy, symlinks=True)
    run_page(found, copy, env, forkserver)
