"""Routing: released orders -> delivery notes per location, stock reserved, carrier stored."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from caturactl.fulfilment.models import DeliveryLine, DeliveryNote, Stock
from caturactl.orders.models import Order
from caturactl.orders.tickets import Ticket
from caturactl.fulfilment.routing import LineNeed, split
from tests import fulfilment


def test_one_location_with_everything_wins_over_a_split():
    needs = [LineNeed(1, "A", 1), LineNeed(2, "B", 2)]
    stock = {"WH": {"A": 5}, "FUL": {"A": 1, "B": 2}, "X": {"B": 9}}
    assert split(needs, stock, ["WH", "FUL", "X"]) == {"FUL": needs}


def test_the_first_location_by_priority_wins_when_several_have_everything():
    needs = [LineNeed(1, "A", 1)]
    assert split(needs, {"WH": {"A": 1}, "FUL": {"A": 9}}, ["WH", "FUL"]) == {"WH": needs}


def test_otherwise_the_fewest_locations_and_none_when_a_line_fits_nowhere():
    a, b, c = LineNeed(1, "A", 1), LineNeed(2, "B", 1), LineNeed(3, "C", 1)
    stock = {"P1": {"A": 1}, "P2": {"B": 1, "C": 1}, "P3": {"C": 1}}
    assert split([a, b, c], stock, ["P1", "P2", "P3"]) == {"P2": [b, c], "P1": [a]}
    assert split([a, LineNeed(4, "D", 1)], stock, ["P1", "P2", "P3"]) is None


def test_two_lines_of_one_sku_must_fit_together():
    needs = [LineNeed(1, "A", 2), LineNeed(2, "A", 2)]
    plan = split(needs, {"P1": {"A": 3}, "P2": {"A": 2}}, ["P1", "P2"])
    assert plan == {"P1": [needs[0]], "P2": [needs[1]]}


@settings(max_examples=300, deadline=None)
@given(needs=st.lists(st.tuples(st.sampled_from("ABCDE"), st.integers(1, 3)), min_size=1, max_size=6),
       stock=st.dictionaries(st.sampled_from(["L1", "L2", "L3"]),
                             st.dictionaries(st.sampled_from("ABCDE"), st.integers(0, 6)), min_size=1))
def test_a_plan_uses_each_line_once_and_never_more_than_a_location_has(needs, stock):
    lines = [LineNeed(i, sku, q) for i, (sku, q) in enumerate(needs)]
    plan = split(lines, stock, sorted(stock))
    if plan is None:
        return
    assert sorted(n.key for part in plan.values() for n in part) == list(range(len(lines)))
    for loc, part in plan.items():
        for sku in {n.sku for n in part}:
            assert sum(n.quantity for n in part if n.sku == sku) <= stock[loc].get(sku, 0)


def _fulfilment_workspace(workspace, tmp_path):
    workspace.write_config(extra=fulfilment.carrier_section() + fulfilment.locations()
                           + fulfilment.folder_transport("wh", tmp_path / "wh")
                           + fulfilment.folder_transport("ful", tmp_path / "ful"))
    workspace.load_catalogue()
    workspace.ok("import", "amazon")
    return workspace


def test_route_splits_reserves_and_explains(workspace, tmp_path):
    ws = _fulfilment_workspace(workspace, tmp_path)
    skus = [p["sku"] for p in ws.standin.catalogue()]
    # The warehouse has the first half of the range, the fulfiller everything but little of it.
    ws.ok("stock", "import", "WH", str(fulfilment.stock_csv(tmp_path / "wh.csv", {s: 40 for s in skus[::2]})))
    ws.ok("stock", "import", "FUL", str(fulfilment.stock_csv(tmp_path / "ful.csv", {s: 6 for s in skus})))
    app = ws.app()
    with app.session() as s:
        released = s.scalar(select(func.count()).where(Order._state == "released"))
    assert released > 50
    dry = json.loads(ws.ok("route", "--dry-run", "--json"))
    with app.session() as s:
        assert s.scalar(select(func.count()).select_from(DeliveryNote)) == 0  # a dry run stores nothing
    out = json.loads(ws.ok("route", "--json"))
    assert {k: out[k] for k in ("routed", "deliveries")} == {k: dry[k] for k in ("routed", "deliveries")}
    assert out["routed"] + out["waiting_for_stock"] + out["held"] == released
    assert out["waiting_for_stock"] > 0  # the fulfiller's 6 pieces run out
    with app.session() as s:
        # Every line of a routed order is on exactly one delivery note.
        for o in s.scalars(select(Order).where(Order._state == "routed")):
            on_notes = s.scalars(select(DeliveryLine.order_line_id).join(DeliveryNote)
                                 .where(DeliveryNote.order_id == o.id)).all()
            assert sorted(on_notes) == sorted(ln.id for ln in o.lines)
        # Reservations are exactly the pieces on created notes, and never exceed what is on hand.
        reserved = dict(s.execute(select(DeliveryNote.location + "/" + DeliveryLine.sku, func.sum(DeliveryLine.quantity))
                                  .join(DeliveryNote).group_by(DeliveryNote.location, DeliveryLine.sku)).all())
        for st_ in s.scalars(select(Stock)):
            assert st_.reserved == reserved.get(f"{st_.location}/{st_.sku}", 0)
            assert 0 <= st_.reserved <= st_.on_hand
        note = s.scalars(select(DeliveryNote).order_by(DeliveryNote.id)).first()
        assert note.state == "created" and note.carrier and note.choice["chosen"] == note.carrier_key
        number, order_id = note.number, note.order.external_id
        held = s.scalar(select(func.count()).select_from(Ticket).where(Ticket.kind == "no_carrier"))
        assert held == out["held"]
    shown = json.loads(ws.ok("carriers", "choose", order_id, "--json"))
    assert shown["parts"][0]["delivery"] == number and shown["parts"][0]["choice"]["ranking"]
    explained = ws.ok("carriers", "choose", order_id, "--explain")
    assert "Not eligible" in explained and "not offered at location" in explained
    listed = json.loads(ws.ok("deliveries", "list", "--json"))
    assert len(listed) == out["deliveries"] and set(listed[0]) == {
        "delivery", "order", "location", "state", "carrier", "service", "parcels", "tracking", "file",
        "exported", "deadline"}
    # Routing again finds nothing new to do: routed orders are not routed twice.
    again = json.loads(ws.ok("route", "--json"))
    assert again["routed"] == 0 and again["orders"] == out["waiting_for_stock"]


def test_stock_file_with_a_bad_line_changes_nothing(workspace, tmp_path):
    ws = _fulfilment_workspace(workspace, tmp_path)
    f = tmp_path / "bad.csv"
    f.write_text("sku;on_hand\nA;3\nB;drei\n", encoding="utf-8")
    r = ws.run("stock", "import", "WH", str(f))
    assert r.code == 65 and f"{f}:3:on_hand" in r.err
    assert json.loads(ws.ok("stock", "list", "--json")) == []
    r = ws.run("stock", "import", "NOWHERE", str(fulfilment.stock_csv(tmp_path / "ok.csv", {"A": 1})))
    assert r.code == 66 and "no location 'NOWHERE'" in r.err
