"""Settlement: Amazon's payout report reconciled against our invoices, to the cent.

A settlement file is checked whole first (every line, and the lines against the header's total)
and only then read again and stored, in one transaction: a file with one bad line stores nothing.
Money is sorted into kinds: what buyers paid for an order (price, tax, shipping, promotions),
what was refunded, Amazon's fees, the reserve Amazon holds back, and other transactions. Order
money is matched to the order's invoices and refunds to its credit notes by Amazon order id;
whatever does not match becomes a listed difference with its reason (no invoice yet, amount
differs by X, unknown order, refund without credit note). Nothing is rounded away: the
settlement's total is exactly sales + refunds + fees + reserve + other + differences. Invoices
whose money arrived exactly are marked paid with the deposit date.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from caturactl.errors import InputError, NotFoundError
from caturactl.model import Invoice, Order, Settlement, SettlementDifference
from caturactl.model.events import EventKind, record
from caturactl.model.invoices import CREDIT_NOTE, INVOICE

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

    @property
    def differences_total(self) -> Decimal:
        return sum((d[2] for d in self.differences), ZERO)

    @property
    def total(self) -> Decimal:
        return self.sales + self.refunds + self.fees + self.reserve + self.other + self.differences_total


def reconcile(per_order_sales: dict[str, Decimal], per_order_refunds: dict[str, Decimal],
              fees: Decimal, reserve: Decimal, other: Decimal, known_orders: set[str],
              invoiced: dict[str, Decimal], credited: dict[str, Decimal]) -> Reconciliation:
    """Match order money to invoices and refunds to credit notes (pure); see the module docstring."""
    r = Reconciliation(fees=fees, reserve=reserve, other=other)
    for order_id, settled in sorted(per_order_sales.items()):
        if order_id not in known_orders:
            r.differences.append((order_id, "unknown_order", settled, settled, None,
                                  "order not in caturactl (sold outside it, or not imported)"))
        elif order_id not in invoiced:
            r.differences.append((order_id, "no_invoice", settled, settled, None, "no invoice for the order yet"))
        else:
            expected = invoiced[order_id]
            r.sales += expected
            if settled == expected:
                r.paid_orders.append(order_id)
            else:
                r.differences.append((order_id, "amount_differs", settled - expected, settled, expected,
                                      f"Amazon settled {settled}, invoiced {expected}: differs by "
                                      f"{settled - expected}"))
    for order_id, settled in sorted(per_order_refunds.items()):
        credit = credited.get(order_id)
        if credit is None:
            r.differences.append((order_id, "refund_without_credit_note", settled, settled, None,
                                  "Amazon refunded the buyer; no credit note (Rechnungskorrektur) yet"))
        else:
            r.refunds -= credit  # refunds are negative money, credit notes positive documents
            if settled != -credit:
                r.differences.append((order_id, "refund_differs", settled + credit, settled, -credit,
                                      f"Amazon refunded {-settled}, credited {credit}: differs by "
                                      f"{-(settled + credit)}"))
    return r


@dataclass
class ImportResult:
    settlement_id: str = ""
    lines: int = 0
    total: Decimal = ZERO
    duplicate: bool = False
    paid: int = 0
    differences: int = 0
    differences_total: Decimal = ZERO
    dry_run: bool = False

    def as_dict(self) -> dict:
        return {"settlement_id": self.settlement_id, "lines": self.lines, "total": str(self.total),
                "duplicate": self.duplicate, "invoices_paid": self.paid, "differences": self.differences,
                "differences_total": str(self.differences_total), "dry_run": self.dry_run}


def import_file(session: Session, path: Path, *, dry_run: bool = False) -> ImportResult:
    """Check, reconcile and store a settlement file in the caller's transaction (the caller
    commits); raises InputError naming file:line:column, nothing stored. A settlement already
    stored (Amazon repeats settlements across reports) is recognised and not stored again."""
    from connectors.amazon.settlement import read_settlement, validate_settlement
    name = path.name
    try:
        with path.open("rb") as f:
            summary = validate_settlement(f, name)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", where=str(path)) from None
    header = summary.header
    r = ImportResult(settlement_id=header.settlement_id, lines=summary.lines, total=header.total_amount,
                     dry_run=dry_run)
    if session.scalar(select(Settlement.id).where(Settlement.settlement_id == header.settlement_id)):
        r.duplicate = True
        return r
    sales: dict[str, Decimal] = defaultdict(Decimal)
    refunds: dict[str, Decimal] = defaultdict(Decimal)
    totals = {"fee": ZERO, "reserve": ZERO, "other": ZERO}
    by_type: dict[str, Decimal] = defaultdict(Decimal)
    digest = hashlib.sha256()
    with path.open("rb") as f:
        _, lines = read_settlement(f, name)
        for ln in lines:
            k = kind_of(ln.transaction_type, ln.amount_type, ln.amount_description)
            by_type[f"{ln.transaction_type}/{ln.amount_type}/{ln.amount_description}"] += ln.amount
            if k == "sale":
                sales[ln.order_id] += ln.amount
            elif k == "refund":
                refunds[ln.order_id] += ln.amount
            else:
                totals[k] += ln.amount
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    orders = set(sales) | set(refunds)
    known, invoiced, credited, invoices_of = _books(session, orders)
    rec = reconcile(sales, refunds, totals["fee"], totals["reserve"], totals["other"], known, invoiced, credited)
    if rec.total != header.total_amount:  # cannot happen unless the rules above lose money: say so loudly
        raise AssertionError(f"settlement {header.settlement_id}: reconciled {rec.total} != {header.total_amount}")
    r.paid, r.differences, r.differences_total = len(rec.paid_orders), len(rec.differences), rec.differences_total
    if dry_run:
        return r
    st = Settlement(settlement_id=header.settlement_id, start=header.start, end=header.end,
                    deposit_date=header.deposit_date, currency=header.currency, total_amount=header.total_amount,
                    lines=summary.lines, sales=rec.sales, refunds=rec.refunds, fees=rec.fees, reserve=rec.reserve,
                    other=rec.other, differences_total=rec.differences_total,
                    by_type={k: str(v) for k, v in sorted(by_type.items())}, file_name=name, sha256=digest.hexdigest())
    session.add(st)
    for order_id, kind, amount, settled, expected, reason in rec.differences:
        st.differences.append(SettlementDifference(order_id=order_id, kind=kind, amount=amount, settled=settled,
                                                   expected=expected, reason=reason))
    for order_id in rec.paid_orders:
        for inv in invoices_of[order_id]:
            if inv.paid_at is None:
                inv.paid_at = header.deposit_date
    record(session, EventKind.INVOICED, f"settlement {header.settlement_id} imported: {header.total_amount} "
           f"{header.currency}, {len(rec.paid_orders)} order(s) paid, {len(rec.differences)} difference(s) "
           f"({rec.differences_total})", data={"settlement": header.settlement_id})
    return r


def _books(session: Session, order_ids: Iterable[str]):
    ids = sorted(order_ids)
    known: set[str] = set()
    invoiced: dict[str, Decimal] = {}
    credited: dict[str, Decimal] = {}
    invoices_of: dict[str, list[Invoice]] = defaultdict(list)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        known.update(session.scalars(select(Order.external_id).where(Order.external_id.in_(chunk))))
        for inv, ext in session.execute(select(Invoice, Order.external_id).join(Order, Order.id == Invoice.order_id)
                                        .where(Order.external_id.in_(chunk))):
            if inv.kind == INVOICE:
                invoiced[ext] = invoiced.get(ext, ZERO) + inv.gross_total
                invoices_of[ext].append(inv)
            elif inv.kind == CREDIT_NOTE:
                credited[ext] = credited.get(ext, ZERO) + inv.gross_total
    return known, invoiced, credited, invoices_of


def find(session: Session, ref: str) -> Settlement:
    st = session.scalar(select(Settlement).where(Settlement.settlement_id == ref.strip()))
    if st is None and ref.strip().isdigit():
        st = session.get(Settlement, int(ref))
    if st is None:
        raise NotFoundError(f"no settlement {ref!r}")
    return st


@dataclass
class FetchResult:
    reports: int = 0
    imported: list[str] = field(default_factory=list)
    duplicates: int = 0
    dry_run: bool = False

    def as_dict(self) -> dict:
        return {"reports": self.reports, "imported": self.imported, "duplicates": self.duplicates,
                "dry_run": self.dry_run}


def fetch(session: Session, source, folder: Path, *, since, dry_run: bool = False) -> FetchResult:
    """List Amazon's settlement reports since ``since``, download each into ``folder`` (kept, as
    GoBD wants the original) and import it; each settlement is committed on its own. A report
    whose settlement is already stored (Amazon repeats them) is counted, not stored again."""
    r = FetchResult(dry_run=dry_run)
    refs = source.list_reports(since)
    r.reports = len(refs)
    folder.mkdir(parents=True, exist_ok=True)
    for ref in refs:
        path = folder / f"settlement-{ref.report_id}.tsv"
        if not path.exists():
            tmp = path.with_suffix(".part")
            tmp.write_bytes(source.download(ref))
            tmp.replace(path)
        result = import_file(session, path, dry_run=dry_run)
        if result.duplicate:
            r.duplicates += 1
        else:
            r.imported.append(result.settlement_id)
        session.rollback() if dry_run else session.commit()
    return r
