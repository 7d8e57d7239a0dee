"""Routing: released orders become delivery notes, one per fulfilment location, with stock
reserved and a carrier chosen by the matrix.

The split is a pure rule (``split``): one location that has everything wins (one parcel, one
hand-over), the first by priority; otherwise the fewest locations, greedily taking the location
that can ship the most open lines. A line is never split across locations. An order that no
combination can ship stays released ("waiting for stock") and is tried again on the next run;
an order whose part has no eligible carrier goes on hold with a ticket that lists every reason.
Orders are taken oldest first, so the first buyer gets the last piece. Dropshippers (locations of
kind "dropshipper") come only after our own stock (``split_with_partners``): a line goes to one
when no own location can ship it and the partner's fresh availability has it (a stale feed counts
as zero, ``dropship/partner_stock.py``); a partner's part becomes a delivery note and a purchase order
(``dropship/purchasing.py``), and the buyer still sees one order. A line a partner rejects, or does
not answer in time, comes back through ``Router.reroute``. An order whose money must
come first (``[payments]``: prepayment) is left released until its payment is paid
(``caturactl.payments.queue.unpaid_first``); the next run after that takes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Mapping, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session, defer, selectinload

from caturactl.fulfilment import carrier_matrix
from caturactl.catalogue import stock
from caturactl.fulfilment.carrier_matrix import ShipmentRequest, Unit
from caturactl.config import Config
from caturactl.core import clock
from caturactl.fulfilment.deadlines import BusinessCalendar
from caturactl.fulfilment.dropship import partner_stock, purchasing, terms
from caturactl.fulfilment.models import DeliveryNote, Stock
from caturactl.catalogue.models import Product
from caturactl.orders.models import Order
from caturactl.core.address import pickup_kind
from caturactl.core.events import buffered
from caturactl.core.lifecycle import OrderState, create_deliveries, transition
from caturactl.orders.triage import Hold, hold
from caturactl.payments.queue import unpaid_first

# Amazon 2026-01-01 fulfillmentServiceLevel values that promise faster than standard delivery.
EXPRESS_LEVELS = frozenset({"EXPEDITED", "NEXT_DAY", "SAME_DAY", "SECOND_DAY", "PRIORITY"})
BATCH = 500


@dataclass(frozen=True, slots=True)
class LineNeed:
    key: int  # order line id
    sku: str
    quantity: int


def split(needs: Sequence[LineNeed], available: Mapping[str, Mapping[str, int]],
          locations: Sequence[str]) -> dict[str, list[LineNeed]] | None:
    """Lines per location (``locations`` in priority order), or None when some line fits nowhere."""
    # Two lines of one SKU must together fit one location, so needs are counted per SKU.
    total: dict[str, int] = {}
    for n in needs:
        total[n.sku] = total.get(n.sku, 0) + n.quantity
    for loc in locations:
        have = available.get(loc, {})
        if all(have.get(sku, 0) >= qty for sku, qty in total.items()):
            return {loc: list(needs)}
    left = list(needs)
    plan: dict[str, list[LineNeed]] = {}
    while left:
        best, best_lines = None, []
        for loc in locations:
            if loc in plan:
                continue
            taken: dict[str, int] = {}
            lines = []
            for n in left:
                if available.get(loc, {}).get(n.sku, 0) - taken.get(n.sku, 0) >= n.quantity:
                    taken[n.sku] = taken.get(n.sku, 0) + n.quantity
                    lines.append(n)
            if len(lines) > len(best_lines):
                best, best_lines = loc, lines
        if best is None:
            return None
        plan[best] = best_lines
        left = [n for n in left if n not in best_lines]
    return plan


def split_with_partners(needs: Sequence[LineNeed], available: Mapping[str, Mapping[str, int]],
                        own: Sequence[str], partners: Sequence[str], *,
                        mixed: Sequence[str] = ()) -> dict[str, list[LineNeed]] | None:
    """Lines per location with our own locations (``own``) first: the plan of ``split`` over
    them when they can ship everything; otherwise the lines no own location can ship go to the
    dropshippers (``partners``, by priority), the others stay with us, where the order may be
    split between us and a partner (``mixed``: the partners that allow it); failing that the
    whole order goes to partners. None when no combination ships it."""
    plan = split(needs, available, own)
    if plan is not None or not partners:
        return plan
    ours = [n for n in needs if any(available.get(loc, {}).get(n.sku, 0) >= n.quantity for loc in own)]
    rest = [n for n in needs if n not in ours]
    if ours and rest and mixed:
        own_plan, partner_plan = split(ours, available, own), split(rest, available, mixed)
        if own_plan is not None and partner_plan is not None:
            return {**own_plan, **partner_plan}
    return split(needs, available, partners)


@dataclass
class RouteResult:
    orders: int = 0  # released orders looked at
    routed: int = 0
    deliveries: int = 0
    waiting: list[str] = field(default_factory=list)  # order numbers waiting for stock
    held: list[str] = field(default_factory=list)  # no eligible carrier
    dry_run: bool = False

    @property
    def exit_code(self) -> int:
        return 0

    def as_dict(self) -> dict:
        return {"orders": self.orders, "routed": self.routed, "deliveries": self.deliveries,
                "waiting_for_stock": len(self.waiting), "held": len(self.held), "dry_run": self.dry_run,
                "waiting_orders": self.waiting, "held_orders": self.held}


def calendar_for(cfg: Config, code: str) -> BusinessCalendar:
    loc = cfg.locations[code]
    return BusinessCalendar(loc.holidays, loc.business_hours, loc.timezone)


def units_for(lines: Sequence[tuple[str, int]], products: Mapping[str, Product]) -> tuple[Unit, ...]:
    """The matrix's view of (sku, quantity) pairs: weight and sides in cm (rounded up), longest first."""
    out = []
    for sku, qty in lines:
        p = products.get(sku)
        sides = None
        if p is not None and None not in (p.length_mm, p.width_mm, p.height_mm):
            sides = tuple(sorted(((p.length_mm + 9) // 10, (p.width_mm + 9) // 10, (p.height_mm + 9) // 10),
                                 reverse=True))
        out.append(Unit(sku, qty, p.weight_g if p is not None else None, sides))  # type: ignore[arg-type]
    return tuple(out)


def request_for(order: Order, location: str, lines: Sequence[tuple[str, int]], products: Mapping[str, Product],
                now: datetime) -> ShipmentRequest:
    a = order.address
    return ShipmentRequest(location=location, country=a.country, postal_code=a.postal_code, pickup=pickup_kind(a),
                           express=order.service_level.upper() in EXPRESS_LEVELS, cash_on_delivery=None,
                           units=units_for(lines, products), now=now)


class Router:
    """Routes released orders; one instance per run (it caches stock, products and calendars)."""

    def __init__(self, session: Session, cfg: Config, *, now: datetime | None = None):
        if not cfg.locations:
            from caturactl.core.errors import ConfigError
            raise ConfigError("no [locations.*] configured: nothing to route to", where="caturactl.toml: locations")
        self.s, self.cfg = session, cfg
        self.now = now or clock.now()
        self.partners = terms.partners(cfg)
        self.order_codes = sorted((c for c in cfg.locations if c not in self.partners),
                                  key=lambda c: (cfg.locations[c].priority, c))
        self.calendars = {code: calendar_for(cfg, code) for code in cfg.locations}
        self.products = {p.sku: p for p in session.scalars(select(Product))}
        self.available: dict[str, dict[str, int]] = {code: {} for code in cfg.locations}
        for code, sku, available in session.execute(select(Stock.location, Stock.sku, Stock.on_hand - Stock.reserved)
                                                    .where(Stock.location.in_(list(cfg.locations)))):
            self.available[code][sku] = available
        for code, per_sku in partner_stock.orderable(session, cfg, self.now).items():
            self.available[code] = dict(per_sku)
        self._choices: dict[tuple, tuple[carrier_matrix.Choice, dict]] = {}

    def run(self, *, dry_run: bool = False, limit: int | None = None,
            progress: Callable[[int], None] | None = None) -> RouteResult:
        """Route every released order (oldest first); commits per batch unless ``dry_run``."""
        r = RouteResult(dry_run=dry_run)
        released = select(Order.id).where(Order._state == OrderState.RELEASED.value)
        if (paid := unpaid_first(self.cfg)) is not None:
            released = released.where(paid)
        ids = self.s.scalars(released.order_by(Order.created_at, Order.id).limit(limit)).all()
        for start in range(0, len(ids), BATCH):
            chunk = ids[start:start + BATCH]
            # Claimed, not read: the orders still released that no other run holds right now
            # (PostgreSQL; SQLite runs one writer at a time). A skipped order waits for the next run.
            orders = self.s.scalars(select(Order).where(Order.id.in_(chunk),
                                                        Order._state == OrderState.RELEASED.value)
                                    .options(selectinload(Order.lines), defer(Order.raw))
                                    .order_by(Order.created_at, Order.id)
                                    .with_for_update(of=Order, skip_locked=True, key_share=True)).all()
            self._refresh_available({ln.sku for o in orders for ln in o.lines}, lock=True)
            with buffered(self.s):
                new_notes: list[tuple[dict, list[dict], str]] = []
                for order in orders:
                    new_notes.extend(self.route_order(order, r))
                # One bulk insert per batch: per-object ORM bookkeeping was half the cost of routing.
                self._create(new_notes)
            if dry_run:
                self.s.rollback()
            else:
                self.s.commit()
            if progress:
                progress(len(chunk))
        return r

    def route_order(self, order: Order, r: RouteResult) -> list[tuple[dict, list[dict], str]]:
        """Plan one order: stock reserved and the order moved on here; the delivery notes to
        create come back as (note values, line values, why) for ``create_deliveries``."""
        r.orders += 1
        needs = [LineNeed(ln.id, ln.sku, ln.quantity - ln.quantity_shipped) for ln in order.lines
                 if ln.quantity > ln.quantity_shipped]
        notes = self.plan_notes(order, needs, r)
        if notes is None:
            return []
        transition(self.s, order, OrderState.ROUTED,
                   f"{len(notes)} delivery note(s): " + ", ".join(f"{n['location']} {n['carrier']}" for n, _, _ in notes))
        r.routed += 1
        r.deliveries += len(notes)
        return notes

    def reroute(self, order: Order, needs: Sequence[LineNeed], *, exclude: Sequence[str] = ()) -> int | None:
        """Route ``needs`` of an order already routed again (a partner rejected them, or did not
        answer), to any location but ``exclude``: the new delivery notes (and purchase orders)
        are made and their count returned; the order's state stays. None when nothing can ship
        them now, or no carrier can (the caller hands them to a person)."""
        kept = {code: self.available.pop(code) for code in exclude if code in self.available}
        try:
            self._refresh_available({n.sku for n in needs}, lock=True)
            for code in exclude:
                self.available.pop(code, None)
            r = RouteResult()
            notes = self.plan_notes(order, needs, r, hold_order=False)
        finally:
            self.available.update(kept)
        if not notes:
            return None
        self._create(notes)
        return len(notes)

    def plan_notes(self, order: Order, needs: Sequence[LineNeed], r: RouteResult, *,
                   hold_order: bool = True) -> list[tuple[dict, list[dict], str]] | None:
        """The delivery notes for ``needs`` of ``order`` with stock reserved, as (note values, line
        values, why); None when they wait for stock, or no carrier can ship a part (the order is
        held with a ticket when ``hold_order``)."""
        partners = [p for p in self.partners if p in self.available
                    and terms.serves(self.cfg.locations[p], order.channel)]
        mixed = [p for p in partners if self.cfg.locations[p].split_with_own]
        own = [c for c in self.order_codes if c in self.available]
        plan = split_with_partners(needs, self.available, own, partners, mixed=mixed)
        if plan is None:
            r.waiting.append(order.external_id)
            return None
        choices = {}
        problems: list[Hold] = []
        for code, lines in plan.items():
            req = request_for(order, code, [(n.sku, n.quantity) for n in lines], self.products, self.now)
            choices[code] = choice = self._choose(req)
            if choice[0].chosen is None:
                reasons = "; ".join(f"{x.key}: {', '.join(x.reasons)}" for x in choice[0].rejected)
                problems.append(Hold("no_carrier", f"no carrier can ship the part from {code}: {reasons}"))
        if problems:
            if hold_order:
                hold(self.s, order, problems, kind="no_carrier")
            r.held.append(order.external_id)
            return None
        if not self._reserve_plan(plan):
            r.waiting.append(order.external_id)  # another run took the stock meanwhile
            return None
        notes = []
        express = order.service_level.upper() in EXPRESS_LEVELS
        for code, lines in plan.items():
            choice, explained = choices[code]
            offer = choice.chosen
            ship_date, delivery_date = offer.ship_date, offer.delivery_date
            lead = self.cfg.locations[code].lead_time_days
            if lead:  # a dropshipper's days before a parcel leaves
                ship_date = self.calendars[code].add_business_days(offer.ship_date, lead)
                delivery_date = delivery_date + (ship_date - offer.ship_date) if delivery_date else None
            note = {"order_id": order.id, "location": code, "carrier_key": offer.key, "carrier": offer.carrier,
                    "service": offer.service, "express": express, "ship_date": ship_date,
                    "delivery_date": delivery_date, "price": offer.price, "choice": explained,
                    "planned_parcels": [[p.weight_g, p.length_cm, p.width_cm, p.height_cm] for p in offer.parcels],
                    "file_name": "", "created_at": self.now}
            notes.append((note, [{"order_line_id": n.key, "sku": n.sku, "quantity": n.quantity, "shipped": 0}
                                 for n in lines],
                          f"routed to {code}; {offer.carrier} {offer.service}, {len(offer.parcels)} parcel(s), "
                          f"{offer.price} EUR, ships {ship_date.isoformat()}"))
        return notes

    def _create(self, notes: list[tuple[dict, list[dict], str]]) -> None:
        """Insert the planned notes; a dropshipper's part also becomes its purchase order."""
        ids = create_deliveries(self.s, notes, self.now)
        to_partners = [i for i, (values, _, _) in zip(ids, notes) if values["location"] in self.partners]
        if to_partners:
            purchasing.create_for_notes(self.s, self.cfg, to_partners, self.now)

    def _choose(self, req: ShipmentRequest) -> tuple[carrier_matrix.Choice, dict]:
        # The matrix is a pure function and one run has one "now": the many orders that ask the
        # same question (same location, country, services and pieces) get the same answer.
        key = (req.location, req.country, req.pickup, req.express, req.cash_on_delivery, req.units)
        found = self._choices.get(key)
        if found is None:
            choice = carrier_matrix.choose(req, self.cfg.carriers, self.cfg.locations[req.location],
                                           self.calendars[req.location])
            found = self._choices[key] = (choice, choice.as_dict())
        return found

    def _refresh_available(self, skus: set[str], *, lock: bool = False) -> None:
        """What the database says is available now for ``skus`` (another run may have reserved).
        With ``lock`` the rows stay locked until the batch commits, taken in one sorted order so
        that two routers never wait for each other in a circle."""
        if not skus:
            return
        q = (select(Stock.location, Stock.sku, Stock.on_hand - Stock.reserved)
             .where(Stock.location.in_(list(self.available)), Stock.sku.in_(sorted(skus)))
             .order_by(Stock.location, Stock.sku))
        for code, sku, available in self.s.execute(q.with_for_update(key_share=True) if lock else q):
            self.available[code][sku] = available
        for code, per_sku in partner_stock.orderable(self.s, self.cfg, self.now, skus).items():
            if code in self.available:
                self.available[code].update(per_sku)

    def _reserve_plan(self, plan: dict[str, list[LineNeed]]) -> bool:
        """Reserve every line of ``plan`` in the database, each a conditional relative update; when
        one is no longer available, what this plan reserved is given back and the answer is False."""
        done: list[tuple[str, str, int]] = []
        for code, lines in plan.items():
            for n in lines:
                if code in self.partners:  # the purchase order itself holds the partner's pieces
                    self.available[code][n.sku] = self.available[code].get(n.sku, 0) - n.quantity
                    continue
                if not stock.reserve(self.s, code, n.sku, n.quantity):
                    for c, sku, qty in done:
                        stock.release(self.s, c, sku, qty)
                    self._refresh_available({n.sku for lines in plan.values() for n in lines})
                    return False
                done.append((code, n.sku, n.quantity))
                self.available[code][n.sku] = self.available[code].get(n.sku, 0) - n.quantity
        return True


def count_to_route(session: Session, limit: int | None = None) -> int:
    """How many released orders ``Router.run`` would take (for a progress bar)."""
    total = session.scalar(select(func.count()).where(Order._state == OrderState.RELEASED.value)) or 0
    return min(total, limit or total)


def route(session: Session, cfg: Config, **kw) -> RouteResult:
    """Route every released order; see ``Router.run``."""
    now = kw.pop("now", None)
    return Router(session, cfg, now=now).run(**kw)


def choices_for_order(session: Session, cfg: Config, ref: str, *, now: datetime | None = None) -> list[dict]:
    """Per part of the order: the stored carrier choice of each delivery note, or, before routing,
    what the split and the matrix would choose now from current stock (nothing is stored)."""
    from caturactl.views.cockpit import find_order
    order = find_order(session, ref)
    notes = session.scalars(select(DeliveryNote).where(DeliveryNote.order_id == order.id)
                            .order_by(DeliveryNote.id)).all()
    if notes:
        return [{"delivery": n.number, "location": n.location, "state": n.state, "choice": n.choice} for n in notes]
    router = Router(session, cfg, now=now)
    needs = [LineNeed(ln.id, ln.sku, ln.quantity - ln.quantity_shipped) for ln in order.lines
             if ln.quantity > ln.quantity_shipped]
    plan = split_with_partners(needs, router.available, router.order_codes, router.partners,
                               mixed=[p for p in router.partners if cfg.locations[p].split_with_own])
    if plan is None:
        # No stock anywhere: still show what each location's carriers would say about the whole order.
        plan = {code: needs for code in router.order_codes}
    parts = []
    for code, lines in plan.items():
        req = request_for(order, code, [(n.sku, n.quantity) for n in lines], router.products, router.now)
        choice = carrier_matrix.choose(req, cfg.carriers, cfg.locations[code], router.calendars[code])
        parts.append({"delivery": "", "location": code, "state": order.state, "choice": choice.as_dict()})
    return parts
