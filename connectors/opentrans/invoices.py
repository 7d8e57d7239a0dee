"""A dropshipper's invoice to us, read from its file, all or nothing:

- CSV (one invoice a file): header ``invoice;date;purchase_order;line;sku;quantity;unit_price;
  tax_rate`` and optionally ``currency`` (default EUR); one row per billed line; ``line`` (our
  purchase order's line) may be empty, then the SKU finds it. The totals are the lines' (net to
  the cent per line, VAT per rate on the sum of its lines).
- ZUGFeRD / Factur-X PDF (the XML inside), or the XML alone: CII, which XRechnung's CII syntax
  is too, or XRechnung's UBL 2.1. Read back with the factur-x library
  (``facturx.parse_ubl_cii_xml``, which maps either syntax to EN 16931 terms and checks the XML
  against its schema): BT-1 number, BT-2 date, BT-3 type (380: an invoice; a credit note, 381, is
  not read here), BT-5 currency, BT-109/110/112 totals, BT-13 our purchase order number, and per
  line (BG-25) BT-129 quantity, BT-146 net price, BT-131 net amount, BT-152 VAT rate, BT-132 our
  purchase order line, BT-156 (else BT-155) the SKU. Invoice-level allowances and charges
  (BG-20/BG-21) are not read: such an invoice is refused, naming them.

XML from outside is parsed as carriers/confirmation_xml.py says (no DOCTYPE, no entities, no
network) before factur-x maps it; taking the XML out of a PDF is factur-x's
(``get_xml_from_pdf``), whose lxml parse resolves no external entity.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

import facturx
from lxml import etree

from carriers.confirmation_xml import parse_untrusted
from caturactl.core.errors import InputError
from caturactl.core.tax import cents
from caturactl.fulfilment.dropship.partner_files import InvoiceLineDoc, PartnerInvoiceDoc
from connectors.opentrans import csv_files

CSV_FIELDS = ("invoice", "date", "purchase_order", "sku", "quantity", "unit_price", "tax_rate")
MAX_QUANTITY = 1_000_000
_PRICE = re.compile(r"[0-9]{1,9}([.,][0-9]{1,6})?")
_RATE = re.compile(r"[0-9]{1,2}([.,][0-9]{1,2})?")
_WHOLE = re.compile(r"([0-9]{1,7})([.,]0{1,6})?")
_CURRENCY = re.compile(r"[A-Z]{3}")


def read(name: str, content: bytes) -> PartnerInvoiceDoc:
    """The invoice in file ``name``, told apart by its extension; InputError naming FILE:LINE:FIELD
    (or FILE:BT-n) at the first bad value."""
    lower = name.lower()
    if lower.endswith(".csv"):
        return _csv(name, content)
    if lower.endswith(".pdf"):
        return _xml(name, _from_pdf(name, content))
    if lower.endswith(".xml"):
        return _xml(name, content)
    raise InputError("an invoice is a .csv, a ZUGFeRD .pdf or an XRechnung / CII .xml", where=name)


# --- CSV ---------------------------------------------------------------------------------------------


def _decimal(value: str, pattern: re.Pattern, where: str, what: str) -> Decimal:
    text = value.strip().removesuffix("%").strip()
    if not pattern.fullmatch(text):
        raise InputError(f"not {what}: {value[:40]!r}", where=where)
    return Decimal(text.replace(",", "."))


def _day(value: str, where: str) -> date:
    for fmt in ("%Y-%m-%d", "%d.%m.%Y"):
        try:
            return datetime.strptime(value.strip(), fmt).date()
        except ValueError:
            continue
    raise InputError(f"not a date (2026-11-30 or 30.11.2026): {value[:40]!r}", where=where)


def _whole(value: str, where: str) -> int:
    m = _WHOLE.fullmatch(value.strip())
    if not m or not 1 <= int(m[1]) <= MAX_QUANTITY:
        raise InputError(f"not a whole number of pieces from 1 to {MAX_QUANTITY}: {value[:40]!r}", where=where)
    return int(m[1])


def _csv(name: str, content: bytes) -> PartnerInvoiceDoc:
    lines, head = [], None
    for lineno, row in csv_files.rows(name, content, CSV_FIELDS):
        where = f"{name}:{lineno}"
        currency = (row.get("currency") or "EUR").strip().upper()
        this = (csv_files.text(row["invoice"].strip(), "invoice", where, 40), _day(row["date"], f"{where}:date"),
                currency)
        if not this[0]:
            raise InputError("the invoice number is empty", where=f"{where}:invoice")
        if not _CURRENCY.fullmatch(currency):
            raise InputError(f"not a currency code: {currency[:10]!r}", where=f"{where}:currency")
        if head is None:
            head = this
        elif this != head:
            raise InputError(f"one invoice a file: this row says {this[0]} of {this[1]} in {this[2]}, the first "
                             f"{head[0]} of {head[1]} in {head[2]}", where=f"{where}:invoice")
        line_text = row.get("line", "").strip()
        if line_text and not (line_text.isascii() and line_text.isdigit() and 1 <= int(line_text) <= 10_000):
            raise InputError(f"not a line of our purchase order: {line_text[:20]!r}", where=f"{where}:line")
        qty = _whole(row["quantity"], f"{where}:quantity")
        price = _decimal(row["unit_price"], _PRICE, f"{where}:unit_price", "a net price (e.g. 7.50)")
        lines.append(InvoiceLineDoc(
            position=len(lines) + 1, purchase_order=row["purchase_order"].strip().upper()[:40],
            line_no=int(line_text) if line_text else None, sku=csv_files.text(row["sku"].strip(), "sku", where, 100),
            quantity=qty, unit_price=price, net=cents(price * qty),
            tax_rate=_decimal(row["tax_rate"], _RATE, f"{where}:tax_rate", "a VAT rate in percent (e.g. 19)"),
            where=where))
    by_rate: dict[Decimal, Decimal] = defaultdict(Decimal)
    for ln in lines:
        by_rate[ln.tax_rate] += ln.net
    net = sum(by_rate.values(), Decimal(0))
    vat = sum((cents(n * r / 100) for r, n in by_rate.items()), Decimal(0))
    number, day, currency = head
    return PartnerInvoiceDoc(number, day, currency, net, vat, net + vat, tuple(lines), "csv")


# --- ZUGFeRD / XRechnung ----------------------------------------------------------------------------


def _from_pdf(name: str, content: bytes) -> bytes:
    try:
        _, xml = facturx.get_xml_from_pdf(content, check_xsd=False)
    except Exception as exc:  # pypdf and factur-x raise plain exceptions for a broken PDF
        raise InputError(f"not a PDF that can be read: {str(exc)[:200]}", where=name) from None
    if not xml:
        raise InputError("the PDF carries no ZUGFeRD / Factur-X / XRechnung XML", where=name)
    return xml


def _xml(name: str, content: bytes) -> PartnerInvoiceDoc:
    root = parse_untrusted(name, content).getroot()
    try:
        data = facturx.parse_ubl_cii_xml(root, check_xsd=True)
    except Exception as exc:  # factur-x says "not valid against the XSD" and the like as plain exceptions
        raise InputError(f"not an EN 16931 invoice factur-x can read (CII or UBL): {str(exc)[:300]}",
                         where=name) from None
    flavor = "cii" if etree.QName(root).localname == "CrossIndustryInvoice" else "ubl"
    kind = str(data.get("BT-3", ""))
    if kind != "380":
        raise InputError(f"type {kind or 'none'} is not an invoice (380); a partner's credit note is not read "
                         "here", where=f"{name}:BT-3")
    for group in ("BG-20", "BG-21"):
        if data.get(group):
            raise InputError("invoice-level allowances or charges are not read: ask for them on the lines",
                             where=f"{name}:{group}")
    po = str(data.get("BT-13") or "").strip().upper()
    lines = tuple(_xml_line(name, i, item, po) for i, item in enumerate(data.get("BG-25") or [], 1))
    return PartnerInvoiceDoc(
        number=_need(data, "BT-1", name), issue_date=_date(data.get("BT-2"), name),
        currency=_need(data, "BT-5", name).upper(), net_total=_amount(data, "BT-109", name),
        tax_total=_amount(data, "BT-110", name, default="0"), gross_total=_amount(data, "BT-112", name),
        lines=lines, source=flavor)


def _need(data: dict, term: str, where: str) -> str:
    value = str(data.get(term) or "").strip()
    if not value or len(value) > 40 or not value.isprintable():
        raise InputError(f"{term} is missing or not 1 to 40 printable characters", where=f"{where}:{term}")
    return value


def _date(value, where: str) -> date:
    if not isinstance(value, date):
        raise InputError("BT-2 (the invoice date) is missing", where=f"{where}:BT-2")
    return value


def _amount(data: dict, term: str, where: str, default: str | None = None) -> Decimal:
    value = data.get(term, default)
    try:
        found = Decimal(str(value))
    except (InvalidOperation, TypeError):
        raise InputError(f"{term} is not an amount: {str(value)[:40]!r}", where=f"{where}:{term}") from None
    if not found.is_finite():
        raise InputError(f"{term} is not an amount", where=f"{where}:{term}")
    return found


def _xml_line(name: str, i: int, item: dict, po: str) -> InvoiceLineDoc:
    where = f"{name}:BG-25[{i}]"
    qty_text = str(item.get("BT-129") or "")
    qty = _whole(qty_text, f"{where}:BT-129")
    ref = str(item.get("BT-132") or "").strip()
    sku = str(item.get("BT-156") or item.get("BT-155") or "").strip()
    if len(sku) > 100 or not sku.isprintable():
        raise InputError("the item's identifier is over 100 characters", where=f"{where}:BT-155")
    return InvoiceLineDoc(
        position=i, purchase_order=po[:40],
        line_no=int(ref) if ref.isascii() and ref.isdigit() and len(ref) < 6 else None,
        sku=sku, quantity=qty, unit_price=_amount(item, "BT-146", where), net=_amount(item, "BT-131", where),
        tax_rate=_amount(item, "BT-152", where, default="0"), where=where)
