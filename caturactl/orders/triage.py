"""Triage: does an imported order need a person before it may be shipped?

``holds`` is the pure rule (configurable in ``[triage]``); ``hold``/``release`` store the
outcome, and ``resolve`` is how a person answers a ticket: release the order into the
automatic flow, or cancel it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from caturactl.config import TriageConfig
from caturactl.core import clock
from caturactl.core.errors import InputError, StateError
from caturactl.orders.models import Order
from caturactl.orders.tickets import Ticket
from caturactl.core.address import address_problems, pickup_kind, postnummer
from caturactl.core.events import EventKind, actor, record
from caturactl.core.lifecycle import OrderState, move, transition
from caturactl.orders.tickets import OPEN, RESOLVED
from caturactl.ports import MarketplaceOrder
from caturactl.views.cockpit import by_number


@dataclass(frozen=True, slots=True)
class Hold:
    code: str  # the rule, as named in [triage]
    text: str


def _short(text: str, n: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def holds(order: MarketplaceOrder, known_skus: set[str] | frozenset[str], cfg: TriageConfig) -> list[Hold]:
    """Every reason this order needs a person, in rule order; empty when it may flow on."""
    found: list[Hold] = []
    if cfg.delivery_instructions and order.delivery_instructions:
        found.append(Hold("delivery_instructions", f"delivery instructions: '{_short(order.delivery_instructions)}'"))
    if cfg.gift_message:
        for i, ln in enumerate(order.lines, 1):
            if ln.gift_message:
                found.append(Hold("gift_message", f"gift message on line {i}: '{_short(ln.gift_message)}'"))
    if cfg.business_tax_id and order.is_business and order.buyer_tax_ids:
        found.append(Hold("business_tax_id", f"business order with buyer tax id {', '.join(order.buyer_tax_ids)}: "
                                             "check VAT treatment (reverse charge) before invoicing"))
    if cfg.unknown_sku:
        for i, ln in enumerate(order.lines, 1):
            if ln.sku not in known_skus:
                found.append(Hold("unknown_sku", f"unknown SKU '{ln.sku}' on line {i} (not in the catalogue)"))
    if cfg.cancel_request:
        for i, ln in enumerate(order.lines, 1):
            if ln.cancel_requested:
                found.append(Hold("cancel_request", f"buyer asked to cancel line {i}: {_short(ln.cancel_requested)}"))
    a = order.address
    if a is None:
        if cfg.broken_address:
            found.append(Hold("broken_address", "no delivery address in the channel's answer"))
        return found
    kind = pickup_kind(a)
    if cfg.pickup_incomplete:
        if kind in ("packstation", "postfiliale") and not postnummer(a):
            found.append(Hold("pickup_incomplete", f"{kind.capitalize()} address without the DHL PostNummer"))
        elif kind == "po_box":
            found.append(Hold("pickup_incomplete", "PO box address: parcel carriers need a street address"))
    if cfg.broken_address:
        for problem in address_problems(a, max_line=cfg.max_line_length):
            if "PostNummer" in problem and cfg.pickup_incomplete:
                continue  # said above, by the pickup rule
            found.append(Hold("broken_address", f"address: {problem}"))
        if a.country and a.country not in cfg.ship_to_countries:
            found.append(Hold("broken_address", f"address: we do not ship to {a.country} ([triage] ship_to_countries)"))
    return found


def hold(session: Session, order: Order, reasons: list[Hold], why_prefix: str = "", kind: str = "triage") -> Ticket:
    """Put ``order`` on hold with one ticket that lists every reason."""
    order.hold_reason = _short("; ".join(h.text for h in reasons), 300)
    transition(session, order, OrderState.ON_HOLD, why_prefix + "needs a person: " + order.hold_reason)
    return open_ticket(session, kind, reasons, order=order)


def open_ticket(session: Session, kind: str, reasons: list[Hold], *, order: Order | None = None,
                external_ref: str = "", delivery=None) -> Ticket:
    """One ticket listing every reason, with its event; the caller decides what else changes."""
    text = "\n".join(f"- {h.text}" for h in reasons)
    codes = ",".join(dict.fromkeys(h.code for h in reasons))
    ticket = Ticket(order=order, kind=kind, reasons=_short(codes, 300), text=text, created_by=actor.get(),
                    external_ref=external_ref)
    session.add(ticket)
    record(session, EventKind.TICKET_OPENED, text, order=order, customer=order.customer if order else None,
           ticket=ticket, delivery=delivery, data={"reasons": codes.split(",")})
    return ticket


def close_tickets(session: Session, order: Order, resolution: str, note: str) -> None:
    """Close the order's open tickets because the order moved on by itself (cancelled, shipped)."""
    if order.id is None:
        return  # not stored yet, so it has no tickets (and "order_id IS NULL" would match others)
    for t in session.scalars(select(Ticket).where(Ticket.order_id == order.id, Ticket.status == OPEN)):
        _close(session, t, resolution, note)


def close_tickets_about(session: Session, kind: str, ref: str, note: str) -> int:
    """Close the open tickets of ``kind`` about ``ref`` (a file, an outbox key) because what they
    reported has been dealt with; returns how many."""
    tickets = session.scalars(select(Ticket).where(Ticket.kind == kind, Ticket.external_ref == ref[:100],
                                                   Ticket.status == OPEN)).all()
    for t in tickets:
        _close(session, t, "closed", note)
    return len(tickets)


def _close(session: Session, t: Ticket, resolution: str, note: str) -> None:
    t.resolution, t.note = resolution, note
    t.resolved_at, t.resolved_by = clock.now(), actor.get()
    move(session, t, RESOLVED, f"{t.number} {resolution}: {note}", kind=EventKind.TICKET_RESOLVED)


def find_ticket(session: Session, ref: str) -> Ticket:
    """A ticket by number (T12 or 12); raises NotFoundError."""
    return by_number(session, Ticket, ref, "T", "ticket")


def resolve(session: Session, ref: str, action: str, note: str,
            cancel: Callable[[Order, str], object] | None = None) -> Ticket:
    """A person's answer: ``release`` puts the order back into the automatic flow, ``cancel``
    cancels it through ``cancel(order, why)`` (``orders.cancelling.cancel_order``, the one way
    an order is cancelled: its channel, its payments and its other tickets are seen to), ``close``
    just closes a ticket without an order. Raises InputError/StateError."""
    if action not in ("release", "cancel", "close"):
        raise InputError(f"unknown resolution {action!r}: use release, cancel or close")
    if not note.strip():
        raise InputError("a note is required: say what was checked or decided", where="--note")
    t = find_ticket(session, ref)
    if t.status != OPEN:
        raise StateError(f"{t.number} is already {t.status} ({t.resolution})")
    order = t.order
    if order is not None and order.state == OrderState.ON_HOLD.value:
        if action == "close":
            raise InputError(f"{t.number} holds order {order.external_id}: use --release or --cancel")
        others = session.scalar(select(Ticket.id).where(Ticket.order_id == order.id, Ticket.status == OPEN,
                                                        Ticket.id != t.id))
        if action == "release" and others:
            raise StateError(f"order {order.external_id} has another open ticket T{others}; resolve that too")
        why = f"{t.number} resolved by a person: {note.strip()}"
        if action == "cancel":
            if cancel is None:
                raise TypeError("resolve(..., 'cancel') needs cancel=: orders.cancelling.cancel_order")
            _close(session, t, "cancelled", note.strip())
            cancel(order, why)
            return t
        transition(session, order, OrderState.RELEASED, why, ticket=t.id)
        order.hold_reason = ""
    elif action != "close":
        # Tickets about a delivery (overdue, a failed upload) are answered by acting on the
        # delivery, then closing the ticket; the order itself is not on hold.
        if order is None:
            raise StateError(f"{t.number} has no stored order to {action}; use --close")
        raise StateError(f"order {order.external_id} is {order.state}, not on hold; use --close")
    _close(session, t, {"release": "released", "cancel": "cancelled", "close": "closed"}[action], note.strip())
    return t
