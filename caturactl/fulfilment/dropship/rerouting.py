"""Lines that come back from a partner: rejected (with a reason) or not answered by the purchase
order's ``respond_by``. Each goes back to routing, to another dropshipper or our own stock
(``Router.reroute``); when nothing can ship it now, a person gets a ticket. The purchase order and
its delivery note shrink by the line, and the purchase order moves on as its lines say
(``progress``), to closed once every line is shipped, rejected, expired or cancelled. An accepted
line that has not left by its ``ship_by`` stays with the partner (it has the goods): a person gets
one ticket per purchase order. Everything here runs in the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from caturactl.config import Config
from caturactl.core.lifecycle import (PURCHASE_ORDER, DeliveryState, OrderState, PurchaseLineState, PurchaseOrderState,
                                      move, transition_delivery)
from caturactl.fulfilment.dropship.models import PurchaseOrder, PurchaseOrderLine
from caturactl.fulfilment.routing import LineNeed, Router, calendar_for
from caturactl.orders import notices
from caturactl.orders.tickets import OPEN, Ticket
from caturactl.orders.triage import Hold, open_ticket

L, P = PurchaseLineState, PurchaseOrderState
TICKET_KIND = "dropship"
LATE_REASON = "dropship_late"  # a ticket's reason: accepted lines past their ship_by (one per purchase order)
GONE = frozenset({L.REJECTED.value, L.EXPIRED.value, L.CANCELLED.value})  # lines that will never ship here
_UNANSWERED = (P.SENT.value, P.PARTIALLY_SHIPPED.value)  # purchase orders that can have open lines
_TO_SHIP = (P.SENT.value, P.ACCEPTED.value, P.PARTIALLY_SHIPPED.value)  # ... that can have accepted lines


def ticket_once(session: Session, po: PurchaseOrder, kind: str, text: str) -> None:
    """An open ticket of ``kind`` about ``po`` (its number the external reference), unless one is open."""
    exists = session.scalar(select(Ticket.id).where(Ticket.kind == kind, Ticket.status == OPEN,
                                                    Ticket.external_ref == po.number))
    if not exists:
        open_ticket(session, kind, [Hold(kind, text)], order=po.order, external_ref=po.number, delivery=po.delivery)


def progress(session: Session, po: PurchaseOrder, now: datetime) -> None:
    """Move ``po`` to the state its lines say: accepted when every line is answered, partly
    shipped by the pieces that left, and closed when every line is shipped, rejected, expired or
    cancelled (through shipped when pieces left)."""
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
    why = f"{po.number}: " + ", ".join(f"line {ln.line_no} {ln.state}" for ln in po.lines)
    if target is P.SHIPPED:
        po.shipped_at = now
        move(session, po, P.SHIPPED, why, purchase_order=po.number)
        target = P.CLOSED  # every line left or will never ship here: nothing is left to do
    po.closed_at = now if target is P.CLOSED else po.closed_at
    move(session, po, target, why, purchase_order=po.number)


def ship_by(cfg: Config, partner: str, accepted_at: datetime) -> datetime:
    """The end (local midnight, in UTC) of the partner's last day to hand over a line accepted at
    ``accepted_at``: its ship date (that business day before the partner's cut-off, else the next)
    plus its ``lead_time_days`` business days."""
    loc, cal = cfg.locations[partner], calendar_for(cfg, partner)
    day = cal.add_business_days(cal.ship_date(accepted_at, loc.cutoff), loc.lead_time_days)
    return datetime.combine(day + timedelta(days=1), time(0), cal.tz).astimezone(timezone.utc)


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
    # The buyer hears of the delay where the channel lets us mail them (a re-route in time is no news).
    notices.notify(session, cfg, po.order, "delayed", key=f"delayed:{po.number}-{line.line_no}",
                   item=line.order_line.title or line.sku, quantity=qty)
    return False


@dataclass
class OverdueResult:
    expired: list[str] = field(default_factory=list)  # "PO000123/2"
    rerouted: int = 0
    tickets: int = 0
    late: list[str] = field(default_factory=list)  # accepted lines past their ship_by, "PO000123/1"
    late_tickets: int = 0  # purchase orders newly given to a person for them
    dry_run: bool = False

    def as_dict(self) -> dict:
        return {"expired": self.expired, "rerouted": self.rerouted, "tickets": self.tickets, "late": self.late,
                "late_tickets": self.late_tickets, "dry_run": self.dry_run}


def overdue(session: Session, cfg: Config, *, now: datetime, dry_run: bool = False) -> OverdueResult:
    """Every open line of a sent or partly shipped purchase order past its ``respond_by`` expires
    and goes back to routing (or to a person); accepted lines get their ``ship_by`` and, past it,
    a person gets one ticket per purchase order (``chase``). Claimed with skip-locked, so a
    partner answering at this moment wins. Flushes; the caller commits (a dry run is rolled back
    by the caller: it re-routes too, so it shows where the lines would go)."""
    r = OverdueResult(dry_run=dry_run)
    for po in _claim(session, PurchaseOrder._state.in_(_UNANSWERED), PurchaseOrder.respond_by < now):
        _expire(session, cfg, po, now, r)
    late = PurchaseOrder.lines.any(and_(PurchaseOrderLine._state == L.ACCEPTED.value,
                                        or_(PurchaseOrderLine.ship_by.is_(None), PurchaseOrderLine.ship_by < now)))
    for po in _claim(session, PurchaseOrder._state.in_(_TO_SHIP), late):
        chase(session, cfg, po, now, r)
    session.flush()
    return r


def chase(session: Session, cfg: Config, po: PurchaseOrder, now: datetime, r: OverdueResult) -> None:
    """Give ``po``'s accepted lines their ``ship_by`` (from their acceptance) and list those past
    it in ``r``; the first time any is late, one ticket for a person. Nothing is routed again:
    the partner has the goods and may still ship them."""
    late = []
    for ln in po.lines:
        if ln.state != L.ACCEPTED.value:
            continue
        ln.ship_by = ln.ship_by or ship_by(cfg, po.partner, ln.answered_at or now)
        if ln.ship_by < now:
            late.append(ln)
    r.late += [f"{po.number}/{ln.line_no}" for ln in late]
    if not late or session.scalar(select(Ticket.id).where(Ticket.kind == TICKET_KIND, Ticket.reasons == LATE_REASON,
                                                          Ticket.external_ref == po.number)):
        return
    text = (f"{po.number} of order {po.order.external_id}: {po.partner} accepted but has not shipped " +
            ", ".join(f"line {ln.line_no} ({ln.quantity - ln.shipped} × {ln.sku}, due {ln.ship_by:%Y-%m-%d})"
                      for ln in late) + ": ask the partner, or cancel and route again")
    open_ticket(session, TICKET_KIND, [Hold(LATE_REASON, text)], order=po.order, external_ref=po.number,
                delivery=po.delivery)
    r.late_tickets += 1


def _claim(session: Session, *where) -> list[PurchaseOrder]:
    """The purchase orders matching ``where`` that nobody else holds, locked."""
    return session.scalars(select(PurchaseOrder).where(*where).order_by(PurchaseOrder.id)
                           .with_for_update(of=PurchaseOrder, skip_locked=True, key_share=True)).all()


def _expire(session: Session, cfg: Config, po: PurchaseOrder, now: datetime, r: OverdueResult) -> None:
    """Expire ``po``'s open lines (past its respond_by) and send each back to routing."""
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
