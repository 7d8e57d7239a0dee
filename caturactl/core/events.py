"""The event log: every state change and every notable act, with who, when, from, to and why."""

from __future__ import annotations

import contextvars
import enum
from contextlib import contextmanager
from datetime import datetime
from typing import Iterator

from sqlalchemy import JSON, ForeignKey, Index, String, Text, insert
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from caturactl.core.db import Base, UTCDateTime, utcnow


class EventKind(str, enum.Enum):
    STATE_CHANGED = "state_changed"
    ORDER_UPDATED = "order_updated"  # the channel changed the order (address added, status, ...)
    CUSTOMER_MATCHED = "customer_matched"
    CUSTOMER_MERGED = "customer_merged"
    TICKET_OPENED = "ticket_opened"
    TICKET_RESOLVED = "ticket_resolved"
    IMPORT_FAILED = "import_failed"
    ROUTED = "routed"  # delivery notes made for an order
    EXPORTED = "exported"  # a delivery note handed to the outbox
    CONFIRMATION = "confirmation"  # a location reported parcels with tracking numbers
    CONFIRMATION_REJECTED = "confirmation_rejected"
    OUTBOX_SENT = "outbox_sent"
    OUTBOX_FAILED = "outbox_failed"
    INVOICED = "invoiced"  # an invoice or credit note issued or delivered
    REVIEW_REQUESTED = "review_requested"
    PAYMENT_RECEIVED = "payment_received"  # a bank credit applied to a payment
    PAYMENT_RETURNED = "payment_returned"  # a returned direct debit took money back from a payment
    NOTE = "note"  # a person's note on an order (orders note, orders create --note)


# Who acts: "cli:import amazon", "job:import", "api". Set once by the CLI or the job runner.
actor: contextvars.ContextVar[str] = contextvars.ContextVar("caturactl_actor", default="api")


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (Index("ix_events_subject", "subject", "subject_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(30))
    actor: Mapped[str] = mapped_column(String(100))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id"), index=True)
    from_state: Mapped[str] = mapped_column(String(20), default="")
    to_state: Mapped[str] = mapped_column(String(20), default="")
    # The thing whose state moved (its lifecycle's name and id: "outbox", 12), for the things
    # without a link of their own above; empty for an event that is not a move.
    subject: Mapped[str] = mapped_column(String(20), default="")
    subject_id: Mapped[int | None]
    why: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict | None] = mapped_column(JSON)

    # Linked as objects, so an event for an order or customer not yet flushed needs no round trip.
    order = relationship("Order")
    customer = relationship("Customer")
    ticket = relationship("Ticket")
    delivery = relationship("DeliveryNote")


_BUFFER = "caturactl.event_buffer"


def record(session: Session, kind: EventKind, why: str, *, order=None, customer=None, ticket=None,
           delivery=None, from_state: str = "", to_state: str = "", subject: str = "", subject_id: int | None = None,
           data: dict | None = None) -> None:
    """Append one event in the caller's transaction (the one way to write an event; a state
    moves through ``caturactl.core.lifecycle.move``, which calls this)."""
    buffer = session.info.get(_BUFFER)
    if buffer is not None:
        buffer.append((kind.value, actor.get(), utcnow(), order, customer, ticket, delivery, from_state, to_state,
                       subject, subject_id, why, data))
        return
    session.add(Event(kind=kind.value, actor=actor.get(), order=order, customer=customer, ticket=ticket, delivery=delivery,
                      from_state=from_state, to_state=to_state, subject=subject, subject_id=subject_id, why=why,
                      data=data))


@contextmanager
def buffered(session: Session) -> Iterator[None]:
    """Events recorded inside are written at the end in one bulk INSERT, after a flush has given
    the rows they name their ids (bulk import: events are a third of the rows). Leaving by an
    exception drops them with the caller's savepoint."""
    outer = session.info.get(_BUFFER)
    buffer: list[tuple] = []
    session.info[_BUFFER] = buffer
    try:
        yield
        if buffer:
            session.flush()
            session.execute(insert(Event.__table__), [  # Core: one executemany, no RETURNING
                {"kind": k, "actor": a, "at": at, "order_id": o.id if o is not None else None,
                 "customer_id": c.id if c is not None else None, "ticket_id": t.id if t is not None else None,
                 "delivery_id": dn.id if dn is not None else None,
                 "from_state": f, "to_state": to, "subject": sj, "subject_id": sid, "why": w, "data": d}
                for (k, a, at, o, c, t, dn, f, to, sj, sid, w, d) in buffer])
    finally:
        if outer is None:
            session.info.pop(_BUFFER, None)
        else:
            session.info[_BUFFER] = outer
