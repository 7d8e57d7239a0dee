"""dropship ship-by: the day an accepted purchase order line must leave (rerouting.py)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05 09:00:00
"""
from alembic import op
import sqlalchemy as sa
import caturactl.core.db


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('purchase_order_lines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ship_by', caturactl.core.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('purchase_order_lines', schema=None) as batch_op:
        batch_op.drop_column('ship_by')
