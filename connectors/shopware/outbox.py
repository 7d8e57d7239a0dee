"""The outbox handlers of the shop's calls back: a parcel's confirmation here; a stock level
(``stock.py``) and the payment queue's moves (``payments.py``) beside it.

The shop learns of a parcel in two steps on the order's delivery: its tracking code is added
(``PATCH /api/order-delivery/{id}``, ``trackingCodes``), then the delivery moves (``ship`` when
every delivery note of the order has left, ``ship_partially`` before), so the shop's shipping
mail, if the merchant has it on, already carries the code. The handler reads the delivery first,
every time: what is there already (after a crash, or a person in the shop's administration) is
not sent again, so a send in doubt is resolved by looking.
"""

from __future__ import annotations

from sqlalchemy import select

from caturactl.core.errors import RejectedError
from caturactl.core.lifecycle import DeliveryState
from caturactl.fulfilment import shipping
from caturactl.fulfilment.models import DeliveryNote
from connectors.shopware.channel import (
    CANCEL_ORDER,
    CONFIRM_SHIPMENT,
    PAYMENT_TRANSITION,
    STOCK_UPDATE,
)
from connectors.shopware.client import ShopwareApi
from connectors.shopware.payments import cancel_order, transition_payment
from connectors.shopware.stock import send_stock

DELIVERY = {"deliveries": {"associations": {"stateMachineState": {}}}}
DONE = {"shipped"}
CAN_SHIP = {"open", "shipped_partially"}


class ShopwareHandlers:
    def __init__(self, app, session) -> None:
        self.app, self.s = app, session
        self._api: ShopwareApi | None = None

    def api(self) -> ShopwareApi:
        if self._api is None:  # made on first use: a run with no shop message needs no shop
            self._api = ShopwareApi(self.app.cfg.shop)
        return self._api

    def handlers(self) -> dict:
        return {CONFIRM_SHIPMENT: self.confirm,
                STOCK_UPDATE: lambda msg, attempt: send_stock(self.s, self.api(), msg, attempt),
                PAYMENT_TRANSITION: lambda msg, attempt: transition_payment(self.api(), msg, attempt),
                CANCEL_ORDER: lambda msg, attempt: cancel_order(self.api(), msg, attempt)}

    def followups(self) -> dict:
        return {CONFIRM_SHIPMENT: shipping.channel_confirmed}

    def confirm(self, msg, attempt) -> str | None:
        p = msg.payload
        api = self.api()
        found = api.call("POST", "/api/search/order", {
            "limit": 1, "filter": [{"type": "equals", "field": "orderNumber", "value": p["order_id"]}],
            "associations": DELIVERY}, f"order {p['order_id']} at the shop")
        rows = found.get("data") if isinstance(found, dict) else None
        if not rows:
            raise RejectedError(f"the shop has no order {p['order_id']}")
        deliveries = rows[0].get("deliveries") or []
        if not deliveries:
            raise RejectedError(f"the shop's order {p['order_id']} has no delivery")
        delivery = deliveries[0]
        state = ((delivery.get("stateMachineState") or {}).get("technicalName")) or ""
        codes = [c for c in delivery.get("trackingCodes") or [] if isinstance(c, str)]
        complete = self._all_left(p["order_pk"])
        move = None
        if state in CAN_SHIP:
            move = "ship" if complete else ("ship_partially" if state == "open" else None)
        elif state not in DONE:
            raise RejectedError(f"the shop's delivery of order {p['order_id']} is {state or 'in no state'}: "
                                f"a person must look before {p['tracking_number']} is confirmed there")
        if p["tracking_number"] in codes and move is None:
            return (f"the shop's delivery is {state} and has {p['tracking_number']} already"
                    + (": the confirmation a crash cut off got through" if attempt.in_doubt else ""))
        attempt.sending()
        if p["tracking_number"] not in codes:
            api.call("PATCH", f"/api/order-delivery/{delivery['id']}",
                     {"trackingCodes": codes + [p["tracking_number"]]},
                     f"tracking code {p['tracking_number']} for order {p['order_id']}", acts=True)
        if move:
            api.call("POST", f"/api/_action/order_delivery/{delivery['id']}/state/{move}", {"sendMail": True},
                     f"{move} of order {p['order_id']}", acts=True)
        return None

    def _all_left(self, order_pk: int) -> bool:
        """True when every delivery note of the order has nothing left to ship."""
        notes = self.s.scalars(select(DeliveryNote).where(DeliveryNote.order_id == order_pk,
                                                          DeliveryNote._state != DeliveryState.CANCELLED.value)).all()
        return bool(notes) and all(n.open_quantity == 0 for n in notes)

    def close(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None
