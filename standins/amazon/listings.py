"""The seller's listings in the SP-API stand-in: Listings Items 2021-08-01 patchListingsItem and
getListingsItem, as far as a merchant-fulfilled quantity goes.

Every SKU of the stand-in's catalogue is a listing of the seller (its ASIN from the catalogue);
each keeps its ``fulfillment_availability`` (no quantity until one is set). A patch is checked as
the model describes ListingsItemPatchRequest (listingsItems_2021-08-01.json): ``productType``
and a non-empty ``patches`` list of ``{op, path, value}`` with op add, replace, merge or delete
and a path of ``/attributes/<name>``. The stand-in applies only
``/attributes/fulfillment_availability`` (a list of ``{fulfillment_channel_code, quantity}``,
quantity a whole number from 0) and refuses other attributes with a 400: it keeps nothing else
(its choice; Amazon takes them and judges them against the product type). A patch of a SKU that
is not a listing answers 200 with status INVALID and an ERROR issue, as Amazon reports a
submission it cannot apply (the issue's code and wording are the stand-in's).
"""

from __future__ import annotations

import threading
import uuid
from typing import Any, Callable

from .marketplace import CATALOGUE, UTC

OPS = ("add", "replace", "merge", "delete")
AVAILABILITY = "/attributes/fulfillment_availability"
INCLUDED = ("summaries", "attributes", "issues", "offers", "fulfillmentAvailability", "procurement",
            "relationships", "productTypes")


class BadPatch(ValueError):
    """The request breaks the model: a 400 with these details."""


def check_patch(body: Any) -> list[dict[str, Any]]:
    """The fulfilment availability entries a ListingsItemPatchRequest sets (an empty list for a
    delete); raises BadPatch naming the field for what the model or the stand-in refuses."""
    if not isinstance(body, dict):
        raise BadPatch("The request body must be a ListingsItemPatchRequest object.")
    if not isinstance(body.get("productType"), str) or not body["productType"].strip():
        raise BadPatch("productType is required.")
    patches = body.get("patches")
    if not isinstance(patches, list) or not patches:
        raise BadPatch("patches must list at least one patch operation.")
    result: list[dict[str, Any]] | None = None
    for i, patch in enumerate(patches):
        where = f"patches[{i}]"
        if not isinstance(patch, dict):
            raise BadPatch(f"{where} must be an object.")
        op, path = patch.get("op"), patch.get("path")
        if op not in OPS:
            raise BadPatch(f"{where}.op must be one of {', '.join(OPS)}, not {op!r}.")
        if not isinstance(path, str) or not path.startswith("/attributes/") or len(path) <= len("/attributes/"):
            raise BadPatch(f"{where}.path must name an attribute (/attributes/<name>), not {path!r}.")
        if path != AVAILABILITY:
            raise BadPatch(f"{where}.path {path} is not kept by the stand-in (only {AVAILABILITY}).")
        if op == "delete":
            result = []
            continue
        value = patch.get("value")
        if not isinstance(value, list) or not value:
            raise BadPatch(f"{where}.value must list the fulfillment availability.")
        entries = []
        for j, entry in enumerate(value):
            at = f"{where}.value[{j}]"
            if not isinstance(entry, dict):
                raise BadPatch(f"{at} must be an object.")
            code, qty = entry.get("fulfillment_channel_code"), entry.get("quantity")
            if not isinstance(code, str) or not code:
                raise BadPatch(f"{at}.fulfillment_channel_code is required.")
            if isinstance(qty, bool) or not isinstance(qty, int) or qty < 0:
                raise BadPatch(f"{at}.quantity must be a whole number of at least 0, not {qty!r}.")
            entries.append({"fulfillment_channel_code": code, "quantity": qty})
        result = entries
    return result or []


class Listings:
    """The seller's listings: quantity per SKU and the patches received, oldest first."""

    def __init__(self, now: Callable[[], Any]):
        self._now = now
        self._lock = threading.Lock()
        self._items = {r["sku"]: r for r in CATALOGUE}
        self._availability: dict[str, list[dict[str, Any]]] = {}
        self.patches: list[dict[str, Any]] = []

    def patch(self, sku: str, marketplace_id: str, body: Any) -> dict[str, Any]:
        """Apply a patch: the ListingsItemSubmissionResponse; raises BadPatch."""
        entries = check_patch(body)
        submission = str(uuid.uuid4())
        if sku not in self._items:
            return {"sku": sku, "status": "INVALID", "submissionId": submission, "issues": [{
                "code": "STANDIN_NO_LISTING", "message": f"The seller has no listing with SKU {sku}.",
                "severity": "ERROR", "attributeNames": ["fulfillment_availability"]}]}
        with self._lock:
            self._availability[sku] = entries
            self.patches.append({"sku": sku, "marketplace_id": marketplace_id, "availability": entries,
                                 "at": self._now()})
        return {"sku": sku, "status": "ACCEPTED", "submissionId": submission, "issues": []}

    def item(self, sku: str, marketplace_id: str, included: list[str]) -> dict[str, Any] | None:
        """The Item getListingsItem shows, with the data sets ``included``; None for no listing."""
        row = self._items.get(sku)
        if row is None:
            return None
        out: dict[str, Any] = {"sku": sku}
        if "summaries" in included:
            out["summaries"] = [{"marketplaceId": marketplace_id, "asin": row["asin"], "productType": "PRODUCT",
                                 "conditionType": "new_new", "status": ["BUYABLE", "DISCOVERABLE"],
                                 "itemName": row["title"], "createdDate": "2026-01-05T10:00:00Z",
                                 "lastUpdatedDate": self._now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}]
        if "fulfillmentAvailability" in included:
            with self._lock:
                entries = list(self._availability.get(sku, []))
            out["fulfillmentAvailability"] = [{"fulfillmentChannelCode": e["fulfillment_channel_code"],
                                               "quantity": e["quantity"]} for e in entries]
        if "issues" in included:
            out["issues"] = []
        return out

    def quantities(self) -> dict[str, int]:
        """The merchant-fulfilled (DEFAULT) quantity of each SKU that has one."""
        with self._lock:
            return {sku: e["quantity"] for sku, entries in self._availability.items() for e in entries
                    if e["fulfillment_channel_code"] == "DEFAULT"}
