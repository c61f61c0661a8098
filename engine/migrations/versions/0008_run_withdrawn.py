"""school_run.withdrawn_at: a school removed from a plan mid-year keeps its run and its history

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-01 15:00:00

A plan edit (engine/plan_edit.py) that drops a school (closed, merged into another) ends its run
as withdrawn instead of deleting it: the audit chain and the facts stay, lists and counts leave
it out. NULL for every existing run.
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('school_run', schema=None) as batch_op:
        batch_op.add_column(sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('school_run', schema=None) as batch_op:
        batch_op.drop_column('withdrawn_at')
