"""The outbox handlers of Amazon's calls: confirmShipment, the invoice upload (Feeds API,
UPLOAD_VAT_INVOICE), the review request (Solicitations) and a listing's quantity (Listings Items). The composition root
(``App.sender``) asks each registered channel for these; a handler sends one message and, after
a crash left the send in doubt, asks Amazon first whether it got through.

Clients are made on first use, once per run, and their rate budgets are kept for the next run
when the sender closes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError

from caturactl.billing import invoicing
from caturactl.billing.models import Invoice
from caturactl.catalogue.availability import superseded
from caturactl.core.cursors import keep_budget
from caturactl.core.errors import ConfigError
from caturactl.fulfilment import shipping
from caturactl.orders import reviews
from caturactl.ports import PackageConfirmation
from connectors.amazon.channel import CONFIRM_SHIPMENT, INVOICE_UPLOAD, REVIEW_REQUEST, STOCK_UPDATE, carrier_code
from connectors.amazon.client import stored_api
from connectors.amazon.feeds import AmazonInvoices
from connectors.amazon.invoice_feeds import feed_of_interrupted_upload
from connectors.amazon.listings import AmazonListings
from connectors.amazon.shipments import AmazonShipments
from connectors.amazon.solicitations import AmazonReviews

# The calls of each client whose rate budget is kept between runs.
BUDGETED = (("confirmer", ("confirmShipment", "getOrder")),
            ("invoices", ("createFeedDocument", "createFeed", "getFeeds")),
            ("reviews", ("getSolicitationActionsForOrder", "createProductReviewAndSellerFeedbackSolicitation")),
            ("listings", ("patchListingsItem", "getListingsItem")))


class AmazonHandlers:
    def __init__(self, app, session) -> None:
        self.app, self.s = app, session
        self.clients: dict = {}

    def _client(self, key: str):
        if key not in self.clients:
            cfg = self.app.cfg.amazon
            if key == "listings":
                if not cfg.seller_id:
                    raise ConfigError("amazon.seller_id is empty: the Listings Items API needs the merchant token "
                                      "(Seller Central, Account Info)", where="caturactl.toml: amazon.seller_id")
                self.clients[key] = AmazonListings(stored_api(cfg, self.s), cfg.seller_id, cfg.marketplaces[0])
                return self.clients[key]
            make = {"confirmer": AmazonShipments, "invoices": AmazonInvoices, "reviews": AmazonReviews}[key]
            self.clients[key] = make(stored_api(cfg, self.s))
        return self.clients[key]

    def handlers(self) -> dict:
        return {CONFIRM_SHIPMENT: self.confirm, INVOICE_UPLOAD: self.upload_invoice, REVIEW_REQUEST: self.review,
                STOCK_UPDATE: self.stock}

    def followups(self) -> dict:
        return {CONFIRM_SHIPMENT: shipping.channel_confirmed, INVOICE_UPLOAD: invoicing.invoice_sent,
                REVIEW_REQUEST: reviews.requested}

    def confirm(self, msg, attempt) -> str | None:
        amazon = self._client("confirmer")
        p = msg.payload
        if attempt.in_doubt and amazon.confirmed(p["order_id"], p["marketplace_id"], p["package_reference"]):
            return "Amazon's order shows the package: the confirmation a crash cut off got through"
        # The carrier code is looked up when sending, so fixing [carriers] and retrying helps.
        code, name = carrier_code(self.app.cfg, p["carrier"]) if "carrier" in p else \
            (p["carrier_code"], p["carrier_name"])
        attempt.sending()
        amazon.confirm_shipment(PackageConfirmation(
            order_id=p["order_id"], marketplace_id=p["marketplace_id"], package_reference=p["package_reference"],
            carrier_code=code, carrier_name=name, shipping_method=p["shipping_method"],
            tracking_number=p["tracking_number"], shipped_at=datetime.fromisoformat(p["shipped_at"]),
            items=tuple((item_id, qty) for item_id, qty in p["items"])))
        return None

    def upload_invoice(self, msg, attempt) -> str | None:
        uploader = self._client("invoices")
        p = msg.payload
        if attempt.in_doubt:
            feed_id = feed_of_interrupted_upload(self.s, uploader, msg, attempt.in_doubt)
            if feed_id:
                msg.payload = {**p, "feed_id": feed_id, "found_after_crash": True}
                return f"Amazon lists feed {feed_id}: the upload a crash cut off got through"
        inv = self.s.get(Invoice, p["invoice_id"])
        feed_id = uploader.upload_invoice(p["order_id"], p["marketplace_id"], inv.pdf, p["metadata"],
                                          before_submit=attempt.sending)
        msg.payload = {**p, "feed_id": feed_id}  # a new dict, so the JSON column is saved
        return None

    def review(self, msg, attempt) -> str | None:
        p = msg.payload
        sent = self._client("reviews").request_review(p["order_id"], p["marketplace_id"], before_send=attempt.sending)
        if not sent and attempt.in_doubt:
            # Amazon offered it to the interrupted attempt (it only marks after the offer)
            # and offers it no more: that attempt's request went through.
            msg.payload = {**p, "sent": True, "found_after_crash": True}
            return "Amazon offers it no more: the request a crash cut off got through"
        msg.payload = {**p, "sent": sent}
        return None

    def stock(self, msg, attempt) -> str | None:
        p = msg.payload
        newer = superseded(self.s, msg.target, p["sku"], p["version"])
        if newer:
            return f"not sent: push {newer} of {p['sku']} replaces it"
        # Setting a quantity is idempotent: a send in doubt is simply made again.
        attempt.sending()
        self._client("listings").set_quantity(p["sku"], p["quantity"])
        return None

    def close(self) -> None:
        for key, operations in BUDGETED:
            if key not in self.clients:
                continue
            try:
                left = self.clients[key].api.budgets()
                for operation in operations:
                    if operation in left:
                        keep_budget(self.s, operation, *left[operation])
                self.s.commit()
            except SQLAlchemyError:
                # The session failed (a deadlock, the database gone): the bucket is only a saving,
                # and the error that failed the run is the one to show.
                pass
            client = self.clients.pop(key)
            if hasattr(client, "close"):
                client.close()
