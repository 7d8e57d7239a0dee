"""portal: partner users, their sessions and the login throttle (caturactl/portal/)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 05:00:00
"""
from alembic import op
import sqlalchemy as sa

import caturactl.core.db


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('partner_users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('partner', sa.String(length=40), nullable=False),
    sa.Column('email', sa.String(length=200), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=True),
    sa.Column('invite_hash', sa.String(length=64), nullable=True),
    sa.Column('invite_expires_at', caturactl.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', caturactl.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', caturactl.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('email'),
    sa.UniqueConstraint('invite_hash')
    )
    op.create_index('ix_partner_users_partner', 'partner_users', ['partner'], unique=False)
    op.create_table('portal_sessions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('created_at', caturactl.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', caturactl.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['partner_users.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_portal_sessions_user_id', 'portal_sessions', ['user_id'], unique=False)
    op.create_index('ix_portal_sessions_expires_at', 'portal_sessions', ['expires_at'], unique=False)
    op.create_table('login_throttle',
    sa.Column('key', sa.String(length=250), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('last_failure_at', caturactl.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('blocked_until', caturactl.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_index('ix_login_throttle_blocked_until', 'login_throttle', ['blocked_until'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_login_throttle_blocked_until', table_name='login_throttle')
    op.drop_table('login_throttle')
    op.drop_index('ix_portal_sessions_expires_at', table_name='portal_sessions')
    op.drop_index('ix_portal_sessions_user_id', table_name='portal_sessions')
    op.drop_table('portal_sessions')
    op.drop_index('ix_partner_users_partner', table_name='partner_users')
    op.drop_table('partner_users')
