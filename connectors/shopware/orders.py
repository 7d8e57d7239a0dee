"""Order intake from the merchant's Shopware 6 shop: ``POST /api/search/order`` page by page.

One call per page carries everything through the criteria's associations (line items, the
delivery with its address, country and state, the payment with its method and state, the
customer, the currency); no per-order calls. Since Shopware 6.6 a ``stateMachineState`` comes only
when asked for (shopware/shopware issue #3717), so each one is named.

What counts as a change: Shopware writes ``updatedAt`` on the entity a change touched, so a
payment arriving moves ``transactions.updatedAt`` and a shipment ``deliveries.updatedAt``, not the
order's. The search asks for orders created or updated, or with a delivery or payment updated,
since the watermark, sorted by creation (which never changes): an order that changes while the
pages are read can only join the result, never leave it, so offset paging skips nothing; one that
joins on an earlier page is read by the next run, because the watermark is where this run began.

Each order is parsed on its own: a malformed one becomes a ``BrokenOrder`` naming the field (and
a ticket), the rest of the page is unaffected.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from caturactl.config import ShopConfig
from caturactl.core import clock
from caturactl.core.address import Address
from caturactl.core.errors import RemoteError
from caturactl.core.money import Money
from caturactl.ports import (
    BrokenOrder,
    CallStats,
    MarketplaceLine,
    MarketplaceOrder,
    OrderPage,
    OrderQuery,
    TaxRegistration,
)
from connectors.jsonread import (
    Malformed,
    array_at,
    count_at,
    decimal_of,
    object_at,
    text_at,
    timestamp,
    timestamp_at,
)
from connectors.shopware.client import ShopwareApi

CHANNEL = "shop"
ASSOCIATIONS = {
    "lineItems": {},
    "orderCustomer": {},
    "currency": {},
    "salesChannel": {},
    "stateMachineState": {},
    "billingAddress": {"associations": {"country": {}}},
    "deliveries": {"associations": {"stateMachineState": {}, "shippingMethod": {},
                                    "shippingOrderAddress": {"associations": {"country": {}, "countryState": {}}}}},
    "transactions": {"associations": {"stateMachineState": {}, "paymentMethod": {}}},
}
# Changes a run may not see yet when it starts: the shop's clock and ours differ a little.
CLOCK_MARGIN = timedelta(minutes=2)
CENT = Decimal("0.01")

# The payment handlers of Shopware's core (src/Core/Checkout/Payment/Cart/PaymentHandler/) and of
# the PayPal plugin (SwagPayPal), by the last part of their class name, and the technical names
# shops give them; -> caturactl.payments METHODS.
HANDLERS = {"PrePayment": "prepayment", "InvoicePayment": "invoice", "CashPayment": "cod",
            "PayPalPaymentHandler": "paypal", "ACDCHandler": "card", "CreditCardHandler": "card",
            "DebitPayment": "direct_debit"}
TECHNICAL = {"payment_prepayment": "prepayment", "payment_invoicepayment": "invoice", "payment_cashpayment": "cod",
             "swag_paypal_paypal": "paypal", "swag_paypal_acdc": "card", "payment_debitpayment": "direct_debit"}
# Transaction states after which an online payment's order is released (the provider has the money).
PAID = {"paid", "authorized"}
# Methods whose money caturactl follows itself (caturactl/payments/queue.py): the order is released
# at once, and routing holds back the ones whose money must come first ([payments]).
FOLLOWED = {"prepayment", "invoice", "cod", "direct_debit"}
EXPRESS = ("express", "expedited", "next day", "overnight")
# Why an object the search names in ASSOCIATIONS may be missing from an order.
UNASKED = "missing (was the association asked for?)"


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+00:00"


def _time(value: Any, where: str) -> datetime:
    # The Admin API writes its times in UTC, some without the zone.
    return timestamp(value, where, assume_utc=True)


def _amount(obj: dict, key: str, where: str) -> Decimal:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise Malformed(f"{where}.{key}", f"expected an amount, got {value!r}")
    return decimal_of(value, f"{where}.{key}").quantize(CENT, ROUND_HALF_UP)


def _tax(price: dict, where: str) -> Decimal:
    return sum((_amount(t, "tax", f"{where}.calculatedTaxes[{i}]") for i, t in
                enumerate(array_at(price, "calculatedTaxes", where)) if isinstance(t, dict)), Decimal(0))


def _state(obj: dict, where: str) -> str:
    return text_at(object_at(obj, "stateMachineState", where, missing=UNASKED), "technicalName",
                   f"{where}.stateMachineState", required=True)


def _gross(item: dict, where: str, tax_status: str) -> tuple[Decimal, Decimal]:
    """(gross total, VAT in it) of a line item or shipping costs; a net order's prices get their
    taxes added, a tax-free order's are gross as they stand."""
    price = object_at(item, "price", where) or item
    total = _amount(price, "totalPrice", where if price is item else f"{where}.price")
    tax = _tax(price, where if price is item else f"{where}.price")
    if tax_status == "net":
        return total + tax, tax
    return total, Decimal(0) if tax_status == "tax-free" else tax


def payment_method(method: dict, where: str) -> str:
    """caturactl's name of a Shopware payment method (by its handler, then its technical name);
    its technical name itself when it is none of the known ones."""
    handler = text_at(method, "handlerIdentifier", where).rsplit("\\", 1)[-1]
    technical = text_at(method, "technicalName", where)
    found = HANDLERS.get(handler) or TECHNICAL.get(technical)
    if found:
        return found
    if not (technical or handler):
        raise Malformed(where, "neither handlerIdentifier nor technicalName")
    return (technical or handler)[:12]


def status(order_state: str, delivery_state: str, method: str, paid_state: str) -> str:
    """The order's status in the importer's words: CANCELLED, SHIPPED, PARTIALLY_SHIPPED, PENDING
    (an online payment the buyer has not completed) or UNSHIPPED (a prepayment too: its money is
    waited for in caturactl's payment queue, not here);
    RETURNED / PARTIALLY_RETURNED for a return, which the importer turns into a ticket."""
    if order_state == "cancelled" or delivery_state == "cancelled":
        return "CANCELLED"
    if delivery_state == "shipped" or order_state == "completed":
        return "SHIPPED"
    if delivery_state in ("returned", "returned_partially"):
        return "RETURNED" if delivery_state == "returned" else "PARTIALLY_RETURNED"
    if delivery_state == "shipped_partially":
        return "PARTIALLY_SHIPPED"
    if method in FOLLOWED or paid_state in PAID:
        return "UNSHIPPED"
    return "PENDING"


def _address(a: dict, where: str) -> Address:
    country = text_at(object_at(a, "country", where, missing=UNASKED), "iso", f"{where}.country",
                      required=True).upper()
    name = " ".join(x for x in (text_at(a, "firstName", where), text_at(a, "lastName", where)) if x)
    company = " ".join(x for x in (text_at(a, "company", where), text_at(a, "department", where)) if x)
    return Address(name=name, company=company, line1=text_at(a, "street", where, required=True),
                   line2=text_at(a, "additionalAddressLine1", where),
                   line3=text_at(a, "additionalAddressLine2", where),
                   postal_code=text_at(a, "zipcode", where), city=text_at(a, "city", where, required=True),
                   state=text_at(object_at(a, "countryState", where), "shortCode", f"{where}.countryState"),
                   country=country, phone=text_at(a, "phoneNumber", where))


def parse_order(data: Any) -> MarketplaceOrder:
    """One Admin API ``order`` (with the associations of ASSOCIATIONS) as a MarketplaceOrder;
    raises Malformed naming the field."""
    if not isinstance(data, dict):
        raise Malformed("order", "expected an object")
    number = text_at(data, "orderNumber", "order", required=True)
    currency = text_at(object_at(data, "currency", "order", missing=UNASKED), "isoCode", "order.currency",
                       required=True)
    price = object_at(data, "price", "order", missing=UNASKED)
    tax_status = text_at(price, "taxStatus", "order.price") or "gross"
    if tax_status not in ("gross", "net", "tax-free"):
        raise Malformed("order.price.taxStatus", f"unknown tax status {tax_status!r}")
    total = _amount(price, "totalPrice", "order.price")
    deliveries = array_at(data, "deliveries", "order")
    transactions = array_at(data, "transactions", "order")
    if not deliveries or not isinstance(deliveries[0], dict):
        raise Malformed("order.deliveries", "no delivery (was the association asked for?)")
    if len(deliveries) > 1:
        raise Malformed("order.deliveries", f"{len(deliveries)} deliveries: caturactl ships an order to one address")
    delivery = deliveries[0]
    # The latest transaction is the one in force (a buyer who changes the payment method adds one).
    valid = [t for t in transactions if isinstance(t, dict)]
    if not valid:
        raise Malformed("order.transactions", "no payment (was the association asked for?)")
    ti = max(range(len(valid)), key=lambda i: (valid[i].get("createdAt") or "", i))
    transaction, tw = valid[ti], f"order.transactions[{ti}]"
    method = payment_method(object_at(transaction, "paymentMethod", tw, missing=UNASKED), f"{tw}.paymentMethod")
    paid_state = _state(transaction, tw)
    delivery_state = _state(delivery, "order.deliveries[0]")
    order_state = _state(data, "order")

    lines: list[dict] = []
    discount = Decimal(0)
    for i, item in enumerate(array_at(data, "lineItems", "order")):
        w = f"order.lineItems[{i}]"
        if not isinstance(item, dict):
            raise Malformed(w, "expected an object")
        kind = text_at(item, "type", w, required=True)
        if text_at(item, "parentId", w):
            continue  # a child of a container: its parent carries the price
        gross, tax = _gross(item, w, tax_status)
        if kind == "promotion":
            if gross > 0:
                raise Malformed(f"{w}.totalPrice", f"a promotion that adds {gross}")
            discount += -gross
            continue
        if kind != "product":
            raise Malformed(f"{w}.type", f"line item type {kind!r} is not imported (only products and promotions)")
        quantity = count_at(item, "quantity", w, least=1)
        sku = text_at(object_at(item, "payload", w, missing=UNASKED), "productNumber", f"{w}.payload", required=True)
        lines.append({"id": text_at(item, "id", w, required=True), "sku": sku, "title": text_at(item, "label", w),
                      "quantity": quantity, "gross": gross, "tax": tax, "where": w})
    if not lines:
        raise Malformed("order.lineItems", "no product line (was the association asked for?)")
    shipping_costs = object_at(data, "shippingCosts", "order", missing=UNASKED)
    shipping, _ = _gross(shipping_costs, "order.shippingCosts", tax_status)
    goods = sum((ln["gross"] for ln in lines), Decimal(0))
    if goods - discount + shipping != total:
        raise Malformed("order.price.totalPrice", f"{total} is not the line items {goods} - promotions {discount} "
                                                  f"+ shipping {shipping}")
    if discount > goods:
        raise Malformed("order.lineItems", f"promotions {discount} exceed the goods {goods}")

    # The promotions come off the goods line by line, in order; the shipping is charged on the first line.
    left, out = discount, []
    for n, ln in enumerate(lines):
        off = min(left, ln["gross"])
        left -= off
        ship = shipping if n == 0 else Decimal(0)
        out.append(MarketplaceLine(
            line_id=ln["id"], sku=ln["sku"], listing_id="", title=ln["title"], quantity=ln["quantity"],
            quantity_shipped=0,
            unit_price=Money((ln["gross"] / ln["quantity"]).quantize(CENT, ROUND_HALF_UP), currency),
            total=Money(ln["gross"] - off + ship, currency), tax=Money(ln["tax"], currency),
            shipping=Money(ship, currency) if ship else None,
            item_discount=Money(off, currency) if off else None))

    customer = object_at(data, "orderCustomer", "order", missing=UNASKED)
    shipping_address = object_at(delivery, "shippingOrderAddress", "order.deliveries[0]", missing=UNASKED)
    address = _address(shipping_address, "order.deliveries[0].shippingOrderAddress")
    vat_ids = [v for v in (customer.get("vatIds") or []) if isinstance(v, str) and v.strip()]
    company = text_at(customer, "company", "order.orderCustomer")
    method_name = text_at(object_at(delivery, "shippingMethod", "order.deliveries[0]"), "name",
                          "order.deliveries[0].shippingMethod")
    changed = [_time(data.get("createdAt") or data.get("orderDateTime"), "order.createdAt")]
    for key, rows in (("deliveries", deliveries), ("transactions", valid)):
        changed += [_time(r["updatedAt"], f"order.{key}.updatedAt") for r in rows if r.get("updatedAt")]
    if data.get("updatedAt"):
        changed.append(_time(data["updatedAt"], "order.updatedAt"))
    sales_channel = object_at(data, "salesChannel", "order")
    return MarketplaceOrder(
        channel=CHANNEL, external_id=number, marketplace_id="",
        marketplace_name=text_at(sales_channel, "name", "order.salesChannel")[:50],
        created_at=_time(data.get("orderDateTime"), "order.orderDateTime"), updated_at=max(changed),
        status=status(order_state, delivery_state, method, paid_state), fulfilled_by="MERCHANT",
        service_level="EXPEDITED" if any(x in method_name.lower() for x in EXPRESS) else "STANDARD",
        programs=(), business=bool(company or vat_ids),
        buyer_email=text_at(customer, "email", "order.orderCustomer", required=True).lower(),
        buyer_name=" ".join(x for x in (text_at(customer, "firstName", "order.orderCustomer"),
                                        text_at(customer, "lastName", "order.orderCustomer")) if x),
        buyer_company=company, purchase_order="", address=address,
        delivery_instructions=text_at(data, "customerComment", "order"),
        total=Money(total, currency), lines=tuple(out),
        tax_registrations=tuple(TaxRegistration("BUYER", v.strip(), "VAT") for v in vat_ids),
        deliver_from=timestamp_at(delivery, "shippingDateEarliest", "order.deliveries[0]", assume_utc=True),
        deliver_by=timestamp_at(delivery, "shippingDateLatest", "order.deliveries[0]", assume_utc=True),
        payment_method=method, payment_state=paid_state, raw=data)


def criteria(query_after: datetime, sales_channel: str, page: int, limit: int) -> dict[str, Any]:
    """The search body: orders placed or changed (order, delivery, payment) since ``query_after``."""
    since = {"gte": iso(query_after)}
    changed = [{"type": "range", "field": f, "parameters": since}
               for f in ("createdAt", "updatedAt", "deliveries.updatedAt", "transactions.updatedAt")]
    filters: list[dict] = [{"type": "multi", "operator": "or", "queries": changed}]
    if sales_channel:
        field = "salesChannelId" if len(sales_channel) == 32 and sales_channel.isalnum() else "salesChannel.name"
        filters.append({"type": "equals", "field": field, "value": sales_channel})
    return {"page": page, "limit": limit, "total-count-mode": "none", "filter": filters,
            "sort": [{"field": "createdAt", "order": "ASC"}, {"field": "id", "order": "ASC"}],
            "associations": ASSOCIATIONS}


def _token(after: datetime, started: datetime, page: int) -> str:
    return json.dumps({"after": iso(after), "started": iso(started), "page": page}, separators=(",", ":"))


class ShopwareOrders:
    """The ``Marketplace`` port over the Shopware 6 Admin API order search."""

    name = CHANNEL

    def __init__(self, cfg: ShopConfig, api: ShopwareApi):
        self.cfg, self.api = cfg, api

    def changed_orders(self, query: OrderQuery) -> Iterator[OrderPage]:
        after, page, started = query.updated_after, 1, clock.now() - CLOCK_MARGIN
        if query.resume_token:
            try:
                t = json.loads(query.resume_token)
                after, started, page = _time(t["after"], "token"), _time(t["started"], "token"), int(t["page"])
            except (ValueError, KeyError, TypeError, Malformed):
                pass  # a token of another version: read from the watermark again
        limit = self.cfg.page_size
        while True:
            body = criteria(after, self.cfg.sales_channel, page, limit)
            answer = self.api.call("POST", "/api/search/order", body, f"the order search, page {page}")
            rows = answer.get("data") if isinstance(answer, dict) else None
            if not isinstance(rows, list):
                raise RemoteError(f"the order search, page {page}, answered without a 'data' list")
            orders, broken = [], []
            for i, raw in enumerate(rows):
                try:
                    orders.append(parse_order(raw))
                except Malformed as exc:
                    number = raw.get("orderNumber") if isinstance(raw, dict) else None
                    broken.append(BrokenOrder(external_id=number if isinstance(number, str) and number else
                                              f"page {page} order {i + 1}", where=exc.where, reason=exc.reason,
                                              raw=raw if isinstance(raw, dict) else {}))
            last = len(rows) < limit
            yield OrderPage(orders=tuple(orders), broken=tuple(broken),
                            next_token=None if last else _token(after, started, page + 1),
                            window_end=started if last else None)
            if last:
                return
            page += 1

    def call_stats(self) -> CallStats:
        s = self.api.stats
        return CallStats(calls=s.calls, throttled=s.throttled, retries=s.retries, waited_seconds=s.waited_seconds)

    def rate_budgets(self) -> dict[str, tuple[float, datetime]]:
        return {}  # the shop publishes no rate budget to keep between runs

    def close(self) -> None:
        self.api.close()

