"""The accountant's export: the bookings of a period as CSV (for any accounting software) or as a
DATEV Buchungsstapel, and the debtors as DATEV master data.

Bookings come from the documents themselves (``caturactl.accounting.bookings``): invoices and credit notes
by their issue date, settlements by their deposit date, bank credits matched to payments by the
statement's booking date, dropshippers' invoices to us by their date and our purchase credits for
returns by the day they were recorded (``caturactl.fulfilment.dropship.purchases.journal``). Every date is a day in the business time
zone (``cfg.tz``), and a period is a range of such days: a settlement deposited at 23:30 UTC on
31 March is deposited on 1 April in Berlin, so it is booked on 1 April and belongs to April's
export, never to March's (whose DATEV batch could not even hold its date). Every export is
recorded as a batch with its days; the same days are not exported twice unless asked
(``again``), because an accountant who imports a period twice books it twice. A file is written
under a temporary name and renamed only when it is complete, so a refused booking leaves no half
file behind.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from caturactl import channels
from caturactl.accounting import bookings as accounting
from caturactl.billing import invoicing
from caturactl.config import Config
from caturactl.core.errors import ConfigError, InputError, StateError
from caturactl.accounting.models import ExportBatch, Settlement
from caturactl.billing.models import Invoice
from caturactl.fulfilment.dropship import purchases
from caturactl.orders.models import Order
from caturactl.payments.models import BankCredit, Payment, PaymentReceipt
from caturactl.ports import JournalEntry
from caturactl.views.reports import tidy
from caturactl.views.cockpit import _local_midnight
from caturactl.core.spreadsheet import guard_formula

CSV_FIELDS = ["date", "document", "text", "debit", "credit", "amount", "tax_key", "country", "vat_id", "rate",
              "order_id"]


def settlements(session: Session, cfg: Config, date_from: date, date_to: date) -> list[Settlement]:
    """The settlements deposited on the days ``date_from``..``date_to`` of the business time zone
    (from the first day's midnight there to the midnight after the last), with their fee lines,
    in deposit order."""
    lo, hi = _local_midnight(date_from, cfg.tz), _local_midnight(date_to + timedelta(days=1), cfg.tz)
    return list(session.scalars(select(Settlement).where(Settlement.deposit_date >= lo, Settlement.deposit_date < hi)
                                .options(selectinload(Settlement.fee_totals)).order_by(Settlement.deposit_date)))


def _fee_totals(st: Settlement) -> list[tuple[str, Decimal]]:
    return [(f.description, tidy(f.amount)) for f in st.fee_totals]  # PostgreSQL says -1.200000


def entries(session: Session, cfg: Config, date_from: date, date_to: date) -> list[JournalEntry]:
    """Every booking of the period (days of the business time zone), in date order."""
    out: list[JournalEntry] = []
    q = (select(Invoice).where(Invoice.issue_date >= date_from, Invoice.issue_date <= date_to)
         .options(selectinload(Invoice.order)).order_by(Invoice.id))  # the order's channel, without N+1
    for inv in session.scalars(q):
        doc = invoicing.from_json(inv.document)
        channel = channels.get(inv.order.channel)
        out.extend(accounting.invoice_entries(doc, cfg.accounts, home_country=cfg.tax.home_country,
                                              clearing_account=channel.clearing_account
                                              if channel.collects_payment else None))
    paid_out = settlements(session, cfg, date_from, date_to)
    settling = channels.settling() if paid_out else None
    for st in paid_out:
        out.extend(accounting.settlement_entries(st.settlement_id, st.deposit_date.astimezone(cfg.tz).date(),
                                                 _fee_totals(st), st.total_amount, cfg.accounts,
                                                 clearing_account=settling.clearing_account, label=settling.label))
    out.extend(receipts(session, cfg, date_from, date_to))
    out.extend(purchases.journal(session, cfg, date_from, date_to))  # dropshippers' invoices, our credits
    out.sort(key=lambda e: e.date)
    return out


def receipts(session: Session, cfg: Config, date_from: date, date_to: date) -> list[JournalEntry]:
    """The bookings of the money matched to payments from the bank credits booked on the days
    ``date_from``..``date_to`` (the bank's booking days), in booking order."""
    q = (select(PaymentReceipt.amount, BankCredit.booking_date, BankCredit.debtor_name, Order.external_id,
                Order.channel, Order.buyer_name, Invoice.number)
         .join(BankCredit, PaymentReceipt.credit_id == BankCredit.id)
         .join(Payment, PaymentReceipt.payment_id == Payment.id)
         .join(Order, Payment.order_id == Order.id)
         .outerjoin(Invoice, Payment.invoice_id == Invoice.id)
         .where(BankCredit.booking_date >= date_from, BankCredit.booking_date <= date_to)
         .order_by(BankCredit.booking_date, PaymentReceipt.id))
    out = []
    for amount, booked, payer, order_id, channel_name, buyer, invoice in session.execute(q):
        channel = channels.get(channel_name)
        entry = accounting.receipt_entry(
            booked, invoice or order_id, f"{'Zahlung' if amount > 0 else 'Rücklastschrift'} {order_id} "
                                         f"{payer or buyer}", tidy(amount), cfg.accounts,
            clearing_account=channel.clearing_account if channel.collects_payment else None, order_id=order_id)
        if entry is not None:
            out.append(entry)
    return out


def unmapped_fees(session: Session, cfg: Config, date_from: date, date_to: date) -> list[dict]:
    """The settlement fee lines of the period that no ``[accounts.fee_accounts]`` pattern or
    default names: booked on ``accounts.fee_default`` under § 13b, and to be looked at."""
    return [{"settlement": st.settlement_id, "description": description, "amount": amount}
            for st in settlements(session, cfg, date_from, date_to)
            for description, amount in accounting.unmapped_fees(_fee_totals(st), cfg.accounts)]


def write_csv(rows: list[JournalEntry], out: io.BufferedWriter, *, bom: bool) -> int:
    """UTF-8 (with BOM when asked), one booking a line, formula-looking text guarded."""
    text = io.TextIOWrapper(out, encoding="utf-8-sig" if bom else "utf-8", newline="")
    w = csv.writer(text, delimiter=";", lineterminator="\r\n")
    w.writerow(CSV_FIELDS)
    for e in rows:
        w.writerow([e.date.isoformat(), guard_formula(e.document), guard_formula(e.text), e.debit, e.credit,
                    f"{e.amount:.2f}", e.tax_key, e.country, e.vat_id, "" if e.rate is None else str(e.rate),
                    guard_formula(e.order_id)])
    text.flush()
    text.detach()
    return len(rows)


@dataclass
class ExportResult:
    rows: int
    total: Decimal
    file: str
    dry_run: bool
    unmapped_fees: list[dict] = field(default_factory=list)  # see ``unmapped_fees``

    def as_dict(self) -> dict:
        return {"rows": self.rows, "total": str(self.total), "file": self.file, "dry_run": self.dry_run,
                "unmapped_fees": [{**u, "amount": str(u["amount"])} for u in self.unmapped_fees]}


def need_datev_numbers(cfg: Config) -> None:
    """ConfigError unless the tax advisor's consultant and client numbers are configured."""
    if not (cfg.accounts.datev_consultant and cfg.accounts.datev_client):
        raise ConfigError("DATEV needs the consultant and client numbers from the tax advisor",
                          where="caturactl.toml: accounts.datev_consultant / datev_client")


def write_whole(path: Path, write: Callable[[io.BufferedWriter], object]) -> None:
    """Write ``path`` whole or not at all: into ``NAME.part``, renamed when done; InputError
    when it cannot be written (an accountant must never import half a file)."""
    tmp = path.with_name(path.name + ".part")
    try:
        with tmp.open("wb") as f:
            write(f)
        tmp.replace(path)
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror}", where=str(path)) from None
    finally:
        if tmp.exists():
            tmp.unlink()


def export_bookings(session: Session, cfg: Config, *, fmt: str, date_from: date, date_to: date, path: Path,
                    write_datev: Callable, again: bool = False, dry_run: bool = False, bom: bool = False) -> ExportResult:
    """Write the bookings of the days ``date_from``..``date_to`` (business time zone) to ``path``
    (csv or datev) and record the batch; StateError when one of those days was exported before
    and ``again`` is not set; InputError/ConfigError for bad data. The result lists the fee lines
    booked under § 13b on the default account because nothing named them."""
    if date_to < date_from:
        raise InputError("--to is before --from", where="--to")
    earlier = session.scalar(select(ExportBatch).where(ExportBatch.kind == "bookings", ExportBatch.format == fmt,
                                                       ExportBatch.date_from <= date_to,
                                                       ExportBatch.date_to >= date_from)
                             .order_by(ExportBatch.id).limit(1))
    if earlier is not None and not again:
        raise StateError(f"{date_from}..{date_to} overlaps {earlier.date_from}..{earlier.date_to}, exported "
                         f"{earlier.created_at:%Y-%m-%d %H:%M} UTC ({earlier.file_name}); importing it twice books "
                         f"it twice. Use --again to export anyway")
    rows = entries(session, cfg, date_from, date_to)
    total = sum((e.amount for e in rows), Decimal(0))
    unmapped = unmapped_fees(session, cfg, date_from, date_to)
    if dry_run:
        return ExportResult(len(rows), total, str(path), True, unmapped)
    if fmt == "datev":
        need_datev_numbers(cfg)
    write_whole(path, lambda f: write_csv(rows, f, bom=bom) if fmt == "csv" else
                write_datev(cfg, rows, date_from, date_to, f))
    session.add(ExportBatch(kind="bookings", format=fmt, date_from=date_from, date_to=date_to, rows=len(rows),
                            total=total, file_name=path.name, again=earlier is not None))
    return ExportResult(len(rows), total, str(path), False, unmapped)


DEBTOR_BASE = 10000  # DATEV personal accounts 10000-69999 with 4-digit G/L accounts (accounts.md §2)


def debtors(session: Session) -> list[dict]:
    """Every customer (merged ones left out) as debtor master data: account 10000 + customer id,
    name, the latest address, the VAT id of their latest business order, the first e-mail."""
    from caturactl.customers.models import Customer
    from caturactl.orders.models import Order
    from caturactl.core.address import Address, street_parts
    out = []
    vat = dict(session.execute(select(Order.customer_id, Order.buyer_tax_id)
                               .where(Order.buyer_tax_id != "", Order.customer_id.is_not(None))
                               .order_by(Order.created_at)).all())
    for c in session.scalars(select(Customer).where(Customer.merged_into_id.is_(None)).order_by(Customer.id)):
        account = DEBTOR_BASE + c.id
        if account > 69999:
            raise StateError(f"customer {c.number} has no room in the DATEV debtor range 10000-69999")
        a = c.addresses[-1] if c.addresses else None
        street = ""
        if a is not None:
            st, number, _ = street_parts(Address(line1=a.line1, line2=a.line2, line3=a.line3, country=a.country))
            street = " ".join(x for x in (st, number) if x)
        out.append({"account": str(account), "name": c.company or c.name, "is_company": bool(c.company),
                    "street": street, "postal_code": a.postal_code if a else "", "city": a.city if a else "",
                    "country": a.country if a else "", "vat_id": vat.get(c.id, ""),
                    "email": c.emails[0].email if c.emails else ""})
    return out
