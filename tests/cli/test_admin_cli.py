"""``rollout init`` and ``--db``: the database a newcomer names is the one used, or one line says why not."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text

from cli.main import main
from engine.db import make_engine
from tests.conftest import PgSchema, require_pg


def rollout(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_a_plain_path_is_a_sqlite_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`sqlite:///tmp/x.db` is relative and needs four slashes for /tmp (issue 17, 12): a plain path works."""
    absolute = tmp_path / "abs.db"
    made = rollout("--db", str(absolute), "init")
    assert made.exit_code == 0, made.output
    assert absolute.is_file() and f"sqlite:///{absolute}" in made.output
    monkeypatch.chdir(tmp_path)
    assert rollout("--db", "rel.db", "init").exit_code == 0 and (tmp_path / "rel.db").is_file()


def test_a_missing_folder_is_one_line_with_the_four_slash_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    got = rollout("--db", "sqlite:///nowhere/x.db", "init")
    assert got.exit_code == 1 and "Traceback" not in got.output
    line = got.stderr.strip()
    assert "\n" not in line and "nowhere" in line and "sqlite:////nowhere/x.db" in line
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.postgres
def test_init_as_the_application_role_says_run_as_the_owner() -> None:
    """The application role may not create tables: a 116-line traceback became one line (issue 17, 11)."""
    base = require_pg()
    schema = PgSchema(base)
    role = "r_" + uuid.uuid4().hex[:10]
    admin = make_engine(base)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
            conn.execute(text(f'GRANT USAGE ON SCHEMA "{schema.name}" TO "{role}"'))
        url = schema.url.replace("postgresql://postgres@", f"postgresql://{role}@", 1)
        assert role in url
        got = rollout("--db", url, "init")
        assert got.exit_code == 1, got.output
        assert "Traceback" not in got.output and got.stderr.strip().count("\n") == 0
        assert "所有者（owner）" in got.stderr and role in got.stderr
    finally:
        schema.drop()
        with admin.begin() as conn:
            conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()
