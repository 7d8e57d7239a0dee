"""Tests for the local SP-API stand-in (standins/amazon), driven by the real python-amazon-sp-api client."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import subprocess
import sys
import time
import types
import uuid
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import httpx
import pytest
from sp_api.api import Feeds, OrdersV20260101
from sp_api.auth import AccessTokenClient
from sp_api.auth.exceptions import AuthorizationError
from sp_api.base.exceptions import (
    SellingApiBadRequestException,
    SellingApiNotFoundException,
    SellingApiRequestThrottledException,
    SellingApiServerException,
    SellingApiTemporarilyUnavailableException,
)

from standins.amazon import AmazonStandin, Fault
from standins.amazon.ratelimit import TokenBucket

DE, FR, IT, ES = "A1PA6795UKMFR9", "A13V1IB3VIYZZH", "APJ6JRA9NG5V4", "A1RKKUPIHCS9HS"
ALL_MPS = [DE, FR, IT, ES]
DAY = dt.date(2026, 11, 24)
DAY_START = "2026-11-24T00:00:00Z"
FULL = ["BUYER", "RECIPIENT", "FULFILLMENT", "PROCEEDS", "PROMOTION", "CANCELLATION", "TAX", "PACKAGES"]
VAT = {"DE": Decimal("0.19"), "FR": Decimal("0.20"), "IT": Decimal("0.22"), "ES": Decimal("0.21")}
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_default_marketplace(monkeypatch):
    # If set, sp_api ignores our marketplace object and calls the real Amazon endpoint.
    monkeypatch.delenv("SP_API_DEFAULT_MARKETPLACE", raising=False)


def make_standin(**kw) -> AmazonStandin:
    # sp_api caches access tokens process-wide by refresh token: one per stand-in keeps tests independent.
    kw.setdefault("refresh_token", f"standin-refresh-{uuid.uuid4().hex[:10]}")
    kw.setdefault("day", DAY)
    return AmazonStandin(**kw).start()


def client(s: AmazonStandin, *, secret: str | None = None, refresh_token: str | None = None,
           marketplace_id: str = DE) -> OrdersV20260101:
    class LocalLwa(AccessTokenClient):
        scheme = "http://"
        host = f"127.0.0.1:{s.port}"

    return OrdersV20260101(
        marketplace=types.SimpleNamespace(endpoint=s.url, marketplace_id=marketplace_id, region="eu-west-1"),
        credentials={"refresh_token": refresh_token or s.refresh_token, "lwa_app_id": s.client_id,
                     "lwa_client_secret": secret or s.client_secret},
        auth_token_client_class=LocalLwa,
    )


@pytest.fixture
def standin():
    s = make_standin(orders=250, seed=1, rate_scale=1000.0)
    yield s
    s.stop()


def access_token(s: AmazonStandin) -> str:
    r = httpx.post(s.lwa_url, data={"grant_type": "refresh_token", "refresh_token": s.refresh_token,
                                    "client_id": s.client_id, "client_secret": s.client_secret})
    assert r.status_code == 200
    return r.json()["access_token"]


def page_through(c, **kw):
    pages = [c.search_orders(**kw)]
    while pages[-1].next_token:
        pages.append(c.search_orders(paginationToken=pages[-1].next_token, **kw))
    return pages


def amount(m) -> Decimal:
    assert m["currencyCode"] == "EUR" and isinstance(m["amount"], str)
    return Decimal(m["amount"])


# --------------------------------------------------------------------------- paging and data
def test_pages_through_all_orders_with_repeated_params(standin):
    c = client(standin)
    pages = page_through(c, createdAfter=DAY_START, marketplaceIds=ALL_MPS, maxResultsPerPage=100,
                         includedData=["FULFILLMENT"])
    assert [len(p.payload["orders"]) for p in pages] == [100, 100, 50]
    assert pages[0].pagination and "nextToken" in pages[0].pagination
    assert pages[-1].next_token is None and "pagination" not in pages[-1].payload
    assert pages[0].payload["createdBefore"] == "2026-11-25T02:58:00Z"   # now (day end + 3 h) - 2 min
    assert pages[0].rate_limit == "5.6"                                    # 0.0056 x rate_scale 1000
    orders = [o for p in pages for o in p.payload["orders"]]
    ids = [o["orderId"] for o in orders]
    assert sorted(ids) == sorted(standin.order_ids()) and len(set(ids)) == 250
    keys = [(o["createdTime"], o["orderId"]) for o in orders]
    assert keys == sorted(keys)
    assert all(o["createdTime"].startswith("2026-11-24T") for o in orders)
    for oid in ids:
        a, b, c_ = oid.split("-")
        assert (len(a), len(b), len(c_)) == (3, 7, 7) and oid.replace("-", "").isdigit()

    # lastUpdated search is sorted by lastUpdatedTime; only DE when the client adds its own marketplace
    de = page_through(c, lastUpdatedAfter=DAY_START, maxResultsPerPage=60)
    de_orders = [o for p in de for o in p.payload["orders"]]
    assert "lastUpdatedBefore" in de[0].payload
    assert {o["salesChannel"]["marketplaceId"] for o in de_orders} == {DE}
    assert len(de_orders) == sum(o["salesChannel"]["marketplaceId"] == DE for o in orders)
    ukeys = [(o["lastUpdatedTime"], o["orderId"]) for o in de_orders]
    assert ukeys == sorted(ukeys)

    # filters
    fba = page_through(c, createdAfter=DAY_START, marketplaceIds=ALL_MPS, fulfilledBy=["AMAZON"],
                       includedData=["FULFILLMENT"])
    fba_orders = [o for p in fba for o in p.payload["orders"]]
    assert fba_orders and all(o["fulfillment"]["fulfilledBy"] == "AMAZON" for o in fba_orders)
    assert all(o["fulfillment"]["fulfillmentStatus"] == "SHIPPED" for o in fba_orders)
    unshipped = c.search_orders(createdAfter=DAY_START, marketplaceIds=ALL_MPS, fulfillmentStatuses=["UNSHIPPED"],
                                includedData=["FULFILLMENT"], createdBefore="2026-11-24T12:00:00Z")
    got = unshipped.payload["orders"]
    assert got and all(o["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED" for o in got)
    assert all(o["createdTime"] < "2026-11-24T12:00:00Z" for o in got)
    assert unshipped.payload["createdBefore"] == "2026-11-24T12:00:00Z"


def test_determinism():
    a = AmazonStandin(orders=120, seed=7, day=DAY)
    b = AmazonStandin(orders=120, seed=7, day=DAY)
    other = AmazonStandin(orders=120, seed=8, day=DAY)
    assert a.order_ids() == b.order_ids()
    assert a.visible_orders() == b.visible_orders()
    assert set(a.order_ids()).isdisjoint(other.order_ids())
    assert a.visible_orders() != other.visible_orders()
    assert len(set(a.order_ids())) == 120
    assert a.now() == dt.datetime(2026, 11, 25, 3, 0, tzinfo=dt.timezone.utc)


def test_generated_mix_is_realistic():
    s = AmazonStandin(orders=3000, seed=3, day=DAY)
    orders = s.visible_orders()
    n = len(orders)
    share = lambda pred: sum(1 for o in orders if pred(o)) / n  # noqa: E731
    assert 0.55 < share(lambda o: o["salesChannel"]["marketplaceId"] == DE) < 0.65
    assert 0.25 < share(lambda o: "PRIME" in o["programs"]) < 0.35
    assert 0.05 < share(lambda o: "AMAZON_BUSINESS" in o["programs"]) < 0.11
    assert 0.03 < share(lambda o: o["fulfillment"]["fulfilledBy"] == "AMAZON") < 0.07
    assert 0.70 < share(lambda o: len(o["orderItems"]) == 1) < 0.80
    skus = {r["sku"] for r in s.catalogue()}
    assert 0.003 < share(lambda o: any(i["product"]["sellerSku"] not in skus for i in o["orderItems"])) < 0.025
    # repeat buyers: same relay e-mail and same address
    emails = [o["buyer"].get("buyerEmail") for o in orders if o["buyer"].get("buyerEmail")]
    assert 0.12 < 1 - len(set(emails)) / len(emails) < 0.28
    assert all(e.split("@")[1].startswith("marketplace.amazon.") for e in emails)
    lines = [o["recipient"]["deliveryAddress"].get("addressLine1", "") for o in orders]
    assert any(l.startswith("Packstation ") for l in lines)
    assert any(l.startswith("Postfach ") or l.startswith("BP ") for l in lines)
    assert any("str. " in l for l in lines) and any("straße " in l for l in lines)
    assert any(o["recipient"].get("deliveryPreference", {}).get("addressInstruction") for o in orders)
    assert any(i.get("fulfillment", {}).get("packing", {}).get("giftOption", {}).get("giftMessage")
               for o in orders for i in o["orderItems"])
    regs = [r for o in orders for r in o.get("tax", {}).get("taxRegistrations", [])]
    assert regs and all(r["entityType"] == "BUYER" and r["taxRegistrationType"] == "VAT" for r in regs)
    business = [o for o in orders if "AMAZON_BUSINESS" in o["programs"]]
    assert all(o["buyer"]["buyerCompanyName"] for o in business)
    assert all(o["recipient"]["deliveryAddress"]["addressType"] == "COMMERCIAL" for o in business)
    # merchant orders that are not cancelled carry buyer name and e-mail
    for o in orders:
        if o["fulfillment"]["fulfilledBy"] == "MERCHANT" and o["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED":
            assert o["buyer"]["buyerName"] and o["buyer"]["buyerEmail"]
    # catalogue
    cat = s.catalogue()
    assert 35 <= len(cat) <= 45
    assert all(Decimal("4.99") <= r["price"] <= Decimal("149.00") for r in cat)
    rows = list(csv.DictReader(io.StringIO(s.catalogue_csv())))
    assert list(rows[0]) == ["sku", "title", "asin", "price", "weight_g", "length_mm", "width_mm", "height_mm",
                            "tax_class"]
    assert [r["sku"] for r in rows] == [r["sku"] for r in cat]


def test_a_large_generated_day_serves_full_pages():
    """10,000 orders generate and page like a small day (how fast is bench/import.py's business:
    a timed assertion here would fail on a busy machine, not on slow code)."""
    s = AmazonStandin(orders=10_000, seed=2, day=DAY).start()
    try:
        token = access_token(s)
        params = {"createdAfter": DAY_START, "marketplaceIds": ",".join(ALL_MPS), "includedData": ",".join(FULL)}
        with httpx.Client(base_url=s.url, headers={"x-amz-access-token": token}) as h:
            first = h.get("/orders/2026-01-01/orders", params=params).json()
            again = h.get("/orders/2026-01-01/orders", params=params).json()
        assert len(first["orders"]) == 100 and first["pagination"]["nextToken"] and first == again
    finally:
        s.stop()


def test_included_data_shaping_and_money(standin):
    c = client(standin)
    bare = c.search_orders(createdAfter=DAY_START, marketplaceIds=ALL_MPS).payload["orders"]
    for o in bare:
        assert {"orderId", "createdTime", "lastUpdatedTime", "programs", "salesChannel", "orderItems"} <= set(o)
        assert not {"buyer", "recipient", "fulfillment", "proceeds", "tax", "packages"} & set(o)
        assert o["salesChannel"]["channelName"] == "AMAZON"
        for it in o["orderItems"]:
            assert {"orderItemId", "quantityOrdered", "product"} <= set(it)
            assert not {"proceeds", "fulfillment", "cancellation", "promotion"} & set(it)
            assert {"asin", "sellerSku", "title", "condition", "price"} <= set(it["product"])

    only_buyer = c.search_orders(createdAfter=DAY_START, marketplaceIds=ALL_MPS, includedData=["BUYER"])
    for o in only_buyer.payload["orders"]:
        assert "buyer" in o and not {"recipient", "fulfillment", "proceeds"} & set(o)

    full = [o for p in page_through(c, createdAfter=DAY_START, marketplaceIds=ALL_MPS, includedData=FULL)
            for o in p.payload["orders"]]
    names = {DE: "Amazon.de", FR: "Amazon.fr", IT: "Amazon.it", ES: "Amazon.es"}
    for o in full:
        assert names[o["salesChannel"]["marketplaceId"]] == o["salesChannel"]["marketplaceName"]
        country = o["recipient"]["deliveryAddress"]["countryCode"]
        assert {"buyer", "recipient", "fulfillment", "proceeds"} <= set(o)
        rate = VAT[country]
        grand = Decimal(0)
        for it in o["orderItems"]:
            assert "fulfillment" in it and "proceeds" in it
            bd = {b["type"]: amount(b["subtotal"]) for b in it["proceeds"]["breakdowns"]}
            total = amount(it["proceeds"]["proceedsTotal"])
            # net charges, minus the net discount, plus the TAX apart add up to what was paid
            assert sum(bd.values()) == total and bd.get("DISCOUNT", Decimal(0)) <= 0
            gross_items = amount(it["product"]["price"]["unitPrice"]) * it["quantityOrdered"]
            assert bd["ITEM"] == (gross_items / (1 + rate)).quantize(Decimal("0.01"), ROUND_HALF_UP)
            assert abs(bd["TAX"] - total * rate / (1 + rate)) <= Decimal("0.02")
            tax = next(b for b in it["proceeds"]["breakdowns"] if b["type"] == "TAX")
            assert sum(amount(d["value"]) for d in tax["detailedBreakdowns"]) == bd["TAX"]
            grand += total
        assert amount(o["proceeds"]["grandTotal"]) == grand
    # a business order with a VAT id shows it under TAX
    assert any(r["taxRegistrationNumber"][:2] in VAT for o in full for r in o.get("tax", {}).get("taxRegistrations", []))

    one = full[5]["orderId"]
    got = c.get_order(one, includedData=["RECIPIENT"]).payload["order"]
    assert got["orderId"] == one and "recipient" in got and "buyer" not in got
    with pytest.raises(SellingApiNotFoundException):
        c.get_order("302-0000000-0000000")


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize("kwargs, word", [
    ({"createdAfter": DAY_START, "lastUpdatedAfter": DAY_START}, "createdAfter"),
    ({"marketplaceIds": [DE]}, "lastUpdatedAfter"),
    ({"createdAfter": DAY_START, "lastUpdatedBefore": "2026-11-24T10:00:00Z"}, "lastUpdatedBefore"),
    ({"createdAfter": DAY_START, "createdBefore": "2026-11-25T02:59:00Z"}, "createdBefore"),
    ({"createdAfter": "2026-11-24T10:00:00Z", "createdBefore": "2026-11-24T09:00:00Z"}, "createdBefore"),
    ({"createdAfter": "yesterday"}, "createdAfter"),
    ({"createdAfter": DAY_START, "marketplaceIds": [DE, "XXUNKNOWN1"]}, "XXUNKNOWN1"),
    ({"createdAfter": DAY_START, "maxResultsPerPage": 101}, "maxResultsPerPage"),
    ({"createdAfter": DAY_START, "includedData": ["BUYER", "ITEMS"]}, "includedData"),
    ({"createdAfter": DAY_START, "fulfillmentStatuses": ["Unshipped"]}, "fulfillmentStatuses"),
    ({"createdAfter": DAY_START, "fulfilledBy": ["AFN"]}, "fulfilledBy"),
])
def test_validation_errors(standin, kwargs, word):
    with pytest.raises(SellingApiBadRequestException) as exc:
        client(standin).search_orders(**kwargs)
    err = exc.value.error[0]
    assert err["code"] == "InvalidInput"
    assert word in err["message"]


def test_pagination_token_rules(standin):
    c = client(standin)
    kw = dict(createdAfter=DAY_START, marketplaceIds=ALL_MPS, maxResultsPerPage=50)
    first = c.search_orders(**kw)
    token = first.next_token
    # changing a filter parameter is refused, naming it
    with pytest.raises(SellingApiBadRequestException) as exc:
        c.search_orders(paginationToken=token, createdAfter="2026-11-24T01:00:00Z", marketplaceIds=ALL_MPS)
    assert "createdAfter" in exc.value.error[0]["message"]
    with pytest.raises(SellingApiBadRequestException) as exc:
        c.search_orders(paginationToken=token, createdAfter=DAY_START)   # client adds only DE
    assert "marketplaceIds" in exc.value.error[0]["message"]
    with pytest.raises(SellingApiBadRequestException):
        c.search_orders(paginationToken=token[:-3] + "xyz", **kw)
    # maxResultsPerPage and includedData may change
    second = c.search_orders(paginationToken=token, createdAfter=DAY_START, marketplaceIds=ALL_MPS,
                             maxResultsPerPage=20, includedData=["BUYER"])
    assert len(second.payload["orders"]) == 20 and "buyer" in second.payload["orders"][0]
    assert not {o["orderId"] for o in second.payload["orders"]} & {o["orderId"] for o in first.payload["orders"]}
    # tokens expire after 24 h of simulated time
    standin.advance(dt.timedelta(hours=24, minutes=1))
    with pytest.raises(SellingApiBadRequestException) as exc:
        c.search_orders(paginationToken=token, **kw)
    assert "expired" in exc.value.error[0]["message"]


# --------------------------------------------------------------------------- rate limits
def test_rate_limit_21st_call_throttled():
    s = make_standin(orders=30, seed=1, rate_scale=1.0)
    try:
        c = client(s)
        for _ in range(20):
            r = c.search_orders(createdAfter=DAY_START, maxResultsPerPage=1)
            assert r.rate_limit == "0.0056"
        with pytest.raises(SellingApiRequestThrottledException) as exc:
            c.search_orders(createdAfter=DAY_START, maxResultsPerPage=1)
        assert exc.value.error[0]["code"] == "QuotaExceeded"
        assert "x-amzn-RequestId" in exc.value.headers and "x-amzn-RateLimit-Limit" not in exc.value.headers
        # getOrder has its own bucket
        assert c.get_order(s.order_ids()[0]).payload["order"]
        st = s.stats()
        assert st["calls"]["searchOrders"] == 21 and st["calls"]["getOrder"] == 1
        assert st["throttled"] == 1 and st["calls"]["token"] == 1
    finally:
        s.stop()


def test_rate_limit_refills_with_high_rate_scale():
    s = make_standin(orders=30, seed=1, rate_scale=2000.0)   # 11.2 requests/s
    try:
        c = client(s)
        throttled = 0
        for _ in range(40):
            try:
                c.search_orders(createdAfter=DAY_START, maxResultsPerPage=1)
            except SellingApiRequestThrottledException:
                throttled += 1
        assert throttled >= 1 and s.stats()["throttled"] == throttled
        time.sleep(0.3)                                       # > 3 tokens come back
        assert c.search_orders(createdAfter=DAY_START, maxResultsPerPage=1).rate_limit == "11.2"
    finally:
        s.stop()


def test_token_bucket_unit():
    now = [100.0]
    b = TokenBucket(rate=2.0, burst=3, clock=lambda: now[0])
    assert [b.try_acquire() for _ in range(4)] == [True, True, True, False]
    assert b.seconds_until() == pytest.approx(0.5)
    now[0] += 0.5
    assert b.try_acquire() and not b.try_acquire()
    now[0] += 100
    assert b.available == 3


# --------------------------------------------------------------------------- getFeeds
FEEDS = "/feeds/2021-06-30/feeds"
INVOICE_FEED = "UPLOAD_VAT_INVOICE"


def feeds_client(s: AmazonStandin, marketplace_id: str = DE) -> Feeds:
    class LocalLwa(AccessTokenClient):
        scheme = "http://"
        host = f"127.0.0.1:{s.port}"

    return Feeds(marketplace=types.SimpleNamespace(endpoint=s.url, marketplace_id=marketplace_id, region="eu-west-1"),
                 credentials={"refresh_token": s.refresh_token, "lwa_app_id": s.client_id,
                              "lwa_client_secret": s.client_secret},
                 auth_token_client_class=LocalLwa)


def queue_feed(s: AmazonStandin, marketplace_id: str = DE) -> str:
    """An invoice feed created at the simulated now, straight in the marketplace (no SP-API call)."""
    mp = s.marketplace
    doc = mp.create_feed_document("application/pdf")
    mp.store_document(doc, b"%PDF-1.7\n%%EOF\n")
    return mp.create_feed(INVOICE_FEED, [marketplace_id], doc, {})


def test_getfeeds_pages_newest_first_through_the_library_and_reads_both_list_forms(standin):
    ids = []
    for mp in (DE, FR, DE, FR, DE):
        ids.append(queue_feed(standin, mp))
        standin.advance(dt.timedelta(minutes=1))
    c = feeds_client(standin)
    # What python-amazon-sp-api sends for Python lists: the key repeated (feedTypes=..&marketplaceIds=DE&..=FR)
    first = c.get_feeds(feedTypes=[INVOICE_FEED], marketplaceIds=[DE, FR], pageSize=2)
    assert first.rate_limit == "22.2"                                   # 0.0222 x rate_scale 1000
    pages = [first]
    while pages[-1].next_token:
        pages.append(c.get_feeds(nextToken=pages[-1].next_token))      # the token alone
    assert [len(p.payload["feeds"]) for p in pages] == [2, 2, 1]
    listed = [f for p in pages for f in p.payload["feeds"]]
    assert [f["feedId"] for f in listed] == ids[::-1]                   # newest first
    assert listed == [standin.marketplace.feed(i) for i in ids[::-1]]   # as getFeed shows them
    # no metadata, so each ends FATAL; the newest, a minute old, is still being processed
    assert listed[-1]["processingStatus"] == "FATAL" and listed[0]["processingStatus"] == "IN_PROGRESS"
    # without marketplaceIds the library adds its own marketplace: DE only
    assert [f["feedId"] for f in c.get_feeds(feedTypes=[INVOICE_FEED]).payload["feeds"]] == [ids[4], ids[2], ids[0]]
    # the comma-separated form, createdSince / createdUntil and processingStatuses
    r = httpx.get(f"{standin.url}{FEEDS}", headers={"x-amz-access-token": access_token(standin)},
                  params={"feedTypes": f"POST_PRODUCT_DATA,{INVOICE_FEED}", "marketplaceIds": f"{FR},{IT}",
                          "createdSince": "2026-11-25T03:01:00Z", "createdUntil": "2026-11-25T03:03:00Z",
                          "processingStatuses": "IN_PROGRESS,FATAL"})
    assert r.status_code == 200 and "nextToken" not in r.json()
    assert [f["feedId"] for f in r.json()["feeds"]] == [ids[3], ids[1]]  # both ends inclusive
    assert c.get_feeds(feedTypes=[INVOICE_FEED], marketplaceIds=[DE, FR],
                       processingStatuses=["IN_PROGRESS"]).payload["feeds"] == [listed[0]]
    assert c.get_feeds(feedTypes=["POST_PRODUCT_DATA"]).payload == {"feeds": []}
    assert standin.stats()["calls"]["getFeeds"] == 7


def test_getfeeds_keeps_feeds_90_days_by_default(standin):
    old = queue_feed(standin)
    standin.advance(dt.timedelta(days=89))
    new = queue_feed(standin)
    c = feeds_client(standin)
    assert [f["feedId"] for f in c.get_feeds(feedTypes=[INVOICE_FEED]).payload["feeds"]] == [new, old]
    standin.advance(dt.timedelta(days=2))
    assert [f["feedId"] for f in c.get_feeds(feedTypes=[INVOICE_FEED]).payload["feeds"]] == [new]
    # "Feeds are retained for a maximum of 90 days": an explicit createdSince does not bring it back
    assert [f["feedId"] for f in c.get_feeds(feedTypes=[INVOICE_FEED],
                                             createdSince="2026-11-01T00:00:00Z").payload["feeds"]] == [new]


GET_FEEDS_400 = {
    "neither feedTypes nor nextToken": ({"feedTypes": None, "pageSize": "5"}, "feedTypes"),
    "empty feedTypes": ({"feedTypes": ""}, "feedTypes"),
    "eleven feedTypes": ({"feedTypes": ",".join([INVOICE_FEED] * 11)}, "at most 10"),
    "eleven marketplaceIds": ({"marketplaceIds": ",".join([DE] * 11)}, "at most 10"),
    "unknown status": ({"processingStatuses": "DONE,BAD_VALUE"}, "BAD_VALUE"),
    "pageSize 0": ({"pageSize": "0"}, "pageSize"),
    "pageSize 101": ({"pageSize": "101"}, "pageSize"),
    "pageSize not a number": ({"pageSize": "ten"}, "pageSize"),
    "createdSince after createdUntil": ({"createdSince": "2026-11-25T02:00:00Z",
                                         "createdUntil": "2026-11-25T01:00:00Z"}, "createdUntil"),
    "createdSince not a date": ({"createdSince": "yesterday"}, "createdSince"),
    # str() of a Python datetime, which httpx sends for one passed as is
    "createdSince with a space": ({"createdSince": "2026-11-25 02:00:00+00:00"}, "createdSince"),
    "unknown parameter": ({"createdAfter": "2026-11-25T02:00:00Z"}, "createdAfter"),
    "forged nextToken": ({"feedTypes": None, "nextToken": "abc.def"}, "nextToken"),
}


@pytest.mark.parametrize("case", list(GET_FEEDS_400))
def test_getfeeds_refuses_what_the_model_rules_out(standin, case):
    change, word = GET_FEEDS_400[case]
    params = {k: v for k, v in {"feedTypes": INVOICE_FEED, **change}.items() if v is not None}
    r = httpx.get(f"{standin.url}{FEEDS}", params=params, headers={"x-amz-access-token": access_token(standin)})
    assert r.status_code == 400 and r.headers["x-amzn-RateLimit-Limit"] == "22.2"
    [err] = r.json()["errors"]
    assert (err["code"], err["message"]) == ("400", "Invalid input") and word in err["details"], err


def test_getfeeds_next_token_must_come_alone_and_be_a_getfeeds_token(standin):
    for _ in range(3):
        queue_feed(standin)
    c = feeds_client(standin)
    token = c.get_feeds(feedTypes=[INVOICE_FEED], pageSize=1).next_token
    assert token
    with pytest.raises(SellingApiBadRequestException) as exc:
        c.get_feeds(nextToken=token, feedTypes=[INVOICE_FEED])
    assert "nextToken must be the only parameter" in exc.value.error[0]["details"]
    assert "feedTypes" in exc.value.error[0]["details"]
    assert len(c.get_feeds(nextToken=token).payload["feeds"]) == 1    # the token itself still works
    # a getReports token is not a getFeeds one, and the other way round
    standin.close_settlement(duplicate=True)      # two reports, so a page of one has a nextToken
    headers = {"x-amz-access-token": access_token(standin)}
    reports = httpx.get(f"{standin.url}/reports/2021-06-30/reports", headers=headers, params={
        "reportTypes": "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2", "pageSize": "1"})
    report_token = reports.json()["nextToken"]
    r = httpx.get(f"{standin.url}{FEEDS}", params={"nextToken": report_token}, headers=headers)
    assert r.status_code == 400 and "not one of getFeeds" in r.json()["errors"][0]["details"]
    r = httpx.get(f"{standin.url}/reports/2021-06-30/reports", params={"nextToken": token}, headers=headers)
    assert r.status_code == 400 and "not one of getReports" in r.json()["errors"][0]["details"]


def test_getfeeds_rate_limit_burst_10_then_429():
    s = make_standin(orders=10, seed=1, rate_scale=1.0)
    try:
        queue_feed(s)
        c = feeds_client(s)
        for _ in range(10):
            assert c.get_feeds(feedTypes=[INVOICE_FEED]).rate_limit == "0.0222"
        with pytest.raises(SellingApiRequestThrottledException) as exc:
            c.get_feeds(feedTypes=[INVOICE_FEED])
        assert exc.value.error[0]["code"] == "QuotaExceeded"
        # getFeed has its own bucket
        feed_id = s.marketplace.feeds()[0]["feedId"]
        assert c.get_feed(feed_id).payload["feedId"] == feed_id
        st = s.stats()
        assert st["calls"]["getFeeds"] == 11 and st["calls"]["getFeed"] == 1 and st["throttled"] == 1
    finally:
        s.stop()


# --------------------------------------------------------------------------- auth
def test_bad_access_token_is_403(standin):
    path = f"{standin.url}/orders/2026-01-01/orders/{standin.order_ids()[0]}"
    for headers in ({}, {"x-amz-access-token": "Atza|forged"}, {"x-amz-access-token": "garbage"}):
        r = httpx.get(path, headers=headers)
        assert r.status_code == 403
        assert r.json()["errors"][0]["code"] == "Unauthorized"
        assert r.headers["x-amzn-RequestId"]
    good = access_token(standin)
    assert good.startswith("Atza|")
    # the Host header is ignored (sp_api mangles it for http:// endpoints)
    r = httpx.get(path, headers={"x-amz-access-token": good, "host": "27.0.0.1:1"})
    assert r.status_code == 200 and r.json()["order"]["orderId"] == standin.order_ids()[0]
    # expired tokens are refused
    short = make_standin(orders=5, token_lifetime=-1)
    try:
        expired = access_token(short)
        r = httpx.get(f"{short.url}/orders/2026-01-01/orders/{short.order_ids()[0]}",
                      headers={"x-amz-access-token": expired})
        assert r.status_code == 403
    finally:
        short.stop()


def test_lwa_errors(standin):
    with pytest.raises(AuthorizationError) as exc:
        client(standin, secret="wrong-secret", refresh_token=f"rt-{uuid.uuid4().hex}").search_orders(
            createdAfter=DAY_START)
    assert exc.value.status_code == 401 and exc.value.error_code == "invalid_client"
    with pytest.raises(AuthorizationError) as exc:
        client(standin, refresh_token=f"rt-{uuid.uuid4().hex}").search_orders(createdAfter=DAY_START)
    assert exc.value.status_code == 400 and exc.value.error_code == "invalid_grant"
    assert "refresh_token" in exc.value.message
    ok = httpx.post(standin.lwa_url, data={"grant_type": "refresh_token", "refresh_token": standin.refresh_token,
                                           "client_id": standin.client_id, "client_secret": standin.client_secret})
    body = ok.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert body["refresh_token"] == standin.refresh_token
    assert standin.stats()["calls"]["token"] == 3


# --------------------------------------------------------------------------- faults
def test_fault_status_throttle_slow(standin):
    c = client(standin)
    standin.add_fault(Fault(operation="searchOrders", kind="status", status=503, count=2))
    for _ in range(2):
        with pytest.raises(SellingApiTemporarilyUnavailableException) as exc:
            c.search_orders(createdAfter=DAY_START)
        assert exc.value.error[0]["code"] == "ServiceUnavailable"
    assert c.search_orders(createdAfter=DAY_START).payload["orders"]

    standin.add_fault(Fault(operation="getOrder", kind="status", status=500))
    with pytest.raises(SellingApiServerException) as exc:
        c.get_order(standin.order_ids()[0])
    assert exc.value.error[0]["code"] == "InternalFailure"

    before = standin.stats()["throttled"]
    standin.add_fault(Fault(operation="searchOrders", kind="throttle", count=5))
    for _ in range(5):
        with pytest.raises(SellingApiRequestThrottledException):
            c.search_orders(createdAfter=DAY_START)
    assert c.search_orders(createdAfter=DAY_START).payload["orders"]
    st = standin.stats()
    assert st["throttled"] == before + 5 and st["faults"] == 8

    standin.add_fault(Fault(operation="getOrder", kind="slow", delay=0.3))
    t0 = time.perf_counter()
    assert c.get_order(standin.order_ids()[1]).payload["order"]
    assert time.perf_counter() - t0 >= 0.3


def test_fault_malformed_and_hang(standin):
    token = access_token(standin)
    h = {"x-amz-access-token": token}
    url = f"{standin.url}/orders/2026-01-01/orders"
    standin.add_fault(Fault(operation="searchOrders", kind="malformed"))
    r = httpx.get(url, params={"createdAfter": DAY_START}, headers=h)
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.text)
    assert r.text.startswith('{"orders":')
    # the real client does not raise on it; it just sees no orders
    standin.add_fault(Fault(operation="searchOrders", kind="malformed"))
    assert "orders" not in client(standin).search_orders(createdAfter=DAY_START).payload

    standin.add_fault(Fault(operation="getOrder", kind="hang", delay=0.2))
    t0 = time.perf_counter()
    with pytest.raises(httpx.HTTPError):
        client(standin).get_order(standin.order_ids()[0])
    assert time.perf_counter() - t0 >= 0.2
    assert httpx.get(f"{url}/{standin.order_ids()[0]}", headers=h).status_code == 200

    standin.add_fault(Fault(operation="token", kind="status", status=500))
    with pytest.raises(AuthorizationError):
        client(standin, refresh_token=f"x-{uuid.uuid4().hex}").search_orders(createdAfter=DAY_START)
    with pytest.raises(ValueError):
        Fault(operation="searchOrders", kind="explode")


def test_fault_duplicate_page(standin):
    c = client(standin)
    kw = dict(createdAfter=DAY_START, marketplaceIds=ALL_MPS, maxResultsPerPage=100)
    clean = [[o["orderId"] for o in p.payload["orders"]] for p in page_through(c, **kw)]
    standin.add_fault(Fault(operation="searchOrders", kind="duplicate_page"))
    p1 = c.search_orders(**kw)                        # first page: fault waits for a page request
    p2 = c.search_orders(paginationToken=p1.next_token, **kw)
    p3 = c.search_orders(paginationToken=p2.next_token, **kw)
    p4 = c.search_orders(paginationToken=p3.next_token, **kw)
    ids = lambda p: [o["orderId"] for o in p.payload["orders"]]  # noqa: E731
    assert ids(p1) == clean[0]
    assert ids(p2) == clean[0]                        # the same orders again ...
    assert ids(p3) == clean[1]                        # ... and none missed
    assert ids(p4) == clean[2] and p4.next_token is None
    assert standin.stats()["faults"] == 1


# --------------------------------------------------------------------------- clock and changes
def test_advance_reveals_late_cancellations():
    s = make_standin(orders=600, seed=5, rate_scale=1000.0)
    try:
        c = client(s)
        kw = dict(marketplaceIds=ALL_MPS, includedData=["FULFILLMENT", "CANCELLATION"])
        first = [o for p in page_through(c, createdAfter=DAY_START, **kw) for o in p.payload["orders"]]
        assert len(first) == 600
        status0 = {o["orderId"]: o["fulfillment"]["fulfillmentStatus"] for o in first}
        late = {o.order_id for o in s.marketplace.generated() if "late_cancel" in o.tags}
        early = {o.order_id for o in s.marketplace.generated() if "early_cancel" in o.tags}
        assert late and all(status0[i] == "UNSHIPPED" for i in late)
        assert all(status0[i] == "CANCELLED" for i in early)
        watermark = c.search_orders(createdAfter=DAY_START, **kw).payload["createdBefore"]

        s.advance(dt.timedelta(hours=30))
        assert s.now() == dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.timezone.utc)
        # an incremental pull from the watermark
        changed = [o for p in page_through(c, lastUpdatedAfter=watermark, **kw) for o in p.payload["orders"]]
        cancelled = {o["orderId"] for o in changed if o["fulfillment"]["fulfillmentStatus"] == "CANCELLED"}
        expected = {o.order_id for o in s.marketplace.generated() if "late_cancel" in o.tags
                    and any(e.at <= s.now() for e in o.events)}
        assert expected and cancelled == expected
        for o in changed:
            assert o["lastUpdatedTime"] > watermark
            if o["orderId"] in cancelled:
                ex = o["orderItems"][0]["cancellation"]["cancellationExecution"]
                assert ex["cancelledBy"] in ("BUYER", "AMAZON")
        s.advance(dt.timedelta(hours=20))
        all_late = [o for p in page_through(c, lastUpdatedAfter=watermark, fulfillmentStatuses=["CANCELLED"], **kw)
                    for o in p.payload["orders"]]
        assert {o["orderId"] for o in all_late} == late
    finally:
        s.stop()


def test_pending_orders_hide_pii_until_unshipped():
    s = make_standin(orders=400, seed=4, start=dt.datetime(2026, 11, 24, 23, 59, tzinfo=dt.timezone.utc))
    try:
        pending = [o for o in s.visible_orders() if o["fulfillment"]["fulfillmentStatus"] == "PENDING"]
        assert pending
        for o in pending:
            assert "buyerEmail" not in o["buyer"] and "addressLine1" not in o["recipient"]["deliveryAddress"]
        s.advance(dt.timedelta(hours=2))
        by_id = {o["orderId"]: o for o in s.visible_orders()}
        for o in pending:
            now = by_id[o["orderId"]]
            assert now["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"
            assert now["buyer"]["buyerEmail"] and now["recipient"]["deliveryAddress"]["addressLine1"]
            assert now["lastUpdatedTime"] > o["lastUpdatedTime"]
    finally:
        s.stop()


def test_change_order_and_break_field(standin):
    c = client(standin)
    kw = dict(marketplaceIds=ALL_MPS, includedData=["FULFILLMENT", "RECIPIENT", "CANCELLATION"])
    watermark = c.search_orders(createdAfter=DAY_START, **kw).payload["createdBefore"]
    unshipped = [o["orderId"] for o in standin.visible_orders()
                 if o["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"
                 and o["fulfillment"]["fulfilledBy"] == "MERCHANT"]
    a, b, d = unshipped[:3]
    standin.change_order(a, status="CANCELLED")
    standin.change_order(b, address={"addressLine2": "Hinterhaus"})
    standin.change_order(d, break_field="orderItems[0].quantityOrdered")
    # not visible until the 2-minute window has passed
    assert not c.search_orders(lastUpdatedAfter=watermark, **kw).payload["orders"]
    standin.advance(dt.timedelta(minutes=3))
    got = {o["orderId"]: o for o in c.search_orders(lastUpdatedAfter=watermark, **kw).payload["orders"]}
    assert set(got) == {a, b, d}
    assert got[a]["fulfillment"]["fulfillmentStatus"] == "CANCELLED"
    assert got[a]["orderItems"][0]["cancellation"]["cancellationExecution"]["cancelledBy"] == "BUYER"
    assert got[b]["recipient"]["deliveryAddress"]["addressLine2"] == "Hinterhaus"
    assert got[d]["orderItems"][0]["quantityOrdered"] == "abc"
    assert c.get_order(d).payload["order"]["orderItems"][0]["quantityOrdered"] == "abc"
    assert all(o["lastUpdatedTime"] == "2026-11-25T03:00:00Z" for o in got.values())
    with pytest.raises(KeyError):
        standin.change_order("302-0000000-0000000", status="CANCELLED")


def test_changed_order_moves_out_of_open_page_window(standin):
    c = client(standin)
    kw = dict(lastUpdatedAfter=DAY_START, marketplaceIds=ALL_MPS, maxResultsPerPage=100)
    p1 = c.search_orders(**kw)
    clean = [o["orderId"] for o in c.search_orders(paginationToken=p1.next_token, **kw).payload["orders"]]
    moved = clean[10]
    standin.change_order(moved, status="CANCELLED")
    standin.advance(dt.timedelta(minutes=5))
    p2 = c.search_orders(paginationToken=p1.next_token, **kw)
    p2_ids = [o["orderId"] for o in p2.payload["orders"]]
    assert moved not in p2_ids
    assert p2_ids[:99] == [i for i in clean if i != moved]     # nothing else skipped, next one slides in
    assert p2.payload["lastUpdatedBefore"] == p1.payload["lastUpdatedBefore"]
    rest = c.search_orders(paginationToken=p2.next_token, **kw)
    seen = [o["orderId"] for p in (p1, p2, rest) for o in p.payload["orders"]]
    assert len(seen) == len(set(seen)) and set(seen) == set(standin.order_ids()) - {moved}
    # a new incremental pull from the old window's end picks the change up
    later = c.search_orders(lastUpdatedAfter=p1.payload["lastUpdatedBefore"], marketplaceIds=ALL_MPS)
    assert [o["orderId"] for o in later.payload["orders"]] == [moved]


# --------------------------------------------------------------------------- admin over HTTP
def test_admin_endpoints(standin):
    base = f"{standin.url}/_standin"
    st = httpx.get(f"{base}/stats").json()
    assert set(st) == {"calls", "throttled", "faults"} and set(st["calls"]) == {
        "searchOrders", "getOrder", "confirmShipment", "createFeedDocument", "createFeed", "getFeed", "getFeeds",
        "getFeedDocument", "getSolicitationActionsForOrder", "createProductReviewAndSellerFeedbackSolicitation",
        "getReports", "getReportDocument", "patchListingsItem", "getListingsItem", "token"}
    r = httpx.post(f"{base}/advance", json={"hours": 30})
    assert r.json()["now"] == "2026-11-26T09:00:00Z"
    assert standin.now() == dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.timezone.utc)
    assert httpx.post(f"{base}/faults", json={"operation": "getOrder", "kind": "status", "status": 503}).status_code == 200
    assert httpx.post(f"{base}/faults", json={"operation": "nope", "kind": "status"}).status_code == 400
    oid = standin.order_ids()[0]
    with pytest.raises(SellingApiTemporarilyUnavailableException):
        client(standin).get_order(oid)
    r = httpx.post(f"{base}/orders/{oid}", json={"address": {"addressLine2": "Hinterhaus"}})
    assert r.status_code == 200 and r.json()["order"]["recipient"]["deliveryAddress"]["addressLine2"] == "Hinterhaus"
    assert httpx.post(f"{base}/orders/302-0000000-0000000", json={"status": "CANCELLED"}).status_code == 404
    csv_text = httpx.get(f"{base}/catalogue.csv").text
    assert csv_text == standin.catalogue_csv()
    assert csv_text.splitlines()[0] == "sku,title,asin,price,weight_g,length_mm,width_mm,height_mm,tax_class"
    assert len(csv_text.splitlines()) == len(standin.catalogue()) + 1
    assert httpx.get(f"{base}/stats").json()["faults"] == 1
    assert httpx.get(f"{base}/orders").json()["orderIds"] == standin.order_ids()


def test_tokens_work_across_standins_with_same_credentials():
    # sp_api caches the access token per refresh token for the whole process
    rt = f"shared-{uuid.uuid4().hex[:8]}"
    with AmazonStandin(orders=10, seed=1, day=DAY, refresh_token=rt) as one:
        assert client(one).search_orders(createdAfter=DAY_START).payload["orders"] is not None
    with AmazonStandin(orders=10, seed=2, day=DAY, refresh_token=rt) as two:
        assert client(two).search_orders(createdAfter=DAY_START).payload["orders"] is not None
        assert two.stats()["calls"]["token"] == 0


def test_main_module_runs_and_prints_url():
    proc = subprocess.Popen([sys.executable, "-m", "standins.amazon", "--port", "0", "--orders", "20", "--seed", "3"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("Amazon SP-API stand-in on http://127.0.0.1:")
        url = line.split(" on ")[1].strip()
        assert httpx.get(f"{url}/_standin/stats").json()["calls"]["searchOrders"] == 0
        assert len(httpx.get(f"{url}/_standin/orders").json()["orderIds"]) == 20
    finally:
        proc.terminate()
        proc.wait(timeout=5)
