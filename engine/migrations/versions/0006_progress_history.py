"""progress history and provenance: progress_import, teacher_progress, teacher.left_on

Revision ID: 0006
Revises: 0008
Create Date: 2026-12-01 14:45:00

Every accepted progress file becomes a ``progress_import`` row (file, SHA-256, as-of, mapping,
counts, who); ``teacher_progress`` keeps each teacher's figures as of the imports that changed
them. Existing teachers have no history: the first import after the upgrade records only the
teachers it changes, so a forecast sees no pace before it (and says so).
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0008'  # brief: '0005'; after 0007 and 0008 in main so there is one head
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('progress_import',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('file_name', sa.String(length=300), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('mapping', sa.String(length=300), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('full', sa.Boolean(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('inserted', sa.Integer(), nullable=False),
    sa.Column('updated', sa.Integer(), nullable=False),
    sa.Column('unchanged', sa.Integer(), nullable=False),
    sa.Column('left_school', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_progress_import'))
    )
    with op.batch_alter_table('progress_import', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_progress_import_as_of'), ['as_of'], unique=False)
        batch_op.create_index(batch_op.f('ix_progress_import_sha256'), ['sha256'], unique=False)
    op.create_table('teacher_progress',
    sa.Column('teacher_id', sa.Integer(), nullable=False),
    sa.Column('import_id', sa.Integer(), nullable=False),
    sa.Column('online_hours', sa.Float(), nullable=False),
    sa.Column('practice_hours', sa.Float(), nullable=False),
    sa.Column('points_count', sa.Integer(), nullable=False),
    sa.Column('evidence_count', sa.Integer(), nullable=False),
    sa.Column('evidence_result', sa.String(length=12), nullable=True),
    sa.Column('left_school', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['import_id'], ['progress_import.id'], name=op.f('fk_teacher_progress_import_id_progress_import')),
    sa.ForeignKeyConstraint(['teacher_id'], ['teacher.id'], name=op.f('fk_teacher_progress_teacher_id_teacher')),
    sa.PrimaryKeyConstraint('teacher_id', 'import_id', name=op.f('pk_teacher_progress'))
    )
    with op.batch_alter_table('teacher_progress', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_teacher_progress_import_id'), ['import_id'], unique=False)
    with op.batch_alter_table('teacher', schema=None) as batch_op:
        batch_op.add_column(sa.Column('left_on', sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('teacher', schema=None) as batch_op:
        batch_op.drop_column('left_on')
    with op.batch_alter_table('teacher_progress', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_teacher_progress_import_id'))
    op.drop_table('teacher_progress')
    with op.batch_alter_table('progress_import', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_progress_import_sha256'))
        batch_op.drop_index(batch_op.f('ix_progress_import_as_of'))
    op.drop_table('progress_import')
