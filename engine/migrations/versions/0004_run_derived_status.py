"""school_run derived status: stored due date and gate verdict

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 12:30:00

Existing runs get ``derived_ok = false``; ``rollout init`` (and any status read) computes them.
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('school_run', schema=None) as batch_op:
        batch_op.add_column(sa.Column('due_date', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('due_source', sa.String(length=12), nullable=True))
        batch_op.add_column(sa.Column('due_provisional', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('blocked', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('failing', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('derived_ok', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_index('ix_school_run_plan_due', ['plan_id', 'due_date'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('school_run', schema=None) as batch_op:
        batch_op.drop_index('ix_school_run_plan_due')
        batch_op.drop_column('derived_ok')
        batch_op.drop_column('failing')
        batch_op.drop_column('blocked')
        batch_op.drop_column('due_provisional')
        batch_op.drop_column('due_source')
        batch_op.drop_column('due_date')
