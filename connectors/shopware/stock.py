"""The outbox handler of a product's stock at the shop: what the shop may sell of a SKU.

The shop's product is found by its ``productNumber`` (our SKU) with the Admin API's product
search, then its ``stock`` is written (``PATCH /api/product/{id}``); Shopware derives what it
shows as available from it. Setting a figure is idempotent, so a send in doubt is simply made
again, and a product that has the figure already is not written twice. A SKU the shop does not
sell is nothing to correct there: the message is done with a note saying so.
"""

from __future__ import annotations

from caturactl.catalogue.availability import superseded
from caturactl.core.errors import RemoteError
from connectors.shopware.client import ShopwareApi


def send_stock(session, api: ShopwareApi, msg, attempt) -> str | None:
    """Set the shop's stock of ``msg.payload["sku"]`` to its quantity; a note instead when a newer
    push replaces the message, the shop has no such product or has the figure already. Raises
    what ``ShopwareApi.call`` raises."""
    p = msg.payload
    newer = superseded(session, msg.target, p["sku"], p["version"])
    if newer:
        return f"not sent: push {newer} of {p['sku']} replaces it"
    found = api.call("POST", "/api/search/product", {
        "limit": 1, "filter": [{"type": "equals", "field": "productNumber", "value": p["sku"]}],
        "includes": {"product": ["id", "productNumber", "stock"]}}, f"product {p['sku']} at the shop")
    rows = found.get("data") if isinstance(found, dict) else None
    if not isinstance(rows, list):
        raise RemoteError(f"the shop's product search for {p['sku']} answered without data")
    if not rows:
        return f"the shop has no product {p['sku']}: nothing to set"
    product = rows[0]
    if product.get("stock") == p["quantity"]:
        return f"the shop's stock of {p['sku']} is {p['quantity']} already"
    attempt.sending()
    api.call("PATCH", f"/api/product/{product['id']}", {"stock": p["quantity"]},
             f"stock {p['quantity']} of {p['sku']} at the shop")
    return None
