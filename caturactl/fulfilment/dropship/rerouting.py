"""Lines that come back from a partner: rejected (with a reason) or not answered by the purchase
order's ``respond_by``. Each goes back to routing, to another dropshipper or our own stock
(``Router.reroute``); when nothing can ship it now, a person gets a ticket. The purchase order and
its delivery note shrink by the line, and the purchase order moves on as its lines say
(``progress``). Everything here runs in the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from caturactl.config import Config
from caturactl.core.lifecycle import (PURCHASE_ORDER, DeliveryState, OrderState, PurchaseLineState, PurchaseOrderState,
                                      move, transition_delivery)
from caturactl.fulfilment.dropship.models import PurchaseOrder, PurchaseOrderLine
from caturactl.fulfilment.routing import LineNeed, Router
from caturactl.orders.tickets import OPEN, Ticket
from caturactl.orders.triage import Hold, open_ticket

L, P = PurchaseLineState, PurchaseOrderState
TICKET_KIND = "dropship"
GONE = frozenset({L.REJECTED.value, L.EXPIRED.value, L.CANCELLED.value})  # lines that will never ship here


def ticket_once(session: Session, po: PurchaseOrder, kind: str, text: str) -> None:
    """An open ticket of ``kind`` about ``po`` (its number the external reference), unless one is open."""
    exists = session.scalar(select(Ticket.id).where(Ticket.kind == kind, Ticket.status == OPEN,
                                                    Ticket.external_ref == po.number))
    if not exists:
        open_ticket(session, kind, [Hold(kind, text)], order=po.order, external_ref=po.number, delivery=po.delivery)


def progress(session: Session, po: PurchaseOrder, now: datetime) -> None:
    """Move ``po`` to the state its lines say: closed when none will ship here, accepted when
    every line is answered, partly shipped or shipped by the pieces that left."""
    states = [ln.state for ln in po.lines]
    live = [ln for ln in po.lines if ln.state not in GONE]
    if not live:
        target = P.CLOSED
    elif any(s == L.OPEN.value for s in states):
        target = P.PARTIALLY_SHIPPED if any(ln.shipped for ln in live) else None
    elif all(ln.state == L.SHIPPED.value for ln in live):
        target = P.SHIPPED
    else:
        target = P.PARTIALLY_SHIPPED if any(ln.shipped for ln in live) else P.ACCEPTED
    if not any(s == L.OPEN.value for s in states) and po.answered_at is None:
        po.answered_at = now
    if target is None or not PURCHASE_ORDER.allowed(po.state, target):
        return
    if target is P.SHIPPED:
        po.shipped_at = now
    if target is P.CLOSED:
        po.closed_at = now
    move(session, po, target, f"{po.number}: " + ", ".join(f"line {ln.line_no} {ln.state}" for ln in po.lines),
         purchase_order=po.number)


def send_back(session: Session, cfg: Config, line: PurchaseOrderLine, why: str, now: datetime) -> bool:
    """Take a rejected or expired ``line`` off its delivery note and route its pieces again,
    anywhere but its partner (True); a ticket for a person when nothing can ship them now (False)."""
    po = line.purchase_order
    qty = line.quantity - line.shipped
    note, dl = po.delivery, line.delivery_line
    dl.quantity -= qty
    if note.open_quantity == 0 and not note.parcels and note.state in (
            DeliveryState.CREATED.value, DeliveryState.EXPORTED.value, DeliveryState.OVERDUE.value):
        transition_delivery(session, note, DeliveryState.CANCELLED, f"{po.number}: nothing left for {po.partner} ({why})")
    elif note.open_quantity == 0 and note.state == DeliveryState.PARTIALLY_CONFIRMED.value:
        transition_delivery(session, note, DeliveryState.CONFIRMED, f"{po.number}: the rest went back to routing ({why})")
    session.flush()
    if po.order.state == OrderState.CANCELLED.value:
        return False  # the buyer cancelled (a cancellation was requested): its pieces go nowhere
    made = Router(session, cfg, now=now).reroute(po.order, [LineNeed(line.order_line_id, line.sku, qty)],
                                                exclude=[po.partner])
    if made:
        return True
    text = (f"{po.number} line {line.line_no}: {qty} × {line.sku} of order {po.order.external_id} came back from "
            f"{po.partner} ({why}) and nothing else can ship it now: find another source or cancel the line")
    ticket_once(session, po, TICKET_KIND, text)
    return False


@dataclass
class OverdueResult:
    expired: list[str] = field(default_factory=list)  # "PO000123/2"
    rerouted: int = 0
    tickets: int = 0
    dry_run: bool = False

    def as_dict(self) -> dict:
        return {"expired": self.expired, "rerouted": self.rerouted, "tickets": self.tickets, "dry_run": self.dry_run}


def overdue(session: Session, cfg: Config, *, now: datetime, dry_run: bool = False) -> OverdueResult:
    """Every open line of a sent purchase order past its ``respond_by`` expires and goes back to
    routing (or to a person). Claimed with skip-locked, so a partner answering at this moment
    wins. Flushes; the caller commits (a dry run is rolled back by the caller: it re-routes too,
    so it shows where the lines would go)."""
    r = OverdueResult(dry_run=dry_run)
    pos = session.scalars(select(PurchaseOrder).where(PurchaseOrder._state == P.SENT.value,
                                                      PurchaseOrder.respond_by < now)
                          .order_by(PurchaseOrder.respond_by, PurchaseOrder.id)
                          .with_for_update(of=PurchaseOrder, skip_locked=True, key_share=True)).all()
    for po in pos:
        for line in po.lines:
            if line.state != L.OPEN.value:
                continue
            why = f"no answer by {po.respond_by:%Y-%m-%d %H:%M} UTC"
            move(session, line, L.EXPIRED, f"{po.number} line {line.line_no}: {why}", purchase_order=po.number)
            line.answered_at = now
            r.expired.append(f"{po.number}/{line.line_no}")
            if send_back(session, cfg, line, why, now):
                r.rerouted += 1
            else:
                r.tickets += 1
        progress(session, po, now)
    session.flush()
    return r
