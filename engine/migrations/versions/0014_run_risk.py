"""run_risk: each school run's latest stored forecast risk (预警, issue 11)

Revision ID: 0014
Revises: 0012

Written by the sweep (when a workflow sets warn_at_risk) and by `rollout forecast --store`; read
by the dashboard's at-risk counts (engine/forecast/store.py). Empty until the first forecast.
"""
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'run_risk',
        sa.Column('run_id', sa.Integer(), nullable=False),
        sa.Column('plan_id', sa.Integer(), nullable=False),
        sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('as_of_import_id', sa.Integer(), nullable=True),
        sa.Column('as_of', sa.Date(), nullable=True),
        sa.Column('stage', sa.String(length=60), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('due_date', sa.Date(), nullable=True),
        sa.Column('p_miss_due', sa.Float(), nullable=True),
        sa.Column('p_miss_final', sa.Float(), nullable=True),
        sa.Column('risk', sa.Float(), nullable=True),
        sa.Column('eta_p50', sa.Date(), nullable=True),
        sa.Column('eta_p90', sa.Date(), nullable=True),
        sa.Column('eta_beyond', sa.Boolean(), nullable=False),
        sa.Column('teachers_at_risk', sa.Integer(), nullable=False),
        sa.Column('samples', sa.Integer(), nullable=False),
        sa.Column('seed', sa.Integer(), nullable=False),
        sa.Column('source', sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(['as_of_import_id'], ['progress_import.id'], name=op.f('fk_run_risk_as_of_import_id_progress_import')),
        sa.ForeignKeyConstraint(['plan_id'], ['plan.id'], name=op.f('fk_run_risk_plan_id_plan')),
        sa.ForeignKeyConstraint(['run_id'], ['school_run.id'], name=op.f('fk_run_risk_run_id_school_run')),
        sa.PrimaryKeyConstraint('run_id', name=op.f('pk_run_risk')),
    )
    with op.batch_alter_table('run_risk', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_run_risk_computed_at'), ['computed_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_run_risk_plan_id'), ['plan_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_run_risk_risk'), ['risk'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('run_risk', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_run_risk_risk'))
        batch_op.drop_index(batch_op.f('ix_run_risk_plan_id'))
        batch_op.drop_index(batch_op.f('ix_run_risk_computed_at'))
    op.drop_table('run_risk')
