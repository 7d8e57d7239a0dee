"""Invoices and credit notes (Rechnungen, Rechnungskorrekturen), their gap-free number counters,
and review requests.

An invoice is written once and never changed (GoBD: unalterable): its values, the PDF/A-3 with
the embedded EN 16931 XML, and the XML itself are stored as issued. A correction is a new
document (a credit note, type 381) that refers to the invoice it corrects.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, Date, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from caturactl.core.db import Amount, Base, UTCDateTime, utcnow
from caturactl.core.lifecycle import Lifecycle
from caturactl.customers.models import Customer
from caturactl.orders.models import Order

INVOICE, CREDIT_NOTE = "invoice", "credit_note"


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = (UniqueConstraint("series", "year", "seq", name="uq_invoices_series_year_seq"),
                      Index("ix_invoices_issue_date", "issue_date"))

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    kind: Mapped[str] = mapped_column(String(12))  # invoice | credit_note
    series: Mapped[str] = mapped_column(String(20))
    year: Mapped[int]
    seq: Mapped[int]
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    corrects_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))
    issue_date: Mapped[date] = mapped_column(Date)
    supply_date: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    net_total: Mapped[Decimal] = mapped_column(Amount)
    tax_total: Mapped[Decimal] = mapped_column(Amount)
    gross_total: Mapped[Decimal] = mapped_column(Amount)
    language: Mapped[str] = mapped_column(String(5), default="de")
    reason: Mapped[str] = mapped_column(Text, default="")  # why a credit note was issued
    document: Mapped[dict] = mapped_column(JSON)  # the values as issued (caturactl.ports.InvoiceDocument)
    pdf: Mapped[bytes] = mapped_column(LargeBinary)  # PDF/A-3 with factur-x.xml embedded
    xml: Mapped[bytes] = mapped_column(LargeBinary)  # the EN 16931 CII XML (kept separately, GoBD)
    delivery: Mapped[str] = mapped_column(String(20), default="none")  # amazon_upload | email | none
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # settled (settlement issue)

    order: Mapped[Order] = relationship()
    customer: Mapped[Customer | None] = relationship()
    corrects: Mapped["Invoice | None"] = relationship(remote_side="Invoice.id")


class InvoiceCounter(Base):
    """The last number given per series and year; incremented in the transaction that stores the
    invoice, so a rolled-back transaction gives its number back and there is no gap."""

    __tablename__ = "invoice_counters"

    series: Mapped[str] = mapped_column(String(20), primary_key=True)
    year: Mapped[int] = mapped_column(primary_key=True)
    last: Mapped[int] = mapped_column(default=0)


class ReviewStatus(str, enum.Enum):
    QUEUED = "queued"  # the request waits in the outbox
    SENT = "sent"  # the channel sent its request to the buyer
    NOT_OFFERED = "not_offered"  # the channel would not (outside its window, already asked)


R = ReviewStatus
REVIEW_REQUEST = Lifecycle("review_request", "ReviewRequest", ReviewStatus, {
    None: {R.QUEUED},
    R.QUEUED: {R.SENT, R.NOT_OFFERED},
    R.SENT: set(),
    R.NOT_OFFERED: set(),
}, links=lambda r: {"order": r.order}, describe=lambda r: f"review request for order {r.order_id}")


class ReviewRequest(Base):
    """One review request per order, ever (Amazon allows one per order)."""

    __tablename__ = "review_requests"

    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    status: Mapped[str] = mapped_column(String(12))  # REVIEW_REQUEST
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    note: Mapped[str] = mapped_column(Text, default="")

    order: Mapped[Order] = relationship()
