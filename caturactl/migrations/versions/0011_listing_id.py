"""products and order_lines: asin -> listing_id (the channel's id of a listing; Amazon's ASIN is one)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 01:40:00
"""
from alembic import op


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ('products', 'order_lines'):
        with op.batch_alter_table(table) as batch:
            batch.alter_column('asin', new_column_name='listing_id')


def downgrade() -> None:
    for table in ('products', 'order_lines'):
        with op.batch_alter_table(table) as batch:
            batch.alter_column('listing_id', new_column_name='asin')
