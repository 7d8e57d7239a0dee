"""Amazon order intake through Orders API 2026-01-01 ``searchOrders`` (v0 reads retire 2027-03-27).

One call per page of up to 100 orders carries everything we need through ``includedData``;
no per-order calls. Each order is parsed on its own: a malformed one becomes a ``BrokenOrder``
naming the field, the rest of the page is unaffected.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Iterator

from sp_api.api import OrdersV20260101

from caturactl.config import AmazonConfig
from caturactl.core.address import Address
from caturactl.core.money import Money
from caturactl.ports import (BrokenOrder, CallStats, MarketplaceLine, MarketplaceOrder, OrderPage, OrderQuery,
                             TaxRegistration)
from connectors.amazon.client import SpApi
from connectors.jsonread import (Malformed, array_at, count_at, decimal_of, object_at, text_at, timestamp,
                                 timestamp_at)

INCLUDED_DATA = ["BUYER", "RECIPIENT", "FULFILLMENT", "PROCEEDS", "PROMOTION", "TAX", "CANCELLATION"]
PAGE_SIZE = 100


def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


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
    return Money(decimal_of(amount, f"{path}.amount"), currency.upper())


def _breakdown(proceeds: dict, kind: str, where: str) -> Money | None:
    found: Money | None = None
    for i, b in enumerate(array_at(proceeds, "breakdowns", where)):
        if isinstance(b, dict) and b.get("type") == kind:
            m = _money(b, "subtotal", f"{where}.breakdowns[{i}]")
            if m is not None:
                found = m if found is None else found + m
    return found


CHARGES = ("ITEM", "SHIPPING", "GIFT_WRAP", "COD_FEE", "OTHER")


@dataclass(frozen=True)
class LineMoney:
    """What the buyer paid for one item line, charge by charge, VAT included (gross)."""
    total: Decimal
    charges: dict[str, Decimal]  # ITEM, SHIPPING, GIFT_WRAP, COD_FEE, OTHER: gross before discounts
    discounts: dict[str, Decimal]  # ITEM, SHIPPING: gross taken off, positive


def _details(b: dict, where: str) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for i, d in enumerate(array_at(b, "detailedBreakdowns", where)):
        w = f"{where}.detailedBreakdowns[{i}]"
        if not isinstance(d, dict):
            raise Malformed(w, "expected an object")
        m = _money(d, "value", w)
        if m is not None:
            key = text_at(d, "subtype", w) or "OTHER"
            out[key] = out.get(key, Decimal(0)) + m.amount
    return out


def line_money(proceeds: dict, where: str) -> LineMoney | None:
    """The item's ``proceeds`` as gross charges and discounts; None when Amazon sends no total.

    Amazon's model does not say whether an EU order's ITEM/SHIPPING breakdowns include the VAT
    (reference/amazon/orders-2026.md §4 has only a US example, where ITEM + TAX = proceedsTotal).
    So both readings are accepted, whichever makes the breakdowns add up to ``proceedsTotal``:
    * tax apart (ITEM + SHIPPING + ... + DISCOUNT + TAX = total): a charge's gross is its subtotal
      plus its TAX ``detailedBreakdowns`` value; without those, every part is scaled by the line's
      one gross/net ratio and the cents rounding leaves go to ITEM;
    * tax included (ITEM + SHIPPING + ... + DISCOUNT = total; TAX only says how much VAT is in it).
    A DISCOUNT is taken off whatever its ``detailedBreakdowns`` name (ITEM, SHIPPING), else the
    goods; its sign in the file does not matter, a discount always lowers what was paid.
    Breakdowns that add up neither way are refused (Malformed), never guessed."""
    total = _money(proceeds, "proceedsTotal", where)
    if total is None:
        return None
    net: dict[str, Decimal] = {}
    tax = Decimal(0)
    tax_detail: dict[str, Decimal] = {}
    discount = Decimal(0)
    discount_detail: dict[str, Decimal] = {}
    for i, b in enumerate(array_at(proceeds, "breakdowns", where)):
        w = f"{where}.breakdowns[{i}]"
        if not isinstance(b, dict):
            raise Malformed(w, "expected an object")
        kind = text_at(b, "type", w, required=True)
        m = _money(b, "subtotal", w)
        if m is None:
            continue
        if m.currency != total.currency:
            raise Malformed(f"{w}.subtotal.currencyCode", f"{m.currency}, the line's total is in {total.currency}")
        if kind == "TAX":
            tax += m.amount
            for k, v in _details(b, w).items():
                tax_detail[k] = tax_detail.get(k, Decimal(0)) + v
        elif kind == "DISCOUNT":
            discount -= abs(m.amount)
            for k, v in _details(b, w).items():
                discount_detail[k] = discount_detail.get(k, Decimal(0)) - abs(v)
        elif kind in CHARGES:
            if m.amount < 0:
                raise Malformed(f"{w}.subtotal.amount", f"a negative {kind} charge: {m.amount}")
            net[kind] = net.get(kind, Decimal(0)) + m.amount
        else:
            raise Malformed(f"{w}.type", f"unknown proceeds type {kind!r}")
    charged = sum(net.values(), Decimal(0)) + discount
    if charged + tax == total.amount and (tax or tax_detail):
        gross, disc = _add_tax(net, discount, discount_detail, tax, tax_detail)
    elif charged == total.amount:
        gross, disc = dict(net), _split_discount(-discount, discount_detail, net)
    else:
        raise Malformed(f"{where}.breakdowns", f"charges {charged} (+ tax {tax}) do not add up to "
                                               f"proceedsTotal {total.amount}")
    if any(v < 0 for v in gross.values()) or disc["ITEM"] > gross.get("ITEM", Decimal(0)) \
            or disc["SHIPPING"] > gross.get("SHIPPING", Decimal(0)):
        raise Malformed(f"{where}.breakdowns", "a discount larger than what it is taken off")
    return LineMoney(total.amount, gross, disc)


def _split_discount(amount: Decimal, detail: dict[str, Decimal], gross: dict[str, Decimal]) -> dict[str, Decimal]:
    """A discount's gross ``amount`` (positive) over ITEM and SHIPPING, in proportion to what its
    detailed breakdowns say of each (net); all on the goods when they say nothing. Rounding never
    takes more off a charge than it cost while the other can take the cent."""
    ship, item = -detail.get("SHIPPING", Decimal(0)), -detail.get("ITEM", Decimal(0))
    if ship <= 0:
        return {"ITEM": amount, "SHIPPING": Decimal(0)}
    if item <= 0:
        return {"ITEM": Decimal(0), "SHIPPING": amount}
    ship_part = (amount * ship / (ship + item)).quantize(Decimal("0.01"), ROUND_HALF_UP)
    ship_part = max(min(ship_part, gross.get("SHIPPING", Decimal(0))), amount - gross.get("ITEM", Decimal(0)))
    return {"ITEM": amount - ship_part, "SHIPPING": ship_part}


def _add_tax(net: dict[str, Decimal], discount: Decimal, discount_detail: dict[str, Decimal], tax: Decimal,
             tax_detail: dict[str, Decimal]) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    """Gross charges and discounts of a line whose breakdowns are net with the TAX apart."""
    if tax_detail and sum(tax_detail.values(), Decimal(0)) == tax:
        gross = {k: v + tax_detail.get(k, Decimal(0)) for k, v in net.items()}
        disc_gross = -(discount + tax_detail.get("DISCOUNT", Decimal(0)))
        return gross, _split_discount(disc_gross, discount_detail, gross)
    base = sum(net.values(), Decimal(0)) + discount
    ratio = (base + tax) / base if base else Decimal(1)
    gross = {k: (v * ratio).quantize(Decimal("0.01"), ROUND_HALF_UP) for k, v in net.items()}
    disc_gross = (-discount * ratio).quantize(Decimal("0.01"), ROUND_HALF_UP)
    rest = base + tax - (sum(gross.values(), Decimal(0)) - disc_gross)
    if rest:
        gross["ITEM"] = gross.get("ITEM", Decimal(0)) + rest
    return gross, _split_discount(disc_gross, discount_detail, gross)


def _address(recipient: dict, where: str) -> Address | None:
    a = object_at(recipient, "deliveryAddress", where)
    if not a:
        return None
    w = f"{where}.deliveryAddress"
    return Address(
        name=text_at(a, "name", w), company=text_at(a, "companyName", w), line1=text_at(a, "addressLine1", w),
        line2=text_at(a, "addressLine2", w), line3=text_at(a, "addressLine3", w),
        postal_code=text_at(a, "postalCode", w), city=text_at(a, "city", w), state=text_at(a, "stateOrRegion", w),
        country=text_at(a, "countryCode", w).upper(), phone=text_at(a, "phone", w),
        address_type=text_at(a, "addressType", w).upper())


def _line(item: Any, where: str) -> MarketplaceLine:
    if not isinstance(item, dict):
        raise Malformed(where, "expected an object")
    product = object_at(item, "product", where)
    if not product:
        raise Malformed(f"{where}.product", "missing")
    pw = f"{where}.product"
    price = object_at(product, "price", pw)
    proceeds = object_at(item, "proceeds", where)
    fulfillment = object_at(item, "fulfillment", where)
    gift = object_at(object_at(fulfillment, "packing", f"{where}.fulfillment"), "giftOption",
                     f"{where}.fulfillment.packing")
    cancel = object_at(object_at(item, "cancellation", where), "cancellationRequest", f"{where}.cancellation")
    quantity = count_at(item, "quantityOrdered", where)
    if quantity == 0:
        raise Malformed(f"{where}.quantityOrdered", "quantity 0")
    money = line_money(proceeds, f"{where}.proceeds")
    cur = _money(proceeds, "proceedsTotal", f"{where}.proceeds").currency if money else ""

    def charge(values: dict[str, Decimal], key: str) -> Money | None:
        return Money(values[key], cur) if money and values.get(key) else None
    promotions = tuple(text_at(p, "promotionId", f"{where}.promotion.breakdowns[{i}]")
                       for i, p in enumerate(array_at(object_at(item, "promotion", where), "breakdowns",
                                                   f"{where}.promotion")) if isinstance(p, dict))
    return MarketplaceLine(
        line_id=text_at(item, "orderItemId", where, required=True),
        sku=text_at(product, "sellerSku", pw), listing_id=text_at(product, "asin", pw),
        title=text_at(product, "title", pw),
        quantity=quantity,
        quantity_shipped=count_at(fulfillment, "quantityFulfilled", f"{where}.fulfillment", default=0),
        unit_price=_money(price, "unitPrice", f"{pw}.price"),
        total=_money(proceeds, "proceedsTotal", f"{where}.proceeds"),
        tax=_breakdown(proceeds, "TAX", f"{where}.proceeds"),
        shipping=charge(money.charges, "SHIPPING") if money else None,
        gift_message=text_at(gift, "giftMessage", f"{where}.fulfillment.packing.giftOption"),
        cancel_requested=(text_at(cancel, "cancelReason", f"{where}.cancellation.cancellationRequest") or "requested")
        if cancel else "",
        gift_wrap=charge(money.charges, "GIFT_WRAP") if money else None,
        cod_fee=charge(money.charges, "COD_FEE") if money else None,
        item_discount=charge(money.discounts, "ITEM") if money else None,
        shipping_discount=charge(money.discounts, "SHIPPING") if money else None,
        promotion_ids=tuple(p for p in promotions if p))


def parse_order(data: Any) -> MarketplaceOrder:
    """One Orders 2026-01-01 ``Order`` object as a MarketplaceOrder; raises Malformed naming the field."""
    if not isinstance(data, dict):
        raise Malformed("order", "expected an object")
    order_id = text_at(data, "orderId", "order", required=True)
    channel = object_at(data, "salesChannel", "order")
    fulfillment = object_at(data, "fulfillment", "order")
    buyer = object_at(data, "buyer", "order")
    recipient = object_at(data, "recipient", "order")
    proceeds = object_at(data, "proceeds", "order")
    pref = object_at(recipient, "deliveryPreference", "order.recipient")
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
    for i, r in enumerate(array_at(object_at(data, "tax", "order"), "taxRegistrations", "order.tax")):
        w = f"order.tax.taxRegistrations[{i}]"
        if not isinstance(r, dict):
            raise Malformed(w, "expected an object")
        regs.append(TaxRegistration(entity_type=text_at(r, "entityType", w),
                                    number=text_at(r, "taxRegistrationNumber", w),
                                    kind=text_at(r, "taxRegistrationType", w), legal_name=text_at(r, "legalName", w)))
    programs = array_at(data, "programs", "order")
    if not all(isinstance(p, str) for p in programs):
        raise Malformed("order.programs", f"expected a list of names, got {programs!r}")
    pw = "order.recipient.deliveryPreference"
    instructions = " / ".join(x for x in (text_at(pref, "addressInstruction", pw), text_at(pref, "dropOffLocation", pw))
                              if x)
    status = text_at(fulfillment, "fulfillmentStatus", "order.fulfillment", required=True)
    marketplace_id = text_at(channel, "marketplaceId", "order.salesChannel", required=True)
    return MarketplaceOrder(
        channel="amazon", external_id=order_id, marketplace_id=marketplace_id,
        marketplace_name=text_at(channel, "marketplaceName", "order.salesChannel"),
        created_at=timestamp(data.get("createdTime"), "order.createdTime"),
        updated_at=timestamp(data.get("lastUpdatedTime"), "order.lastUpdatedTime"),
        status=status, fulfilled_by=text_at(fulfillment, "fulfilledBy", "order.fulfillment") or "MERCHANT",
        service_level=text_at(fulfillment, "fulfillmentServiceLevel", "order.fulfillment"),
        programs=tuple(programs), business="AMAZON_BUSINESS" in programs,
        buyer_email=text_at(buyer, "buyerEmail", "order.buyer").lower(),
        buyer_name=text_at(buyer, "buyerName", "order.buyer"),
        buyer_company=text_at(buyer, "buyerCompanyName", "order.buyer"),
        purchase_order=text_at(buyer, "buyerPurchaseOrderNumber", "order.buyer"),
        address=_address(recipient, "order.recipient"), delivery_instructions=instructions,
        total=_money(proceeds, "grandTotal", "order.proceeds"), lines=lines, tax_registrations=tuple(regs),
        ship_by=timestamp_at(object_at(fulfillment, "shipByWindow", "order.fulfillment"), "latestDateTime",
                          "order.fulfillment.shipByWindow"),
        deliver_by=timestamp_at(object_at(fulfillment, "deliverByWindow", "order.fulfillment"), "latestDateTime",
                             "order.fulfillment.deliverByWindow"),
        deliver_from=timestamp_at(object_at(fulfillment, "deliverByWindow", "order.fulfillment"), "earliestDateTime",
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
                    before = timestamp(page["before"], "lastUpdatedBefore")
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
