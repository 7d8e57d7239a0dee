"""Orders put straight into a state through the models, for tests whose subject is not the pipeline.

Each factory takes the session and flushes; the caller commits. The states are reached the way
the product reaches them, only without the channel, the transports and the locations:

``released``   an order with lines, a customer (e-mail, address) and prices, imported and released
``held``       the same, on hold with its ticket (``caturactl.orders.triage.hold``)
``routed``     one delivery note at a location, its stock reserved, the order routed
``shipped``    the note's parcel with a tracking number, stock taken out, note and order shipped
``invoiced``   the invoicing service (``Invoicer``) run on the shipped order: numbered, rendered, stored
``credited``   a credit note through the same service
``settled``    a settlement flat file of the invoices (``settlement_for``), imported by the settlement
               service (``caturactl.accounting.settlement.import_file``): invoices paid

Moves of state go through ``caturactl.core.lifecycle`` (the one writer), so every move has its
event. Timestamps come from the app's clock (``caturactl.core.clock``): install a fixed one
(``fixed_clock``) for the same rows on every run. Money is Decimal to the cent.
"""

from __future__ import annotations

import tempfile
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from caturactl.accounting.models import Settlement
from caturactl.billing.models import Invoice
from caturactl.catalogue.models import Product
from caturactl.config import Config
from caturactl.core import clock
from caturactl.core.lifecycle import DeliveryState, OrderState, transition, transition_delivery
from caturactl.customers.models import Customer, CustomerAddress, CustomerEmail
from caturactl.fulfilment.models import DeliveryLine, DeliveryNote, ShippedParcel, Stock
from caturactl.orders.models import Order, OrderLine

CENT = Decimal("0.01")
T = datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)  # the stand-in's day, a Tuesday
WHY = "test factory"

MARKETPLACES = {"DE": ("A1PA6795UKMFR9", "Amazon.de"), "FR": ("A13V1IB3VIYZZH", "Amazon.fr"),
                "IT": ("APJ6JRA9NG5V4", "Amazon.it"), "ES": ("A1RKKUPIHCS9HS", "Amazon.es"),
                "AT": ("A1PA6795UKMFR9", "Amazon.de")}
ADDRESSES = {  # (street, postal code, city) per destination
    "DE": ("Hauptstr. 5", "10115", "Berlin"), "AT": ("Ringstraße 12", "1010", "Wien"),
    "FR": ("12 Rue de Rivoli", "75001", "Paris"), "IT": ("Via Roma 3", "00184", "Roma"),
    "ES": ("Calle Mayor 7", "28013", "Madrid")}
NAMES = ["Anna Beispiel", "Bernd Muster", "Claire Dupont", "Dario Rossi", "Elena García", "Frank Weber",
         "Greta Schmidt", "Hugo Martin"]
# A carrier the template configures for each location of tests/fulfilment.py: (key, carrier, service).
CARRIERS = {"WH": ("dhl_paket", "DHL", "V01PAK"), "FUL": ("dpd_classic", "DPD", "CLASSIC")}


def money(x) -> Decimal:
    """``x`` (str, int or Decimal) as Decimal to the cent."""
    return Decimal(str(x)).quantize(CENT)


def fixed_clock(at: datetime = T) -> clock.FixedClock:
    """Installs a fixed app clock at ``at`` and returns it (tests/conftest.py puts the system clock
    back after the test)."""
    c = clock.FixedClock(at)
    clock.install(c)
    return c


def company_config(**sections) -> Config:
    """A configuration that can issue invoices: tests/fulfilment.py's company, invoices not sent
    anywhere (``amazon_delivery = "none"``) unless ``sections`` say otherwise (top-level tables)."""
    from tests.fulfilment import COMPANY
    import tomllib
    data = tomllib.loads(COMPANY)
    data["invoices"] = {"amazon_delivery": "none", **sections.pop("invoices", {})}
    data.update(sections)
    return Config.model_validate(data)


# --- catalogue and stock ---------------------------------------------------------------------------


def product(s: Session, sku: str, *, title: str = "", price="19.99", weight_g: int = 500,
            tax_class: str = "standard", **fields) -> Product:
    """The catalogue row of ``sku`` (the existing one when there is one)."""
    p = s.scalar(select(Product).where(Product.sku == sku))
    if p is None:
        p = Product(sku=sku, title=title or f"Artikel {sku}", listing_id=f"B0{zlib.crc32(sku.encode()) % 10**8:08d}",
                    weight_g=weight_g, length_mm=300, width_mm=200, height_mm=100, price=money(price),
                    tax_class=tax_class, **fields)
        s.add(p)
        s.flush()
    return p


def stock(s: Session, location: str, sku: str, on_hand: int, reserved: int = 0) -> Stock:
    """Sets what ``location`` holds of ``sku``."""
    row = s.scalar(select(Stock).where(Stock.location == location, Stock.sku == sku))
    if row is None:
        row = Stock(location=location, sku=sku)
        s.add(row)
    row.on_hand, row.reserved = on_hand, reserved
    s.flush()
    return row


# --- orders --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """An order line as the channel sells it: ``quantity`` × ``price`` (gross, each), plus the
    line's shipping, less a discount on the goods. Amounts are gross, as Amazon gives them."""
    sku: str = "TOOL-1"
    quantity: int = 1
    price: Decimal | str = "24.99"
    shipping: Decimal | str = "0.00"
    discount: Decimal | str = "0.00"
    promotion: str = ""
    title: str = ""

    @property
    def total(self) -> Decimal:
        return money(self.price) * self.quantity + money(self.shipping) - money(self.discount)


def _lines(lines) -> list[Line]:
    out = []
    for x in lines:
        if isinstance(x, Line):
            out.append(x)
        elif isinstance(x, str):
            out.append(Line(sku=x))
        elif isinstance(x, Mapping):
            out.append(Line(**x))
        else:
            out.append(Line(*x))
    return out


def customer(s: Session, name: str, *, email: str = "", country: str = "DE", company: str = "") -> Customer:
    """A customer with one e-mail address and one postal address."""
    street, postal, city = ADDRESSES.get(country, ADDRESSES["DE"])
    c = Customer(name=name, company=company)
    s.add(c)
    if email:
        c.emails.append(CustomerEmail(email=email.lower()))
    c.addresses.append(CustomerAddress(name=name, company=company, line1=street, postal_code=postal, city=city,
                                       country=country, postal_key=postal.replace(" ", "").upper(),
                                       address_key=f"{country}|{postal}|{street}".lower()))
    s.flush()
    return c


def _new_order(s: Session, lines, *, country: str, fulfilled_by: str, shipping, external_id: str | None,
               buyer: str | None, with_customer: bool, created_at: datetime | None, **fields) -> Order:
    n = (s.scalar(select(func.count()).select_from(Order)) or 0) + 1
    now = clock.now()
    created = created_at or now - timedelta(days=1) + timedelta(minutes=10 * n)  # later orders are younger
    external_id = external_id or f"302-{n:07d}-{n:07d}"
    name = buyer or NAMES[(n - 1) % len(NAMES)]
    email = fields.pop("buyer_email", f"buyer{n:04d}@marketplace.amazon.de")
    street, postal, city = ADDRESSES.get(country, ADDRESSES["DE"])
    marketplace_id, marketplace_name = MARKETPLACES.get(country, MARKETPLACES["DE"])
    parsed = _lines(lines)
    if shipping is not None and parsed:  # the order's shipping, charged on its first line
        first = parsed[0]
        parsed[0] = Line(first.sku, first.quantity, first.price, money(first.shipping) + money(shipping),
                         first.discount, first.promotion, first.title)
    values = dict(channel="amazon", external_id=external_id, marketplace_id=marketplace_id,
                  marketplace_name=marketplace_name, remote_status="Unshipped", fulfilled_by=fulfilled_by,
                  service_level="Standard", created_at=created, remote_updated_at=created, imported_at=now,
                  ship_by=created + timedelta(days=2), deliver_by=created + timedelta(days=5),
                  buyer_email=email, buyer_name=name, ship_name=name, ship_line1=street, ship_postal_code=postal,
                  ship_city=city, ship_country=country, currency="EUR",
                  total_amount=sum((ln.total for ln in parsed), Decimal(0)).quantize(CENT), raw={})
    values.update(fields)
    order = Order(**values)
    if with_customer:
        order.customer = customer(s, name, email=email, country=country)
        order.match_reason = "new customer (test factory)"
    for pos, ln in enumerate(parsed, 1):
        p = product(s, ln.sku, price=ln.price)
        order.lines.append(OrderLine(
            position=pos, external_id=f"{n:07d}{pos:03d}", sku=ln.sku, listing_id=p.listing_id, title=ln.title or p.title,
            quantity=ln.quantity, quantity_shipped=0, unit_price=money(ln.price), total_amount=ln.total,
            tax_amount=None, shipping_amount=money(ln.shipping), gift_wrap_amount=Decimal("0.00"),
            cod_fee_amount=Decimal("0.00"), item_discount=money(ln.discount), shipping_discount=Decimal("0.00"),
            promotion_ids=ln.promotion))
    s.add(order)
    transition(s, order, OrderState.IMPORTED, WHY)
    return order


def released(s: Session, lines: Iterable = (Line(),), *, country: str = "DE", shipping="3.99",
             external_id: str | None = None, buyer: str | None = None, customer: bool = True,
             created_at: datetime | None = None, **fields) -> Order:
    """A released order of ``lines`` (``Line``s, or (sku, quantity, price) tuples, or SKUs) to
    ``country``: Amazon.de/.fr/... by the country, a customer with the buyer's e-mail and address,
    ``shipping`` (gross) charged on the first line; ``fields`` set any Order column. Its external
    id is ``302-000000N-000000N`` by the count of orders, so ids are the same on every run."""
    order = _new_order(s, lines, country=country, fulfilled_by="MERCHANT", shipping=shipping,
                       external_id=external_id, buyer=buyer, with_customer=customer, created_at=created_at,
                       **fields)
    transition(s, order, OrderState.RELEASED, WHY)
    s.flush()
    return order


def held(s: Session, lines: Iterable = (Line(),), *, reason: str = "the address has no house number",
         code: str = "address", **kw) -> Order:
    """An order on hold for a person, with its open ticket saying ``reason``."""
    from caturactl.orders.triage import Hold, hold
    order = _new_order(s, lines, country=kw.pop("country", "DE"), fulfilled_by="MERCHANT",
                       shipping=kw.pop("shipping", "3.99"), external_id=kw.pop("external_id", None),
                       buyer=kw.pop("buyer", None), with_customer=kw.pop("customer", True),
                       created_at=kw.pop("created_at", None), **kw)
    hold(s, order, [Hold(code, reason)])
    s.flush()
    return order


def routed(s: Session, order: Order | None = None, *, location: str = "WH",
           carrier: tuple[str, str, str] | None = None, exported: bool = True, **order_kw) -> DeliveryNote:
    """``order`` (a new released one from ``order_kw`` when None) on one delivery note at
    ``location`` with a carrier of ``CARRIERS``, its pieces reserved from that location's stock
    (stock is added where it would not suffice); exported (file handed over, deadline running)
    unless ``exported`` is False. Returns the note."""
    from caturactl.catalogue import stock as stock_service
    order = order or released(s, **order_kw)
    key, carrier_name, service = carrier or CARRIERS.get(location, CARRIERS["WH"])
    now = clock.now()
    for ln in order.lines:
        row = s.scalar(select(Stock).where(Stock.location == location, Stock.sku == ln.sku))
        if row is None or row.on_hand - row.reserved < ln.quantity:
            stock(s, location, ln.sku, (row.on_hand if row else 0) + ln.quantity + 10, row.reserved if row else 0)
        assert stock_service.reserve(s, location, ln.sku, ln.quantity)
    note = DeliveryNote(order=order, location=location, carrier_key=key, carrier=carrier_name, service=service,
                        ship_date=now.date(), delivery_date=(now + timedelta(days=2)).date(),
                        planned_parcels=[[sum(ln.quantity for ln in order.lines) * 500, 30, 20, 10]],
                        price=Decimal("4.99"), choice={"chosen": key, "ranking": [key], "rejected": []},
                        created_at=now)
    for ln in order.lines:
        note.lines.append(DeliveryLine(order_line=ln, sku=ln.sku, quantity=ln.quantity, shipped=0))
    s.add(note)
    transition_delivery(s, note, DeliveryState.CREATED, f"routed to {location}; {carrier_name} {service}")
    transition(s, order, OrderState.ROUTED, f"1 delivery note(s): {location} {carrier_name}")
    s.flush()
    if exported:
        note.file_name = f"{note.number}.csv"
        note.exported_at, note.deadline_at = now, now + timedelta(hours=8)
        transition_delivery(s, note, DeliveryState.EXPORTED, f"{note.file_name} queued ({WHY})")
        s.flush()
    for ln in order.lines:  # the conditional UPDATEs above went past the session
        s.expire(ln)
    s.expire_all()
    return note


def shipped(s: Session, order: Order | None = None, *, tracking: str | None = None,
            shipped_at: datetime | None = None, location: str = "WH", **order_kw) -> Order:
    """``order`` (a new one from ``order_kw`` when None; routed first when it is not yet) shipped:
    each open delivery note's pieces in one parcel with ``tracking`` (by the note's number when
    None), left at ``shipped_at`` (now), taken out of stock, confirmed at the channel; note and
    order shipped. Returns the order."""
    from caturactl.catalogue import stock as stock_service
    order = order or released(s, **order_kw)
    if order.state == OrderState.RELEASED.value:
        routed(s, order, location=location)
    now = clock.now()
    at = shipped_at or now
    notes = s.scalars(select(DeliveryNote).where(DeliveryNote.order_id == order.id).order_by(DeliveryNote.id)).all()
    done = 0
    for note in notes:
        if note.state in (DeliveryState.SHIPPED.value, DeliveryState.CANCELLED.value):
            continue
        if note.state == DeliveryState.CREATED.value:
            note.file_name, note.exported_at = f"{note.number}.csv", now
            transition_delivery(s, note, DeliveryState.EXPORTED, f"{note.file_name} queued ({WHY})")
        pieces = [(ln, ln.quantity - ln.shipped) for ln in note.lines if ln.quantity > ln.shipped]
        number = tracking if tracking and not done else f"00340434{note.id:010d}"
        done += 1
        parcel = ShippedParcel(delivery=note, package_reference=done, carrier=note.carrier, service=note.service,
                               tracking_number=number, weight_g=500 * sum(q for _, q in pieces),
                               items=[[ln.sku, q, ln.order_line.external_id] for ln, q in pieces],
                               shipped_at=at, source=f"factory:{note.number}", created_at=now,
                               channel_confirmed_at=now)
        s.add(parcel)
        for ln, q in pieces:
            ln.shipped += q
            stock_service.release(s, note.location, ln.sku, q, shipped=True)
        note.confirmed_at = at
        transition_delivery(s, note, DeliveryState.CONFIRMED, f"1 parcel(s) {note.carrier} {number} shipped")
        note.shipped_at = now
        transition_delivery(s, note, DeliveryState.SHIPPED, "Amazon confirmed every parcel")
    transition(s, order, OrderState.SHIPPED, "every delivery note reported shipped")
    s.flush()
    s.expire_all()  # stock changed by conditional UPDATEs
    return order


def cancelled(s: Session, order: Order | None = None, **order_kw) -> Order:
    """``order`` (a new released one from ``order_kw`` when None) cancelled before it was routed."""
    order = order or released(s, **order_kw)
    transition(s, order, OrderState.CANCELLED, "cancelled by the buyer")
    s.flush()
    return order


def shipped_by_channel(s: Session, lines: Iterable = (Line(),), **kw) -> Order:
    """An order the channel fulfilled itself (Amazon FBA), reported shipped: no delivery note
    of ours; it is invoiced from its shipped quantities."""
    order = _new_order(s, lines, country=kw.pop("country", "DE"), fulfilled_by="AMAZON",
                       shipping=kw.pop("shipping", None), external_id=kw.pop("external_id", None),
                       buyer=kw.pop("buyer", None), with_customer=kw.pop("customer", True),
                       created_at=kw.pop("created_at", None), remote_status="Shipped", **kw)
    for ln in order.lines:
        ln.quantity_shipped = ln.quantity
    transition(s, order, OrderState.SHIPPED, "fulfilled by Amazon")
    s.flush()
    return order


# --- invoices, credit notes, settlements -------------------------------------------------------------

_RENDERER = None


def renderer():
    """The product's invoice renderer (PDF/A-3 with the EN 16931 XML), loaded once per process."""
    global _RENDERER
    if _RENDERER is None:
        from connectors.einvoice.renderer import Renderer
        _RENDERER = Renderer()
    return _RENDERER


def invoiced(s: Session, cfg: Config, *orders: Order, **order_kw) -> list[Invoice]:
    """``orders`` (one new shipped order from ``order_kw`` when none is given; shipped first when
    released or routed) invoiced by the invoicing service, ``caturactl.billing.invoicing.Invoicer``,
    as ``invoices create`` does it: built from the shipped lines, numbered, rendered, stored, its
    delivery queued as ``cfg`` says (``company_config``: none). Only these orders are invoiced.
    Returns their invoices, in order."""
    from caturactl.billing import invoicing
    orders = orders or (shipped(s, **order_kw),)
    for o in orders:
        if o.state in (OrderState.RELEASED.value, OrderState.ROUTED.value):
            shipped(s, o)
    wanted = {o.id for o in orders}

    class Only(invoicing.Invoicer):
        def due(self, limit=None):
            return [x for x in super().due(limit) if x[0].id in wanted]

    r = Only(s, cfg, renderer()).run()
    assert not r.failed and r.created, f"not invoiced: {r.failed or 'nothing due'}"
    invoices = s.scalars(select(Invoice).where(Invoice.number.in_(r.created))).all()
    by_order = {i.order_id: i for i in invoices}
    return [by_order[o.id] for o in orders]


def credited(s: Session, cfg: Config, invoice: Invoice, lines: Mapping[int, int] | None = None,
             reason: str = "Retoure") -> Invoice:
    """A credit note for ``invoice`` through the invoicing service: ``lines`` maps positions to
    pieces (None: all of it)."""
    from caturactl.billing import invoicing
    picked = None if lines is None else {pos: (None if q is None else Decimal(q)) for pos, q in lines.items()}
    return invoicing.Invoicer(s, cfg, renderer()).credit(invoice.number, picked, reason)


def sale_lines(order_id: str, gross, *, fee=None, rate=Decimal(19)) -> list[tuple[str, str, str, str, str]]:
    """A sale in a settlement flat file: ``gross`` as principal and tax at ``rate``, and Amazon's
    commission ``fee`` (negative; 15 % of the gross when None). Amounts in the DE file's form."""
    gross = money(gross)
    tax = (gross * rate / (100 + rate)).quantize(CENT)
    fee = money(fee) if fee is not None else -(gross * Decimal("0.15")).quantize(CENT)
    return [("Order", order_id, "ItemPrice", "Principal", _de(gross - tax)),
            ("Order", order_id, "ItemPrice", "Tax", _de(tax)),
            ("Order", order_id, "ItemFees", "Commission", _de(fee))]


def refund_lines(order_id: str, gross) -> list[tuple[str, str, str, str, str]]:
    """A refund of ``gross`` (positive: what the buyer gets back) in a settlement flat file."""
    return [("Refund", order_id, "ItemPrice", "Principal", _de(-money(gross)))]


def _de(x: Decimal) -> str:
    return f"{x:.2f}".replace(".", ",")


def _utc(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%d.%m.%Y %H:%M:%S UTC")


def settlement_file(path: Path, lines: Sequence[tuple[str, str, str, str, str]], *, settlement_id: str = "770001",
                    start: datetime, end: datetime, deposit: datetime, posted: datetime,
                    crlf: bool = False) -> Path:
    """An Amazon settlement flat file (V2, DE form) of (transaction-type, order-id, amount-type,
    amount-description, amount) lines; the header's total is their sum."""
    from connectors.amazon.settlement import CAPTIONS

    def row(**cells: str) -> str:
        return "\t".join(cells.get(c, "") for c in CAPTIONS)

    total = sum((Decimal(amount.replace(",", ".")) for *_, amount in lines), Decimal(0))
    out = ["\t".join(CAPTIONS), row(**{
        "settlement-id": settlement_id, "settlement-start-date": _utc(start), "settlement-end-date": _utc(end),
        "deposit-date": _utc(deposit), "total-amount": _de(total), "currency": "EUR"})]
    for transaction_type, order_id, amount_type, description, amount in lines:
        out.append(row(**{"settlement-id": settlement_id, "transaction-type": transaction_type, "order-id": order_id,
                          "amount-type": amount_type, "amount-description": description, "amount": amount,
                          "posted-date": posted.astimezone(timezone.utc).strftime("%d.%m.%Y"),
                          "posted-date-time": _utc(posted)}))
    end_of_line = "\r\n" if crlf else "\n"
    path.write_bytes((end_of_line.join(out) + end_of_line).encode("utf-8"))
    return path


def settlement_for(invoices: Iterable[Invoice] = (), *, folder: Path | None = None, settlement_id: str = "770001",
                   differ: Mapping[str, Decimal | str] | None = None,
                   refunds: Mapping[str, Decimal | str] | None = None, extra: Sequence[tuple] = (),
                   fees: Sequence[tuple] = (("other-transaction", "", "other-transaction", "Storage Fee", "-2,50"),),
                   deposit: datetime | None = None) -> Path:
    """Amazon's settlement flat file of ``invoices``: each invoice's order settled at its gross
    (less Amazon's commission), except an order in ``differ`` (order id -> what Amazon settled
    instead; an order not invoiced may be named too); ``refunds`` (order id -> gross given back),
    ``extra`` lines (e.g. ``sale_lines`` of an order we do not know) and ``fees`` lines tied to
    no order. Deposited at ``deposit`` (now), over the two weeks before it; written to ``folder``
    (a temporary one when None). Returns the file's path."""
    differ, refunds = dict(differ or {}), dict(refunds or {})
    at = deposit or clock.now()
    per_order: dict[str, Decimal] = {}
    for inv in invoices:
        oid = inv.order.external_id
        per_order[oid] = per_order.get(oid, Decimal(0)) + inv.gross_total
    lines: list[tuple] = []
    for oid, gross in per_order.items():
        lines += sale_lines(oid, differ.pop(oid, gross))
    for oid, gross in differ.items():  # orders of ours without an invoice
        lines += sale_lines(oid, gross)
    for oid, gross in refunds.items():
        lines += refund_lines(oid, gross)
    lines += list(extra) + list(fees)
    folder = folder or Path(tempfile.mkdtemp(prefix="settlement-"))
    return settlement_file(folder / f"settlement-{settlement_id}.tsv", lines, settlement_id=settlement_id,
                           start=at - timedelta(days=14), end=at - timedelta(hours=2), deposit=at,
                           posted=at - timedelta(hours=3))


def settled(s: Session, invoices: Iterable[Invoice] = (), **kw) -> Settlement:
    """``settlement_for(invoices, **kw)`` imported by the settlement service
    (``caturactl.accounting.settlement.import_file``): the invoices it settled exactly are paid
    on the deposit date, every other amount is a difference with its reason. Returns the
    stored Settlement."""
    from caturactl.accounting.settlement import import_file
    path = settlement_for(invoices, **kw)
    r = import_file(s, path)
    assert not r.duplicate, f"settlement {r.settlement_id} is stored already"
    s.flush()
    return s.scalars(select(Settlement).where(Settlement.settlement_id == r.settlement_id)).one()


# --- payments ------------------------------------------------------------------------------------


def payment(s: Session, order: Order | None = None, *, amount=None, method: str = "prepayment",
            reference: str | None = None, paid=None, due_in_days: int = 14, **order_kw):
    """An expected payment of ``amount`` (the order's total when None) for ``order`` (a new released
    one from ``order_kw`` when None), through the payments service (``caturactl.payments.service``);
    the buyer quotes ``reference`` (the order number when None). ``paid``: an amount already
    received (partly paid or paid, as a bank credit would have made it). Returns the Payment."""
    from caturactl.payments import service
    order = order or released(s, **order_kw)
    p = service.expect(s, order, method=method, amount=None if amount is None else money(amount),
                       reference=reference, due_at=clock.now() + timedelta(days=due_in_days))
    if paid is not None:
        service.apply(s, p, money(paid), f"{money(paid)} received ({WHY})")
    s.flush()
    return p
