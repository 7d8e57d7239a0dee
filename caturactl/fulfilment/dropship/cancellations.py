"""Cancelling what a dropshipper has: when an order is cancelled (at its channel, at the desk, for
want of payment: ``orders/cancelling.py`` calls ``request_for_order``) while one of its purchase
orders is open, the partner is asked not to ship it.

A purchase order not handed over yet is simply cancelled. One the partner has gets a
cancellation request (``PO_CANCELLATION``: requested -> accepted | refused), told to the partner
by a file through the outbox when it has a transport (``partner_notices``, with the next
``dropship send``) and in the portal otherwise; its delivery note is cancelled on our side at
once, so nothing more goes to the channel for it. The partner's answer comes by file (``dropship
read``), through the portal or the merchant's CLI (``answer``): accepted cancels the purchase
order and its lines (the partner's pieces are free again); refused means the parcel goes out
anyway, and a person gets a ticket. Everything here runs in the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from caturactl.core import clock
from caturactl.core.errors import NotFound, StateError
from caturactl.core.events import EventKind, record
from caturactl.core.lifecycle import (PO_CANCELLATION, PURCHASE_ORDER, CancellationState, DeliveryState,
                                      PurchaseLineState, PurchaseOrderState, move, transition_delivery)
from caturactl.fulfilment.dropship.models import PurchaseOrder, PurchaseOrderCancellation, partners_row
from caturactl.fulfilment.dropship.partner_files import CancellationAnswer
from caturactl.fulfilment.dropship.rerouting import TICKET_KIND, ticket_once
from caturactl.fulfilment.dropship.service import acting
from caturactl.orders.models import Order

C, P, L, D = CancellationState, PurchaseOrderState, PurchaseLineState, DeliveryState
ASKABLE = (P.SENT.value, P.ACCEPTED.value)  # the partner has it and nothing has left
STOPPABLE_NOTES = (D.CREATED.value, D.EXPORTED.value, D.OVERDUE.value)


@dataclass(frozen=True)
class CancellationSummary:
    purchase_order: str
    state: str
    reason: str
    requested_at: datetime
    answer: str
    answered_at: datetime | None


def request_for_order(session: Session, order: Order, why: str, now: datetime) -> int:
    """The cancelled ``order``'s open purchase orders: one not sent yet is cancelled, one the
    partner has gets a cancellation request (once); their delivery notes are cancelled. Returns
    how many requests were made."""
    if order.id is None:
        return 0
    pos = session.scalars(select(PurchaseOrder).where(PurchaseOrder.order_id == order.id,
                                                      PurchaseOrder._state.in_([P.CREATED.value, *ASKABLE]))
                          .options(selectinload(PurchaseOrder.lines), selectinload(PurchaseOrder.delivery))
                          .order_by(PurchaseOrder.id).with_for_update(of=PurchaseOrder, key_share=True)
                          .execution_options(populate_existing=True)).all()
    made = 0
    for po in pos:
        if po.state == P.CREATED.value:
            _cancel(session, po, f"{why}; not sent to {po.partner} yet")
        elif _requested(session, po) is None:
            c = PurchaseOrderCancellation(purchase_order=po, _state=C.REQUESTED.value, reason=why[:1000],
                                          requested_at=now)
            session.add(c)
            session.flush()
            record(session, EventKind.STATE_CHANGED, f"cancellation of {po.number} requested from {po.partner}: {why}",
                   order=order, to_state=C.REQUESTED.value, subject=PO_CANCELLATION.name, subject_id=c.id,
                   data={"purchase_order": po.number, "partner": po.partner})
            made += 1
        _stop_note(session, po, f"{why}; cancellation of {po.number} requested from {po.partner}")
    session.flush()
    return made


def _requested(session: Session, po: PurchaseOrder) -> PurchaseOrderCancellation | None:
    return session.scalar(select(PurchaseOrderCancellation).where(
        PurchaseOrderCancellation.purchase_order_id == po.id, PurchaseOrderCancellation._state == C.REQUESTED.value))


def _stop_note(session: Session, po: PurchaseOrder, why: str) -> None:
    if po.delivery.state in STOPPABLE_NOTES:
        transition_delivery(session, po.delivery, D.CANCELLED, why)


def _cancel(session: Session, po: PurchaseOrder, why: str) -> None:
    """The purchase order and its lines that may still ship are cancelled (freeing the partner's
    pieces); a purchase order already closed stays so."""
    for ln in po.lines:
        if ln.state in (L.OPEN.value, L.ACCEPTED.value):
            move(session, ln, L.CANCELLED, f"{po.number} line {ln.line_no}: {why}", purchase_order=po.number)
    if PURCHASE_ORDER.allowed(po.state, P.CANCELLED):
        move(session, po, P.CANCELLED, f"{po.number}: {why}", purchase_order=po.number)


def find_po(session: Session, partner: str | None, number: str) -> PurchaseOrder:
    """Purchase order ``number`` (of ``partner`` when given), locked; NotFound otherwise."""
    q = select(PurchaseOrder).where(PurchaseOrder.number == (number or "").strip().upper())
    if partner is not None:
        q = q.where(PurchaseOrder.partner == partner)
    po = session.scalar(q.options(selectinload(PurchaseOrder.lines)).with_for_update(of=PurchaseOrder, key_share=True)
                        .execution_options(populate_existing=True))
    if po is None or po.state == P.CREATED.value:
        raise NotFound(f"no purchase order {number!r}" + (f" for {partner}" if partner else ""))
    return po


def answer(session: Session, po: PurchaseOrder, a: CancellationAnswer, now: datetime) -> bool:
    """Apply the partner's answer to our cancellation request for ``po``: accepted cancels it,
    refused opens a ticket. The same answer twice changes nothing (False); StateError when no
    cancellation was requested or it was answered otherwise."""
    c = _requested(session, po)
    if c is None:
        pc = PurchaseOrderCancellation
        last = session.scalar(select(pc).where(pc.purchase_order_id == po.id).order_by(pc.id.desc()).limit(1))
        said = C.ACCEPTED.value if a.accepted else C.REFUSED.value
        if last is not None and last.state == said:
            return False
        raise StateError(f"no cancellation of {po.number} is waiting for an answer"
                         + (f" (it was {last.state})" if last is not None else ""))
    note = " ".join(a.note.split())[:1000]
    c.answer, c.answered_at = note, now
    words = f" ({note})" if note else ""
    if a.accepted:
        move(session, c, C.ACCEPTED, f"{po.partner} accepted the cancellation of {po.number}{words}")
        _cancel(session, po, f"cancellation accepted by {po.partner}{words}")
    else:
        move(session, c, C.REFUSED, f"{po.partner} refused the cancellation of {po.number}{words}")
        ticket_once(session, po, TICKET_KIND,
                    f"{po.partner} refused to cancel {po.number} of the cancelled order {po.order.external_id}"
                    f"{words}: the parcel goes out anyway and no parcel report for it is taken. Tell the buyer, "
                    f"and arrange the return with {po.partner} (caturactl dropship return announce)")
    session.flush()
    return True


def apply_answers(session: Session, answers: Sequence[CancellationAnswer], partners: Sequence[str],
                  now: datetime) -> int:
    """A cancellation answer file of ``partners``' return channel: each answer applied
    (``answer``); how many changed. InputError naming the row for a purchase order not theirs."""
    changed = 0
    for a in answers:
        po = partners_row(session, PurchaseOrder, a.purchase_order, partners, what="purchase order",
                          where=f"{a.where}:purchase_order")
        changed += answer(session, po, a, now)
    return changed


def answer_request(session: Session, partner: str, number: str, *, accept: bool, note: str = "", actor: str) -> bool:
    """The partner's own answer to our cancellation request for its purchase order ``number``
    (the portal's form), as ``answer`` applies it, with ``actor`` on its events. NotFound for
    another partner's purchase order."""
    with acting(actor):
        po = find_po(session, partner, number)
        return answer(session, po, CancellationAnswer(po.number, accept, (note or "")[:1000], where=actor),
                      clock.now())


def pending(session: Session, partner: str | None = None, *, answered: bool = False,
            purchase_order: str | None = None) -> list[CancellationSummary]:
    """Cancellation requests (of ``partner``, of one ``purchase_order``), waiting for an answer or
    (``answered``) all, newest first."""
    q = (select(PurchaseOrderCancellation, PurchaseOrder.number).join(PurchaseOrder)
         .order_by(PurchaseOrderCancellation.requested_at.desc(), PurchaseOrderCancellation.id.desc()))
    if partner is not None:
        q = q.where(PurchaseOrder.partner == partner)
    if purchase_order is not None:
        q = q.where(PurchaseOrder.number == purchase_order)
    if not answered:
        q = q.where(PurchaseOrderCancellation._state == C.REQUESTED.value)
    return [CancellationSummary(number, c.state, c.reason, c.requested_at, c.answer, c.answered_at)
            for c, number in session.execute(q.limit(500))]


__all__ = ["CancellationSummary", "answer", "answer_request", "apply_answers", "find_po", "pending",
           "request_for_order"]
