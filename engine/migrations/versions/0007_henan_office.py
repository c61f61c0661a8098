"""henan office (issue 14): which stages a plan's final deadline binds; a teacher's role

Revision ID: 0007
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('plan', schema=None) as batch_op:
        batch_op.add_column(sa.Column('final_deadline_stages', sa.JSON(), nullable=True))
    with op.batch_alter_table('teacher', schema=None) as batch_op:
        batch_op.add_column(sa.Column('role', sa.String(length=20), server_default='teacher', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('teacher', schema=None) as batch_op:
        batch_op.drop_column('role')
    with op.batch_alter_table('plan', schema=None) as batch_op:
        batch_op.drop_column('final_deadline_stages')
