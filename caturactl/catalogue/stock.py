"""Stock per location: what the own warehouse holds (kept here) and what a fulfiller reports.

A stock file sets ``on_hand`` for the SKUs it names, all or nothing; reservations made by
routing stay as they are, so a report does not free pieces already promised to a delivery.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session

from caturactl.core import csvfile
from caturactl.core.errors import InputError, NotFoundError
from caturactl.fulfilment.models import Stock
from caturactl.catalogue.models import Product


@dataclass
class StockResult:
    location: str
    rows: int = 0
    changed: int = 0
    new: int = 0
    unknown_skus: list[str] | None = None

    def as_dict(self) -> dict:
        return {"location": self.location, "rows": self.rows, "changed": self.changed, "new": self.new,
                "unknown_skus": self.unknown_skus or []}


def reserve(session: Session, location: str, sku: str, qty: int) -> bool:
    """Promise ``qty`` pieces of ``sku`` at ``location`` if that many are still available, as one
    conditional UPDATE done by the database: False when another run took them meanwhile."""
    n = session.execute(update(Stock).where(Stock.location == location, Stock.sku == sku,
                                            Stock.on_hand - Stock.reserved >= qty)
                        .values(reserved=Stock.reserved + qty)
                        .execution_options(synchronize_session=False)).rowcount
    return n == 1


def release(session: Session, location: str, sku: str, qty: int, *, shipped: bool = False) -> None:
    """Give back ``qty`` reserved pieces (never below 0); with ``shipped`` they also leave
    ``on_hand``. A relative update: whatever another run reserved meanwhile stays reserved."""
    values = {"reserved": case((Stock.reserved > qty, Stock.reserved - qty), else_=0)}
    if shipped:
        values["on_hand"] = case((Stock.on_hand > qty, Stock.on_hand - qty), else_=0)
    session.execute(update(Stock).where(Stock.location == location, Stock.sku == sku).values(**values)
                    .execution_options(synchronize_session=False))


_WHOLE = re.compile(r"[0-9]{1,12}")
MAX_ON_HAND = 10_000_000  # pieces of one SKU at one location; more is a typo or an attack


def read_stock(name: str, text: str) -> list[tuple[str, int]]:
    """(sku, on_hand) pairs from a CSV with a header naming ``sku`` and ``on_hand`` (or
    ``available``/``quantity``), ``;`` or ``,`` separated; raises InputError naming file:line:field.
    Quantities are whole numbers from 0 to MAX_ON_HAND in ASCII digits."""
    header, body = csvfile.rows(text, name)
    qty_field = next((f for f in ("on_hand", "available", "quantity") if f in header), None)
    if "sku" not in header or qty_field is None:
        raise InputError("the header needs 'sku' and 'on_hand' (or 'available')", where=f"{name}:1")
    out, seen = [], {}
    for lineno, row in body:
        sku, qty = row["sku"], row[qty_field]
        if not sku:
            raise InputError("empty sku", where=f"{name}:{lineno}:sku")
        if len(sku) > 100 or not sku.isprintable():
            raise InputError("a SKU is at most 100 printable characters", where=f"{name}:{lineno}:sku")
        if sku in seen:
            raise InputError(f"sku {sku!r} also on line {seen[sku]}", where=f"{name}:{lineno}:sku")
        if not _WHOLE.fullmatch(qty) or int(qty) > MAX_ON_HAND:
            raise InputError(f"not a whole number from 0 to {MAX_ON_HAND}: {qty[:40]!r}",
                             where=f"{name}:{lineno}:{qty_field}")
        seen[sku] = lineno
        out.append((sku, int(qty)))
    return out


def set_stock(session: Session, location: str, rows: list[tuple[str, int]], known_locations) -> StockResult:
    """Set on-hand figures for ``location`` in the caller's transaction."""
    if location not in known_locations:
        raise NotFoundError(f"no location {location!r} in caturactl.toml (known: {', '.join(sorted(known_locations))})")
    existing = {s.sku: s for s in session.scalars(select(Stock).where(Stock.location == location))}
    products = set(session.scalars(select(Product.sku)))
    r = StockResult(location, unknown_skus=[])
    for sku, qty in rows:
        r.rows += 1
        if sku not in products:
            r.unknown_skus.append(sku)
        st = existing.get(sku)
        if st is None:
            session.add(Stock(location=location, sku=sku, on_hand=qty, reserved=0))
            r.new += 1
        elif st.on_hand != qty:
            st.on_hand = qty
            r.changed += 1
    return r


def stock_rows(session: Session, location: str | None = None) -> list[dict]:
    q = select(Stock).order_by(Stock.location, Stock.sku)
    if location:
        q = q.where(Stock.location == location)
    return [{"location": s.location, "sku": s.sku, "on_hand": s.on_hand, "reserved": s.reserved,
             "available": s.available} for s in session.scalars(q)]
