"""outbox: when a send began, so a crash between a send and its outcome is known afterwards

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 13:00:00
"""
from alembic import op
import sqlalchemy as sa
import caturactl.core.db


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox') as batch:
        batch.add_column(sa.Column('sending_at', caturactl.core.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox') as batch:
        batch.drop_column('sending_at')
