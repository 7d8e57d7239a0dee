"""Telling Amazon that a parcel left: Orders v0 ``confirmShipment``, one call per package.

Why v0: Orders 2026-01-01 has no shipment confirmation, and v0 ``confirmShipment`` stays when
the v0 reads retire (reference/amazon/README.md, header note). The call goes through
``SpApi.call`` so our bucket keeps to Amazon's 2/s burst 10 (README §3) and 429/5xx/timeouts
are retried with backoff. A 400 means Amazon refuses the data; sending it again unchanged will
not help, so it is never retried and becomes a ``RejectedError`` with Amazon's own words.

Amazon does not document what it does with an identical repeat of a packageReferenceId (the
stand-in accepts it), so a confirmation whose answer was lost (a read timeout, a garbled body)
is not repeated inside the call (``SpApi.call(acts=True)``). The outbox keeps it in doubt and,
before it tries again, asks ``confirmed``, which reads the order's packages (Orders 2026-01-01
getOrder with ``includedData=PACKAGES``) and looks for the package reference. The same happens
after a crash between a confirmation and the commit of its outcome.
"""

from __future__ import annotations

from typing import Any

from sp_api.api import OrdersV0, OrdersV20260101
from sp_api.base import ApiResponse
from sp_api.base.exceptions import SellingApiBadRequestException, SellingApiNotFoundException

from caturactl.core.errors import InputError, RejectedError
from caturactl.ports import PackageConfirmation
from connectors.amazon.client import SpApi, amazon_says
from connectors.amazon.orders import iso


def confirmation_body(package: PackageConfirmation) -> dict[str, Any]:
    """The ConfirmShipmentRequest for ``package`` (ordersV0.json; sample in
    confirmShipment_request.json); raises InputError when ``shipped_at`` has no time zone."""
    if package.shipped_at.tzinfo is None:
        raise InputError("shipped_at has no time zone; Amazon needs an instant",
                         where=f"amazon order {package.order_id} package {package.package_reference}")
    detail: dict[str, Any] = {
        # PackageReferenceId is a string holding a positive number (ordersV0.json).
        "packageReferenceId": str(int(package.package_reference)),
        "carrierCode": package.carrier_code,
        "trackingNumber": package.tracking_number,
        # ISO 8601 (PackageDetail.shipDate "format": "date-time"); Amazon refuses "02/21/2022".
        "shipDate": iso(package.shipped_at),
        "orderItems": [{"orderItemId": item_id, "quantity": int(qty)} for item_id, qty in package.items],
    }
    # Optional fields go only when set: an empty carrierName next to "Other" should be Amazon's
    # complaint about a missing name, not about an empty one.
    if package.carrier_name:
        detail["carrierName"] = package.carrier_name
    if package.shipping_method:
        detail["shippingMethod"] = package.shipping_method
    return {"marketplaceId": package.marketplace_id, "packageDetail": detail}


def _accepted(response: ApiResponse) -> None:
    # The library turns an empty 2xx into payload {"status_code": 204} (README §9 Requests);
    # anything else that did not raise (a proxy's HTML page, a 2xx with a body) proves nothing,
    # so it counts as a malformed answer and is retried.
    status = response.payload.get("status_code") if isinstance(response.payload, dict) else None
    if not (isinstance(status, int) and 200 <= status < 300):
        raise ValueError(f"confirmShipment answered without a 204: {response.payload!r}")


def _order(response: ApiResponse) -> dict[str, Any]:
    p = response.payload
    order = p.get("order") if isinstance(p, dict) else None
    if not isinstance(order, dict):
        raise ValueError(f"getOrder answered without an order: {p!r}")
    return order


class AmazonShipments:
    """The ``ShipmentConfirmer`` port over SP-API Orders v0 confirmShipment."""

    def __init__(self, api: SpApi):
        self.api = api
        self._clients: dict[str, Any] = {}

    def _client(self, marketplace_id: str) -> OrdersV0:
        client = self._clients.get(marketplace_id)
        if client is None:
            client = self._clients[marketplace_id] = self.api.client(OrdersV0, marketplace_id)
            self.api.login(client)  # the token exchange must not eat into the first call's timeout
        return client

    def confirm_shipment(self, package: PackageConfirmation) -> None:
        """Confirm one parcel at Amazon (204). Raises RejectedError when Amazon refuses the data
        (400, with Amazon's message and details) or does not know the order (404); ThrottledError
        or RemoteError when Amazon cannot be reached now, after SpApi's retries."""
        body = confirmation_body(package)
        client = self._client(package.marketplace_id)
        where = f"amazon order {package.order_id} package {package.package_reference}"

        def send() -> ApiResponse:
            try:
                return client.confirm_shipment(package.order_id, **body)
            # Raised inside the call: SpApi.call lets a CaturactlError through untouched, so a
            # refusal is neither retried nor reworded as a connection problem.
            except SellingApiBadRequestException as exc:
                raise RejectedError(f"Amazon refused the shipment confirmation: {amazon_says(exc)}",
                                    where=where) from None
            except SellingApiNotFoundException:
                raise RejectedError("order not found at Amazon", where=where) from None

        self.api.call("confirmShipment", send, _accepted, f"confirmShipment for {package.order_id}", acts=True)

    def confirmed(self, order_id: str, marketplace_id: str, package_reference: int) -> bool:
        """Whether Amazon's order already shows the package (getOrder, includedData=PACKAGES).
        Raises RejectedError for an order Amazon does not know, ThrottledError / RemoteError
        when Amazon cannot be reached now."""
        key = f"getOrder:{marketplace_id}"
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = self.api.client(OrdersV20260101, marketplace_id)
            self.api.login(client)
        where = f"amazon order {order_id} package {package_reference}"

        def get() -> ApiResponse:
            try:
                return client.get_order(order_id, includedData=["PACKAGES"])
            except SellingApiNotFoundException:
                raise RejectedError("order not found at Amazon", where=where) from None
            except SellingApiBadRequestException as exc:
                raise RejectedError(f"Amazon refused getOrder: {amazon_says(exc)}", where=where) from None

        order = self.api.call("getOrder", get, _order, f"getOrder {order_id}")
        packages = order.get("packages") or []
        return any(isinstance(p, dict) and str(p.get("packageReferenceId")) == str(int(package_reference))
                   for p in packages)

    def close(self) -> None:
        """Close the HTTP connections of the clients made so far."""
        for client in self._clients.values():
            client.close()
        self._clients.clear()
