"""The shop channel against the Shopware Admin API stand-in over real HTTP: the token, the order
search page by page, the conversion of each payment method, faults, and a parcel confirmed back."""

from __future__ import annotations

import json
import os
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from caturactl import channels
from caturactl.config import ShopConfig, load
from caturactl.core.errors import ConfigError, ThrottledError
from caturactl.fulfilment.models import DeliveryNote
from caturactl.orders.models import Order
from caturactl.orders.tickets import Ticket
from caturactl.payments.models import Payment
from caturactl.outbox.service import enqueue
from caturactl.ports import OrderQuery
from connectors.shopware.channel import CONFIRM_SHIPMENT
from connectors.shopware.client import ShopwareApi
from connectors.shopware.orders import ShopwareOrders
from standins.shopware import Fault
from tests import factories


def _cfg(s, **kw) -> ShopConfig:
    values = dict(enabled=True, url=s.url, client_id=s.client_id, client_secret=s.client_secret, page_size=25,
                  max_retries=4, backoff_seconds=0.01, backoff_max_seconds=0.05, timeout_seconds=5)
    return ShopConfig(**(values | kw))


def _all(shop, *, since=None, token=None) -> list:
    mp = ShopwareOrders(shop.cfg, ShopwareApi(shop.cfg))
    try:
        return list(mp.changed_orders(OrderQuery(since or shop.now() - timedelta(days=3), ("all",), token)))
    finally:
        mp.close()


@pytest.fixture
def shop(shop_standin):
    shop_standin.cfg = _cfg(shop_standin)
    return shop_standin


def _shop_config(s) -> str:
    return f"""
[shop]
enabled = true
url = "{s.url}"
client_id = "{s.client_id}"
page_size = 25
first_import_days = 3
max_retries = 4
backoff_seconds = 0.01
backoff_max_seconds = 0.05
timeout_seconds = 5
"""


@pytest.fixture
def shop_ws(bare_workspace, shop, monkeypatch):
    ws = bare_workspace
    ws.write_config(extra=_shop_config(shop))
    monkeypatch.setenv("CATURACTL_SHOP_CLIENT_SECRET", shop.client_secret)
    (ws.path / "products.csv").write_text(shop.catalogue_csv(), encoding="utf-8")
    ws.ok("products", "import", "products.csv")
    return ws


def test_the_token_is_fetched_once_and_again_shortly_before_it_expires(shop):
    now = [0.0]
    api = ShopwareApi(shop.cfg, clock=lambda: now[0])
    first = api.token()
    assert api.token() == first and shop.stats()["calls"]["token"] == 1
    now[0] = 600 - 29  # within the last 30 s of the 600 s Shopware gives a token
    assert api.token() != first and shop.stats()["calls"]["token"] == 2
    api.close()


def test_a_wrong_secret_is_a_config_error(shop):
    api = ShopwareApi(_cfg(shop, client_secret="wrong"))
    with pytest.raises(ConfigError, match="refused the credentials"):
        api.token()
    api.close()


def test_the_search_pages_through_every_order_once(shop):
    pages = _all(shop)
    visible = {o["orderNumber"] for o in shop.visible_orders()}
    got = [o.external_id for p in pages for o in p.orders]
    assert len(pages) > 2 and len(visible) > 50
    assert sorted(got) == sorted(visible) and not any(p.broken for p in pages)
    assert [p.next_token is None for p in pages] == [False] * (len(pages) - 1) + [True]
    assert pages[-1].window_end is not None and shop.stats()["calls"]["searchOrder"] == len(pages)


def test_each_payment_method_is_converted_with_its_release_rule(shop):
    orders = [o for p in _all(shop) for o in p.orders]
    raw = {o["orderNumber"]: o for o in shop.visible_orders()}
    seen = Counter((o.payment_method, o.payment_state, o.status) for o in orders if o.status != "CANCELLED")
    assert {m for m, _, _ in seen} == {"prepayment", "invoice", "paypal", "card", "cod"}
    for method, state, status in seen:
        if method in ("prepayment", "invoice", "cod") or state == "paid":
            assert status == "UNSHIPPED", (method, state)  # a prepayment waits in caturactl's payment queue
        else:
            assert status == "PENDING", (method, state)  # PayPal or card not completed
    for o in orders:
        r = raw[o.external_id]
        assert o.total.amount == Decimal(str(r["price"]["totalPrice"])) == sum(ln.total.amount for ln in o.lines)
        assert o.lines[0].shipping is None or o.lines[0].shipping.amount == Decimal(str(r["shippingTotal"]))
        assert o.address.country == r["deliveries"][0]["shippingOrderAddress"]["country"]["iso"]
        assert o.buyer_email == r["orderCustomer"]["email"] and o.channel == "shop"


def test_the_state_machine_states_come_only_when_asked_for(shop):
    api = ShopwareApi(shop.cfg)
    bare = api.call("POST", "/api/search/order", {"limit": 1, "associations": {"deliveries": {}}}, "search")
    asked = api.call("POST", "/api/search/order", {"limit": 1, "associations": {
        "deliveries": {"associations": {"stateMachineState": {}}}}}, "search")
    api.close()
    assert bare["data"][0]["deliveries"][0]["stateMachineState"] is None
    assert asked["data"][0]["deliveries"][0]["stateMachineState"]["technicalName"] == "open"


def test_a_run_resumes_from_the_page_token(shop):
    everything = _all(shop)
    resumed = _all(shop, token=everything[0].next_token)
    assert [o.external_id for p in resumed for o in p.orders] == \
        [o.external_id for p in everything[1:] for o in p.orders]


def test_a_429_storm_is_ridden_out_with_retry_after(shop):
    shop.add_fault(Fault("searchOrder", "throttle", count=3, retry_after=0.01))
    shop.add_fault(Fault("searchOrder", "status", count=1, status=503))
    mp = ShopwareOrders(shop.cfg, ShopwareApi(shop.cfg))
    pages = list(mp.changed_orders(OrderQuery(shop.now() - timedelta(days=3), ("all",))))
    stats = mp.call_stats()
    mp.close()
    assert sum(len(p.orders) for p in pages) == len(shop.visible_orders())
    assert stats.throttled == 3 and stats.retries == 4


def test_a_429_storm_longer_than_the_retries_stops_with_throttled(shop):
    shop.add_fault(Fault("searchOrder", "throttle", count=10, retry_after=0.01))
    with pytest.raises(ThrottledError, match="failed 5 times"):
        _all(shop)


def test_import_orders_from_the_shop_through_the_cli(shop_ws, shop):
    out = json.loads(shop_ws.ok("import", "orders", "--channel", "shop", "--json"))
    visible = shop.visible_orders()
    assert out["new"] == len(visible) and out["failed"] == 0 and out["pages"] > 2
    app = shop_ws.app()
    with app.session() as s:
        orders = s.scalars(select(Order).where(Order.channel == "shop")).all()
        assert {o.external_id for o in orders} == {o["orderNumber"] for o in visible}
        by_state = Counter((o.payment_method, o.state) for o in orders)
        assert by_state[("prepayment", "pending")] == 0 and by_state[("invoice", "pending")] == 0
        assert all(o.payment_state for o in orders)
    again = json.loads(shop_ws.ok("import", "orders", "--channel", "shop", "--json"))
    assert again["new"] == 0 and again["updated"] == 0  # the watermark: nothing read twice as news
    shown = json.loads(shop_ws.ok("orders", "show", visible[0]["orderNumber"], "--json"))
    assert shown["shop_status"] and "amazon_status" not in shown  # the status is named by its channel


def test_a_prepaid_order_is_released_at_once_and_waits_in_the_payment_queue(shop_ws, shop):
    shop_ws.ok("import", "orders", "--channel", "shop")
    app = shop_ws.app()
    with app.session() as s:
        prepaid = s.scalars(select(Order).where(Order.payment_method == "prepayment")).all()
        assert prepaid and all(o.state in ("released", "on_hold", "cancelled") for o in prepaid)
        # Routing holds them back until the money is matched (tests/integration/test_payment_queue.py).
        owed = {p.order.external_id: p.status for p in s.scalars(select(Payment).where(Payment.method == "prepayment"))}
        assert {o.external_id for o in prepaid if o.state != "cancelled"} == set(owed)
        assert set(owed.values()) == {"expected"}


def test_a_malformed_order_becomes_a_ticket_and_the_rest_import(shop_ws, shop):
    victim = shop.visible_orders()[5]
    shop.shop.break_order(victim["id"], "lineItems.0.quantity", "zwei")
    r = shop_ws.run("import", "orders", "--channel", "shop", "--json")
    out = json.loads(r.out)
    assert out["failed"] == 1 and out["new"] == len(shop.visible_orders()) - 1
    app = shop_ws.app()
    with app.session() as s:
        ticket = s.scalar(select(Ticket).where(Ticket.external_ref == victim["orderNumber"]))
        assert ticket.kind == "import_failed" and "lineItems[0].quantity" in ticket.text


def test_a_disabled_shop_is_skipped_by_import_orders_and_refused_by_name(workspace, standin):
    ws = workspace
    ws.load_catalogue()
    assert channels.get("shop").enabled(ws.app().cfg) is False
    out = ws.ok("import", "orders", "--json")
    assert json.loads(out)["new"] > 0  # Amazon alone: one outcome, no error for the shop
    r = ws.run("import", "orders", "--channel", "shop")
    assert r.code == 78 and "shop is disabled" in r.err


def test_a_parcel_reaches_the_shop_as_tracking_code_and_ship_transition(shop_ws, shop):
    shop_ws.ok("import", "orders", "--channel", "shop")
    app = shop_ws.app()
    channel = channels.get("shop")
    with app.session() as s:
        order = s.scalar(select(Order).where(Order.channel == "shop", Order._state == "released").order_by(Order.id))
        factories.shipped(s, order, tracking="00340434161094012345")
        note = s.scalar(select(DeliveryNote).where(DeliveryNote.order_id == order.id))
        item = channel.shipment_confirmation(app.cfg, order, note, note.parcels[0])
        enqueue(s, item.key, item.kind, item.target, item.payload)
        s.commit()
        number = order.external_id
    with app.session() as s:
        sender = app.sender(s)
        try:
            result = sender.run(kinds={CONFIRM_SHIPMENT})
        finally:
            sender.close()
        s.commit()
    assert result.sent == 1, result.errors
    moves = shop.transitions("order_delivery")
    assert [(m["order_number"], m["transition"], m["to"]) for m in moves] == [(number, "ship", "shipped")]
    assert moves[0]["tracking_codes"] == ["00340434161094012345"]  # the code was there before the move
    # Asked again (a resend after a crash): the shop has it all, nothing is sent twice.
    with app.session() as s:
        handlers = channel.outbox(app, s)
        try:
            said = handlers.confirm(SimpleNamespace(payload=item.payload),
                                    SimpleNamespace(in_doubt=datetime.now(UTC), sending=lambda: None))
        finally:
            handlers.close()
    assert "got through" in said
    assert len(shop.transitions("order_delivery")) == 1 and len(shop.tracking_patches()) == 1


def test_the_shop_secret_comes_from_the_secrets_file_beside_amazons(tmp_path):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[amazon]\nclient_secret = "a"\nrefresh_token = "r"\n[shop]\nclient_secret = "s"\n')
    os.chmod(secrets, 0o600)
    (tmp_path / "caturactl.toml").write_text('[amazon]\nsecrets_file = "secrets.toml"\n'
                                             '[shop]\nenabled = true\nsecrets_file = "secrets.toml"\n')
    cfg = load(tmp_path / "caturactl.toml", environ={})
    assert cfg.shop.client_secret.get_secret_value() == "s" and cfg.amazon.client_secret.get_secret_value() == "a"
    (tmp_path / "caturactl.toml").write_text('[shop]\nclient_secret = "in clear"\n')
    with pytest.raises(ConfigError, match="secrets do not belong in caturactl.toml"):
        load(tmp_path / "caturactl.toml", environ={})


def test_a_delivery_the_shop_marks_returned_becomes_a_ticket_for_our_own_parcel(shop_ws, shop):
    shop_ws.ok("import", "orders", "--channel", "shop")
    app = shop_ws.app()
    with app.session() as s:
        order = s.scalar(select(Order).where(Order.channel == "shop", Order._state == "released").order_by(Order.id))
        factories.shipped(s, order, tracking="00340434161094012346")
        s.commit()
        number = order.external_id
    o = next(o for o in shop.shop._by_id.values() if o.data["orderNumber"] == number)
    delivery = o.data["deliveries"][0]["id"]
    shop.shop.transition("order_delivery", delivery, "ship")
    shop.advance(timedelta(minutes=5))
    shop.shop.transition("order_delivery", delivery, "retour")  # the buyer sent it back; the shop says so
    shop.advance(timedelta(minutes=5))
    out = json.loads(shop_ws.ok("import", "orders", "--channel", "shop", "--json"))
    assert out["updated"] >= 1 and out["returns"] == 0  # nothing of it was a dropshipper's
    with app.session() as s:
        [t] = s.scalars(select(Ticket).where(Ticket.kind == "returned")).all()
        assert t.order.external_id == number and "come back to us" in t.text and "invoices credit" in t.text
    shop.advance(timedelta(minutes=5))
    shop_ws.ok("import", "orders", "--channel", "shop")  # the same news again: no second ticket
    with app.session() as s:
        assert len(s.scalars(select(Ticket).where(Ticket.kind == "returned")).all()) == 1
