"""Money with the dropshippers: what we bought of each, what each billed us, and what we took back.

Every purchase order line a partner shipped is a purchase at the agreed price (``shipped``). A
partner's invoice (Eingangsrechnung: a CSV, or a ZUGFeRD / XRechnung read back by the partner
interface) is matched against those purchases as a whole (``invoice_matching``): an invoice whose
every line matches is booked; one with a difference (price, quantity, a purchase order that is
not the partner's) is disputed, with a ticket naming each difference, until a person approves or
rejects it. A file is read all or nothing: a bad value stores nothing. Our purchase credit for
goods a partner took back comes from ``return_credit``. ``journal`` gives the accountant's
bookings of both on the partner's creditor account.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, String, Text, UniqueConstraint, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship, selectinload

from caturactl.accounting import bookings
from caturactl.config import Config
from caturactl.core.db import Amount, Base, UTCDateTime, utcnow
from caturactl.core.errors import ConfigError, InputError, NotFound, StateError
from caturactl.core.events import EventKind, record
from caturactl.core.lifecycle import PURCHASE_INVOICE, PurchaseInvoiceState, move
from caturactl.core.tax import cents
from caturactl.fulfilment.dropship import invoice_matching, terms
from caturactl.fulfilment.dropship.models import PurchaseOrder, PurchaseOrderLine
from caturactl.fulfilment.dropship.partner_files import PartnerInvoiceDoc
from caturactl.fulfilment.dropship.rerouting import TICKET_KIND
from caturactl.fulfilment.dropship.returns import DropshipReturn
from caturactl.orders.triage import Hold, close_tickets_about, open_ticket
from caturactl.ports import JournalEntry
from caturactl.views.reports import tidy

PI = PurchaseInvoiceState
COUNTING = (PI.MATCHED.value, PI.DISPUTED.value, PI.APPROVED.value)  # their lines count as billed
BOOKED = (PI.MATCHED.value, PI.APPROVED.value)


class PurchaseInvoice(Base):
    """A partner's invoice to us, as its file said it, with the verdict of the matching."""

    __tablename__ = "purchase_invoices"
    __table_args__ = (UniqueConstraint("partner", "number", name="uq_purchase_invoices_partner_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    partner: Mapped[str] = mapped_column(String(40))
    number: Mapped[str] = mapped_column(String(40))  # the partner's invoice number
    issue_date: Mapped[date] = mapped_column(Date, index=True)
    currency: Mapped[str] = mapped_column(String(3))
    net_total: Mapped[Decimal] = mapped_column(Amount)
    tax_total: Mapped[Decimal] = mapped_column(Amount)
    gross_total: Mapped[Decimal] = mapped_column(Amount)
    _state: Mapped[str] = mapped_column("state", String(20))  # PURCHASE_INVOICE
    source: Mapped[str] = mapped_column(String(10))  # csv | cii | ubl
    file_name: Mapped[str] = mapped_column(String(300), default="")
    sha256: Mapped[str] = mapped_column(String(64), default="")
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision: Mapped[str] = mapped_column(Text, default="")  # why a person approved or rejected it

    lines: Mapped[list["PurchaseInvoiceLine"]] = relationship(back_populates="invoice",
                                                              order_by="PurchaseInvoiceLine.position",
                                                              cascade="all, delete-orphan")

    @property
    def state(self) -> str:
        return self._state


class PurchaseInvoiceLine(Base):
    __tablename__ = "purchase_invoice_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("purchase_invoices.id"), index=True)
    position: Mapped[int]
    purchase_order: Mapped[str] = mapped_column(String(40), default="")  # as the partner wrote it
    purchase_order_line_id: Mapped[int | None] = mapped_column(ForeignKey("purchase_order_lines.id"), index=True)
    sku: Mapped[str] = mapped_column(String(100), default="")
    quantity: Mapped[int]
    unit_price: Mapped[Decimal] = mapped_column(Amount)  # net, each
    net: Mapped[Decimal] = mapped_column(Amount)
    tax_rate: Mapped[Decimal] = mapped_column(Amount)
    expected_price: Mapped[Decimal | None] = mapped_column(Amount)  # the agreed price, when known
    difference: Mapped[str] = mapped_column(Text, default="")  # what differs, "" when it matched

    invoice: Mapped[PurchaseInvoice] = relationship(back_populates="lines")


class PurchaseCredit(Base):
    """What a partner owes us back for goods of a return it took in, at the agreed purchase
    prices (our Rücksendung / Belastung), per VAT rate."""

    __tablename__ = "purchase_credits"
    __table_args__ = (UniqueConstraint("return_id", "tax_rate", name="uq_purchase_credits_return_rate"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    partner: Mapped[str] = mapped_column(String(40), index=True)
    return_id: Mapped[int] = mapped_column(ForeignKey("dropship_returns.id"))
    issue_date: Mapped[date] = mapped_column(Date, index=True)  # the business day it was recorded
    currency: Mapped[str] = mapped_column(String(3))
    net: Mapped[Decimal] = mapped_column(Amount)
    tax_rate: Mapped[Decimal] = mapped_column(Amount)
    tax: Mapped[Decimal] = mapped_column(Amount)
    gross: Mapped[Decimal] = mapped_column(Amount)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    dropship_return: Mapped[DropshipReturn] = relationship()


# --- purchases --------------------------------------------------------------------------------------


def billed_pieces(session: Session, line_ids: list[int]) -> dict[int, int]:
    """Pieces of each purchase order line billed by invoices that count (not rejected ones)."""
    if not line_ids:
        return {}
    rows = session.execute(select(PurchaseInvoiceLine.purchase_order_line_id, func.sum(PurchaseInvoiceLine.quantity))
                           .join(PurchaseInvoice)
                           .where(PurchaseInvoiceLine.purchase_order_line_id.in_(line_ids),
                                  PurchaseInvoice._state.in_(COUNTING))
                           .group_by(PurchaseInvoiceLine.purchase_order_line_id)).all()
    return {k: int(v) for k, v in rows}


def shipped(session: Session, partner: str | None = None, *, unbilled: bool = False, limit: int = 1000) -> list[dict]:
    """The purchases: every purchase order line a partner shipped, at the agreed price, with the
    pieces billed so far; ``unbilled``: only those with pieces not billed yet. Newest first."""
    q = (select(PurchaseOrderLine).join(PurchaseOrder).where(PurchaseOrderLine.shipped > 0)
         .options(selectinload(PurchaseOrderLine.purchase_order))
         .order_by(PurchaseOrder.id.desc(), PurchaseOrderLine.line_no).limit(max(1, min(limit, 10_000))))
    if partner:
        q = q.where(PurchaseOrder.partner == partner)
    lines = session.scalars(q).all()
    billed = billed_pieces(session, [ln.id for ln in lines])
    rows = []
    for ln in lines:
        po = ln.purchase_order
        price = tidy(ln.purchase_price)  # PostgreSQL says 7.500000
        row = {"partner": po.partner, "purchase_order": po.number, "line": ln.line_no, "sku": ln.sku,
               "shipped": ln.shipped, "price": price, "amount": None if price is None else cents(price * ln.shipped),
               "currency": po.currency, "billed": billed.get(ln.id, 0)}
        if not unbilled or row["billed"] < ln.shipped:
            rows.append(row)
    return rows


# --- the partner's invoices --------------------------------------------------------------------------


@dataclass
class InvoiceImport:
    partner: str
    number: str
    state: str  # matched | disputed | known (the same file was read before)
    lines: int = 0
    gross: Decimal = Decimal(0)
    currency: str = ""
    differences: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"partner": self.partner, "invoice": self.number, "state": self.state, "lines": self.lines,
                "gross": str(self.gross), "currency": self.currency, "differences": self.differences}


def check_totals(doc: PartnerInvoiceDoc, name: str) -> None:
    """InputError naming the file unless the invoice adds up: its lines' net to the net total,
    net and VAT to the gross total, each line's net to quantity × price (to the cent)."""
    if not doc.lines:
        raise InputError("the invoice has no lines", where=name)
    for ln in doc.lines:
        if abs(cents(ln.unit_price * ln.quantity) - ln.net) > Decimal("0.01"):
            raise InputError(f"position {ln.position}: net {ln.net} is not {ln.quantity} × {ln.unit_price}",
                             where=ln.where or name)
    lines_net = sum((ln.net for ln in doc.lines), Decimal(0))
    if cents(lines_net) != cents(doc.net_total):
        raise InputError(f"the lines add up to {lines_net} net, the invoice says {doc.net_total}", where=name)
    if cents(doc.net_total + doc.tax_total) != cents(doc.gross_total):
        raise InputError(f"net {doc.net_total} and VAT {doc.tax_total} are not the gross {doc.gross_total}",
                         where=name)


def _expected(session: Session, partner: str, numbers: set[str]) -> tuple[dict[str, list], dict[tuple[str, int], int]]:
    """The partner's purchase orders the invoice names: number -> Expected lines, and
    (number, line) -> the purchase order line's id."""
    pos = session.scalars(select(PurchaseOrder).where(PurchaseOrder.partner == partner,
                                                      PurchaseOrder.number.in_(sorted(numbers)))
                          .options(selectinload(PurchaseOrder.lines))).all()
    billed = billed_pieces(session, [ln.id for po in pos for ln in po.lines])
    expected, ids = {}, {}
    for po in pos:
        expected[po.number] = [invoice_matching.Expected(po.number, ln.line_no, ln.sku, tidy(ln.purchase_price),
                                                         po.currency, ln.shipped, billed.get(ln.id, 0))
                               for ln in po.lines]
        ids.update({(po.number, ln.line_no): ln.id for ln in po.lines})
    return expected, ids


def import_invoice(session: Session, cfg: Config, partner: str, doc: PartnerInvoiceDoc, *, file_name: str,
                   digest: str) -> InvoiceImport:
    """Store the partner's invoice ``doc``, matched against what it shipped: matched, or disputed
    with a ticket naming each difference. The same file again changes nothing ("known").
    InputError (naming the file) for an invoice that does not add up, or whose number was read
    before from another file; nothing is stored then. Flushes; the caller commits."""
    if not terms.is_partner(cfg, partner):
        raise NotFound(f"no dropshipper {partner!r}")
    check_totals(doc, file_name)
    known = session.scalar(select(PurchaseInvoice).where(PurchaseInvoice.partner == partner,
                                                         PurchaseInvoice.number == doc.number))
    if known is not None:
        if known.sha256 == digest:
            return InvoiceImport(partner, doc.number, "known", len(known.lines), known.gross_total, known.currency)
        raise InputError(f"invoice {doc.number} of {partner} was read before (from {known.file_name}, "
                         f"{known.imported_at:%Y-%m-%d}); a correction comes as a credit note or a new number",
                         where=file_name)
    expected, ids = _expected(session, partner, {ln.purchase_order for ln in doc.lines if ln.purchase_order})
    matches = invoice_matching.match(doc.lines, doc.currency, expected)
    differences = [(kind, text) for m in matches for kind, text in m.differences]
    state = PI.DISPUTED if differences else PI.MATCHED
    values = dict(partner=partner, number=doc.number, issue_date=doc.issue_date, currency=doc.currency,
                  net_total=doc.net_total, tax_total=doc.tax_total, gross_total=doc.gross_total, source=doc.source,
                  file_name=file_name[:300], sha256=digest)
    inv = (PurchaseInvoice(_state=PI.DISPUTED.value, **values) if differences
           else PurchaseInvoice(_state=PI.MATCHED.value, **values))
    for ln, m in zip(doc.lines, matches):
        inv.lines.append(PurchaseInvoiceLine(
            position=ln.position, purchase_order=ln.purchase_order[:40], sku=ln.sku[:100],
            purchase_order_line_id=ids.get(m.key) if m.key else None, quantity=ln.quantity, unit_price=ln.unit_price,
            net=ln.net, tax_rate=ln.tax_rate, expected_price=m.expected_price,
            difference="; ".join(text for _, text in m.differences)))
    session.add(inv)
    session.flush()
    why = (f"invoice {doc.number} of {partner} ({file_name}): {len(doc.lines)} line(s), {doc.gross_total} "
           f"{doc.currency} gross, {state.value}")
    record(session, EventKind.STATE_CHANGED, why, to_state=state.value, subject=PURCHASE_INVOICE.name,
           subject_id=inv.id, data={"partner": partner, "invoice": doc.number, "differences": len(differences)})
    if differences:
        open_ticket(session, TICKET_KIND, [Hold(kind, text) for kind, text in differences],
                    external_ref=_ticket_ref(partner, doc.number))
    return InvoiceImport(partner, doc.number, state.value, len(doc.lines), doc.gross_total, doc.currency,
                         [text for _, text in differences])


def _ticket_ref(partner: str, number: str) -> str:
    return f"{partner}:{number}"[:100]


def find_invoice(session: Session, partner: str, number: str) -> PurchaseInvoice:
    """The partner's invoice ``number``; NotFound otherwise."""
    inv = session.scalar(select(PurchaseInvoice).where(PurchaseInvoice.partner == partner,
                                                       PurchaseInvoice.number == number.strip())
                         .options(selectinload(PurchaseInvoice.lines)))
    if inv is None:
        raise NotFound(f"no invoice {number!r} of {partner}")
    return inv


def invoices(session: Session, partner: str | None = None, state: str | None = None,
             limit: int = 200) -> list[PurchaseInvoice]:
    """The partners' invoices, newest first."""
    q = select(PurchaseInvoice).options(selectinload(PurchaseInvoice.lines))
    if partner:
        q = q.where(PurchaseInvoice.partner == partner)
    if state:
        q = q.where(PurchaseInvoice._state == state)
    return list(session.scalars(q.order_by(PurchaseInvoice.issue_date.desc(), PurchaseInvoice.id.desc())
                                .limit(max(1, min(limit, 1000)))))


def decide(session: Session, partner: str, number: str, *, approve: bool, note: str, now: datetime) -> PurchaseInvoice:
    """A person approves a disputed invoice (booked as billed) or rejects it (not booked, its
    pieces count as not billed); its ticket is closed. InputError without a note, StateError
    unless it is disputed."""
    note = " ".join((note or "").split())
    if not note:
        raise InputError("say why (kept with the invoice)", where="--note")
    inv = find_invoice(session, partner, number)
    if inv.state != PI.DISPUTED.value:
        raise StateError(f"invoice {inv.number} of {partner} is {inv.state}; only a disputed one is decided")
    to = PI.APPROVED if approve else PI.REJECTED
    inv.decision, inv.decided_at = note[:1000], now
    move(session, inv, to, f"invoice {inv.number} of {partner} {to.value}: {note[:300]}")
    close_tickets_about(session, TICKET_KIND, _ticket_ref(partner, inv.number), f"{to.value}: {note[:200]}")
    session.flush()
    return inv


# --- the accountant's bookings ----------------------------------------------------------------------


def creditor(cfg: Config, partner: str) -> str:
    """The partner's DATEV creditor account; ConfigError naming the key when none is set."""
    loc = cfg.locations.get(partner)
    account = loc.creditor_account if loc else ""
    if not account:
        raise ConfigError(f"{partner}'s purchases cannot be booked without its creditor account (Kreditor, "
                          "70000-99999: ask the tax advisor)",
                          where=f"caturactl.toml: locations.{partner}.creditor_account")
    return account


def _gross_by_rate(inv: PurchaseInvoice) -> dict[Decimal, Decimal]:
    """The invoice's gross per VAT rate, adding up to its gross total exactly (the last cent of
    rounding goes to the largest part)."""
    nets: dict[Decimal, Decimal] = defaultdict(Decimal)
    for ln in inv.lines:
        nets[Decimal(ln.tax_rate).normalize()] += Decimal(ln.net)
    gross = {rate: cents(net) + cents(net * rate / 100) for rate, net in nets.items()}
    rest = Decimal(inv.gross_total) - sum(gross.values(), Decimal(0))
    if rest and gross:
        biggest = max(gross, key=lambda r: gross[r])
        gross[biggest] += rest
    return gross


def journal(session: Session, cfg: Config, date_from: date, date_to: date) -> list[JournalEntry]:
    """The bookings of the partners' booked invoices issued on the days ``date_from``..``date_to``
    and of our purchase credits recorded on them, on each partner's creditor account
    (``bookings.purchase_entries``), in date order. ConfigError for a partner without one."""
    out: list[JournalEntry] = []
    for inv in session.scalars(select(PurchaseInvoice).where(PurchaseInvoice.issue_date >= date_from,
                                                             PurchaseInvoice.issue_date <= date_to,
                                                             PurchaseInvoice._state.in_(BOOKED))
                               .options(selectinload(PurchaseInvoice.lines)).order_by(PurchaseInvoice.id)):
        name = cfg.locations[inv.partner].name if inv.partner in cfg.locations else inv.partner
        out += bookings.purchase_entries(inv.number, inv.issue_date, f"{name} {inv.number}", _gross_by_rate(inv),
                                         creditor(cfg, inv.partner), cfg.accounts)
    credits: dict[tuple[str, date, str], dict[Decimal, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for c in session.scalars(select(PurchaseCredit).where(PurchaseCredit.issue_date >= date_from,
                                                          PurchaseCredit.issue_date <= date_to)
                             .options(selectinload(PurchaseCredit.dropship_return)).order_by(PurchaseCredit.id)):
        key = (c.partner, c.issue_date, c.dropship_return.number)
        credits[key][Decimal(c.tax_rate).normalize()] += Decimal(c.gross)
    for (partner, day, number), by_rate in credits.items():
        out += bookings.purchase_entries(number, day, f"Retoure {number} {partner}", by_rate, creditor(cfg, partner),
                                         cfg.accounts, credit=True)
    out.sort(key=lambda e: e.date)
    return out


__all__ = ["PurchaseCredit", "PurchaseInvoice", "PurchaseInvoiceLine", "decide", "import_invoice", "invoices",
           "journal", "shipped"]
