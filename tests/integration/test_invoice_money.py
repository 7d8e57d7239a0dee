"""Invoices say what the buyer paid: discounts, ancillary charges at the goods' rate, no negative
line, FBA orders invoiced (or not, under Amazon's VAT Calculation Service)."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from caturactl.billing import invoicing
from caturactl.core import tax
from caturactl.config import Config
from caturactl.core.errors import InputError
from caturactl.billing.models import Invoice
from caturactl.fulfilment.models import DeliveryNote
from caturactl.catalogue.models import Product
from caturactl.orders.models import Order, OrderLine
from tests import fulfilment

T = datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)
CFG = Config.model_validate({"company": {"name": "Test Handel GmbH", "street": "Lagerweg 7", "postal_code": "50667",
                                         "city": "Köln", "vat_id": "DE123456789"}, "tax": {"oss": True}})


def _order(lines: list[dict], country: str = "DE", vat_id: str = "") -> Order:
    order = Order(id=1, channel="amazon", external_id="302-0000000-0000001", marketplace_name="Amazon.de",
                  created_at=T, remote_updated_at=T, currency="EUR", buyer_name="Anna Beispiel", buyer_email="",
                  buyer_tax_id=vat_id, purchase_order="", ship_name="Anna Beispiel", ship_company="",
                  ship_line1="Hauptstr. 5", ship_line2="", ship_line3="", ship_postal_code="10115",
                  ship_city="Berlin", ship_state="", ship_country=country, ship_phone="", ship_address_type="")
    for i, ln in enumerate(lines, 1):
        goods = ln["unit"] * ln["qty"]
        charges = ln.get("ship", D(0)) + ln.get("wrap", D(0)) + ln.get("cod", D(0))
        order.lines.append(OrderLine(
            id=i, position=i, external_id=str(i), sku=ln["sku"], title=f"Artikel {i}", quantity=ln["qty"],
            quantity_shipped=ln["qty"], unit_price=ln["unit"],
            total_amount=goods + charges - ln.get("off", D(0)) - ln.get("ship_off", D(0)),
            shipping_amount=ln.get("ship", D(0)), gift_wrap_amount=ln.get("wrap", D(0)),
            cod_fee_amount=ln.get("cod", D(0)), item_discount=ln.get("off", D(0)),
            shipping_discount=ln.get("ship_off", D(0)), promotion_ids=ln.get("promo", "")))
    return order


PRODUCTS = {"BOOK": Product(sku="BOOK", title="Buch", tax_class="reduced"),
            "TOOL": Product(sku="TOOL", title="Werkzeug", tax_class="standard")}


def _build(order: Order, cfg: Config = CFG):
    return invoicing.build(order, [], cfg, PRODUCTS, issue_date=date(2026, 11, 25))


def test_a_promotion_is_a_discount_on_its_line_and_the_invoice_is_what_was_paid():
    doc = _build(_order([{"sku": "TOOL", "unit": D("24.99"), "qty": 2, "off": D("5.00"), "promo": "PLM-1-GARTEN",
                          "ship": D("3.99")}]))
    goods, ship = doc.items
    assert doc.gross_total == D("48.97")  # 49.98 - 5.00 + 3.99: what Amazon collected
    assert goods.gross == D("44.98") and goods.allowance_gross == D("5.00") and goods.allowance == D("4.20")
    assert goods.allowance_reason == "Rabatt PLM-1-GARTEN"
    assert goods.net == D("37.80") and goods.unit_net == D("21.0000")  # (37.80 + 4.20) / 2
    assert ship.description == "Versandkosten" and ship.gross == D("3.99") and ship.tax_rate == D(19)


def test_shipping_of_a_book_takes_7_percent_and_a_mixed_cart_splits_it_by_the_goods_net():
    doc = _build(_order([{"sku": "BOOK", "unit": D("12.00"), "qty": 1, "ship": D("3.99")}]))
    assert [(i.description, i.tax_rate, i.gross) for i in doc.items] == [
        ("Artikel 1", D(7), D("12.00")), ("Versandkosten", D(7), D("3.99"))]
    doc = _build(_order([{"sku": "BOOK", "unit": D("10.70"), "qty": 1, "ship": D("3.99"), "wrap": D("2.99")},
                         {"sku": "TOOL", "unit": D("23.80"), "qty": 1}]))
    # goods net 10.00 at 7 % and 20.00 at 19 %: one third and two thirds of each charge
    rows = {(i.description, i.tax_rate): i.gross for i in doc.items[2:]}
    assert rows == {("Versandkosten (19 %)", D(19)): D("2.66"), ("Versandkosten (7 %)", D(7)): D("1.33"),
                    ("Geschenkverpackung (19 %)", D(19)): D("1.99"), ("Geschenkverpackung (7 %)", D(7)): D("1.00")}
    assert doc.gross_total == D("10.70") + D("23.80") + D("3.99") + D("2.99")


def test_free_shipping_shows_the_shipping_and_its_discount_at_zero_net():
    doc = _build(_order([{"sku": "TOOL", "unit": D("19.99"), "qty": 1, "ship": D("3.99"), "ship_off": D("3.99"),
                          "promo": "PLM-2-HERBST"}]))
    ship = doc.items[1]
    assert ship.gross == D(0) and ship.net == D(0) and ship.allowance_gross == D("3.99") and ship.allowance == D("3.35")
    assert doc.gross_total == D("19.99")


def test_oss_gives_the_destinations_rate_to_goods_and_shipping():
    doc = _build(_order([{"sku": "TOOL", "unit": D("30.00"), "qty": 1, "ship": D("4.99")}], country="FR"))
    assert {i.tax_rate for i in doc.items} == {D(20)} and doc.tax_country == "FR"
    doc = _build(_order([{"sku": "TOOL", "unit": D("30.00"), "qty": 1, "ship": D("4.99")}], country="IT"))
    assert {i.tax_rate for i in doc.items} == {D(22)}


def test_shipping_alone_is_never_invoiced():
    order = _order([{"sku": "TOOL", "unit": D("9.99"), "qty": 1, "ship": D("3.99")}])
    order.lines[0].quantity_shipped = 0
    with pytest.raises(InputError, match="nothing shipped to invoice"):
        _build(order)


def test_a_cod_fee_is_its_own_line_at_the_goods_rate():
    doc = _build(_order([{"sku": "BOOK", "unit": D("9.99"), "qty": 1, "cod": D("4.00")}]))
    assert [(i.description, i.tax_rate, i.gross) for i in doc.items][1] == ("Nachnahmegebühr", D(7), D("4.00"))


carts = st.lists(st.fixed_dictionaries({
    "sku": st.sampled_from(["BOOK", "TOOL"]),
    "unit": st.decimals(min_value=D("0.01"), max_value=D("400"), places=2),
    "qty": st.integers(1, 40),
    "off_pct": st.sampled_from([0, 0, 5, 10, 33, 100]),
    "ship": st.sampled_from([D(0), D(0), D("3.99"), D("4.99"), D("0.10")]),
    "ship_off": st.booleans(),
    "wrap": st.sampled_from([D(0), D("2.99")]),
    "cod": st.sampled_from([D(0), D("4.00")])}), min_size=1, max_size=5)


@settings(max_examples=400, deadline=None)
@given(cart=carts, country=st.sampled_from(["DE", "FR", "IT", "ES", "AT", "CH"]),
       vat_id=st.sampled_from(["", "", "FR12345678901"]))
def test_any_cart_invoice_gross_is_what_was_paid_no_line_negative_and_en16931_sums_hold(cart, country, vat_id):
    lines = []
    for c in cart:
        goods = c["unit"] * c["qty"]
        lines.append({**c, "off": tax.cents(goods * c["off_pct"] / 100),
                      "ship_off": c["ship"] if c["ship_off"] else D(0)})
    order = _order(lines, country=country, vat_id=vat_id if country == "FR" else "")
    doc = _build(order)
    paid = sum((ln.total_amount for ln in order.lines), D(0))
    assert doc.gross_total == paid  # what the buyer paid, to the cent
    for item in doc.items:
        assert item.net >= 0 and item.gross - item.net >= 0 and item.allowance >= 0  # no negative net or tax
        assert abs(item.unit_net * item.quantity - item.allowance - item.net) <= item.quantity * D("0.00005") + D("0.005")
    for t in doc.taxes:  # BR-CO-xx: lines add up to their group, groups to the document
        members = [i for i in doc.items if i.tax_rate == t.rate]
        assert sum(i.net for i in members) == t.net and sum(i.gross for i in members) == t.net + t.tax
        assert abs(t.tax - tax.cents(t.net * t.rate / 100)) <= D("0.01")  # BR-S-09 within a cent
    assert doc.net_total == sum(t.net for t in doc.taxes) and doc.tax_total == sum(t.tax for t in doc.taxes)
    assert doc.net_total + doc.tax_total == doc.gross_total and doc.due == 0 and doc.prepaid == doc.gross_total
    # ancillary charges never bring a rate the goods do not have
    goods_rates = {i.tax_rate for i in doc.items if i.sku}
    assert {i.tax_rate for i in doc.items if not i.sku} <= goods_rates | ({D(0)} if not goods_rates else set())


def test_fba_orders_are_invoiced_once_amazon_ships_them_and_not_at_all_under_vcs(workspace, tmp_path):
    ws = workspace
    ws.write_config(company=fulfilment.COMPANY)
    ws.load_catalogue()
    ws.ok("import", "amazon")
    app = ws.app()
    with app.session() as s:
        fba = set(s.scalars(select(Order.external_id).where(Order.fulfilled_by == "AMAZON",
                                                            Order._state == "shipped")))
    assert fba, "the stand-in's day has FBA orders Amazon shipped"
    ws.write_config(company=fulfilment.COMPANY, amazon_extra="vcs = true")
    assert json.loads(ws.ok("invoices", "create", "--json"))["created"] == 0  # Amazon invoices them
    ws.write_config(company=fulfilment.COMPANY)
    with app.session() as s:  # one Amazon has not shipped yet: imported as ours-to-forget, not invoiceable
        waiting = s.scalars(select(Order).where(Order.external_id.in_(fba)).order_by(Order.id)).first()
        waiting.remote_status = "UNSHIPPED"
        for ln in waiting.lines:
            ln.quantity_shipped = 0
        waiting, _ = waiting.external_id, s.commit()
    out = json.loads(ws.ok("invoices", "create", "--json"))
    with app.session() as s:
        invoiced = dict(s.execute(select(Order.external_id, Invoice.gross_total).join(Invoice.order)).all())
        assert set(invoiced) == fba - {waiting} and out["created"] == len(fba) - 1 and not out["failed"]
        for order in s.scalars(select(Order).where(Order.external_id.in_(fba - {waiting}))):
            assert invoiced[order.external_id] == order.total_amount  # what Amazon collected
        assert s.scalar(select(func.count()).select_from(DeliveryNote)) == 0  # never routed, no stock of ours
    assert json.loads(ws.ok("invoices", "create", "--json"))["created"] == 0
