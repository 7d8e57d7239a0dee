"""Orders and their lines as imported from a channel.

``Order.state`` is read-only here: ``caturactl.core.lifecycle.transition`` is its only writer.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, orm_insert_sentinel, relationship

from caturactl.core.address import Address
from caturactl.core.db import Amount, Base, UTCDateTime, utcnow
from caturactl.customers.models import Customer
from caturactl.core.money import Money


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_orders_channel_external_id"),
        Index("ix_orders_state_created", "state", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    _sentinel: Mapped[int] = orm_insert_sentinel()  # lets SQLite batch INSERT ... RETURNING
    channel: Mapped[str] = mapped_column(String(20))  # the channel's name in caturactl.channels.REGISTERED
    external_id: Mapped[str] = mapped_column(String(50))  # the channel's order id (Amazon: orderId)
    marketplace_id: Mapped[str] = mapped_column(String(20), default="")
    marketplace_name: Mapped[str] = mapped_column(String(50), default="")
    _state: Mapped[str] = mapped_column("state", String(20))
    remote_status: Mapped[str] = mapped_column(String(30), default="")  # the channel's own status
    fulfilled_by: Mapped[str] = mapped_column(String(10), default="MERCHANT")
    service_level: Mapped[str] = mapped_column(String(20), default="")
    programs: Mapped[str] = mapped_column(String(200), default="")  # comma-separated, e.g. PRIME
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)  # purchase time at the channel
    remote_updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    ship_by: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deliver_by: Mapped[datetime | None] = mapped_column(UTCDateTime)  # latest promised delivery
    deliver_from: Mapped[datetime | None] = mapped_column(UTCDateTime)  # earliest promised delivery

    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    match_reason: Mapped[str] = mapped_column(String(300), default="")
    buyer_email: Mapped[str] = mapped_column(String(320), default="")
    buyer_name: Mapped[str] = mapped_column(String(200), default="")
    buyer_company: Mapped[str] = mapped_column(String(200), default="")
    buyer_tax_id: Mapped[str] = mapped_column(String(50), default="")
    purchase_order: Mapped[str] = mapped_column(String(100), default="")
    delivery_instructions: Mapped[str] = mapped_column(Text, default="")

    ship_name: Mapped[str] = mapped_column(String(200), default="")
    ship_company: Mapped[str] = mapped_column(String(200), default="")
    ship_line1: Mapped[str] = mapped_column(String(200), default="")
    ship_line2: Mapped[str] = mapped_column(String(200), default="")
    ship_line3: Mapped[str] = mapped_column(String(200), default="")
    ship_postal_code: Mapped[str] = mapped_column(String(20), default="")
    ship_city: Mapped[str] = mapped_column(String(100), default="")
    ship_state: Mapped[str] = mapped_column(String(100), default="")
    ship_country: Mapped[str] = mapped_column(String(2), default="")
    ship_phone: Mapped[str] = mapped_column(String(50), default="")
    ship_address_type: Mapped[str] = mapped_column(String(20), default="")

    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    total_amount: Mapped[Decimal | None] = mapped_column(Amount)  # as the channel gave it
    payment_method: Mapped[str] = mapped_column(String(12), default="")  # ports.MarketplaceOrder.payment_method
    payment_state: Mapped[str] = mapped_column(String(30), default="")  # the channel's state of that payment
    hold_reason: Mapped[str] = mapped_column(String(300), default="")
    raw: Mapped[dict] = mapped_column(JSON, default=dict)  # the channel's last answer for this order

    customer: Mapped[Customer | None] = relationship()
    lines: Mapped[list["OrderLine"]] = relationship(back_populates="order", order_by="OrderLine.position",
                                                    cascade="all, delete-orphan")

    @property
    def state(self) -> str:
        return self._state

    @property
    def number(self) -> str:
        return self.external_id

    @property
    def total(self) -> Money | None:
        return None if self.total_amount is None else Money(self.total_amount, self.currency)

    @property
    def address(self) -> Address:
        return Address(name=self.ship_name, company=self.ship_company, line1=self.ship_line1,
                       line2=self.ship_line2, line3=self.ship_line3, postal_code=self.ship_postal_code,
                       city=self.ship_city, state=self.ship_state, country=self.ship_country,
                       phone=self.ship_phone, address_type=self.ship_address_type)

    def set_address(self, a: Address | None) -> None:
        a = a or Address()
        self.ship_name, self.ship_company = a.name, a.company
        self.ship_line1, self.ship_line2, self.ship_line3 = a.line1, a.line2, a.line3
        self.ship_postal_code, self.ship_city, self.ship_state = a.postal_code, a.city, a.state
        self.ship_country, self.ship_phone, self.ship_address_type = a.country, a.phone, a.address_type


class OrderLine(Base):
    __tablename__ = "order_lines"
    __table_args__ = (UniqueConstraint("order_id", "external_id", name="uq_order_lines_order_external"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    _sentinel: Mapped[int] = orm_insert_sentinel()  # lets SQLite batch INSERT ... RETURNING
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    position: Mapped[int]
    external_id: Mapped[str] = mapped_column(String(50))  # the channel's line id (Amazon: orderItemId)
    sku: Mapped[str] = mapped_column(String(100), index=True)
    listing_id: Mapped[str] = mapped_column(String(20), default="")  # the channel's id of the listing
    title: Mapped[str] = mapped_column(String(500), default="")
    quantity: Mapped[int]
    quantity_shipped: Mapped[int] = mapped_column(default=0)
    unit_price: Mapped[Decimal | None] = mapped_column(Amount)
    total_amount: Mapped[Decimal | None] = mapped_column(Amount)
    tax_amount: Mapped[Decimal | None] = mapped_column(Amount)
    # What the buyer paid for this line, charge by charge, VAT included (the channel's figures;
    # connectors/amazon/orders.py turns Amazon's proceeds breakdowns into these). Discounts are
    # positive amounts taken off the goods or the shipping.
    shipping_amount: Mapped[Decimal | None] = mapped_column(Amount)
    gift_wrap_amount: Mapped[Decimal | None] = mapped_column(Amount)
    cod_fee_amount: Mapped[Decimal | None] = mapped_column(Amount)
    item_discount: Mapped[Decimal | None] = mapped_column(Amount)
    shipping_discount: Mapped[Decimal | None] = mapped_column(Amount)
    promotion_ids: Mapped[str] = mapped_column(String(500), default="", server_default="")
    gift_message: Mapped[str] = mapped_column(Text, default="")

    order: Mapped[Order] = relationship(back_populates="lines")


class OrderCounter(Base):
    """The last number given per prefix and year to orders caturactl numbers itself (those taken
    at the terminal); claimed in the transaction that stores the order, so a dry run gives its
    number back."""

    __tablename__ = "order_counters"

    prefix: Mapped[str] = mapped_column(String(20), primary_key=True)
    year: Mapped[int] = mapped_column(primary_key=True)
    last: Mapped[int] = mapped_column(default=0)
