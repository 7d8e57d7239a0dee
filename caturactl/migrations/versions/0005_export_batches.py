"""export batches

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 08:37:40.683310
"""
from alembic import op
import sqlalchemy as sa
import caturactl.core.db


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('export_batches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('format', sa.String(length=10), nullable=False),
    sa.Column('date_from', caturactl.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('date_to', caturactl.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('total', caturactl.core.db.Amount(length=40), nullable=False),
    sa.Column('file_name', sa.String(length=300), nullable=False),
    sa.Column('again', sa.Boolean(), nullable=False),
    sa.Column('created_at', caturactl.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('export_batches')
