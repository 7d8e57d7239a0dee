"""Delivery notes (Lieferscheine), the parcels that left with them, stock per location, and the
files read from return channels.

An order's lines are split into one delivery note per fulfilment location; each note has its
own state (``caturactl.core.lifecycle.DeliveryState``, written only by ``transition_delivery``),
its carrier choice with the reasons, and its parcels with tracking numbers. A note is keyed
everywhere outside by its number ("L000123"), which is what locations send back.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, orm_insert_sentinel, relationship

from caturactl.core.db import Amount, Base, UTCDateTime, utcnow
from caturactl.core.lifecycle import Lifecycle
from caturactl.orders.models import Order, OrderLine

NUMBER_PREFIX = "L"


def delivery_number(delivery_id: int) -> str:
    return f"{NUMBER_PREFIX}{delivery_id:06d}"


class DeliveryNote(Base):
    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_state_deadline", "state", "deadline_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    _sentinel: Mapped[int] = orm_insert_sentinel()  # lets SQLite batch INSERT ... RETURNING
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    location: Mapped[str] = mapped_column(String(40))  # [locations.CODE]
    _state: Mapped[str] = mapped_column("state", String(30))
    carrier_key: Mapped[str] = mapped_column(String(40), default="")  # [carriers.KEY]; "" = none eligible
    carrier: Mapped[str] = mapped_column(String(40), default="")
    service: Mapped[str] = mapped_column(String(40), default="")
    express: Mapped[bool] = mapped_column(default=False)
    ship_date: Mapped[date | None] = mapped_column(Date)
    delivery_date: Mapped[date | None] = mapped_column(Date)  # expected, from the matrix
    planned_parcels: Mapped[list] = mapped_column(JSON, default=list)  # [[weight_g, l, w, h], ...]
    price: Mapped[Decimal | None] = mapped_column(Amount)  # EUR, the matrix's price for the parcels
    choice: Mapped[dict] = mapped_column(JSON, default=dict)  # ranking and rejected with reasons
    file_name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    exported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"), index=True)

    order: Mapped[Order] = relationship()
    lines: Mapped[list["DeliveryLine"]] = relationship(back_populates="delivery", order_by="DeliveryLine.id",
                                                       cascade="all, delete-orphan")
    parcels: Mapped[list["ShippedParcel"]] = relationship(back_populates="delivery",
                                                          order_by="ShippedParcel.id", cascade="all, delete-orphan")

    @property
    def state(self) -> str:
        return self._state

    @property
    def number(self) -> str:
        return delivery_number(self.id)

    @property
    def open_quantity(self) -> int:
        return sum(line.quantity - line.shipped for line in self.lines)


class DeliveryLine(Base):
    __tablename__ = "delivery_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    _sentinel: Mapped[int] = orm_insert_sentinel()
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"), index=True)
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_lines.id"), index=True)
    sku: Mapped[str] = mapped_column(String(100))
    quantity: Mapped[int]
    shipped: Mapped[int] = mapped_column(default=0)

    delivery: Mapped[DeliveryNote] = relationship(back_populates="lines")
    order_line: Mapped[OrderLine] = relationship()


class ShippedParcel(Base):
    """One parcel a location reported as shipped, with its tracking number."""

    __tablename__ = "parcels"
    __table_args__ = (UniqueConstraint("delivery_id", "tracking_number", name="uq_parcels_delivery_tracking"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"), index=True)
    package_reference: Mapped[int]  # 1, 2, ... within the order (Amazon packageReferenceId)
    carrier: Mapped[str] = mapped_column(String(40))
    service: Mapped[str] = mapped_column(String(40), default="")
    tracking_number: Mapped[str] = mapped_column(String(40), index=True)
    weight_g: Mapped[int | None]
    items: Mapped[list] = mapped_column(JSON, default=list)  # [[sku, quantity], ...] in this parcel
    shipped_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(300), default="")  # "transport:FILE:LINE"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    channel_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    delivery: Mapped[DeliveryNote] = relationship(back_populates="parcels")


class Stock(Base):
    """What a location holds of one SKU; ``reserved`` is promised to delivery notes not yet shipped."""

    __tablename__ = "stock"
    __table_args__ = (UniqueConstraint("location", "sku", name="uq_stock_location_sku"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    location: Mapped[str] = mapped_column(String(40))
    sku: Mapped[str] = mapped_column(String(100))
    on_hand: Mapped[int] = mapped_column(default=0)
    reserved: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


class InboundFileStatus(str, enum.Enum):
    PROCESSED = "processed"  # the row is the claim, inserted before the file is applied
    REJECTED = "rejected"  # applying it failed: nothing of it applied, a ticket is open


INBOUND_FILE = Lifecycle("inbound_file", "InboundFile", InboundFileStatus, {
    None: {InboundFileStatus.PROCESSED},
    InboundFileStatus.PROCESSED: {InboundFileStatus.REJECTED},
    InboundFileStatus.REJECTED: set(),
}, describe=lambda f: f"{f.transport}:{f.name}")


class InboundFile(Base):
    """A file read from a return channel: processed or rejected, so a re-read after a crash
    between commit and move-aside is recognised by its content hash."""

    __tablename__ = "inbound_files"
    __table_args__ = (UniqueConstraint("transport", "sha256", name="uq_inbound_files_transport_sha"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    transport: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(10))  # INBOUND_FILE
    confirmations: Mapped[int] = mapped_column(default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
