"""The payment queue of the orders whose channel does not collect the money (the shop): each such
order owes one payment from its import on, and an order whose method makes the money come first
(``[payments.methods.<method>] route_unpaid = false``: prepayment) is not routed until it is paid.

- On import (``owed``) the order gets its payment once: the method the shop reports, the order's
  total, its number as the reference to quote, due ``due_days`` after the order was placed; a
  purchase on account (invoice) has no due date until its invoice names one
  (``caturactl/billing/terms.py``: the payment is due when the buyer reads it is).
  PayPal and card are settled at the checkout by their provider: when the shop reports them
  paid, the payment is paid at once. For the methods paid into the merchant's bank account
  (prepayment, invoice, direct debit) and cash on delivery the bank statement is the word, not
  the shop's: a transaction a person marked paid in the shop's administration pays nothing here
  (the import records the change as an order update).
- Cash on delivery (Nachnahme) is paid to the carrier at the door, who transfers it to the
  merchant: it stays expected with method cod, is routed at once, never reminded nor cancelled,
  and is paid when the carrier's transfer is matched on a bank statement.
- An order the channel cancels takes its open payment with it (the shop already knows).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, exists, select
from sqlalchemy.orm import Session

from caturactl import channels
from caturactl.billing import terms
from caturactl.config import Config
from caturactl.core.lifecycle import OrderState, move
from caturactl.orders.models import Order
from caturactl.orders.tickets import OPEN as TICKET_OPEN
from caturactl.orders.tickets import Ticket
from caturactl.orders.triage import Hold, open_ticket
from caturactl.payments import service
from caturactl.payments.models import METHODS, OPEN, Payment, PaymentStatus

P = PaymentStatus
SETTLED_AT_CHECKOUT = ("paypal", "card")  # the provider took the money when the buyer ordered
TICKET_KIND = "payment"


def payment_of(session: Session, order: Order) -> Payment | None:
    """The order's payment in force (its latest); None when it has none."""
    if order.id is None:
        return None
    return session.scalar(select(Payment).where(Payment.order_id == order.id).order_by(Payment.id.desc()).limit(1))


def owed(session: Session, cfg: Config, order: Order) -> Payment | None:
    """Bring ``order``'s payment up to what its channel reports, once per order however often it
    is imported: a new expected payment, paid at once when settled at the checkout, cancelled
    with the order. None for a channel that collects the money itself, an order that owes nothing,
    or an unknown payment method (which gets one ticket instead)."""
    if channels.get(order.channel).collects_payment:
        return None
    p = payment_of(session, order)
    if order.state == OrderState.CANCELLED.value:
        if p is not None and p.status in OPEN and p.amount_paid == 0:
            move(session, p, P.CANCELLED, "the order was cancelled at the channel")
        return p
    if p is None:
        p = _new(session, cfg, order)
        if p is None:
            return None
    if (p.method in SETTLED_AT_CHECKOUT and order.payment_state == "paid" and p.status in OPEN
            and p.amount_open > 0):
        service.apply(session, p, p.amount_open, f"paid through {p.method} at the checkout (the shop reports it)",
                      source="channel")
    return p


def _new(session: Session, cfg: Config, order: Order) -> Payment | None:
    method = order.payment_method or ""
    if order.total_amount is None or order.total_amount <= 0:
        return None  # nothing owed (a fully discounted order)
    if method not in METHODS or method == "channel":
        ref = f"payment-method:{order.external_id}"[:100]
        known = session.scalar(select(Ticket.id).where(Ticket.kind == TICKET_KIND, Ticket.external_ref == ref,
                                                       Ticket.status == TICKET_OPEN))
        if known is None:
            open_ticket(session, TICKET_KIND, [Hold("unknown_payment_method", (
                f"order {order.external_id} is paid by {method or 'an unnamed method'}, which caturactl does not "
                "know: no payment is expected; check the money by hand"))], order=order, external_ref=ref)
        return None
    rules = cfg.payments.method(method)
    due = terms.first_due(method, order.created_at, rules.due_days)
    when = f"due in {rules.due_days} day(s)" if due else f"due {rules.due_days} day(s) after its invoice"
    return service.expect(session, order, method=method, reference=order.external_id, due_at=due,
                          why=f"{method}: {order.total_amount} {order.currency} owed from the order, {when}, "
                              f"quoting {order.external_id}")


def unpaid_first(cfg: Config) -> ColumnElement[bool] | None:
    """The condition routing adds to its released orders: none with an open payment whose
    method makes the money come first; None when every method is routed unpaid."""
    waiting = cfg.payments.waiting_methods()
    if not waiting:
        return None
    return ~exists(select(Payment.id).where(and_(Payment.order_id == Order.id, Payment.status.in_(OPEN),
                                                 Payment.method.in_(waiting))))

