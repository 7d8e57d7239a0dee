"""Payments (Zahlungen) with their lifecycle, the bank statements imported (Kontoauszüge), each
credit on them (Gutschrift) and the receipts that apply a credit to a payment.

``Payment.status`` is moved only by ``caturactl.core.lifecycle.move``. ``amount_paid`` is the sum
of the payment's receipts (a returned direct debit is a negative receipt).
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from caturactl.billing.models import Invoice
from caturactl.core.db import Amount, Base, UTCDateTime, utcnow
from caturactl.core.lifecycle import Lifecycle
from caturactl.orders.models import Order
from caturactl.orders.tickets import Ticket

# How the buyer pays: Vorkasse, Rechnung, SEPA-Lastschrift, PayPal, card, Nachnahme, or through the
# sales channel.
METHODS = ("prepayment", "invoice", "direct_debit", "paypal", "card", "cod", "channel")


class PaymentStatus(str, enum.Enum):
    EXPECTED = "expected"  # owed, nothing received yet
    PARTLY_PAID = "partly_paid"  # some received, some still owed
    PAID = "paid"  # received in full (an over-payment is paid too, its surplus has a ticket)
    REFUNDED = "refunded"  # given back to the buyer
    OVERDUE = "overdue"  # past due_at with money still owed
    REMINDED = "reminded"  # a reminder (Zahlungserinnerung) went out
    CANCELLED = "cancelled"  # no longer owed (order cancelled, written off)


P = PaymentStatus
PAYMENT = Lifecycle("payment", "Payment", PaymentStatus, {
    None: {P.EXPECTED},
    P.EXPECTED: {P.PARTLY_PAID, P.PAID, P.OVERDUE, P.CANCELLED},
    P.PARTLY_PAID: {P.PAID, P.OVERDUE, P.EXPECTED},  # expected: its only part came back (returned debit)
    P.PAID: {P.REFUNDED, P.EXPECTED, P.PARTLY_PAID},  # back when a direct debit is returned
    P.OVERDUE: {P.REMINDED, P.PAID, P.CANCELLED},
    P.REMINDED: {P.PAID, P.CANCELLED},
    P.REFUNDED: set(),
    P.CANCELLED: set(),
}, links=lambda p: {"order": p.order}, describe=lambda p: f"payment {p.id or 'new'} of order "
                                                         f"{p.order.external_id if p.order else '?'}")
OPEN = (P.EXPECTED.value, P.PARTLY_PAID.value, P.OVERDUE.value, P.REMINDED.value)  # money still owed


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (Index("ix_payments_status_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"), index=True)
    method: Mapped[str] = mapped_column(String(12))  # METHODS
    currency: Mapped[str] = mapped_column(String(3))
    amount_expected: Mapped[Decimal] = mapped_column(Amount)
    amount_paid: Mapped[Decimal] = mapped_column(Amount, default=Decimal("0.00"))
    # What the buyer must quote in the transfer (Verwendungszweck): order and/or invoice number.
    reference: Mapped[str] = mapped_column(String(140))
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(12))  # PAYMENT
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    order: Mapped[Order] = relationship()
    invoice: Mapped[Invoice | None] = relationship()
    receipts: Mapped[list[PaymentReceipt]] = relationship(back_populates="payment", order_by="PaymentReceipt.id")

    @property
    def amount_open(self) -> Decimal:
        return max(self.amount_expected - self.amount_paid, Decimal("0.00"))


class BankStatement(Base):
    """One account statement, stored once: ``identity`` is CAMT's GrpHdr/MsgId + Stmt/Id or
    MT940's :25: account + :20: + :28C:, the same in every file that carries it."""

    __tablename__ = "bank_statements"

    id: Mapped[int] = mapped_column(primary_key=True)
    identity: Mapped[str] = mapped_column(String(200), unique=True)
    format: Mapped[str] = mapped_column(String(20))  # camt.053.001.08 | mt940
    account: Mapped[str] = mapped_column(String(40))
    statement_id: Mapped[str] = mapped_column(String(80))
    currency: Mapped[str] = mapped_column(String(3))
    opening: Mapped[Decimal | None] = mapped_column(Amount)
    closing: Mapped[Decimal | None] = mapped_column(Amount)
    entries: Mapped[int]  # every booked entry, debits included
    file_name: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    credits: Mapped[list[BankCredit]] = relationship(back_populates="statement", order_by="BankCredit.id")


# What became of a credit (or a returned debit): written once, when it is imported.
OUTCOMES = ("paid", "partly_paid", "overpaid", "split", "returned", "ticket")


class BankCredit(Base):
    """A credit on a statement (or a returned direct debit, a negative amount) and what it paid;
    one with ``outcome`` "ticket" waits for a person (``ticket_id``)."""

    __tablename__ = "bank_credits"
    __table_args__ = (Index("ix_bank_credits_end_to_end", "end_to_end_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    statement_pk: Mapped[int] = mapped_column(ForeignKey("bank_statements.id"), index=True)
    entry_ref: Mapped[str] = mapped_column(String(80))
    booking_date: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(Amount)  # signed: negative for a returned direct debit
    currency: Mapped[str] = mapped_column(String(3))
    debtor_name: Mapped[str] = mapped_column(String(140), default="")
    debtor_iban: Mapped[str] = mapped_column(String(34), default="")
    remittance: Mapped[str] = mapped_column(Text, default="")  # Verwendungszweck
    end_to_end_id: Mapped[str] = mapped_column(String(40), default="")
    return_reason: Mapped[str] = mapped_column(String(10), default="")
    outcome: Mapped[str] = mapped_column(String(12), index=True)  # OUTCOMES
    reason: Mapped[str] = mapped_column(String(300), default="")  # why this outcome, in words
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))

    statement: Mapped[BankStatement] = relationship(back_populates="credits")
    ticket: Mapped[Ticket | None] = relationship()
    receipts: Mapped[list[PaymentReceipt]] = relationship(back_populates="credit", order_by="PaymentReceipt.id")


class PaymentReceipt(Base):
    """The part of a bank credit applied to one payment (a transfer for two orders is two
    receipts; a returned direct debit a negative one)."""

    __tablename__ = "payment_receipts"

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), index=True)
    credit_id: Mapped[int] = mapped_column(ForeignKey("bank_credits.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Amount)
    matched_by: Mapped[str] = mapped_column(String(20))  # reference | fuzzy_reference | amount_and_name | return
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    payment: Mapped[Payment] = relationship(back_populates="receipts")
    credit: Mapped[BankCredit] = relationship(back_populates="receipts")
