"""The order desk: what a person does with orders at the terminal.

An order taken by phone (``create``) or placed again (``repeat``) belongs to the sales channel
"phone" (``connectors/phone/channel.py``): caturactl numbers it itself (``claim_number``), prices
it from the catalogue, checks the stock, and lets it enter the life an imported order has:
stored, matched to its customer, triaged (released, or held with a ticket), its payment expected.
``note`` keeps a person's note in the order's history; ``apply_to_each`` applies one action
(mark paid, release, cancel) to many orders, each in its own savepoint.

``wanted_line``, ``shortages`` and ``priced_lines`` are the pure rules; the rest loads, calls
them, stores and records the event (who: the actor the CLI set; why: said by the person).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Callable, Iterable, Mapping
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from caturactl import channels
from caturactl.catalogue.availability import available
from caturactl.catalogue.models import Product
from caturactl.config import Config
from caturactl.core import clock, csvfile
from caturactl.core.address import Address
from caturactl.core.db import check_fits
from caturactl.core.errors import CaturactlError, InputError, StateError
from caturactl.core.events import EventKind, record
from caturactl.core.lifecycle import OrderState, transition
from caturactl.core.money import CENT, Money
from caturactl.core.numbering import claim_next
from caturactl.customers.matching import Matcher, canonical, find_customer
from caturactl.customers.models import Customer, CustomerAddress
from caturactl.orders import notices, triage
from caturactl.orders.cancelling import cancel_order
from caturactl.orders.models import Order, OrderCounter, OrderLine
from caturactl.orders.tickets import OPEN as TICKET_OPEN, Ticket
from caturactl.payments import queue as payment_queue
from caturactl.payments import service as payments
from caturactl.payments.models import OPEN as PAYMENT_OPEN, Payment, PaymentStatus
from caturactl.ports import MarketplaceLine, MarketplaceOrder
from caturactl.views.cockpit import find_order, known_states

CHANNEL = "phone"  # connectors/phone/channel.py, registered in caturactl/channels.py
PREFIX = "TEL"  # TEL-2026-00001: "T12" is a ticket
PAYMENT_CHOICES = ("prepayment", "invoice", "cod", "paid")
MAX_QUANTITY = 10_000  # pieces of one line; more is a typo
MAX_SHIPPING = Decimal("10000")
MAX_NOTE = 2000
_LINE = re.compile(r"(?P<sku>[^:]+):(?P<qty>[0-9]{1,6})")
_COUNTRY = re.compile(r"[A-Z]{2}")


# --- the rules ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Wanted:
    """A line as the person said it: so many pieces of a SKU."""
    sku: str
    quantity: int


def wanted_line(text: str, where: str) -> Wanted:
    """'SKU:QTY' as a Wanted line; raises InputError naming ``where``."""
    m = _LINE.fullmatch(text.strip())
    if not m or not m["sku"].strip() or not m["sku"].strip().isprintable():
        raise InputError(f"not SKU:QUANTITY: {text[:60]!r}", where=where)
    qty = int(m["qty"])
    if not 1 <= qty <= MAX_QUANTITY:
        raise InputError(f"a quantity from 1 to {MAX_QUANTITY}, not {qty}", where=where)
    return Wanted(m["sku"].strip(), qty)


def shortages(wanted: Iterable[Wanted], in_stock: Mapping[str, int]) -> list[str]:
    """Each SKU of which more pieces are wanted (over all lines) than ``in_stock`` (on hand less
    reserved, over every location), in words; empty when everything is there."""
    total: dict[str, int] = defaultdict(int)
    for w in wanted:
        total[w.sku] += w.quantity
    return [f"{sku}: {qty} wanted, {max(in_stock.get(sku, 0), 0)} available"
            for sku, qty in total.items() if qty > in_stock.get(sku, 0)]


@dataclass(frozen=True, slots=True)
class Priced:
    """A line priced from the catalogue: the product's price (gross, each) times the pieces."""
    sku: str
    title: str
    listing_id: str
    quantity: int
    unit_price: Decimal

    @property
    def goods(self) -> Decimal:
        return (self.unit_price * self.quantity).quantize(CENT)


def priced_lines(wanted: Iterable[Wanted], products: Mapping[str, Product]) -> list[Priced]:
    """The lines with today's catalogue prices; raises InputError for a SKU that is not an active
    product or has no price (naming the line)."""
    out = []
    for i, w in enumerate(wanted, 1):
        p = products.get(w.sku)
        if p is None or not p.active:
            raise InputError(f"unknown SKU {w.sku!r}: not an active product of the catalogue "
                             "(caturactl products import)", where=f"line {i}")
        if p.price is None:
            raise InputError(f"{w.sku} has no price in the catalogue: a price column in the products file",
                             where=f"line {i}")
        out.append(Priced(p.sku, p.title, p.listing_id, w.quantity, p.price))
    return out


# --- numbers -----------------------------------------------------------------------------------


def claim_number(session: Session, year: int, prefix: str = PREFIX) -> str:
    """The next order number of ``prefix`` in ``year`` (TEL-2026-00001), claimed in the caller's
    transaction (``core/numbering.claim_next``): two desks never get the same number, and a
    rolled-back (dry) run gives its number back."""
    return f"{prefix}-{year}-{claim_next(session, OrderCounter, prefix=prefix, year=year):05d}"


# --- taking an order ---------------------------------------------------------------------------


# The options a buyer is typed in with, by the field of the address each fills.
BUYER_OPTIONS = {"name": "--name", "company": "--company", "line1": "--street", "postal_code": "--zip",
                 "city": "--city", "country": "--country", "phone": "--phone"}


@dataclass(frozen=True)
class Buyer:
    """Who orders, as the person typed it: a delivery address (``line1``: street and house number)
    and an e-mail; every field may be empty for a known customer."""
    address: Address = Address()
    email: str = ""

    @property
    def has_address(self) -> bool:
        return bool(self.address.line1 or self.address.postal_code or self.address.city)


@dataclass(frozen=True)
class Terms:
    """What else was agreed: how the buyer pays, the shipping charged, a note."""
    payment: str
    reference: str = ""  # the payment's reference when it is paid already
    shipping: Decimal = Decimal("0.00")  # gross
    note: str = ""
    allow_backorder: bool = False


@dataclass
class Placed:
    """An order taken: what the CLI prints."""
    number: str
    state: str
    customer: str
    match_reason: str
    total: str
    payment: str
    lines: list[dict]
    hold_reason: str = ""
    ticket: str = ""
    backorder: list[str] = field(default_factory=list)
    repeats: str = ""

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def create(session: Session, cfg: Config, lines: list[Wanted], terms: Terms, *, customer_ref: str | None = None,
           buyer: Buyer = Buyer()) -> Placed:
    """Take an order at the terminal for the customer ``customer_ref`` (number or e-mail) or for
    ``buyer`` (matched like an imported buyer: a known e-mail or address finds its customer, else a
    new one), and let it enter the normal life. Raises InputError (bad input), NotFoundError
    (no such customer) or StateError (not in stock, without ``allow_backorder``)."""
    if customer_ref:
        customer = _known_customer(session, customer_ref)
        address, email, name = _address_of(customer, buyer)
        return _place(session, cfg, lines, terms, customer=customer, address=address, email=email, name=name,
                      company=buyer.address.company or address.company or customer.company,
                      reason=f"named at the terminal: {customer.number}", why="taken at the terminal")
    address, email = _new_buyer(buyer)
    return _place(session, cfg, lines, terms, customer=None, address=address, email=email, name=address.name,
                  company=address.company, reason="", why="taken at the terminal")


def repeat(session: Session, cfg: Config, ref: str, *, payment: str = "", reference: str = "",
           shipping: Decimal | None = None, note: str = "", allow_backorder: bool = False) -> Placed:
    """Place the lines of order ``ref`` again for the same customer and address: a new number,
    today's catalogue prices, the stock checked. ``payment`` defaults to the order's own when it
    is one the desk takes (``PAYMENT_CHOICES``), ``shipping`` to what the order charged for it.
    Raises NotFoundError, InputError, StateError as ``create``."""
    old = find_order(session, ref)
    if shipping is None:
        shipping = sum(((ln.shipping_amount or 0) - (ln.shipping_discount or 0) for ln in old.lines),
                       Decimal(0)).quantize(CENT)
    if not payment:
        if old.payment_method not in PAYMENT_CHOICES:
            raise InputError(f"order {old.external_id} was paid through its channel or already: say how the buyer "
                             f"pays ({', '.join(PAYMENT_CHOICES)})", where="--payment")
        payment = old.payment_method
    terms = Terms(payment, reference, shipping, note, allow_backorder)
    lines = [Wanted(ln.sku, ln.quantity) for ln in sorted(old.lines, key=lambda x: x.position)]
    if not lines:
        raise InputError(f"order {old.external_id} has no lines to repeat")
    customer = canonical(session, old.customer) if old.customer else None
    placed = _place(session, cfg, lines, terms, customer=customer, address=old.address, email=old.buyer_email,
                    name=old.buyer_name or old.ship_name, company=old.buyer_company,
                    reason=f"the customer of order {old.external_id}" if customer else "",
                    why=f"repeat of order {old.external_id}, taken at the terminal")
    record(session, EventKind.NOTE, f"placed again as order {placed.number}", order=old, customer=old.customer,
           data={"repeated_as": placed.number})
    placed.repeats = old.external_id
    return placed


def _known_customer(session: Session, ref: str) -> Customer:
    return canonical(session, find_customer(session, ref))


def _address_of(customer: Customer, buyer: Buyer) -> tuple[Address, str, str]:
    """(delivery address, e-mail, name) for a known customer: what the person typed, else the
    customer's latest address and first e-mail."""
    typed = buyer.address
    if buyer.has_address:
        address, _ = _new_buyer(replace(buyer, address=replace(typed, name=typed.name or customer.name)),
                                need_name=False)
    else:
        latest: CustomerAddress | None = customer.addresses[-1] if customer.addresses else None
        if latest is None:
            raise InputError(f"customer {customer.number} has no address yet: give --street, --zip and --city",
                             where="--street")
        a = latest.to_address()
        address = replace(a, name=typed.name or a.name or customer.name, company=typed.company or a.company,
                          phone=typed.phone, address_type="")
    email = _email(buyer.email) or (customer.emails[0].email if customer.emails else "")
    return address, email, typed.name or address.name or customer.name


def _email(text: str) -> str:
    text = text.strip().lower()
    if text and (text.count("@") != 1 or " " in text or len(text) > 320 or not text.isprintable()):
        raise InputError(f"not an e-mail address: {text[:60]!r}", where="--email")
    return text


def _new_buyer(buyer: Buyer, *, need_name: bool = True) -> tuple[Address, str]:
    """The delivery address and e-mail of a buyer typed in whole; raises InputError naming the
    option that is missing or wrong."""
    typed = buyer.address
    needed = ("name", "line1", "postal_code", "city") if need_name else ("line1", "postal_code", "city")
    missing = [BUYER_OPTIONS[f] for f in needed if not getattr(typed, f).strip()]
    if missing:
        raise InputError(f"a new customer needs {', '.join(missing)} (or --customer for a known one)",
                         where=missing[0])
    country = (typed.country or "DE").strip().upper()
    if not _COUNTRY.fullmatch(country):
        raise InputError(f"a country is two letters (ISO 3166), not {typed.country!r}", where="--country")
    for f, opt in BUYER_OPTIONS.items():
        if not getattr(typed, f).isprintable():
            raise InputError("only printable characters", where=opt)
    address = Address(**{f: getattr(typed, f).strip() for f in BUYER_OPTIONS if f != "country"}, country=country)
    return address, _email(buyer.email)


def _check_terms(terms: Terms) -> None:
    if terms.payment not in PAYMENT_CHOICES:
        raise InputError(f"payment is one of {', '.join(PAYMENT_CHOICES)}, not {terms.payment!r}", where="--payment")
    if terms.payment == "paid" and not terms.reference.strip():
        raise InputError("a paid order needs the payment's --reference (receipt, transaction id)", where="--reference")
    if len(terms.reference) > 140 or not terms.reference.isprintable():
        raise InputError("a reference is at most 140 printable characters", where="--reference")
    if terms.shipping < 0 or terms.shipping > MAX_SHIPPING or terms.shipping != terms.shipping.quantize(CENT):
        raise InputError(f"shipping is an amount from 0 to {MAX_SHIPPING} to the cent, not {terms.shipping}",
                         where="--shipping")
    if len(terms.note) > MAX_NOTE:
        raise InputError(f"a note is at most {MAX_NOTE} characters", where="--note")


def _place(session: Session, cfg: Config, wanted: list[Wanted], terms: Terms, *, customer: Customer | None,
           address: Address, email: str, name: str, company: str, reason: str, why: str) -> Placed:
    """Store the order, match its buyer, triage it and expect its payment, each with its event."""
    if not wanted:
        raise InputError("an order needs at least one --line SKU:QUANTITY", where="--line")
    _check_terms(terms)
    products = {p.sku: p for p in session.scalars(select(Product).where(Product.sku.in_({w.sku for w in wanted})))}
    lines = priced_lines(wanted, products)
    short = shortages(wanted, {a.sku: a.quantity for a in available(session, cfg.stock, skus=products,
                                                                    safety=False)})
    if short and not terms.allow_backorder:
        raise StateError("not enough stock: " + "; ".join(short) + " (--allow-backorder takes the order all the same)")
    now = clock.now()
    number = claim_number(session, clock.today(cfg.tz).year)
    order = Order(channel=CHANNEL, external_id=number, marketplace_id="", marketplace_name="", remote_status="",
                  fulfilled_by="MERCHANT", service_level="Standard", programs="", created_at=now,
                  remote_updated_at=now, imported_at=now, buyer_email=email, buyer_name=name, buyer_company=company,
                  currency="EUR", payment_method="" if terms.payment == "paid" else terms.payment,
                  payment_state="paid" if terms.payment == "paid" else "", raw={})
    order.set_address(address)
    for pos, ln in enumerate(lines, 1):
        charged = terms.shipping.quantize(CENT) if pos == 1 else Decimal("0.00")  # the order's shipping, on its first line
        order.lines.append(OrderLine(
            position=pos, external_id=str(pos), sku=ln.sku, listing_id=ln.listing_id, title=ln.title,
            quantity=ln.quantity, quantity_shipped=0, unit_price=ln.unit_price, total_amount=ln.goods + charged,
            tax_amount=None, shipping_amount=charged, gift_wrap_amount=Decimal("0.00"), cod_fee_amount=Decimal("0.00"),
            item_discount=Decimal("0.00"), shipping_discount=Decimal("0.00"), promotion_ids=""))
    order.total_amount = sum((ln.total_amount for ln in order.lines), Decimal(0)).quantize(CENT)
    for pos, ln in enumerate(order.lines, 1):
        check_fits(ln, f"line {pos}")
    check_fits(order, "order")
    session.add(order)
    transition(session, order, OrderState.IMPORTED, why + (f": {terms.payment}" if terms.payment else ""))
    _match(session, cfg, order, customer, reason)
    if short:
        record(session, EventKind.NOTE, "taken on backorder: " + "; ".join(short), order=order,
               customer=order.customer, data={"backorder": short})
    if terms.note.strip():
        record(session, EventKind.NOTE, terms.note.strip(), order=order, customer=order.customer)
    ticket = _triage(session, cfg, order, set(products))
    payment = _expect_payment(session, cfg, order, terms)
    notices.order_placed(session, cfg, order, payment=payment)  # the buyer's confirmation, the merchant's mail
    session.flush()
    return Placed(number=number, state=order.state, customer=f"{order.customer.display_name} ({order.customer.number})"
                  if order.customer else "", match_reason=order.match_reason, total=str(order.total),
                  payment=terms.payment, hold_reason=order.hold_reason, ticket=ticket.number if ticket else "",
                  backorder=short, lines=[{"position": ln.position, "sku": ln.sku, "title": ln.title,
                                           "quantity": ln.quantity, "unit_price": str(ln.unit_price),
                                           "total": str(ln.total_amount)} for ln in order.lines])


def _match(session: Session, cfg: Config, order: Order, customer: Customer | None, reason: str) -> None:
    """The order's customer: the one named, else found or made as an import finds a buyer."""
    if customer is None:
        matcher = Matcher(session, cfg.matching)
        address = order.address
        matcher.preload([order.buyer_email], [address])
        customer, reason = matcher.match(order.buyer_email, order.buyer_name, order.buyer_company, address)
    order.customer, order.match_reason = customer, reason[:300]
    if customer is not None:
        record(session, EventKind.CUSTOMER_MATCHED, reason, order=order, customer=customer)


def _triage(session: Session, cfg: Config, order: Order, known_skus: set[str]) -> Ticket | None:
    """The import's triage rules over the order: released, or held with one ticket."""
    reasons = triage.holds(_as_channel_order(order), frozenset(known_skus), cfg.triage)
    if reasons:
        return triage.hold(session, order, reasons, why_prefix="taken at the terminal, ")
    transition(session, order, OrderState.RELEASED, "passed triage")
    return None


def _as_channel_order(order: Order) -> MarketplaceOrder:
    """The order as a channel would have reported it, for the triage rules."""
    def money(x: Decimal | None) -> Money | None:
        return None if x is None else Money(x, order.currency)
    return MarketplaceOrder(
        channel=order.channel, external_id=order.external_id, marketplace_id="", marketplace_name="",
        created_at=order.created_at, updated_at=order.remote_updated_at, status="UNSHIPPED",
        fulfilled_by=order.fulfilled_by, service_level=order.service_level, programs=(),
        buyer_email=order.buyer_email, buyer_name=order.buyer_name, buyer_company=order.buyer_company,
        purchase_order="", address=order.address, delivery_instructions=order.delivery_instructions,
        total=order.total, payment_method=order.payment_method, payment_state=order.payment_state,
        lines=tuple(MarketplaceLine(line_id=ln.external_id, sku=ln.sku, listing_id=ln.listing_id, title=ln.title,
                                    quantity=ln.quantity, quantity_shipped=0, unit_price=money(ln.unit_price),
                                    total=money(ln.total_amount), tax=None, shipping=money(ln.shipping_amount))
                    for ln in order.lines))


def _expect_payment(session: Session, cfg: Config, order: Order, terms: Terms) -> Payment | None:
    """The order's payment as an imported order gets it (``payments.queue.owed``: its method's
    terms, routed only once paid where the money comes first); none when it was paid already."""
    if terms.payment == "paid":
        record(session, EventKind.PAYMENT_RECEIVED, f"paid when ordering: {order.total}, reference "
               f"{terms.reference.strip()}", order=order, customer=order.customer,
               data={"amount": str(order.total_amount), "reference": terms.reference.strip()})
        return None
    return payment_queue.owed(session, cfg, order)


# --- notes -------------------------------------------------------------------------------------


def note(session: Session, ref: str, text: str) -> Order:
    """Keep ``text`` in the history of order ``ref`` (an event: who, when, the note as its why).
    Raises NotFoundError, InputError for an empty or overlong note."""
    text = text.strip()
    if not text:
        raise InputError("the note is empty", where="TEXT")
    if len(text) > MAX_NOTE:
        raise InputError(f"a note is at most {MAX_NOTE} characters", where="TEXT")
    order = find_order(session, ref)
    record(session, EventKind.NOTE, text, order=order, customer=order.customer)
    return order


# --- one action on many orders -----------------------------------------------------------------

ACTIONS = ("mark-paid", "release", "cancel")


class Skipped(Exception):
    """The order is already where the action would put it: nothing to do."""


@dataclass(frozen=True, slots=True)
class Target:
    """One order an action is for: its number, the payment reference of its row (a CSV file's
    ``reference`` column), where it was named (file:line)."""
    ref: str
    reference: str = ""
    where: str = ""


@dataclass
class BulkResult:
    action: str
    done: list[str] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # {"order", "why"}
    failed: list[dict] = field(default_factory=list)  # {"order", "where", "why"}
    remarks: list[str] = field(default_factory=list)  # said of orders done (a payment to refund by hand)
    dry_run: bool = False

    def as_dict(self) -> dict:
        return {"action": self.action, "done": len(self.done), "skipped": len(self.skipped),
                "failed": len(self.failed), "orders": self.done, "skipped_orders": self.skipped,
                "failed_orders": self.failed, "remarks": self.remarks, "dry_run": self.dry_run}


def select_orders(session: Session, tz: ZoneInfo, *, states: list[str] | None = None, channel: str | None = None,
                  since: date | None = None, customer: str | None = None) -> list[Target]:
    """The orders a filter names, oldest first; raises InputError for an unknown state or channel
    and for no filter at all (an action on every order is never meant)."""
    if not (states or channel or since or customer):
        raise InputError("name the orders: --state, --channel, --since, --customer or --file", where="--state")
    q = select(Order.external_id)
    if states:
        q = q.where(Order._state.in_(known_states(states, OrderState)))
    if channel:
        if channel not in channels.REGISTERED:
            raise InputError(f"no sales channel {channel!r} (known: {', '.join(sorted(channels.REGISTERED))})",
                             where="--channel")
        q = q.where(Order.channel == channel)
    if since:
        q = q.where(Order.created_at >= datetime.combine(since, time(), tz).astimezone(timezone.utc))
    if customer:
        c = canonical(session, find_customer(session, customer))
        q = q.where(Order.customer_id == c.id)
    return [Target(ext) for ext in session.scalars(q.order_by(Order.created_at, Order.id))]


def read_targets(path: Path) -> list[Target]:
    """The rows of an orders CSV file (header: ``order`` (or ``number``), optional ``reference``),
    read whole before anything is applied; raises InputError naming file:line for a file that
    does not read. A row naming no order is kept: it fails on its own."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", where=str(path)) from None
    header, body = csvfile.rows(csvfile.decode(data, str(path)), str(path))
    column = next((c for c in ("order", "number", "order_number") if c in header), None)
    if column is None:
        raise InputError("no 'order' column in the header line", where=f"{path}:1")
    return [Target(row[column], row.get("reference", ""), f"{path}:{lineno}") for lineno, row in body]


def apply_to_each(session: Session, cfg: Config, action: str, targets: list[Target], *, reason: str = "",
                  reference: str = "") -> BulkResult:
    """``action`` on each target in its own savepoint: an order is done whole or not at all, and a
    row that fails (no such order, a move its state forbids, no reference) is listed with why and
    never stops the rest; an order already there is skipped with why. Raises InputError only for
    an unknown action or a missing reason (before anything is done)."""
    if action not in ACTIONS:
        raise InputError(f"unknown action {action!r}: one of {', '.join(ACTIONS)}", where="ACTION")
    if action in ("release", "cancel") and not reason.strip():
        raise InputError(f"{action} needs --reason: what was checked or decided (kept in the history)",
                         where="--reason")
    do: Callable[[Session, Order, Target], str] = {
        "mark-paid": lambda s, o, t: mark_paid(s, cfg, o, t.reference or reference, reason),
        "release": lambda s, o, t: release(s, o, reason),
        "cancel": lambda s, o, t: cancel(s, cfg, o, reason),
    }[action]
    r = BulkResult(action)
    for t in targets:
        name = t.ref or "(none)"
        try:
            with session.begin_nested():
                if not t.ref.strip():
                    raise InputError("no order named", where=t.where or None)
                order = find_order(session, t.ref)
                remark = do(session, order, t)
            r.done.append(order.external_id)
            if remark:
                r.remarks.append(f"{order.external_id}: {remark}")
        except Skipped as exc:
            r.skipped.append({"order": name, "why": str(exc)})
        except CaturactlError as exc:
            session.expire_all()  # a move written before the failure went with the savepoint
            r.failed.append({"order": name, "where": t.where, "why": exc.message})
    return r


def mark_paid(session: Session, cfg: Config, order: Order, reference: str, reason: str = "") -> str:
    """Every open payment of ``order`` received in full, quoting ``reference``, as a matched bank
    credit is (``payments.service.receive``: the payment lifecycle and its event; the channel's
    payment state and the buyer's mail queued). Raises Skipped when all are paid already,
    InputError without a reference, StateError when the order has no payment at all."""
    reference = reference.strip()
    if not reference:
        raise InputError("no reference: --reference, or a reference column in the file", where="reference")
    if len(reference) > 140 or not reference.isprintable():
        raise InputError("a reference is at most 140 printable characters", where="reference")
    found = session.scalars(select(Payment).where(Payment.order_id == order.id).order_by(Payment.id)).all()
    owed = [p for p in found if p.status in PAYMENT_OPEN and p.amount_open > 0]
    if not owed:
        if any(p.status == PaymentStatus.PAID.value for p in found) or order.payment_state == "paid":
            raise Skipped("paid already")
        raise StateError(f"order {order.external_id} has no payment owed to the merchant"
                         + (f" (its payments are {', '.join(sorted({p.status for p in found}))})" if found else ""))
    for p in owed:
        payments.receive(session, cfg, p, p.amount_open, f"marked paid by a person, reference {reference}"
                         + (f": {reason.strip()}" if reason.strip() else ""), reference=reference)
    return ""


def release(session: Session, order: Order, reason: str) -> str:
    """Put an order on hold back into the automatic flow, closing its ticket as ``tickets resolve
    --release`` does. Raises Skipped when it is released already, StateError when it is not on
    hold or has a second open ticket."""
    if order.state == OrderState.RELEASED.value:
        raise Skipped("released already")
    if order.state != OrderState.ON_HOLD.value:
        raise StateError(f"order {order.external_id} is {order.state}, not on hold")
    ticket = session.scalar(select(Ticket).where(Ticket.order_id == order.id, Ticket.status == TICKET_OPEN)
                            .order_by(Ticket.id).limit(1))
    if ticket is not None:
        triage.resolve(session, ticket.number, "release", reason)
        return ""
    transition(session, order, OrderState.RELEASED, f"released by a person: {reason.strip()}")
    order.hold_reason = ""
    return ""


def cancel(session: Session, cfg: Config, order: Order, reason: str) -> str:
    """Cancel ``order`` (``orders.cancelling.cancel_order``: its tickets closed, a routed order's
    delivery notes cancelled and their stock released, its payments no longer owed, its channel
    told); what remains to refund by hand is the remark. Raises Skipped when it is cancelled
    already, StateError when it has left (shipped)."""
    if order.state == OrderState.CANCELLED.value:
        raise Skipped("cancelled already")
    return "; ".join(cancel_order(session, cfg, order, f"cancelled by a person: {reason.strip()}").refunds)


def parse_shipping(text: str | None) -> Decimal:
    """'4.90' or '4,90' as an amount; raises InputError."""
    if text is None or not text.strip():
        return Decimal("0.00")
    try:
        value = Decimal(text.strip().replace(",", "."))
    except InvalidOperation:
        raise InputError(f"not an amount: {text!r}", where="--shipping") from None
    if not value.is_finite():
        raise InputError(f"not an amount: {text!r}", where="--shipping")
    return value
