"""order lines: what the buyer paid, charge by charge (gift wrap, COD fee, discounts, promotions)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 22:00:00
"""
from alembic import op
import sqlalchemy as sa
import caturactl.core.db


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

AMOUNTS = ('gift_wrap_amount', 'cod_fee_amount', 'item_discount', 'shipping_discount')


def upgrade() -> None:
    with op.batch_alter_table('order_lines') as batch:
        for name in AMOUNTS:
            batch.add_column(sa.Column(name, caturactl.core.db.Amount(), nullable=True))
        batch.add_column(sa.Column('promotion_ids', sa.String(length=500), nullable=False, server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('order_lines') as batch:
        batch.drop_column('promotion_ids')
        for name in reversed(AMOUNTS):
            batch.drop_column(name)
