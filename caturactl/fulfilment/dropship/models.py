"""Purchase orders to dropshippers (Bestellungen an Streckenlieferanten), their lines, the parcels
partners reported, our cancellation requests, and the partners' availability feeds.

A purchase order is the purchase side of one delivery note at a dropshipper location: the note
keeps the buyer's side (carrier, parcels, the channel's confirmation, the invoice from the
merchant), the purchase order what we asked the partner for, at which price, and what it
answered. States move only through ``caturactl.core.lifecycle.move`` (``PURCHASE_ORDER``,
``PURCHASE_LINE``, ``PO_CANCELLATION`` declared there). A purchase order is keyed outside by its
number ("PO000123"), which is what partners send back.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from typing import Sequence, TypeVar

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from caturactl.core.db import Amount, Base, UTCDateTime, utcnow
from caturactl.core.errors import InputError
from caturactl.fulfilment.models import DeliveryLine, DeliveryNote
from caturactl.orders.models import Order, OrderLine

NUMBER_PREFIX = "PO"


Owned = TypeVar("Owned", bound=Base)


def partners_row(session: Session, model: type[Owned], number: str, partners: Sequence[str], *, what: str,
                 where: str, also=(), options=()) -> Owned:
    """The ``model`` row (a purchase order, a return) numbered ``number`` that one of ``partners``
    owns, locked for the file that names it, with ``options`` loaded. InputError naming ``where``
    otherwise, or when ``also`` (more conditions) does not hold: another partner's row is as
    unknown here as one that does not exist."""
    row = session.scalar(select(model).where(model.number == number, *also).options(*options)
                         .with_for_update(of=model, key_share=True))
    if row is None or row.partner not in partners:
        raise InputError(f"unknown {what} {number!r} for {', '.join(partners)}", where=where)
    return row


def po_number(po_id: int) -> str:
    """The number partners know a purchase order by."""
    return f"{NUMBER_PREFIX}{po_id:06d}"


class PurchaseOrder(Base):
    __tablename__ = "purchase_orders"
    __table_args__ = (Index("ix_purchase_orders_partner_state", "partner", "state"),
                      Index("ix_purchase_orders_state_respond_by", "state", "respond_by"))

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str | None] = mapped_column(String(20), unique=True)  # set once the row has its id
    partner: Mapped[str] = mapped_column(String(40))  # [locations.CODE] of kind "dropshipper"
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"), index=True)
    _state: Mapped[str] = mapped_column("state", String(20))  # PURCHASE_ORDER
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    file_name: Mapped[str] = mapped_column(String(200), default="")  # "" when the partner uses the portal
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    respond_by: Mapped[datetime | None] = mapped_column(UTCDateTime)  # in the partner's business hours
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    order: Mapped[Order] = relationship()
    delivery: Mapped[DeliveryNote] = relationship()
    lines: Mapped[list["PurchaseOrderLine"]] = relationship(back_populates="purchase_order",
                                                            order_by="PurchaseOrderLine.line_no",
                                                            cascade="all, delete-orphan")
    parcels: Mapped[list["PurchaseOrderParcel"]] = relationship(back_populates="purchase_order",
                                                                order_by="PurchaseOrderParcel.id",
                                                                cascade="all, delete-orphan")

    @property
    def state(self) -> str:
        return self._state

    @property
    def total(self) -> Decimal:
        """What the accepted and open lines cost at the agreed prices (lines without a price count 0)."""
        return sum(((ln.purchase_price or Decimal(0)) * ln.quantity for ln in self.lines
                    if ln.state in ("open", "accepted", "shipped")), Decimal(0))


class PurchaseOrderLine(Base):
    __tablename__ = "purchase_order_lines"
    __table_args__ = (UniqueConstraint("purchase_order_id", "line_no", name="uq_purchase_order_lines_po_line"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    purchase_order_id: Mapped[int] = mapped_column(ForeignKey("purchase_orders.id"), index=True)
    line_no: Mapped[int]  # 1, 2, ... within the purchase order (openTRANS LINE_ITEM_ID)
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_lines.id"), index=True)
    delivery_line_id: Mapped[int] = mapped_column(ForeignKey("delivery_lines.id"), index=True)
    sku: Mapped[str] = mapped_column(String(100))
    quantity: Mapped[int]
    shipped: Mapped[int] = mapped_column(default=0)
    purchase_price: Mapped[Decimal | None] = mapped_column(Amount)  # net, each (Einkaufspreis); None: no price agreed
    _state: Mapped[str] = mapped_column("state", String(20))  # PURCHASE_LINE
    reject_reason: Mapped[str] = mapped_column(String(20), default="")  # one of service.REJECT_REASONS
    note: Mapped[str] = mapped_column(Text, default="")  # the partner's words with a rejection
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ship_by: Mapped[datetime | None] = mapped_column(UTCDateTime)  # accepted: the end of its last day to ship

    purchase_order: Mapped[PurchaseOrder] = relationship(back_populates="lines")
    order_line: Mapped[OrderLine] = relationship()
    delivery_line: Mapped[DeliveryLine] = relationship()

    @property
    def state(self) -> str:
        return self._state


class PurchaseOrderParcel(Base):
    """One parcel a partner reported for a purchase order (the buyer's side of it is the
    ``ShippedParcel`` of the delivery note, made by the same confirmation)."""

    __tablename__ = "purchase_order_parcels"
    __table_args__ = (UniqueConstraint("purchase_order_id", "tracking_number", name="uq_po_parcels_po_tracking"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    purchase_order_id: Mapped[int] = mapped_column(ForeignKey("purchase_orders.id"), index=True)
    carrier: Mapped[str] = mapped_column(String(40))
    tracking_number: Mapped[str] = mapped_column(String(40), index=True)
    items: Mapped[list] = mapped_column(JSON, default=list)  # [[line_no, quantity], ...]
    shipped_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(300), default="")  # "portal:who", "transport:FILE"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    purchase_order: Mapped[PurchaseOrder] = relationship(back_populates="parcels")


class PurchaseOrderCancellation(Base):
    """Our request that a partner not ship a purchase order (the buyer cancelled)."""

    __tablename__ = "purchase_order_cancellations"

    id: Mapped[int] = mapped_column(primary_key=True)
    purchase_order_id: Mapped[int] = mapped_column(ForeignKey("purchase_orders.id"), index=True)
    _state: Mapped[str] = mapped_column("state", String(20))  # PO_CANCELLATION
    reason: Mapped[str] = mapped_column(Text, default="")
    answer: Mapped[str] = mapped_column(Text, default="")
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    purchase_order: Mapped[PurchaseOrder] = relationship()

    @property
    def state(self) -> str:
        return self._state


class DropshipAvailability(Base):
    """What a partner said it has of one SKU, and when it said so (``as_of``): a figure older than
    the partner's ``availability_max_age_hours`` counts as zero."""

    __tablename__ = "dropship_availability"
    __table_args__ = (UniqueConstraint("partner", "sku", name="uq_dropship_availability_partner_sku"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    partner: Mapped[str] = mapped_column(String(40))
    sku: Mapped[str] = mapped_column(String(100))
    quantity: Mapped[int]
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(300), default="")  # "portal:who", "FILE", "cli:..."
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
