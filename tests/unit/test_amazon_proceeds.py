"""What the buyer paid, read from Orders 2026-01-01 proceeds breakdowns (connectors/amazon/orders.py)
and from the stand-in's orders, whose money must add up the same way."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.amazon.orders import Malformed, line_money, parse_order
from standins.amazon.marketplace import ALL_INCLUDED, Line, OrderState, _Generator, render


def m(amount: str) -> dict:
    return {"amount": amount, "currencyCode": "EUR"}


def test_net_breakdowns_with_detailed_tax_give_each_charge_gross():
    # 29.98 goods + 3.99 shipping + 2.99 gift wrap - 3.00 off the goods, all at 19 %
    proceeds = {"proceedsTotal": m("33.96"), "breakdowns": [
        {"type": "ITEM", "subtotal": m("25.19")},
        {"type": "SHIPPING", "subtotal": m("3.35")},
        {"type": "GIFT_WRAP", "subtotal": m("2.51")},
        {"type": "DISCOUNT", "subtotal": m("-2.52"), "detailedBreakdowns": [{"subtype": "ITEM", "value": m("-2.52")}]},
        {"type": "TAX", "subtotal": m("5.43"), "detailedBreakdowns": [
            {"subtype": "ITEM", "value": m("4.79")}, {"subtype": "SHIPPING", "value": m("0.64")},
            {"subtype": "GIFT_WRAP", "value": m("0.48")}, {"subtype": "DISCOUNT", "value": m("-0.48")}]}]}
    money = line_money(proceeds, "p")
    assert money.total == D("33.96")
    assert money.charges == {"ITEM": D("29.98"), "SHIPPING": D("3.99"), "GIFT_WRAP": D("2.99")}
    assert money.discounts == {"ITEM": D("3.00"), "SHIPPING": D("0")}
    proceeds["proceedsTotal"] = m("30.48")
    with pytest.raises(Malformed, match="do not add up to proceedsTotal 30.48"):
        line_money(proceeds, "orderItems[0].proceeds")


def test_gross_breakdowns_where_tax_only_says_how_much_vat_is_in_them():
    # Free shipping: ITEM 19.99 + SHIPPING 3.99 - 3.99 = 19.99 paid; the 3.19 TAX is inside.
    money = line_money({"proceedsTotal": m("19.99"), "breakdowns": [
        {"type": "ITEM", "subtotal": m("19.99")}, {"type": "SHIPPING", "subtotal": m("3.99")},
        {"type": "DISCOUNT", "subtotal": m("3.99"), "detailedBreakdowns": [{"subtype": "SHIPPING", "value": m("3.35")}]},
        {"type": "TAX", "subtotal": m("3.19")}]}, "p")
    assert money.charges == {"ITEM": D("19.99"), "SHIPPING": D("3.99")}
    assert money.discounts == {"ITEM": D(0), "SHIPPING": D("3.99")}


def test_tax_without_details_is_shared_by_the_lines_one_ratio():
    money = line_money({"proceedsTotal": m("23.98"), "breakdowns": [
        {"type": "ITEM", "subtotal": m("16.80")}, {"type": "SHIPPING", "subtotal": m("3.35")},
        {"type": "TAX", "subtotal": m("3.83")}]}, "p")
    assert money.charges == {"ITEM": D("19.99"), "SHIPPING": D("3.99")}
    assert sum(money.charges.values()) == D("23.98")


@pytest.mark.parametrize("breakdowns, message", [
    ([{"type": "ITEM", "subtotal": m("-1.00")}], "negative ITEM charge"),
    ([{"type": "BONUS", "subtotal": m("1.00")}], "unknown proceeds type 'BONUS'"),
    ([{"type": "ITEM", "subtotal": {"amount": "1.00", "currencyCode": "USD"}}], "USD, the line's total is in EUR"),
    ([{"type": "ITEM", "subtotal": m("1.00")},
      {"type": "DISCOUNT", "subtotal": m("-2.00")}, {"type": "TAX", "subtotal": m("0")}], "do not add up"),
])
def test_breakdowns_that_cannot_be_trusted_are_refused_naming_the_field(breakdowns, message):
    with pytest.raises(Malformed, match=message):
        line_money({"proceedsTotal": m("1.00"), "breakdowns": breakdowns}, "orderItems[0].proceeds")


def test_a_discount_larger_than_its_charge_is_refused():
    with pytest.raises(Malformed, match="a discount larger than what it is taken off"):
        line_money({"proceedsTotal": m("0.00"), "breakdowns": [
            {"type": "ITEM", "subtotal": m("1.00")}, {"type": "SHIPPING", "subtotal": m("1.00")},
            {"type": "DISCOUNT", "subtotal": m("-2.00"),
             "detailedBreakdowns": [{"subtype": "ITEM", "value": m("-2.00")}]}]}, "p")


money_st = st.decimals(min_value=D("0.00"), max_value=D("300"), places=2)


@settings(max_examples=300)
@given(unit=st.decimals(min_value=D("0.01"), max_value=D("300"), places=2), qty=st.integers(1, 5),
       ship=money_st, wrap=st.sampled_from([D(0), D("2.99")]), cod=st.sampled_from([D(0), D("4.00")]),
       off=st.floats(0, 1), ship_off=st.booleans(), rate=st.sampled_from([D("0.19"), D("0.07"), D("0.22"), D(0)]))
def test_the_standins_proceeds_read_back_to_the_charges_it_made(unit, qty, ship, wrap, cod, off, ship_off, rate):
    line = Line(item_id="1", sku="S", title="T", asin="A", unit_price=unit, qty=qty, rate=rate, ship_gross=ship,
                gift_wrap_gross=wrap, cod_gross=cod,
                item_discount=(unit * qty * D(str(round(off, 2)))).quantize(D("0.01")),
                ship_discount=ship if ship_off else D(0))
    money = line_money(line.proceeds(), "p")
    assert money.total == line.total
    assert money.charges["ITEM"] == line.item_gross
    assert money.charges.get("SHIPPING", D(0)) == line.ship_gross
    assert money.charges.get("GIFT_WRAP", D(0)) == wrap and money.charges.get("COD_FEE", D(0)) == cod
    # the discount is exact in sum; which charge it came off may move by a cent
    assert sum(money.discounts.values()) == line.item_discount + line.ship_discount
    assert abs(money.discounts["SHIPPING"] - line.ship_discount) <= D("0.01")


def test_the_standin_makes_promotion_gift_wrap_and_cod_orders_that_parse_to_what_was_paid():
    orders = _Generator(seed=7, day=dt.date(2026, 11, 24), n=2000).generate()
    tags = set().union(*(o.tags for o in orders))
    assert {"promotion", "gift_wrap", "cod"} <= tags
    seen = set()
    for o in orders:
        if not {"promotion", "gift_wrap", "cod"} & o.tags:
            continue
        parsed = parse_order(render(OrderState(o, "UNSHIPPED", o.created), set(ALL_INCLUDED)))
        for ml, ln in zip(parsed.lines, o.lines):
            assert ml.total.amount == ln.total
            paid = (ml.total.amount - sum(x.amount for x in (ml.shipping, ml.gift_wrap, ml.cod_fee) if x)
                    + sum(x.amount for x in (ml.item_discount, ml.shipping_discount) if x))
            assert paid == ln.item_gross  # the goods before their discount, to the cent
            if ln.item_discount or ln.ship_discount:
                seen.add("discount")
                assert ml.promotion_ids
            if ln.gift_wrap_gross:
                seen.add("gift_wrap")
                assert ml.gift_wrap.amount == D("2.99")
            if ln.cod_gross:
                seen.add("cod")
                assert ml.cod_fee.amount == D("4.00")
        assert parsed.total.amount == sum(ln.total for ln in o.lines)
    assert seen == {"discount", "gift_wrap", "cod"}


@settings(max_examples=200)
@given(unit=st.decimals(min_value=D("0.01"), max_value=D("300"), places=2), qty=st.integers(1, 6),
       ship=st.sampled_from([D(0), D("3.99"), D("4.99")]), wrap=st.sampled_from([D(0), D("2.99")]),
       cod=st.sampled_from([D(0), D("4.00")]), off=st.sampled_from([D(0), D("0.10"), D("0.5")]),
       ship_off=st.booleans(), splits=st.lists(st.integers(1, 3), min_size=1, max_size=4))
def test_the_standins_settlement_settles_exactly_what_the_line_says(unit, qty, ship, wrap, cod, off, ship_off, splits):
    from standins.amazon.settlement import UnitMovement, _movement_rows
    line = Line(item_id="1", sku="S", title="T", asin="A", unit_price=unit, qty=qty, rate=D("0.19"),
                ship_gross=ship, gift_wrap_gross=wrap, cod_gross=cod,
                item_discount=(unit * qty * off).quantize(D("0.01")), ship_discount=ship if ship_off else D(0),
                promotion_id="PLM-1" if off or ship_off else None)
    buyer_money = D(0)
    shipped = 0
    cuts = sorted({min(qty, sum(splits[:i + 1])) for i in range(len(splits))} | {qty})
    for after in cuts:  # the line leaves in parcels; each movement is settled on its own
        m = UnitMovement(order_id="O", order_item_code="1", sku="S", marketplace_name="Amazon.de", afn=False,
                         at=dt.datetime(2026, 11, 24, tzinfo=dt.timezone.utc), before=shipped, after=after,
                         ordered=qty, item_net=line.item_net, item_tax=line.item_gross - line.item_net,
                         ship_net=line.ship_net, ship_tax=line.ship_gross - line.ship_net,
                         gift_wrap_net=line.gift_wrap_net, gift_wrap_tax=line.gift_wrap_gross - line.gift_wrap_net,
                         cod_net=line.cod_net, cod_tax=line.cod_gross - line.cod_net,
                         item_discount=line.item_discount, ship_discount=line.ship_discount,
                         promotion_id=line.promotion_id)
        buyer_money += sum(r.amount for r in _movement_rows(m, "E") if r.amount_type in ("ItemPrice", "Promotion"))
        shipped = after
    assert buyer_money == line.total  # what the buyer paid, settled to the cent
