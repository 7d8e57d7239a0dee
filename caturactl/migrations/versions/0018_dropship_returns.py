"""dropship returns, partner invoices and purchase credits (caturactl/fulfilment/dropship/returns.py,
purchases.py)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 08:00:00
"""
from alembic import op
import sqlalchemy as sa
import caturactl.core.db


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('purchase_invoices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('partner', sa.String(length=40), nullable=False),
    sa.Column('number', sa.String(length=40), nullable=False),
    sa.Column('issue_date', sa.Date(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('net_total', caturactl.core.db.Amount(length=40), nullable=False),
    sa.Column('tax_total', caturactl.core.db.Amount(length=40), nullable=False),
    sa.Column('gross_total', caturactl.core.db.Amount(length=40), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('source', sa.String(length=10), nullable=False),
    sa.Column('file_name', sa.String(length=300), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('imported_at', caturactl.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_at', caturactl.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decision', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('partner', 'number', name='uq_purchase_invoices_partner_number')
    )
    with op.batch_alter_table('purchase_invoices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_purchase_invoices_issue_date'), ['issue_date'], unique=False)

    op.create_table('dropship_returns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=20), nullable=True),
    sa.Column('partner', sa.String(length=40), nullable=False),
    sa.Column('purchase_order_id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('source', sa.String(length=100), nullable=False),
    sa.Column('label_reference', sa.String(length=40), nullable=False),
    sa.Column('condition', sa.String(length=20), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('decision', sa.Text(), nullable=False),
    sa.Column('credit_note', sa.String(length=100), nullable=False),
    sa.Column('announced_at', caturactl.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('received_at', caturactl.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('received_by', sa.String(length=100), nullable=False),
    sa.Column('decided_at', caturactl.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.ForeignKeyConstraint(['purchase_order_id'], ['purchase_orders.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('number')
    )
    with op.batch_alter_table('dropship_returns', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dropship_returns_order_id'), ['order_id'], unique=False)
        batch_op.create_index('ix_dropship_returns_partner_state', ['partner', 'state'], unique=False)
        batch_op.create_index(batch_op.f('ix_dropship_returns_purchase_order_id'), ['purchase_order_id'], unique=False)

    op.create_table('dropship_return_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('return_id', sa.Integer(), nullable=False),
    sa.Column('purchase_order_line_id', sa.Integer(), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.Column('sku', sa.String(length=100), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['purchase_order_line_id'], ['purchase_order_lines.id'], ),
    sa.ForeignKeyConstraint(['return_id'], ['dropship_returns.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('dropship_return_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dropship_return_lines_purchase_order_line_id'), ['purchase_order_line_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_dropship_return_lines_return_id'), ['return_id'], unique=False)

    op.create_table('purchase_credits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('partner', sa.String(length=40), nullable=False),
    sa.Column('return_id', sa.Integer(), nullable=False),
    sa.Column('issue_date', sa.Date(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('net', caturactl.core.db.Amount(length=40), nullable=False),
    sa.Column('tax_rate', caturactl.core.db.Amount(length=40), nullable=False),
    sa.Column('tax', caturactl.core.db.Amount(length=40), nullable=False),
    sa.Column('gross', caturactl.core.db.Amount(length=40), nullable=False),
    sa.Column('created_at', caturactl.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['return_id'], ['dropship_returns.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('return_id', 'tax_rate', name='uq_purchase_credits_return_rate')
    )
    with op.batch_alter_table('purchase_credits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_purchase_credits_issue_date'), ['issue_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_purchase_credits_partner'), ['partner'], unique=False)

    op.create_table('purchase_invoice_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('purchase_order', sa.String(length=40), nullable=False),
    sa.Column('purchase_order_line_id', sa.Integer(), nullable=True),
    sa.Column('sku', sa.String(length=100), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('unit_price', caturactl.core.db.Amount(length=40), nullable=False),
    sa.Column('net', caturactl.core.db.Amount(length=40), nullable=False),
    sa.Column('tax_rate', caturactl.core.db.Amount(length=40), nullable=False),
    sa.Column('expected_price', caturactl.core.db.Amount(length=40), nullable=True),
    sa.Column('difference', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['invoice_id'], ['purchase_invoices.id'], ),
    sa.ForeignKeyConstraint(['purchase_order_line_id'], ['purchase_order_lines.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('purchase_invoice_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_purchase_invoice_lines_invoice_id'), ['invoice_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_purchase_invoice_lines_purchase_order_line_id'), ['purchase_order_line_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('purchase_invoice_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_purchase_invoice_lines_purchase_order_line_id'))
        batch_op.drop_index(batch_op.f('ix_purchase_invoice_lines_invoice_id'))

    op.drop_table('purchase_invoice_lines')
    with op.batch_alter_table('purchase_credits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_purchase_credits_partner'))
        batch_op.drop_index(batch_op.f('ix_purchase_credits_issue_date'))

    op.drop_table('purchase_credits')
    with op.batch_alter_table('dropship_return_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dropship_return_lines_return_id'))
        batch_op.drop_index(batch_op.f('ix_dropship_return_lines_purchase_order_line_id'))

    op.drop_table('dropship_return_lines')
    with op.batch_alter_table('dropship_returns', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dropship_returns_purchase_order_id'))
        batch_op.drop_index('ix_dropship_returns_partner_state')
        batch_op.drop_index(batch_op.f('ix_dropship_returns_order_id'))

    op.drop_table('dropship_returns')
    with op.batch_alter_table('purchase_invoices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_purchase_invoices_issue_date'))

    op.drop_table('purchase_invoices')
