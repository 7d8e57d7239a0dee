"""The product catalogue: SKUs we can ship, loaded from a CSV file all or nothing."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from caturactl.errors import InputError
from caturactl.model import Product

INTS = ("weight_g", "length_mm", "width_mm", "height_mm")


@dataclass
class CatalogueResult:
    new: int = 0
    updated: int = 0
    unchanged: int = 0


def read_products(path: Path) -> list[dict]:
    """Rows of a products CSV (header: sku,title,asin,price,weight_g,length_mm,width_mm,height_mm,
    tax_class (standard|reduced, Anlage 2 UStG); only sku required). Raises InputError naming file, line and field; nothing is read half."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {exc}", where=str(path)) from None
    sample = text[:2048]
    delimiter = ";" if sample.count(";") > sample.count(",") else ","
    reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
    if not reader.fieldnames or "sku" not in [f.strip().lower() for f in reader.fieldnames]:
        raise InputError("no 'sku' column in the header line", where=f"{path}:1")
    rows, seen = [], {}
    for lineno, raw in enumerate(reader, start=2):
        if None in raw:
            raise InputError("more fields than the header has", where=f"{path}:{lineno}")
        row = {k.strip().lower(): (v or "").strip() for k, v in raw.items()}
        where = f"{path}:{lineno}"
        if not row["sku"]:
            raise InputError("empty sku", where=f"{where}:sku")
        if row["sku"] in seen:
            raise InputError(f"sku {row['sku']!r} also on line {seen[row['sku']]}", where=f"{where}:sku")
        seen[row["sku"]] = lineno
        out: dict = {"sku": row["sku"], "title": row.get("title", ""), "asin": row.get("asin", "")}
        tax_class = row.get("tax_class", "").lower() or "standard"
        if tax_class not in ("standard", "reduced"):
            raise InputError(f"tax_class must be standard or reduced, not {row['tax_class']!r}",
                             where=f"{where}:tax_class")
        out["tax_class"] = tax_class
        for k in INTS:
            v = row.get(k, "")
            if v and (not v.isdigit()):
                raise InputError(f"not a whole number: {v!r}", where=f"{where}:{k}")
            out[k] = int(v) if v else None
        price = row.get("price", "").replace(",", ".")
        try:
            out["price"] = Decimal(price) if price else None
        except InvalidOperation:
            raise InputError(f"not an amount: {row.get('price')!r}", where=f"{where}:price") from None
        rows.append(out)
    return rows


def import_products(session: Session, path: Path) -> CatalogueResult:
    """Add or update the products in ``path`` in the caller's transaction; raises InputError."""
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
