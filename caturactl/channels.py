"""Sales channels: what each one can do, and the one registry the services ask.

A channel is where orders come from (Amazon today; the merchant's own shop next). The services
never name one: they ask the order's channel what it does and let it build the messages that go
back to it. A channel declares:

- ``collects_payment``: the channel takes the buyer's money and pays it out with its settlement
  (an invoice is paid already; a credit note is refunded through the channel);
- ``confirms_shipments``: each parcel is confirmed back to the channel (``shipment_confirmation``);
- ``requests_reviews``: the channel can ask its buyers for a review (``review_request``);
- a channel that does not collect the money follows caturactl's payment queue: each move of a
  payment goes back to it (``payment_transition``), and an order cancelled for want of payment
  is cancelled there too (``order_cancellation``);
- ``pushes_stock``: the channel is told how many pieces of each SKU it may sell
  (``stock_update``, queued by ``caturactl stock push``);
- ``provides_settlements``: its settlements are reconciled against our invoices;
- ``fulfils_itself``: the value of ``Order.fulfilled_by`` for orders the channel ships itself
  ("" when it never does); those are never routed, and are invoiced once ``shipped_status``;
- ``invoice_mode(cfg)``: "upload" (the channel takes the document: ``invoice_upload``), "email"
  or "none"; ``issues_invoices(cfg)``: the channel invoices its orders itself (then we do not);
- ``tells_buyers(cfg)``: whether we may mail its buyers ourselves (shipping notices);
- ``clearing_account``: the account purpose its collected money waits on until the payout;
- the adapters it is reached through: ``order_source`` (orders to import), ``settlement_source``
  and ``summarise_settlement`` (its payouts), ``check_uploads`` (what became of uploaded
  invoices), ``outbox`` (the handlers of its messages); and its rules: ``first_import_days``,
  ``review_window``, ``upload_to_resend``.

The registry is this module's ``REGISTERED``: one line per channel, naming the class that
implements it (``connectors/<channel>/channel.py``). A new channel is a new package plus that one
line; ``docs/architecture.md`` walks through it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from caturactl.core.errors import StateError

# The one place that names the channels there are: name -> "module:attribute".
REGISTERED = {
    "amazon": "connectors.amazon.channel:AmazonChannel",
    "shop": "connectors.shopware.channel:ShopwareChannel",
    "phone": "connectors.phone.channel:PhoneChannel",  # orders taken at the terminal (orders create)
}


@dataclass(frozen=True)
class OutboxItem:
    """A message a channel wants sent: its outbox key (the claim), kind, target and payload."""
    key: str
    kind: str
    target: str
    payload: dict[str, Any]


class SalesChannel(Protocol):
    name: str
    label: str
    collects_payment: bool
    confirms_shipments: bool
    requests_reviews: bool
    provides_settlements: bool
    fulfils_itself: str
    shipped_status: str
    confirmation_kind: str  # the outbox kinds of its messages (the sender's handlers are keyed by them)
    upload_kind: str
    review_kind: str
    payment_kind: str
    cancellation_kind: str
    stock_kind: str
    pushes_stock: bool
    confirms_orders_itself: bool  # the channel mails its buyers the order confirmation (we send none)
    clearing_account: str  # [accounts] purpose of its clearing account (Verrechnungskonto)
    product_columns: dict[str, str]  # its names for products CSV columns -> ours ({"asin": "listing_id"})
    review_closes_after: timedelta  # no review request later than this after the latest promised delivery

    def enabled(self, cfg) -> bool:
        """True when the configuration switches the channel on (an import of every channel skips
        the others)."""
        ...

    def invoice_mode(self, cfg) -> str:
        """How its orders' invoices reach the buyer: "upload", "email" or "none"."""
        ...

    def issues_invoices(self, cfg) -> bool:
        """True when the channel invoices its orders itself, so caturactl issues none."""
        ...

    def tells_buyers(self, cfg) -> bool:
        """True when caturactl may mail the channel's buyers itself (shipping notices)."""
        ...

    def shipment_confirmation(self, cfg, order, note, parcel) -> OutboxItem:
        """The message that tells the channel a parcel of ``order`` left."""
        ...

    def invoice_upload(self, session, cfg, invoice, order, document_type: str) -> OutboxItem:
        """The message that hands an invoice (or credit note) to the channel."""
        ...

    def review_request(self, order) -> OutboxItem:
        """The message that asks the channel to request a review of ``order``."""
        ...

    def stock_update(self, sku: str, quantity: int, *, version: int) -> OutboxItem:
        """The message that sets what the channel may sell of ``sku`` to ``quantity``; ``version``
        counts the pushes of the SKU to the channel (the message's key)."""
        ...

    def payment_transition(self, cfg, order, payment, action: str) -> OutboxItem | None:
        """The message that moves the channel's payment of ``order`` by ``action`` ("paid",
        "paid_partially", "remind", "cancel", "refund"); None when the channel keeps no payment
        state of its own; StateError from a channel that collects the money itself."""
        ...

    def order_cancellation(self, cfg, order) -> OutboxItem | None:
        """The message that cancels ``order`` at the channel (caturactl cancelled it: unpaid);
        None when there is nothing to cancel there; StateError from a channel that collects the
        money itself."""
        ...

    def order_source(self, app, session) -> tuple[Any, tuple[str, ...]]:
        """(its ``Marketplace`` adapter, the scope an import runs over), starting from the stored
        rate budgets; ConfigError when the channel is switched off in the configuration."""
        ...

    def first_import_days(self, cfg) -> int:
        """How many days back the first import of its orders reaches."""
        ...

    def review_window(self, order) -> tuple[datetime, datetime] | None:
        """(first, last) moment it takes a review request for ``order``; None when it cannot say."""
        ...

    def upload_to_resend(self, payload: dict) -> dict:
        """An invoice upload's payload for sending again, without what it learnt of the last send."""
        ...

    def check_uploads(self, app, session) -> dict[str, int]:
        """Its verdict on the invoices uploaded and not judged yet; a refused one gets a ticket.
        Counts: checked, accepted, rejected, waiting."""
        ...

    def settlement_source(self, app, session):
        """Its settlement reports: ``list_reports(since)``, ``download(ref)``, ``close()``."""
        ...

    def summarise_settlement(self, stream, name: str, *, per_order=None, digest=None):
        """A settlement file read once: ``header``, ``lines``, ``by_type`` and ``per_order_cents``;
        InputError naming file:line:column, nothing kept."""
        ...

    def outbox(self, app, session):
        """Its outbox handlers for one sender run: ``handlers()`` and ``followups()`` by message
        kind, ``close()`` when the run ends (clients closed, rate budgets kept)."""
        ...


_loaded: dict[str, SalesChannel] = {}


def get(name: str) -> SalesChannel:
    """The channel called ``name``; StateError when no channel of that name is registered (an
    order of a channel this installation no longer knows)."""
    channel = _loaded.get(name)
    if channel is None:
        target = REGISTERED.get(name)
        if target is None:
            raise StateError(f"no sales channel {name!r} is registered (known: {', '.join(sorted(REGISTERED))})")
        module, attribute = target.split(":")
        channel = _loaded[name] = getattr(importlib.import_module(module), attribute)()
    return channel


def all_channels() -> list[SalesChannel]:
    return [get(name) for name in sorted(REGISTERED)]


def settling() -> SalesChannel:
    """The channel whose settlements are imported and booked: the one registered channel that
    provides settlements; StateError when none or several do (settlements do not record their
    channel yet)."""
    found = [c for c in all_channels() if c.provides_settlements]
    if len(found) != 1:
        raise StateError(f"settlements need exactly one channel that provides them; registered: "
                         f"{', '.join(c.name for c in found) or 'none'}")
    return found[0]


def product_columns() -> dict[str, str]:
    """Every channel's names for columns of the products CSV, mapped to ours."""
    return {alias: column for c in all_channels() for alias, column in c.product_columns.items()}


def enabled(cfg) -> list[str]:
    """The names of the channels the configuration switches on, sorted."""
    return [c.name for c in all_channels() if c.enabled(cfg)]


def names(capability: str) -> list[str]:
    """The names of the channels with ``capability`` (an attribute that is true), sorted."""
    return [c.name for c in all_channels() if getattr(c, capability)]


def message_kinds(which: str) -> set[str]:
    """The outbox kinds of every channel's ``which`` messages ("confirmation", "upload", "review",
    "stock", "payment", "cancellation")."""
    return {getattr(c, f"{which}_kind") for c in all_channels()}
