"""channel_stock: the quantity of each SKU last queued for each channel (stock push)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 03:10:00
"""
from alembic import op
import sqlalchemy as sa
import caturactl.core.db


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('channel_stock',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=40), nullable=False),
    sa.Column('sku', sa.String(length=100), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('pushed_at', caturactl.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('channel', 'sku', name='uq_channel_stock_channel_sku')
    )


def downgrade() -> None:
    op.drop_table('channel_stock')
