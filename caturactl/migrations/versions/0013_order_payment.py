"""orders: how the buyer pays the merchant (payment_method) and the channel's state of that payment

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 01:45:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('orders') as batch:
        batch.add_column(sa.Column('payment_method', sa.String(length=12), nullable=False, server_default=''))
        batch.add_column(sa.Column('payment_state', sa.String(length=30), nullable=False, server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('orders') as batch:
        batch.drop_column('payment_state')
        batch.drop_column('payment_method')
