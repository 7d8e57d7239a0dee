"""Availability feeds of dropshippers: what each partner says it has of a SKU, dated.

A feed (a CSV upload, an openTRANS file on the return channel, the portal's form) sets the
quantities of the SKUs it names, all or nothing, with the moment it speaks for (``as_of``): the
partner's own date when the feed gives one (a CSV's ``as_of`` column), else when we read it. What
routing may order is the fresh figure less what we ordered since: a figure older than the
partner's ``availability_max_age_hours`` counts as zero, and pieces on purchase orders created after the
feed was made are taken off, because the partner could not have counted them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from caturactl.catalogue import stock
from caturactl.config import Config
from caturactl.core import csvfile
from caturactl.core.errors import InputError
from caturactl.core.lifecycle import PurchaseLineState
from caturactl.fulfilment.dropship import terms
from caturactl.fulfilment.dropship.models import DropshipAvailability, PurchaseOrder, PurchaseOrderLine

MAX_QUANTITY = stock.MAX_ON_HAND
# Lines that still take pieces of the partner's stock (answered or not, not yet shipped).
_HOLDING = (PurchaseLineState.OPEN.value, PurchaseLineState.ACCEPTED.value)
AS_OF_FIELD = "as_of"  # the optional CSV column with the moment the partner counted
CLOCK_SKEW = timedelta(minutes=5)  # how far ahead of ours a partner's clock may be


@dataclass(frozen=True)
class StockReport:
    partner: str
    rows: int
    changed: int

    def as_dict(self) -> dict:
        return {"partner": self.partner, "rows": self.rows, "changed": self.changed}


def read_csv(name: str, data: bytes) -> list[tuple[str, int]]:
    """(sku, quantity) pairs of an availability CSV, read as a fulfiller's stock file is
    (``catalogue.stock.read_stock``: header ``sku`` and ``quantity``/``available``/``on_hand``,
    whole numbers); InputError naming file:line:field at the first bad value, nothing half-read."""
    return stock.read_stock(name, csvfile.decode(data, name))


def figures_as_of(name: str, data: bytes, tz: tzinfo) -> datetime | None:
    """The moment an availability CSV speaks for by the partner's own clock: the oldest value of
    its ``as_of`` column (ISO 8601, e.g. 2026-11-24T08:00:00+01:00; without an offset in the
    partner's time zone ``tz``), in UTC; None when the file has no such column (or no rows).
    InputError naming file:line:as_of for an empty or unreadable value."""
    header, body = csvfile.rows(csvfile.decode(data, name), name)
    if AS_OF_FIELD not in header:
        return None
    moments = [_moment(row[AS_OF_FIELD], tz, f"{name}:{lineno}:{AS_OF_FIELD}") for lineno, row in body]
    return min(moments, default=None)


def dated(as_of: datetime | None, read_at: datetime, where: str) -> datetime:
    """The moment a feed's figures count from: the partner's ``as_of`` when it gave one, else
    ``read_at`` (our transports tell no file times). InputError when ``as_of`` lies ahead of
    ``read_at`` by more than ``CLOCK_SKEW``: a feed must not stay fresh longer than it is."""
    if as_of is None:
        return read_at
    if as_of > read_at + CLOCK_SKEW:
        raise InputError(f"as_of {as_of:%Y-%m-%d %H:%M} UTC lies in the future", where=where)
    return min(as_of, read_at)


def _moment(text: str, tz: tzinfo, where: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"not a date and time (ISO 8601, e.g. 2026-11-24T08:00:00+01:00): {text[:40]!r}",
                         where=where) from None
    return (at if at.tzinfo else at.replace(tzinfo=tz)).astimezone(timezone.utc)


def check_quantities(quantities: dict[str, int], where: str) -> None:
    """Raises InputError naming the SKU when a quantity is not a whole number 0..MAX_QUANTITY."""
    for sku, qty in quantities.items():
        if not sku or len(sku) > 100 or not str(sku).isprintable():
            raise InputError("a SKU is 1 to 100 printable characters", where=f"{where}:sku")
        if isinstance(qty, bool) or not isinstance(qty, int) or not 0 <= qty <= MAX_QUANTITY:
            raise InputError(f"{sku}: not a whole number from 0 to {MAX_QUANTITY}: {qty!r}",
                             where=f"{where}:{sku}")


def store(session: Session, partner: str, rows: list[tuple[str, int]], as_of: datetime, source: str,
          now: datetime) -> StockReport:
    """Set the partner's figures for the SKUs in ``rows``, in the caller's transaction; a figure
    older than one already stored (a late file) does not overwrite it."""
    existing = {a.sku: a for a in session.scalars(select(DropshipAvailability)
                                                   .where(DropshipAvailability.partner == partner))}
    changed = 0
    for sku, qty in rows:
        row = existing.get(sku)
        if row is None:
            session.add(DropshipAvailability(partner=partner, sku=sku, quantity=qty, as_of=as_of, source=source[:300],
                                             updated_at=now))
            changed += 1
        elif row.as_of <= as_of:
            changed += row.quantity != qty
            row.quantity, row.as_of, row.source, row.updated_at = qty, as_of, source[:300], now
    session.flush()
    return StockReport(partner, len(rows), changed)


def orderable(session: Session, cfg: Config, now: datetime, skus: set[str] | None = None) -> dict[str, dict[str, int]]:
    """Per dropshipper and SKU what routing may order now: the fresh feed figure less the pieces
    on its purchase orders created since the feed and not yet shipped; stale figures are 0."""
    codes = terms.partners(cfg)
    out: dict[str, dict[str, int]] = {code: {} for code in codes}
    if not codes:
        return out
    q = select(DropshipAvailability).where(DropshipAvailability.partner.in_(codes))
    if skus is not None:
        q = q.where(DropshipAvailability.sku.in_(sorted(skus)))
    rows = list(session.scalars(q))
    ordered = _ordered_since(session, rows)
    for a in rows:
        loc = cfg.locations[a.partner]
        fresh = terms.is_fresh(a.as_of, now, loc.availability_max_age_hours)
        out[a.partner][a.sku] = max(0, a.quantity - ordered.get((a.partner, a.sku), 0)) if fresh else 0
    return out


def for_channel(cfg: Config, orderable_now: dict[str, dict[str, int]], channel: str) -> dict[str, int]:
    """Per SKU the pieces ``channel`` may sell from dropshippers: the ``orderable`` figures of the
    partners allowed to serve it, summed (a stale feed is 0 there already)."""
    out: dict[str, int] = {}
    for code, skus in orderable_now.items():
        if terms.serves(cfg.locations[code], channel):
            for sku, qty in skus.items():
                out[sku] = out.get(sku, 0) + qty
    return out


def _ordered_since(session: Session, rows: list[DropshipAvailability]) -> dict[tuple[str, str], int]:
    """Pieces per (partner, sku) on open or accepted purchase order lines made after that feed row."""
    if not rows:
        return {}
    oldest = min(a.as_of for a in rows)
    q = (select(PurchaseOrder.partner, PurchaseOrderLine.sku, PurchaseOrder.created_at,
                PurchaseOrderLine.quantity - PurchaseOrderLine.shipped)
         .join(PurchaseOrder, PurchaseOrder.id == PurchaseOrderLine.purchase_order_id)
         .where(PurchaseOrderLine._state.in_(_HOLDING), PurchaseOrder.created_at >= oldest,
                PurchaseOrder.partner.in_(sorted({a.partner for a in rows}))))
    since = {(a.partner, a.sku): a.as_of for a in rows}
    out: dict[tuple[str, str], int] = {}
    for partner, sku, created, qty in session.execute(q):
        as_of = since.get((partner, sku))
        if as_of is not None and created >= as_of:
            out[(partner, sku)] = out.get((partner, sku), 0) + qty
    return out


def stock_rows(session: Session, cfg: Config, now: datetime, partner: str | None = None) -> list[dict]:
    """Every stored figure with its age and whether it still counts, for people."""
    q = select(DropshipAvailability).order_by(DropshipAvailability.partner, DropshipAvailability.sku)
    if partner:
        q = q.where(DropshipAvailability.partner == partner)
    out = []
    for a in session.scalars(q):
        loc = cfg.locations.get(a.partner)
        fresh = loc is not None and terms.is_fresh(a.as_of, now, loc.availability_max_age_hours)
        out.append({"partner": a.partner, "sku": a.sku, "quantity": a.quantity, "as_of": a.as_of,
                    "fresh": fresh, "counts": a.quantity if fresh else 0, "source": a.source})
    return out
