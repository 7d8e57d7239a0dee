"""``caturactl stock push`` with dropshippers (issue 18, item 4): what a channel may sell includes
the fresh availability of the partners allowed to serve it, and a stale feed drops the pushed
figure back to our own stock; checked at both stand-ins, the shop's and Amazon's, over HTTP."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from caturactl.fulfilment.dropship import service
from tests import factories as f
from tests.dropship import sections
from tests.fulfilment import COMPANY
from tests.integration.test_stock_push import SKUS, _shop_section

T = datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def selling(workspace, standin, shop_standin, monkeypatch, tmp_path):
    """Amazon and the shop, [stock] safety 2, our stock of SKUS[0] and SKUS[1] (10 and 11, one
    reserved each); DS1 (every channel) has 5 of SKUS[0], DS2 (Amazon only) 4 of SKUS[1]."""
    clock = f.fixed_clock(T)
    ws = workspace
    ws.write_config(amazon_extra=f'seller_id = "{standin.seller_id}"', company=COMPANY,
                    extra=_shop_section(shop_standin) + "[stock]\nsafety = 2\n"
                    + sections(tmp_path, ds2='channels = ["amazon"]'))
    monkeypatch.setenv("CATURACTL_SHOP_CLIENT_SECRET", shop_standin.client_secret)
    app = ws.app()
    with app.session() as s:
        for i, sku in enumerate(SKUS[:2]):
            f.product(s, sku)
            f.stock(s, "WH", sku, 10 + i, reserved=1)
        service.set_availability(s, "DS1", {SKUS[0]: 5}, actor="test")
        service.set_availability(s, "DS2", {SKUS[1]: 4}, actor="test")
        s.commit()
    app.dispose()
    return ws, clock


def test_fresh_partner_stock_is_pushed_to_the_channels_it_may_serve_and_a_stale_feed_drops_it(
        selling, standin, shop_standin):
    ws, clock = selling
    ws.ok("stock", "push")
    # own 10 + DS1 5, less 1 reserved, less 2 safety; SKUS[1]: DS2 serves Amazon only
    assert {sku: shop_standin.product_stock()[sku] for sku in SKUS[:2]} == {SKUS[0]: 12, SKUS[1]: 8}
    assert {sku: standin.listing_quantities()[sku] for sku in SKUS[:2]} == {SKUS[0]: 12, SKUS[1]: 12}

    clock.set(T + timedelta(hours=25))  # both feeds are older than their 24 hours now
    out = json.loads(ws.ok("stock", "push", "--json"))
    assert sorted((c["channel"], c["sku"], c["before"], c["quantity"]) for c in out["changes"]) == sorted([
        ("amazon", SKUS[0], 12, 7), ("shop", SKUS[0], 12, 7), ("amazon", SKUS[1], 12, 8)])
    assert {sku: shop_standin.product_stock()[sku] for sku in SKUS[:2]} == {SKUS[0]: 7, SKUS[1]: 8}
    assert {sku: standin.listing_quantities()[sku] for sku in SKUS[:2]} == {SKUS[0]: 7, SKUS[1]: 8}
