"""Tickets: an order (or a failed import) that waits for a person."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, orm_insert_sentinel, relationship

from caturactl.core.db import Base, UTCDateTime, utcnow
from caturactl.core.lifecycle import Lifecycle
from caturactl.orders.models import Order


class TicketStatus(str, enum.Enum):
    OPEN = "open"  # waits for a person
    RESOLVED = "resolved"  # answered (``resolution`` says how) or closed because it was dealt with


TICKET = Lifecycle("ticket", "Ticket", TicketStatus, {
    None: {TicketStatus.OPEN},
    TicketStatus.OPEN: {TicketStatus.RESOLVED},
    TicketStatus.RESOLVED: set(),
}, links=lambda t: {"order": t.order, "ticket": t}, describe=lambda t: t.number)
OPEN, RESOLVED = TicketStatus.OPEN.value, TicketStatus.RESOLVED.value
# What a ticket is about: the rule or the stage that needs a person.
KINDS = ("triage", "import_failed", "no_carrier", "export_failed", "overdue", "outbox_failed",
         "confirmation_rejected", "stop_delivery", "cancelled_after_shipping", "invoice_rejected", "invoice_failed", "job_failed",
         "payment", "dropship", "returned")


class Ticket(Base):
    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(primary_key=True)
    _sentinel: Mapped[int] = orm_insert_sentinel()  # lets SQLite batch INSERT ... RETURNING
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    # A ticket for an order that could not even be stored names it by the channel's id.
    external_ref: Mapped[str] = mapped_column(String(100), default="")
    kind: Mapped[str] = mapped_column(String(30))  # triage | import_failed | ...
    reasons: Mapped[str] = mapped_column(String(300), default="")  # rule codes, comma-separated
    text: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(10), default=OPEN, index=True)  # TICKET
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str] = mapped_column(String(100), default="")
    resolution: Mapped[str] = mapped_column(String(20), default="")  # released | cancelled | closed
    note: Mapped[str] = mapped_column(Text, default="")

    order: Mapped[Order | None] = relationship()

    @property
    def number(self) -> str:
        return f"T{self.id}"
