"""payments: expected payments (their own lifecycle), bank statements imported once, their credits
and the receipts that apply a credit to a payment

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 01:29:29.129853
"""
from alembic import op
import sqlalchemy as sa
import caturactl.core.db


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bank_statements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('identity', sa.String(length=200), nullable=False),
    sa.Column('format', sa.String(length=20), nullable=False),
    sa.Column('account', sa.String(length=40), nullable=False),
    sa.Column('statement_id', sa.String(length=80), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('opening', caturactl.core.db.Amount(length=40), nullable=True),
    sa.Column('closing', caturactl.core.db.Amount(length=40), nullable=True),
    sa.Column('entries', sa.Integer(), nullable=False),
    sa.Column('file_name', sa.String(length=300), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('imported_at', caturactl.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('identity')
    )
    op.create_table('bank_credits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('statement_pk', sa.Integer(), nullable=False),
    sa.Column('entry_ref', sa.String(length=80), nullable=False),
    sa.Column('booking_date', sa.Date(), nullable=False),
    sa.Column('amount', caturactl.core.db.Amount(length=40), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('debtor_name', sa.String(length=140), nullable=False),
    sa.Column('debtor_iban', sa.String(length=34), nullable=False),
    sa.Column('remittance', sa.Text(), nullable=False),
    sa.Column('end_to_end_id', sa.String(length=40), nullable=False),
    sa.Column('return_reason', sa.String(length=10), nullable=False),
    sa.Column('outcome', sa.String(length=12), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['statement_pk'], ['bank_statements.id'], ),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('bank_credits', schema=None) as batch_op:
        batch_op.create_index('ix_bank_credits_end_to_end', ['end_to_end_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_bank_credits_outcome'), ['outcome'], unique=False)
        batch_op.create_index(batch_op.f('ix_bank_credits_statement_pk'), ['statement_pk'], unique=False)

    op.create_table('payments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=True),
    sa.Column('method', sa.String(length=12), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount_expected', caturactl.core.db.Amount(length=40), nullable=False),
    sa.Column('amount_paid', caturactl.core.db.Amount(length=40), nullable=False),
    sa.Column('reference', sa.String(length=140), nullable=False),
    sa.Column('due_at', caturactl.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('created_at', caturactl.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('paid_at', caturactl.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], ),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payments_invoice_id'), ['invoice_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payments_order_id'), ['order_id'], unique=False)
        batch_op.create_index('ix_payments_status_due', ['status', 'due_at'], unique=False)

    op.create_table('payment_receipts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('payment_id', sa.Integer(), nullable=False),
    sa.Column('credit_id', sa.Integer(), nullable=False),
    sa.Column('amount', caturactl.core.db.Amount(length=40), nullable=False),
    sa.Column('matched_by', sa.String(length=20), nullable=False),
    sa.Column('created_at', caturactl.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['credit_id'], ['bank_credits.id'], ),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('payment_receipts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_receipts_credit_id'), ['credit_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payment_receipts_payment_id'), ['payment_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('payment_receipts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_receipts_payment_id'))
        batch_op.drop_index(batch_op.f('ix_payment_receipts_credit_id'))

    op.drop_table('payment_receipts')
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index('ix_payments_status_due')
        batch_op.drop_index(batch_op.f('ix_payments_order_id'))
        batch_op.drop_index(batch_op.f('ix_payments_invoice_id'))

    op.drop_table('payments')
    with op.batch_alter_table('bank_credits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bank_credits_statement_pk'))
        batch_op.drop_index(batch_op.f('ix_bank_credits_outcome'))
        batch_op.drop_index('ix_bank_credits_end_to_end')

    op.drop_table('bank_credits')
    op.drop_table('bank_statements')
