"""SQLite: the progress history stored in its key (WITHOUT ROWID; issue 11 speed)

Revision ID: 0019
Revises: 0018

On SQLite an ordinary table is a B-tree of rowids and its primary key a second B-tree beside it:
every history row was written twice, and every read by the (import, teacher) key found the row in
the key and then looked it up again by rowid. A WITHOUT ROWID table is its key's B-tree, the
figures in its leaves — the right shape for small rows read and written in key order (SQLite's
own advice for them). At full size (12,000,000 rows) the table takes a quarter less room (the
file 1,116 → 842 MB when built so or after a VACUUM; migrated without one, the old pages stay free
for later imports). Re-importing the unchanged 1,000,000-row file is 0.8–1.2 s faster; a changed
one 1.3–1.6 s on a compact file, within the noise on a migrated one (docs/benchmarks.md). The
copy took 23 s at that size (2026-12-04).

PostgreSQL has no such table (a heap with its key beside it): nothing changes there.
"""
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

FIGURES = ("online_hours", "practice_hours", "points_count", "evidence_count")
NEW = "teacher_progress_new"


def _columns() -> list[sa.Column[Any]]:
    numbers: dict[str, Any] = {"online_hours": sa.Float, "practice_hours": sa.Float, "points_count": sa.Integer,
                               "evidence_count": sa.Integer}
    return [sa.Column("import_id", sa.Integer(), nullable=False), sa.Column("teacher_id", sa.Integer(), nullable=False),
            *(sa.Column(f, numbers[f](), nullable=False) for f in FIGURES),
            sa.Column("evidence_result", sa.String(length=12), nullable=True),
            sa.Column("left_school", sa.Boolean(), nullable=False),
            *(sa.Column(f"prior_{f}", numbers[f](), nullable=True) for f in FIGURES)]


def _copy(with_rowid: bool) -> None:
    """Copy the history into a table of the other kind, in key order, and put it in its place."""
    if op.get_bind().dialect.name != "sqlite":
        return
    columns = _columns()
    op.create_table(NEW, *columns, sa.PrimaryKeyConstraint("import_id", "teacher_id", name="pk_teacher_progress"),
                    sqlite_with_rowid=with_rowid)
    names = ", ".join(c.name for c in columns)
    op.execute(f"INSERT INTO {NEW} ({names}) SELECT {names} FROM teacher_progress ORDER BY import_id, teacher_id")
    op.drop_table("teacher_progress")
    op.rename_table(NEW, "teacher_progress")


def upgrade() -> None:
    _copy(with_rowid=False)


def downgrade() -> None:
    _copy(with_rowid=True)
