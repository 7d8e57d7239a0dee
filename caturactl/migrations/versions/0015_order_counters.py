"""order_counters: the numbers of orders taken at the terminal (TEL-2026-00001), per prefix and year

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 03:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('order_counters',
    sa.Column('prefix', sa.String(length=20), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('last', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('prefix', 'year')
    )


def downgrade() -> None:
    op.drop_table('order_counters')
