"""The shop's products behind the Admin API stand-in: the Amazon stand-in's catalogue (same SKUs
as ``productNumber``), each with a ``stock``, searchable and patchable the way the stock push uses
them.

Routes (server.py)
    POST /api/search/product   a Criteria body: ``filter`` (equals, equalsAny on id, productNumber,
        name, stock, active), ``page``/``limit``, ``includes`` ({"product": [fields]}: only those
        fields in each row, as the Admin API's includes do). Answer ``{"total", "data",
        "aggregations"}``. Other filter types or fields get 400 (the stand-in's wording).
    PATCH /api/product/{id}    ``{"stock": n}`` (a whole number from 0) -> 204. Shopware derives
        ``availableStock`` from ``stock`` and the open orders; the stand-in keeps ``stock`` only and
        refuses other fields (it writes nothing else).

Product ids are those of the orders' line items (uuid5 of "product:<sku>"), so an order's
``productId`` finds its product here.
"""

from __future__ import annotations

import random
import threading
import uuid
from typing import Any, Callable

from standins.amazon.marketplace import CATALOGUE

FIELDS = ("id", "productNumber", "name", "stock", "availableStock", "active", "updatedAt")
FILTERABLE = {"id", "productNumber", "name", "stock", "active"}


class BadProductRequest(ValueError):
    """A 400 with this detail."""


def product_id(sku: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"product:{sku}").hex


class Products:
    """The catalogue as Shopware products, and the stock writes received (oldest first)."""

    def __init__(self, now: Callable[[], Any], seed: int = 1):
        rng = random.Random(f"shop-products:{seed}")
        self._now = now
        self._lock = threading.Lock()
        self._rows = {product_id(p["sku"]): {"id": product_id(p["sku"]), "productNumber": p["sku"],
                                             "name": p["title"], "stock": rng.randrange(0, 40), "active": True,
                                             "updatedAt": None}
                      for p in CATALOGUE}
        self.writes: list[dict[str, Any]] = []

    def search(self, criteria: Any) -> dict[str, Any]:
        """One page of products matching a Criteria body; raises BadProductRequest."""
        if not isinstance(criteria, dict):
            raise BadProductRequest("the criteria must be a JSON object")
        filters = criteria.get("filter") or []
        if not isinstance(filters, list):
            raise BadProductRequest("filter must be a list")
        with self._lock:
            rows = [dict(r, availableStock=r["stock"]) for r in self._rows.values()]
        for f in filters:
            rows = [r for r in rows if _matches(r, f)]
        rows.sort(key=lambda r: r["productNumber"])
        try:
            page, limit = int(criteria.get("page", 1)), int(criteria.get("limit", 25))
        except (TypeError, ValueError):
            raise BadProductRequest("page and limit must be numbers") from None
        if page < 1 or not 1 <= limit <= 500:
            raise BadProductRequest("page must be >= 1 and limit 1..500")
        data = rows[(page - 1) * limit: page * limit]
        includes = (criteria.get("includes") or {}).get("product") if isinstance(criteria.get("includes"), dict) \
            else None
        if includes is not None:
            if not isinstance(includes, list) or not all(isinstance(x, str) for x in includes):
                raise BadProductRequest("includes.product must list field names")
            data = [{k: v for k, v in r.items() if k in includes} for r in data]
        return {"total": len(rows), "data": data, "aggregations": []}

    def patch(self, pid: str, values: Any) -> None:
        """Write a product's stock; KeyError for an unknown id, BadProductRequest otherwise."""
        if not isinstance(values, dict):
            raise BadProductRequest("the body must be a JSON object")
        unknown = set(values) - {"id", "stock"}
        if unknown:
            raise BadProductRequest(f"the stand-in only writes stock, not {', '.join(sorted(unknown))}")
        stock = values.get("stock")
        if isinstance(stock, bool) or not isinstance(stock, int) or stock < 0:
            raise BadProductRequest(f"stock must be a whole number of at least 0, not {stock!r}")
        with self._lock:
            row = self._rows[pid]
            row["stock"], row["updatedAt"] = stock, self._now().isoformat()
            self.writes.append({"id": pid, "productNumber": row["productNumber"], "stock": stock, "at": self._now()})

    def stock(self) -> dict[str, int]:
        """The stock of every product, by productNumber."""
        with self._lock:
            return {r["productNumber"]: r["stock"] for r in self._rows.values()}


def _matches(row: dict[str, Any], f: Any) -> bool:
    if not isinstance(f, dict):
        raise BadProductRequest("a filter must be an object")
    kind, name = f.get("type"), str(f.get("field", "")).removeprefix("product.")
    if name not in FILTERABLE:
        raise BadProductRequest(f'field "{f.get("field")}" is not a filterable field of product in the stand-in')
    value = row.get(name)
    if kind == "equals":
        return value == f.get("value") or (value is not None and str(value) == str(f.get("value")))
    if kind == "equalsAny":
        wanted = f.get("value")
        wanted = wanted.split("|") if isinstance(wanted, str) else list(wanted or [])
        return value is not None and str(value) in map(str, wanted)
    raise BadProductRequest(f"filter type {kind!r} is not served for products by the stand-in")
