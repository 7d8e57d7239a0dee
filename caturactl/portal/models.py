"""The partner portal's own tables: partner users, their sessions, and the login throttle.

Nothing secret is stored in the clear: passwords are argon2 hashes, session and invitation
tokens are kept as their SHA-256 (a copy of the table logs nobody in).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from caturactl.core.db import Base, UTCDateTime, utcnow


class PartnerUser(Base):
    """One person who logs in for a partner (a dropshipper's location code, e.g. "DS1")."""

    __tablename__ = "partner_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    partner: Mapped[str] = mapped_column(String(40), index=True)
    email: Mapped[str] = mapped_column(String(200), unique=True)  # lower case; the login name
    password_hash: Mapped[str | None] = mapped_column(String(200))  # argon2; None until the invitation is used
    invite_hash: Mapped[str | None] = mapped_column(String(64), unique=True)  # SHA-256 of the link's token
    invite_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PortalSession(Base):
    """A logged-in browser: the cookie holds a random token, this row its SHA-256."""

    __tablename__ = "portal_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 hex of the cookie's token
    user_id: Mapped[int] = mapped_column(ForeignKey("partner_users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)

    user: Mapped[PartnerUser] = relationship()


class LoginThrottle(Base):
    """Failed logins counted per key ("user:EMAIL" or "ip:ADDRESS"), and until when that key
    must wait before its next try (on the app's clock)."""

    __tablename__ = "login_throttle"
    __table_args__ = (Index("ix_login_throttle_blocked_until", "blocked_until"),)

    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime)
    blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
