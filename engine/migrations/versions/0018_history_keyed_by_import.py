"""the progress history keyed (import, teacher), with each row's prior figures (issue 11 re-import speed)

Revision ID: 0018
Revises: 0017

Keyed (teacher, import), every import added one entry to every leaf page of the key, and
PostgreSQL writes each page it first changes after a checkpoint whole into its WAL: a changed
1,000,000-row import's history INSERT took 2.9 s at 12 imports of history and 5.4 s at 40 (WAL
462 MB and 1,028 MB), growing with the history. Keyed (import, teacher), an import's rows append
at the key's end: 1.3–1.7 s and 155 MB at either size; on SQLite 6.6 s → 0.5–0.7 s at 40 imports
(docs/benchmarks.md). The ``import_id`` index becomes the key's prefix and goes.

A forecast needs each teacher's figures as of the window's first import, which the old key gave
by a seek per teacher. The ``prior_*`` columns hold the teacher's figures before the row (its
previous row's; NULL on its first), so the base is the prior of the teacher's first row after
that import, or the teacher's current figures if there is none (``engine.forecast.base``).

The table is copied once, the priors filled by ``lag()`` in the copy: at 12,000,000 rows 51 s on
PostgreSQL (the key is built after the copy) and 56 s on SQLite (measured 2026-12-03).
"""
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

FIGURES = ("online_hours", "practice_hours", "points_count", "evidence_count")
COLUMNS = ("teacher_id", "import_id", *FIGURES, "evidence_result", "left_school")
NEW = "teacher_progress_new"


def _columns(prior: bool) -> list[sa.Column[Any]]:
    numbers: dict[str, Any] = {"online_hours": sa.Float, "practice_hours": sa.Float, "points_count": sa.Integer,
                               "evidence_count": sa.Integer}
    out: list[sa.Column[Any]] = [sa.Column("import_id", sa.Integer(), nullable=False), sa.Column("teacher_id", sa.Integer(), nullable=False)]
    out += [sa.Column(f, numbers[f](), nullable=False) for f in FIGURES]
    out += [sa.Column("evidence_result", sa.String(length=12), nullable=True),
            sa.Column("left_school", sa.Boolean(), nullable=False)]
    if prior:
        out += [sa.Column(f"prior_{f}", numbers[f](), nullable=True) for f in FIGURES]
    return out


def _copy(key: tuple[str, str], select: str, prior: bool) -> None:
    """Copy the history into a new table keyed ``key`` and put it in the old one's place. SQLite
    cannot add a key to a table, so there it is declared with the table (its name is no schema
    object there); PostgreSQL builds it after the copy (faster than keeping it while loading, and
    the old key's name is free by then)."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    keys = [sa.PrimaryKeyConstraint(*key, name="pk_teacher_progress")] if sqlite else []
    op.create_table(NEW, *_columns(prior), *keys)
    op.execute(select)
    op.drop_table("teacher_progress")
    op.rename_table(NEW, "teacher_progress")
    if not sqlite:
        op.create_primary_key("pk_teacher_progress", "teacher_progress", list(key))


def upgrade() -> None:
    priors = ", ".join(f"lag({f}) OVER w" for f in FIGURES)
    names = ", ".join(COLUMNS)
    _copy(("import_id", "teacher_id"),
          f"INSERT INTO {NEW} ({names}, {', '.join('prior_' + f for f in FIGURES)}) "
          f"SELECT {names}, {priors} FROM teacher_progress "
          "WINDOW w AS (PARTITION BY teacher_id ORDER BY import_id) ORDER BY import_id, teacher_id",
          prior=True)


def downgrade() -> None:
    names = ", ".join(COLUMNS)
    _copy(("teacher_id", "import_id"),
          f"INSERT INTO {NEW} ({names}) SELECT {names} FROM teacher_progress ORDER BY teacher_id, import_id",
          prior=False)
    op.create_index("ix_teacher_progress_import_id", "teacher_progress", ["import_id"], unique=False)
