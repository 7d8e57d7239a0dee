"""Orders taken at the terminal (``caturactl orders create``, ``orders repeat``) as a sales channel
(caturactl/channels.py): the buyer deals with the merchant directly.

- Nothing to import: ``enabled`` is false, so ``import orders`` skips it, and naming it there
  says where its orders come from instead.
- The buyer pays the merchant (prepayment, invoice, cash on delivery, or paid already), so there
  is no settlement; the payment is expected in caturactl (``caturactl.payments.service``).
- Nobody to confirm a parcel to; the invoice is e-mailed to the buyer, and so are shipping notices.

What it shares with the shop, a direct sale, is in ``connectors/direct_sale.py``.
"""

from __future__ import annotations

from caturactl.core.errors import InputError, StateError
from connectors.direct_sale import DirectSaleChannel

CONFIRM_SHIPMENT = "phone_confirm_shipment"  # outbox kinds: never queued, nobody to confirm to
INVOICE_UPLOAD = "phone_invoice_upload"
REVIEW_REQUEST = "phone_review_request"
STOCK_UPDATE = "phone_stock_update"
PAYMENT_TRANSITION = "phone_payment"  # never queued: no channel keeps a payment state of its own
CANCEL_ORDER = "phone_cancel_order"
NO_MESSAGES = "orders taken at the terminal have no channel to send anything to"


class PhoneChannel(DirectSaleChannel):
    name = "phone"
    label = "Phone"
    confirms_shipments = False
    confirms_orders_itself = False
    pushes_stock = False  # the person at the terminal sees the stock itself
    shipped_status = ""  # never reported: we ship its orders ourselves
    confirmation_kind = CONFIRM_SHIPMENT
    upload_kind = INVOICE_UPLOAD
    review_kind = REVIEW_REQUEST
    stock_kind = STOCK_UPDATE
    payment_kind = PAYMENT_TRANSITION
    cancellation_kind = CANCEL_ORDER
    no_settlements = "orders taken at the terminal have no settlements: the buyer pays the merchant directly"

    def enabled(self, cfg) -> bool:
        return False  # it has no orders to import

    def order_source(self, app, session):
        raise InputError("orders taken at the terminal are not imported: caturactl orders create",
                         where="--channel phone")

    def first_import_days(self, cfg) -> int:
        return 0

    def shipment_confirmation(self, cfg, order, note, parcel):
        raise StateError(NO_MESSAGES)

    def invoice_upload(self, session, cfg, invoice, order, document_type: str):
        raise StateError(NO_MESSAGES)

    def review_request(self, order):
        raise StateError(NO_MESSAGES)

    def stock_update(self, sku: str, quantity: int, *, version: int):
        raise StateError(NO_MESSAGES)

    def payment_transition(self, cfg, order, payment, action: str) -> None:
        return None  # the payment queue is all there is: the buyer alone is told

    def order_cancellation(self, cfg, order) -> None:
        return None

    def outbox(self, app, session):
        return _NoHandlers()


class _NoHandlers:
    """The outbox handlers of a channel that is sent nothing."""

    def handlers(self) -> dict:
        return {}

    def followups(self) -> dict:
        return {}

    def close(self) -> None:
        pass
