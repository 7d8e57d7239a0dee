"""Import orders from a marketplace: idempotent, one savepoint per order, resumable.

Each page is stored in one transaction together with the cursor that covers it, so a crash
between pages loses nothing and repeats nothing: the next run resumes after the last stored
page (Amazon's page token lives 24 h) or from the watermark. An order that cannot be read or
stored is recorded (event + ticket) and skipped; the run goes on. A remote side that keeps
refusing ends the run cleanly with what was stored.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Callable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from caturactl.config import Config
from caturactl.core import clock
from caturactl.core.errors import CaturactlError, InputError
from caturactl.customers.matching import Matcher
from caturactl.catalogue.models import Product
from caturactl.orders.models import Order, OrderLine
from caturactl.orders.tickets import Ticket
from caturactl.core.cursors import Cursor, keep_budget
from caturactl.core.db import check_fits
from caturactl.core.events import EventKind, actor, buffered, record
from caturactl.core.lifecycle import TERMINAL, OrderState, transition
from caturactl.orders.tickets import OPEN
from caturactl.ports import BrokenOrder, Marketplace, MarketplaceOrder, OrderQuery
from caturactl import channels
from caturactl.fulfilment import shipping
from caturactl.fulfilment.dropship import returns as dropship_returns
from caturactl.orders import notices, triage
from caturactl.orders.cancelling import cancel_order
from caturactl.payments import queue as payment_queue

RESUME_WITHIN = timedelta(hours=23)  # Amazon's pagination token expires after 24 h
RELEASABLE = {"UNSHIPPED", "PARTIALLY_SHIPPED"}
NOT_YET = {"PENDING", "PENDING_AVAILABILITY"}
RETURNED = {"RETURNED": True, "PARTIALLY_RETURNED": False}  # a channel's status for goods coming back: whole?


@dataclass
class ImportResult:
    pages: int = 0
    fetched: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    released: int = 0
    held: int = 0
    pending: int = 0
    cancelled: int = 0
    shipped: int = 0
    returns: int = 0  # dropship returns announced because the channel reported the goods returned
    calls: int = 0
    throttled: int = 0
    retries: int = 0
    waited_seconds: float = 0.0
    seconds: float = 0.0
    resumed: bool = False
    complete: bool = False  # False when the time budget or an error ended the run before the last page
    dry_run: bool = False
    watermark: str | None = None
    stopped_by: str | None = None  # the error that ended the run early, if any
    exit_code: int = 0
    failures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        parts = [f"{self.fetched} fetched in {self.pages} pages", f"{self.new} new", f"{self.updated} updated",
                 f"{self.unchanged} unchanged", f"{self.failed} failed",
                 f"released {self.released}, on hold {self.held}, pending {self.pending}, "
                 f"cancelled {self.cancelled}, shipped elsewhere {self.shipped}"
                 + (f", dropship returns announced {self.returns}" if self.returns else ""),
                 f"{self.calls} API calls, {self.throttled} throttled, "
                 f"{self.waited_seconds:.1f}s waiting for the channel",
                 f"{self.seconds:.1f}s"]
        head = "DRY RUN, nothing stored: " if self.dry_run else ""
        tail = f"; stopped early: {self.stopped_by}" if self.stopped_by else ""
        return head + "; ".join(parts) + tail


class _OrderFailed(Exception):
    pass


def _full_address(mo: MarketplaceOrder):
    """The delivery address when the channel sent it whole; None when it hides the personal parts
    (cancelled or pending orders show only city and country), which is no change of address."""
    return mo.address if mo.address is not None and mo.address.line1 else None


class Importer:
    """Stores pages of marketplace orders; the marketplace adapter is passed in (a port)."""

    def __init__(self, session: Session, cfg: Config, marketplace: Marketplace, *, connector: str | None = None):
        self.s, self.cfg, self.mp = session, cfg, marketplace
        self.channel = marketplace.name  # the sales channel its orders belong to
        self.label = channels.get(self.channel).label  # how events name it
        self.connector = connector or f"{marketplace.name}.orders"  # names the cursor
        self.result = ImportResult()

    # --- the run -------------------------------------------------------------------------------

    def run(self, marketplace_ids: tuple[str, ...], *, since: datetime | None = None, dry_run: bool = False,
            max_seconds: float | None = None,
            progress: Callable[[ImportResult], None] | None = None) -> ImportResult:
        """Import everything changed since the cursor (or ``since``); never raises a CaturactlError
        from the remote side: the result says how far it got and why it stopped. With
        ``max_seconds`` it stops after the first page past that budget; the next run resumes."""
        r = self.result
        r.dry_run = dry_run
        started = time.monotonic()
        scope = ",".join(sorted(marketplace_ids))
        cursor = self._cursor(scope)
        now = clock.now()
        if since is None and cursor.page_token and cursor.page_started_at and now - cursor.page_started_at < RESUME_WITHIN:
            query = OrderQuery(cursor.page_after, marketplace_ids, cursor.page_token)
            r.resumed = True
        else:
            first = timedelta(days=channels.get(self.channel).first_import_days(self.cfg))
            after = since or cursor.watermark or now - first
            query = OrderQuery(after, marketplace_ids)
            cursor.page_started_at = now  # stored with the first page, so a failed start changes nothing
        self.known_skus = frozenset(self.s.scalars(select(Product.sku).where(Product.active)))
        try:
            for page in self.mp.changed_orders(query):
                r.pages += 1
                self._store_page(page.orders, page.broken)
                cursor = self._cursor(scope)
                if page.next_token:
                    cursor.page_after, cursor.page_token = query.updated_after, page.next_token
                else:
                    newest = max((o.updated_at for o in page.orders), default=None)
                    cursor.watermark = page.window_end or newest or cursor.watermark
                    cursor.page_token = cursor.page_after = None
                    r.watermark = cursor.watermark.isoformat() if cursor.watermark else None
                self._remember_budgets()
                if dry_run:
                    self.s.rollback()
                else:
                    self.s.commit()
                if progress:
                    progress(r)
                if page.next_token is None:
                    r.complete = True
                elif max_seconds is not None and time.monotonic() - started >= max_seconds:
                    r.stopped_by = f"time budget of {max_seconds:g}s used; the next run resumes at page {r.pages + 1}"
                    break
        except CaturactlError as exc:
            self.s.rollback()
            r.stopped_by, r.exit_code = str(exc), exc.exit_code
            if not dry_run:
                # A 429 storm drained the bucket: the next run must not assume a full burst.
                self._remember_budgets()
                self.s.commit()
        finally:
            stats = self.mp.call_stats()
            r.calls, r.throttled, r.retries, r.waited_seconds = (stats.calls, stats.throttled, stats.retries,
                                                                 round(stats.waited_seconds, 3))
            r.seconds = time.monotonic() - started
        return r

    def _cursor(self, scope: str) -> Cursor:
        c = self.s.scalar(select(Cursor).where(Cursor.connector == self.connector, Cursor.scope == scope))
        if c is None:
            c = Cursor(connector=self.connector, scope=scope)
            self.s.add(c)
            self.s.flush()
        return c

    def _remember_budgets(self) -> None:
        for op, (tokens, at) in self.mp.rate_budgets().items():
            keep_budget(self.s, op, tokens, at)

    # --- one page ------------------------------------------------------------------------------

    def _store_page(self, orders: tuple[MarketplaceOrder, ...], broken: tuple[BrokenOrder, ...]) -> None:
        r = self.result
        r.fetched += len(orders) + len(broken)
        ids = [o.external_id for o in orders] + [b.external_id for b in broken]
        # Locked and read afresh: a router or export holding one of these orders finishes first,
        # and what it committed is what this page's news are applied to.
        existing = {o.external_id: o for o in self.s.scalars(
            select(Order).where(Order.channel == self.channel, Order.external_id.in_(ids))
            .order_by(Order.id).with_for_update(of=Order, key_share=True).execution_options(populate_existing=True)
            .options(selectinload(Order.lines), selectinload(Order.customer)))}
        # Fast path: the whole page in one savepoint and one flush. Should any order fail, undo
        # the page and store it again with a savepoint per order, so only that order is skipped.
        before = replace(r, failures=list(r.failures))
        try:
            with self.s.begin_nested(), buffered(self.s):
                matcher = self._matcher(orders)
                stored = dict(existing)
                for mo in orders:
                    stored[mo.external_id] = self._store_order(mo, stored.get(mo.external_id), matcher)
        except (_OrderFailed, InputError, ValueError, IntegrityError):
            r.__dict__.update(before.__dict__)  # in place: run() holds this object
            self._store_one_by_one(orders, existing)
        for b in broken:
            self._fail(b, existing.get(b.external_id))

    def _store_one_by_one(self, orders: tuple[MarketplaceOrder, ...], existing: dict[str, Order]) -> None:
        matcher = self._matcher(orders)
        r = self.result
        for mo in orders:
            before = replace(r, failures=list(r.failures))
            try:
                with self.s.begin_nested(), buffered(self.s):
                    existing[mo.external_id] = self._store_order(mo, existing.get(mo.external_id), matcher)
            except (_OrderFailed, InputError, ValueError, IntegrityError) as exc:
                r.__dict__.update(before.__dict__)  # the order's counts went with its savepoint
                where, reason = (exc.args[0], exc.args[1]) if isinstance(exc, _OrderFailed) else ("order", str(exc))
                self._fail(BrokenOrder(mo.external_id, where, reason, mo.raw), existing.get(mo.external_id))
                # The savepoint is gone; rows it made must not be found in the matcher's cache.
                matcher = self._matcher(orders)

    def _matcher(self, orders: tuple[MarketplaceOrder, ...]) -> Matcher:
        matcher = Matcher(self.s, self.cfg.matching)
        matcher.preload((o.buyer_email for o in orders), (o.address for o in orders if o.address))
        return matcher

    def _fail(self, b: BrokenOrder, order: Order | None) -> None:
        r = self.result
        r.failed += 1
        r.failures.append(f"{b.external_id}: {b.where}: {b.reason}")
        with self.s.begin_nested():
            text = f"order {b.external_id} could not be imported: {b.where}: {b.reason}"
            record(self.s, EventKind.IMPORT_FAILED, text, order=order,
                   data={"external_id": b.external_id, "where": b.where, "reason": b.reason})
            already = self.s.scalar(select(Ticket.id).where(Ticket.external_ref == b.external_id,
                                                            Ticket.kind == "import_failed", Ticket.status == OPEN))
            if not already:
                t = Ticket(order=order, external_ref=b.external_id, kind="import_failed",
                           reasons="import_failed", text=text, created_by=actor.get())
                self.s.add(t)
                record(self.s, EventKind.TICKET_OPENED, text, order=order, ticket=t)

    def _store_order(self, mo: MarketplaceOrder, order: Order | None, matcher: Matcher) -> Order:
        r = self.result
        if order is None:
            order = Order(channel=mo.channel, external_id=mo.external_id)
            self._copy(order, mo)
            self.s.add(order)
            transition(self.s, order, OrderState.IMPORTED, f"imported from {mo.marketplace_name or mo.channel} "
                                                           f"({mo.status})")
            r.new += 1
            self._settle(order, mo, matcher)
            payment = payment_queue.owed(self.s, self.cfg, order)
            notices.order_placed(self.s, self.cfg, order, payment=payment)
            return order
        if mo.updated_at <= order.remote_updated_at:
            r.unchanged += 1  # the same order fetched twice (or an older copy): a no-op
            return order
        changes = self._diff(order, mo)
        was = order.remote_status
        self._copy(order, mo)
        r.updated += 1
        record(self.s, EventKind.ORDER_UPDATED,
               f"changed at {self.label}: " + ("; ".join(changes) or "no relevant field"),
               order=order, customer=order.customer, data={"changes": changes})
        self._settle(order, mo, matcher, changed=changes)
        if mo.status in RETURNED and was != mo.status:
            self._returned(order, RETURNED[mo.status])
        payment_queue.owed(self.s, self.cfg, order)
        return order

    def _returned(self, order: Order, whole: bool) -> None:
        """Goods of ``order`` come back, the channel says: a dropshipper's pieces are announced to
        it (fulfilment/dropship/returns.py), and a person gets a ticket for what is left."""
        made, left = dropship_returns.announce_channel_return(self.s, self.cfg, order, whole=whole,
                                                              channel=self.label, now=clock.now())
        self.result.returns += len(made)
        if left:
            triage.open_ticket(self.s, "returned", [triage.Hold("returned", left)], order=order,
                               external_ref=order.external_id)

    def _settle(self, order: Order, mo: MarketplaceOrder, matcher: Matcher, changed: list[str] | None = None) -> None:
        """Move the order to where the marketplace's news put it."""
        r = self.result
        state = OrderState(order.state)
        if state in TERMINAL:
            return
        if mo.status == "CANCELLED":
            why = f"cancelled at {self.label}" + (" after import" if changed is not None else " before import")
            reasons = {ln.cancel_requested for ln in mo.lines if ln.cancel_requested}
            if state is OrderState.PARTIALLY_SHIPPED:
                # Parcels have left: the order cannot simply be cancelled here; a person decides.
                triage.open_ticket(self.s, "cancelled_after_shipping", [triage.Hold(
                    "cancelled_after_shipping", f"{self.label} reports order {order.external_id} cancelled after "
                    "some parcels left: check what is still open at the locations")], order=order)
                return
            cancel_order(self.s, self.cfg, order, why + (f": {', '.join(sorted(reasons))}" if reasons else ""),
                         at_channel=True)
            r.cancelled += 1
            return
        channel = channels.get(self.channel)
        itself = bool(channel.fulfils_itself) and mo.fulfilled_by == channel.fulfils_itself
        if itself or mo.status == channel.shipped_status:
            why = f"fulfilled by {channel.label} itself ({mo.fulfilled_by})" if itself else \
                f"{channel.label} reports it {mo.status}: shipped outside caturactl"
            self._match(order, mo, matcher)
            transition(self.s, order, OrderState.SHIPPED, why)
            triage.close_tickets(self.s, order, "closed", why)
            if state in (OrderState.ROUTED, OrderState.PARTIALLY_SHIPPED):
                # Our notes are moot: cancelled, stock released, a location with the file told.
                shipping.cancel_deliveries(self.s, order, why)
            r.shipped += 1
            return
        if mo.status in NOT_YET:
            if state is OrderState.IMPORTED:
                transition(self.s, order, OrderState.PENDING, f"{self.label} has not released it yet ({mo.status})")
                r.pending += 1
            return
        if mo.status not in RELEASABLE:
            raise _OrderFailed("order.fulfillment.fulfillmentStatus", f"{mo.status!r} is not a status caturactl knows")
        if state in (OrderState.IMPORTED, OrderState.PENDING):
            self._match(order, mo, matcher)
            reasons = triage.holds(mo, self.known_skus, self.cfg.triage)
            if reasons:
                triage.hold(self.s, order, reasons)
                r.held += 1
            else:
                transition(self.s, order, OrderState.RELEASED, "passed triage" +
                           (f" after {self.label} released it" if state is OrderState.PENDING else ""))
                r.released += 1
        elif state is OrderState.RELEASED and changed:
            # Not yet routed: news that need a person (e.g. a new delivery instruction) stop it.
            reasons = triage.holds(mo, self.known_skus, self.cfg.triage)
            if reasons:
                triage.hold(self.s, order, reasons, why_prefix=f"changed at {self.label}, ")
                r.held += 1

    def _match(self, order: Order, mo: MarketplaceOrder, matcher: Matcher) -> None:
        if order.customer is not None:
            return
        customer, reason = matcher.match(mo.buyer_email, mo.buyer_name, mo.buyer_company, mo.address)
        if customer is None:
            order.match_reason = reason
            return
        order.customer, order.match_reason = customer, reason
        record(self.s, EventKind.CUSTOMER_MATCHED, reason, order=order, customer=customer)

    @staticmethod
    def _diff(order: Order, mo: MarketplaceOrder) -> list[str]:
        changes = []
        if order.remote_status != mo.status:
            changes.append(f"status {order.remote_status} -> {mo.status}")
        if _full_address(mo) is not None and order.address != mo.address:
            old = order.address
            fields = [f for f in ("name", "company", "line1", "line2", "line3", "postal_code", "city", "country", "phone")
                      if getattr(old, f) != getattr(mo.address, f)]
            changes.append("address " + ", ".join(fields) + (" added" if not old.line1 else " changed"))
        if order.payment_state != mo.payment_state:
            changes.append(f"payment {order.payment_state or 'unknown'} -> {mo.payment_state or 'unknown'}")
        if order.delivery_instructions != mo.delivery_instructions:
            changes.append("delivery instructions " + ("added" if mo.delivery_instructions else "removed"))
        old_lines = {ln.external_id: (ln.quantity, ln.quantity_shipped) for ln in order.lines}
        new_lines = {ln.line_id: (ln.quantity, ln.quantity_shipped) for ln in mo.lines}
        if old_lines != new_lines:
            changes.append("lines or quantities changed")
        return changes

    @staticmethod
    def _copy(order: Order, mo: MarketplaceOrder) -> None:
        order.marketplace_id, order.marketplace_name = mo.marketplace_id, mo.marketplace_name
        order.remote_status, order.fulfilled_by, order.service_level = mo.status, mo.fulfilled_by, mo.service_level
        order.programs = ",".join(mo.programs)
        order.created_at, order.remote_updated_at = mo.created_at, mo.updated_at
        order.ship_by, order.deliver_by, order.deliver_from = mo.ship_by, mo.deliver_by, mo.deliver_from
        # Amazon hides PII on some statuses: keep what we already know rather than blank it.
        order.buyer_email = mo.buyer_email or order.buyer_email or ""
        order.buyer_name = mo.buyer_name or order.buyer_name or ""
        order.buyer_company = mo.buyer_company or order.buyer_company or ""
        order.buyer_tax_id = ", ".join(mo.buyer_tax_ids) or order.buyer_tax_id or ""
        order.purchase_order = mo.purchase_order or order.purchase_order or ""
        order.delivery_instructions = mo.delivery_instructions
        order.payment_method, order.payment_state = mo.payment_method, mo.payment_state
        if _full_address(mo) is not None or not order.ship_line1:
            order.set_address(mo.address)
        if mo.total is not None:
            order.total_amount, order.currency = mo.total.amount, mo.total.currency
        order.raw = mo.raw
        lines = {ln.external_id: ln for ln in order.lines}
        for pos, ml in enumerate(mo.lines, 1):
            ln = lines.get(ml.line_id)
            if ln is None:
                ln = OrderLine(external_id=ml.line_id, position=pos, quantity=ml.quantity)
                order.lines.append(ln)
            ln.position, ln.sku, ln.listing_id, ln.title = pos, ml.sku, ml.listing_id, ml.title
            ln.quantity, ln.quantity_shipped = ml.quantity, ml.quantity_shipped
            ln.gift_message = ml.gift_message
            for attr, money in (("unit_price", ml.unit_price), ("tax_amount", ml.tax)):
                if money is not None:
                    setattr(ln, attr, money.amount)
            if ml.total is not None:  # what the buyer paid, charge by charge (zero when not charged)
                ln.total_amount = ml.total.amount
                for attr, money in (("shipping_amount", ml.shipping), ("gift_wrap_amount", ml.gift_wrap),
                                    ("cod_fee_amount", ml.cod_fee), ("item_discount", ml.item_discount),
                                    ("shipping_discount", ml.shipping_discount)):
                    setattr(ln, attr, money.amount if money is not None else Decimal(0))
            ln.promotion_ids = ",".join(ml.promotion_ids)[:500]
        # Checked before the INSERT, so SQLite and PostgreSQL refuse the same record the same way.
        for pos, ln in enumerate(order.lines, 1):
            check_fits(ln, f"order.lines[{pos}]")
        check_fits(order, "order")
