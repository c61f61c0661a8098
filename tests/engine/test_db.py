from datetime import UTC, datetime, timedelta, timezone

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
