"""dropshipping: purchase orders to dropshippers, their lines, parcels and availability feeds

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 04:10:00
"""
from alembic import op
import sqlalchemy as sa
import caturactl.core.db


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('purchase_orders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=20), nullable=True),
    sa.Column('partner', sa.String(length=40), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('delivery_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('file_name', sa.String(length=200), nullable=False),
    sa.Column('created_at', caturactl.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', caturactl.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('respond_by', caturactl.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('answered_at', caturactl.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('shipped_at', caturactl.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_at', caturactl.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['delivery_id'], ['deliveries.id'], ),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('number')
    )
    with op.batch_alter_table('purchase_orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_purchase_orders_delivery_id'), ['delivery_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_purchase_orders_order_id'), ['order_id'], unique=False)
        batch_op.create_index('ix_purchase_orders_partner_state', ['partner', 'state'], unique=False)
        batch_op.create_index('ix_purchase_orders_state_respond_by', ['state', 'respond_by'], unique=False)

    op.create_table('purchase_order_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('purchase_order_id', sa.Integer(), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.Column('order_line_id', sa.Integer(), nullable=False),
    sa.Column('delivery_line_id', sa.Integer(), nullable=False),
    sa.Column('sku', sa.String(length=100), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('shipped', sa.Integer(), nullable=False),
    sa.Column('purchase_price', caturactl.core.db.Amount(length=40), nullable=True),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('reject_reason', sa.String(length=20), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('answered_at', caturactl.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['delivery_line_id'], ['delivery_lines.id'], ),
    sa.ForeignKeyConstraint(['order_line_id'], ['order_lines.id'], ),
    sa.ForeignKeyConstraint(['purchase_order_id'], ['purchase_orders.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('purchase_order_id', 'line_no', name='uq_purchase_order_lines_po_line')
    )
    with op.batch_alter_table('purchase_order_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_purchase_order_lines_delivery_line_id'), ['delivery_line_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_purchase_order_lines_order_line_id'), ['order_line_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_purchase_order_lines_purchase_order_id'), ['purchase_order_id'], unique=False)

    op.create_table('purchase_order_parcels',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('purchase_order_id', sa.Integer(), nullable=False),
    sa.Column('carrier', sa.String(length=40), nullable=False),
    sa.Column('tracking_number', sa.String(length=40), nullable=False),
    sa.Column('items', sa.JSON(), nullable=False),
    sa.Column('shipped_at', caturactl.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=300), nullable=False),
    sa.Column('created_at', caturactl.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['purchase_order_id'], ['purchase_orders.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('purchase_order_id', 'tracking_number', name='uq_po_parcels_po_tracking')
    )
    with op.batch_alter_table('purchase_order_parcels', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_purchase_order_parcels_purchase_order_id'), ['purchase_order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_purchase_order_parcels_tracking_number'), ['tracking_number'], unique=False)

    op.create_table('purchase_order_cancellations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('purchase_order_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('answer', sa.Text(), nullable=False),
    sa.Column('requested_at', caturactl.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('answered_at', caturactl.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['purchase_order_id'], ['purchase_orders.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('purchase_order_cancellations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_purchase_order_cancellations_purchase_order_id'), ['purchase_order_id'], unique=False)

    op.create_table('dropship_availability',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('partner', sa.String(length=40), nullable=False),
    sa.Column('sku', sa.String(length=100), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('as_of', caturactl.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=300), nullable=False),
    sa.Column('updated_at', caturactl.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('partner', 'sku', name='uq_dropship_availability_partner_sku')
    )


def downgrade() -> None:
    op.drop_table('dropship_availability')
    with op.batch_alter_table('purchase_order_cancellations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_purchase_order_cancellations_purchase_order_id'))

    op.drop_table('purchase_order_cancellations')
    with op.batch_alter_table('purchase_order_parcels', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_purchase_order_parcels_tracking_number'))
        batch_op.drop_index(batch_op.f('ix_purchase_order_parcels_purchase_order_id'))

    op.drop_table('purchase_order_parcels')
    with op.batch_alter_table('purchase_order_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_purchase_order_lines_purchase_order_id'))
        batch_op.drop_index(batch_op.f('ix_purchase_order_lines_order_line_id'))
        batch_op.drop_index(batch_op.f('ix_purchase_order_lines_delivery_line_id'))

    op.drop_table('purchase_order_lines')
    with op.batch_alter_table('purchase_orders', schema=None) as batch_op:
        batch_op.drop_index('ix_purchase_orders_state_respond_by')
        batch_op.drop_index('ix_purchase_orders_partner_state')
        batch_op.drop_index(batch_op.f('ix_purchase_orders_order_id'))
        batch_op.drop_index(batch_op.f('ix_purchase_orders_delivery_id'))

    op.drop_table('purchase_orders')
