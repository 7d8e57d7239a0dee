"""What the channels may sell: per SKU, the pieces on hand at every location, less those reserved
for delivery notes, less a safety stock kept back (``[stock] safety``, per SKU in
``[stock] safety_per_sku``), never below 0 (Verfügbarkeit).

``stock push`` tells each channel that takes stock (``SalesChannel.pushes_stock``) only what
changed since the last push: ``ChannelStock`` keeps the quantity last queued per channel and SKU,
and each change is one outbox message (``SalesChannel.stock_update``) keyed by the pair's push
count, so a message overtaken by a newer one before it went out is not sent (``superseded``).
A SKU pushed before that is no longer an active product is set to 0.

Each channel may also sell what the dropshippers allowed to serve it have: their fresh figures
less what we ordered from them since (``partner_stock.orderable``; a stale feed counts as 0, so
the pushed figure falls back to our own stock). The safety stock is kept back once, from the sum.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from caturactl import channels
from caturactl.catalogue.models import ChannelStock, Product
from caturactl.config import Config, StockConfig
from caturactl.core import clock
from caturactl.fulfilment.dropship import partner_stock
from caturactl.fulfilment.models import Stock
from caturactl.outbox.service import enqueue


@dataclass(frozen=True)
class Availability:
    """One SKU: what all locations hold and have promised, the safety stock, what may be sold."""
    sku: str
    on_hand: int
    reserved: int
    safety: int
    quantity: int

    def as_dict(self) -> dict:
        return {"sku": self.sku, "on_hand": self.on_hand, "reserved": self.reserved, "safety": self.safety,
                "quantity": self.quantity}


@dataclass(frozen=True)
class Change:
    """A SKU whose quantity for ``channel`` differs from the last push (``before`` None: never pushed)."""
    channel: str
    sku: str
    before: int | None
    quantity: int

    def as_dict(self) -> dict:
        return {"channel": self.channel, "sku": self.sku, "before": self.before, "quantity": self.quantity}


@dataclass
class PushResult:
    channels: list[str] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    unchanged: int = 0
    queued: int = 0

    def as_dict(self) -> dict:
        return {"channels": self.channels, "changed": len(self.changes), "unchanged": self.unchanged,
                "queued": self.queued, "changes": [c.as_dict() for c in self.changes]}


def to_sell(on_hand: int, reserved: int, safety: int) -> int:
    """Pieces a channel may sell: on hand less reserved less the safety stock, never below 0."""
    return max(0, on_hand - reserved - safety)


def available(session: Session, cfg: StockConfig, sku: str | None = None, *, skus: Iterable[str] | None = None,
              safety: bool = True) -> list[Availability]:
    """Every active product (only ``sku``, or those of ``skus``, when given) with its stock summed
    over the locations, sorted by SKU: one query grouped by SKU; a product no location holds has
    0. ``safety`` False: no safety stock is kept back (what a person at the desk may promise)."""
    q = (select(Product.sku, func.coalesce(func.sum(Stock.on_hand), 0), func.coalesce(func.sum(Stock.reserved), 0))
         .select_from(Product).outerjoin(Stock, Stock.sku == Product.sku)
         .where(Product.active.is_(True)).group_by(Product.sku).order_by(Product.sku))
    if sku is not None:
        q = q.where(Product.sku == sku)
    if skus is not None:
        q = q.where(Product.sku.in_(sorted(set(skus))))
    out = []
    for product_sku, on_hand, reserved in session.execute(q):
        safety_stock = cfg.safety_of(product_sku) if safety else 0
        out.append(Availability(product_sku, int(on_hand), int(reserved), safety_stock,
                                to_sell(int(on_hand), int(reserved), safety_stock)))
    return out


def with_partners(rows: list[Availability], partners: dict[str, int]) -> list[Availability]:
    """``rows`` with the dropshippers' pieces (``partners``, per SKU) added to what may be sold,
    the safety stock kept back once from the sum."""
    return [replace(a, quantity=to_sell(a.on_hand + partners[a.sku], a.reserved, a.safety)) if partners.get(a.sku)
            else a for a in rows]


def changes(pushed: dict[str, int], now: list[Availability], channel: str) -> list[Change]:
    """What differs from ``pushed`` (sku -> quantity last pushed to ``channel``): a new or changed
    quantity, and 0 for a pushed SKU that is no longer sold; sorted by SKU."""
    out = [Change(channel, a.sku, pushed.get(a.sku), a.quantity) for a in now if pushed.get(a.sku) != a.quantity]
    selling = {a.sku for a in now}
    out += [Change(channel, sku, q, 0) for sku, q in pushed.items() if sku not in selling and q != 0]
    return sorted(out, key=lambda c: c.sku)


def push(session: Session, cfg: Config) -> PushResult:
    """Queue a stock update for every changed SKU of every enabled channel that takes stock, and
    remember the quantities, in the caller's transaction (a dry run rolls it back). What a channel
    may sell includes the fresh availability of the dropshippers allowed to serve it."""
    own = available(session, cfg.stock)
    r = PushResult()
    at = clock.now()
    at_partners = partner_stock.orderable(session, cfg, at)
    for channel in channels.all_channels():
        if not (channel.pushes_stock and channel.enabled(cfg)):
            continue
        r.channels.append(channel.name)
        now_available = with_partners(own, partner_stock.for_channel(cfg, at_partners, channel.name))
        rows = {row.sku: row for row in session.scalars(select(ChannelStock).where(ChannelStock.channel == channel.name))}
        found = changes({sku: row.quantity for sku, row in rows.items()}, now_available, channel.name)
        changed = {c.sku for c in found}
        r.unchanged += sum(1 for a in now_available if a.sku not in changed)
        for c in found:
            row = rows.get(c.sku)
            if row is None:
                row = ChannelStock(channel=channel.name, sku=c.sku, quantity=c.quantity, version=1, pushed_at=at)
                session.add(row)
            else:
                row.quantity, row.version, row.pushed_at = c.quantity, row.version + 1, at
            item = channel.stock_update(c.sku, c.quantity, version=row.version)
            # The key carries the new version, so it is never queued already; enqueue's own answer is
            # not counted on (its rowcount is -1 on PostgreSQL with psycopg).
            enqueue(session, item.key, item.kind, item.target, item.payload)
            r.queued += 1
        r.changes += found
    session.flush()
    return r


def superseded(session: Session, channel: str, sku: str, version: int) -> int | None:
    """The newer push of ``sku`` to ``channel`` that replaces push ``version``, None when it is the latest."""
    latest = session.scalar(select(ChannelStock.version).where(ChannelStock.channel == channel,
                                                               ChannelStock.sku == sku))
    return latest if latest is not None and latest > version else None
