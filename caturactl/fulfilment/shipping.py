"""Shipping: export delivery notes to their locations, read the locations' confirmations, chase
the overdue ones, and queue the shipment confirmation at the channel.

Export renders each new delivery note in its location's format(s) and queues the files in the
outbox in the same transaction that marks the note exported and starts its deadline; the sender
uploads them afterwards. Collect reads each return channel file by file: a file is applied
whole in one transaction or rejected whole (moved to the error folder, a ticket opened, the
database unchanged); only after the commit is it moved to the archive, and a file seen again
after a crash is recognised by its hash (the skeleton is ``inbound.ChannelReader``, which the
dropshippers' channels share). Every new parcel with items becomes an Amazon
confirmShipment message in the outbox.

Files come from partners, who may be careless or hostile, so a file is judged alone and stops
only itself: whatever is wrong with it (a value that overflows, a name that cannot be read, a
size over ``max_file_mb``) rejects that file, and the channel's other files and the other
channels go on. Every value is checked before it is used (the readers bound numbers and dates);
then each confirmation must fit its delivery (order, carrier, service, a ship date between the
export and now) before anything of it reaches Amazon or an invoice.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Callable, Mapping, Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session, defer, selectinload

from carriers import tracking
from caturactl import channels
from caturactl.catalogue import stock
from caturactl.core import csvfile
from caturactl.config import Config
from caturactl.core import clock
from caturactl.core.errors import InputError
from caturactl.fulfilment import inbound
from caturactl.fulfilment.models import DeliveryLine, DeliveryNote, ShippedParcel
from caturactl.catalogue.models import Product
from caturactl.orders import notices
from caturactl.orders.models import Order
from caturactl.orders.tickets import Ticket
from caturactl.core.address import Address, postnummer
from caturactl.fulfilment.models import NUMBER_PREFIX
from caturactl.core.events import EventKind, buffered, record
from caturactl.core.money import Money
from caturactl.core.lifecycle import DeliveryState, OrderState, transition, transition_delivery
from caturactl.orders.tickets import OPEN
from caturactl.outbox.service import enqueue
from caturactl.ports import (Confirmation, ConfirmationReader, DocumentFormat, Parcel, RenderedFile,
                             ShipmentDocument, ShipmentLine, Transport)
from caturactl.views.cockpit import record_id
from caturactl.fulfilment.routing import calendar_for
from caturactl.orders.triage import Hold, open_ticket

D = DeliveryState
BATCH = 500
UPLOAD = "upload"
EMAIL = "email"
FUTURE_TOLERANCE = timedelta(hours=12)  # clocks and time zones of a location may be off a little
EXPORT_TOLERANCE = timedelta(days=1)  # the same, for a ship date just before the export
# A delivery number as locations send it back: ASCII digits only (str.isdigit() also takes "²³⁷",
# which int() then refuses).
DELIVERY_NUMBER = re.compile(rf"{NUMBER_PREFIX}[0-9]+")
STOCK_PREFIX = "STOCK"  # files named STOCK*.csv on a return channel are stock reports
WAITING_FOR_CONFIRMATION = (D.EXPORTED.value, D.PARTIALLY_CONFIRMED.value, D.OVERDUE.value)


def document_for(note: DeliveryNote, cfg: Config, products: Mapping[str, Product] | None = None) -> ShipmentDocument:
    """The plain values a format renders for ``note``."""
    order = note.order
    loc = cfg.locations[note.location]
    carrier = cfg.carriers.get(note.carrier_key)
    products = products or {}
    lines = []
    for i, dl in enumerate(note.lines, 1):
        ol = dl.order_line
        price = Money(ol.unit_price, order.currency) if ol.unit_price is not None else None
        title = ol.title or (products[dl.sku].title if dl.sku in products else "")
        lines.append(ShipmentLine(line_no=i, sku=dl.sku, title=title, quantity=dl.quantity, unit_price=price,
                                  channel_line_id=ol.external_id))
    address = order.address
    return ShipmentDocument(
        delivery_id=note.number, order_id=order.external_id, channel=order.channel,
        sales_channel=order.marketplace_name or order.channel,
        customer_number=order.customer.number if order.customer is not None else "",
        ordered_at=order.created_at, created_at=note.created_at, ship_date=note.ship_date or note.created_at.date(),
        carrier=note.carrier, service=note.service, express=note.express, cash_on_delivery=None,
        ship_to=address, email=order.buyer_email,
        sender=Address(name=loc.name if loc.kind == "own" else cfg.company.name, company=cfg.company.name,
                       line1=loc.street, postal_code=loc.postal_code, city=loc.city, country=loc.country),
        lines=tuple(lines),
        parcels=tuple(Parcel(*p) for p in note.planned_parcels),
        billing_number=carrier.billing_number if carrier else "",
        postnummer=postnummer(address) or "" if address.lines else "",
        note=order.delivery_instructions)


def render(note: DeliveryNote, cfg: Config, formats: Mapping[str, DocumentFormat],
           products: Mapping[str, Product] | None = None) -> list[RenderedFile]:
    """The files a location gets for ``note``: its main format first, then its extra documents."""
    loc = cfg.locations[note.location]
    doc = document_for(note, cfg, products)
    return [formats[name].render(doc) for name in (loc.format, *loc.documents)]


def file_payload(f: RenderedFile, note: DeliveryNote) -> dict:
    return {"name": f.name, "media_type": f.media_type, "content_b64": base64.b64encode(f.content).decode("ascii"),
            "delivery_id": note.id}


def file_from_payload(payload: dict) -> RenderedFile:
    return RenderedFile(payload["name"], base64.b64decode(payload["content_b64"]), payload["media_type"])


@dataclass
class ExportResult:
    exported: int = 0
    files: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "L000123: why"
    dry_run: bool = False

    def as_dict(self) -> dict:
        return {"exported": self.exported, "files": len(self.files), "failed": self.failed, "dry_run": self.dry_run}


def count_to_export(session: Session, cfg: Config, limit: int | None = None) -> int:
    """How many delivery notes ``export`` would take (for a progress bar): not the dropshippers'."""
    total = session.scalar(select(func.count()).where(DeliveryNote._state == D.CREATED.value,
                                                      DeliveryNote.location.notin_(_partners(cfg)))) or 0
    return min(total, limit or total)


def _partners(cfg: Config) -> list[str]:
    """Dropshipper locations: their notes go out as purchase orders (``dropship send``), not here."""
    return sorted(code for code, loc in cfg.locations.items() if loc.kind == "dropshipper")


def export(session: Session, cfg: Config, formats: Mapping[str, DocumentFormat], *, dry_run: bool = False,
           limit: int | None = None, now: datetime | None = None,
           progress: Callable[[int], None] | None = None) -> ExportResult:
    """Render every created delivery note and queue its files; a note whose data does not fit its
    format gets a ticket and stays created. Commits per batch unless ``dry_run``."""
    now = now or clock.now()
    r = ExportResult(dry_run=dry_run)
    products = {p.sku: p for p in session.scalars(select(Product))}
    calendars = {code: calendar_for(cfg, code) for code in cfg.locations}
    ids = session.scalars(select(DeliveryNote.id).where(DeliveryNote._state == D.CREATED.value,
                                                        DeliveryNote.location.notin_(_partners(cfg)))
                          .order_by(DeliveryNote.id).limit(limit)).all()
    for start in range(0, len(ids), BATCH):
        chunk = ids[start:start + BATCH]
        # Eager loads and no raw channel JSON: a lazy load per line would dominate the cost.
        # Claimed, not read: notes still created that no other run (an import cancelling them,
        # another export) holds right now; the rest are left to that run.
        notes = session.scalars(select(DeliveryNote).where(DeliveryNote.id.in_(chunk),
                                                           DeliveryNote._state == D.CREATED.value)
                                .order_by(DeliveryNote.id)
                                .with_for_update(of=DeliveryNote, skip_locked=True, key_share=True)
                                .execution_options(populate_existing=True)
                                .options(defer(DeliveryNote.choice),
                                         selectinload(DeliveryNote.lines).selectinload(DeliveryLine.order_line),
                                         selectinload(DeliveryNote.order).options(defer(Order.raw))
                                         .selectinload(Order.customer))).all()
        with buffered(session):
            for note in notes:
                if note.location not in cfg.locations:
                    r.failed.append(f"{note.number}: location {note.location} is no longer configured")
                    continue
                loc = cfg.locations[note.location]
                try:
                    files = render(note, cfg, formats, products)
                except InputError as exc:
                    r.failed.append(f"{note.number}: {exc}")
                    if not dry_run:
                        _ticket_once(session, note, "export_failed",
                                     f"{note.number} cannot be rendered for {note.location}: {exc}")
                    continue
                r.files.extend(f.name for f in files)
                r.exported += 1
                if dry_run:
                    continue
                for f in files:
                    enqueue(session, f"{UPLOAD}:{loc.transport}:{f.name}", UPLOAD, loc.transport, file_payload(f, note))
                note.file_name = files[0].name
                note.exported_at = now
                note.deadline_at = calendars[note.location].add_business_hours(now, loc.deadline_hours)
                transition_delivery(session, note, D.EXPORTED,
                                    f"{', '.join(f.name for f in files)} queued for {loc.transport}; "
                                    f"confirmation due by {note.deadline_at:%Y-%m-%d %H:%M} UTC")
        if dry_run:
            session.rollback()
        else:
            session.commit()
        if progress:
            progress(len(chunk))
    return r


def _ticket_once(session: Session, note: DeliveryNote, kind: str, text: str) -> None:
    exists = session.scalar(select(Ticket.id).where(Ticket.order_id == note.order_id, Ticket.kind == kind,
                                                    Ticket.status == OPEN, Ticket.external_ref == note.number))
    if not exists:
        open_ticket(session, kind, [Hold(kind, text)], order=note.order, external_ref=note.number, delivery=note)


# --- confirmations ---------------------------------------------------------------------------------


@dataclass
class CollectResult(inbound.Result):
    confirmations: int = 0
    parcels: int = 0

    def as_dict(self) -> dict:
        return {"files": self.files, "confirmations": self.confirmations, "parcels": self.parcels,
                "rejected": self.rejected, "duplicates": self.duplicates, "unreachable": self.unreachable,
                "dry_run": self.dry_run}


@dataclass
class _Collected:
    """What one confirmation file counted (``inbound.Tally``)."""
    confirmations: int = 0
    parcels: int = 0

    @property
    def stored(self) -> int:
        return self.confirmations

    def add_to(self, r: CollectResult) -> None:
        r.confirmations += self.confirmations
        r.parcels += self.parcels


def return_channels(cfg: Config) -> dict[str, list[str]]:
    """Return transport name -> the locations that answer on it (dropshippers answer purchase
    orders: their channels are read by ``dropship read``)."""
    out: dict[str, list[str]] = {}
    for code, loc in cfg.locations.items():
        if loc.kind != "dropshipper":
            out.setdefault(loc.return_transport or loc.transport, []).append(code)
    return out


def reader_for(name: str, codes: Sequence[str], cfg: Config, readers: Mapping[str, ConfirmationReader]) -> ConfirmationReader:
    """By extension first (a channel may carry both), else the locations' configured format."""
    lower = name.lower()
    if lower.endswith(".xml") and "confirmation_xml" in readers:
        return readers["confirmation_xml"]
    if lower.endswith((".csv", ".txt")) and "confirmation_csv" in readers:
        return readers["confirmation_csv"]
    return readers[cfg.locations[codes[0]].confirmation_format]


@dataclass(frozen=True)
class Expected:
    """What a confirmation must agree with: its delivery as exported, and its location's carriers."""

    number: str  # "L000123"
    location: str
    order_id: str  # the channel's order id
    carrier: str  # as the delivery was exported ("" when none was eligible)
    service: str
    sent_at: datetime  # the export (the creation of a note never exported)
    products: tuple[tuple[str, str], ...]  # (carrier, service) of each product the location may use


def fit(c: Confirmation, e: Expected, now: datetime) -> dict[str, str]:
    """The carrier and service of ``c`` spelt as configured, when ``c`` fits the delivery ``e``:
    the same order, a carrier (and service, where given) the delivery or its location uses,
    and a ship date from a day before the export to now. Raises InputError naming the field."""
    where = c.where or "confirmation"
    if c.order_id and c.order_id.strip() != e.order_id:
        raise InputError(f"order {c.order_id!r} is not {e.order_id}, the order of {e.number}",
                         where=f"{where}:order_id")
    known = ([(e.carrier, e.service)] if e.carrier else []) + list(e.products)
    mine = [(carrier, service) for carrier, service in known if carrier.lower() == c.carrier.strip().lower()]
    if not mine:
        # Checked before Amazon sees it: whatever the file says becomes carrierCode otherwise.
        names = ", ".join(dict.fromkeys(carrier for carrier, _ in known))
        raise InputError(f"carrier {c.carrier!r} is not a carrier {e.location} ships with ({names})",
                         where=f"{where}:carrier")
    carrier, service = mine[0][0], ""
    if c.service:
        services = [s for _, s in mine if s.lower() == c.service.strip().lower()]
        if not services:
            offered = ", ".join(dict.fromkeys(s for _, s in mine))
            raise InputError(f"service {c.service!r} is not a {carrier} service {e.location} ships with "
                             f"({offered})", where=f"{where}:service")
        service = services[0]
    if c.shipped_at < e.sent_at - EXPORT_TOLERANCE:
        # It would become the date of supply on the invoice, and with it the VAT rate.
        raise InputError(f"shipped_at {c.shipped_at:%Y-%m-%d %H:%M} UTC is before {e.number} was sent to "
                         f"{e.location} ({e.sent_at:%Y-%m-%d %H:%M} UTC)", where=f"{where}:shipped_at")
    if c.shipped_at > now + FUTURE_TOLERANCE:
        raise InputError(f"shipped_at {c.shipped_at:%Y-%m-%d %H:%M} UTC is in the future", where=f"{where}:shipped_at")
    return {"carrier": carrier, "service": service}


def tracking_numbers(c: Confirmation) -> list[str]:
    """The tracking numbers of ``c``, each checked against the rules of its carrier; raises
    InputError naming the tracking_number field."""
    from carriers import tracking  # a pure rule over strings, shared with the formats
    numbers = []
    for n in c.tracking_numbers:
        try:
            numbers.append(tracking.validate(c.carrier, n))
        except InputError as exc:
            raise InputError(exc.message, where=f"{c.where or 'confirmation'}:tracking_number") from None
    return numbers


class Collector(inbound.ChannelReader):
    """Reads confirmation files from the return channels and applies them, file by file."""

    REJECTS = (InputError, DataError)
    WHAT = "confirmation file"

    def __init__(self, session: Session, cfg: Config, transport: Callable[[str], Transport],
                 readers: Mapping[str, ConfirmationReader], *, now: datetime | None = None):
        super().__init__(session, cfg, transport)
        self.readers = readers
        self.now = now or clock.now()

    def run(self, *, dry_run: bool = False, progress: Callable[[int], None] | None = None) -> CollectResult:
        """Read every return channel. A bad file is rejected alone; a channel that cannot be
        reached (RemoteError, ConfigError) is left for the next run, the others are still read."""
        r = CollectResult(dry_run=dry_run)
        self.read_all(r, dry_run=dry_run, progress=progress)
        return r

    def channels(self) -> dict[str, list[str]]:
        """The fulfillers' return channels (``return_channels``)."""
        return return_channels(self.cfg)

    def apply_file(self, tname: str, codes: list[str], name: str, content: bytes) -> _Collected:
        """A stock report or a file of confirmations, applied whole in the open savepoint."""
        if name.upper().startswith(STOCK_PREFIX):
            self._stock_report(name, content, tname, codes)
            return _Collected()
        tz = ZoneInfo(self.cfg.locations[codes[0]].timezone)
        confirmations = reader_for(name, codes, self.cfg, self.readers).read(name, content, tz)
        # Every value of the file first, then whether each confirmation fits its delivery: the
        # ticket names the first broken value wherever it is.
        for c in confirmations:
            tracking_numbers(c)
        return _Collected(len(confirmations), sum(self.apply(c, tname, codes) for c in confirmations))

    def _stock_report(self, name: str, content: bytes, tname: str, codes: Sequence[str]) -> None:
        """A fulfiller's stock file (formats.md §6 step 4) sets its on-hand figures, all or nothing."""
        reporting = [c for c in codes if self.cfg.locations[c].stock == "report"]
        if len(reporting) != 1:
            raise InputError(f"a stock file on {tname} must belong to exactly one location with stock = \"report\" "
                             f"(found {', '.join(reporting) or 'none'})", where=name)
        # read_stock checks every figure (ASCII digits, at most stock.MAX_ON_HAND) by line.
        text = csvfile.decode(content, name)
        result = stock.set_stock(self.s, reporting[0], stock.read_stock(name, text), self.cfg.locations)
        record(self.s, EventKind.CONFIRMATION, f"stock report {name} from {tname}: {result.rows} SKU(s) for "
                                               f"{reporting[0]}, {result.changed + result.new} changed")

    def apply(self, c: Confirmation, tname: str, codes: Sequence[str]) -> int:
        """Store one confirmation; returns the number of new parcels. Raises InputError naming the
        file, line and field when it does not fit the delivery (the caller rejects the file)."""
        where = c.where or "confirmation"
        note = self._delivery(c.delivery_id, where)
        if note.location not in codes:
            raise InputError(f"delivery {note.number} belongs to location {note.location}, which does not answer "
                             f"on {tname}", where=f"{where}:delivery_id")
        # From here on the carrier and service are spelt as configured, never as the file wrote them.
        c = replace(c, **fit(c, self._expected(note), self.now))
        numbers = tracking_numbers(c)
        known = {p.tracking_number for p in note.parcels}
        new_numbers = [n for n in numbers if n not in known]
        if not new_numbers:
            return 0  # the same confirmation again: nothing new
        if note.state not in WAITING_FOR_CONFIRMATION:
            raise InputError(f"delivery {note.number} is {note.state}; it takes no further parcels",
                             where=f"{where}:delivery_id")
        shipped = self._shipped_lines(note, c, where)
        parcels = self._parcels(note, c, new_numbers, shipped, where)
        for line, qty in shipped:
            line.shipped += qty
            stock.release(self.s, note.location, line.sku, qty, shipped=True)
        complete = note.open_quantity == 0
        target = D.CONFIRMED if complete else D.PARTIALLY_CONFIRMED
        note.confirmed_at = c.shipped_at
        why = (f"{len(parcels)} parcel(s) {c.carrier} {', '.join(new_numbers)} shipped "
               f"{c.shipped_at:%Y-%m-%d %H:%M} UTC ({where})")
        if note.state != target.value:
            transition_delivery(self.s, note, target, why)
        else:
            record(self.s, EventKind.CONFIRMATION, why, order=note.order, delivery=note)
        self._order_progress(note.order)
        if complete and not self._waits_for_channel(note):
            transition_delivery(self.s, note, D.SHIPPED, "nothing to confirm at the channel")
            note.shipped_at = self.now
        return len(parcels)

    def _delivery(self, number: str, where: str) -> DeliveryNote:
        """The delivery a confirmation names; the number is checked against our format before
        the database sees it. Raises InputError naming the delivery_id field."""
        text = number.strip().upper()
        if not DELIVERY_NUMBER.fullmatch(text):
            raise InputError(f"not a delivery number: {number!r} (expected {NUMBER_PREFIX} and digits 0-9, "
                             f"e.g. {NUMBER_PREFIX}000123)", where=f"{where}:delivery_id")
        did = record_id(text, NUMBER_PREFIX)  # None for more than any id holds
        note = self.s.get(DeliveryNote, did) if did else None
        if note is None:
            raise InputError(f"unknown delivery {number!r}", where=f"{where}:delivery_id")
        return note

    def _expected(self, note: DeliveryNote) -> Expected:
        loc = self.cfg.locations.get(note.location)
        products = [self.cfg.carriers[k] for k in (loc.carriers if loc else ()) if k in self.cfg.carriers]
        return Expected(number=note.number, location=note.location, order_id=note.order.external_id,
                        carrier=note.carrier, service=note.service, sent_at=note.exported_at or note.created_at,
                        products=tuple((p.carrier, p.service) for p in products))

    def _shipped_lines(self, note: DeliveryNote, c: Confirmation, where: str):
        if not c.lines:
            return [(ln, ln.quantity - ln.shipped) for ln in note.lines if ln.quantity > ln.shipped]
        out = []
        for cl in c.lines:
            left = cl.quantity
            for ln in note.lines:
                if ln.sku == cl.sku and ln.quantity > ln.shipped and left:
                    take = min(left, ln.quantity - ln.shipped)
                    out.append((ln, take))
                    left -= take
            if left:
                open_qty = sum(ln.quantity - ln.shipped for ln in note.lines if ln.sku == cl.sku)
                raise InputError(f"{cl.quantity} × {cl.sku} reported but only {open_qty} open on {note.number}",
                                 where=f"{where}:quantity")
        return out

    def _parcels(self, note: DeliveryNote, c: Confirmation, numbers: list[str], shipped, where: str):
        # Amazon wants the items of each package; a confirmation gives the units per delivery, so
        # units are dealt to the parcels in turn. A parcel left without a unit (one item in two
        # boxes) is stored but not confirmed separately at the channel.
        units = [ln for ln, qty in shipped for _ in range(qty)]
        order = note.order
        next_ref = 1 + (self.s.scalar(select(func.max(ShippedParcel.package_reference))
                                      .join(DeliveryNote, ShippedParcel.delivery_id == DeliveryNote.id)
                                      .where(DeliveryNote.order_id == order.id)) or 0)
        weights = list(c.weights_g) + [None] * len(c.tracking_numbers)
        all_numbers = list(c.tracking_numbers)
        made = []
        for i, number in enumerate(numbers):
            mine = units[i::len(numbers)]
            items: dict[str, list] = {}
            for ln in mine:
                entry = items.setdefault(ln.order_line.external_id, [ln.sku, 0, ln.order_line.external_id])
                entry[1] += 1
            parcel = ShippedParcel(delivery=note, package_reference=next_ref + i, carrier=c.carrier,
                                   service=c.service, tracking_number=number,
                                   weight_g=weights[all_numbers.index(number)] if number in all_numbers else None,
                                   items=[[sku, qty, item_id] for sku, qty, item_id in items.values()],
                                   shipped_at=c.shipped_at, source=where, created_at=self.now)
            self.s.add(parcel)
            made.append(parcel)
            if items and channels.get(order.channel).confirms_shipments:
                self._queue_channel_confirmation(order, note, parcel)
        self.s.flush()
        return made

    def _queue_channel_confirmation(self, order: Order, note: DeliveryNote, parcel: ShippedParcel) -> None:
        channel = channels.get(order.channel)
        item = channel.shipment_confirmation(self.cfg, order, note, parcel)
        enqueue(self.s, item.key, item.kind, item.target, item.payload)
        # The buyer's notice (only where the channel lets us mail its buyers): email:shipped:<order>:<package>.
        notices.notify(self.s, self.cfg, order, "shipped", key=f"shipped:{parcel.package_reference}", parcel=parcel,
                       tracking_url=tracking.tracking_url(parcel.carrier, parcel.tracking_number) or "")

    def _waits_for_channel(self, note: DeliveryNote) -> bool:
        return channels.get(note.order.channel).confirms_shipments and \
            any(p.items and p.channel_confirmed_at is None for p in note.parcels)

    def _order_progress(self, order: Order) -> None:
        notes = self.s.scalars(select(DeliveryNote).where(DeliveryNote.order_id == order.id,
                                                          DeliveryNote._state != D.CANCELLED.value)).all()
        done = all(n.open_quantity == 0 for n in notes)
        state = OrderState(order.state)
        if done and state in (OrderState.ROUTED, OrderState.PARTIALLY_SHIPPED):
            transition(self.s, order, OrderState.SHIPPED, "every delivery note reported shipped")
        elif not done and state is OrderState.ROUTED:
            transition(self.s, order, OrderState.PARTIALLY_SHIPPED, "some parcels have left")


def channel_confirmed(session: Session, msg, now: datetime) -> None:
    """Outbox follow-up: Amazon knows the parcel; a delivery with nothing left to tell is shipped."""
    note = session.get(DeliveryNote, msg.payload["delivery_id"])
    if note is None:
        return
    for p in note.parcels:
        if p.package_reference == msg.payload["package_reference"]:
            p.channel_confirmed_at = now
    if note.state == D.CONFIRMED.value and all(p.channel_confirmed_at or not p.items for p in note.parcels):
        note.shipped_at = now
        transition_delivery(session, note, D.SHIPPED,
                            f"{channels.get(note.order.channel).label} confirmed every parcel")


def file_uploaded(session: Session, msg, now: datetime) -> None:
    """Outbox follow-up: note on the delivery that its file arrived."""
    note = session.get(DeliveryNote, (msg.payload or {}).get("delivery_id") or 0)
    if note is not None:
        record(session, EventKind.EXPORTED, f"{msg.payload['name']} delivered to {msg.target}", order=note.order,
               delivery=note)


def cancel_deliveries(session: Session, order: Order, why: str) -> None:
    """The order was cancelled at the channel, or shipped without us (``why`` says which): its
    open notes are cancelled and their stock released; a note a location already has gets a
    ticket, because someone must stop the parcel."""
    # Locked and read afresh: an export holding a note finishes first, and then it counts as sent.
    notes = session.scalars(select(DeliveryNote).where(DeliveryNote.order_id == order.id)
                            .order_by(DeliveryNote.id).with_for_update(key_share=True)
                            .execution_options(populate_existing=True)).all()
    for note in notes:
        if note.state in (D.CREATED.value, D.EXPORTED.value, D.OVERDUE.value):
            was = note.state
            for line in note.lines:
                stock.release(session, note.location, line.sku, line.quantity - line.shipped)
            transition_delivery(session, note, D.CANCELLED, f"{why}; reservation released")
            if was != D.CREATED.value:
                _ticket_once(session, note, "stop_delivery",
                             f"{note.number} was sent to {note.location} ({note.file_name}) before this news "
                             f"({why}): ask {note.location} not to ship it")
        elif note.state == D.PARTIALLY_CONFIRMED.value:
            _ticket_once(session, note, "stop_delivery",
                         f"{note.number} at {note.location} is partly shipped, and now {why}: "
                         f"stop the rest ({note.open_quantity} piece(s))")


# --- deadlines ------------------------------------------------------------------------------------


@dataclass
class OverdueResult:
    overdue: list[str] = field(default_factory=list)  # delivery numbers newly overdue
    tickets: int = 0
    dry_run: bool = False

    def as_dict(self) -> dict:
        return {"overdue": self.overdue, "tickets": self.tickets, "dry_run": self.dry_run}


def overdue(session: Session, cfg: Config, *, now: datetime | None = None, dry_run: bool = False) -> OverdueResult:
    """Every exported or partly confirmed note past its deadline becomes overdue, with a ticket."""
    now = now or clock.now()
    r = OverdueResult(dry_run=dry_run)
    notes = session.scalars(select(DeliveryNote).where(
        DeliveryNote._state.in_([D.EXPORTED.value, D.PARTIALLY_CONFIRMED.value]),
        DeliveryNote.deadline_at < now).order_by(DeliveryNote.deadline_at)
        .with_for_update(of=DeliveryNote, skip_locked=True, key_share=True)).all()
    for note in notes:
        r.overdue.append(note.number)
        if dry_run:
            continue
        what = "no confirmation" if note.state == D.EXPORTED.value else f"{note.open_quantity} piece(s) still open"
        text = (f"{note.number} ({note.order.external_id}) at {note.location}: {what} since "
                f"{note.exported_at:%Y-%m-%d %H:%M} UTC; deadline was {note.deadline_at:%Y-%m-%d %H:%M} UTC. "
                f"Ask the location; a late confirmation is still applied.")
        transition_delivery(session, note, D.OVERDUE, text)
        _ticket_once(session, note, "overdue", text)
        r.tickets += 1
    if not dry_run:
        session.commit()
    return r
