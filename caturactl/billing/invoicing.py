"""Invoicing: shipped deliveries become invoices with gap-free numbers; corrections become credit
notes; each invoice goes to the order's channel (an upload) or by e-mail through the outbox.

An invoice is built as plain values (``caturactl.ports.InvoiceDocument``) by ``build``, rendered
by the composition root's renderer (PDF/A-3 with the EN 16931 XML embedded) and stored as issued.
Every document of a run is built and checked before the first number is taken: missing company
data, or a tax table that fits no order, stops the run with one line and nothing written; an
order that cannot be invoiced (no price on a line, no rate for its destination) gets a ticket
and the others are invoiced. The number is taken in the transaction that stores the invoice (``next_number``): a
rolled-back transaction gives it back, so the series has no gaps, also with several runners on
one PostgreSQL (the counter row is locked until commit).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Callable, Mapping, Sequence

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from caturactl import channels
from caturactl.core import tax
from caturactl.config import Config
from caturactl.core import clock
from caturactl.core.errors import ConfigError, InputError, NotFoundError, StateError
from caturactl.billing import terms
from caturactl.billing.models import Invoice, InvoiceCounter
from caturactl.fulfilment.models import DeliveryNote
from caturactl.catalogue.models import Product
from caturactl.orders.models import Order
from caturactl.payments.models import OPEN as PAYMENT_OPEN
from caturactl.payments.models import PAYMENT, Payment, PaymentStatus
from caturactl.orders.tickets import Ticket
from caturactl.core.address import street_parts
from caturactl.core.events import EventKind, record
from caturactl.billing.models import CREDIT_NOTE, INVOICE
from caturactl.core.lifecycle import DeliveryState, OrderState, move
from caturactl.orders.tickets import OPEN
from caturactl.outbox.service import enqueue
from caturactl.ports import InvoiceDocument, InvoiceItem, InvoiceParty, InvoiceRenderer, TaxBreakdown
from caturactl.orders.triage import Hold, open_ticket

UPLOAD = "invoice_upload"
EMAIL = "email"
GERMAN_SPEAKING = frozenset({"DE", "AT", "CH", "LI"})
INVOICEABLE = (DeliveryState.CONFIRMED.value, DeliveryState.SHIPPED.value)
UNIT = Decimal("0.0001")
LABELS = {
    "de": {"shipping": "Versandkosten", "gift_wrap": "Geschenkverpackung", "cod_fee": "Nachnahmegebühr",
           "refund": "Der Betrag wird über {channel} erstattet.",
           "oss": "Lieferung nach {country}: Umsatzsteuer des Bestimmungslandes (One-Stop-Shop).",
           "subject": "Ihre Rechnung {number}", "credit_subject": "Rechnungskorrektur {number}"},
    "en": {"shipping": "Shipping", "gift_wrap": "Gift wrap", "cod_fee": "Cash on delivery fee",
           "refund": "Refunded through {channel}.",
           "oss": "Delivery to {country}: VAT of the country of destination (One-Stop-Shop).",
           "subject": "Your invoice {number}", "credit_subject": "Credit note {number}"},
}


# --- numbers --------------------------------------------------------------------------------------


def next_number(session: Session, series: str, year: int) -> int:
    """The next number of ``series`` in ``year``, taken in the caller's transaction. The UPDATE
    locks the counter row until commit (PostgreSQL; SQLite has one writer anyway), so two runners
    never get the same number and a rollback leaves no gap."""
    bump = (update(InvoiceCounter).where(InvoiceCounter.series == series, InvoiceCounter.year == year)
            .values(last=InvoiceCounter.last + 1).returning(InvoiceCounter.last))
    n = session.execute(bump, execution_options={"synchronize_session": False}).scalar()
    if n is None:
        try:
            with session.begin_nested():
                session.execute(insert(InvoiceCounter).values(series=series, year=year, last=0))
        except IntegrityError:
            pass  # another runner created the row first; its lock now orders us after it
        n = session.execute(bump, execution_options={"synchronize_session": False}).scalar()
    return int(n)


def format_number(prefix: str, year: int, seq: int, width: int) -> str:
    return f"{prefix}{year}-{seq:0{width}d}"


# --- documents as data ------------------------------------------------------------------------------


def to_json(doc: InvoiceDocument) -> dict:
    """The document as JSON-safe data (Decimals and dates as strings), as stored on the invoice."""
    def conv(v: Any) -> Any:
        if isinstance(v, Decimal):
            return str(v)
        if isinstance(v, date):
            return v.isoformat()
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        return v
    return conv(dataclasses.asdict(doc))


def from_json(data: dict) -> InvoiceDocument:
    """The stored document back as an InvoiceDocument (for credit notes and re-delivery)."""
    def party(d: dict | None) -> InvoiceParty | None:
        return None if d is None else InvoiceParty(**d)

    def dec(x: str) -> Decimal:
        return Decimal(x)
    d = dict(data)
    d["seller"], d["buyer"], d["ship_to"] = party(d["seller"]), party(d["buyer"]), party(d.get("ship_to"))
    d["items"] = tuple(InvoiceItem(**{**i, "quantity": dec(i["quantity"]), "unit_net": dec(i["unit_net"]),
                                      "net": dec(i["net"]), "tax_rate": dec(i["tax_rate"]),
                                      "gross": dec(i["gross"]) if i.get("gross") is not None else None,
                                      "allowance": dec(i.get("allowance") or "0"),
                                      "allowance_gross": dec(i.get("allowance_gross") or "0")})
                       for i in d["items"])
    d["taxes"] = tuple(TaxBreakdown(**{**t, "rate": dec(t["rate"]), "net": dec(t["net"]), "tax": dec(t["tax"])})
                       for t in d["taxes"])
    for k in ("net_total", "tax_total", "gross_total", "prepaid", "due"):
        d[k] = dec(d[k])
    for k in ("issue_date", "supply_date", "order_date"):
        d[k] = date.fromisoformat(d[k])
    d["preceding_date"] = date.fromisoformat(d["preceding_date"]) if d.get("preceding_date") else None
    d["due_date"] = date.fromisoformat(d["due_date"]) if d.get("due_date") else None
    if "paid_through_channel" not in d:  # stored before the flag: an invoice the channel had paid
        d["paid_through_channel"] = d["type_code"] == 380 and d["prepaid"] > 0
    for k in ("delivery_ids", "notes", "footer"):
        d[k] = tuple(d.get(k) or ())
    return InvoiceDocument(**d)


# --- building -----------------------------------------------------------------------------------------


def check_company(cfg: Config) -> None:
    """§ 14 (4) UStG: the seller's full name and address and its VAT id or tax number are on every
    invoice; ConfigError naming what is missing."""
    c = cfg.company
    missing = [k for k in ("name", "street", "postal_code", "city") if not getattr(c, k).strip()]
    if not (c.vat_id.strip() or c.tax_number.strip()):
        missing.append("vat_id or tax_number")
    if missing:
        raise ConfigError(f"invoices need the company's {', '.join(missing)} (§ 14 Abs. 4 UStG)",
                          where="caturactl.toml: company")
    if not c.vat_id.strip():
        # § 14 UStG would accept the tax number alone, but the embedded EN 16931 e-invoice must
        # identify the seller (BR-CO-26) and ours has no other identifier than the VAT id.
        raise ConfigError("the e-invoice needs the company's VAT id (EN 16931 BR-CO-26)",
                          where="caturactl.toml: company.vat_id")


def seller(cfg: Config) -> InvoiceParty:
    c = cfg.company
    return InvoiceParty(name=c.name, street=c.street, postal_code=c.postal_code, city=c.city, country=c.country,
                        vat_id=c.vat_id, tax_number=c.tax_number, email=c.email, phone=c.phone, contact=c.contact)


def footer(cfg: Config) -> tuple[str, ...]:
    """The company's legal data for the invoice footer, each once (§ 35a GmbHG, § 80 AktG, § 37a
    and § 125a HGB): seat, register court and number, managing directors. Name, address, VAT id,
    bank and contact are printed from the seller party and the bank fields, not repeated here."""
    return cfg.company.legal_lines()


def buyer_of(order: Order) -> InvoiceParty:
    a = order.address
    street, number, others = street_parts(a)
    name = a.name or order.buyer_name or a.company
    return InvoiceParty(name=name, company=a.company if a.company != name else "",
                        street=" ".join(x for x in (street, number) if x), extra_line=", ".join(others),
                        postal_code=a.postal_code, city=a.city, country=a.country, vat_id=order.buyer_tax_id,
                        email=order.buyer_email)


def language_for(cfg: Config, country: str) -> str:
    """The language of what a buyer in ``country`` gets, invoices and notices alike: German in
    GERMAN_SPEAKING countries, English elsewhere, unless ``[invoices] language`` fixes one."""
    if cfg.invoices.language != "auto":
        return cfg.invoices.language
    return "de" if country in GERMAN_SPEAKING else "en"


def supply_date(notes: Sequence[DeliveryNote], cfg: Config) -> date:
    """The date of supply: the day the (last) parcel left, in the merchant's time zone."""
    times = [p.shipped_at for n in notes for p in n.parcels] or [n.confirmed_at or n.created_at for n in notes]
    return max(times).astimezone(cfg.tz).date()


@dataclass
class _Row:
    """One invoice line before the tax split: what the buyer paid for it (gross, after any
    discount) and the discount taken off it (gross)."""
    sku: str
    description: str
    quantity: Decimal
    paid: Decimal
    discount: Decimal
    kind: str  # the goods' tax class, or the rate (percent) an ancillary charge takes over
    reason: str = ""


def _part(amount: Decimal, before: int, now: int, of: int) -> Decimal:
    """The share of a line's ``amount`` for pieces ``before+1 .. before+now`` of ``of``: the
    difference of two rounded cumulative shares, so the invoices of a line split over deliveries
    add up to the line exactly."""
    if of <= 0:
        return Decimal(0)
    return tax.cents(amount * (before + now) / of) - tax.cents(amount * before / of)


def line_charges(ol) -> tuple[Decimal, Decimal, dict[str, Decimal]]:
    """(goods gross before discount, goods discount, ancillary {charge: (gross, discount)}) of an
    order line from what the channel said the buyer paid. Lines imported before the charges were
    kept (no ``shipping_amount``) fall back to the unit price, and the rest of the line's total
    counts as shipping, as invoices were built then."""
    zero = Decimal(0)
    if ol.total_amount is not None and ol.shipping_amount is not None:
        shipping, gift, cod = ol.shipping_amount, ol.gift_wrap_amount or zero, ol.cod_fee_amount or zero
        item_off, ship_off = ol.item_discount or zero, ol.shipping_discount or zero
        goods = ol.total_amount - shipping - gift - cod + item_off + ship_off
        return goods, item_off, {"shipping": (shipping, ship_off), "gift_wrap": (gift, zero), "cod_fee": (cod, zero)}
    unit = ol.unit_price if ol.unit_price is not None else (
        ol.total_amount / ol.quantity if ol.total_amount is not None else None)
    if unit is None:
        raise InputError(f"no price for line {ol.position} ({ol.sku})")
    goods = tax.cents(unit * ol.quantity)
    rest = ol.total_amount - goods if ol.total_amount is not None else zero
    return goods, zero, {"shipping": (max(rest, zero), zero)}


def build(order: Order, notes: Sequence[DeliveryNote], cfg: Config, products: Mapping[str, Product], *,
          issue_date: date, number: str = "", with_shipping: bool = True,
          invoiced_before: Mapping[int, int] | None = None, settled: terms.Settled | None = None) -> InvoiceDocument:
    """The invoice for the shipped pieces of ``notes`` (of one order), or, without notes, for the
    pieces the channel shipped itself (FBA). Every line says what the buyer paid for it: goods
    after their discount (shown as a line allowance), and on the order's first invoice the
    ancillary charges (shipping, gift wrap, COD fee), each at the rate of the goods and split
    over mixed rates (caturactl/core/tax.py). ``invoiced_before``: pieces of each order line (by id)
    already on earlier invoices; ``settled``: what the buyer has paid us already (else the
    channel's payment state says, ``terms.settled_by_channel``). Raises InputError for bad order data (a missing price, a
    negative quantity, a discount above its charge) and ConfigError for a missing tax rate."""
    where = f"order {order.external_id}"
    on = supply_date(notes, cfg) if notes else order.remote_updated_at.astimezone(cfg.tz).date()
    buyer = buyer_of(order)
    t = tax.treatment(cfg.tax.home_country, buyer.country, order.buyer_tax_id, oss=cfg.tax.oss)
    lang = language_for(cfg, buyer.country)
    labels = LABELS[lang]
    before = invoiced_before or {}

    def rate_of(kind: str) -> Decimal:
        return tax.rate(cfg.tax.rates, t.rate_country, kind, on) if t.category == "S" else Decimal(0)

    def kind_of(sku: str) -> str:
        product = products.get(sku)
        return product.tax_class if product else "standard"

    shipped: list[tuple[object, int]] = []  # (order line, pieces now)
    if notes:
        for note in notes:
            for dl in note.lines:
                if dl.shipped < 0 or dl.order_line.quantity <= 0:
                    raise InputError(f"negative or zero quantity on line {dl.order_line.position}",
                                     where=f"{where}: {dl.sku}")
                if dl.shipped:
                    shipped.append((dl.order_line, dl.shipped))
    else:
        for ol in order.lines:
            now = ol.quantity_shipped - before.get(ol.id, 0)
            if ol.quantity <= 0 or now < 0:
                raise InputError(f"negative or zero quantity on line {ol.position}", where=f"{where}: {ol.sku}")
            if now:
                shipped.append((ol, now))
    rows: list[_Row] = []
    money = {}
    for ol in order.lines:
        try:
            money[ol] = line_charges(ol)
        except InputError as exc:
            raise InputError(str(exc), where=where) from None
        goods, off, charges = money[ol]
        if goods < 0 or off < 0 or off > goods or any(g < 0 or d < 0 or d > g for g, d in charges.values()):
            raise InputError(f"line {ol.position} ({ol.sku}): the channel's charges do not add up "
                             f"(goods {goods}, discount {off})", where=where)
    promo = {"de": "Rabatt", "en": "Discount"}[lang]
    for ol, now in shipped:
        goods, off, _ = money[ol]
        prior = before.get(ol.id, 0)
        paid = _part(goods - off, prior, now, ol.quantity)
        discount = max(_part(goods, prior, now, ol.quantity) - paid, Decimal(0))
        product = products.get(ol.sku)
        reason = f"{promo} {ol.promotion_ids.replace(',', ', ')}".strip() if discount else ""
        rows.append(_Row(ol.sku, ol.title or (product.title if product else ol.sku), Decimal(now), paid, discount,
                         kind_of(ol.sku), reason))
        before = {**before, ol.id: prior + now}
    if not rows:  # shipping alone is no supply: an invoice needs goods that left
        raise InputError("nothing shipped to invoice", where=where)
    if with_shipping:
        rows += _ancillary_rows(order, money, labels, promo, rate_of, kind_of)
    # Group by tax rate and split the gross amounts with the one rounding rule (caturactl/core/tax.py).
    groups: dict[tuple[str, Decimal], list[int]] = defaultdict(list)
    rates: list[Decimal] = []
    for i, row in enumerate(rows):
        r = Decimal(row.kind) if row.kind[:1].isdigit() else rate_of(row.kind)
        rates.append(r)
        groups[(t.category, r)].append(i)
    nets: dict[int, Decimal] = {}
    taxes = []
    for (category, r), idx in sorted(groups.items(), key=lambda kv: -kv[0][1]):
        line_nets, net, vat = tax.split_gross([rows[i].paid for i in idx], r)
        nets.update(zip(idx, line_nets))
        taxes.append(TaxBreakdown(category, r, net, vat, t.note_de if lang == "de" else t.note_en, t.exemption_code))
    items = []
    for i, row in enumerate(rows):
        allowance = tax.cents(row.discount / (1 + rates[i] / tax.HUNDRED)) if row.discount else Decimal(0)
        items.append(InvoiceItem(position=i + 1, sku=row.sku, description=row.description, quantity=row.quantity,
                                 unit_net=((nets[i] + allowance) / row.quantity).quantize(UNIT), net=nets[i],
                                 tax_category=t.category, tax_rate=rates[i], gross=row.paid, allowance=allowance,
                                 allowance_gross=row.discount, allowance_reason=row.reason))
    net_total = sum((x.net for x in taxes), Decimal(0))
    tax_total = sum((x.tax for x in taxes), Decimal(0))
    gross = net_total + tax_total
    channel = order.marketplace_name or order.channel
    how = terms.decide(collects=channels.get(order.channel).collects_payment, channel=channel,
                       method=order.payment_method,
                       settled=settled or terms.settled_by_channel(order.payment_method, order.payment_state),
                       issue_date=issue_date, due_days=cfg.payments.method(order.payment_method or "invoice").due_days,
                       lang=lang)
    notes_text = [t.note_de if lang == "de" else t.note_en] if t.category != "S" else []
    if t.category == "S" and t.rate_country != cfg.tax.home_country:
        notes_text.append(labels["oss"].format(country=t.rate_country))
    return InvoiceDocument(
        number=number, type_code=380, issue_date=issue_date, supply_date=on, currency=order.currency,
        seller=seller(cfg), buyer=buyer, ship_to=None, items=tuple(items), taxes=tuple(taxes),
        net_total=net_total, tax_total=tax_total, gross_total=gross,
        prepaid=gross if how.paid else Decimal(0), due=Decimal(0) if how.paid else gross,
        order_id=order.external_id, order_date=order.created_at.astimezone(cfg.tz).date(), channel=channel,
        customer_number=order.customer.number if order.customer else "",
        delivery_ids=tuple(n.number for n in notes), notes=tuple(x for x in notes_text if x),
        payment_terms=how.text, due_date=how.due_date, payment_means=how.means,
        seller_iban=cfg.company.iban, seller_bic=cfg.company.bic, seller_bank=cfg.company.bank,
        buyer_reference=order.purchase_order or order.external_id, language=lang, footer=footer(cfg),
        tax_country=t.rate_country, paid_through_channel=how.through_channel)


def _ancillary_rows(order: Order, money: Mapping[int, tuple], labels: Mapping[str, str], promo: str,
                    rate_of: Callable[[str], Decimal], kind_of: Callable[[str], str]) -> list[_Row]:
    """The order's shipping, gift wrap and COD fee as invoice rows, each at the rate of the goods:
    split over the goods' rates in proportion to their net values (tax.split_ancillary); a row
    per charge and rate, its discount shown with it."""
    goods_nets: dict[Decimal, Decimal] = defaultdict(Decimal)
    goods_gross: dict[Decimal, Decimal] = defaultdict(Decimal)
    for ol in order.lines:
        goods, off, _ = money[ol]
        r = rate_of(kind_of(ol.sku))
        goods_nets[r] += (goods - off) / (1 + r / tax.HUNDRED)
        goods_gross[r] += goods
    if not any(goods_nets.values()):  # goods given away: their list prices weigh instead
        goods_nets = goods_gross
    promotions = ", ".join(sorted({p for ol in order.lines for p in ol.promotion_ids.split(",") if p}))
    rows = []
    for charge in ("shipping", "gift_wrap", "cod_fee"):
        gross = sum((money[ol][2].get(charge, (Decimal(0), Decimal(0)))[0] for ol in order.lines), Decimal(0))
        off = sum((money[ol][2].get(charge, (Decimal(0), Decimal(0)))[1] for ol in order.lines), Decimal(0))
        if not gross:
            continue
        paid_parts = tax.split_ancillary(gross - off, dict(goods_nets))
        off_parts = tax.split_ancillary(off, dict(goods_nets))
        mixed = len([r for r in goods_nets if goods_nets[r]]) > 1
        for r in sorted(set(paid_parts) | set(off_parts), reverse=True):
            paid, discount = paid_parts.get(r, Decimal(0)), off_parts.get(r, Decimal(0))
            if not (paid or discount):
                continue
            label = labels[charge] + (f" ({r.normalize():f} %)" if mixed else "")
            rows.append(_Row("", label, Decimal(1), paid, discount, f"{r}",
                             f"{promo} {promotions}".strip() if discount else ""))
    return rows


# --- the run ----------------------------------------------------------------------------------------


@dataclass
class InvoiceRunResult:
    created: list[str] = field(default_factory=list)  # invoice numbers
    planned: int = 0  # documents built (a dry run stops here)
    gross: Decimal = Decimal(0)
    queued: int = 0  # deliveries queued in the outbox
    failed: list[str] = field(default_factory=list)  # "order: why", each with a ticket
    skipped: int = 0  # planned, but another run invoiced them (or holds them) meanwhile
    waiting: int = 0  # orders with an open invoice_failed ticket: a person resolves it first
    dry_run: bool = False

    def as_dict(self) -> dict:
        return {"created": len(self.created), "planned": self.planned, "gross": str(self.gross),
                "queued": self.queued, "skipped": self.skipped, "failed": self.failed, "numbers": self.created,
                "waiting": self.waiting, "dry_run": self.dry_run}


class Invoicer:
    """Creates invoices for shipped deliveries, and credit notes; one instance per run."""

    def __init__(self, session: Session, cfg: Config, renderer: InvoiceRenderer | None, *,
                 today: date | None = None, render_many: Callable | None = None):
        self.s, self.cfg, self.renderer = session, cfg, renderer
        self.today = today or clock.today(cfg.tz)
        self.render_many = render_many

    def due(self, limit: int | None = None) -> list[tuple[Order, list[DeliveryNote]]]:
        """What is ready to invoice: per order (order shipped) or per delivery note (note confirmed),
        and orders the channel fulfilled itself (FBA) once it reports them shipped, with no notes
        (unless the channel issues the invoices itself: ``SalesChannel.issues_invoices``)."""
        out = self._due_notes() + [(order, []) for order in self._due_channel_fulfilled()]
        out.sort(key=lambda x: (x[0].created_at, x[0].id))
        # A channel that issues its orders' invoices itself (Amazon's VCS) gets none from us.
        issuing = {c.name for c in channels.all_channels() if c.issues_invoices(self.cfg)}
        out = [x for x in out if x[0].channel not in issuing]
        return out[:limit] if limit else out

    def _due_channel_fulfilled(self) -> list[Order]:
        """Orders a channel fulfilled itself (FBA) that it reports shipped and we have not
        invoiced. They are "shipped" for us at import already; the channel ships them later, and
        the invoice waits until it says so (its shipped quantities then count)."""
        invoiced = select(Invoice.order_id).where(Invoice.kind == INVOICE, Invoice.order_id == Order.id)
        which = [and_(Order.channel == c.name, Order.fulfilled_by == c.fulfils_itself,
                      Order.remote_status == c.shipped_status)
                 for c in channels.all_channels() if c.fulfils_itself and not c.issues_invoices(self.cfg)]
        if not which:
            return []
        return list(self.s.scalars(
            select(Order).where(or_(*which), Order._state == OrderState.SHIPPED.value, ~invoiced.exists())
            .options(selectinload(Order.lines)).order_by(Order.created_at, Order.id)))

    def _due_notes(self) -> list[tuple[Order, list[DeliveryNote]]]:
        q = (select(DeliveryNote).join(Order, Order.id == DeliveryNote.order_id)
             .where(DeliveryNote.invoice_id.is_(None), DeliveryNote._state.in_(INVOICEABLE))
             .options(selectinload(DeliveryNote.lines), selectinload(DeliveryNote.parcels),
                      selectinload(DeliveryNote.order).selectinload(Order.lines))
             .order_by(Order.created_at, DeliveryNote.id))
        if self.cfg.invoices.per == "order":
            q = q.where(Order._state == OrderState.SHIPPED.value)
        groups: dict[int, tuple[Order, list[DeliveryNote]]] = {}
        for note in self.s.scalars(q):
            key = note.order_id if self.cfg.invoices.per == "order" else note.id
            groups.setdefault(key, (note.order, []))[1].append(note)
        return list(groups.values())

    def run(self, *, dry_run: bool = False, limit: int | None = None, batch: int = 50,
            progress: Callable[[int], None] | None = None) -> InvoiceRunResult:
        """Build every due invoice (one that cannot be built gets a ticket; a configuration that
        stops every one raises ConfigError, nothing written), then number,
        render and store them batch by batch, each batch in one transaction."""
        check_company(self.cfg)
        r = InvoiceRunResult(dry_run=dry_run)
        products = {p.sku: p for p in self.s.scalars(select(Product))}
        due = self.due(limit)
        # An order whose invoice failed waits for a person (its ticket says why); resolving the
        # ticket lets the next run try again, instead of every run failing on it anew.
        ticketed: set[int] = set()
        all_ids = sorted({order.id for order, _ in due})
        for start in range(0, len(all_ids), 500):
            ticketed.update(self.s.scalars(select(Ticket.order_id).where(
                Ticket.order_id.in_(all_ids[start:start + 500]), Ticket.kind == "invoice_failed",
                Ticket.status == OPEN)))
        if ticketed:
            r.waiting = len(ticketed)
            due = [(order, notes) for order, notes in due if order.id not in ticketed]
        # Which due orders have an invoice already (their shipping was invoiced with it); asked
        # for the due orders only, not for every invoice ever written.
        due_ids = sorted({order.id for order, _ in due})
        invoiced_orders: set[int] = set()
        for start in range(0, len(due_ids), 500):
            invoiced_orders.update(self.s.scalars(select(Invoice.order_id).where(
                Invoice.kind == INVOICE, Invoice.order_id.in_(due_ids[start:start + 500]))))
        before = self._invoiced_pieces(sorted(invoiced_orders))
        settled = self._settled(due_ids)
        planned, refused = [], []
        for order, notes in due:
            first = order.id not in invoiced_orders
            try:
                doc = build(order, notes, self.cfg, products, issue_date=self.today, with_shipping=first,
                            invoiced_before=before, settled=settled.get(order.id))
            except (InputError, ConfigError) as exc:  # this order only: a ticket, the others go on
                r.failed.append(f"{order.external_id}: {exc}")
                refused.append((order, exc))
                continue
            invoiced_orders.add(order.id)
            planned.append((order, notes, doc, first))
            r.gross += doc.gross_total
        r.planned = len(planned)
        if refused and not planned and all(isinstance(e, ConfigError) for _, e in refused):
            raise refused[0][1]  # the configuration stops every order: one message, not a ticket each
        if refused and not dry_run:
            for order, exc in refused:
                self._ticket_once(order, str(exc))
            self.s.commit()  # the tickets, whatever happens to the batches
        if dry_run or not planned:
            return r
        if self.renderer is None:
            raise ConfigError("no invoice renderer configured")
        year = self.today.year
        for start in range(0, len(planned), batch):
            wanted = planned[start:start + batch]
            chunk = self._claim(wanted)
            r.skipped += len(wanted) - len(chunk)
            if not chunk:
                self.s.rollback()
                continue
            refused = self._unrenderable(chunk)
            if refused:  # a document the renderer refuses: its order gets a ticket, the batch goes on
                self.s.rollback()
                for order, exc in refused:
                    r.failed.append(f"{order.external_id}: {exc}")
                    self._ticket_once(order, str(exc))
                self.s.commit()
                bad = {order.id for order, _ in refused}
                chunk = self._claim([x for x in wanted if x[0].id not in bad])
                if not chunk:
                    self.s.rollback()
                    continue
            numbered = []
            for order, notes, doc, _ in chunk:
                seq = next_number(self.s, self.cfg.invoices.prefix, year)
                number = format_number(self.cfg.invoices.prefix, year, seq, self.cfg.invoices.width)
                numbered.append((order, notes, dataclasses.replace(doc, number=number), seq))
            try:
                files = self._render([d for _, _, d, _ in numbered])
                for (order, notes, doc, seq), (pdf, xml) in zip(numbered, files):
                    inv = self._store(order, doc, INVOICE, self.cfg.invoices.prefix, year, seq, pdf, xml)
                    for n in notes:
                        n.invoice_id = inv.id
                    self._payment_follows(order, inv, doc)
                    r.queued += self._deliver(inv, order)
                    r.created.append(doc.number)
            except BaseException:
                self.s.rollback()  # the numbers of this batch are given back: no gap
                raise
            self.s.commit()
            if progress:
                progress(len(chunk))
        return r

    def _unrenderable(self, chunk: list) -> list[tuple[Order, InputError]]:
        """The orders of ``chunk`` whose document the renderer refuses (a field § 14 UStG needs
        is empty, a character no font has ...), found before numbers are taken so that no
        number is given to a document that cannot be issued. Checked with a stand-in number of
        the series' length; the checks do not depend on the number."""
        out = []
        probe = format_number(self.cfg.invoices.prefix, self.today.year, 1, self.cfg.invoices.width)
        for order, _, doc, _ in chunk:
            try:
                self.renderer.check(dataclasses.replace(doc, number=probe))
            except InputError as exc:
                # The error names the field of the document ("RE2026-000001.buyer.city"); no number
                # was taken, so it is named by what it would invoice.
                where = exc.where or ""
                field = where[len(probe) + 1:] if where.startswith(probe + ".") else where
                out.append((order, InputError(exc.message, where=f"invoice of order {order.external_id}"
                                              + (f", {field}" if field else ""))))
        return out

    def _settled(self, order_ids: list[int]) -> dict[int, terms.Settled]:
        """Per order of ``order_ids`` that its buyer has paid us in full: when (the last payment
        that came in, in the merchant's time zone) and how."""
        out: dict[int, terms.Settled] = {}
        for start in range(0, len(order_ids), 500):
            q = (select(Payment).where(Payment.order_id.in_(order_ids[start:start + 500]),
                                       Payment.status == PaymentStatus.PAID.value).order_by(Payment.paid_at))
            for p in self.s.scalars(q):
                out[p.order_id] = terms.Settled(p.paid_at.astimezone(self.cfg.tz).date() if p.paid_at else None,
                                                p.method)
        return out

    def _payment_follows(self, order: Order, inv: Invoice, doc: InvoiceDocument) -> None:
        """The order's open payment takes the invoice that asks for a transfer by a date: the
        invoice number becomes a reference to quote (matching finds it), and the date the buyer
        reads on the invoice becomes the payment's due date (``terms.due_at``), with its event.
        An invoice of an order the buyer has already paid us in full is paid when it is issued
        (its ``paid_at`` is the payment's), so receivables do not count it as open."""
        if doc.due_date is None:
            paid = self.s.scalar(select(Payment).where(Payment.order_id == order.id,
                                                       Payment.status == PaymentStatus.PAID.value)
                                 .order_by(Payment.id.desc()).limit(1))
            if paid is not None:
                inv.paid_at = paid.paid_at
                if paid.invoice_id is None:
                    paid.invoice_id = inv.id
            return
        p = self.s.scalar(select(Payment).where(Payment.order_id == order.id, Payment.status.in_(PAYMENT_OPEN))
                          .order_by(Payment.id.desc()).limit(1))
        if p is None:
            return
        before = p.due_at.astimezone(self.cfg.tz).date() if p.due_at else None
        reference = " ".join(dict.fromkeys([*p.reference.split(), inv.number]))
        p.invoice_id = inv.id
        p.reference = reference if len(reference) <= 140 else p.reference  # the invoice link finds it all the same
        p.due_at = terms.due_at(doc.due_date, self.cfg.tz)
        record(self.s, EventKind.INVOICED, f"payment due on {doc.due_date}, as invoice {inv.number} says"
               + (f" (was {before})" if before and before != doc.due_date else ""), order=order,
               customer=order.customer, subject=PAYMENT.name, subject_id=p.id,
               data={"invoice": inv.number, "due": doc.due_date.isoformat()})

    def _invoiced_pieces(self, order_ids: list[int]) -> dict[int, int]:
        """Pieces of each order line (by id) on earlier invoices of ``order_ids``: a line split
        over deliveries is invoiced share by share (see ``_part``)."""
        from caturactl.fulfilment.models import DeliveryLine
        out: dict[int, int] = defaultdict(int)
        for start in range(0, len(order_ids), 500):
            q = (select(DeliveryLine.order_line_id, DeliveryLine.shipped)
                 .join(DeliveryNote, DeliveryNote.id == DeliveryLine.delivery_id)
                 .where(DeliveryNote.order_id.in_(order_ids[start:start + 500]), DeliveryNote.invoice_id.is_not(None)))
            for line_id, pieces in self.s.execute(q):
                out[line_id] += pieces
        return out

    def _ticket_once(self, order: Order, why: str) -> None:
        """One open ``invoice_failed`` ticket per order, naming what stops its invoice."""
        if self.s.scalar(select(Ticket.id).where(Ticket.order_id == order.id, Ticket.kind == "invoice_failed",
                                                 Ticket.status == OPEN)) is None:
            open_ticket(self.s, "invoice_failed", [Hold("invoice_failed", f"order {order.external_id} cannot be "
                                                                          f"invoiced: {why}")], order=order)

    def _claim(self, chunk: list) -> list:
        """The part of ``chunk`` this run may invoice, claimed in the batch's transaction: orders
        no other run holds right now (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite runs one writer
        at a time), whose notes are still uninvoiced and whose shipping is still where the plan
        put it. Read after the lock, so a run that invoiced them meanwhile has committed."""
        ids = sorted({order.id for order, *_ in chunk})
        held = set(self.s.scalars(select(Order.id).where(Order.id.in_(ids)).order_by(Order.id)
                                  .with_for_update(skip_locked=True, key_share=True)))
        note_ids = [n.id for _, notes, *_ in chunk for n in notes]
        open_notes = set(self.s.scalars(select(DeliveryNote.id).where(DeliveryNote.id.in_(note_ids),
                                                                      DeliveryNote.invoice_id.is_(None))))
        invoiced = set(self.s.scalars(select(Invoice.order_id).where(Invoice.kind == INVOICE,
                                                                     Invoice.order_id.in_(sorted(held)))))
        return [(order, notes, doc, first) for order, notes, doc, first in chunk
                if order.id in held and all(n.id in open_notes for n in notes)
                and first == (order.id not in invoiced)]

    def _render(self, docs: list[InvoiceDocument]) -> list[tuple[bytes, bytes]]:
        if self.render_many is not None and len(docs) > 1:
            return self.render_many(docs)
        both = getattr(self.renderer, "both", None)  # builds the XML once instead of twice
        if both is not None:
            return [both(d) for d in docs]
        return [(self.renderer.pdf(d).content, self.renderer.xml(d).content) for d in docs]

    def _store(self, order: Order, doc: InvoiceDocument, kind: str, series: str, year: int, seq: int,
               pdf: bytes, xml: bytes, *, corrects: Invoice | None = None, reason: str = "") -> Invoice:
        inv = Invoice(number=doc.number, kind=kind, series=series, year=year, seq=seq, order=order,
                      customer_id=order.customer_id, corrects=corrects, issue_date=doc.issue_date,
                      supply_date=doc.supply_date, currency=doc.currency, net_total=doc.net_total,
                      tax_total=doc.tax_total, gross_total=doc.gross_total, language=doc.language, reason=reason,
                      document=to_json(doc), pdf=pdf, xml=xml)
        self.s.add(inv)
        self.s.flush()
        what = "credit note" if kind == CREDIT_NOTE else "invoice"
        record(self.s, EventKind.INVOICED, f"{what} {doc.number} issued: {doc.gross_total} {doc.currency} gross"
               + (f", correcting {corrects.number}: {reason}" if corrects else ""), order=order,
               customer=order.customer, data={"invoice": doc.number})
        return inv

    def _deliver(self, inv: Invoice, order: Order) -> int:
        """Queue the invoice's delivery as its channel wants it (handed to the channel, or
        e-mailed); returns 1 when something was queued."""
        channel = channels.get(order.channel)
        mode = channel.invoice_mode(self.cfg)
        if mode == "upload":
            item = channel.invoice_upload(self.s, self.cfg, inv, order,
                                          "CreditNote" if inv.kind == CREDIT_NOTE else "Invoice")
            inv.delivery = f"{channel.name}_upload"
            enqueue(self.s, item.key, item.kind, item.target, item.payload)
            return 1
        if mode == "email" and order.buyer_email:
            inv.delivery = "email"
            lang = inv.language if inv.language in LABELS else "de"
            subject = LABELS[lang]["credit_subject" if inv.kind == CREDIT_NOTE else "subject"].format(number=inv.number)
            enqueue(self.s, f"{EMAIL}:invoice:{inv.number}", EMAIL, "customer", {
                "to": [order.buyer_email], "subject": subject, "body": mail_body(inv, order, self.cfg),
                "invoice_id": inv.id})
            return 1
        return 0

    # --- credit notes ---

    def credit(self, number: str, lines: Mapping[int, Decimal | None] | None, reason: str) -> Invoice:
        """A credit note (Rechnungskorrektur, type 381) for all of invoice ``number`` or the given
        positions and quantities (whole pieces; None: all of the position not yet credited);
        raises NotFoundError, InputError, StateError."""
        check_company(self.cfg)
        if not reason.strip():
            raise InputError("a reason is required (it is printed and kept)", where="--reason")
        original = find(self.s, number)
        if original.kind != INVOICE:
            raise StateError(f"{original.number} is a credit note; correct the invoice itself")
        doc = from_json(original.document)
        done, done_gross = self._credited(original)
        picked = lines or {i.position: None for i in doc.items}
        by_pos = {i.position: i for i in doc.items}
        chosen: list[tuple[InvoiceItem, Decimal]] = []
        for pos, qty in sorted(picked.items()):
            item = by_pos.get(pos)
            if item is None:
                raise InputError(f"{original.number} has no position {pos}", where="--lines")
            left = item.quantity - done.get(pos, Decimal(0))
            if qty is None:
                qty = left
            elif not (qty.is_finite() and qty > 0 and qty == qty.to_integral_value()):
                # Pieces are credited, never a part of one (nor NaN, which compares as nothing).
                raise InputError(f"position {pos}: the quantity must be a whole number of pieces from 1, "
                                 f"not {qty}", where="--lines")
            if qty > left:
                raise InputError(f"position {pos}: {qty} to credit but only {left} not yet credited",
                                 where="--lines")
            if qty > 0:
                chosen.append((item, qty))
        if not chosen:
            raise StateError(f"{original.number} is already credited in full")
        credit_doc = credit_document(doc, chosen, self.today, reason, done, done_gross)
        year = self.today.year
        try:
            seq = next_number(self.s, self.cfg.invoices.credit_prefix, year)
            credit_doc = dataclasses.replace(credit_doc, number=format_number(
                self.cfg.invoices.credit_prefix, year, seq, self.cfg.invoices.width))
            (pdf, xml), = self._render([credit_doc])
            inv = self._store(original.order, credit_doc, CREDIT_NOTE, self.cfg.invoices.credit_prefix, year, seq,
                              pdf, xml, corrects=original, reason=reason.strip())
            self._deliver(inv, original.order)
        except BaseException:
            self.s.rollback()
            raise
        return inv

    def _credited(self, original: Invoice) -> tuple[dict[int, Decimal], dict[int, Decimal]]:
        """Per position of ``original``: the quantity and the gross credited so far."""
        done: dict[int, Decimal] = defaultdict(Decimal)
        gross: dict[int, Decimal] = defaultdict(Decimal)
        for cn in self.s.scalars(select(Invoice).where(Invoice.corrects_id == original.id)):
            for item in cn.document["items"]:
                done[int(item["position"])] += Decimal(item["quantity"])
                gross[int(item["position"])] += Decimal(item.get("gross") or "0")
        return done, gross


def credit_document(doc: InvoiceDocument, chosen: Sequence[tuple[InvoiceItem, Decimal]], today: date,
                    reason: str, done: Mapping[int, Decimal] | None = None,
                    done_gross: Mapping[int, Decimal] | None = None) -> InvoiceDocument:
    """The credit note's values: the chosen positions at the original prices and rates, re-split
    with the one rounding rule; positive amounts, type 381 (invoice.md §4). The last credit of a
    position takes exactly what is left of its gross, so all credit notes add up to the invoice."""
    done, done_gross = done or {}, done_gross or {}
    groups: dict[tuple[str, Decimal], list[tuple[InvoiceItem, Decimal, Decimal]]] = defaultdict(list)
    for item, qty in chosen:
        line_gross = item.gross if item.gross is not None else \
            tax.cents(item.net * (1 + item.tax_rate / tax.HUNDRED))
        if qty == item.quantity - done.get(item.position, Decimal(0)):
            gross = line_gross - done_gross.get(item.position, Decimal(0))
        else:
            gross = tax.cents(line_gross * qty / item.quantity)
        groups[(item.tax_category, item.tax_rate)].append((item, qty, gross))
    items, taxes = [], []
    gross_of = {item.position: g for members in groups.values() for item, _, g in members}
    old_taxes = {(t.category, t.rate): t for t in doc.taxes}
    for (category, rate), members in sorted(groups.items(), key=lambda kv: -kv[0][1]):
        nets, net, vat = tax.split_gross([g for _, _, g in members], rate)
        for (item, qty, _), line_net in zip(members, nets):
            # Positions keep the invoice's numbers (BT-126 need only be unique), so a later credit
            # note knows what was credited already.
            # A discount is credited in proportion to the pieces, like the line it belongs to.
            allowance = tax.cents(item.allowance * qty / item.quantity) if item.allowance else Decimal(0)
            off = tax.cents(item.allowance_gross * qty / item.quantity) if item.allowance_gross else Decimal(0)
            items.append(dataclasses.replace(item, quantity=qty, gross=gross_of[item.position],
                                             unit_net=((line_net + allowance) / qty).quantize(UNIT), net=line_net,
                                             allowance=allowance, allowance_gross=off))
        old = old_taxes.get((category, rate))
        taxes.append(TaxBreakdown(category, rate, net, vat, old.exemption_reason if old else "",
                                  old.exemption_code if old else ""))
    net_total = sum((t.net for t in taxes), Decimal(0))
    tax_total = sum((t.tax for t in taxes), Decimal(0))
    gross = net_total + tax_total
    labels = LABELS.get(doc.language, LABELS["de"])
    # Money the channel collected goes back through the channel; otherwise by transfer to the buyer.
    refund = labels["refund"].format(channel=doc.channel) if doc.paid_through_channel else ""
    return dataclasses.replace(
        doc, number="", type_code=381, issue_date=today, items=tuple(items), taxes=tuple(taxes),
        net_total=net_total, tax_total=tax_total, gross_total=gross, prepaid=Decimal(0), due=gross,
        payment_terms=refund, due_date=None, payment_means="",
        notes=tuple(doc.notes) + (reason.strip(),), preceding_invoice=doc.number, preceding_date=doc.issue_date)


def mail_body(inv: Invoice, order: Order, cfg: Config) -> str:
    from jinja2 import Environment, PackageLoader, StrictUndefined
    env = Environment(loader=PackageLoader("templates", "mail"), undefined=StrictUndefined,
                      keep_trailing_newline=True, autoescape=False)
    name = "invoice_de.txt.j2" if inv.language == "de" else "invoice_en.txt.j2"
    return env.get_template(name).render(invoice=inv, order=order, company=cfg.company,
                                         credit=inv.kind == CREDIT_NOTE)


# --- lookups -----------------------------------------------------------------------------------------


def find(session: Session, number: str) -> Invoice:
    inv = session.scalar(select(Invoice).where(Invoice.number == number.strip().upper()))
    if inv is None:
        raise NotFoundError(f"no invoice {number!r}")
    return inv


def resend(session: Session, number: str) -> Invoice:
    """Queue the same invoice (the same file, the same number) for delivery again; an upload
    forgets what the channel said about the earlier one (``SalesChannel.upload_to_resend``), so
    that ``check_uploads`` judges the new one."""
    from caturactl.outbox import service as outbox
    inv = find(session, number)
    keys = [f"{UPLOAD}:{inv.number}", f"{EMAIL}:invoice:{inv.number}"]
    msgs = [m for m in (session.scalar(select(outbox.OutboxMessage).where(outbox.OutboxMessage.key == k))
                        for k in keys) if m is not None]
    if not msgs:
        raise StateError(f"{inv.number} was never queued for delivery (delivery: {inv.delivery})")
    for m in msgs:
        m.attempts, m.next_attempt_at = 0, clock.now()
        move(session, m, outbox.PENDING, f"{m.key}: queued again by a person ({inv.number} resent)",
             kind=EventKind.OUTBOX_SENT, outbox=m.id)
        if m.kind == UPLOAD:
            m.payload = channels.get(inv.order.channel).upload_to_resend(m.payload)
    record(session, EventKind.INVOICED, f"{inv.number} queued for delivery again by a person", order=inv.order)
    return inv


def invoice_rows(session: Session, tz, *, unpaid: bool = False, month: str | None = None,
                 kind: str | None = None) -> list[dict]:
    from caturactl.views.cockpit import parse_month
    q = select(Invoice).options(selectinload(Invoice.order), selectinload(Invoice.corrects)).order_by(Invoice.id)
    if unpaid:
        q = q.where(Invoice.paid_at.is_(None), Invoice.kind == INVOICE)
    if kind:
        q = q.where(Invoice.kind == kind)
    if month:
        first, nxt = parse_month(month)
        q = q.where(Invoice.issue_date >= first, Invoice.issue_date < nxt)
    return [{"number": i.number, "kind": i.kind, "date": i.issue_date.isoformat(), "order": i.order.external_id,
             "customer": i.document["buyer"]["name"], "net": str(i.net_total), "tax": str(i.tax_total),
             "gross": str(i.gross_total), "currency": i.currency, "corrects": i.corrects.number if i.corrects else "",
             "delivery": i.delivery, "sent": i.sent_at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if i.sent_at else "",
             "paid": "yes" if i.paid_at else ""} for i in session.scalars(q)]


def invoice_record(session: Session, number: str) -> dict:
    """An invoice or credit note as stored (``find``: raises NotFoundError): parties, totals,
    delivery, its items and VAT per rate from the issued document."""
    inv = find(session, number)
    d = inv.document
    return {"number": inv.number, "kind": inv.kind, "issue_date": d["issue_date"],
            "supply_date": d["supply_date"], "order": d["order_id"], "buyer": d["buyer"]["name"],
            "buyer_country": d["buyer"]["country"], "buyer_vat_id": d["buyer"]["vat_id"],
            "net": d["net_total"], "tax": d["tax_total"], "gross": d["gross_total"], "currency": d["currency"],
            "corrects": d["preceding_invoice"], "reason": inv.reason, "delivery": inv.delivery,
            "sent": inv.sent_at, "pdf_bytes": len(inv.pdf), "notes": list(d["notes"]),
            "items": d["items"], "taxes": d["taxes"]}


def invoice_sent(session: Session, msg, now: datetime) -> None:
    """Outbox follow-up: the invoice reached the channel or the buyer's mailbox."""
    inv_id = (msg.payload or {}).get("invoice_id")
    inv = session.get(Invoice, inv_id) if inv_id else None
    if inv is not None:
        inv.sent_at = now
        record(session, EventKind.INVOICED, f"{inv.number} delivered ({msg.kind} to {msg.target})",
               order=inv.order)


def check_uploads(app, session: Session) -> dict[str, int]:
    """Ask each channel that takes invoice uploads how they fared; a refused one gets a ticket
    (``SalesChannel.check_uploads``). The counts of all channels together: checked, accepted,
    rejected, waiting."""
    counts = {"checked": 0, "accepted": 0, "rejected": 0, "waiting": 0}
    for channel in channels.all_channels():
        for key, n in channel.check_uploads(app, session).items():
            counts[key] = counts.get(key, 0) + n
    return counts
