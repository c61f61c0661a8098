"""Which database objects Alembic compares: tables other libraries own are not ours to migrate."""

from __future__ import annotations

# APScheduler's SQLAlchemyJobStore creates and owns this table in the same database.
FOREIGN_TABLES = {"apscheduler_jobs"}


def include_name(name: str | None, type_: str, _parent: object) -> bool:
    return not (type_ == "table" and name in FOREIGN_TABLES)
