"""The catalogue: SKUs we know how to ship. An order line with an unknown SKU needs a person."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from caturactl.core.db import Amount, Base, UTCDateTime, utcnow


class Product(Base):
    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(500), default="")
    listing_id: Mapped[str] = mapped_column(String(20), default="")  # the channel's id of the listing
    weight_g: Mapped[int | None]
    length_mm: Mapped[int | None]
    width_mm: Mapped[int | None]
    height_mm: Mapped[int | None]
    price: Mapped[Decimal | None] = mapped_column(Amount)
    active: Mapped[bool] = mapped_column(default=True)
    tax_class: Mapped[str] = mapped_column(String(10), default="standard")  # standard | reduced (Anlage 2 UStG)


class ChannelStock(Base):
    """The quantity of a SKU last queued for a channel (``stock push``): the next push sends only
    what differs. ``version`` counts the pushes of the pair; it keys the outbox message, so a
    quantity that comes back to an earlier value is a new message, and a message overtaken by a
    newer one is not sent."""

    __tablename__ = "channel_stock"
    __table_args__ = (UniqueConstraint("channel", "sku", name="uq_channel_stock_channel_sku"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(40))
    sku: Mapped[str] = mapped_column(String(100))
    quantity: Mapped[int] = mapped_column(default=0)
    version: Mapped[int] = mapped_column(default=1)
    pushed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
