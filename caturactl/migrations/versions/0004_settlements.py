"""settlements

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 08:34:55.204546
"""
from alembic import op
import sqlalchemy as sa
import caturactl.core.db


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('settlements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('settlement_id', sa.String(length=40), nullable=False),
    sa.Column('start', caturactl.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('end', caturactl.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deposit_date', caturactl.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('total_amount', caturactl.core.db.Amount(length=40), nullable=False),
    sa.Column('lines', sa.Integer(), nullable=False),
    sa.Column('sales', caturactl.core.db.Amount(length=40), nullable=False),
    sa.Column('refunds', caturactl.core.db.Amount(length=40), nullable=False),
    sa.Column('fees', caturactl.core.db.Amount(length=40), nullable=False),
    sa.Column('reserve', caturactl.core.db.Amount(length=40), nullable=False),
    sa.Column('other', caturactl.core.db.Amount(length=40), nullable=False),
    sa.Column('differences_total', caturactl.core.db.Amount(length=40), nullable=False),
    sa.Column('by_type', sa.JSON(), nullable=False),
    sa.Column('file_name', sa.String(length=300), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('imported_at', caturactl.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('settlement_id')
    )
    op.create_table('settlement_differences',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('settlement_pk', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.String(length=50), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('amount', caturactl.core.db.Amount(length=40), nullable=False),
    sa.Column('settled', caturactl.core.db.Amount(length=40), nullable=False),
    sa.Column('expected', caturactl.core.db.Amount(length=40), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['settlement_pk'], ['settlements.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('settlement_differences', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_settlement_differences_settlement_pk'), ['settlement_pk'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('settlement_differences', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_settlement_differences_settlement_pk'))

    op.drop_table('settlement_differences')
    op.drop_table('settlements')
