"""What the channels may sell (caturactl/catalogue/availability.py) and ``caturactl stock push``:
the computation, only changes pushed, both stand-ins receiving the quantities over HTTP, and
Amazon's published rate kept."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from caturactl.catalogue.availability import Availability, available, changes, to_sell
from caturactl.catalogue.models import ChannelStock, Product
from caturactl.config import StockConfig
from caturactl.outbox.models import OutboxMessage
from standins.amazon.marketplace import CATALOGUE
from standins.amazon.ratelimit import TokenBucket
from tests import factories as f

SKUS = [r["sku"] for r in CATALOGUE[:6]]


def test_to_sell_is_on_hand_less_reserved_less_safety_and_never_negative():
    assert to_sell(10, 3, 2) == 5
    assert to_sell(4, 3, 2) == 0
    assert to_sell(0, 0, 0) == 0


def test_changes_are_new_or_different_quantities_and_zero_for_a_sku_no_longer_sold():
    now = [Availability("A", 5, 0, 0, 5), Availability("B", 3, 0, 0, 3), Availability("C", 0, 0, 0, 0)]
    found = changes({"A": 5, "B": 2, "GONE": 4, "ZERO": 0}, now, "shop")
    assert [(c.sku, c.before, c.quantity) for c in found] == [("B", 2, 3), ("C", None, 0), ("GONE", 4, 0)]


def test_available_sums_every_location_less_reserved_and_safety_never_below_zero(bare_workspace):
    app = bare_workspace.app()
    cfg = StockConfig(safety=2, safety_per_sku={"LAMP-1": 0})
    with app.session() as s:
        for sku in ("TOOL-1", "LAMP-1", "BOOK-1", "NONE-1"):
            f.product(s, sku)
        f.product(s, "OLD-1", active=False)
        f.stock(s, "WH", "TOOL-1", 10, reserved=3)
        f.stock(s, "FUL", "TOOL-1", 6, reserved=1)
        f.stock(s, "WH", "LAMP-1", 4, reserved=1)
        f.stock(s, "WH", "BOOK-1", 3, reserved=2)  # 1 left, less 2 safety: nothing to sell
        f.stock(s, "WH", "OLD-1", 50)
        f.stock(s, "WH", "NOT-IN-CATALOGUE", 50)
        s.commit()
        rows = {a.sku: a for a in available(s, cfg)}
        one = available(s, cfg, "TOOL-1")
        # What the order desk may promise: the same sums, no safety stock kept back.
        desk = available(s, cfg, skus=["TOOL-1", "BOOK-1", "OLD-1"], safety=False)
    assert desk == [Availability("BOOK-1", 3, 2, 0, 1), Availability("TOOL-1", 16, 4, 0, 12)]
    assert sorted(rows) == ["BOOK-1", "LAMP-1", "NONE-1", "TOOL-1"]
    assert rows["TOOL-1"] == Availability("TOOL-1", 16, 4, 2, 10)
    assert rows["LAMP-1"].quantity == 3  # its own safety stock: 0
    assert rows["BOOK-1"].quantity == 0
    assert rows["NONE-1"] == Availability("NONE-1", 0, 0, 2, 0)
    assert one == [rows["TOOL-1"]]


def _shop_section(shop) -> str:
    return f"""
[shop]
enabled = true
url = "{shop.url}"
client_id = "{shop.client_id}"
max_retries = 4
backoff_seconds = 0.01
backoff_max_seconds = 0.05
timeout_seconds = 5
"""


@pytest.fixture
def both(workspace, standin, shop_standin, monkeypatch):
    """A workspace selling on Amazon and in the shop, with six catalogue products in stock."""
    ws = workspace
    ws.write_config(amazon_extra=f'seller_id = "{standin.seller_id}"', extra=_shop_section(shop_standin)
                    + "[stock]\nsafety = 2\n")
    monkeypatch.setenv("CATURACTL_SHOP_CLIENT_SECRET", shop_standin.client_secret)
    with ws.app().session() as s:
        for i, sku in enumerate(SKUS):
            f.product(s, sku)
            f.stock(s, "WH", sku, 10 + i, reserved=1)
        s.commit()
    return ws


def _pushed(ws) -> dict[tuple[str, str], int]:
    with ws.app().session() as s:
        return {(r.channel, r.sku): r.quantity for r in s.scalars(select(ChannelStock))}


def _messages(ws) -> int:
    with ws.app().session() as s:
        return s.scalar(select(func.count()).select_from(OutboxMessage))


def test_a_push_reaches_both_stand_ins_and_a_second_one_sends_nothing(both, standin, shop_standin):
    out = json.loads(both.ok("stock", "push", "--json"))
    expected = {sku: 10 + i - 1 - 2 for i, sku in enumerate(SKUS)}
    assert out["changed"] == 2 * len(SKUS) and out["sent"]["sent"] == 2 * len(SKUS)
    assert standin.listing_quantities() == expected
    shop = shop_standin.product_stock()
    assert {sku: shop[sku] for sku in SKUS} == expected
    assert _pushed(both) == {(ch, sku): q for ch in ("amazon", "shop") for sku, q in expected.items()}

    calls = standin.stats()["calls"]["patchListingsItem"]
    writes = len(shop_standin.products.writes)
    again = json.loads(both.ok("stock", "push", "--json"))
    assert again["changed"] == 0 and again["queued"] == 0 and "sent" not in again
    assert standin.stats()["calls"]["patchListingsItem"] == calls
    assert len(shop_standin.products.writes) == writes


def test_only_the_changed_skus_are_pushed(both, standin, shop_standin):
    both.ok("stock", "push")
    with both.app().session() as s:
        f.stock(s, "WH", SKUS[0], 40, reserved=5)  # 40 - 5 - 2 = 33
        f.stock(s, "FUL", SKUS[1], 3)  # a second location: 3 more
        s.commit()
    calls = standin.stats()["calls"]["patchListingsItem"]
    out = json.loads(both.ok("stock", "push", "--json"))
    assert sorted((c["channel"], c["sku"], c["quantity"]) for c in out["changes"]) == sorted(
        (ch, sku, q) for ch in ("amazon", "shop") for sku, q in ((SKUS[0], 33), (SKUS[1], 11 - 1 - 2 + 3)))
    assert standin.stats()["calls"]["patchListingsItem"] == calls + 2
    assert standin.listing_quantities()[SKUS[0]] == 33
    assert shop_standin.product_stock()[SKUS[1]] == 11


def test_a_product_no_longer_active_is_set_to_zero_once(both, standin, shop_standin):
    both.ok("stock", "push")
    with both.app().session() as s:
        s.scalar(select(Product).where(Product.sku == SKUS[2])).active = False
        s.commit()
    out = json.loads(both.ok("stock", "push", "--json"))
    assert sorted((c["channel"], c["quantity"]) for c in out["changes"]) == [("amazon", 0), ("shop", 0)]
    assert standin.listing_quantities()[SKUS[2]] == 0 and shop_standin.product_stock()[SKUS[2]] == 0
    assert json.loads(both.ok("stock", "push", "--json"))["changed"] == 0


def test_a_dry_run_lists_the_changes_and_stores_and_sends_nothing(both, standin, shop_standin):
    before = shop_standin.product_stock()
    out = json.loads(both.ok("stock", "push", "--dry-run", "--json"))
    assert out["dry_run"] and out["changed"] == 2 * len(SKUS) and "sent" not in out
    assert {"channel": "amazon", "sku": SKUS[0], "before": None, "quantity": 7} in out["changes"]
    assert f"amazon {SKUS[0]}: none -> 7" in both.ok("stock", "push", "--dry-run")
    assert standin.stats()["calls"]["patchListingsItem"] == 0 and standin.listing_quantities() == {}
    assert shop_standin.product_stock() == before and shop_standin.stats()["calls"]["patchProduct"] == 0
    assert _pushed(both) == {} and _messages(both) == 0


def test_a_message_overtaken_by_a_newer_push_is_not_sent(both, standin, shop_standin):
    from caturactl.catalogue import availability
    app = both.app()
    with app.work() as s:
        availability.push(s, app.cfg)  # queued, not sent
    with app.session() as s:
        f.stock(s, "WH", SKUS[0], 30, reserved=0)
        s.commit()
    out = json.loads(both.ok("stock", "push", "--json"))
    assert out["changed"] == 2
    assert standin.listing_quantities()[SKUS[0]] == 28 and shop_standin.product_stock()[SKUS[0]] == 28
    # version 1 of SKUS[0] went out as "replaced", not as a write of the old figure
    assert [w["stock"] for w in shop_standin.products.writes if w["productNumber"] == SKUS[0]] == [28]


def test_stock_available_lists_per_sku_as_json_and_csv(both):
    rows = json.loads(both.ok("stock", "available", "--json"))
    assert [r["sku"] for r in rows] == sorted(SKUS)
    assert rows[0] == {"sku": SKUS[0], "on_hand": 10, "reserved": 1, "safety": 2, "quantity": 7}
    one = both.ok("stock", "available", "--sku", SKUS[1], "--format", "csv").splitlines()
    assert one == ["sku,on_hand,reserved,safety,quantity", f"{SKUS[1]},11,1,2,8"]


def test_amazons_published_rate_is_kept_at_burst(workspace, standin):
    """Twelve SKUs at once against the stand-in's real bucket (5/s, burst 5): no 429."""
    ws = workspace
    ws.write_config(amazon_extra=f'seller_id = "{standin.seller_id}"', rate_scale=1.0)
    standin.buckets["patchListingsItem"] = TokenBucket(5.0, 5)
    skus = [r["sku"] for r in CATALOGUE[:12]]
    with ws.app().session() as s:
        for sku in skus:
            f.product(s, sku)
            f.stock(s, "WH", sku, 20)
        s.commit()
    out = json.loads(ws.ok("stock", "push", "--json"))
    assert out["sent"]["sent"] == 12 and out["sent"]["retry_later"] == 0
    assert standin.stats()["throttled"] == 0
    assert standin.listing_quantities() == {sku: 18 for sku in skus}


def test_the_amazon_stand_in_refuses_a_patch_the_model_rules_out(standin):
    import httpx
    from connectors.amazon.listings import quantity_patch
    token = httpx.post(standin.lwa_url, data={"grant_type": "refresh_token", "refresh_token": standin.refresh_token,
                                              "client_id": standin.client_id,
                                              "client_secret": standin.client_secret}).json()["access_token"]
    url = f"{standin.url}/listings/2021-08-01/items/{standin.seller_id}/{SKUS[0]}"
    head = {"x-amz-access-token": token}
    de = {"marketplaceIds": "A1PA6795UKMFR9"}
    bad = [({"patches": quantity_patch(3)["patches"]}, "productType"),
           ({**quantity_patch(3), "patches": []}, "patches"),
           ({"productType": "PRODUCT", "patches": [{"op": "replace", "path": "/attributes/fulfillment_availability",
                                                    "value": [{"fulfillment_channel_code": "DEFAULT",
                                                               "quantity": -1}]}]}, "quantity"),
           ({"productType": "PRODUCT", "patches": [{"op": "swap", "path": "/attributes/x", "value": []}]}, "op")]
    for body, named in bad:
        r = httpx.patch(url, params=de, json=body, headers=head)
        assert r.status_code == 400 and named in r.json()["errors"][0]["details"], (body, r.text)
    assert httpx.patch(url, params={"marketplaceIds": "A1PA6795UKMFR9,A13V1IB3VIYZZH"}, json=quantity_patch(3),
                       headers=head).status_code == 400
    assert httpx.patch(url.replace(standin.seller_id, "OTHER"), params=de, json=quantity_patch(3),
                       headers=head).status_code == 403
    ok = httpx.patch(url, params=de, json=quantity_patch(3), headers=head)
    assert ok.status_code == 200 and ok.json()["status"] == "ACCEPTED"
    got = httpx.get(url, params={**de, "includedData": "fulfillmentAvailability"}, headers=head).json()
    assert got == {"sku": SKUS[0], "fulfillmentAvailability": [{"fulfillmentChannelCode": "DEFAULT", "quantity": 3}]}
    assert httpx.get(url.replace(SKUS[0], "NOPE"), params=de, headers=head).status_code == 404
