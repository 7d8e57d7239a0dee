"""The catalogue: SKUs we know how to ship. An order line with an unknown SKU needs a person."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from caturactl.core.db import Amount, Base


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
