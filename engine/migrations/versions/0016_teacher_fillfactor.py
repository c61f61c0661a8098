"""room on each teacher page for a re-import's new row versions (PostgreSQL; issue 11 re-import speed)

Revision ID: 0016
Revises: 0015

A changed progress export rewrites most teachers' rows. PostgreSQL keeps the new version of a row
beside the old one: with full pages (fillfactor 100) every new version went to another page and
got a new entry in each of the table's four indexes, so at 1,000,000 teachers the merge's UPDATE
took 61 s and only 0.2 % of the updates were HOT. With half of each page free (fillfactor 50) the
new version stays on its page and no index is touched (the import changes no indexed column of a
known teacher): 3.5 s, every update HOT (docs/benchmarks.md). The table takes about twice the
space (241 MB at 1,000,000 teachers). The setting applies to pages written from now on: the first
changed import after the upgrade moves the rows onto such pages (or `VACUUM FULL teacher` at once).
SQLite updates rows in place and has no such setting.
"""
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

FILLFACTOR = 50


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE teacher SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE teacher RESET (fillfactor)")
