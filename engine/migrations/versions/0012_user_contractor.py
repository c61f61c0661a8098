"""app_user.contractor: a contractor (承训单位) account sees the schools assigned to its contractor
(issue 14, item 6; seed 002 二 "8个单位承办本项目")

Revision ID: 0012
Revises: 0011

NULL for every existing account; set for role ``contractor`` only (engine/accounts.py).
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('app_user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('contractor', sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('app_user', schema=None) as batch_op:
        batch_op.drop_column('contractor')
