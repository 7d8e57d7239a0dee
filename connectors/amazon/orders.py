"""Amazon order intake through Orders API 2026-01-01 ``searchOrders`` (v0 reads retire 2027-03-27).

One call per page of up to 100 orders carries everything we need through ``includedData``;
no per-order calls. Each order is parsed on its own: a malformed one becomes a ``BrokenOrder``
naming the field, the rest of the page is unaffected.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Iterator

from sp_api.api import OrdersV20260101

from caturactl.config import AmazonConfig
from caturactl.model.address import Address
from caturactl.model.money import Money
from caturactl.ports import (BrokenOrder, CallStats, MarketplaceLine, MarketplaceOrder, OrderPage, OrderQuery,
                             TaxRegistration)
from connectors.amazon.client import SpApi

INCLUDED_DATA = ["BUYER", "RECIPIENT", "FULFILLMENT", "PROCEEDS", "TAX", "CANCELLATION"]
PAGE_SIZE = 100


class Malformed(ValueError):
    def __init__(self, where: str, reason: str):
        super().__init__(f"{where}: {reason}")
        self.where, self.reason = where, reason


def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _time(value: Any, where: str) -> datetime:
    if not isinstance(value, str) or not value:
        raise Malformed(where, f"expected an ISO 8601 time, got {value!r}")
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Malformed(where, f"not an ISO 8601 time: {value!r}") from None
    if t.tzinfo is None:
        raise Malformed(where, f"time without zone: {value!r}")
    return t.astimezone(timezone.utc)


def _opt_time(obj: dict, key: str, where: str) -> datetime | None:
    return _time(obj[key], f"{where}.{key}") if obj.get(key) else None


def _dict(obj: Any, key: str, where: str) -> dict:
    value = obj.get(key) if isinstance(obj, dict) else None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Malformed(f"{where}.{key}", f"expected an object, got {type(value).__name__}")
    return value


def _list(obj: dict, key: str, where: str) -> list:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise Malformed(f"{where}.{key}", f"expected a list, got {type(value).__name__}")
    return value


def _str(obj: dict, key: str, where: str, required: bool = False) -> str:
    value = obj.get(key)
    if value is None:
        if required:
            raise Malformed(f"{where}.{key}", "missing")
        return ""
    if not isinstance(value, str):
        raise Malformed(f"{where}.{key}", f"expected text, got {value!r}")
    return value.strip()


def _int(obj: dict, key: str, where: str, default: int | None = None) -> int:
    value = obj.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Malformed(f"{where}.{key}", f"expected a whole number >= 0, got {value!r}")
    return value


def _money(obj: dict, key: str, where: str) -> Money | None:
    value = obj.get(key)
    if value is None:
        return None
    path = f"{where}.{key}"
    if not isinstance(value, dict):
        raise Malformed(path, f"expected a money object, got {value!r}")
    amount, currency = value.get("amount"), value.get("currencyCode")
    if not isinstance(amount, str) or not isinstance(currency, str):
        raise Malformed(path, f"expected {{amount, currencyCode}}, got {value!r}")
    if len(currency) != 3 or not currency.isascii() or not currency.isalpha():
        raise Malformed(f"{path}.currencyCode", f"not an ISO 4217 code: {currency!r}")
    try:
        dec = Decimal(amount)
    except InvalidOperation:
        raise Malformed(f"{path}.amount", f"not a decimal amount: {amount!r}") from None
    if not dec.is_finite():
        raise Malformed(f"{path}.amount", f"not a finite amount: {amount!r}")
    return Money(dec, currency.upper())


def _breakdown(proceeds: dict, kind: str, where: str) -> Money | None:
    found: Money | None = None
    for i, b in enumerate(_list(proceeds, "breakdowns", where)):
        if isinstance(b, dict) and b.get("type") == kind:
            m = _money(b, "subtotal", f"{where}.breakdowns[{i}]")
            if m is not None:
                found = m if found is None else found + m
    return found


def _address(recipient: dict, where: str) -> Address | None:
    a = _dict(recipient, "deliveryAddress", where)
    if not a:
        return None
    w = f"{where}.deliveryAddress"
    return Address(
        name=_str(a, "name", w), company=_str(a, "companyName", w), line1=_str(a, "addressLine1", w),
        line2=_str(a, "addressLine2", w), line3=_str(a, "addressLine3", w),
        postal_code=_str(a, "postalCode", w), city=_str(a, "city", w), state=_str(a, "stateOrRegion", w),
        country=_str(a, "countryCode", w).upper(), phone=_str(a, "phone", w),
        address_type=_str(a, "addressType", w).upper())


def _line(item: Any, where: str) -> MarketplaceLine:
    if not isinstance(item, dict):
        raise Malformed(where, "expected an object")
    product = _dict(item, "product", where)
    if not product:
        raise Malformed(f"{where}.product", "missing")
    pw = f"{where}.product"
    price = _dict(product, "price", pw)
    proceeds = _dict(item, "proceeds", where)
    fulfillment = _dict(item, "fulfillment", where)
    gift = _dict(_dict(fulfillment, "packing", f"{where}.fulfillment"), "giftOption", f"{where}.fulfillment.packing")
    cancel = _dict(_dict(item, "cancellation", where), "cancellationRequest", f"{where}.cancellation")
    quantity = _int(item, "quantityOrdered", where)
    if quantity == 0:
        raise Malformed(f"{where}.quantityOrdered", "quantity 0")
    return MarketplaceLine(
        line_id=_str(item, "orderItemId", where, required=True),
        sku=_str(product, "sellerSku", pw), asin=_str(product, "asin", pw), title=_str(product, "title", pw),
        quantity=quantity,
        quantity_shipped=_int(fulfillment, "quantityFulfilled", f"{where}.fulfillment", default=0),
        unit_price=_money(price, "unitPrice", f"{pw}.price"),
        total=_money(proceeds, "proceedsTotal", f"{where}.proceeds"),
        tax=_breakdown(proceeds, "TAX", f"{where}.proceeds"),
        shipping=_breakdown(proceeds, "SHIPPING", f"{where}.proceeds"),
        gift_message=_str(gift, "giftMessage", f"{where}.fulfillment.packing.giftOption"),
        cancel_requested=(_str(cancel, "cancelReason", f"{where}.cancellation.cancellationRequest") or "requested")
        if cancel else "")


def parse_order(data: Any) -> MarketplaceOrder:
    """One Orders 2026-01-01 ``Order`` object as a MarketplaceOrder; raises Malformed naming the field."""
    if not isinstance(data, dict):
        raise Malformed("order", "expected an object")
    order_id = _str(data, "orderId", "order", required=True)
    channel = _dict(data, "salesChannel", "order")
    fulfillment = _dict(data, "fulfillment", "order")
    buyer = _dict(data, "buyer", "order")
    recipient = _dict(data, "recipient", "order")
    proceeds = _dict(data, "proceeds", "order")
    pref = _dict(recipient, "deliveryPreference", "order.recipient")
    items = data.get("orderItems")
    if not isinstance(items, list) or not items:
        raise Malformed("order.orderItems", "missing or empty")
    lines = tuple(_line(it, f"order.orderItems[{i}]") for i, it in enumerate(items))
    seen: set[str] = set()
    for i, ln in enumerate(lines):
        if ln.line_id in seen:
            raise Malformed(f"order.orderItems[{i}].orderItemId", f"duplicate {ln.line_id!r}")
        seen.add(ln.line_id)
    regs = []
    for i, r in enumerate(_list(_dict(data, "tax", "order"), "taxRegistrations", "order.tax")):
        w = f"order.tax.taxRegistrations[{i}]"
        if not isinstance(r, dict):
            raise Malformed(w, "expected an object")
        regs.append(TaxRegistration(entity_type=_str(r, "entityType", w), number=_str(r, "taxRegistrationNumber", w),
                                    kind=_str(r, "taxRegistrationType", w), legal_name=_str(r, "legalName", w)))
    programs = _list(data, "programs", "order")
    if not all(isinstance(p, str) for p in programs):
        raise Malformed("order.programs", f"expected a list of names, got {programs!r}")
    instructions = " / ".join(x for x in (_str(pref, "addressInstruction", "order.recipient.deliveryPreference"),
                                          _str(pref, "dropOffLocation", "order.recipient.deliveryPreference")) if x)
    status = _str(fulfillment, "fulfillmentStatus", "order.fulfillment", required=True)
    marketplace_id = _str(channel, "marketplaceId", "order.salesChannel", required=True)
    return MarketplaceOrder(
        channel="amazon", external_id=order_id, marketplace_id=marketplace_id,
        marketplace_name=_str(channel, "marketplaceName", "order.salesChannel"),
        created_at=_time(data.get("createdTime"), "order.createdTime"),
        updated_at=_time(data.get("lastUpdatedTime"), "order.lastUpdatedTime"),
        status=status, fulfilled_by=_str(fulfillment, "fulfilledBy", "order.fulfillment") or "MERCHANT",
        service_level=_str(fulfillment, "fulfillmentServiceLevel", "order.fulfillment"),
        programs=tuple(programs),
        buyer_email=_str(buyer, "buyerEmail", "order.buyer").lower(),
        buyer_name=_str(buyer, "buyerName", "order.buyer"),
        buyer_company=_str(buyer, "buyerCompanyName", "order.buyer"),
        purchase_order=_str(buyer, "buyerPurchaseOrderNumber", "order.buyer"),
        address=_address(recipient, "order.recipient"), delivery_instructions=instructions,
        total=_money(proceeds, "grandTotal", "order.proceeds"), lines=lines, tax_registrations=tuple(regs),
        ship_by=_opt_time(_dict(fulfillment, "shipByWindow", "order.fulfillment"), "latestDateTime",
                          "order.fulfillment.shipByWindow"),
        deliver_by=_opt_time(_dict(fulfillment, "deliverByWindow", "order.fulfillment"), "latestDateTime",
                             "order.fulfillment.deliverByWindow"),
        deliver_from=_opt_time(_dict(fulfillment, "deliverByWindow", "order.fulfillment"), "earliestDateTime",
                               "order.fulfillment.deliverByWindow"),
        raw=data)


def _check_page(response) -> dict:
    body = response.payload
    if not isinstance(body, dict) or not isinstance(body.get("orders"), list):
        raise ValueError("searchOrders answer has no 'orders' list")
    return {"orders": body["orders"], "next": response.next_token,
            "before": body.get("lastUpdatedBefore")}


class AmazonMarketplace:
    """The ``Marketplace`` port over SP-API Orders 2026-01-01."""

    name = "amazon"

    def __init__(self, cfg: AmazonConfig, api: SpApi):
        self.cfg, self.api = cfg, api
        self._client = api.client(OrdersV20260101, cfg.marketplaces[0])

    def changed_orders(self, query: OrderQuery) -> Iterator[OrderPage]:
        self.api.login(self._client)
        params: dict[str, Any] = {"lastUpdatedAfter": iso(query.updated_after),
                                  "marketplaceIds": list(query.marketplace_ids),
                                  "includedData": list(INCLUDED_DATA), "maxResultsPerPage": PAGE_SIZE}
        token = query.resume_token
        page_no = 0
        while True:
            page_no += 1
            kwargs = dict(params, paginationToken=token) if token else dict(params)
            page = self.api.call("searchOrders", lambda: self._client.search_orders(**kwargs), _check_page,
                                 f"searchOrders page {page_no}")
            orders, broken = [], []
            for i, raw in enumerate(page["orders"]):
                try:
                    orders.append(parse_order(raw))
                except Malformed as exc:
                    oid = raw.get("orderId") if isinstance(raw, dict) and isinstance(raw.get("orderId"), str) else ""
                    broken.append(BrokenOrder(external_id=oid or f"page {page_no} order {i + 1}",
                                              where=exc.where, reason=exc.reason,
                                              raw=raw if isinstance(raw, dict) else {}))
            before = None
            if page["before"]:
                try:
                    before = _time(page["before"], "lastUpdatedBefore")
                except Malformed:
                    before = None
            token = page["next"] or None
            yield OrderPage(orders=tuple(orders), broken=tuple(broken), next_token=token, window_end=before)
            if not token:
                return

    def call_stats(self) -> CallStats:
        s = self.api.stats
        return CallStats(calls=s.calls, throttled=s.throttled, retries=s.retries,
                         waited_seconds=s.waited_seconds + self.api.rate_waited())

    def rate_budgets(self) -> dict[str, tuple[float, datetime]]:
        return self.api.budgets()

    def close(self) -> None:
        self._client.close()
