"""The simulated Shopware 6 shop behind the Admin API stand-in: generated orders, the three state
machines, the search criteria, and the record of what the API was asked to do.

Everything is derived from ``(seed, day, orders)`` through seeded ``random.Random`` streams, so the
same arguments always give the same shop. The catalogue is the Amazon stand-in's
(``standins/amazon/marketplace.py``: same SKUs, titles, gross prices and tax classes), so one
products CSV serves both channels.

Clock
    The shop follows the clock it is given (tests install it as the app's clock,
    ``caturactl/core/clock.py``); by default a FixedClock at ``day`` + 1 at 03:00 UTC, like the
    Amazon stand-in. Orders are placed from ``day`` 00:00 to ``day`` + 1 06:00 UTC, busier in the
    evening, so the last few appear only as the clock moves on. An order is visible once its
    ``orderDateTime`` <= now; a scheduled change (a prepayment arriving hours later) takes effect
    when the clock passes it.

Orders (the shape of Shopware's ``order`` entity in the Admin API's plain JSON, ``Accept:
application/json``; field names from ``src/Core/Checkout/Order/OrderDefinition.php`` and its
aggregates in shopware/shopware)
    * prices are gross (``price.taxStatus`` "gross"), VAT at the destination's rate (DE 19/7 %,
      AT 20/10 %, NL 21/9 %, FR 20/5.5 %; the catalogue's "reduced" class takes the lower one);
    * shipping: 4.90 EUR in Germany below 50.00 EUR of goods, free above; 9.90 EUR abroad; it is
      the delivery's ``shippingCosts`` and the order's ``shippingCosts``/``shippingTotal``;
    * about 4 % of the orders carry a promotion line item (type "promotion", 5.00 EUR off);
    * payment methods (core handlers of ``src/Core/Checkout/Payment/Cart/PaymentHandler/`` and
      the PayPal plugin's, SwagPayPal): prepayment (Vorkasse) and invoice (Rechnungskauf) start
      "open", prepayments mostly turn "paid" 2 to 20 hours later; PayPal and credit card are
      "paid" at once (a few PayPal ones stay "open", the buyer never came back); cash on delivery
      stays "open";
    * about 3 % are cancelled a few hours after they were placed (order, delivery and
      transaction "cancelled"); about 5 % have a ``customerComment``.

Timestamps (``src/Core/Framework/DataAbstractionLayer``: ``createdAt`` is set on insert,
``updatedAt`` on every later write of the same entity, null before)
    A state transition writes the state of the entity it moves: an order's ``updatedAt`` changes
    only with an order transition; a delivery transition or tracking code moves
    ``deliveries[].updatedAt``, a payment ``transactions[].updatedAt``. So a client that wants
    every change must filter on all three (the adapter does).

State machines (``src/Core/Migration/V6_3/Migration1536233560BasicData.php``: states and
transitions; action names as renamed later, ``StateMachineTransitionActions.php``)
    See ``TRANSITIONS``. A transition whose destination is the current state is accepted and
    changes nothing (changelog release-6-4-4-0 "Unnecessary transitions won't fail any more").
"""

from __future__ import annotations

import copy
import datetime as dt
import random
import threading
import uuid
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from caturactl.core.clock import FixedClock
from standins.amazon.marketplace import CATALOGUE, catalogue_csv

UTC = dt.UTC
CENT = Decimal("0.01")

# machine -> {action: {from_state: to_state}}
TRANSITIONS: dict[str, dict[str, dict[str, str]]] = {
    "order.state": {
        "process": {"open": "in_progress"},
        "complete": {"in_progress": "completed"},
        "cancel": {"open": "cancelled", "in_progress": "cancelled"},
        "reopen": {"cancelled": "open", "completed": "open"},
    },
    "order_delivery.state": {
        "ship": {"open": "shipped", "shipped_partially": "shipped"},
        "ship_partially": {"open": "shipped_partially"},
        "retour": {"shipped": "returned", "shipped_partially": "returned"},
        "retour_partially": {"shipped": "returned_partially", "shipped_partially": "returned_partially"},
        "cancel": {"open": "cancelled", "shipped": "cancelled", "shipped_partially": "cancelled"},
        "reopen": {"cancelled": "open"},
    },
    "order_transaction.state": {
        "paid": {"open": "paid", "reminded": "paid", "paid_partially": "paid", "authorized": "paid",
                 "in_progress": "paid", "unconfirmed": "paid"},
        "paid_partially": {"open": "paid_partially", "reminded": "paid_partially"},
        "remind": {"open": "reminded", "paid_partially": "reminded"},
        "cancel": {"open": "cancelled", "reminded": "cancelled", "paid_partially": "cancelled", "paid": "cancelled",
                   "refunded_partially": "cancelled", "authorized": "cancelled", "in_progress": "cancelled"},
        "refund": {"paid": "refunded", "paid_partially": "refunded", "refunded_partially": "refunded",
                   "cancelled": "refunded"},
        "refund_partially": {"paid": "refunded_partially", "paid_partially": "refunded_partially",
                             "cancelled": "refunded_partially"},
        "reopen": {"cancelled": "open", "failed": "open"},
        "authorize": {"open": "authorized"},
        "do_pay": {"open": "in_progress"},
        "fail": {"in_progress": "failed", "open": "failed"},
        "process_unconfirmed": {"open": "unconfirmed"},
    },
}
STATE_NAMES = {"open": "Open", "in_progress": "In progress", "completed": "Done", "cancelled": "Cancelled",
               "shipped": "Shipped", "shipped_partially": "Shipped (partially)", "returned": "Returned",
               "returned_partially": "Returned (partially)", "paid": "Paid", "paid_partially": "Paid (partially)",
               "reminded": "Reminded", "refunded": "Refunded", "refunded_partially": "Refunded (partially)",
               "authorized": "Authorized", "failed": "Failed", "unconfirmed": "Unconfirmed"}

# key -> (name, technicalName, handlerIdentifier, weight)
PAYMENT_METHODS = {
    "prepayment": ("Vorkasse", "payment_prepayment",
                   "Shopware\\Core\\Checkout\\Payment\\Cart\\PaymentHandler\\PrePayment", 25),
    "invoice": ("Rechnung", "payment_invoicepayment",
                "Shopware\\Core\\Checkout\\Payment\\Cart\\PaymentHandler\\InvoicePayment", 20),
    "paypal": ("PayPal", "swag_paypal_paypal", "Swag\\PayPal\\Checkout\\Payment\\PayPalPaymentHandler", 30),
    "credit_card": ("Kredit- oder Debitkarte", "swag_paypal_acdc",
                    "Swag\\PayPal\\Checkout\\Payment\\Method\\ACDCHandler", 15),
    "cash_on_delivery": ("Nachnahme", "payment_cashpayment",
                         "Shopware\\Core\\Checkout\\Payment\\Cart\\PaymentHandler\\CashPayment", 10),
}
# country -> (name, standard rate, reduced rate, weight)
COUNTRIES = {"DE": ("Deutschland", Decimal(19), Decimal(7), 80), "AT": ("Österreich", Decimal(20), Decimal(10), 10),
             "NL": ("Niederlande", Decimal(21), Decimal(9), 6), "FR": ("Frankreich", Decimal(20), Decimal("5.5"), 4)}
SHIPPING_METHODS = {"standard": "Standard", "express": "Express"}
SALES_CHANNEL = ("98432def39fc4624b33213a56b8c944d", "Storefront")
CURRENCY = {"id": "b7d2554b0ce847cd82f3ac9bd1c0dfca", "isoCode": "EUR", "symbol": "€", "factor": 1.0,
            "shortName": "EUR", "name": "Euro"}
_FIRST = ["Anna", "Lukas", "Julia", "Felix", "Sabine", "Thomas", "Monika", "Jürgen", "Ursula", "Lea", "Paul", "Emma",
          "Katrin", "Heinz", "Birgit", "Mehmet", "Ewa", "Sven"]
_LAST = ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Hoffmann", "Koch",
         "Richter", "Klein", "Wolf", "Neumann", "Braun", "Krüger", "Özdemir", "Nowak", "de Vries", "Gruber"]
_CITIES = {"DE": [("Berlin", "10115"), ("Hamburg", "20095"), ("München", "80331"), ("Köln", "50667"),
                  ("Leipzig", "04109"), ("Freiburg im Breisgau", "79098"), ("Lüneburg", "21335")],
           "AT": [("Wien", "1010"), ("Graz", "8010"), ("Salzburg", "5020")],
           "NL": [("Amsterdam", "1012 AB"), ("Utrecht", "3511 AA")],
           "FR": [("Strasbourg", "67000"), ("Lyon", "69001")]}
_STREETS = ["Hauptstraße", "Bahnhofstraße", "Gartenweg", "Lindenallee", "Am Markt", "Schillerstraße", "Dorfstraße"]
_COMMENTS = ["Bitte beim Nachbarn abgeben, falls niemand da ist.", "Kann das Paket in die Garage?",
             "Ist das auch als Geschenk verpackt lieferbar?", "Bitte nicht vor 14 Uhr liefern."]
_HOUR_WEIGHTS = [2, 1, 1, 1, 1, 2, 3, 5, 6, 7, 8, 8, 9, 9, 8, 8, 8, 9, 11, 12, 12, 10, 7, 4]
PROMOTION = Decimal("5.00")


def iso(t: dt.datetime | None) -> str | None:
    """Shopware's JSON date form: ``2026-11-24T10:15:00.000+00:00``."""
    if t is None:
        return None
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}+00:00"


def _c(x: Decimal) -> float:
    return float(x.quantize(CENT))


def _tax(gross: Decimal, rate: Decimal) -> Decimal:
    return (gross * rate / (100 + rate)).quantize(CENT, ROUND_HALF_UP)


def _price(unit: Decimal, qty: int, rate: Decimal) -> dict[str, Any]:
    total = unit * qty
    return {"unitPrice": _c(unit), "quantity": qty, "totalPrice": _c(total),
            "calculatedTaxes": [{"tax": _c(_tax(total, rate)), "taxRate": float(rate), "price": _c(total)}],
            "taxRules": [{"taxRate": float(rate), "percentage": 100.0}], "referencePrice": None, "listPrice": None,
            "regulationPrice": None}


class IllegalTransition(ValueError):
    def __init__(self, action: str, state: str, possible: list[str]):
        super().__init__(f'Illegal transition "{action}" from state "{state}". Possible transitions are: '
                         f'{", ".join(possible)}')


@dataclass
class ShopOrder:
    """One generated order and what has happened to it since."""
    data: dict[str, Any]  # the full order with every association, states as at placement
    placed: dt.datetime
    payment: str  # PAYMENT_METHODS key
    order_state: str = "open"
    delivery_state: str = "open"
    transaction_state: str = "open"
    order_updated: dt.datetime | None = None
    delivery_updated: dt.datetime | None = None
    transaction_updated: dt.datetime | None = None
    tracking_codes: list[str] = field(default_factory=list)
    scheduled: list[tuple[dt.datetime, str, str]] = field(default_factory=list)  # (at, machine, action)
    breaks: dict[str, Any] = field(default_factory=dict)  # dotted path -> value (tests)


class Shop:
    """The shop: generated orders on a clock, transitions, and the record of calls that changed it."""

    def __init__(self, orders: int = 120, seed: int = 1, day: dt.date | None = None,
                 start: dt.datetime | None = None, clock: Any = None):
        self.day = day or dt.date(2026, 11, 24)
        self.seed = seed
        if start is None:
            start = dt.datetime.combine(self.day + dt.timedelta(days=1), dt.time(3, 0), UTC)
        self.clock = clock if clock is not None else FixedClock(start)
        self._lock = threading.RLock()
        self._orders = _generate(seed, self.day, orders)
        self._by_id = {o.data["id"]: o for o in self._orders}
        self._by_delivery = {o.data["deliveries"][0]["id"]: o for o in self._orders}
        self._by_transaction = {o.data["transactions"][0]["id"]: o for o in self._orders}
        self.transitions: list[dict[str, Any]] = []
        self.patches: list[dict[str, Any]] = []

    def now(self) -> dt.datetime:
        return self.clock.now()

    def advance(self, delta: dt.timedelta) -> dt.datetime:
        return self.clock.advance(delta)

    # --- reading --------------------------------------------------------------------------------

    def _apply_due(self, o: ShopOrder, now: dt.datetime) -> None:
        while o.scheduled and o.scheduled[0][0] <= now:
            at, machine, action = o.scheduled.pop(0)
            try:
                self._move(o, machine, action, at)
            except IllegalTransition:
                pass  # a person moved it first (e.g. cancelled before the money came)

    def visible(self) -> list[dict[str, Any]]:
        """Every order placed by now, in full (every association), as the API would show it."""
        with self._lock:
            now = self.now()
            out = []
            for o in self._orders:
                if o.placed <= now:
                    self._apply_due(o, now)
                    out.append(self._render(o))
            return out

    def order_ids(self) -> list[str]:
        return [o.data["id"] for o in self._orders]

    def payment_of(self, order_id: str) -> str:
        return self._by_id[order_id].payment

    def _render(self, o: ShopOrder) -> dict[str, Any]:
        d = copy.deepcopy(o.data)
        d["stateMachineState"] = _state("order.state", o.order_state)
        d["stateId"] = d["stateMachineState"]["id"]
        d["updatedAt"] = iso(o.order_updated)
        dl = d["deliveries"][0]
        dl["stateMachineState"] = _state("order_delivery.state", o.delivery_state)
        dl["stateId"] = dl["stateMachineState"]["id"]
        dl["updatedAt"] = iso(o.delivery_updated)
        dl["trackingCodes"] = list(o.tracking_codes)
        tr = d["transactions"][0]
        tr["stateMachineState"] = _state("order_transaction.state", o.transaction_state)
        tr["stateId"] = tr["stateMachineState"]["id"]
        tr["updatedAt"] = iso(o.transaction_updated)
        for path, value in o.breaks.items():
            _set_path(d, path, value)
        return d

    # --- changing -------------------------------------------------------------------------------

    def _move(self, o: ShopOrder, machine: str, action: str, at: dt.datetime) -> tuple[str, str]:
        attr = {"order.state": "order_state", "order_delivery.state": "delivery_state",
                "order_transaction.state": "transaction_state"}[machine]
        current = getattr(o, attr)
        moves = TRANSITIONS[machine].get(action, {})
        if current not in moves:
            if action in TRANSITIONS[machine] and current in TRANSITIONS[machine][action].values():
                return current, current  # already there: nothing to do, no error
            possible = sorted(a for a, m in TRANSITIONS[machine].items() if current in m)
            raise IllegalTransition(action, current, possible)
        to = moves[current]
        setattr(o, attr, to)
        stamp = {"order_state": "order_updated", "delivery_state": "delivery_updated",
                 "transaction_state": "transaction_updated"}[attr]
        setattr(o, stamp, at)
        return current, to

    def transition(self, entity: str, entity_id: str, action: str, body: dict | None = None) -> dict[str, Any]:
        """Run ``action`` on an order, order_delivery or order_transaction; KeyError when there is
        no such (visible) entity, IllegalTransition when its state has no such move. Returns the
        new state (StateMachineState) and records the call."""
        machine = {"order": "order.state", "order_delivery": "order_delivery.state",
                   "order_transaction": "order_transaction.state"}[entity]
        index = {"order": self._by_id, "order_delivery": self._by_delivery,
                 "order_transaction": self._by_transaction}[entity]
        with self._lock:
            now = self.now()
            o = index.get(entity_id)
            if o is None or o.placed > now:
                raise KeyError(entity_id)
            self._apply_due(o, now)
            before, after = self._move(o, machine, action, now)
            self.transitions.append({"entity": entity, "id": entity_id, "order_id": o.data["id"],
                                     "order_number": o.data["orderNumber"], "transition": action, "from": before,
                                     "to": after, "at": now, "tracking_codes": list(o.tracking_codes),
                                     "body": body or {}})
            return _state(machine, after)

    def patch_delivery(self, delivery_id: str, values: dict[str, Any]) -> None:
        """PATCH /api/order-delivery/{id}: only ``trackingCodes`` (a list of strings) is taken;
        KeyError for an unknown delivery, ValueError for anything else."""
        with self._lock:
            now = self.now()
            o = self._by_delivery.get(delivery_id)
            if o is None or o.placed > now:
                raise KeyError(delivery_id)
            unknown = set(values) - {"id", "trackingCodes"}
            if unknown:
                raise ValueError(f"the stand-in only writes trackingCodes, not {', '.join(sorted(unknown))}")
            codes = values.get("trackingCodes")
            if not isinstance(codes, list) or not all(isinstance(c, str) and c.strip() for c in codes):
                raise ValueError("trackingCodes must be a list of non-empty strings")
            o.tracking_codes = list(codes)
            o.delivery_updated = now
            self.patches.append({"delivery_id": delivery_id, "order_number": o.data["orderNumber"],
                                 "trackingCodes": list(codes), "at": now})

    def change(self, order_id: str, *, machine: str, action: str) -> None:
        """A change made in the shop's administration at the clock's now (tests)."""
        with self._lock:
            self._move(self._by_id[order_id], machine, action, self.now())

    def break_order(self, order_id: str, path: str, value: Any = "abc") -> None:
        """Make one field of the order's answer wrong (``lineItems.0.quantity``), from now on."""
        with self._lock:
            self._by_id[order_id].breaks[path] = value

    def catalogue_csv(self) -> str:
        return catalogue_csv(CATALOGUE)


def _set_path(obj: Any, path: str, value: Any) -> None:
    parts = path.split(".")
    for p in parts[:-1]:
        obj = obj[int(p)] if isinstance(obj, list) else obj[p]
    last = parts[-1]
    if isinstance(obj, list):
        obj[int(last)] = value
    elif value is _DELETE:
        obj.pop(last, None)
    else:
        obj[last] = value


_DELETE = object()
DELETE = _DELETE  # break_order(..., value=DELETE) removes the field


def _state(machine: str, technical: str) -> dict[str, Any]:
    sid = uuid.uuid5(uuid.NAMESPACE_URL, f"shopware-standin:{machine}:{technical}").hex
    mid = uuid.uuid5(uuid.NAMESPACE_URL, f"shopware-standin:{machine}").hex
    return {"id": sid, "technicalName": technical, "name": STATE_NAMES.get(technical, technical),
            "stateMachineId": mid}


def _pick(r: random.Random, weighted: dict[str, tuple]) -> str:
    keys = list(weighted)
    return r.choices(keys, weights=[v[-1] for v in weighted.values()])[0]


def _generate(seed: int, day: dt.date, count: int) -> list[ShopOrder]:
    r = random.Random(f"shopware-standin:{seed}:{day.isoformat()}")
    start = dt.datetime.combine(day, dt.time(0, 0), UTC)
    times = []
    for _ in range(count):
        hours = r.choices(range(30), weights=_HOUR_WEIGHTS + _HOUR_WEIGHTS[:6])[0]
        times.append(start + dt.timedelta(hours=hours, seconds=r.randrange(3600), milliseconds=r.randrange(1000)))
    times.sort()
    out = []
    for n, placed in enumerate(times):
        out.append(_order(r, n, placed))
    return out


def _hex(r: random.Random) -> str:
    return "%032x" % r.getrandbits(128)


def _address(r: random.Random, country: str, first: str, last: str, company: str) -> dict[str, Any]:
    city, zipcode = r.choice(_CITIES[country])
    return {"id": _hex(r), "firstName": first, "lastName": last, "company": company or None,
            "department": None, "street": f"{r.choice(_STREETS)} {r.randrange(1, 120)}", "zipcode": zipcode,
            "city": city, "additionalAddressLine1": r.choice([None, None, None, "Hinterhaus", "2. OG links"]),
            "additionalAddressLine2": None, "phoneNumber": r.choice([None, f"+49 30 {r.randrange(10**6, 10**7)}"]),
            "vatId": None, "countryId": uuid.uuid5(uuid.NAMESPACE_URL, f"country:{country}").hex,
            "countryStateId": None,
            "country": {"id": uuid.uuid5(uuid.NAMESPACE_URL, f"country:{country}").hex, "iso": country,
                        "iso3": {"DE": "DEU", "AT": "AUT", "NL": "NLD", "FR": "FRA"}[country],
                        "name": COUNTRIES[country][0]}}


def _order(r: random.Random, n: int, placed: dt.datetime) -> ShopOrder:
    oid = _hex(r)
    country = _pick(r, COUNTRIES)
    _name, standard, reduced, _w = COUNTRIES[country]
    first, last = r.choice(_FIRST), r.choice(_LAST)
    company = r.choice(_COMPANIES) if r.random() < 0.1 else ""
    email = f"{first.lower()}.{last.lower().replace(' ', '')}{r.randrange(1, 99)}@example.org".replace("ü", "ue") \
        .replace("ö", "oe").replace("ä", "ae").replace("ß", "ss").replace("ö", "oe")
    payment = _pick(r, PAYMENT_METHODS)
    express = r.random() < 0.08
    lines, goods, taxes = [], Decimal(0), {}
    for pos in range(r.choices([1, 2, 3], weights=[60, 30, 10])[0]):
        p = r.choice(CATALOGUE)
        rate = reduced if p["tax_class"] == "reduced" else standard
        qty = r.choices([1, 2, 3], weights=[80, 15, 5])[0]
        unit = p["price"]
        price = _price(unit, qty, rate)
        goods += unit * qty
        taxes[rate] = taxes.get(rate, Decimal(0)) + unit * qty
        pid = uuid.uuid5(uuid.NAMESPACE_URL, f"product:{p['sku']}").hex
        lines.append({"id": _hex(r), "orderId": oid, "identifier": pid, "referencedId": pid, "productId": pid,
                      "label": p["title"], "quantity": qty, "unitPrice": _c(unit), "totalPrice": _c(unit * qty),
                      "type": "product", "good": True, "removable": True, "stackable": True, "position": pos + 1,
                      "payload": {"productNumber": p["sku"], "taxId": None}, "price": price, "parentId": None,
                      "description": None})
    discount = PROMOTION if r.random() < 0.04 and goods > 20 else Decimal(0)
    if discount:
        rate = standard
        lines.append({"id": _hex(r), "orderId": oid, "identifier": _hex(r), "referencedId": "WINTER5",
                      "productId": None, "label": "Gutschein WINTER5", "quantity": 1, "unitPrice": _c(-discount),
                      "totalPrice": _c(-discount), "type": "promotion", "good": False, "removable": True,
                      "stackable": False, "position": len(lines) + 1, "payload": {"code": "WINTER5"},
                      "price": _price(-discount, 1, rate), "parentId": None, "description": None})
        taxes[rate] = taxes.get(rate, Decimal(0)) - discount
    ship = (Decimal(0) if goods >= 50 else Decimal("4.90")) if country == "DE" else Decimal("9.90")
    if express:
        ship += Decimal("8.00")
    total = goods - discount + ship
    ship_rate = standard
    if ship:
        taxes[ship_rate] = taxes.get(ship_rate, Decimal(0)) + ship
    calculated = [{"tax": _c(_tax(g, rate)), "taxRate": float(rate), "price": _c(g)} for rate, g in sorted(taxes.items())]
    net = total - sum((_tax(g, rate) for rate, g in taxes.items()), Decimal(0))
    shipping_address = _address(r, country, first, last, company)
    billing = dict(shipping_address) if r.random() < 0.9 else _address(r, country, first, last, company)
    billing["id"] = _hex(r)
    delivery_id, transaction_id = _hex(r), _hex(r)
    method_key = "express" if express else "standard"
    pm_name, pm_technical, pm_handler, _w = PAYMENT_METHODS[payment]
    data = {
        "id": oid, "versionId": "0fa91ce3e96a4bc2be4bd9ce752c3425", "orderNumber": str(10000 + n),
        "salesChannelId": SALES_CHANNEL[0], "salesChannel": {"id": SALES_CHANNEL[0], "name": SALES_CHANNEL[1]},
        "orderDateTime": iso(placed), "orderDate": placed.date().isoformat(), "createdAt": iso(placed),
        "updatedAt": None, "currencyId": CURRENCY["id"], "currency": dict(CURRENCY), "currencyFactor": 1.0,
        "languageId": "2fbb5fe2e29a4d70aa5854ce7ce3e20b", "billingAddressId": billing["id"],
        "billingAddress": billing, "addresses": [billing] + ([shipping_address] if shipping_address["id"] != billing["id"] else []),
        "price": {"netPrice": _c(net), "totalPrice": _c(total), "positionPrice": _c(goods - discount),
                  "rawTotal": _c(total), "taxStatus": "gross", "calculatedTaxes": calculated, "taxRules": []},
        "amountTotal": _c(total), "amountNet": _c(net), "positionPrice": _c(goods - discount), "taxStatus": "gross",
        "shippingCosts": _price(ship, 1, ship_rate), "shippingTotal": _c(ship),
        "orderCustomer": {"id": _hex(r), "email": email, "firstName": first, "lastName": last,
                          "company": company or None, "title": None, "salutationId": None,
                          "customerNumber": str(20000 + r.randrange(5000)), "vatIds": None, "customerId": _hex(r)},
        "customerComment": r.choice(_COMMENTS) if r.random() < 0.05 else None,
        "affiliateCode": None, "campaignCode": None, "deepLinkCode": _hex(r),
        "lineItems": lines,
        "deliveries": [{
            "id": delivery_id, "orderId": oid, "shippingOrderAddressId": shipping_address["id"],
            "shippingOrderAddress": shipping_address,
            "shippingMethodId": uuid.uuid5(uuid.NAMESPACE_URL, f"shipping:{method_key}").hex,
            "shippingMethod": {"id": uuid.uuid5(uuid.NAMESPACE_URL, f"shipping:{method_key}").hex,
                               "name": SHIPPING_METHODS[method_key], "technicalName": f"shipping_{method_key}"},
            "trackingCodes": [], "shippingDateEarliest": iso(placed + dt.timedelta(days=1 if express else 2)),
            "shippingDateLatest": iso(placed + dt.timedelta(days=2 if express else 4)),
            "shippingCosts": _price(ship, 1, ship_rate), "createdAt": iso(placed), "updatedAt": None}],
        "transactions": [{
            "id": transaction_id, "orderId": oid,
            "paymentMethodId": uuid.uuid5(uuid.NAMESPACE_URL, f"payment:{payment}").hex,
            "paymentMethod": {"id": uuid.uuid5(uuid.NAMESPACE_URL, f"payment:{payment}").hex, "name": pm_name,
                              "technicalName": pm_technical, "handlerIdentifier": pm_handler,
                              "shortName": pm_technical.removeprefix("payment_"), "active": True},
            "amount": _price(total, 1, standard), "createdAt": iso(placed), "updatedAt": None}],
    }
    o = ShopOrder(data=data, placed=placed, payment=payment)
    # What happens after placing, in the shop's own time.
    if payment in ("paypal", "credit_card"):
        if r.random() < 0.93:
            o.transaction_state = "paid"
            o.transaction_updated = placed + dt.timedelta(seconds=r.randrange(5, 90))
    elif payment == "prepayment" and r.random() < 0.7:
        o.scheduled.append((placed + dt.timedelta(hours=r.randrange(2, 20), minutes=r.randrange(60)),
                            "order_transaction.state", "paid"))
    if r.random() < 0.03:
        at = placed + dt.timedelta(hours=r.randrange(1, 6))
        o.scheduled += [(at, "order.state", "cancel"), (at, "order_delivery.state", "cancel"),
                        (at, "order_transaction.state", "cancel")]
    o.scheduled.sort(key=lambda x: x[0])
    return o


_COMPANIES = ["Gartenbau Schmidt GmbH", "Café Lindenblüte", "Praxis Dr. Weber", "Kita Sonnenschein e.V."]
