"""Shipment confirmation at Amazon (Orders v0 confirmShipment): our adapter with the real sp_api
client against the SP-API stand-in, and the stand-in's own validation over plain HTTP."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sp_api.api import OrdersV0
from sp_api.base.exceptions import SellingApiBadRequestException, SellingApiRequestThrottledException

from caturactl.config import AmazonConfig
from caturactl.core.errors import RejectedError, RemoteError
from caturactl.ports import OrderQuery, PackageConfirmation
from connectors.amazon.client import SpApi
from connectors.amazon.orders import AmazonMarketplace
from connectors.amazon.shipments import AmazonShipments
from standins.amazon import AmazonStandin, Fault

# Amazon's sandbox example, verbatim from reference/amazon/confirmShipment_400_request_and_response.json
# (ordersV0.json confirmShipment 400): a shipDate that is not ISO 8601.
AMAZON_400_ORDER_ID = "902-1106328-1059050"
AMAZON_400_BODY = {
    "marketplaceId": "ATVPDKIKX0DER",
    "packageDetail": {
        "packageReferenceId": "1", "carrierCode": "FedEx", "carrierName": "FedEx",
        "shippingMethod": "FedEx Ground", "trackingNumber": "112345678", "shipDate": "02/21/2022",
        "shipFromSupplySourceId": "057d3fcc-b750-419f-bbcd-4d340c60c430",
        "orderItems": [{"orderItemId": "79039765272157", "quantity": 1,
                        "transparencyCodes": ["09876543211234567890"]}],
    },
}
AMAZON_400_ERROR = {"code": "Invalid Input", "message": "Invalid Input"}


def make_standin(rate_scale: float = 500.0, orders: int = 250) -> AmazonStandin:
    # sp_api caches access tokens process-wide by refresh token: one per stand-in keeps tests independent.
    return AmazonStandin(orders=orders, seed=11, day="2026-11-24", rate_scale=rate_scale,
                         refresh_token=f"standin-refresh-{uuid.uuid4().hex[:10]}").start()


def make_api(s: AmazonStandin, **over: Any) -> SpApi:
    cfg = dict(endpoint=s.url, lwa_url=s.lwa_url, client_id=s.client_id, client_secret=SecretStr(s.client_secret),
               refresh_token=SecretStr(s.refresh_token), marketplaces=["DE", "FR", "IT", "ES"],
               rate_scale=s.rate_scale, max_retries=3, backoff_seconds=0.01, backoff_max_seconds=0.05,
               timeout_seconds=5)
    return SpApi(AmazonConfig(**{**cfg, **over}))


@pytest.fixture
def standin():
    s = make_standin()
    yield s
    s.stop()


@pytest.fixture
def api(standin) -> SpApi:
    return make_api(standin)


@pytest.fixture
def shipments(api):
    confirmer = AmazonShipments(api)
    yield confirmer
    confirmer.close()


def shipped_order(s: AmazonStandin) -> dict:
    """A merchant order the seller shipped just now, as Amazon shows it."""
    return s.change_order(open_orders(s)[0]["orderId"], status="SHIPPED")


def open_orders(s: AmazonStandin, min_items: int = 1) -> list[dict]:
    """Orders the merchant still has to ship, as Amazon shows them now."""
    return [o for o in s.visible_orders() if o["fulfillment"]["fulfilledBy"] == "MERCHANT"
            and o["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED" and len(o["orderItems"]) >= min_items]


def package(s: AmazonStandin, order: dict, ref: int = 1, items: list[tuple[str, int]] | None = None,
            **change: Any) -> PackageConfirmation:
    values = dict(
        order_id=order["orderId"], marketplace_id=order["salesChannel"]["marketplaceId"], package_reference=ref,
        carrier_code="DHL", carrier_name="", shipping_method="V01PAK", tracking_number=f"00340434{ref:012d}",
        shipped_at=s.now() - dt.timedelta(minutes=1),
        items=tuple(items if items is not None else
                    [(it["orderItemId"], it["quantityOrdered"]) for it in order["orderItems"]]))
    return PackageConfirmation(**{**values, **change})


def order_now(s: AmazonStandin, order_id: str) -> dict:
    return next(o for o in s.visible_orders() if o["orderId"] == order_id)


def access_token(s: AmazonStandin) -> str:
    r = httpx.post(s.lwa_url, data={"grant_type": "refresh_token", "refresh_token": s.refresh_token,
                                    "client_id": s.client_id, "client_secret": s.client_secret})
    return r.json()["access_token"]


# --------------------------------------------------------------------------- through our adapter
def test_a_confirmed_package_ships_the_order_and_amazon_keeps_the_tracking_number(standin, api, shipments):
    order = open_orders(standin)[0]
    oid = order["orderId"]
    assert shipments.confirm_shipment(package(standin, order)) is None
    recorded = standin.shipments(oid)
    assert len(recorded) == 1
    r = recorded[0]
    assert (r["carrierCode"], r["trackingNumber"], r["packageReferenceId"]) == ("DHL", "00340434000000000001", "1")
    assert r["shipDate"] == (standin.now() - dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert r["orderItems"] == [{"orderItemId": it["orderItemId"], "quantity": it["quantityOrdered"]}
                               for it in order["orderItems"]]
    after = order_now(standin, oid)
    assert after["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
    assert after["lastUpdatedTime"] == "2026-11-25T03:00:00Z" > order["lastUpdatedTime"]  # the stand-in's now
    assert all(it["fulfillment"]["quantityFulfilled"] == it["quantityOrdered"] for it in after["orderItems"])
    assert after["packages"][0]["trackingNumber"] == "00340434000000000001"
    assert after["packages"][0]["carrier"] == "DHL" and after["packages"][0]["shippingService"] == "V01PAK"
    # the admin view and the counters say the same
    assert httpx.get(f"{standin.url}/_standin/shipments").json()["shipments"] == recorded
    assert standin.stats()["calls"]["confirmShipment"] == 1 and api.stats.calls == 1 and api.stats.retries == 0


def test_two_packages_for_two_items_ship_the_order_partially_then_fully(standin, shipments):
    order = open_orders(standin, min_items=2)[0]
    (first, q1), (second, q2) = [(it["orderItemId"], it["quantityOrdered"]) for it in order["orderItems"][:2]]
    rest = [(it["orderItemId"], it["quantityOrdered"]) for it in order["orderItems"][2:]]
    shipments.confirm_shipment(package(standin, order, ref=1, items=[(first, q1)]))
    mid = order_now(standin, order["orderId"])
    assert mid["fulfillment"]["fulfillmentStatus"] == "PARTIALLY_SHIPPED"
    shipped = {it["orderItemId"]: it["fulfillment"]["quantityFulfilled"] for it in mid["orderItems"]}
    assert shipped[first] == q1 and shipped[second] == 0
    shipments.confirm_shipment(package(standin, order, ref=2, items=[(second, q2)] + rest))
    done = order_now(standin, order["orderId"])
    assert done["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
    assert [p["packageReferenceId"] for p in done["packages"]] == ["1", "2"]
    assert all(it["fulfillment"]["quantityUnfulfilled"] == 0 for it in done["orderItems"])


def test_amazons_own_bad_ship_date_sample_gets_amazons_400(standin, api):
    # Through the library with the raw sample body (our adapter only ever sends ISO dates) ...
    client = api.client(OrdersV0, AMAZON_400_BODY["marketplaceId"])
    with pytest.raises(SellingApiBadRequestException) as exc:
        client.confirm_shipment(AMAZON_400_ORDER_ID, **AMAZON_400_BODY)
    err = exc.value.error[0]
    assert {k: err[k] for k in ("code", "message")} == AMAZON_400_ERROR
    assert "shipDate" in err["details"]  # the stand-in adds what Amazon's sample leaves out
    # ... and as plain HTTP: 400, Amazon's error shape, the rate-limit header as in ordersV0.json.
    r = httpx.post(f"{standin.url}/orders/v0/orders/{AMAZON_400_ORDER_ID}/shipmentConfirmation",
                   json=AMAZON_400_BODY, headers={"x-amz-access-token": access_token(standin)})
    assert r.status_code == 400 and r.headers["x-amzn-RateLimit-Limit"]
    assert {k: r.json()["errors"][0][k] for k in ("code", "message")} == AMAZON_400_ERROR
    assert not standin.shipments()


def test_an_unknown_carrier_code_is_rejected_naming_it_and_not_retried(standin, api, shipments):
    order = open_orders(standin)[0]
    with pytest.raises(RejectedError) as exc:
        shipments.confirm_shipment(package(standin, order, carrier_code="Brieftaube Express"))
    assert "Brieftaube Express" in str(exc.value) and "carrierCode" in str(exc.value)
    assert order["orderId"] in str(exc.value)
    assert api.stats.calls == 1 and api.stats.retries == 0
    assert order_now(standin, order["orderId"])["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"


def test_more_than_ordered_is_rejected(standin, shipments):
    order = open_orders(standin)[0]
    item = order["orderItems"][0]
    with pytest.raises(RejectedError) as exc:
        shipments.confirm_shipment(package(standin, order, items=[(item["orderItemId"], item["quantityOrdered"] + 1)]))
    assert "still unshipped" in str(exc.value)
    assert not standin.shipments()


def test_an_unknown_order_is_rejected_as_not_found(standin, shipments):
    order = dict(open_orders(standin)[0], orderId="302-0000000-0000000")
    with pytest.raises(RejectedError) as exc:
        shipments.confirm_shipment(package(standin, order))
    assert "order not found at Amazon" in str(exc.value)


def test_repeating_the_same_package_is_accepted_and_counted_once(standin, shipments):
    order = open_orders(standin)[0]
    p = package(standin, order)
    shipments.confirm_shipment(p)
    shipments.confirm_shipment(p)
    assert len(standin.shipments(order["orderId"])) == 1
    assert len(order_now(standin, order["orderId"])["packages"]) == 1
    assert standin.stats()["calls"]["confirmShipment"] == 2


def test_the_same_package_reference_with_another_tracking_number_is_rejected(standin, shipments):
    order = open_orders(standin)[0]
    shipments.confirm_shipment(package(standin, order))
    with pytest.raises(RejectedError) as exc:
        shipments.confirm_shipment(package(standin, order, tracking_number="00340434999999999999"))
    assert "packageReferenceId 1" in str(exc.value) and "trackingNumber" in str(exc.value)
    assert [r["trackingNumber"] for r in standin.shipments(order["orderId"])] == ["00340434000000000001"]


def test_thirty_confirmations_in_a_row_keep_to_amazons_rate():
    """2/s burst 10 scaled by 10 on both sides (20/s): 10 go at once, 20 are paced by our bucket."""
    s = make_standin(rate_scale=10.0)
    try:
        api = make_api(s)
        confirmer = AmazonShipments(api)
        orders = open_orders(s)[:30]
        assert len(orders) == 30
        t0 = time.monotonic()
        for order in orders:
            confirmer.confirm_shipment(package(s, order))
        elapsed = time.monotonic() - t0
        assert s.stats()["throttled"] == 0 and api.stats.throttled == 0 and api.stats.retries == 0
        assert len(s.shipments()) == 30 and s.stats()["calls"]["confirmShipment"] == 30
        assert api.rate_waited() > 0.5 and elapsed >= 0.9  # about (30 - 10) / 20 s of waiting
        confirmer.close()
        # Without our bucket the same stand-in refuses: its limit is real.
        raw = api.client(OrdersV0, orders[0]["salesChannel"]["marketplaceId"])
        refused = 0
        for _ in range(15):
            try:
                raw.confirm_shipment(orders[0]["orderId"], marketplaceId="x")
            except SellingApiRequestThrottledException:
                refused += 1
            except SellingApiBadRequestException:
                pass
        assert refused > 0 and s.stats()["throttled"] == refused
    finally:
        s.stop()


def test_a_503_is_not_repeated_because_amazon_may_have_acted_and_a_lookup_decides(standin, api, shipments):
    order = open_orders(standin)[0]
    standin.add_fault(Fault(operation="confirmShipment", kind="status", status=503))
    pkg = package(standin, order)
    with pytest.raises(RemoteError, match="may have acted"):
        shipments.confirm_shipment(pkg)
    assert api.stats.retries == 0 and standin.stats()["calls"]["confirmShipment"] == 1
    assert standin.shipments(order["orderId"]) == []
    # The outbox asks Amazon's order before sending again: no such package, so it sends, once.
    marketplace = order["salesChannel"]["marketplaceId"]
    assert shipments.confirmed(order["orderId"], marketplace, pkg.package_reference) is False
    shipments.confirm_shipment(pkg)
    assert len(standin.shipments(order["orderId"])) == 1


def test_a_lost_answer_is_not_repeated_blindly_and_amazons_order_shows_the_package():
    s = make_standin()
    try:
        api = make_api(s, timeout_seconds=0.3)
        confirmer = AmazonShipments(api)
        confirmer._client("A1PA6795UKMFR9")  # log in before the fault, which would also delay the token
        order = next(o for o in open_orders(s) if o["salesChannel"]["marketplaceId"] == "A1PA6795UKMFR9")
        pkg = package(s, order)
        assert confirmer.confirmed(order["orderId"], "A1PA6795UKMFR9", pkg.package_reference) is False
        # The request times out at our end but is still handled at Amazon's. It is not sent
        # again at once: the outbox keeps it in doubt and asks Amazon's order first.
        s.add_fault(Fault(operation="confirmShipment", kind="slow", delay=0.6))
        with pytest.raises(RemoteError, match="may have reached Amazon"):
            confirmer.confirm_shipment(pkg)
        time.sleep(0.8)  # let the slow request finish at the stand-in
        assert api.stats.retries == 0 and s.stats()["calls"]["confirmShipment"] == 1
        assert len(s.shipments(order["orderId"])) == 1
        assert confirmer.confirmed(order["orderId"], "A1PA6795UKMFR9", pkg.package_reference) is True
        assert confirmer.confirmed(order["orderId"], "A1PA6795UKMFR9", pkg.package_reference + 1) is False
        confirmer.close()
    finally:
        s.stop()


def test_the_next_import_sees_the_confirmed_order_as_shipped(standin, api, shipments):
    order = open_orders(standin)[0]
    oid = order["orderId"]
    marketplace = AmazonMarketplace(api.cfg, api)
    query = OrderQuery(updated_after=standin.now() - dt.timedelta(minutes=30),
                       marketplace_ids=tuple(api.cfg.marketplaces))
    shipments.confirm_shipment(package(standin, order))
    standin.advance(dt.timedelta(minutes=3))  # searchOrders answers only what changed before now - 2 min
    seen = {o.external_id: o for page in marketplace.changed_orders(query) for o in page.orders}
    assert oid in seen
    got = seen[oid]
    assert got.status == "SHIPPED"
    assert all(ln.quantity_shipped == ln.quantity for ln in got.lines)
    marketplace.close()


# --------------------------------------------------------------------------- the stand-in's rules
def _body(order: dict, **detail: Any) -> dict:
    d = {"packageReferenceId": "1", "carrierCode": "DHL", "trackingNumber": "00340434000000000001",
         "shipDate": "2026-11-25T02:00:00Z",
         "orderItems": [{"orderItemId": it["orderItemId"], "quantity": it["quantityOrdered"]}
                        for it in order["orderItems"]]}
    d.update(detail)
    return {"marketplaceId": order["salesChannel"]["marketplaceId"],
            "packageDetail": {k: v for k, v in d.items() if v is not None}}


def _fba(s: AmazonStandin) -> dict:
    return next(o for o in s.visible_orders() if o["fulfillment"]["fulfilledBy"] == "AMAZON")


def _turned(status: str):
    def pick(s: AmazonStandin) -> dict:
        order = open_orders(s)[0]
        s.change_order(order["orderId"], status=status)
        return order
    return pick


CASES = {
    # name: (build(order, standin) -> body or raw bytes, pick order, word in details)
    "not json": (lambda o, s: b"{not json", None, "not JSON"),
    "no marketplaceId": (lambda o, s: {"packageDetail": _body(o)["packageDetail"]}, None, "marketplaceId"),
    "no packageDetail": (lambda o, s: {"marketplaceId": _body(o)["marketplaceId"]}, None, "packageDetail"),
    "other marketplace": (lambda o, s: dict(_body(o), marketplaceId="A1F83G8C2ARO7P"), None, "marketplace of"),
    "no packageReferenceId": (lambda o, s: _body(o, packageReferenceId=None), None, "packageReferenceId"),
    "no carrierCode": (lambda o, s: _body(o, carrierCode=None), None, "carrierCode"),
    "no trackingNumber": (lambda o, s: _body(o, trackingNumber=""), None, "trackingNumber"),
    "no shipDate": (lambda o, s: _body(o, shipDate=None), None, "shipDate"),
    "no orderItems": (lambda o, s: _body(o, orderItems=None), None, "orderItems"),
    "reference 0": (lambda o, s: _body(o, packageReferenceId="0"), None, "positive"),
    "reference not numeric": (lambda o, s: _body(o, packageReferenceId="PKG-1"), None, "positive"),
    "date only": (lambda o, s: _body(o, shipDate="2026-11-25"), None, "ISO 8601"),
    "ship date in the future": (lambda o, s: _body(o, shipDate="2026-11-25T03:01:00Z"), None, "future"),
    "ship date before purchase": (lambda o, s: _body(o, shipDate="2026-11-23T12:00:00Z"), None, "purchase date"),
    "lower-case carrier": (lambda o, s: _body(o, carrierCode="dhl"), None, "'dhl'"),
    "Other without name": (lambda o, s: _body(o, carrierCode="Other"), None, "carrierName"),
    "empty orderItems": (lambda o, s: _body(o, orderItems=[]), None, "at least one"),
    "unknown item": (lambda o, s: _body(o, orderItems=[{"orderItemId": "1", "quantity": 1}]), None, "not an item"),
    "quantity 0": (lambda o, s: _body(o, orderItems=[{"orderItemId": o["orderItems"][0]["orderItemId"],
                                                      "quantity": 0}]), None, "at least 1"),
    "cancelled order": (lambda o, s: _body(o), _turned("CANCELLED"), "cancelled"),
    "pending order": (lambda o, s: _body(o), _turned("PENDING"), "must not be shipped yet"),
    "FBA order": (lambda o, s: _body(o, shipDate=o["createdTime"]), _fba, "fulfilled by Amazon"),
    "item twice": (lambda o, s: _body(o, orderItems=[{"orderItemId": o["orderItems"][0]["orderItemId"],
                                                      "quantity": 1}] * 2), None, "twice"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_standin_refuses_what_amazon_documents_as_invalid(standin, case):
    build, pick, word = CASES[case]
    order = pick(standin) if pick else open_orders(standin)[0]
    body = build(order, standin)
    r = httpx.post(f"{standin.url}/orders/v0/orders/{order['orderId']}/shipmentConfirmation",
                   headers={"x-amz-access-token": access_token(standin), "content-type": "application/json"},
                   **({"content": body} if isinstance(body, bytes) else {"json": body}))
    assert r.status_code == 400, r.text
    err = r.json()["errors"][0]
    assert (err["code"], err["message"]) == ("Invalid Input", "Invalid Input") and word in err["details"], err
    assert not standin.shipments()


def test_the_standin_accepts_other_with_a_carrier_name_and_any_iso_offset(standin):
    order = open_orders(standin)[0]
    body = _body(order, carrierCode="Other", carrierName="Spedition Müller", shipDate="2026-11-25T03:30:00+01:00")
    r = httpx.post(f"{standin.url}/orders/v0/orders/{order['orderId']}/shipmentConfirmation", json=body,
                   headers={"x-amz-access-token": access_token(standin)})
    assert r.status_code == 204 and r.content == b"" and r.headers["x-amzn-RateLimit-Limit"] == "1000"
    assert order_now(standin, order["orderId"])["packages"][0]["carrier"] == "Spedition Müller"
    assert standin.shipments()[0]["shipDate"] == "2026-11-25T02:30:00Z"
