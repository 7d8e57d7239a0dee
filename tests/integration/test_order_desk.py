"""At the terminal (caturactl/orders/desk.py): orders taken by phone, notes, one action on many
orders, an order placed again; each through the command line, each an event with who and why."""

from __future__ import annotations

import json
from decimal import Decimal

from sqlalchemy import func, select

from caturactl import channels
from caturactl.core.events import Event
from caturactl.fulfilment.models import DeliveryNote, Stock
from caturactl.orders import desk
from caturactl.orders.models import Order, OrderCounter
from caturactl.orders.tickets import Ticket
from caturactl.outbox.models import OutboxMessage
from caturactl.payments.models import Payment
from tests import factories as f


def _setup(ws, *, on_hand: int = 5, price: str = "24.99") -> None:
    """A fixed clock, a product with a price, stock at the warehouse, a known customer."""
    f.fixed_clock()
    with ws.app().session() as s:
        f.product(s, "TOOL-1", price=price)
        f.product(s, "GLUE-2", price="3.50")
        f.stock(s, "WH", "TOOL-1", on_hand)
        f.stock(s, "WH", "GLUE-2", 100)
        f.customer(s, "Eva Muster", email="eva@example.de")
        s.commit()


def _state(ws) -> tuple:
    """Everything an order command could change, to compare before and after."""
    with ws.app().session() as s:
        return (s.scalar(select(func.count()).select_from(Order)), s.scalar(select(func.count()).select_from(Event)),
                s.scalar(select(func.count()).select_from(Payment)),
                s.scalar(select(func.count()).select_from(OrderCounter)),
                tuple(s.execute(select(Order.external_id, Order._state).order_by(Order.id)).all()),
                tuple(s.execute(select(Payment.id, Payment.status, Payment.amount_paid).order_by(Payment.id)).all()),
                tuple(s.execute(select(Stock.location, Stock.sku, Stock.on_hand, Stock.reserved)
                                .order_by(Stock.id)).all()))


def _events(ws, number: str) -> list[dict]:
    return json.loads(ws.ok("orders", "show", number, "--json"))["events"]


def test_an_order_for_a_known_customer_is_priced_released_and_its_payment_expected(bare_workspace):
    ws = bare_workspace
    _setup(ws)
    out = json.loads(ws.ok("orders", "create", "--customer", "eva@example.de", "--line", "TOOL-1:2",
                           "--line", "GLUE-2:1", "--payment", "invoice", "--shipping", "4,90",
                           "--note", "called at 9, wants it before Friday", "--json"))
    assert out["number"] == "TEL-2026-00001" and out["state"] == "released"
    assert out["total"] == "58.38 EUR"  # 2 x 24.99 + 3.50 + 4.90
    assert out["customer"].startswith("Eva Muster (K") and out["payment"] == "invoice"
    with ws.app().session() as s:
        order = s.scalar(select(Order).where(Order.external_id == "TEL-2026-00001"))
        assert order.channel == "phone" and order.customer.name == "Eva Muster"
        assert order.buyer_email == "eva@example.de" and order.ship_line1 == "Hauptstr. 5"
        assert [(ln.sku, ln.quantity, ln.unit_price, ln.total_amount) for ln in order.lines] == [
            ("TOOL-1", 2, Decimal("24.99"), Decimal("54.88")), ("GLUE-2", 1, Decimal("3.50"), Decimal("3.50"))]
        [p] = s.scalars(select(Payment).where(Payment.order_id == order.id)).all()
        assert (p.method, p.status, p.amount_expected, p.reference) == ("invoice", "expected", Decimal("58.38"),
                                                                        "TEL-2026-00001")
    events = _events(ws, "TEL-2026-00001")
    assert [e["to"] for e in events if e["kind"] == "state_changed"] == ["imported", "released", "expected"]
    assert {e["actor"] for e in events} == {"cli:orders create"}
    assert any(e["kind"] == "note" and e["why"] == "called at 9, wants it before Friday" for e in events)
    with ws.app().session() as s:  # the buyer's confirmation waits in the outbox
        assert [m.payload["to"] for m in s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "email"))] == [
            ["eva@example.de"]]
    listed = json.loads(ws.ok("orders", "list", "--json"))
    assert [(r["number"], r["channel"]) for r in listed] == [("TEL-2026-00001", "phone")]


def test_a_new_customer_numbers_in_sequence_and_a_dry_run_gives_its_number_back(bare_workspace):
    ws = bare_workspace
    _setup(ws)
    before = _state(ws)
    new = ["orders", "create", "--name", "Jonas Neu", "--street", "Lindenweg 7", "--zip", "80331", "--city",
           "München", "--email", "Jonas@Example.de", "--line", "GLUE-2:2"]
    dry = ws.ok(*new, "--payment", "prepayment", "--dry-run")
    assert dry.startswith("orders create: DRY RUN") and "TEL-2026-00001" in dry
    assert _state(ws) == before
    first = json.loads(ws.ok(*new, "--payment", "prepayment", "--json"))
    second = json.loads(ws.ok(*new, "--payment", "paid", "--reference", "EC 4711", "--json"))
    assert (first["number"], second["number"]) == ("TEL-2026-00001", "TEL-2026-00002")
    # The second found the customer the first made, by the e-mail.
    assert first["customer"] == second["customer"] and first["match_reason"] == "new customer"
    assert second["match_reason"] == "e-mail jonas@example.de"
    with ws.app().session() as s:
        paid = s.scalar(select(Order).where(Order.external_id == "TEL-2026-00002"))
        assert s.scalars(select(Payment).where(Payment.order_id == paid.id)).all() == []  # paid: none owed
        assert paid.payment_state == "paid"
    assert any(e["kind"] == "payment_received" and "EC 4711" in e["why"] for e in _events(ws, "TEL-2026-00002"))
    r = ws.run(*new, "--payment", "paid")
    assert r.code == 65 and "--reference" in r.err
    r = ws.run("orders", "create", "--name", "Jonas Neu", "--line", "GLUE-2:1", "--payment", "invoice")
    assert r.code == 65 and "--street, --zip, --city" in r.err


def test_the_number_is_claimed_in_the_database_once_per_order(bare_workspace):
    ws = bare_workspace
    f.fixed_clock()
    app = ws.app()
    with app.session() as s:
        numbers = [desk.claim_number(s, 2026) for _ in range(3)]
        s.commit()
    with app.session() as s:
        s.add(OrderCounter(prefix="TEL", year=2027, last=41))
        s.commit()
        numbers += [desk.claim_number(s, 2026), desk.claim_number(s, 2027)]
        s.rollback()  # a dry run: the numbers go back
        numbers += [desk.claim_number(s, 2026)]
        s.commit()
    assert numbers == ["TEL-2026-00001", "TEL-2026-00002", "TEL-2026-00003", "TEL-2026-00004", "TEL-2027-00042",
                       "TEL-2026-00004"]


def test_an_order_the_stock_does_not_cover_is_refused_unless_taken_on_backorder(bare_workspace):
    ws = bare_workspace
    _setup(ws, on_hand=3)
    with ws.app().session() as s:
        f.stock(s, "FUL", "TOOL-1", 2, reserved=1)  # 3 + 1 available over both locations
        s.commit()
    before = _state(ws)
    order = ["orders", "create", "--customer", "eva@example.de", "--line", "TOOL-1:3", "--line", "TOOL-1:2",
             "--payment", "invoice"]
    r = ws.run(*order)
    assert r.code == 70 and "not enough stock: TOOL-1: 5 wanted, 4 available" in r.err
    r = ws.run("orders", "create", "--customer", "eva@example.de", "--line", "NOPE-9:1", "--payment", "invoice")
    assert r.code == 65 and "unknown SKU 'NOPE-9'" in r.err
    r = ws.run("orders", "create", "--customer", "K999999", "--line", "TOOL-1:1", "--payment", "invoice")
    assert r.code == 66
    assert _state(ws) == before
    out = ws.ok(*order, "--allow-backorder")
    assert "TEL-2026-00001" in out and "taken on backorder: TOOL-1: 5 wanted, 4 available" in out


def test_an_order_with_a_doubtful_address_is_held_by_triage_with_a_ticket(bare_workspace):
    ws = bare_workspace
    _setup(ws)
    out = json.loads(ws.ok("orders", "create", "--name", "Ole Ohne", "--street", "Postfach", "--zip", "10115",
                           "--city", "Berlin", "--line", "GLUE-2:1", "--payment", "cod", "--json"))
    assert out["state"] == "on_hold" and out["ticket"].startswith("T") and out["hold_reason"]
    tickets = json.loads(ws.ok("tickets", "list", "--json"))
    assert [t["order"] for t in tickets] == [out["number"]]


def test_a_note_is_kept_in_the_history_with_who_wrote_it(bare_workspace):
    ws = bare_workspace
    f.fixed_clock()
    with ws.app().session() as s:
        number = f.released(s).external_id
        s.commit()
    before = _state(ws)
    assert ws.ok("orders", "note", number, "Kundin ruft morgen zurück", "--dry-run").startswith("orders note: DRY RUN")
    assert _state(ws) == before
    assert "note added to order" in ws.ok("orders", "note", number, "Kundin ruft morgen zurück")
    [n] = [e for e in _events(ws, number) if e["kind"] == "note"]
    assert (n["actor"], n["why"]) == ("cli:orders note", "Kundin ruft morgen zurück")
    assert "Kundin ruft morgen zurück" in ws.ok("orders", "show", number)
    assert ws.run("orders", "note", number, "   ").code == 65
    assert ws.run("orders", "note", "302-0000000-0000000", "x").code == 66


def test_bulk_mark_paid_from_a_file_with_a_bad_row_does_the_rest(bare_workspace):
    ws = bare_workspace
    f.fixed_clock()
    with ws.app().session() as s:
        owed = [f.payment(s, amount="30.00").order.external_id for _ in range(2)]
        done = f.payment(s, amount="12.00", paid="12.00").order.external_id
        amazon = f.released(s).external_id  # paid through its channel: nothing owed to us
        s.commit()
    csv = ws.path / "paid.csv"
    csv.write_text(f"order;reference\n{owed[0]};BANK-1\n302-9999999-9999999;BANK-2\n{owed[1]};\n"
                   f"{done};BANK-3\n{amazon};BANK-4\n", encoding="utf-8")
    before = _state(ws)
    r = ws.run("orders", "bulk", "mark-paid", "--file", str(csv), "--dry-run")
    assert r.code == 65 and "done 1, skipped 1, failed 3" in r.out
    assert _state(ws) == before
    r = ws.run("orders", "bulk", "mark-paid", "--file", str(csv), "--json")
    assert r.code == 65
    out = json.loads(r.out)
    assert (out["done"], out["skipped"], out["failed"], out["orders"]) == (1, 1, 3, [owed[0]])
    assert out["skipped_orders"] == [{"order": done, "why": "paid already"}]
    why = {x["order"]: (x["where"], x["why"]) for x in out["failed_orders"]}
    assert why["302-9999999-9999999"] == (f"{csv}:3", "no order '302-9999999-9999999'")
    assert "no reference" in why[owed[1]][1] and why[owed[1]][0] == f"{csv}:4"
    assert "no payment owed" in why[amazon][1]
    with ws.app().session() as s:
        status = dict(s.execute(select(Order.external_id, Payment.status).join(Payment, Payment.order_id == Order.id)).all())
    assert (status[owed[0]], status[owed[1]], status[done]) == ("paid", "expected", "paid")
    [paid] = [e for e in _events(ws, owed[0]) if e["kind"] == "payment_received" and e["to"] == "paid"]
    assert paid["actor"] == "cli:orders bulk" and "BANK-1" in paid["why"]
    # Once more by a filter with one reference: the one still owed is paid, the others skipped.
    r = ws.run("orders", "bulk", "mark-paid", "--state", "released", "--channel", "amazon", "--reference", "KASSE")
    assert r.code == 65 and "done 1, skipped 2, failed 1" in r.out  # the channel's own order fails again


def test_bulk_release_and_cancel_close_tickets_release_stock_and_stop_payments(bare_workspace):
    ws = bare_workspace
    f.fixed_clock()
    with ws.app().session() as s:
        held = [f.held(s).external_id for _ in range(2)]
        note = f.routed(s, exported=False)
        routed, note_id = note.order.external_id, note.id
        f.payment(s, note.order, amount="28.98")
        shipped = f.shipped(s).external_id
        s.commit()
        reserved = s.scalar(select(Stock.reserved).where(Stock.sku == "TOOL-1", Stock.location == "WH"))
    assert ws.run("orders", "bulk", "release", "--state", "on_hold").code == 65  # no --reason
    out = ws.ok("orders", "bulk", "release", "--state", "on_hold", "--reason", "address checked by phone")
    assert "release: done 2, skipped 0, failed 0" in out
    with ws.app().session() as s:
        assert {o._state for o in s.scalars(select(Order).where(Order.external_id.in_(held)))} == {"released"}
        assert {(t.status, t.resolution) for t in s.scalars(select(Ticket))} == {("resolved", "released")}
    csv = ws.path / "cancel.csv"
    csv.write_text(f"order\n{routed}\n{shipped}\n{held[0]}\n", encoding="utf-8")
    r = ws.run("orders", "bulk", "cancel", "--file", str(csv), "--reason", "customer called")
    assert r.code == 65 and "cancel: done 2, skipped 0, failed 1" in r.out
    assert f"failed {shipped}" in r.out and "cannot go from shipped to cancelled" in r.out
    with ws.app().session() as s:
        states = dict(s.execute(select(Order.external_id, Order._state)).all())
        assert (states[routed], states[shipped], states[held[0]], states[held[1]]) == (
            "cancelled", "shipped", "cancelled", "released")
        assert s.scalar(select(DeliveryNote._state).where(DeliveryNote.id == note_id)) == "cancelled"
        assert s.scalar(select(Stock.reserved).where(Stock.sku == "TOOL-1", Stock.location == "WH")) == reserved - 1
        assert s.scalar(select(Payment.status)) == "cancelled"
    cancelled = [e for e in _events(ws, routed) if e["to"] == "cancelled"]
    assert [e["why"] for e in cancelled] == ["cancelled by a person: customer called",  # the order,
                                             "cancelled by a person: customer called; reservation released",  # its note
                                             "cancelled by a person: customer called"]  # its payment
    assert {e["actor"] for e in cancelled} == {"cli:orders bulk"}
    again = ws.ok("orders", "bulk", "cancel", "--state", "cancelled", "--reason", "twice")
    assert "done 0, skipped 2, failed 0" in again and "cancelled already" in again


def test_repeat_places_the_lines_again_at_todays_prices(bare_workspace):
    ws = bare_workspace
    _setup(ws)
    ws.ok("orders", "create", "--customer", "eva@example.de", "--line", "TOOL-1:2", "--payment", "prepayment",
          "--shipping", "4.90")
    with ws.app().session() as s:
        f.product(s, "TOOL-1").price = Decimal("26.99")
        amazon = f.released(s, [("GLUE-2", 3, "3.00")]).external_id
        s.commit()
    before = _state(ws)
    dry = ws.ok("orders", "repeat", "TEL-2026-00001", "--dry-run")
    assert "TEL-2026-00001 placed again as order TEL-2026-00002" in dry and "58.88 EUR" in dry
    assert _state(ws) == before
    out = json.loads(ws.ok("orders", "repeat", "TEL-2026-00001", "--json"))
    assert (out["number"], out["total"], out["payment"], out["state"]) == (
        "TEL-2026-00002", "58.88 EUR", "prepayment", "released")  # 2 x 26.99 + 4.90
    with ws.app().session() as s:
        old, new = (s.scalar(select(Order).where(Order.external_id == n))
                    for n in ("TEL-2026-00001", "TEL-2026-00002"))
        assert new.customer_id == old.customer_id and new.address == old.address
    assert any(e["kind"] == "note" and "TEL-2026-00002" in e["why"] and e["actor"] == "cli:orders repeat"
               for e in _events(ws, "TEL-2026-00001"))
    r = ws.run("orders", "repeat", amazon)
    assert r.code == 65 and "--payment" in r.err
    out = json.loads(ws.ok("orders", "repeat", amazon, "--payment", "invoice", "--json"))
    assert out["total"] == "14.49 EUR" and out["customer"]  # 3 x today's 3.50, and 3.99 shipping as then
    with ws.app().session() as s:
        f.stock(s, "WH", "TOOL-1", 1)
        s.commit()
    assert ws.run("orders", "repeat", "TEL-2026-00001").code == 70


def test_import_orders_skips_the_phone_channel(bare_workspace):
    ws = bare_workspace
    cfg = ws.app().cfg
    assert "phone" in channels.REGISTERED and "phone" not in channels.enabled(cfg)
    phone = channels.get("phone")
    assert (phone.collects_payment, phone.confirms_shipments, phone.tells_buyers(cfg), phone.invoice_mode(cfg)) == (
        False, False, True, "email")
    r = ws.run("import", "orders", "--channel", "phone")
    assert r.code == 65 and "orders create" in r.err


def test_the_rules_of_the_desk():
    assert desk.wanted_line(" TOOL-1:3 ", "--line 1") == desk.Wanted("TOOL-1", 3)
    for bad in ("TOOL-1", "TOOL-1:0", "TOOL-1:x", ":2", "TOOL-1:99999999"):
        try:
            desk.wanted_line(bad, "--line 1")
        except desk.InputError as exc:
            assert exc.where == "--line 1"
        else:
            raise AssertionError(bad)
    wanted = [desk.Wanted("A", 2), desk.Wanted("B", 1), desk.Wanted("A", 1)]
    assert desk.shortages(wanted, {"A": 3, "B": 1}) == []
    assert desk.shortages(wanted, {"A": 2}) == ["A: 3 wanted, 2 available", "B: 1 wanted, 0 available"]
