"""the progress history without foreign keys (issue 11 re-import speed)

Revision ID: 0017
Revises: 0016

A changed progress export adds a history row per changed teacher: 1,000,000 rows at province
scale. PostgreSQL checks a foreign key with a trigger per inserted row; the two on
``teacher_progress`` (its teacher, its import) took 7.7 of the history INSERT's 11.2 s (EXPLAIN
ANALYZE, docs/benchmarks.md), SQLite's checks 0.4 of 1.9 s. The rows are written by one code path
(``engine.imports.history.write_history``) from ids it has just read in the same transaction, and
no teacher or import is ever deleted; ``audit verify`` checks that every history row still names
both (``engine.projection.verify_state``). SQLite rebuilds the table to drop them (a copy of the
history: about a minute at 12,000,000 rows).
"""
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

KEYS = (("fk_teacher_progress_teacher_id_teacher", "teacher", "teacher_id"),
        ("fk_teacher_progress_import_id_progress_import", "progress_import", "import_id"))


def upgrade() -> None:
    with op.batch_alter_table("teacher_progress") as batch:
        for name, _table, _column in KEYS:
            batch.drop_constraint(name, type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("teacher_progress") as batch:
        for name, table, column in KEYS:
            batch.create_foreign_key(name, table, [column], ["id"])
