from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from engine.db import current_revision, make_engine, require_schema, upgrade
from engine.errors import RolloutError
from engine.models import Region


def test_times_come_back_aware_utc_on_both_databases(db: Engine) -> None:
    from engine.models import AuditEvent

    plus8 = timezone(timedelta(hours=8))
    at = datetime(2021, 12, 1, 9, 0, tzinfo=plus8)
    with db.begin() as conn:
        conn.execute(
            AuditEvent.__table__.insert().values(
                chain="x", seq=1, at=at, actor="a", role="r", trigger="t", gates=None,
                prev_hash="0" * 64, hash="1" * 64, payload=b"{}",
            )
        )
        got = conn.execute(select(AuditEvent.at)).scalar_one()
    assert got.tzinfo is not None
    assert got == at
    assert got.astimezone(UTC).hour == 1


def test_naive_datetime_is_refused(db: Engine) -> None:
    from sqlalchemy.exc import StatementError

    from engine.models import AuditEvent

    with pytest.raises(StatementError, match="naive datetime"), db.begin() as conn:
        conn.execute(
            AuditEvent.__table__.insert().values(
                chain="x", seq=1, at=datetime(2021, 1, 1), actor="a", role="r", trigger="t",
                prev_hash="0" * 64, hash="1" * 64, payload=b"{}",
            )
        )


def test_missing_schema_says_run_init(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(RolloutError, match="rollout init"):
        require_schema(engine)
    upgrade(engine)
    require_schema(engine)
    assert current_revision(engine) is not None


def test_migrations_match_models(db: Engine) -> None:
    """Autogenerate against the migrated database finds nothing: models and migrations agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from engine.models import Base

    with db.connect() as conn:
        from engine.migrations_filter import include_name

        ctx = MigrationContext.configure(conn, opts={"include_name": include_name})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []


def test_regions_round_trip(db: Engine) -> None:
    with db.begin() as conn:
        conn.execute(Region.__table__.insert(), [{"code": "370000", "name": "山东省", "level": "province", "parent_code": None}])
        assert conn.execute(select(Region.name)).scalar_one() == "山东省"


def test_teacher_pages_keep_half_free_for_a_reimports_row_versions(db: Engine) -> None:
    """PostgreSQL writes a changed row's new version beside the old one: with half of each teacher
    page free it stays on its page and no index entry is written (migration 0016: a 1,000,000-row
    re-import's UPDATE 61 s → 3.5 s)."""
    if db.dialect.name != "postgresql":
        pytest.skip("a PostgreSQL page setting: SQLite updates a row in place")
    from sqlalchemy import text

    with db.connect() as conn:
        options = conn.scalar(text("SELECT reloptions FROM pg_class WHERE relname = 'teacher'"))
    assert options == ["fillfactor=50"]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def unmigrated(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database (a throw-away schema on PostgreSQL) for a test that runs the migrations."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'rollout.db'}")
        yield engine
        engine.dispose()
        return
    schema = request.getfixturevalue("pg_schema")
    engine = make_engine(schema.url)
    yield engine
    engine.dispose()


def test_the_history_is_rekeyed_by_import_with_each_rows_prior_figures_and_back(unmigrated: Engine) -> None:
    """Migration 0018 copies the history keyed (import, teacher), filling each row's prior figures
    with its teacher's previous row's (none on its first; teacher 2 skips import 2), and its
    downgrade restores the (teacher, import) key and the import index with the same rows."""
    from alembic import command
    from sqlalchemy import inspect, text

    from engine.db import alembic_config

    upgrade(unmigrated, "0017")
    rows = [(1, 1, 10.0, 1.0, 1, 0), (2, 1, 20.0, 2.0, 2, 0), (1, 2, 11.0, 1.5, 1, 0),
            (1, 3, 12.0, 1.5, 3, 1), (2, 3, 25.0, 2.0, 2, 1)]
    names = "teacher_id, import_id, online_hours, practice_hours, points_count, evidence_count"
    with unmigrated.begin() as conn:
        conn.execute(text(f"INSERT INTO teacher_progress ({names}, left_school) VALUES "
                          "(:t, :i, :o, :p, :n, :e, false)"),
                     [dict(zip("tiopne", r, strict=True)) for r in rows])
    upgrade(unmigrated)
    with unmigrated.connect() as conn:
        got = conn.execute(text(
            f"SELECT {names}, prior_online_hours, prior_practice_hours, prior_points_count, prior_evidence_count "
            "FROM teacher_progress ORDER BY import_id, teacher_id")).all()
    assert [tuple(r) for r in got] == [
        (1, 1, 10.0, 1.0, 1, 0, None, None, None, None), (2, 1, 20.0, 2.0, 2, 0, None, None, None, None),
        (1, 2, 11.0, 1.5, 1, 0, 10.0, 1.0, 1, 0),
        (1, 3, 12.0, 1.5, 3, 1, 11.0, 1.5, 1, 0), (2, 3, 25.0, 2.0, 2, 1, 20.0, 2.0, 2, 0)]
    table = inspect(unmigrated)
    assert table.get_pk_constraint("teacher_progress")["constrained_columns"] == ["import_id", "teacher_id"]
    assert table.get_indexes("teacher_progress") == []  # the import index was the key's prefix
    cfg = alembic_config(unmigrated)
    with unmigrated.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0017")
    with unmigrated.connect() as conn:
        back = conn.execute(text(f"SELECT {names} FROM teacher_progress ORDER BY import_id, teacher_id")).all()
    table = inspect(unmigrated)
    assert [tuple(r) for r in back] == sorted(rows, key=lambda r: (r[1], r[0]))
    assert table.get_pk_constraint("teacher_progress")["constrained_columns"] == ["teacher_id", "import_id"]
    assert [i["column_names"] for i in table.get_indexes("teacher_progress")] == [["import_id"]]


def test_the_sqlite_history_is_stored_in_its_key_and_back(tmp_path: Path) -> None:
    """Migration 0019 rebuilds SQLite's history WITHOUT ROWID (its key's B-tree holds the rows:
    one write per row and no second lookup per read) with the same rows, and its downgrade an
    ordinary table again. PostgreSQL has no such table: it is not touched there."""
    from alembic import command
    from sqlalchemy import text

    from engine.db import alembic_config

    engine = make_engine(f"sqlite:///{tmp_path / 'rollout.db'}")
    upgrade(engine, "0018")
    rows = [(1, 2, 10.0, 1.0, 1, 0, None), (1, 1, 20.0, 2.0, 2, 0, None), (2, 1, 25.0, 2.0, 2, 1, 20.0)]
    names = "import_id, teacher_id, online_hours, practice_hours, points_count, evidence_count, prior_online_hours"

    def table() -> tuple[int, list[tuple[object, ...]]]:
        with engine.connect() as conn:
            kind = conn.execute(text("SELECT wr FROM pragma_table_list WHERE name = 'teacher_progress'")).scalar_one()
            return kind, [tuple(r) for r in conn.execute(text(f"SELECT {names} FROM teacher_progress"))]

    with engine.begin() as conn:
        conn.execute(text(f"INSERT INTO teacher_progress ({names}, left_school) VALUES (:i, :t, :o, :p, :n, :e, :po, 0)"),
                     [dict(zip(("i", "t", "o", "p", "n", "e", "po"), r, strict=True)) for r in rows])
    assert table()[0] == 0
    upgrade(engine)
    assert table() == (1, sorted(rows))  # WITHOUT ROWID: read in key order
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0018")
    kind, back = table()
    assert (kind, sorted(back)) == (0, sorted(rows))
    engine.dispose()
