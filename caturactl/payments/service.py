"""Payments owed and received: a new expected payment, money applied to it or taken back (each
through the payment lifecycle, each with its event), money received and told to the channel and
the buyer (``receive``), and finding one by its order."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from caturactl.billing.models import Invoice
from caturactl.config import Config
from caturactl.core import clock
from caturactl.core.errors import InputError, NotFoundError
from caturactl.core.events import EventKind, record
from caturactl.core.lifecycle import move
from caturactl.core.money import CENT
from caturactl.orders.models import Order
from caturactl.payments.announcements import announce
from caturactl.payments.models import METHODS, PAYMENT, Payment, PaymentStatus

P = PaymentStatus


def expect(session: Session, order: Order, *, method: str, amount: Decimal | None = None,
           currency: str | None = None, invoice: Invoice | None = None, due_at: datetime | None = None,
           reference: str | None = None, why: str = "") -> Payment:
    """A new payment the buyer of ``order`` owes (``amount``: the order's total when None), in
    its initial state with its event; its ``reference`` (what the buyer must quote) is the order
    number and the invoice's unless given.
    Raises InputError for an unknown method or an amount that is not positive to the cent."""
    if method not in METHODS:
        raise InputError(f"unknown payment method {method!r}: one of {', '.join(METHODS)}", where="method")
    amount = order.total_amount if amount is None else amount
    if amount is None or amount <= 0 or amount != amount.quantize(CENT):
        raise InputError(f"order {order.external_id}: {amount} is not an amount owed to the cent", where="amount")
    reference = reference or " ".join(x for x in (order.external_id, invoice.number if invoice else "") if x)
    p = Payment(order=order, invoice=invoice, method=method, currency=currency or order.currency,
                amount_expected=amount, amount_paid=Decimal("0.00"), reference=reference, due_at=due_at,
                status=P.EXPECTED.value)  # PAYMENT's one initial state
    session.add(p)
    session.flush()  # its id, for the event
    record(session, EventKind.STATE_CHANGED, why or f"{method}: {amount} {p.currency} expected, quoting {reference}",
           order=order, customer=order.customer, to_state=p.status, subject=PAYMENT.name, subject_id=p.id)
    return p


def apply(session: Session, p: Payment, amount: Decimal, why: str, **data) -> None:
    """Add ``amount`` to what ``p`` received (negative: a returned direct debit takes it back) and
    move it to the state that amount means: paid, partly paid, or expected again. A payment that
    is overdue or reminded stays so until it is paid in full. Raises StateError for a payment the
    lifecycle does not let move there (cancelled, refunded)."""
    p.amount_paid = (p.amount_paid + amount).quantize(CENT)
    kind = EventKind.PAYMENT_RECEIVED if amount > 0 else EventKind.PAYMENT_RETURNED
    status = P(p.status)
    if p.amount_paid >= p.amount_expected:
        target = P.PAID
    elif p.amount_paid > 0:
        target = P.PARTLY_PAID if status in (P.EXPECTED, P.PAID) else status
    else:
        target = P.EXPECTED if status in (P.PARTLY_PAID, P.PAID) else status
    if target == P.PAID and status != P.PAID:
        p.paid_at = clock.now()
    elif target != P.PAID:
        p.paid_at = None
    if p.invoice is not None and p.invoice.paid_at != p.paid_at:  # the invoice is paid when its payment is
        p.invoice.paid_at = p.paid_at
    data = {"amount": str(amount), "amount_paid": str(p.amount_paid), **data}
    if target != status:
        move(session, p, target, why, kind=kind, **data)
    else:  # money moved, the state did not: the event says so all the same
        record(session, kind, why, order=p.order, from_state=status.value, to_state=status.value,
               subject=PAYMENT.name, subject_id=p.id, data=data)


def receive(session: Session, cfg: Config, p: Payment, amount: Decimal, why: str, **data) -> list[str]:
    """``apply`` ``amount`` to ``p`` and queue what its move tells the channel and the buyer
    (``announcements.announce``: the shop's payment transition, the "payment received" mail), so
    that money a person marks received is heard as a matched bank credit is; the outbox kinds
    queued. Raises StateError as ``apply``."""
    before = p.status
    apply(session, p, amount, why, **data)
    return announce(session, cfg, p, before)


def find_for_order(session: Session, ref: str) -> list[Payment]:
    """The payments of the order ``ref`` (the channel's order number); NotFoundError when there is
    no such order or it has none."""
    order = session.scalar(select(Order).where(Order.external_id == ref.strip()))
    if order is None:
        raise NotFoundError(f"no order {ref!r}")
    payments = session.scalars(select(Payment).where(Payment.order_id == order.id).order_by(Payment.id)).all()
    if not payments:
        raise NotFoundError(f"order {ref} has no payment")
    return list(payments)
