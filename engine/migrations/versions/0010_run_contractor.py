"""school_run.contractor: the contractor (承训单位) training a school in a plan (issue 14, seed 002)

Revision ID: 0010
Revises: 0009

Filled by `rollout contractors import` (engine/imports/contractors.py); NULL for every existing run.
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('school_run', schema=None) as batch_op:
        batch_op.add_column(sa.Column('contractor', sa.String(length=100), nullable=True))
        batch_op.create_index(batch_op.f('ix_school_run_contractor'), ['contractor'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('school_run', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_school_run_contractor'))
        batch_op.drop_column('contractor')
