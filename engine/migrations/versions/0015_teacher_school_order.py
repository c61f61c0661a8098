"""an index of the present teachers in (school, platform id) order for the province forecast's
read (issue 11 speed; engine/forecast/sums.py)

Revision ID: 0015
Revises: 0014

Through the school_code index alone the read visited every teacher's wide row and sorted each
school's by platform id (3.2 s at 1,000,000 teachers); from this index it is one ordered scan
(0.5 s). Its columns do not change on a re-import, except left_on when a --full export stops
listing a teacher. A covering index of teacher_progress's figures was measured too and left out:
on a quiet machine it did not shorten the read (17.2 s against 17.1 s) and it made every changed
1,000,000-row import 10-30 s slower (one more index entry per history row).
"""
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_teacher_school_order', 'teacher', ['school_code', 'platform_id', 'left_on', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_teacher_school_order', table_name='teacher')
