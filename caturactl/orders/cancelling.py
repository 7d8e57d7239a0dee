"""Cancelling an order, one way whoever cancels it: its channel (``orders/importing.py``), a person
at the desk (``orders/desk.py``), or the dunning of a payment never made (``payments/dunning.py``).

The order moves to cancelled with its event; its open tickets are closed; a routed order's
delivery notes are cancelled and their stock released (``fulfilment/shipping.cancel_deliveries``:
a note a location has already gets a ticket); its open payments with nothing received are
cancelled, and one with money received is left open for a refund by hand; and what the channel
must hear is queued in the outbox: its payment cancelled (``payments/announcements.py``) and
the order cancelled (``SalesChannel.order_cancellation``). All in the caller's transaction.

What the buyer is told depends on why, and is the caller's (the dunning's mail says "unpaid").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from caturactl import channels
from caturactl.config import Config
from caturactl.core import clock
from caturactl.core.lifecycle import OrderState, move, transition
from caturactl.fulfilment import shipping
from caturactl.fulfilment.dropship import cancellations as dropship_cancellations
from caturactl.orders import triage
from caturactl.orders.models import Order
from caturactl.outbox.service import enqueue
from caturactl.payments.announcements import announce
from caturactl.payments.models import OPEN, Payment, PaymentStatus


@dataclass
class Cancelled:
    """What a cancellation did beyond moving the order."""
    queued: int = 0  # outbox messages for the channel
    refunds: list[str] = field(default_factory=list)  # payments with money received: refund them by hand


def cancel_order(session: Session, cfg: Config, order: Order, why: str, *, at_channel: bool = False) -> Cancelled:
    """Cancel ``order`` because of ``why`` (the why of every event it writes), as the module says.
    ``at_channel``: the channel cancelled it and reported so; then the channel is told nothing,
    neither of the order nor of its payments. Raises StateError when the order's state allows no
    cancelling (shipped, partly shipped, cancelled), ConflictError when another run moved it."""
    was = OrderState(order.state)
    transition(session, order, OrderState.CANCELLED, why)
    triage.close_tickets(session, order, "cancelled", why)
    if was is OrderState.ROUTED:
        # A dropshipper's part is cancelled, or the partner is asked to (caturactl/fulfilment/dropship/).
        dropship_cancellations.request_for_order(session, order, why, clock.now())
        shipping.cancel_deliveries(session, order, why)
    done = Cancelled()
    for p in _open_payments(session, order):
        if p.amount_paid > 0:
            done.refunds.append(f"payment {p.id} has {p.amount_paid} {p.currency} received: refund it by hand")
            continue
        before = p.status
        move(session, p, PaymentStatus.CANCELLED, why)
        if not at_channel:
            done.queued += len(announce(session, cfg, p, before))
    if not at_channel:
        done.queued += _tell_channel(session, cfg, order)
    return done


def _open_payments(session: Session, order: Order) -> list[Payment]:
    if order.id is None:
        return []  # not stored yet, so it owes nothing (and "order_id IS NULL" would match nothing useful)
    return list(session.scalars(select(Payment).where(Payment.order_id == order.id, Payment.status.in_(OPEN))
                                .order_by(Payment.id)))


def _tell_channel(session: Session, cfg: Config, order: Order) -> int:
    """Queue the channel's cancellation of ``order``; 0 when it needs none. A channel that collects
    the money cancels its orders in its own tools and reports them: caturactl only follows."""
    channel = channels.get(order.channel)
    if channel.collects_payment:
        return 0
    item = channel.order_cancellation(cfg, order)
    return int(bool(item is not None and enqueue(session, item.key, item.kind, item.target, item.payload)))
