"""The dropship services the partner portal and the merchant's CLI call (the contract in
/work/notes/dropship_contract.md): a partner's purchase orders, its answers per line, its
parcels, its availability.

Every function takes the session first, works in the caller's transaction and only flushes (the
caller commits). ``partner`` is the dropshipper's location code; a purchase order of another
partner does not exist for it (``NotFound``, the portal's 404). ``actor`` is who acts ("portal:
anna@ds1.example", "cli:root"); every change is an event with it. The configuration comes from
``cfg=`` or from ``session.info["config"]`` (``App.session`` puts it there). Nothing returned is
an ORM object: summaries and details are frozen dataclasses, with only what shipping needs of
the buyer (no e-mail, no phone, no price the buyer paid).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Callable, Iterator

from zoneinfo import ZoneInfo

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, selectinload

from caturactl.config import Config
from caturactl.core import clock
from caturactl.core.errors import ConfigError, InputError, NotFound, StateError
from caturactl.core.events import EventKind, actor as current_actor, record
from caturactl.core.lifecycle import PurchaseLineState, PurchaseOrderState, move
from caturactl.fulfilment import shipping
from caturactl.fulfilment.dropship import documents, partner_stock, rerouting, terms
from caturactl.fulfilment.dropship import returns as dropship_returns
from caturactl.fulfilment.dropship.messages import LineAnswer, ParcelReport
from caturactl.fulfilment.dropship.partner_files import CONDITIONS, ReturnReceipt
from caturactl.fulfilment.dropship.models import (NUMBER_PREFIX, PurchaseOrder, PurchaseOrderLine,
                                                  PurchaseOrderParcel)
from caturactl.fulfilment.models import ShippedParcel
from caturactl.ports import Confirmation, ConfirmedLine

REJECT_REASONS = ("out_of_stock", "address", "discontinued", "other")
VIEWS = ("open", "to_ship", "shipped", "all")
DOCUMENT_KINDS = ("delivery_note", "label", "invoice")
RETURN_CONDITIONS = CONDITIONS  # as_new, opened, damaged, incomplete
RETURN_VIEWS = dropship_returns.VIEWS  # open (announced), received, done (credited or refused), all
L, P = PurchaseLineState, PurchaseOrderState
CONFIG_KEY = "config"
# Documents for a partner, by kind: (session, purchase order) -> (filename, content); NotFound for
# one the purchase order does not have. The merchant's papers (documents.py) are registered here.
DOCUMENTS: dict[str, Callable[[Session, PurchaseOrder], tuple[str, bytes]]] = dict(documents.RENDERERS)


@dataclass(frozen=True)
class PurchaseOrderSummary:
    number: str
    state: str
    created_at: datetime
    respond_by: datetime | None
    lines: int
    open_lines: int  # not yet answered
    to_ship: int  # accepted pieces not yet shipped
    ship_date: date | None
    city: str  # of the delivery address: enough to tell orders apart in a list
    country: str


@dataclass(frozen=True)
class ShipTo:
    name: str
    street: str
    postcode: str
    city: str
    country: str
    company: str = ""
    extra: str = ""  # c/o, Packstation, second address line


@dataclass(frozen=True)
class LineDetail:
    line_no: int
    sku: str
    description: str
    quantity: int
    shipped: int
    state: str
    reason: str
    purchase_price: Decimal | None
    ship_by: date | None = None  # accepted: the partner's last day to hand it to the carrier (its time zone)


@dataclass(frozen=True)
class ParcelDetail:
    carrier: str
    tracking: str
    shipped_at: datetime
    lines: tuple[tuple[int, int], ...]  # (line_no, quantity)


@dataclass(frozen=True)
class PurchaseOrderDetail:
    number: str
    state: str
    created_at: datetime
    respond_by: datetime | None
    ship_date: date | None
    carrier: str
    service: str
    ship_to: ShipTo
    lines: tuple[LineDetail, ...]
    parcels: tuple[ParcelDetail, ...]
    documents: tuple[tuple[str, str], ...]  # (kind, filename)


@dataclass(frozen=True)
class ReturnSummary:
    id: int
    number: str  # "RT000012"
    purchase_order: str
    state: str  # announced | received | credited | refused
    announced_at: datetime
    reason: str  # the buyer's
    label_reference: str  # what the buyer's return label carries (no label booked with a carrier)
    lines: tuple[tuple[str, int], ...]  # (sku, quantity)
    condition: str  # "" until the partner confirmed it
    note: str
    received_at: datetime | None


# --- helpers ---------------------------------------------------------------------------------


def config_of(session: Session, cfg: Config | None = None) -> Config:
    """``cfg``, else the configuration the session carries; ConfigError when neither."""
    found = cfg or session.info.get(CONFIG_KEY)
    if found is None:
        raise ConfigError("the dropship services need the configuration: pass cfg= or open the session "
                          "through App.session()")
    return found


@contextmanager
def acting(who: str) -> Iterator[None]:
    """Events recorded inside name ``who`` as their actor."""
    if not who or not who.strip():
        raise InputError("say who acts", where="actor")
    token = current_actor.set(who.strip()[:100])
    try:
        yield
    finally:
        current_actor.reset(token)


def _check_partner(cfg: Config, partner: str) -> None:
    if not terms.is_partner(cfg, partner):
        raise NotFound(f"no dropshipper {partner!r}")


def _po(session: Session, partner: str, number: str, *, lock: bool = False) -> PurchaseOrder:
    """The partner's purchase order ``number`` (locked when ``lock``); NotFound otherwise, also
    when it belongs to another partner or is not sent yet."""
    text = (number or "").strip().upper()
    q = (select(PurchaseOrder).where(PurchaseOrder.number == text, PurchaseOrder.partner == partner,
                                     PurchaseOrder._state != P.CREATED.value)
         .options(selectinload(PurchaseOrder.lines), selectinload(PurchaseOrder.parcels)))
    if lock:
        q = q.with_for_update(of=PurchaseOrder, key_share=True).execution_options(populate_existing=True)
    po = session.scalar(q) if text.startswith(NUMBER_PREFIX) and len(text) <= 20 else None
    if po is None:
        raise NotFound(f"no purchase order {number!r} for {partner}")
    return po


def _line(po: PurchaseOrder, line_no: int) -> PurchaseOrderLine:
    for ln in po.lines:
        if ln.line_no == line_no:
            return ln
    raise NotFound(f"{po.number} has no line {line_no}")


# --- reading -----------------------------------------------------------------------------------


def _view(q, view: str):
    if view not in VIEWS:
        raise InputError(f"unknown view {view!r} (known: {', '.join(VIEWS)})", where="view")
    accepted_open = exists().where(PurchaseOrderLine.purchase_order_id == PurchaseOrder.id,
                                   PurchaseOrderLine._state == L.ACCEPTED.value)
    if view == "open":
        return q.where(PurchaseOrder._state == P.SENT.value,
                       exists().where(PurchaseOrderLine.purchase_order_id == PurchaseOrder.id,
                                      PurchaseOrderLine._state == L.OPEN.value))
    if view == "to_ship":
        return q.where(PurchaseOrder._state.in_([P.SENT.value, P.ACCEPTED.value, P.PARTIALLY_SHIPPED.value]),
                       accepted_open)
    if view == "shipped":
        return q.where(PurchaseOrder._state.in_([P.PARTIALLY_SHIPPED.value, P.SHIPPED.value, P.CLOSED.value]),
                       exists().where(PurchaseOrderParcel.purchase_order_id == PurchaseOrder.id))
    return q.where(PurchaseOrder._state != P.CREATED.value)


def purchase_orders(session: Session, partner: str, *, view: str = "open", limit: int = 50,
                    offset: int = 0) -> list[PurchaseOrderSummary]:
    """The partner's purchase orders in ``view`` (open: sent, awaiting an answer; to_ship:
    accepted lines not yet shipped; shipped; all), newest first. InputError for an unknown view."""
    q = _view(select(PurchaseOrder).where(PurchaseOrder.partner == partner), view)
    pos = session.scalars(q.options(selectinload(PurchaseOrder.lines), selectinload(PurchaseOrder.delivery),
                                    selectinload(PurchaseOrder.order))
                          .order_by(PurchaseOrder.created_at.desc(), PurchaseOrder.id.desc())
                          .limit(max(1, min(limit, 500))).offset(max(0, offset))).all()
    return [_summary(po) for po in pos]


def _summary(po: PurchaseOrder) -> PurchaseOrderSummary:
    return PurchaseOrderSummary(
        number=po.number, state=po.state, created_at=po.created_at, respond_by=po.respond_by,
        lines=len(po.lines), open_lines=sum(ln.state == L.OPEN.value for ln in po.lines),
        to_ship=sum(ln.quantity - ln.shipped for ln in po.lines if ln.state == L.ACCEPTED.value),
        ship_date=po.delivery.ship_date, city=po.order.ship_city, country=po.order.ship_country)


def count_purchase_orders(session: Session, partner: str, *, view: str = "open") -> int:
    """How many of the partner's purchase orders ``view`` holds."""
    q = _view(select(func.count(PurchaseOrder.id)).where(PurchaseOrder.partner == partner), view)
    return session.scalar(q) or 0


def _last_day(ship_by: datetime | None, tz: ZoneInfo) -> date | None:
    """The day a ``ship_by`` (the end of that day, local midnight) belongs to."""
    return (ship_by - timedelta(microseconds=1)).astimezone(tz).date() if ship_by is not None else None


def purchase_order(session: Session, partner: str, number: str) -> PurchaseOrderDetail:
    """One purchase order of the partner with what shipping it needs; NotFound for any other."""
    po = _po(session, partner, number)
    order, note = po.order, po.delivery
    a = order.address
    extra = ", ".join(x for x in (a.line2, a.line3) if x)
    titles = {ln.id: ln.order_line.title for ln in po.lines}
    cfg = config_of(session)
    partner = cfg.locations.get(po.partner)  # None: no longer configured, its orders still shown
    tz = ZoneInfo(partner.timezone) if partner else cfg.tz
    return PurchaseOrderDetail(
        number=po.number, state=po.state, created_at=po.created_at, respond_by=po.respond_by,
        ship_date=note.ship_date, carrier=note.carrier, service=note.service,
        ship_to=ShipTo(name=a.name, street=a.line1, postcode=a.postal_code, city=a.city, country=a.country,
                       company=a.company, extra=extra),
        lines=tuple(LineDetail(ln.line_no, ln.sku, titles.get(ln.id) or "", ln.quantity, ln.shipped, ln.state,
                               ln.reject_reason, ln.purchase_price, _last_day(ln.ship_by, tz)) for ln in po.lines),
        parcels=tuple(ParcelDetail(p.carrier, p.tracking_number, p.shipped_at,
                                   tuple((int(n), int(q)) for n, q in p.items)) for p in po.parcels),
        documents=tuple((kind, documents.file_name(po, kind)) for kind in DOCUMENT_KINDS
                        if kind in DOCUMENTS and documents.offered(session, cfg, po, kind)))


def document(session: Session, partner: str, number: str, kind: str) -> tuple[str, bytes]:
    """(filename, content) of a document for the partner's purchase order; InputError for an
    unknown kind, NotFound for another partner's order or a kind not offered yet."""
    if kind not in DOCUMENT_KINDS:
        raise InputError(f"unknown document {kind!r} (known: {', '.join(DOCUMENT_KINDS)})", where="kind")
    po = _po(session, partner, number)
    render = DOCUMENTS.get(kind)
    if render is None:
        raise NotFound(f"no {kind.replace('_', ' ')} for {po.number} yet")
    return render(session, po)


def return_label(session: Session, partner: str, return_id: int | str) -> tuple[str, bytes]:
    """(filename, content) of the return label of the partner's return ``return_id`` (its id or
    number); NotFound for another partner's return."""
    rt = dropship_returns.find(session, partner, return_id)
    f = documents.return_label(session, config_of(session), rt)
    return f.name, f.content


# --- answers -------------------------------------------------------------------------------------


def accept_lines(session: Session, partner: str, number: str, line_nos: list[int] | None, *, actor: str,
                 cfg: Config | None = None) -> None:
    """Accept the named lines (None: every open line) of the partner's purchase order. A line
    accepted already stays so; StateError for a line rejected, expired or cancelled."""
    cfg = config_of(session, cfg)
    with acting(actor):
        po = _po(session, partner, number, lock=True)
        lines = po.lines if line_nos is None else [_line(po, n) for n in line_nos]
        answers = [LineAnswer(po.number, ln.line_no, True, quantity=ln.quantity, where=actor)
                   for ln in lines if line_nos is not None or ln.state == L.OPEN.value]
        apply_answers(session, cfg, po, answers, clock.now())


def reject_line(session: Session, partner: str, number: str, line_no: int, reason: str, *, actor: str,
                note: str = "", cfg: Config | None = None) -> None:
    """Reject one line with a reason (REJECT_REASONS); the line goes back to routing (another
    partner, our own stock) or to a person. InputError for an unknown reason, StateError when the
    line is shipped or answered otherwise."""
    if reason not in REJECT_REASONS:
        raise InputError(f"unknown reason {reason!r} (known: {', '.join(REJECT_REASONS)})", where="reason")
    cfg = config_of(session, cfg)
    with acting(actor):
        po = _po(session, partner, number, lock=True)
        apply_answers(session, cfg, po, [LineAnswer(po.number, _line(po, line_no).line_no, False, quantity=0,
                                                    reason=reason, note=note[:1000], where=actor)], clock.now())


def apply_answers(session: Session, cfg: Config, po: PurchaseOrder, answers: list[LineAnswer], now: datetime) -> int:
    """Apply a partner's answers to ``po``'s lines (from the portal, the CLI or an ORDERRESPONSE);
    the same answer twice changes nothing. Returns how many lines changed. InputError (naming the
    answer's ``where``) for a quantity that is neither all nor 0, StateError for a line that
    cannot take the answer any more."""
    changed = 0
    for a in answers:
        ln = _line(po, a.line_no)
        if a.accepted:
            if a.quantity is not None and a.quantity != ln.quantity:
                raise InputError(f"{po.number} line {ln.line_no}: accept all {ln.quantity} or reject it (0), "
                                 f"not {a.quantity}", where=f"{a.where}:QUANTITY")
            if ln.state in (L.ACCEPTED.value, L.SHIPPED.value):
                continue
            _answerable(po, ln, "accepted")
            move(session, ln, L.ACCEPTED, f"{po.number} line {ln.line_no} accepted by {po.partner}",
                 purchase_order=po.number)
            ln.answered_at = now
            ln.ship_by = rerouting.ship_by(cfg, po.partner, now)  # the partner's promise, from its terms
        else:
            if ln.state == L.REJECTED.value:
                continue
            if ln.shipped:
                raise StateError(f"{po.number} line {ln.line_no}: {ln.shipped} piece(s) shipped already; "
                                 "it cannot be rejected")
            _answerable(po, ln, "rejected", also=(L.ACCEPTED.value,))
            ln.reject_reason, ln.note = a.reason or "other", a.note
            why = f"{po.number} line {ln.line_no} rejected by {po.partner}: {ln.reject_reason}" + \
                  (f" ({a.note})" if a.note else "")
            move(session, ln, L.REJECTED, why, purchase_order=po.number, reason=ln.reject_reason)
            ln.answered_at = now
            rerouting.send_back(session, cfg, ln, f"rejected: {ln.reject_reason}", now)
        ln.answered_at = ln.answered_at or now
        changed += 1
    rerouting.progress(session, po, now)
    session.flush()
    return changed


def _answerable(po: PurchaseOrder, ln: PurchaseOrderLine, what: str, also: tuple[str, ...] = ()) -> None:
    if ln.state != L.OPEN.value and ln.state not in also:
        raise StateError(f"{po.number} line {ln.line_no} is {ln.state}; it cannot be {what} now")


# --- parcels -------------------------------------------------------------------------------------


def add_parcel(session: Session, partner: str, number: str, *, carrier: str, tracking: str,
               lines: dict[int, int] | None, actor: str, cfg: Config | None = None) -> None:
    """Record a parcel of the partner's purchase order: the carrier (one the partner ships with)
    and its tracking number (checked with carriers/tracking.py), with the pieces of each line in
    it (None: everything still to ship). An open line in it counts as accepted. The buyer's side
    follows as for any delivery: the channel is told, the buyer where the channel allows."""
    cfg = config_of(session, cfg)
    with acting(actor):
        po = _po(session, partner, number, lock=True)
        report = ParcelReport(po.number, carrier, tracking, clock.now(),
                              tuple(sorted((lines or {}).items())), where=actor)
        apply_parcel(session, cfg, po, report, clock.now())


def apply_parcel(session: Session, cfg: Config, po: PurchaseOrder, p: ParcelReport, now: datetime) -> bool:
    """Store one parcel of ``po`` on its delivery note (``shipping.Collector.apply``: carrier and
    tracking checked, the channel's confirmation and the buyer's notice queued) and on the
    purchase order; False when it is known already. InputError naming the field otherwise."""
    if not p.tracking_number.strip():
        raise InputError("a tracking number is needed", where=f"{p.where}:tracking")
    if any(x.tracking_number == "".join(p.tracking_number.split()).upper() for x in po.parcels):
        return False
    wanted = _pieces(po, p)
    for ln, qty in wanted:
        if ln.state == L.OPEN.value:
            move(session, ln, L.ACCEPTED, f"{po.number} line {ln.line_no} accepted by shipping it",
                 purchase_order=po.number)
            ln.answered_at = now
            ln.ship_by = rerouting.ship_by(cfg, po.partner, now)  # for the pieces a partial parcel leaves
    c = Confirmation(delivery_id=po.delivery.number, carrier=p.carrier, service="",
                     tracking_numbers=("".join(p.tracking_number.split()).upper(),), shipped_at=p.shipped_at,
                     lines=tuple(ConfirmedLine(ln.sku, qty) for ln, qty in wanted), where=p.where,
                     order_id=po.order.external_id)
    # The delivery note's side is shipping's: it checks carrier, tracking number and date, stores
    # the parcel and queues what the channel and the buyer are told.
    if not shipping.Collector(session, cfg, _no_transport, {}, now=now).apply(c, "dropship", [po.partner]):
        return False  # the note has this parcel already
    stored = session.scalars(select(ShippedParcel).where(ShippedParcel.delivery_id == po.delivery_id)
                             .order_by(ShippedParcel.id.desc())).first()
    po.parcels.append(PurchaseOrderParcel(carrier=stored.carrier, tracking_number=stored.tracking_number,
                                          items=[[ln.line_no, qty] for ln, qty in wanted], shipped_at=c.shipped_at,
                                          source=p.where[:300], created_at=now))
    for ln, qty in wanted:
        ln.shipped += qty
        if ln.shipped == ln.quantity:
            move(session, ln, L.SHIPPED, f"{po.number} line {ln.line_no}: {stored.carrier} {stored.tracking_number}",
                 purchase_order=po.number)
    rerouting.progress(session, po, now)
    session.flush()
    return True


def _pieces(po: PurchaseOrder, p: ParcelReport) -> list[tuple[PurchaseOrderLine, int]]:
    """(line, pieces) in the parcel; InputError for a line that is not to ship or too many pieces."""
    if not p.lines:
        out = [(ln, ln.quantity - ln.shipped) for ln in po.lines
               if ln.state in (L.OPEN.value, L.ACCEPTED.value) and ln.quantity > ln.shipped]
        if not out:
            raise StateError(f"{po.number} has nothing left to ship")
        return out
    out = []
    for line_no, qty in p.lines:
        ln = _line(po, line_no)
        if ln.state not in (L.OPEN.value, L.ACCEPTED.value):
            raise StateError(f"{po.number} line {line_no} is {ln.state}; it does not ship")
        if not isinstance(qty, int) or isinstance(qty, bool) or qty < 1 or qty > ln.quantity - ln.shipped:
            raise InputError(f"{po.number} line {line_no}: {qty!r} piece(s), but {ln.quantity - ln.shipped} "
                             "left to ship", where=f"{p.where}:quantity")
        out.append((ln, qty))
    return out


def _no_transport(name: str):
    raise ConfigError(f"a parcel of a purchase order reads no transport ({name})")


# --- availability --------------------------------------------------------------------------------


def set_availability(session: Session, partner: str, quantities: dict[str, int], *, actor: str,
                     as_of: datetime | None = None, cfg: Config | None = None) -> int:
    """Set what the partner has of the SKUs given (as of ``as_of``, now by default); returns how
    many figures changed. InputError naming the SKU for a quantity that is not 0..10,000,000."""
    cfg = config_of(session, cfg)
    _check_partner(cfg, partner)
    partner_stock.check_quantities(quantities, "availability")
    now = clock.now()
    with acting(actor):
        r = partner_stock.store(session, partner, sorted(quantities.items()), as_of or now, actor, now)
        record(session, EventKind.NOTE, f"availability of {partner}: {r.rows} SKU(s), {r.changed} changed",
               data={"partner": partner, "rows": r.rows, "changed": r.changed})
    return r.changed


def import_availability_csv(session: Session, partner: str, data: bytes, *, actor: str, filename: str,
                            cfg: Config | None = None) -> int:
    """Set the partner's availability from a CSV (sku;quantity, and an ``as_of`` column when the
    partner dates its figures: they count from then, as on the return channel), all or nothing:
    InputError naming file, line and field, and nothing changed. Returns how many figures changed."""
    cfg = config_of(session, cfg)
    _check_partner(cfg, partner)
    rows = partner_stock.read_csv(filename, data)
    now = clock.now()
    stated = partner_stock.figures_as_of(filename, data, ZoneInfo(cfg.locations[partner].timezone))
    as_of = partner_stock.dated(stated, now, f"{filename}:{partner_stock.AS_OF_FIELD}")
    with acting(actor):
        r = partner_stock.store(session, partner, rows, as_of, f"{filename} ({actor})", now)
        record(session, EventKind.NOTE, f"availability of {partner} from {filename}: {r.rows} SKU(s), "
                                        f"{r.changed} changed", data={"partner": partner, "file": filename[:200]})
    return r.changed


# --- returns -------------------------------------------------------------------------------------


def returns(session: Session, partner: str, *, view: str = "open", cfg: Config | None = None) -> list[ReturnSummary]:
    """The partner's returns in ``view`` (open: announced, waiting for its confirmation;
    received; done: credited or refused; all), newest first. InputError for an unknown view,
    NotFound for a partner that is not configured."""
    _check_partner(config_of(session, cfg), partner)
    return [ReturnSummary(id=rt.id, number=rt.number, purchase_order=rt.purchase_order.number, state=rt.state,
                          announced_at=rt.announced_at, reason=rt.reason, label_reference=rt.label_reference,
                          lines=tuple((ln.sku, ln.quantity) for ln in rt.lines), condition=rt.condition,
                          note=rt.note, received_at=rt.received_at)
            for rt in dropship_returns.listing(session, partner, view)]


def confirm_return(session: Session, partner: str, return_id: int | str, *, condition: str, note: str, actor: str,
                   cfg: Config | None = None) -> None:
    """The partner confirms it received return ``return_id`` (its id or number) in ``condition``
    (RETURN_CONDITIONS) with ``note``: received, the buyer told where the channel allows, a
    ticket when the condition needs a person; the credit note follows (``dropship return
    credit``). NotFound for another partner's return, InputError for an unknown condition,
    StateError when it was confirmed otherwise already."""
    cfg = config_of(session, cfg)
    with acting(actor):
        rt = dropship_returns.find(session, partner, return_id, lock=True)
        dropship_returns.confirm(session, cfg, rt, ReturnReceipt(rt.number, condition or "", note or ""), actor,
                                 clock.now())
