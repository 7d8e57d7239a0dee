"""job runs: one row per scheduled slot, its lease and its outcome

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 09:55:00
"""
from alembic import op
import sqlalchemy as sa
import caturactl.core.db


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('job_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job', sa.String(length=100), nullable=False),
    sa.Column('slot_at', caturactl.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('trigger', sa.String(length=10), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('runner', sa.String(length=120), nullable=False),
    sa.Column('host', sa.String(length=100), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=True),
    sa.Column('command', sa.Text(), nullable=False),
    sa.Column('lease_until', caturactl.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', caturactl.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', caturactl.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('exit_code', sa.Integer(), nullable=True),
    sa.Column('summary', sa.String(length=300), nullable=False),
    sa.Column('output', sa.Text(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('job', 'slot_at', name='uq_job_runs_slot')
    )
    op.create_index('ix_job_runs_job_started', 'job_runs', ['job', 'started_at'], unique=False)
    op.create_index(op.f('ix_job_runs_state'), 'job_runs', ['state'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_job_runs_state'), table_name='job_runs')
    op.drop_index('ix_job_runs_job_started', table_name='job_runs')
    op.drop_table('job_runs')
