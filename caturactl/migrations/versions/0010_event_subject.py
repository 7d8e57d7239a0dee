"""events: the thing whose state moved (lifecycle name and id), for outbox messages, job runs and
the other things without a link column of their own

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('events') as batch:
        # Existing rows are events without a subject: '' (the model's default) fills them.
        batch.add_column(sa.Column('subject', sa.String(length=20), nullable=False, server_default=''))
        batch.add_column(sa.Column('subject_id', sa.Integer(), nullable=True))
        batch.create_index('ix_events_subject', ['subject', 'subject_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('events') as batch:
        batch.drop_index('ix_events_subject')
        batch.drop_column('subject_id')
        batch.drop_column('subject')
