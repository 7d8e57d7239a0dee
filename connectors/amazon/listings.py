"""Telling Amazon how many pieces of a SKU it may sell: Listings Items 2021-08-01
``patchListingsItem`` with a JSON Patch that replaces the listing's ``fulfillment_availability``
(merchant-fulfilled: channel code DEFAULT), and ``getListingsItem`` to read it back.

Setting a quantity is idempotent, so unlike confirmShipment the call may be repeated after a
5xx or a lost answer: the same quantity twice is the same listing. The usage plan is 5 requests
per second, burst 5 (``client.RATES``); our bucket keeps to it. Amazon answers 200 with a
submission status; anything but ACCEPTED is a refusal with Amazon's issues as the reason.

The attribute names no marketplace (the merchant's quantity of a SKU is one figure), but the
model wants exactly one marketplace id per call: the first configured marketplace is sent.
"""

from __future__ import annotations

from typing import Any

from sp_api.api import ListingsItems
from sp_api.base import ApiResponse
from sp_api.base.exceptions import SellingApiBadRequestException, SellingApiNotFoundException

from caturactl.core.errors import RejectedError
from connectors.amazon.client import SpApi, amazon_says

FULFILMENT_CHANNEL = "DEFAULT"  # merchant-fulfilled; Amazon keeps FBA quantities itself
PRODUCT_TYPE = "PRODUCT"  # an offer-only patch needs no product type of its own


def quantity_patch(quantity: int) -> dict[str, Any]:
    """The ListingsItemPatchRequest that sets the merchant-fulfilled quantity to ``quantity``."""
    return {"productType": PRODUCT_TYPE, "patches": [{
        "op": "replace", "path": "/attributes/fulfillment_availability",
        "value": [{"fulfillment_channel_code": FULFILMENT_CHANNEL, "quantity": int(quantity)}]}]}


def _accepted(response: ApiResponse) -> dict[str, Any]:
    p = response.payload
    if not isinstance(p, dict) or "status" not in p:
        raise ValueError(f"patchListingsItem answered without a submission status: {p!r}")
    return p


def _item(response: ApiResponse) -> dict[str, Any]:
    p = response.payload
    if not isinstance(p, dict) or "sku" not in p:
        raise ValueError(f"getListingsItem answered without an item: {p!r}")
    return p


class AmazonListings:
    """Quantities of the seller's listings (Listings Items 2021-08-01)."""

    def __init__(self, api: SpApi, seller_id: str, marketplace_id: str):
        self.api, self.seller_id, self.marketplace_id = api, seller_id, marketplace_id
        self._api_client: ListingsItems | None = None

    def _client(self) -> ListingsItems:
        if self._api_client is None:
            self._api_client = self.api.client(ListingsItems, self.marketplace_id)
            self.api.login(self._api_client)
        return self._api_client

    def set_quantity(self, sku: str, quantity: int) -> None:
        """Set what Amazon may sell of ``sku``. RejectedError when Amazon refuses it (400, an
        unknown listing, a submission that is not ACCEPTED, with Amazon's words); ThrottledError
        or RemoteError when Amazon cannot be reached now, after SpApi's retries."""
        client = self._client()
        where = f"amazon listing {sku}"

        def send() -> ApiResponse:
            try:
                return client.patch_listings_item(self.seller_id, sku, marketplaceIds=[self.marketplace_id],
                                                  body=quantity_patch(quantity))
            except SellingApiBadRequestException as exc:
                raise RejectedError(f"Amazon refused the quantity: {amazon_says(exc)}", where=where) from None
            except SellingApiNotFoundException:
                raise RejectedError("Amazon has no listing of this SKU", where=where) from None

        answer = self.api.call("patchListingsItem", send, _accepted, f"patchListingsItem for {sku}")
        if answer.get("status") != "ACCEPTED":
            issues = "; ".join(f"{i.get('message', '')} ({i.get('code', '')})" for i in answer.get("issues") or []
                               if isinstance(i, dict))
            raise RejectedError(f"Amazon did not accept the quantity: {answer.get('status')}"
                                + (f": {issues}" if issues else ""), where=where)

    def quantity(self, sku: str) -> int | None:
        """The merchant-fulfilled quantity Amazon shows for ``sku`` (None when it has none);
        RejectedError for a listing Amazon does not know."""
        client = self._client()

        def get() -> ApiResponse:
            try:
                return client.get_listings_item(self.seller_id, sku, marketplaceIds=[self.marketplace_id],
                                                includedData=["fulfillmentAvailability"])
            except SellingApiNotFoundException:
                raise RejectedError("Amazon has no listing of this SKU", where=f"amazon listing {sku}") from None

        item = self.api.call("getListingsItem", get, _item, f"getListingsItem for {sku}")
        for entry in item.get("fulfillmentAvailability") or []:
            if isinstance(entry, dict) and entry.get("fulfillmentChannelCode") == FULFILMENT_CHANNEL:
                return entry.get("quantity")
        return None

    def close(self) -> None:
        if self._api_client is not None:
            self._api_client.close()
            self._api_client = None
