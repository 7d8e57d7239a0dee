"""What must hold after any business day, however it was run: one command after another, killed
at random (bench/chaos.py), or by several runners at once (tests/e2e/test_parallel_jobs.py).

Each check is a function that looks in the database and, where the promise is about the outside
world, at the stand-ins, and returns its problems as one line each (an empty list: it holds).
``check_all`` runs every check that applies to a :class:`World` and returns them by name:

- ``orders_imported_once``: every order id the Amazon stand-in generated is stored once;
- ``orders_routed_once``: no order line is on more live (not cancelled) delivery lines than it
  ordered, and no order was moved to routed twice;
- ``notes_exported_once``: no delivery note was moved to exported twice, and each file name has
  one outbox message;
- ``stock_reserved_as_notes_say``: per location and SKU, ``reserved`` is the open quantity
  (ordered less shipped) of the notes still open (created, exported, overdue, partially
  confirmed), and never more than on hand;
- ``outbox_sent_once``: no outbox message was completed (sent, or found at the other side) twice;
- ``files_uploaded_once``: every file at a location's folders (inbox and the done/error folders it
  moves read files to, where a second copy gets a ``.1`` suffix) arrived once, the locations never
  read an order for a delivery they already had, and every upload the outbox marked done is there;
- ``emails_sent_once``: the SMTP stand-in received each Message-ID and each subject once;
- ``shipments_confirmed_once``: confirmShipment reached Amazon once per (order, package
  reference) (:class:`ConfirmCalls`; Amazon answers an identical repeat like the first and keeps
  no trace of it), and each (order, tracking number) is confirmed once;
- ``invoiced_once``: each order has at most one invoice (``[invoices] per = "order"``), and every
  invoice of an order we shipped still has the delivery notes it invoiced (a note invoiced twice
  leaves one without; an FBA order's invoice has none);
- ``invoices_uploaded_once``: the Amazon stand-in received each (order, invoice number) once;
- ``invoice_numbers_gap_free``: per series and year the numbers are 1..n, each once, and the
  counter row says n;
- ``review_requests_recorded``: every order Amazon sent a review request for was asked once and
  is recorded as sent;
- ``books_balance`` (when a bookings export is given): the bookings ``caturactl.accounting.exporting.entries``
  computes each move a positive amount between two accounts, add up to zero, match each
  invoice's gross total, and were exported once, every one in the file.
"""

from __future__ import annotations

import re
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from caturactl.accounting import exporting
from caturactl.fulfilment import shipping
from caturactl.config import Config
from caturactl.outbox.models import OutboxMessage
from caturactl.accounting.models import ExportBatch
from caturactl.billing.models import Invoice, InvoiceCounter, ReviewRequest
from caturactl.fulfilment.models import DeliveryLine, DeliveryNote, Stock
from caturactl.orders.models import Order, OrderLine
from caturactl.core.events import Event
from caturactl.core.events import EventKind
from caturactl.billing.models import INVOICE
from caturactl.core.lifecycle import DeliveryState

OPEN_NOTES = (DeliveryState.CREATED.value, DeliveryState.EXPORTED.value, DeliveryState.OVERDUE.value,
              DeliveryState.PARTIALLY_CONFIRMED.value)
_SECOND_COPY = re.compile(r"\.\d+$")  # standins/fulfiller.py _move: "NAME.1" when NAME was there
_TEMP_SUFFIXES = (".part", ".tmp", ".filepart")


class ConfirmCalls:
    """Every confirmShipment that reached the Amazon stand-in's marketplace, per (order, package
    reference). The stand-in answers an identical repeat like the first call and records it
    nowhere, so a confirmation sent twice shows only here. Attach before the day starts."""

    def __init__(self, standin) -> None:
        self.calls: Counter = Counter()
        self._lock = threading.Lock()
        confirm = standin.marketplace.confirm_shipment

        def counted(order_id: str, request: dict[str, Any]):
            with self._lock:
                self.calls[(order_id, request["packageReferenceId"])] += 1
            return confirm(order_id, request)

        standin.marketplace.confirm_shipment = counted


@dataclass
class World:
    """What the outside world saw: the Amazon stand-in, each folder a location reads (transport
    name -> its root, files arrive in ``root/in``), the mails the SMTP stand-in received, how often
    the locations read an order they already had, and the confirmShipment calls."""

    standin: Any
    folders: dict[str, Path] = field(default_factory=dict)
    mails: list | None = None  # None: no SMTP server in this world
    read_twice: int = 0
    confirm_calls: ConfirmCalls | None = None


def verdict(problems: list[str]) -> str:
    return "ok" if not problems else "FAILED (" + "; ".join(problems) + ")"


def twice(counter: Counter) -> list:
    return sorted(k for k, n in counter.items() if n > 1)


def files_at(root: Path) -> tuple[Counter, int]:
    """Names of the files that reached a location's inbox (read ones included), and how many
    temporary upload names were left behind."""
    names: Counter = Counter()
    temps = 0
    inbox = root / "in"
    for folder in (inbox, inbox / "done", inbox / "error"):
        if not folder.is_dir():
            continue
        for f in folder.iterdir():
            if not f.is_file():
                continue
            if f.name.startswith(".") or f.name.endswith(_TEMP_SUFFIXES):
                temps += f.name.endswith(_TEMP_SUFFIXES)
                continue
            names[f.name if folder == inbox else _SECOND_COPY.sub("", f.name)] += 1
    return names, temps


# --- the database ---------------------------------------------------------------------------------


def orders_imported_once(s: Session, amazon_ids: list[str], *, all_due: bool = True) -> list[str]:
    """Each stored order is one of ``amazon_ids``, once; with ``all_due`` every one of them is stored."""
    rows = s.execute(select(Order.external_id, func.count()).where(Order.channel == "amazon")
                     .group_by(Order.external_id)).all()
    ours, want = {e for e, _ in rows}, set(amazon_ids)
    problems = []
    if dup := sorted(e for e, n in rows if n > 1):
        problems.append(f"{len(dup)} imported more than once, e.g. {dup[:3]}")
    if all_due and (missing := sorted(want - ours)):
        problems.append(f"{len(missing)} missing, e.g. {missing[:3]}")
    if extra := sorted(ours - want):
        problems.append(f"{len(extra)} unknown to Amazon, e.g. {extra[:3]}")
    return problems


def orders_routed_once(s: Session) -> list[str]:
    problems = []
    over = s.execute(
        select(Order.external_id, OrderLine.sku, OrderLine.quantity, func.sum(DeliveryLine.quantity))
        .join(DeliveryLine, DeliveryLine.order_line_id == OrderLine.id)
        .join(DeliveryNote, DeliveryNote.id == DeliveryLine.delivery_id)
        .join(Order, Order.id == OrderLine.order_id)
        .where(DeliveryNote._state != DeliveryState.CANCELLED.value)
        .group_by(Order.external_id, OrderLine.id, OrderLine.sku, OrderLine.quantity)
        .having(func.sum(DeliveryLine.quantity) > OrderLine.quantity)).all()
    if over:
        problems.append(f"{len(over)} order line(s) on more live delivery lines than ordered (order, sku, "
                        f"ordered, on notes), e.g. {[tuple(r) for r in over[:3]]}")
    routed = s.execute(select(Order.external_id, func.count()).join(Event, Event.order_id == Order.id)
                       .where(Event.kind == EventKind.STATE_CHANGED.value, Event.delivery_id.is_(None),
                              Event.to_state == "routed")
                       .group_by(Order.external_id).having(func.count() > 1)).all()
    if routed:
        problems.append(f"{len(routed)} order(s) moved to routed more than once, e.g. {routed[:3]}")
    return problems


def notes_exported_once(s: Session) -> list[str]:
    problems = []
    twice_exported = s.execute(select(Event.delivery_id, func.count())
                               .where(Event.kind == EventKind.STATE_CHANGED.value,
                                      Event.delivery_id.is_not(None), Event.to_state == DeliveryState.EXPORTED.value)
                               .group_by(Event.delivery_id).having(func.count() > 1)).all()
    if twice_exported:
        problems.append(f"{len(twice_exported)} delivery note(s) moved to exported more than once (note id, "
                        f"times), e.g. {twice_exported[:3]}")
    names: Counter = Counter()
    for target, payload in s.execute(select(OutboxMessage.target, OutboxMessage.payload)
                                     .where(OutboxMessage.kind == shipping.UPLOAD)):
        names[(target, payload["name"])] += 1
    if dup := twice(names):
        problems.append(f"{len(dup)} file name(s) with more than one outbox message, e.g. {dup[:3]}")
    return problems


def stock_reserved_as_notes_say(s: Session) -> list[str]:
    open_qty: Counter = Counter()
    for location, sku, qty in s.execute(
            select(DeliveryNote.location, DeliveryLine.sku, func.sum(DeliveryLine.quantity - DeliveryLine.shipped))
            .join(DeliveryLine, DeliveryLine.delivery_id == DeliveryNote.id)
            .where(DeliveryNote._state.in_(OPEN_NOTES))
            .group_by(DeliveryNote.location, DeliveryLine.sku)):
        open_qty[(location, sku)] += int(qty or 0)
    reserved, oversold = {}, []
    for location, sku, on_hand, held in s.execute(select(Stock.location, Stock.sku, Stock.on_hand, Stock.reserved)):
        reserved[(location, sku)] = held
        if held > on_hand:
            oversold.append((location, sku, on_hand, held))
    wrong = sorted((k, reserved.get(k, 0), open_qty.get(k, 0)) for k in set(reserved) | set(open_qty)
                   if reserved.get(k, 0) != open_qty.get(k, 0))
    problems = []
    if wrong:
        problems.append(f"{len(wrong)} stock row(s) whose reserved differs from the open notes' quantity "
                        f"((location, sku), reserved, open), e.g. {wrong[:3]}")
    if oversold:
        problems.append(f"{len(oversold)} stock row(s) with more reserved than on hand (location, sku, on hand, "
                        f"reserved), e.g. {oversold[:3]}")
    return problems


def outbox_sent_once(s: Session) -> list[str]:
    """A completion is the event Sender._done writes ("KIND KEY how"); 'outbox retry' writes the
    same kind of event starting with the key, which is not one. A problem names, for a few of the
    messages completed twice, who completed them when (the actor: the job or command)."""
    keys = dict(s.execute(select(OutboxMessage.id, OutboxMessage.kind + " " + OutboxMessage.key)).all())
    done: dict[int, list[str]] = defaultdict(list)
    found: Counter = Counter()
    for why, data, actor, at in s.execute(select(Event.why, Event.data, Event.actor, Event.at)
                                          .where(Event.kind == EventKind.OUTBOX_SENT.value).order_by(Event.id)):
        mid = (data or {}).get("outbox")
        if mid in keys and why.startswith(keys[mid] + " "):
            found[mid] += bool((data or {}).get("found"))
            done[mid].append(f"{actor} at {at:%H:%M:%S}" + (" (found there)" if (data or {}).get("found") else ""))
    dup = sorted(m for m, by in done.items() if len(by) > 1)
    if not dup:
        return []
    return [(f"{len(dup)} outbox message(s) completed more than once, {sum(found[m] for m in dup)} of those "
             f"completions 'found at the other side', e.g. "
             + "; ".join(f"{keys[m]}: {', '.join(done[m])}" for m in dup[:3]))]


def invoiced_once(s: Session, cfg: Config) -> list[str]:
    problems = []
    if cfg.invoices.per == "order":
        many = s.execute(select(Order.external_id, func.count()).join(Invoice, Invoice.order_id == Order.id)
                         .where(Invoice.kind == INVOICE).group_by(Order.external_id)
                         .having(func.count() > 1)).all()
        if many:
            problems.append(f"{len(many)} order(s) with more than one invoice, e.g. {many[:3]}")
    # An FBA order's invoice has no notes (Amazon shipped it); any other invoice has at least one.
    noteless = s.scalars(select(Invoice.number).join(Order, Order.id == Invoice.order_id).where(
        Invoice.kind == INVOICE, Order.fulfilled_by != "AMAZON", ~select(DeliveryNote.id).where(
            DeliveryNote.invoice_id == Invoice.id).exists()).order_by(Invoice.number)).all()
    if noteless:
        problems.append(f"{len(noteless)} invoice(s) no delivery note points to (its notes were invoiced again), "
                        f"e.g. {noteless[:3]}")
    return problems


def invoice_numbers_gap_free(s: Session) -> list[str]:
    problems = []
    series: dict[tuple[str, int], list[int]] = defaultdict(list)
    for prefix, year, seq in s.execute(select(Invoice.series, Invoice.year, Invoice.seq)):
        series[(prefix, year)].append(seq)
    for (prefix, year), seqs in sorted(series.items()):
        if sorted(seqs) != list(range(1, len(seqs) + 1)):
            gaps = sorted(set(range(1, max(seqs) + 1)) - set(seqs))
            problems.append(f"{prefix}{year}: {len(seqs)} numbers up to {max(seqs)}, missing {gaps[:5]}, "
                            f"twice {twice(Counter(seqs))[:5]}")
        last = s.scalar(select(InvoiceCounter.last).where(InvoiceCounter.series == prefix,
                                                          InvoiceCounter.year == year))
        if last != max(seqs):
            problems.append(f"{prefix}{year}: counter at {last}, highest number {max(seqs)}")
    if dup := twice(Counter(s.scalars(select(Invoice.number)))):
        problems.append(f"numbers used twice: {dup[:3]}")
    return problems


def books_balance(s: Session, cfg: Config, date_from: date, date_to: date, folder: Path) -> list[str]:
    """The period's bookings, and its one export (the file in ``folder``)."""
    problems = []
    entries = exporting.entries(s, cfg, date_from, date_to)
    balance: Counter = Counter()
    for e in entries:
        if not (e.amount > 0 and e.debit and e.credit and e.debit != e.credit):
            problems.append(f"booking {e.document} moves {e.amount} from {e.credit!r} to {e.debit!r}")
        balance[e.debit] += e.amount
        balance[e.credit] -= e.amount
    if sum(balance.values(), Decimal(0)) != 0:
        problems.append(f"debits and credits differ by {sum(balance.values(), Decimal(0))}")
    booked: Counter = Counter()
    for e in entries:
        booked[e.document] += e.amount
    for number, gross in s.execute(select(Invoice.number, Invoice.gross_total)
                                   .where(Invoice.issue_date >= date_from, Invoice.issue_date <= date_to)):
        if booked[number] != abs(gross):
            problems.append(f"invoice {number}: gross {gross}, booked {booked[number]}")
    batches = s.scalars(select(ExportBatch).where(ExportBatch.kind == "bookings")).all()
    if len(batches) != 1:
        problems.append(f"{len(batches)} bookings exports recorded, expected 1")
    for b in batches:
        total = sum((e.amount for e in entries), Decimal(0))
        if b.rows != len(entries) or b.total != total:
            problems.append(f"export {b.file_name}: {b.rows} rows / {b.total}, the books say "
                            f"{len(entries)} / {total}")
        lines = (folder / b.file_name).read_bytes().split(b"\r\n")
        written = len([ln for ln in lines if ln.strip()]) - 2  # the two DATEV header lines
        if written != len(entries):
            problems.append(f"{b.file_name} holds {written} bookings, the books {len(entries)}")
    return problems


# --- the outside world ------------------------------------------------------------------------------


def files_uploaded_once(s: Session, folders: dict[str, Path], read_twice: int) -> list[str]:
    problems = []
    for target, root in folders.items():
        names, _ = files_at(root)
        if dup := twice(names):
            problems.append(f"{target}: {len(dup)} file(s) arrived twice, e.g. {dup[:3]}")
        done = [payload["name"] for payload in s.scalars(
            select(OutboxMessage.payload).where(OutboxMessage.kind == shipping.UPLOAD, OutboxMessage.target == target,
                                                OutboxMessage.status == "done"))]
        if lost := sorted(set(done) - set(names)):
            problems.append(f"{target}: {len(lost)} upload(s) marked done but not there, e.g. {lost[:3]}")
    if read_twice:
        problems.append(f"the locations read {read_twice} order(s) for a delivery they had")
    return problems


def emails_sent_once(mails: list) -> list[str]:
    problems = []
    ids = Counter(str(m["Message-ID"]) for m in mails)
    subjects = Counter(str(m["Subject"]) for m in mails)
    if dup := twice(ids):
        problems.append(f"{len(dup)} Message-ID(s) received more than once, e.g. {[(d, ids[d]) for d in dup[:3]]}")
    if dup := twice(subjects):
        problems.append(f"{len(dup)} subject(s) received more than once, e.g. {dup[:3]}")
    return problems


def shipments_confirmed_once(parcels: list[dict], calls: ConfirmCalls | None) -> list[str]:
    problems = []
    if calls is not None and (dup := twice(calls.calls)):
        problems.append(f"{len(dup)} package(s) confirmed at Amazon more than once ((order, package), calls), "
                        f"e.g. {[(d, calls.calls[d]) for d in dup[:3]]}")
    if dup := twice(Counter((p["orderId"], p["packageReferenceId"]) for p in parcels)):
        problems.append(f"{len(dup)} package reference(s) confirmed twice, e.g. {dup[:3]}")
    if dup := twice(Counter((p["orderId"], p["trackingNumber"]) for p in parcels)):
        problems.append(f"{len(dup)} tracking number(s) confirmed twice, e.g. {dup[:3]}")
    return problems


def invoices_uploaded_once(uploads: list[dict]) -> list[str]:
    statuses: dict[tuple[str, str], list[str]] = defaultdict(list)
    for u in uploads:
        statuses[(u["order_id"], u["invoice_number"])].append(f"{u['status']} (feed {u['feed_id']})")
    dup = [(k, v) for k, v in statuses.items() if len(v) > 1]
    return [(f"{len(dup)} invoice(s) uploaded more than once (order, number, Amazon's status of each upload), "
             f"e.g. {[(*k, v) for k, v in dup[:3]]}")] if dup else []


def review_requests_recorded(s: Session, solicitations: list[dict]) -> list[str]:
    problems = []
    asked = Counter(r["order_id"] for r in solicitations)
    if dup := twice(asked):
        problems.append(f"{len(dup)} order(s) asked twice, e.g. {dup[:3]}")
    status = dict(s.execute(select(Order.external_id, ReviewRequest.status)
                            .join(ReviewRequest, ReviewRequest.order_id == Order.id)).all())
    wrong = sorted(o for o in asked if status.get(o) != "sent")
    if wrong:
        problems.append(f"{len(wrong)} sent by Amazon but recorded as "
                        f"{sorted(Counter(status.get(o, 'missing') for o in wrong).items())}, e.g. {wrong[:3]}")
    return problems


def check_all(s: Session, cfg: Config, world: World, *, day_over: bool = True,
              bookings: tuple[date, date, Path] | None = None) -> dict[str, list[str]]:
    """Every check that applies to ``world`` (see the module docstring), by name. Before the day
    is over (``day_over`` False) Amazon has orders not yet imported; ``bookings`` (first day, last
    day, the folder the file went to) adds ``books_balance``."""
    standin = world.standin
    checks = {
        "orders_imported_once": orders_imported_once(s, standin.order_ids(), all_due=day_over),
        "orders_routed_once": orders_routed_once(s),
        "notes_exported_once": notes_exported_once(s),
        "stock_reserved_as_notes_say": stock_reserved_as_notes_say(s),
        "outbox_sent_once": outbox_sent_once(s),
        "files_uploaded_once": files_uploaded_once(s, world.folders, world.read_twice),
    }
    if world.mails is not None:
        checks["emails_sent_once"] = emails_sent_once(world.mails)
    checks["shipments_confirmed_once"] = shipments_confirmed_once(standin.shipments(), world.confirm_calls)
    checks["invoiced_once"] = invoiced_once(s, cfg)
    checks["invoices_uploaded_once"] = invoices_uploaded_once(standin.invoices())
    checks["invoice_numbers_gap_free"] = invoice_numbers_gap_free(s)
    checks["review_requests_recorded"] = review_requests_recorded(s, standin.solicitations())
    if bookings is not None:
        checks["books_balance"] = books_balance(s, cfg, *bookings)
    return checks
