"""Customers, the e-mail addresses and postal addresses seen for them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, orm_insert_sentinel, relationship

from caturactl.core.address import Address
from caturactl.core.db import Base, UTCDateTime, utcnow


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    _sentinel: Mapped[int] = orm_insert_sentinel()  # lets SQLite batch INSERT ... RETURNING
    name: Mapped[str] = mapped_column(String(200), default="")
    company: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set when this customer was merged into another; kept so history and old numbers resolve.
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)

    emails: Mapped[list["CustomerEmail"]] = relationship(back_populates="customer", order_by="CustomerEmail.id")
    addresses: Mapped[list["CustomerAddress"]] = relationship(back_populates="customer", order_by="CustomerAddress.id")

    @property
    def number(self) -> str:
        """The customer number people use (Debitorennummer), derived from the id."""
        return f"K{self.id:06d}"

    @property
    def display_name(self) -> str:
        if self.company and self.name:
            return f"{self.name} ({self.company})"
        return self.name or self.company or self.number


class CustomerEmail(Base):
    __tablename__ = "customer_emails"

    id: Mapped[int] = mapped_column(primary_key=True)
    _sentinel: Mapped[int] = orm_insert_sentinel()  # lets SQLite batch INSERT ... RETURNING
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)  # lower-cased
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="emails")


class CustomerAddress(Base):
    __tablename__ = "customer_addresses"
    __table_args__ = (Index("ix_customer_addresses_country_postal", "country", "postal_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    _sentinel: Mapped[int] = orm_insert_sentinel()  # lets SQLite batch INSERT ... RETURNING
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    company: Mapped[str] = mapped_column(String(200), default="")
    line1: Mapped[str] = mapped_column(String(200), default="")
    line2: Mapped[str] = mapped_column(String(200), default="")
    line3: Mapped[str] = mapped_column(String(200), default="")
    postal_code: Mapped[str] = mapped_column(String(20), default="")
    city: Mapped[str] = mapped_column(String(100), default="")
    state: Mapped[str] = mapped_column(String(100), default="")
    country: Mapped[str] = mapped_column(String(2), default="")
    postal_key: Mapped[str] = mapped_column(String(20), default="")  # postal code, spaces out, upper
    address_key: Mapped[str] = mapped_column(String(300), default="", index=True)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="addresses")

    def to_address(self) -> Address:
        return Address(name=self.name, company=self.company, line1=self.line1, line2=self.line2,
                       line3=self.line3, postal_code=self.postal_code, city=self.city,
                       state=self.state, country=self.country)
