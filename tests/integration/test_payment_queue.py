"""The payment queue of the shop's orders: a payment expected on import by its method, routing that
waits for the money of a prepayment, the moves of a payment told to the shop (over HTTP, the
Shopware stand-in) and to the buyer, reminders and the cancellation of an unpaid order, and the
DATEV bookings of the bank credits that paid."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from caturactl import pipeline
from caturactl.accounting import exporting
from caturactl.accounting.bookings import receipt_entry
from caturactl.catalogue.models import Product
from caturactl.config import AccountsConfig, PaymentMethodConfig, PaymentsConfig
from caturactl.core import clock
from caturactl.fulfilment.models import DeliveryNote, Stock
from caturactl.orders.models import Order
from caturactl.orders.tickets import Ticket
from caturactl.outbox.models import OutboxMessage
from caturactl.payments import dunning, queue, service
from caturactl.payments.announcements import announce
from caturactl.payments.dunning import OpenPayment, step
from caturactl.payments.models import Payment
from caturactl.payments.statements import import_file
from caturactl.ports import BankEntry, BankStatementData
from connectors.shopware.client import ShopwareApi
from connectors.shopware.payments import transition_payment
from tests import factories
from tests.fulfilment import (
    COMPANY,
    carrier_section,
    folder_transport,
    locations,
    stock_csv,
)

D = Decimal
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


# --- the rule, over plain values -------------------------------------------------------------------


def _open(status="overdue", *, due=T0, reminded=None, paid="0.00", order_state="released") -> OpenPayment:
    return OpenPayment(1, "10001", order_state, "prepayment", status, due, reminded, D("50.00"), D(paid), "EUR")


PREPAY = PaymentMethodConfig(route_unpaid=False, due_days=7, remind=True, cancel=True)
RULES = PaymentsConfig()  # reminder 7, cancel 14 days after the due date


@pytest.mark.parametrize("status, days, reminded_days, paid, state, action", [
    ("expected", 1, None, "0.00", "released", "overdue"),  # past due: marked overdue, nothing else yet
    ("overdue", 6, None, "0.00", "released", "wait"),
    ("overdue", 7, None, "0.00", "released", "remind"),
    ("partly_paid", 8, None, "20.00", "released", "remind"),  # a partial payer is reminded of the rest
    ("reminded", 13, 7, "0.00", "released", "wait"),
    ("reminded", 14, 7, "0.00", "released", "cancel"),
    ("reminded", 14, 10, "0.00", "released", "wait"),  # a late reminder keeps its full week
    ("reminded", 17, 10, "0.00", "released", "cancel"),
    ("reminded", 30, 7, "20.00", "released", "ticket"),  # money received: never cancelled automatically
    ("reminded", 30, 7, "0.00", "shipped", "ticket"),  # parcels gone: a person decides
])
def test_each_overdue_payment_gets_one_step(status, days, reminded_days, paid, state, action):
    reminded = T0 + timedelta(days=reminded_days) if reminded_days is not None else None
    s = step(_open(status, reminded=reminded, paid=paid, order_state=state), PREPAY, RULES, T0 + timedelta(days=days))
    assert s.action == action
    assert s.remind_on == T0 + timedelta(days=7)


def test_cod_and_paypal_are_never_reminded_nor_cancelled():
    for method in ("cod", "paypal", "card", "direct_debit"):
        rules = RULES.method(method)
        assert rules.route_unpaid and not rules.remind and not rules.cancel
        s = step(_open("overdue"), rules, RULES, T0 + timedelta(days=90))
        assert (s.action, s.remind_on, s.cancel_on) == ("wait", None, None)


def test_payments_config_defaults_overrides_and_refusals():
    cfg = PaymentsConfig()
    assert cfg.waiting_methods() == ["prepayment"]
    assert (cfg.method("invoice").remind, cfg.method("invoice").cancel, cfg.method("cod").due_days) == (True, False, 21)
    changed = PaymentsConfig.model_validate({"methods": {"invoice": {"route_unpaid": False}}})
    assert changed.method("invoice").due_days == 14 and changed.waiting_methods() == ["invoice", "prepayment"]
    with pytest.raises(ValidationError, match="unknown payment method 'bitcoin'"):
        PaymentsConfig.model_validate({"methods": {"bitcoin": {}}})
    with pytest.raises(ValidationError, match="must be after reminder_after_days"):
        PaymentsConfig(reminder_after_days=10, cancel_after_days=10)
    assert AccountsConfig().account("bank") == "1200" and AccountsConfig(chart="SKR04").account("bank") == "1800"


# --- the shop, over HTTP ---------------------------------------------------------------------------------


def _config(shop, smtp, tmp_path, payments: str = "") -> str:
    for folder in ("wh", "ful"):
        (tmp_path / folder).mkdir(exist_ok=True)
    return f"""
[shop]
enabled = true
url = "{shop.url}"
client_id = "{shop.client_id}"
page_size = 50
first_import_days = 3
max_retries = 2
backoff_seconds = 0.01
backoff_max_seconds = 0.05
timeout_seconds = 5
[mail]
host = "127.0.0.1"
port = {smtp.port}
security = "none"
from_address = "shop@test-handel.example"
{payments}
""" + carrier_section() + locations() + folder_transport("wh", tmp_path / "wh") + folder_transport(
        "ful", tmp_path / "ful")


@pytest.fixture
def ws(bare_workspace, shop_standin, smtp_server, tmp_path, monkeypatch):
    ws = bare_workspace
    ws.write_config(extra=_config(shop_standin, smtp_server, tmp_path), company=COMPANY)
    monkeypatch.setenv("CATURACTL_SHOP_CLIENT_SECRET", shop_standin.client_secret)
    (ws.path / "products.csv").write_text(shop_standin.catalogue_csv(), encoding="utf-8")
    ws.ok("products", "import", "products.csv")
    ws.shop, ws.smtp = shop_standin, smtp_server
    return ws


def _payments(s) -> dict[str, list[Payment]]:
    out: dict[str, list[Payment]] = {}
    for p in s.scalars(select(Payment).order_by(Payment.id)):
        out.setdefault(p.order.external_id, []).append(p)
    return out


def _statement(credits: list[tuple[str, Decimal, str]], day: date, ident: str = "S1") -> BankStatementData:
    entries = tuple(BankEntry(where=f"test:{i}", entry_ref=f"{ident}-{i}", booking_date=day, amount=amount,
                              currency="EUR", debtor_name=name, remittance=f"Bestellung {ref}")
                    for i, (ref, amount, name) in enumerate(credits, 1))
    return BankStatementData(f"test:{ident}", "camt.053.001.08", "DE02120300000000202051", ident, "EUR", None, None,
                             entries)


def _import_statement(ws, tmp_path, statement: BankStatementData, *, dry_run: bool = False):
    """``payments import`` through its stage, with the statement already read."""
    app = ws.app()
    app.statement_reader = lambda: (lambda name, data: [statement])
    f = tmp_path / f"{statement.statement_id}.xml"
    f.write_bytes(b"<read by the test>")
    return pipeline.import_payments(app, f, dry_run=dry_run)


def _shop_states(ws) -> dict[str, str]:
    return {o["orderNumber"]: o["transactions"][0]["stateMachineState"]["technicalName"]
            for o in ws.shop.visible_orders()}


def test_each_shop_order_owes_one_payment_by_its_method_once_however_often_imported(ws):
    ws.ok("import", "orders", "--channel", "shop")
    app = ws.app()
    with app.session() as s:
        orders = s.scalars(select(Order).where(Order.channel == "shop")).all()
        pays = _payments(s)
        seen = set()
        for o in orders:
            if o.state == "cancelled":
                assert all(p.status == "cancelled" for p in pays.get(o.external_id, []))
                continue
            [p] = pays[o.external_id]
            seen.add(p.method)
            assert (p.method, p.amount_expected, p.reference) == (o.payment_method, o.total_amount, o.external_id)
            # A purchase on account is due with its invoice (none yet); the others from the order.
            due_days = app.cfg.payments.method(p.method).due_days
            assert p.due_at == (None if p.method == "invoice" else o.created_at + timedelta(days=due_days))
            checkout_paid = p.method in ("paypal", "card") and o.payment_state == "paid"
            assert p.status == ("paid" if checkout_paid else "expected"), (o.external_id, p.method, o.payment_state)
            if p.method == "prepayment":
                assert o.state in ("released", "on_hold")  # released: its money is waited for in routing
        assert {"prepayment", "invoice", "paypal", "card", "cod"} <= seen
        # What the shop itself reported is not announced back to it.
        assert not s.scalars(select(OutboxMessage.key).where(OutboxMessage.kind == "shop_payment")).all()
        assert not s.scalars(select(OutboxMessage.key).where(OutboxMessage.key.like("email:payment_%"))).all()
        count = s.scalar(select(func.count()).select_from(Payment))
    ws.shop.advance(timedelta(hours=30))  # prepayments marked paid in the shop, a few more orders
    ws.ok("import", "orders", "--channel", "shop")
    with app.session() as s:
        pays = _payments(s)
        assert all(len(v) == 1 for v in pays.values()) and len(pays) >= count
        # A prepayment the shop says is paid is not paid here: the bank statement is the word.
        states = _shop_states(ws)
        marked = [v[0] for k, v in pays.items() if v[0].method == "prepayment" and states[k] == "paid"]
        assert marked and all(p.status == "expected" for p in marked)


def test_an_amazon_order_owes_no_payment_here(ws):
    with ws.app().session() as s:
        order = factories.released(s)
        assert queue.owed(s, ws.app().cfg, order) is None
        assert s.scalar(select(func.count()).select_from(Payment)) == 0


def test_a_prepaid_order_is_routed_only_once_a_bank_credit_pays_it_and_the_shop_and_buyer_hear(ws, tmp_path):
    ws.ok("import", "orders", "--channel", "shop")
    with ws.app().session() as s:
        skus = s.scalars(select(Product.sku)).all()
    ws.ok("stock", "import", "WH", str(stock_csv(tmp_path / "wh.csv", {sku: 500 for sku in skus})))
    routed = json.loads(ws.ok("route", "--json"))
    app = ws.app()
    with app.session() as s:
        waiting = {o.external_id: o for o in s.scalars(select(Order).where(
            Order.channel == "shop", Order.payment_method == "prepayment", Order._state == "released"))}
        assert waiting and routed["routed"] > 0
        others = s.scalars(select(Order).where(Order.channel == "shop", Order._state == "released",
                                               Order.payment_method != "prepayment")).all()
        assert not others  # invoice, cod, PayPal and card went at once
        number, order = min(waiting.items())
        credit = [(number, order.total_amount, order.buyer_name)]
    out = _import_statement(ws, tmp_path, _statement(credit, date(2026, 11, 25)))
    assert out.exit_code == 0 and out.data["matched"] == 1 and out.data["queued"] == 2, out.problems
    assert [(t["order_number"], t["transition"], t["to"]) for t in ws.shop.transitions("order_transaction")] == [
        (number, "paid", "paid")]
    [mail] = [m for m in ws.smtp.messages if "erhalten" in m["Subject"] or "received" in m["Subject"]]
    assert number in mail["Subject"] and mail["To"] == order.buyer_email
    again = json.loads(ws.ok("route", "--json"))
    assert again["routed"] == 1
    with app.session() as s:
        assert s.scalar(select(Order).where(Order.external_id == number)).state == "routed"
        assert s.scalar(select(func.count()).select_from(Order).where(
            Order.external_id.in_(list(waiting)), Order._state == "released")) == len(waiting) - 1
        assert s.scalar(select(Payment).join(Order).where(Order.external_id == number)).status == "paid"
    # Asked again after a crash: the shop's payment is paid already, nothing is sent twice.
    api = ShopwareApi(app.cfg.shop)
    try:
        said = transition_payment(api, SimpleNamespace(payload={"order_id": number, "action": "paid"}),
                                  SimpleNamespace(in_doubt=datetime.now(UTC), sending=lambda: None))
    finally:
        api.close()
    assert "got through" in said and len(ws.shop.transitions("order_transaction")) == 1


def test_unpaid_prepayments_are_reminded_then_cancelled_here_and_at_the_shop(ws, tmp_path):
    ws.ok("import", "orders", "--channel", "shop")
    app = ws.app()
    shop = ws.shop.shop
    with app.session() as s:
        prepaid = s.scalars(select(Order).where(Order.channel == "shop", Order.payment_method == "prepayment",
                                                Order._state.in_(["released", "on_hold"]))
                            .order_by(Order.external_id)).all()
        ids = {o["orderNumber"]: o["id"] for o in ws.shop.visible_orders()}
        quiet = [o for o in prepaid if not shop._by_id[ids[o.external_id]].scheduled  # nobody pays these
                 and shop._by_id[ids[o.external_id]].transaction_state == "open"]
        victim, partial = quiet[0], quiet[1]
        credits = [(o.external_id, o.total_amount, o.buyer_name) for o in prepaid if o not in (victim, partial)]
        victim_no, partial_no = victim.external_id, partial.external_id
        victim_open = victim.total_amount
        # A part of one, taken by a person (a five-digit order number with another amount is too weak
        # for the statement's matching): told to the shop and the buyer all the same.
        p = queue.payment_of(s, partial)
        service.apply(s, p, D("5.00"), "5.00 received in cash at the counter")
        assert announce(s, app.cfg, p, "expected") == ["shop_payment", "email"]
        s.commit()
    paid = _import_statement(ws, tmp_path, _statement(credits, date(2026, 11, 25)))
    assert paid.data["matched"] == len(credits) and paid.exit_code == 0, paid.problems
    assert (partial_no, "paid_partially") in {(t["order_number"], t["transition"])
                                               for t in ws.shop.transitions("order_transaction")}
    ws.smtp.messages.clear()

    # 15 days on: due 7 days after the order, reminded 7 days after that.
    ws.shop.advance(timedelta(days=15))
    listed = {r["order"]: r for r in json.loads(ws.ok("payments", "overdue", "--json"))}
    assert listed[victim_no]["action"] == "remind" and listed[victim_no]["open"] == f"{victim_open:.2f}"
    assert listed[victim_no]["remind_on"] < listed[victim_no]["cancel_on"]
    assert ws.ok("payments", "overdue", "--format", "csv").splitlines()[0].startswith("order,method,status,due")
    before = _snapshot(ws)
    dry = ws.ok("payments", "remind", "--dry-run")
    assert "DRY RUN" in dry and _snapshot(ws) == before and not ws.smtp.messages

    out = json.loads(ws.ok("payments", "remind", "--json"))
    assert {victim_no, partial_no} <= set(out["reminded"]) and not out["cancelled"]
    reminded = [(t["order_number"], t["transition"]) for t in ws.shop.transitions("order_transaction")
                if t["transition"] == "remind"]
    assert (victim_no, "remind") in reminded and (partial_no, "remind") in reminded
    body = next(m for m in ws.smtp.messages if victim_no in m["Subject"]).get_content()
    assert f"{victim_open:.2f}".replace(".", ",") in body or f"{victim_open:.2f}" in body
    assert "DE02120300000000202051" in body and victim_no in body  # the IBAN, the reference to quote
    again = json.loads(ws.ok("payments", "remind", "--json"))
    assert not again["reminded"] and not again["cancelled"]  # one reminder, however often it runs

    # 8 more days: the victim is cancelled; the partial payer gets a ticket, never a cancellation.
    ws.shop.advance(timedelta(days=8))
    out = json.loads(ws.ok("payments", "remind", "--json"))
    assert out["cancelled"] == [victim_no] and len(out["tickets"]) == 1
    with app.session() as s:
        order = s.scalar(select(Order).where(Order.external_id == victim_no))
        assert order.state == "cancelled"
        assert s.scalar(select(Payment).where(Payment.order_id == order.id)).status == "cancelled"
        ticket = s.scalar(select(Ticket).where(Ticket.external_ref.like("payment-overdue:%")))
        assert ticket.order.external_id == partial_no and "5.00 EUR of it received" in ticket.text
        assert s.scalar(select(Order).where(Order.external_id == partial_no)).state != "cancelled"
    shop_moves = {(t["entity"], t["order_number"], t["to"]) for t in ws.shop.transitions()}
    assert ("order", victim_no, "cancelled") in shop_moves
    assert ("order_transaction", victim_no, "cancelled") in shop_moves
    assert any(victim_no in m["Subject"] and ("storniert" in m["Subject"] or "cancelled" in m["Subject"])
               for m in ws.smtp.messages)
    assert not json.loads(ws.ok("payments", "remind", "--json"))["tickets"]  # the ticket is opened once


def _snapshot(ws) -> dict:
    with ws.app().session() as s:
        return {"payments": sorted((p.id, p.status) for p in s.scalars(select(Payment))),
                "orders": sorted((o.external_id, o.state) for o in s.scalars(select(Order))),
                "outbox": s.scalar(select(func.count()).select_from(OutboxMessage)),
                "tickets": s.scalar(select(func.count()).select_from(Ticket))}


def test_a_routed_unpaid_order_is_cancelled_with_its_stock_released(bare_workspace):
    ws = bare_workspace
    ws.write_config(extra="[payments.methods.prepayment]\nroute_unpaid = true\n", company=COMPANY)
    app = ws.app()
    clock.install(clock.FixedClock(T0))
    with app.session() as s:
        note = factories.routed(s, channel="shop", exported=False, created_at=T0 - timedelta(days=1))
        order = note.order
        factories.payment(s, order, method="prepayment", due_in_days=0)
        reserved = s.scalar(select(Stock.reserved).where(Stock.sku == order.lines[0].sku))
        s.commit()
        assert reserved == 1
    clock.install(clock.FixedClock(T0 + timedelta(days=8)))
    with app.session() as s:
        r = dunning.remind(s, app.cfg)
        s.commit()
        assert r.reminded == [order.external_id]
    clock.install(clock.FixedClock(T0 + timedelta(days=15)))
    with app.session() as s:
        r = dunning.remind(s, app.cfg)
        s.commit()
        assert r.cancelled == [order.external_id]
        assert s.scalar(select(DeliveryNote._state)) == "cancelled"
        assert s.scalar(select(Stock.reserved).where(Stock.sku == order.lines[0].sku)) == 0
        kinds = sorted(s.scalars(select(OutboxMessage.kind)))
        assert kinds.count("shop_payment") == 2 and kinds.count("shop_cancel_order") == 1


def test_a_held_shop_order_a_person_cancels_by_its_ticket_is_cancelled_at_the_shop_and_owes_nothing(bare_workspace):
    """'tickets resolve --cancel' cancels the way every cancel does (orders/cancelling.py): before,
    it only moved the order, so the shop kept it open and its prepayment was still expected."""
    ws = bare_workspace
    ws.write_config(company=COMPANY)
    app = ws.app()
    clock.install(clock.FixedClock(T0))
    with app.session() as s:
        order = factories.held(s, channel="shop", created_at=T0 - timedelta(hours=2))
        factories.payment(s, order, method="prepayment")
        s.commit()
        external_id, [ticket] = order.external_id, s.scalars(select(Ticket)).all()
        number = ticket.number
    out = ws.ok("tickets", "resolve", number, "--cancel", "--note", "the buyer called to cancel")
    assert f"order {external_id} is now cancelled" in out
    with app.session() as s:
        assert s.scalar(select(Order._state)) == "cancelled" and s.scalar(select(Payment.status)) == "cancelled"
        t = s.scalars(select(Ticket)).one()
        assert (t.status, t.resolution, t.note) == ("resolved", "cancelled", "the buyer called to cancel")
        kinds = sorted(s.scalars(select(OutboxMessage.kind)))
        assert kinds.count("shop_cancel_order") == 1 and kinds.count("shop_payment") == 1


def test_a_person_marking_paid_or_cancelling_at_the_desk_is_heard_by_the_shop_and_the_buyer(ws, tmp_path):
    ws.ok("import", "orders", "--channel", "shop")
    shop = ws.shop.shop
    ids = {o["orderNumber"]: o["id"] for o in ws.shop.visible_orders()}
    with ws.app().session() as s:
        waiting = [o for o in s.scalars(select(Order).where(Order.channel == "shop", Order._state == "released",
                                                             Order.payment_method == "prepayment")
                                         .order_by(Order.external_id))
                   if shop._by_id[ids[o.external_id]].transaction_state == "open"]
        (paid, buyer), cancelled = (waiting[0].external_id, waiting[0].buyer_email), waiting[1].external_id
    (tmp_path / "paid.csv").write_text(f"order,reference\n{paid},KASSE-7\n", encoding="utf-8")
    (tmp_path / "cancel.csv").write_text(f"order\n{cancelled}\n", encoding="utf-8")
    assert "done 1" in ws.ok("orders", "bulk", "mark-paid", "--file", str(tmp_path / "paid.csv"))
    assert "done 1" in ws.ok("orders", "bulk", "cancel", "--file", str(tmp_path / "cancel.csv"), "--reason", "called")
    ws.smtp.messages.clear()
    ws.ok("outbox", "send")
    moves = {(t["entity"], t["order_number"], t["to"]) for t in ws.shop.transitions()}
    assert ("order_transaction", paid, "paid") in moves  # as a matched bank credit tells it
    assert {("order", cancelled, "cancelled"), ("order_transaction", cancelled, "cancelled")} <= moves
    [mail] = [m for m in ws.smtp.messages if paid in m["Subject"] and ("erhalten" in m["Subject"]
                                                                       or "received" in m["Subject"])]
    assert mail["To"] == buyer


# --- DATEV -------------------------------------------------------------------------------------------------


def test_a_matched_bank_credit_is_booked_from_receivables_to_the_bank(bare_workspace):
    ws = bare_workspace
    app = ws.app()
    with app.session() as s:
        p = factories.payment(s, amount="49.98", external_id="SW-10042", buyer="Anna Beispiel", channel="shop")
        q = factories.payment(s, amount="20.00", external_id="SW-10043", buyer="Bernd Muster", channel="shop")
        s.commit()
        st = _statement([("SW-10042", D("49.98"), "Anna Beispiel"), ("SW-10043", D("5.00"), "Bernd Muster")],
                        date(2026, 11, 25))
        import_file(s, "s.xml", b"", lambda name, data: [st])
        s.commit()
        rows = exporting.entries(s, app.cfg, date(2026, 11, 1), date(2026, 11, 30))
        assert [(e.date, e.document, e.debit, e.credit, e.amount, e.order_id) for e in rows] == [
            (date(2026, 11, 25), "SW-10042", "1200", "1400", D("49.98"), "SW-10042"),
            (date(2026, 11, 25), "SW-10043", "1200", "1400", D("5.00"), "SW-10043")]
        assert rows[0].text == "Zahlung SW-10042 Anna Beispiel" and p.status == "paid" and q.status == "partly_paid"
        assert exporting.entries(s, app.cfg, date(2026, 12, 1), date(2026, 12, 31)) == []
    skr04 = AccountsConfig(chart="SKR04")
    back = receipt_entry(date(2026, 11, 30), "SW-10042", "Rücklastschrift SW-10042", D("-49.98"), skr04)
    assert (back.debit, back.credit, back.amount) == ("1200", "1800", D("49.98"))
    amazon = receipt_entry(date(2026, 11, 30), "x", "t", D("1.00"), AccountsConfig(), clearing_account="amazon_clearing")
    assert (amazon.debit, amazon.credit) == ("1200", "1500")
