"""settlement fees per kind of line (each booked on its own account); export periods as local days

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 10:00:00
"""
from datetime import datetime, time, timezone
from decimal import Decimal

from alembic import op
import sqlalchemy as sa
import caturactl.core.db


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def _is_fee_or_other(key: str) -> bool:
    # caturactl.accounting.settlement.kind_of as of this revision, frozen here: the lines that are not a
    # sale, a refund or the reserve. Settlements imported before kept them in by_type only.
    transaction_type, amount_type, description = (key.split("/", 2) + ["", ""])[:3]
    if "reserve" in description.lower():
        return False
    return not (amount_type in ("ItemPrice", "Promotion") and transaction_type in ("Order", "Refund"))


def upgrade() -> None:
    op.create_table('settlement_fees',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('settlement_pk', sa.Integer(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('amount', caturactl.core.db.Amount(length=40), nullable=False),
    sa.ForeignKeyConstraint(['settlement_pk'], ['settlements.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('settlement_fees', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_settlement_fees_settlement_pk'), ['settlement_pk'], unique=False)
    conn = op.get_bind()
    settlements = sa.table('settlements', sa.column('id', sa.Integer), sa.column('by_type', sa.JSON))
    fees = sa.table('settlement_fees', sa.column('settlement_pk', sa.Integer), sa.column('description', sa.Text),
                    sa.column('amount', caturactl.core.db.Amount()))
    rows = [{"settlement_pk": pk, "description": key, "amount": Decimal(amount)}
            for pk, by_type in conn.execute(sa.select(settlements.c.id, settlements.c.by_type)).all()
            for key, amount in sorted((by_type or {}).items()) if _is_fee_or_other(key)]
    if rows:
        conn.execute(fees.insert(), rows)
    _convert_export_periods(sa.Date(), lambda moment: moment and moment.astimezone(timezone.utc).date())


def downgrade() -> None:
    _convert_export_periods(caturactl.core.db.UTCDateTime(timezone=True),
                            lambda day: day and datetime.combine(day, time(), timezone.utc))
    with op.batch_alter_table('settlement_fees', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_settlement_fees_settlement_pk'))
    op.drop_table('settlement_fees')


def _convert_export_periods(new_type, convert) -> None:
    """export_batches.date_from/date_to to ``new_type``, each value through ``convert``. A new
    column, copied row by row, replaces the old one: SQLite's batch mode would CAST a datetime
    text to DATE, and SQLite makes 2026 of that."""
    old_type = sa.Date() if isinstance(new_type, caturactl.core.db.UTCDateTime) else \
        caturactl.core.db.UTCDateTime(timezone=True)
    with op.batch_alter_table('export_batches') as batch:
        batch.add_column(sa.Column('new_date_from', new_type, nullable=True))
        batch.add_column(sa.Column('new_date_to', new_type, nullable=True))
    batches = sa.table('export_batches', sa.column('id', sa.Integer), sa.column('date_from', old_type),
                       sa.column('date_to', old_type), sa.column('new_date_from', new_type),
                       sa.column('new_date_to', new_type))
    conn = op.get_bind()
    for pk, date_from, date_to in conn.execute(sa.select(batches.c.id, batches.c.date_from, batches.c.date_to)).all():
        conn.execute(batches.update().where(batches.c.id == pk)
                     .values(new_date_from=convert(date_from), new_date_to=convert(date_to)))
    with op.batch_alter_table('export_batches') as batch:
        batch.drop_column('date_from')
        batch.drop_column('date_to')
        batch.alter_column('new_date_from', new_column_name='date_from')
        batch.alter_column('new_date_to', new_column_name='date_to')
