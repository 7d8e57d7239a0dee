"""The small interfaces services need from the outside world, and the plain values crossing them.

Services import only this module, never an adapter; ``caturactl.app`` wires adapters in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterator, Protocol

from caturactl.model.address import Address
from caturactl.model.money import Money


@dataclass(frozen=True, slots=True)
class TaxRegistration:
    entity_type: str  # BUYER | MERCHANT | MARKETPLACE
    number: str
    kind: str = ""  # VAT | BUSINESS | ...
    legal_name: str = ""


@dataclass(frozen=True, slots=True)
class MarketplaceLine:
    line_id: str  # Amazon orderItemId
    sku: str
    asin: str
    title: str
    quantity: int
    quantity_shipped: int
    unit_price: Money | None
    total: Money | None  # proceeds for the line (gross), None while Amazon hides prices
    tax: Money | None
    shipping: Money | None
    gift_message: str = ""
    cancel_requested: str = ""  # the buyer's cancel reason, "" when none


@dataclass(frozen=True, slots=True)
class MarketplaceOrder:
    """One order as the marketplace reports it, already parsed and checked by the adapter."""

    channel: str  # "amazon"
    external_id: str  # Amazon orderId (3-7-7)
    marketplace_id: str
    marketplace_name: str
    created_at: datetime  # UTC
    updated_at: datetime  # UTC
    status: str  # PENDING | UNSHIPPED | PARTIALLY_SHIPPED | SHIPPED | CANCELLED | ...
    fulfilled_by: str  # MERCHANT | AMAZON
    service_level: str
    programs: tuple[str, ...]
    buyer_email: str
    buyer_name: str
    buyer_company: str
    purchase_order: str
    address: Address | None
    delivery_instructions: str
    total: Money | None
    lines: tuple[MarketplaceLine, ...]
    tax_registrations: tuple[TaxRegistration, ...] = ()
    ship_by: datetime | None = None
    deliver_by: datetime | None = None
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_business(self) -> bool:
        return "AMAZON_BUSINESS" in self.programs

    @property
    def buyer_tax_ids(self) -> tuple[str, ...]:
        return tuple(t.number for t in self.tax_registrations if t.entity_type == "BUYER" and t.number)


@dataclass(frozen=True, slots=True)
class BrokenOrder:
    """An order the adapter could not parse: recorded with a ticket, never silently dropped."""

    external_id: str
    where: str  # the field path, e.g. "orderItems[1].quantityOrdered"
    reason: str
    raw: dict = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class OrderPage:
    """One page of changed orders and the cursor state that resumes after it."""

    orders: tuple[MarketplaceOrder, ...]
    broken: tuple[BrokenOrder, ...]
    next_token: str | None  # None on the last page
    window_end: datetime | None  # the upper bound the marketplace applied (lastUpdatedBefore)


@dataclass(frozen=True, slots=True)
class CallStats:
    calls: int = 0
    throttled: int = 0  # 429s received
    retries: int = 0
    waited_seconds: float = 0.0  # waiting for the rate limit and backing off


@dataclass(frozen=True, slots=True)
class OrderQuery:
    """What to ask the marketplace for: orders updated in [updated_after, now-2min)."""

    updated_after: datetime
    marketplace_ids: tuple[str, ...]
    resume_token: str | None = None


class Marketplace(Protocol):
    """A sales channel we import orders from."""

    name: str

    def changed_orders(self, query: OrderQuery) -> Iterator[OrderPage]:
        """Pages of orders updated since ``query.updated_after``; raises RemoteError/ThrottledError."""
        ...

    def call_stats(self) -> CallStats:
        """What talking to the marketplace cost so far in this process."""
        ...

    def rate_budgets(self) -> dict[str, tuple[float, datetime]]:
        """Per operation, what is left of the remote rate limit and when, for the next process."""
        ...
