"""covering indexes for the province forecast's read (issue 11 speed; engine/forecast/sums.py):
teacher_progress (teacher, import, figures) and teacher (school, platform id, left_on, id)

Revision ID: 0015
Revises: 0014

Through the primary key every teacher's base figures were a lookup into the table and the
window's pivot sorted the window's rows; with the figures in the index both are one ordered scan
of it; the present teachers in (school, platform id) order no longer read every teacher's row.
Costs one more index entry per history row an import writes (the teacher index's columns do not
change on a re-import, except left_on when a --full export stops listing a teacher).
"""
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

COLUMNS = ['teacher_id', 'import_id', 'online_hours', 'practice_hours', 'points_count', 'evidence_count']


def upgrade() -> None:
    op.create_index('ix_teacher_progress_figures', 'teacher_progress', COLUMNS, unique=False)  # no table copy
    op.create_index('ix_teacher_school_order', 'teacher', ['school_code', 'platform_id', 'left_on', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_teacher_school_order', table_name='teacher')
    op.drop_index('ix_teacher_progress_figures', table_name='teacher_progress')
