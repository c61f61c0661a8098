"""run_tally and rate_tally: per-county counts the dashboard reads (issue 10 speed); an index for
"is any run of the plan not derived yet"

Revision ID: 0011
Revises: 0010

The tallies start empty; engine/tally.py fills a plan's on first read (``ensure_tallied``) and
keeps them current from then on in the same transaction as every change of the stored status.
"""
from alembic import op
import sqlalchemy as sa

from engine.db import UTCDateTime

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None



def _where() -> list[sa.Column]:
    return [sa.Column('province_code', sa.String(length=6), nullable=True),
            sa.Column('city_code', sa.String(length=6), nullable=True),
            sa.Column('county_code', sa.String(length=6), nullable=False)]


def upgrade() -> None:
    op.create_table(
        'run_tally',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('plan_id', sa.Integer(), nullable=False),
        *_where(),
        sa.Column('batch_id', sa.Integer(), nullable=False),
        sa.Column('stage', sa.String(length=60), nullable=False),
        sa.Column('blocked', sa.Boolean(), nullable=False),
        sa.Column('started_at', UTCDateTime(), nullable=False),
        sa.Column('due_date', sa.Date(), nullable=True),
        sa.Column('runs', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['batch_id'], ['batch.id'], name=op.f('fk_run_tally_batch_id_batch')),
        sa.ForeignKeyConstraint(['plan_id'], ['plan.id'], name=op.f('fk_run_tally_plan_id_plan')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_run_tally')),
    )
    op.create_index('ix_run_tally_plan_county', 'run_tally', ['plan_id', 'county_code'])
    op.create_index('ix_run_tally_plan_city', 'run_tally', ['plan_id', 'city_code'])
    op.create_table(
        'rate_tally',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('plan_id', sa.Integer(), nullable=False),
        *_where(),
        sa.Column('rate_id', sa.String(length=60), nullable=False),
        sa.Column('numerator', sa.Integer(), nullable=False),
        sa.Column('denominator', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['plan_id'], ['plan.id'], name=op.f('fk_rate_tally_plan_id_plan')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_rate_tally')),
    )
    op.create_index('ix_rate_tally_plan_county', 'rate_tally', ['plan_id', 'county_code'])
    op.create_index('ix_rate_tally_plan_city', 'rate_tally', ['plan_id', 'city_code'])
    op.create_index('ix_school_run_plan_derived', 'school_run', ['plan_id', 'derived_ok'])


def downgrade() -> None:
    op.drop_index('ix_school_run_plan_derived', table_name='school_run')
    op.drop_table('rate_tally')
    op.drop_table('run_tally')
