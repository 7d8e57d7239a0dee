"""The merchant's own Shopware 6 shop as a sales channel (caturactl/channels.py): what it does, and
the messages that go back to it.

- The shop does not collect the money for us: the buyer pays the merchant (prepayment, invoice,
  PayPal, card, cash on delivery; ``Order.payment_method``), so there is no settlement to
  reconcile. caturactl keeps the payment queue (``caturactl/payments/queue.py``): a prepaid order
  is imported released and waits in routing until its money is matched; each move of its
  payment goes back to the shop as an order_transaction transition (``payment_transition``:
  paid, paid_partially, remind, cancel, refund), and an order cancelled for want of payment is
  cancelled there too (``order_cancellation``).
- Each parcel is confirmed to the shop: its tracking code is added to the order's delivery
  (``PATCH /api/order-delivery/{id}``) and the delivery moves with the ``ship`` or
  ``ship_partially`` transition (``connectors/shopware/outbox.py``).
- The shop has no review requests of its own, and its invoices are ours: e-mailed to the buyer.
- We tell its buyers about shipments ourselves (the shop's own mail is the merchant's choice).
- The shop is told what it may sell of each product (``stock``, connectors/shopware/stock.py).

What it shares with orders taken at the terminal, a direct sale, is in ``connectors/direct_sale.py``.
"""

from __future__ import annotations

from caturactl.channels import OutboxItem
from caturactl.core.errors import ConfigError, StateError
from connectors.direct_sale import DirectSaleChannel
from connectors.shopware.client import ShopwareApi
from connectors.shopware.orders import ShopwareOrders

CONFIRM_SHIPMENT = "shop_confirm_shipment"  # outbox kinds (stored in outbox rows: never renamed)
INVOICE_UPLOAD = "shop_invoice_upload"  # never queued: the shop takes no invoices from us
REVIEW_REQUEST = "shop_review_request"  # never queued: the shop asks for no reviews
PAYMENT_TRANSITION = "shop_payment"
CANCEL_ORDER = "shop_cancel_order"
STOCK_UPDATE = "shop_stock"


class ShopwareChannel(DirectSaleChannel):
    name = "shop"
    label = "Shop"
    confirms_shipments = True
    shipped_status = "SHIPPED"  # Order.remote_status once the shop reports the delivery shipped
    confirmation_kind = CONFIRM_SHIPMENT
    upload_kind = INVOICE_UPLOAD
    review_kind = REVIEW_REQUEST
    payment_kind = PAYMENT_TRANSITION
    cancellation_kind = CANCEL_ORDER
    stock_kind = STOCK_UPDATE
    confirms_orders_itself = False  # we do: switch off the shop's own order mail
    pushes_stock = True  # a product's stock, found by its productNumber (our SKU)
    no_settlements = "the shop sends no settlements: its buyers pay the merchant directly"

    def enabled(self, cfg) -> bool:
        return cfg.shop.enabled

    # --- orders -------------------------------------------------------------------------------

    def order_source(self, app, session):
        """(the Marketplace adapter over the Admin API order search; the sales channel it reads);
        ConfigError when ``[shop] enabled`` is false."""
        cfg = app.cfg.shop
        if not cfg.enabled:
            raise ConfigError("the shop is disabled in caturactl.toml ([shop] enabled = false)",
                              where="caturactl.toml: shop.enabled")
        return ShopwareOrders(cfg, ShopwareApi(cfg)), (cfg.sales_channel or "all",)

    def first_import_days(self, cfg) -> int:
        return cfg.shop.first_import_days

    # --- messages -----------------------------------------------------------------------------

    def shipment_confirmation(self, cfg, order, note, parcel) -> OutboxItem:
        return OutboxItem(f"{CONFIRM_SHIPMENT}:{order.external_id}:{parcel.package_reference}", CONFIRM_SHIPMENT,
                          self.name, {
                              "order_id": order.external_id, "order_pk": order.id,
                              "package_reference": parcel.package_reference, "carrier": parcel.carrier,
                              "tracking_number": parcel.tracking_number, "shipped_at": parcel.shipped_at.isoformat(),
                              "items": [[item_id, qty] for _sku, qty, item_id in parcel.items],
                              "delivery_id": note.id, "parcel_key": [note.id, parcel.tracking_number]})

    def invoice_upload(self, session, cfg, invoice, order, document_type: str) -> OutboxItem:
        raise StateError("the shop takes no invoice uploads: its invoices are e-mailed ([invoices] for the shop: email)")

    def review_request(self, order) -> OutboxItem:
        raise StateError("the shop asks its buyers for no reviews")

    def payment_transition(self, cfg, order, payment, action: str) -> OutboxItem:
        return OutboxItem(f"{PAYMENT_TRANSITION}:{order.external_id}:{payment.id}:{action}", PAYMENT_TRANSITION,
                          self.name, {"order_id": order.external_id, "order_pk": order.id, "payment_id": payment.id,
                                      "action": action, "amount_paid": f"{payment.amount_paid:.2f}"})

    def order_cancellation(self, cfg, order) -> OutboxItem:
        return OutboxItem(f"{CANCEL_ORDER}:{order.external_id}", CANCEL_ORDER, self.name,
                          {"order_id": order.external_id, "order_pk": order.id})

    def stock_update(self, sku: str, quantity: int, *, version: int) -> OutboxItem:
        return OutboxItem(f"{STOCK_UPDATE}:{sku}:{version}", STOCK_UPDATE, self.name,
                          {"sku": sku, "quantity": int(quantity), "version": int(version)})

    def outbox(self, app, session):
        """The handlers that send this channel's messages (connectors/shopware/outbox.py)."""
        from connectors.shopware.outbox import (
            ShopwareHandlers,  # it imports this module
        )
        return ShopwareHandlers(app, session)
