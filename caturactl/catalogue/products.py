"""The product catalogue: SKUs we can ship, loaded from a CSV file all or nothing."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from caturactl import channels
from caturactl.core import csvfile
from caturactl.core.errors import InputError
from caturactl.catalogue.models import Product

# Upper bounds that no real product reaches; a value above is a typo or an attack, and it must
# never reach a 64-bit database column or a carrier's weight table.
INTS = {"weight_g": 1_000_000, "length_mm": 100_000, "width_mm": 100_000, "height_mm": 100_000}
MAX_PRICE = Decimal("1000000")
COLUMNS = ("sku", "title", "listing_id", "price", *INTS, "tax_class")
_WHOLE = re.compile(r"[0-9]{1,12}")
_AMOUNT = re.compile(r"[0-9]{1,9}([.,][0-9]{1,2})?")


@dataclass
class CatalogueResult:
    new: int = 0
    updated: int = 0
    unchanged: int = 0


def read_products(path: Path) -> list[dict]:
    """Rows of a products CSV (header: sku,title,listing_id,price,weight_g,length_mm,width_mm,height_mm,
    tax_class (standard|reduced, Anlage 2 UStG); only sku required, in UTF-8 or Windows-1252).
    A channel may name a column its own way (Amazon's ``asin`` is the listing id).
    Each row holds only the known columns the header names (others are ignored), so an import
    changes nothing else. Raises
    InputError naming file, line and field; nothing is read half."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", where=str(path)) from None
    header, body = csvfile.rows(csvfile.decode(data, str(path)), str(path))
    if "sku" not in header:
        raise InputError("no 'sku' column in the header line", where=f"{path}:1")
    named = {c: c for c in COLUMNS if c in header}
    for alias, column in channels.product_columns().items():
        if alias in header and column not in named:
            named[column] = alias
    rows, seen = [], {}
    for lineno, row in body:
        where = f"{path}:{lineno}"
        out = {c: _value(c, row[src], f"{where}:{src}") for c, src in named.items()}
        if out["sku"] in seen:
            raise InputError(f"sku {out['sku']!r} also on line {seen[out['sku']]}", where=f"{where}:sku")
        seen[out["sku"]] = lineno
        rows.append(out)
    return rows


def _value(column: str, text: str, here: str):
    """One cell of ``column``, checked: raises InputError naming ``here`` (file:line:column)."""
    if column == "sku":
        if not text:
            raise InputError("empty sku", where=here)
        if len(text) > 100 or not text.isprintable():
            raise InputError("a SKU is at most 100 printable characters", where=here)
        return text
    if column in ("title", "listing_id"):
        limit = 500 if column == "title" else 20
        if len(text) > limit or not text.isprintable():
            raise InputError(f"at most {limit} printable characters", where=here)
        return text
    if column == "tax_class":
        value = text.lower() or "standard"
        if value not in ("standard", "reduced"):
            raise InputError(f"tax_class must be standard or reduced, not {text!r}", where=here)
        return value
    if column in INTS:
        if not text:
            return None
        if not _WHOLE.fullmatch(text) or int(text) > INTS[column]:
            raise InputError(f"not a whole number from 0 to {INTS[column]}: {text!r}", where=here)
        return int(text)
    # price: EUR with at most two decimals, not negative, finite (no NaN, Infinity, 1E+308)
    if not text:
        return None
    if not _AMOUNT.fullmatch(text) or Decimal(text.replace(",", ".")) > MAX_PRICE:
        raise InputError(f"not an amount from 0 to {MAX_PRICE} with at most 2 decimals: {text!r}", where=here)
    return Decimal(text.replace(",", "."))


def import_products(session: Session, path: Path) -> CatalogueResult:
    """Add or update the products in ``path`` in the caller's transaction; a column the file does
    not have stays as it is on existing products. Raises InputError."""
    rows = read_products(path)
    existing = {p.sku: p for p in session.scalars(select(Product))}
    result = CatalogueResult()
    for row in rows:
        p = existing.get(row["sku"])
        if p is None:
            session.add(Product(**row, active=True))
            result.new += 1
            continue
        changed = any(getattr(p, k) != v for k, v in row.items()) or not p.active
        for k, v in row.items():
            setattr(p, k, v)
        p.active = True
        result.updated += changed
        result.unchanged += not changed
    return result
