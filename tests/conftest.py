"""Shared fixtures: real databases (SQLite file, PostgreSQL schema), a controllable clock.

PostgreSQL tests read the server URL from ``ROLLOUT_TEST_PG_URL`` (``.ci/run`` sets it) and are
skipped with a reason where it is unset. Each test gets its own PostgreSQL database, cloned from a
template each worker migrates once (``CREATE DATABASE … TEMPLATE``: 0.1 s instead of a 1 s Alembic
run per test, which was a third of the suite's time), dropped after. Tests that run the migrations
themselves or need an empty schema use ``pg_schema``.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, make_url, text
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from engine.clock import FixedClock
from engine.db import make_engine, sessions, upgrade
from engine.i18n import set_language

PG_URL_ENV = "ROLLOUT_TEST_PG_URL"
REPO = Path(__file__).resolve().parent.parent
SHANGHAI = ZoneInfo("Asia/Shanghai")


def pg_url() -> str | None:
    return os.environ.get(PG_URL_ENV) or None


def require_pg() -> str:
    url = pg_url()
    if not url:
        pytest.skip(f"PostgreSQL not configured: set {PG_URL_ENV} (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    return url


# The migrated SQLite template, made once per process rather than once per pytest session: mutmut
# (make mutate) runs a new session in a fork for every mutant, and migrating there was 0.9 of each
# mutant's 1.5 seconds. Outside tmp_path_factory's folders, which a later session may delete.
_TEMPLATE: dict[str, Path] = {}


def _remove_template(folder: str, owner: int) -> None:
    if os.getpid() == owner:  # not a forked child's copy of this hook
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def sqlite_template() -> Path:
    """Migrate once; each test copies the file (the migration itself is tested separately)."""
    path = _TEMPLATE.get("path")
    if path is not None and path.exists():
        return path
    folder = tempfile.mkdtemp(prefix="rollout-template-")
    atexit.register(_remove_template, folder, os.getpid())
    path = Path(folder) / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    _TEMPLATE["path"] = path
    return path


def _sqlite_engine(template: Path, tmp_path: Path) -> Engine:
    path = tmp_path / "rollout.db"
    shutil.copy(template, path)
    return make_engine(f"sqlite:///{path}")


class PgSchema:
    """A throw-away schema on the test server; URL carries the search_path for other processes."""

    def __init__(self, base_url: str):
        self.name = "t_" + uuid.uuid4().hex[:12]
        self.base_url = base_url
        admin = make_engine(base_url)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{self.name}"'))
        admin.dispose()
        sep = "&" if "?" in base_url else "?"
        self.url = f"{base_url}{sep}options=-csearch_path%3D{self.name}"

    def drop(self) -> None:
        admin = make_engine(self.base_url)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE'))
        admin.dispose()


class PgTemplate:
    """A migrated database on the test server; each test gets a copy of it (``clone``)."""

    def __init__(self, base_url: str):
        self.base = make_url(base_url)
        self.name = "rollout_tmpl_" + uuid.uuid4().hex[:12]
        self.admin = make_engine(base_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        engine = make_engine(self._url(self.name))
        upgrade(engine)
        engine.dispose()  # a template must have no session open while it is copied

    def _url(self, database: str) -> str:
        return self.base.set(database=database).render_as_string(hide_password=False)

    def clone(self) -> tuple[str, str]:
        name = "rollout_t_" + uuid.uuid4().hex[:12]
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{self.name}"'))
        return name, self._url(name)

    def drop(self, name: str) -> None:
        with self.admin.connect() as conn:  # FORCE: a test may leave a pooled connection behind
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def pg_template() -> Iterator[PgTemplate]:
    template = PgTemplate(require_pg())
    try:
        yield template
    finally:
        template.drop(template.name)
        template.admin.dispose()


@pytest.fixture
def pg_schema() -> Iterator[PgSchema]:
    schema = PgSchema(require_pg())
    try:
        yield schema
    finally:
        schema.drop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, sqlite_template: Path, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database URL, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "rollout.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    template: PgTemplate = request.getfixturevalue("pg_template")
    name, url = template.clone()
    try:
        yield url
    finally:
        template.drop(name)


@pytest.fixture
def db(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_db(sqlite_template: Path, tmp_path: Path) -> Iterator[Engine]:
    engine = _sqlite_engine(sqlite_template, tmp_path)
    yield engine
    engine.dispose()


@pytest.fixture
def factory(db: Engine) -> sessionmaker[Session]:
    return sessions(db)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2021, 7, 1, 9, 0, tzinfo=SHANGHAI))


@pytest.fixture(autouse=True)
def _no_template_child_outlives_its_test() -> Iterator[None]:
    """Close the office-template sandbox child (notifications/sandbox.py) a test started. mutmut
    forks each mutant's tests from a process that has run the suite: a child inherited across the
    fork is not the fork's own, so its next render leaks the old pipes (a ResourceWarning, an error
    here) and every mutant under such a test counted as killed."""
    yield
    from notifications.rendering import _renderer

    if _renderer.child is not None:
        _renderer.close()


@pytest.fixture(autouse=True)
def _chinese_by_default() -> Iterator[None]:
    set_language("zh")
    yield
    set_language("zh")
