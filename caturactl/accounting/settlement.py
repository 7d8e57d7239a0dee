"""Settlement: a channel's payout report reconciled against our invoices, to the cent.

A settlement file is read once: every line is checked, the lines are checked against the
header's total, the money is summed per order and the bytes are hashed in the same pass; only a
file that passes all of that is reconciled and stored, in one transaction: a file with one bad
line stores nothing. What is kept in memory is one sum per order and kind, not the lines.
Money is sorted into kinds: what buyers paid for an order (price, tax, shipping, promotions),
what was refunded, the channel's fees, the reserve it holds back, and other transactions. Order
money is matched to the order's invoices and refunds to its credit notes by the channel's order
id; whatever does not match becomes a listed difference with its reason (no invoice yet, invoiced
by the channel itself, amount differs by X, unknown order, refund without credit note). The
channel reads its own file format (``SalesChannel.summarise_settlement``). Nothing is rounded away: the
settlement's total is exactly sales + refunds + fees + reserve + other + differences. Invoices
whose money arrived exactly are marked paid with the deposit date.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from contextlib import nullcontext
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Collection, Iterator

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.orm import Session

from caturactl import channels
from caturactl.core.errors import InputError, NotFoundError
from caturactl.accounting.models import Settlement, SettlementDifference
from caturactl.billing.models import Invoice
from caturactl.orders.models import Order
from caturactl.core.events import EventKind, record
from caturactl.core.money import from_cents
from caturactl.billing.models import CREDIT_NOTE, INVOICE
from caturactl.accounting.models import SettlementFee
from caturactl.views.cockpit import record_id

ZERO = Decimal(0)
BUYER_MONEY = frozenset({"ItemPrice", "Promotion"})


def kind_of(transaction_type: str, amount_type: str, description: str) -> str:
    """"sale", "refund", "fee", "reserve" or "other" for one settlement line."""
    if "reserve" in description.lower():
        return "reserve"
    if amount_type in BUYER_MONEY and transaction_type == "Order":
        return "sale"
    if amount_type in BUYER_MONEY and transaction_type == "Refund":
        return "refund"
    if amount_type in ("ItemFees", "ItemWithheldTax") or transaction_type == "ServiceFee":
        return "fee"
    return "other"


@dataclass
class Reconciliation:
    """What one settlement comes to, before it is stored (pure result of ``reconcile``)."""

    sales: Decimal = ZERO
    refunds: Decimal = ZERO
    fees: Decimal = ZERO
    reserve: Decimal = ZERO
    other: Decimal = ZERO
    differences: list[tuple[str, str, Decimal, Decimal, Decimal | None, str]] = field(default_factory=list)
    paid_orders: list[str] = field(default_factory=list)  # orders whose invoices got their money exactly
    channel_invoiced: list[str] = field(default_factory=list)  # the channel issued the documents (Amazon's VCS)

    @property
    def differences_total(self) -> Decimal:
        return sum((d[2] for d in self.differences), ZERO)

    @property
    def total(self) -> Decimal:
        return self.sales + self.refunds + self.fees + self.reserve + self.other + self.differences_total


UNKNOWN_ORDER = "order not in caturactl (sold outside it, or not imported)"
NO_INVOICE_YET = "no invoice for the order yet"


def reconcile(per_order_sales: dict[str, Decimal], per_order_refunds: dict[str, Decimal],
              fees: Decimal, reserve: Decimal, other: Decimal, known_orders: set[str],
              invoiced: dict[str, Decimal], credited: dict[str, Decimal], *,
              channel_invoiced: Collection[str] = frozenset(), label: str = "The channel") -> Reconciliation:
    """Match order money to invoices and refunds to credit notes (pure); see the module docstring.

    Reconciling disjoint sets of orders separately and adding the results up is the same as
    reconciling them together (``import_file`` does it in chunks). ``channel_invoiced``: known
    orders whose invoices and credit notes the channel issues (``SalesChannel.issues_invoices``):
    their money is what the channel's own documents say, matched as such, not a difference.
    ``label`` names the channel in the reasons.
    """
    r = Reconciliation(fees=fees, reserve=reserve, other=other)
    for order_id, settled in sorted(per_order_sales.items()):
        if order_id not in known_orders:
            r.differences.append((order_id, "unknown_order", settled, settled, None, UNKNOWN_ORDER))
        elif order_id in channel_invoiced and order_id not in invoiced:
            r.sales += settled
            r.channel_invoiced.append(order_id)
        elif order_id not in invoiced:
            r.differences.append((order_id, "no_invoice", settled, settled, None, NO_INVOICE_YET))
        else:
            expected = invoiced[order_id]
            r.sales += expected
            if settled == expected:
                r.paid_orders.append(order_id)
            else:
                r.differences.append((order_id, "amount_differs", settled - expected, settled, expected,
                                      f"{label} settled {settled}, invoiced {expected}: differs by "
                                      f"{settled - expected}"))
    for order_id, settled in sorted(per_order_refunds.items()):
        credit = credited.get(order_id)
        if credit is None and order_id in channel_invoiced:
            r.refunds += settled  # the channel's own credit note covers it
        elif credit is None:
            r.differences.append((order_id, "refund_without_credit_note", settled, settled, None,
                                  f"{label} refunded the buyer; no credit note (Rechnungskorrektur) yet"))
        else:
            r.refunds -= credit  # refunds are negative money, credit notes positive documents
            if settled != -credit:
                r.differences.append((order_id, "refund_differs", settled + credit, settled, -credit,
                                      f"{label} refunded {-settled}, credited {credit}: differs by "
                                      f"{-(settled + credit)}"))
    return r


@dataclass
class ImportResult:
    settlement_id: str = ""
    lines: int = 0
    total: Decimal = ZERO
    duplicate: bool = False
    paid: int = 0
    channel_invoiced: int = 0  # orders the channel invoiced itself, matched as such
    differences: int = 0
    differences_total: Decimal = ZERO
    dry_run: bool = False
    # The fees and other charges per "transaction-type/amount-type/amount-description", summed:
    # what the bookings map to accounts (caturactl.accounting.bookings.fee_booking).
    fee_totals: list[tuple[str, Decimal]] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"settlement_id": self.settlement_id, "lines": self.lines, "total": str(self.total),
                "duplicate": self.duplicate, "invoices_paid": self.paid,
                "channel_invoiced": self.channel_invoiced,
                "differences": self.differences,
                "differences_total": str(self.differences_total), "dry_run": self.dry_run}


PER_ORDER = frozenset({"sale", "refund"})  # the kinds matched order by order
INSERT_BATCH = 5000  # difference rows per executemany


def _per_order_kind(transaction_type: str, amount_type: str, description: str) -> str | None:
    kind = kind_of(transaction_type, amount_type, description)
    return kind if kind in PER_ORDER else None


def import_file(session: Session, path: Path, *, dry_run: bool = False, chunk_size: int = 500,
                invoiced_by_channel: bool = False, channel: channels.SalesChannel | None = None) -> ImportResult:
    """Check, reconcile and store a settlement file of ``channel`` (default: the one that provides
    settlements) in the caller's transaction (the caller commits); raises InputError naming
    file:line:column, nothing stored. A settlement already stored (a channel may repeat
    settlements across reports) is recognised and not stored again. ``invoiced_by_channel``: the
    channel issues the invoices of its orders (``SalesChannel.issues_invoices``).

    The file is read once (checked, summed per order and hashed together); our books are asked
    ``chunk_size`` orders at a time, and what is stored is written in bulk.
    """
    channel = channel or channels.settling()
    name = path.name
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            summary = channel.summarise_settlement(f, name, per_order=_per_order_kind, digest=digest)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", where=str(path)) from None
    header = summary.header
    r = ImportResult(settlement_id=header.settlement_id, lines=summary.lines, total=header.total_amount,
                     dry_run=dry_run)
    if session.scalar(select(Settlement.id).where(Settlement.settlement_id == header.settlement_id)):
        r.duplicate = True
        return r
    totals = {"sale": ZERO, "refund": ZERO, "fee": ZERO, "reserve": ZERO, "other": ZERO}
    by_type: dict[str, Decimal] = defaultdict(Decimal)
    fee_totals: dict[str, Decimal] = defaultdict(Decimal)  # fees and other, each booked on its account
    for (transaction_type, amount_type, description), t in summary.by_type.items():
        kind = kind_of(transaction_type, amount_type, description)
        totals[kind] += t.amount
        key = f"{transaction_type}/{amount_type}/{description}"
        by_type[key] += t.amount
        if kind in ("fee", "other"):
            fee_totals[key] += t.amount
    r.fee_totals = sorted(fee_totals.items())
    sales = summary.per_order_cents.get("sale", {})
    refunds = summary.per_order_cents.get("refund", {})
    fees, reserve, other = totals["fee"], totals["reserve"], totals["other"]
    sales_total = refunds_total = differences_total = ZERO
    paid = differences = 0
    # A savepoint, so that a settlement that does not add up (the assertion below) leaves nothing
    # behind even in a transaction the caller goes on to commit.
    with nullcontext() if dry_run else session.begin_nested():
        st = None
        if not dry_run:
            st = Settlement(settlement_id=header.settlement_id, start=header.start, end=header.end,
                            deposit_date=header.deposit_date, currency=header.currency,
                            total_amount=header.total_amount, lines=summary.lines, sales=ZERO, refunds=ZERO,
                            fees=fees, reserve=reserve, other=other, differences_total=ZERO,
                            by_type={k: str(v) for k, v in sorted(by_type.items())}, file_name=name,
                            sha256=digest.hexdigest())
            session.add(st)
            session.flush()  # its id, for the differences and the fees
            if r.fee_totals:
                session.execute(insert(SettlementFee), [{"settlement_pk": st.id, "description": key, "amount": amount}
                                                        for key, amount in r.fee_totals])
        # Core on the session's connection (same transaction): rows as ORM objects cost more than
        # all the rest together, and session.execute adds about a millisecond a call.
        conn = session.connection()
        pending: list[dict] = []  # difference rows not yet written
        settlement_pk = st.id if st is not None else None
        for part, unpaid in _reconciled(conn, sales, refunds, chunk_size, channel_invoices=invoiced_by_channel,
                                        label=channel.label):
            sales_total += part.sales
            refunds_total += part.refunds
            differences_total += part.differences_total
            paid += len(part.paid_orders)
            r.channel_invoiced += len(part.channel_invoiced)
            differences += len(part.differences)
            if st is None:
                continue
            pending.extend({"settlement_pk": settlement_pk, "order_id": order_id, "kind": kind, "amount": amount,
                            "settled": settled, "expected": expected, "reason": reason}
                           for order_id, kind, amount, settled, expected, reason in part.differences)
            if len(pending) >= INSERT_BATCH:
                conn.execute(insert(SettlementDifference.__table__), pending)
                pending.clear()
            if unpaid:  # through the session, so that invoices it holds learn that they are paid
                session.execute(update(Invoice).where(Invoice.id.in_(unpaid), Invoice.paid_at.is_(None))
                                .values(paid_at=header.deposit_date))
        if pending:
            conn.execute(insert(SettlementDifference.__table__), pending)
        reconciled = sales_total + refunds_total + fees + reserve + other + differences_total
        if reconciled != header.total_amount:  # cannot happen unless the rules lose money: say so loudly
            raise AssertionError(f"settlement {header.settlement_id}: reconciled {reconciled} != "
                                 f"{header.total_amount}")
        r.paid, r.differences, r.differences_total = paid, differences, differences_total
        if st is not None:
            st.sales, st.refunds, st.differences_total = sales_total, refunds_total, differences_total
            record(session, EventKind.INVOICED, f"settlement {header.settlement_id} imported: "
                   f"{header.total_amount} {header.currency}, {paid} order(s) paid, {differences} "
                   f"difference(s) ({differences_total})", data={"settlement": header.settlement_id})
            session.flush()
    return r


def _reconciled(conn: Connection, sales: dict[str, int | Decimal], refunds: dict[str, int | Decimal],
                chunk_size: int, *, channel_invoices: bool = False,
                label: str = "The channel") -> Iterator[tuple[Reconciliation, list[int]]]:
    """Every order with money in the settlement (sums in cents), ``chunk_size`` at a time, in the
    order of the file: what ``reconcile`` makes of them, and the ids of the unpaid invoices of
    those paid exactly (fees, reserve and other are the caller's). ``channel_invoices``: the
    channel issues the invoices of every order of its."""
    order_ids = list(sales)
    order_ids.extend(o for o in refunds if o not in sales)
    for start in range(0, len(order_ids), chunk_size):
        chunk = order_ids[start:start + chunk_size]
        books = _books(conn, chunk)
        part = reconcile({o: from_cents(sales[o]) for o in chunk if o in sales},
                         {o: from_cents(refunds[o]) for o in chunk if o in refunds},
                         ZERO, ZERO, ZERO, books.known, books.invoiced, books.credited,
                         channel_invoiced=books.known if channel_invoices else frozenset(), label=label)
        yield part, [i for o in part.paid_orders for i in books.unpaid_invoices.get(o, ())]


@dataclass
class _Books:
    """What our books say about some orders of the settling channel."""

    known: set[str] = field(default_factory=set)
    invoiced: dict[str, Decimal] = field(default_factory=dict)
    credited: dict[str, Decimal] = field(default_factory=dict)
    unpaid_invoices: dict[str, list[int]] = field(default_factory=dict)  # order id -> invoice ids


# One query for some orders and their invoices and credit notes: columns, not objects (an
# invoice row carries its PDF). channel first: the (channel, external_id) unique index answers it.
_BOOKS = (select(Order.external_id, Invoice.id, Invoice.kind, Invoice.gross_total,
                 Invoice.paid_at)
          .outerjoin(Invoice, Invoice.order_id == Order.id)
          .where(Order.channel.in_(bindparam("channels", expanding=True)),
                 Order.external_id.in_(bindparam("ids", expanding=True))))


CENT = Decimal("0.01")


def _books(conn: Connection, order_ids: list[str]) -> _Books:
    books = _Books()
    for external_id, invoice_id, kind, gross, paid_at in conn.execute(_BOOKS, {"ids": order_ids, "channels": channels.names("provides_settlements")}):
        if gross is not None and gross == gross.quantize(CENT):
            gross = gross.quantize(CENT)  # PostgreSQL's NUMERIC(20, 6) says 50.000000; reasons say 50.00
        books.known.add(external_id)
        if kind == INVOICE:
            books.invoiced[external_id] = books.invoiced.get(external_id, ZERO) + gross
            if paid_at is None:
                books.unpaid_invoices.setdefault(external_id, []).append(invoice_id)
        elif kind == CREDIT_NOTE:
            books.credited[external_id] = books.credited.get(external_id, ZERO) + gross
    return books


def find(session: Session, ref: str) -> Settlement:
    st = session.scalar(select(Settlement).where(Settlement.settlement_id == ref.strip()[:40]))
    row = record_id(ref) if st is None else None  # '²', or more digits than any id: no row
    if row is not None:
        st = session.get(Settlement, row)
    if st is None:
        raise NotFoundError(f"no settlement {ref!r}")
    return st


@dataclass
class FetchResult:
    reports: int = 0
    imported: list[str] = field(default_factory=list)
    duplicates: int = 0
    dry_run: bool = False
    to_download: list[str] = field(default_factory=list)  # dry run: report ids not in the folder yet

    def as_dict(self) -> dict:
        return {"reports": self.reports, "imported": self.imported, "duplicates": self.duplicates,
                "dry_run": self.dry_run, **({"to_download": self.to_download} if self.dry_run else {})}


def fetch(session: Session, source, folder: Path, *, since, dry_run: bool = False,
          invoiced_by_channel: bool = False) -> FetchResult:
    """List the channel's settlement reports (``source``: ``SalesChannel.settlement_source``)
    since ``since``, download each into ``folder`` (kept, as GoBD wants the original) and import
    it; each settlement is committed on its own. A report whose settlement is already stored (a
    channel may repeat them) is counted, not stored again.
    ``dry_run`` only lists: the reports, and those not in ``folder`` yet (``to_download``); it
    downloads, writes and stores nothing, so which settlements are new is not known then."""
    r = FetchResult(dry_run=dry_run)
    refs = source.list_reports(since)
    r.reports = len(refs)
    if dry_run:
        r.to_download = [ref.report_id for ref in refs if not _report_path(folder, ref).exists()]
        return r
    folder.mkdir(parents=True, exist_ok=True)
    for ref in refs:
        path = _report_path(folder, ref)
        if not path.exists():
            tmp = path.with_suffix(".part")
            tmp.write_bytes(source.download(ref))
            tmp.replace(path)
        result = import_file(session, path, invoiced_by_channel=invoiced_by_channel)
        if result.duplicate:
            r.duplicates += 1
        else:
            r.imported.append(result.settlement_id)
        session.commit()
    return r


def _report_path(folder: Path, ref) -> Path:
    return folder / f"settlement-{ref.report_id}.tsv"
