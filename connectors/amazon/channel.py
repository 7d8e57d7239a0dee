"""Amazon as a sales channel (caturactl/channels.py): what it does, and the messages that go back to
it. Every Amazon rule the services used to carry lives here:

- Amazon collects the buyer's money and pays it out with its settlements (V2 flat file);
- orders it fulfils itself (FBA: ``fulfilledBy`` AMAZON) are never routed and are invoiced once
  Amazon reports them SHIPPED, unless its VAT Calculation Service issues the invoices
  (``[amazon] vcs``);
- each parcel is confirmed with v0 confirmShipment (Amazon's carrierCode from ``[carriers.X]
  amazon_carrier_code``), an invoice is uploaded through the Feeds API (UPLOAD_VAT_INVOICE) or
  e-mailed (``[invoices] amazon_delivery``), a review request goes through Solicitations;
- Amazon tells its buyers about shipments itself: caturactl mails them only when
  ``[shipping] notify_amazon_buyers`` says so (reference/amazon/customer-contact.md);
- a review request is possible from 5 days after the earliest promised delivery to 30 days after
  the latest; the money Amazon collects waits on the ``amazon_clearing`` account until the payout.

It builds its adapters too (orders, settlement reports, the invoice-feed verdicts of
``invoice_feeds.py``), each starting from the rate budgets the last process left.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import BinaryIO, Callable

from caturactl.channels import OutboxItem
from caturactl.core.errors import ConfigError, StateError
from caturactl.core.events import EventKind, record
from connectors.amazon.client import stored_api
from connectors.amazon.feeds import AmazonInvoices
from connectors.amazon.orders import AmazonMarketplace
from connectors.amazon.reports import AmazonSettlements
from connectors.amazon.settlement import SettlementTotals, summarise_settlement

CONFIRM_SHIPMENT = "amazon_confirm_shipment"  # outbox kinds (stored in outbox rows: never renamed)
INVOICE_UPLOAD = "invoice_upload"
REVIEW_REQUEST = "review_request"
STOCK_UPDATE = "amazon_stock"
# Amazon takes a review request from 5 days after the earliest promised delivery to 30 days after
# the latest (reference/amazon/customer-contact.md §1).
REVIEWS_OPEN_AFTER = timedelta(days=5)
REVIEWS_CLOSE_AFTER = timedelta(days=30)


def carrier_code(cfg, carrier: str) -> tuple[str, str]:
    """Amazon's carrierCode (and carrierName) for a carrier as a location named it."""
    for c in cfg.carriers.values():
        if c.carrier.lower() == carrier.lower():
            return (c.amazon_carrier_code or c.carrier), c.name or c.carrier
    return carrier, carrier


class AmazonChannel:
    name = "amazon"
    label = "Amazon"
    collects_payment = True
    confirms_shipments = True
    requests_reviews = True
    provides_settlements = True
    fulfils_itself = "AMAZON"  # Order.fulfilled_by of FBA orders
    shipped_status = "SHIPPED"  # Order.remote_status once Amazon shipped an FBA order
    confirmation_kind = CONFIRM_SHIPMENT
    upload_kind = INVOICE_UPLOAD
    review_kind = REVIEW_REQUEST
    payment_kind = "amazon_payment"  # never queued: Amazon collects the money
    cancellation_kind = "amazon_cancel_order"  # never queued: Amazon keeps its own payments
    stock_kind = STOCK_UPDATE
    confirms_orders_itself = True  # Amazon confirms every order to its buyer
    pushes_stock = True  # the merchant-fulfilled quantity of each listing (Listings Items API)
    # The purpose of the account the money Amazon collects waits on until the payout (Verrechnungskonto);
    # caturactl.toml's [accounts] overrides name it so: never renamed.
    clearing_account = "amazon_clearing"
    # A seller's product list names the listing id by Amazon's name for it.
    product_columns = {"asin": "listing_id"}
    review_closes_after = REVIEWS_CLOSE_AFTER

    def enabled(self, cfg) -> bool:
        return cfg.amazon.enabled

    # --- orders -------------------------------------------------------------------------------

    def order_source(self, app, session):
        """(the Marketplace adapter over SP-API Orders, starting from the rate budgets the last run
        left; the marketplaces it reads); ConfigError when ``[amazon] enabled`` is false."""
        cfg = app.cfg.amazon
        if not cfg.enabled:
            raise ConfigError("amazon is disabled in caturactl.toml ([amazon] enabled = false)",
                              where="caturactl.toml: amazon.enabled")
        return AmazonMarketplace(cfg, stored_api(cfg, session)), tuple(cfg.marketplaces)

    def first_import_days(self, cfg) -> int:
        return cfg.amazon.first_import_days

    def review_window(self, order) -> tuple[datetime, datetime] | None:
        """(first, last) moment Amazon accepts a review request for ``order``; None without dates."""
        earliest = order.deliver_from or order.deliver_by
        latest = order.deliver_by or order.deliver_from
        if earliest is None or latest is None:
            return None
        return earliest + REVIEWS_OPEN_AFTER, latest + REVIEWS_CLOSE_AFTER

    # --- invoices -----------------------------------------------------------------------------

    def invoice_mode(self, cfg) -> str:
        return cfg.invoices.amazon_delivery

    def issues_invoices(self, cfg) -> bool:
        return cfg.amazon.vcs

    def tells_buyers(self, cfg) -> bool:
        return cfg.shipping.notify_amazon_buyers

    def shipment_confirmation(self, cfg, order, note, parcel) -> OutboxItem:
        code, name = carrier_code(cfg, parcel.carrier)
        return OutboxItem(f"{CONFIRM_SHIPMENT}:{order.external_id}:{parcel.package_reference}", CONFIRM_SHIPMENT,
                          self.name, {
                              "order_id": order.external_id, "marketplace_id": order.marketplace_id,
                              "package_reference": parcel.package_reference, "carrier": parcel.carrier,
                              "carrier_code": code, "carrier_name": name, "shipping_method": parcel.service,
                              "tracking_number": parcel.tracking_number, "shipped_at": parcel.shipped_at.isoformat(),
                              "items": [[item_id, qty] for _sku, qty, item_id in parcel.items],
                              "delivery_id": note.id, "parcel_key": [note.id, parcel.tracking_number]})

    def invoice_upload(self, session, cfg, invoice, order, document_type: str) -> OutboxItem:
        return OutboxItem(f"{INVOICE_UPLOAD}:{invoice.number}", INVOICE_UPLOAD, self.name, {
            "invoice_id": invoice.id, "number": invoice.number, "order_id": order.external_id,
            "marketplace_id": order.marketplace_id,
            "metadata": upload_metadata(session, invoice, order, document_type)})

    def upload_to_resend(self, payload: dict) -> dict:
        """An upload's payload for sending again: its feed and the feed's verdict go."""
        from connectors.amazon.invoice_feeds import without_feed  # it imports this module
        return without_feed(payload)

    def check_uploads(self, app, session) -> dict[str, int]:
        """Amazon's verdict on the invoice feeds not judged yet (getFeed); a refused invoice gets
        a ticket. Counts: checked, accepted, rejected, waiting."""
        from connectors.amazon.invoice_feeds import check_feeds  # it imports this module
        uploader = AmazonInvoices(stored_api(app.cfg.amazon, session))
        try:
            return check_feeds(session, uploader)
        finally:
            uploader.close()

    def outbox(self, app, session):
        """The handlers that send this channel's messages (connectors/amazon/outbox.py)."""
        from connectors.amazon.outbox import AmazonHandlers  # it imports this module
        return AmazonHandlers(app, session)

    # --- settlements --------------------------------------------------------------------------

    def settlement_source(self, app, session) -> AmazonSettlements:
        """Amazon's settlement reports (Reports API), starting from the stored rate budgets."""
        return AmazonSettlements(stored_api(app.cfg.amazon, session))

    def summarise_settlement(self, stream: BinaryIO, name: str, *,
                             per_order: Callable[[str, str, str], str | None] | None = None,
                             digest=None) -> SettlementTotals:
        """A settlement file (V2 flat file, DE or EN form) read once and summed; InputError with
        file:line:column at the first bad value (connectors.amazon.settlement)."""
        return summarise_settlement(stream, name, per_order=per_order, digest=digest)

    def payment_transition(self, cfg, order, payment, action: str) -> OutboxItem:
        raise StateError("Amazon collects the money of its orders: caturactl keeps no payment of them")

    def order_cancellation(self, cfg, order) -> OutboxItem:
        raise StateError("Amazon collects the money of its orders: caturactl cancels none for want of payment")

    def review_request(self, order) -> OutboxItem:
        return OutboxItem(f"{REVIEW_REQUEST}:{order.external_id}", REVIEW_REQUEST, self.name,
                          {"order_id": order.external_id, "marketplace_id": order.marketplace_id,
                           "order_pk": order.id})

    def stock_update(self, sku: str, quantity: int, *, version: int) -> OutboxItem:
        return OutboxItem(f"{STOCK_UPDATE}:{sku}:{version}", STOCK_UPDATE, self.name,
                          {"sku": sku, "quantity": int(quantity), "version": int(version)})


def upload_metadata(session, invoice, order, document_type: str) -> dict[str, str]:
    """UPLOAD_VAT_INVOICE metadata (customer-contact.md §3). Amazon rejects an upload whose
    totals differ from its own at 2 decimals, and both are optional: they are sent only when
    the invoice covers the whole order and they agree; a VAT difference (rounding per line
    at Amazon, per rate here) is recorded for the bookkeeper instead."""
    meta = {"OrderId": order.external_id, "InvoiceNumber": invoice.number, "DocumentType": document_type}
    if invoice.kind == "invoice" and order.total_amount is not None and invoice.gross_total == order.total_amount:
        meta["TotalAmount"] = f"{invoice.gross_total:.2f}"
        amazon_vat = [ln.tax_amount for ln in order.lines]
        if None not in amazon_vat:
            theirs = sum(amazon_vat, Decimal(0))
            if theirs == invoice.tax_total:
                meta["TotalVATAmount"] = f"{invoice.tax_total:.2f}"
            else:
                record(session, EventKind.INVOICED, f"{invoice.number}: VAT {invoice.tax_total} here, {theirs} at "
                       "Amazon (rounding per rate here, per line there); TotalVATAmount not sent", order=order)
    return meta
