"""What goes out when a payment moves: the channel's own payment state follows ours (an outbox
message the channel builds: the shop's order_transaction transition), and the buyer is told
(``caturactl.orders.notices``). Both are queued in the caller's transaction, once per move.

Only for channels that do not collect the money: a channel that does keeps its own payments.
Moves the channel itself reported (PayPal paid at the checkout, an order it cancelled) are not
announced back to it.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from caturactl import channels
from caturactl.config import Config
from caturactl.orders import notices
from caturactl.outbox.service import enqueue
from caturactl.payments.models import Payment, PaymentStatus

P = PaymentStatus
# Our state -> the channel's payment action (Shopware's order_transaction transitions). An overdue
# payment has no counterpart there; a payment expected again (a returned debit) neither.
ACTIONS = {P.PAID.value: "paid", P.PARTLY_PAID.value: "paid_partially", P.REMINDED.value: "remind",
           P.CANCELLED.value: "cancel", P.REFUNDED.value: "refund"}


def announce(session: Session, cfg: Config, p: Payment, before: str, *, pay_by: date | None = None) -> list[str]:
    """Queue what ``p``'s move from ``before`` to its state now tells the channel and the buyer
    (a reminder says ``pay_by``, the day the order is cancelled unless paid); the outbox kinds
    queued. Nothing when the state did not change or the channel collects the money."""
    status = p.status
    order = p.order
    channel = channels.get(order.channel)
    if status == before or channel.collects_payment or status not in ACTIONS:
        return []
    queued = []
    item = channel.payment_transition(cfg, order, p, ACTIONS[status])
    if item is not None and enqueue(session, item.key, item.kind, item.target, item.payload):
        queued.append(item.kind)
    mail = None
    if status in (P.PAID.value, P.PARTLY_PAID.value):
        mail = notices.notify(session, cfg, order, "payment_received", key=f"payment_received:{p.id}:{p.amount_paid:.2f}",
                              payment=p, partly=status == P.PARTLY_PAID.value)
    elif status == P.REMINDED.value:
        mail = notices.notify(session, cfg, order, "payment_reminder", key=f"payment_reminder:{p.id}", payment=p,
                              pay_by=pay_by)
    if mail:
        queued.append(notices.EMAIL)
    return queued


def kinds() -> set[str]:
    """The outbox kinds announcements queue: every channel's payment and cancellation messages,
    and the buyers' mail."""
    return {*channels.message_kinds("payment"), *channels.message_kinds("cancellation"), notices.EMAIL}
