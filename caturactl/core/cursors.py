"""Cursors (how far each connector has read) and the remembered state of remote rate limits
(``stored_budgets`` / ``keep_budget``: what an adapter starts from and leaves behind)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from caturactl.core.db import Base, UTCDateTime, utcnow


class Cursor(Base):
    """Per connector and marketplace: everything updated before ``watermark`` is stored.

    While a multi-page run is under way, ``page_token`` and ``page_after`` let a crashed run resume
    at the next page (Amazon's token lives 24 h); they advance in the transaction storing the page.
    """

    __tablename__ = "cursors"
    __table_args__ = (UniqueConstraint("connector", "scope", name="uq_cursors_connector_scope"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    connector: Mapped[str] = mapped_column(String(40))  # "amazon.orders"
    scope: Mapped[str] = mapped_column(String(400))  # marketplace ids, comma-separated and sorted
    watermark: Mapped[datetime | None] = mapped_column(UTCDateTime)
    page_after: Mapped[datetime | None] = mapped_column(UTCDateTime)
    page_token: Mapped[str | None] = mapped_column(Text)
    page_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class RateBudget(Base):
    """Tokens left in a remote operation's bucket when we last called it, so the next process
    does not assume a full burst that the remote side has not refilled yet."""

    __tablename__ = "rate_budgets"

    operation: Mapped[str] = mapped_column(String(80), primary_key=True)
    tokens: Mapped[float]
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def stored_budgets(session: Session) -> dict[str, tuple[float, datetime]]:
    """Per remote operation, the tokens its bucket had left when last called, and when."""
    return {b.operation: (b.tokens, b.at) for b in session.scalars(select(RateBudget))}


def keep_budget(session: Session, operation: str, tokens: float, at: datetime) -> None:
    """Remember what is left of ``operation``'s rate bucket for the next process (the caller
    commits). One upsert, not a read and then a write: two processes finishing at once (two
    collectors, say) would both find no row and both insert it."""
    from sqlalchemy.dialects import postgresql, sqlite
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(RateBudget).values(operation=operation, tokens=tokens, at=at)
    session.execute(stmt.on_conflict_do_update(index_elements=[RateBudget.operation],
                                               set_={"tokens": stmt.excluded.tokens, "at": stmt.excluded.at}))
