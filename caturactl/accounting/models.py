"""Settlements (a channel's payouts) as imported: totals per kind of money, the fees and other
charges per kind of line, and every difference against our invoices with its reason. The lines
themselves stay in the file (a settlement can have a million); what is kept is what the books and
the people need."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, Date, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from caturactl.core.db import Amount, Base, UTCDateTime, utcnow


class Settlement(Base):
    __tablename__ = "settlements"

    id: Mapped[int] = mapped_column(primary_key=True)
    settlement_id: Mapped[str] = mapped_column(String(40), unique=True)  # the channel's; a repeat is stored once
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    end: Mapped[datetime] = mapped_column(UTCDateTime)
    deposit_date: Mapped[datetime] = mapped_column(UTCDateTime)
    currency: Mapped[str] = mapped_column(String(3))
    total_amount: Mapped[Decimal] = mapped_column(Amount)  # the payout
    lines: Mapped[int]
    sales: Mapped[Decimal] = mapped_column(Amount)  # order money matched to invoices
    refunds: Mapped[Decimal] = mapped_column(Amount)  # refund money matched to credit notes
    fees: Mapped[Decimal] = mapped_column(Amount)
    reserve: Mapped[Decimal] = mapped_column(Amount)
    other: Mapped[Decimal] = mapped_column(Amount)
    differences_total: Mapped[Decimal] = mapped_column(Amount)
    by_type: Mapped[dict] = mapped_column(JSON, default=dict)  # "transaction/amount type" -> amount
    file_name: Mapped[str] = mapped_column(String(300), default="")
    sha256: Mapped[str] = mapped_column(String(64), default="")
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    differences: Mapped[list["SettlementDifference"]] = relationship(back_populates="settlement",
                                                                      order_by="SettlementDifference.id")
    fee_totals: Mapped[list["SettlementFee"]] = relationship(back_populates="settlement",
                                                             order_by="SettlementFee.id")


class SettlementDifference(Base):
    """Money in a settlement that does not match our books, and why; nothing is rounded away."""

    __tablename__ = "settlement_differences"

    id: Mapped[int] = mapped_column(primary_key=True)
    settlement_pk: Mapped[int] = mapped_column(ForeignKey("settlements.id"), index=True)
    order_id: Mapped[str] = mapped_column(String(50), default="")
    kind: Mapped[str] = mapped_column(String(30))  # unknown_order | no_invoice | amount_differs | ...
    amount: Mapped[Decimal] = mapped_column(Amount)  # the part of the settlement not booked against us
    settled: Mapped[Decimal] = mapped_column(Amount)  # what the channel settled for the order
    expected: Mapped[Decimal | None] = mapped_column(Amount)  # what our invoices/credit notes say
    reason: Mapped[str] = mapped_column(Text, default="")

    settlement: Mapped[Settlement] = relationship(back_populates="differences")


class SettlementFee(Base):
    """The money of one kind of settlement line that is neither a sale, a refund nor the reserve
    (the channel's fees, advertising, reimbursements ...), summed: what the books map to an account
    (``[accounts.fee_accounts]``). Together these are exactly the settlement's fees + other."""

    __tablename__ = "settlement_fees"

    id: Mapped[int] = mapped_column(primary_key=True)
    settlement_pk: Mapped[int] = mapped_column(ForeignKey("settlements.id"), index=True)
    description: Mapped[str] = mapped_column(Text)  # "transaction-type/amount-type/amount-description"
    amount: Mapped[Decimal] = mapped_column(Amount)

    settlement: Mapped[Settlement] = relationship(back_populates="fee_totals")


class ExportBatch(Base):
    """An export handed to the accountant: the same period is not exported twice unless asked."""

    __tablename__ = "export_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # bookings | customers
    format: Mapped[str] = mapped_column(String(10))  # csv | datev
    # The period as days in the business time zone (config display.timezone), both included.
    date_from: Mapped[date | None] = mapped_column(Date)
    date_to: Mapped[date | None] = mapped_column(Date)
    rows: Mapped[int]
    total: Mapped[Decimal] = mapped_column(Amount)
    file_name: Mapped[str] = mapped_column(String(300))
    again: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
