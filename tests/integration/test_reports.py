"""The reports add up to the documents they come from, to the cent, on SQLite and PostgreSQL; their
JSON and CSV carry exactly the table's columns. The books are built by tests/factories.py: orders
in every state, invoices and a credit note issued by the invoicing service, a settlement imported by
the settlement service; the reports are read through the real commands."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal as D

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, MetaData, Table, select

from caturactl.core import clock
from caturactl.cli.report import COCKPIT, FINANCE, OVERDUE, SALES, STOCK
from caturactl.accounting.models import Settlement
from caturactl.billing.models import Invoice
from caturactl.views.reports import difference_open, money_sum, overdue, tidy
from tests import factories as f
from tests import fulfilment


def _keys(sections) -> dict[str, list[str]]:
    return {sec.key: [c.key for c in sec.columns] for sec in sections}


def _by_section(rows: list[dict], sections) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {sec.key: [] for sec in sections}
    keys = _keys(sections)
    for r in rows:
        assert list(r) == ["section"] + keys[r["section"]]  # exactly the section's table columns
        out[r["section"]].append(r)
    return out


def _csv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def books(bare_workspace, tmp_path):
    """Orders in every state at two locations: shipped and invoiced (one partly credited, one that
    Amazon settled at another amount, so its invoice stays open), shipped and not yet invoiced,
    shipped by Amazon (FBA), routed, released, on hold, cancelled; stock of a SKU nobody bought;
    Amazon's settlement of the invoices, of the uninvoiced order and of an order we do not know."""
    ws = bare_workspace
    f.fixed_clock()
    for folder in ("wh", "ful"):
        (tmp_path / folder).mkdir()
    ws.write_config(extra=fulfilment.carrier_section() + fulfilment.locations()
                    + fulfilment.folder_transport("wh", tmp_path / "wh")
                    + fulfilment.folder_transport("ful", tmp_path / "ful")
                    + '[invoices]\namazon_delivery = "none"\n', company=fulfilment.COMPANY)
    app = ws.app()
    with app.session() as s:
        f.product(s, "BOOK-1", title="Kochbuch", price="12.00", tax_class="reduced")
        f.product(s, "SLOW-1", title="Ladenhüter", price="9.99")
        for location, sku, n in (("WH", "TOOL-1", 30), ("WH", "BOOK-1", 30), ("WH", "LAMP-1", 5),
                                 ("WH", "SLOW-1", 12), ("FUL", "TOOL-2", 20), ("FUL", "BOOK-1", 15)):
            f.stock(s, location, sku, n)
        credited = f.shipped(s, lines=[("TOOL-1", 2, "24.99"), ("BOOK-1", 1, "12.00")])
        differs = f.shipped(s, lines=[("TOOL-2", 1, "39.90")], location="FUL")
        french = f.shipped(s, lines=[("LAMP-1", 1, "49.00"), ("TOOL-1", 1, "24.99")], country="FR")
        italian = f.shipped(s, lines=[("BOOK-1", 3, "12.00")], country="IT", location="FUL")
        waiting = f.shipped(s, lines=[("TOOL-1", 1, "24.99")])  # no invoice yet
        f.shipped_by_channel(s, lines=[("TOOL-2", 1, "39.90")])  # shipped outside caturactl
        f.routed(s, lines=[("TOOL-1", 1, "24.99")])
        f.released(s, lines=[("LAMP-1", 1, "49.00")], country="AT")
        f.held(s, lines=[("LAMP-1", 2, "49.00")], reason="the address has no house number")
        f.held(s, lines=[("TOOL-2", 1, "39.90")], reason="gift message to check", code="gift_message")
        f.cancelled(s, lines=[("TOOL-1", 1, "24.99")])
        invoices = f.invoiced(s, app.cfg, credited, differs, french, italian)
        f.credited(s, app.cfg, invoices[0], {1: 1}, reason="Retoure")
        f.settled(s, invoices, folder=tmp_path, differ={differs.external_id: invoices[1].gross_total - D("0.01"),
                                                         waiting.external_id: "27.98"},
                  extra=f.sale_lines("302-9999999-9999999", "5.95"))
        s.commit()
    return ws


def test_sales_add_up_to_the_invoices_less_credit_notes(books):
    ws = books
    documents = json.loads(ws.ok("invoices", "list", "--json"))
    [month] = {d["date"][:7] for d in documents}
    invoices = [d for d in documents if d["kind"] == "invoice"]
    credits = [d for d in documents if d["kind"] == "credit_note"]
    assert invoices and credits
    gross = sum(D(d["gross"]) for d in invoices) - sum(D(d["gross"]) for d in credits)
    net = sum(D(d["net"]) for d in invoices) - sum(D(d["net"]) for d in credits)
    app = ws.app()
    with app.session() as s:
        pieces = Counter()
        for kind, doc in s.execute(select(Invoice.kind, Invoice.document)):
            for item in doc["items"]:
                pieces[item["sku"]] += D(item["quantity"]) * (1 if kind == "invoice" else -1)
    rows = _by_section(json.loads(ws.ok("report", "sales", "--month", month, "--json")), SALES)
    [total] = rows["month"]
    assert (D(total["gross"]), D(total["net"])) == (gross, net)
    assert total["orders"] == len({d["order"] for d in invoices})
    assert D(total["units"]) == sum(pieces.values())
    assert sum(D(r["gross"]) for r in rows["sku"]) == gross == sum(D(r["gross"]) for r in rows["marketplace"])
    assert sum(D(r["net"]) for r in rows["sku"]) == net == sum(D(r["net"]) for r in rows["marketplace"])
    assert {r["sku"]: D(r["units"]) for r in rows["sku"]} == {k: v for k, v in pieces.items()}
    assert {r["marketplace"] for r in rows["marketplace"]} <= {"Amazon.de", "Amazon.fr", "Amazon.it", "Amazon.es"}
    assert sum(D(r["units"]) for r in rows["marketplace"]) == sum(pieces.values())
    # Top sellers are the best-selling SKUs, in order; slow sellers have stock and sold nothing.
    ranked = [r["sku"] for r in rows["top"]]
    assert [D(r["units"]) for r in rows["top"]] == sorted((D(r["units"]) for r in rows["top"]), reverse=True)
    assert D(rows["top"][0]["units"]) == max(v for k, v in pieces.items() if k)
    assert len(ranked) == min(10, len([k for k in pieces if k]))
    stock = {r["sku"]: r for r in _by_section(json.loads(ws.ok("report", "stock", "--json")), STOCK)["sku"]}
    assert rows["slow"] and all(pieces.get(r["sku"], 0) == 0 and r["on_hand"] == stock[r["sku"]]["on_hand"] > 0
                                for r in rows["slow"])
    # The default month is the current one in the configured time zone: the invoices were issued today.
    assert _by_section(json.loads(ws.ok("report", "sales", "--json")), SALES)["month"] == [total]
    # A month without invoices is empty, not an error; a bad month is bad input.
    assert json.loads(ws.ok("report", "sales", "--month", "2019-01", "--json"))[0]["section"] == "slow"
    assert ws.run("report", "sales", "--month", "2026-13").code == 65
    table = ws.ok("report", "sales", "--month", month)
    assert f"Sales in {month}" in table and "Top sellers" in table and "Slow sellers" in table
    flat = _csv(ws.ok("report", "sales", "--month", month, "--format", "csv"))
    assert flat[0]["section"] == "month" and D(flat[0]["gross"]) == gross
    assert len(flat) == sum(len(v) for v in rows.values())


def test_finance_shows_revenue_per_rate_fees_receivables_and_open_differences(books):
    ws = books
    documents = json.loads(ws.ok("invoices", "list", "--json"))
    [month] = {d["date"][:7] for d in documents}
    sign = {"invoice": 1, "credit_note": -1}
    rows = _by_section(json.loads(ws.ok("report", "finance", "--month", month, "--json")), FINANCE)
    assert sum(D(r["net"]) for r in rows["revenue"]) == sum(D(d["net"]) * sign[d["kind"]] for d in documents)
    assert sum(D(r["tax"]) for r in rows["revenue"]) == sum(D(d["tax"]) * sign[d["kind"]] for d in documents)
    assert all(D(r["gross"]) == D(r["net"]) + D(r["tax"]) for r in rows["revenue"])
    assert {r["country"] for r in rows["revenue"]} >= {"DE"} and all(r["rate"] for r in rows["revenue"])
    assert sum(r["credit_notes"] for r in rows["revenue"]) >= 1
    app = ws.app()
    with app.session() as s:
        st_ = s.scalars(select(Settlement)).one()
        deposit_month = st_.deposit_date.astimezone(app.cfg.tz).strftime("%Y-%m")
        differences = {d.order_id: d for d in st_.differences}
    fees = _by_section(json.loads(ws.ok("report", "finance", "--month", deposit_month, "--json")), FINANCE)["fees"]
    assert [(r["settlement"], D(r["fees"]), D(r["payout"])) for r in fees] == [
        (st_.settlement_id, st_.fees, st_.total_amount)]
    assert st_.fees < 0
    with app.session() as s:  # the settlement paid every invoice exactly: leave one open
        inv = s.scalars(select(Invoice).where(Invoice.kind == "invoice").order_by(Invoice.id)).first()
        inv.paid_at = None
        s.commit()
    rows = _by_section(json.loads(ws.ok("report", "finance", "--month", month, "--json")), FINANCE)
    unpaid = json.loads(ws.ok("invoices", "list", "--unpaid", "--json"))
    assert unpaid
    assert sum(r["invoices"] for r in rows["receivables"]) == len(unpaid)
    assert sum(D(r["gross"]) for r in rows["receivables"]) == sum(D(d["gross"]) for d in unpaid)
    assert [r["age"] for r in rows["receivables"]] == ["0-30 days"]
    # Every difference of the settlement is still open (nothing was booked since), counted by kind.
    assert sum(r["differences"] for r in rows["differences"]) == len(differences)
    assert sum(D(r["amount"]) for r in rows["differences"]) == sum(d.amount for d in differences.values())
    table = ws.ok("report", "finance", "--month", month)
    assert "Revenue in" in table and "Open receivables" in table


def test_stock_per_location_and_sku(books):
    ws = books
    listed = json.loads(ws.ok("stock", "list", "--json"))
    rows = _by_section(json.loads(ws.ok("report", "stock", "--json")), STOCK)
    assert [{k: r[k] for k in ("location", "sku", "on_hand", "reserved", "available")} for r in rows["location"]] \
        == sorted(listed, key=lambda r: (r["sku"], r["location"]))
    per_sku = {r["sku"]: r for r in rows["sku"]}
    for r in listed:
        assert per_sku[r["sku"]]["on_hand"] >= r["on_hand"]
    assert sum(r["on_hand"] for r in rows["sku"]) == sum(r["on_hand"] for r in listed)
    assert all(r["expected"] == r["available"] - r["waiting"] for r in rows["sku"])
    # Orders held for a person are not routed: what they need shows as waiting.
    held = json.loads(ws.ok("orders", "list", "--state", "on_hold", "--json"))
    assert held and sum(r["waiting"] for r in rows["sku"]) > 0


def test_cockpit_lists_every_open_order_and_its_payment(books):
    ws = books
    rows = json.loads(ws.ok("report", "cockpit", "--json"))
    assert rows and all(list(r) == [c.key for c in COCKPIT] for r in rows)
    orders = {r["number"]: r for r in json.loads(ws.ok("orders", "list", "--json"))}
    shown = {r["order"]: r for r in rows}
    credit_notes = {d["number"] for d in json.loads(ws.ok("invoices", "list", "--kind", "credit_note", "--json"))}
    assert credit_notes and not any(r["state"] == "cancelled" for r in rows)
    for number, o in orders.items():
        invoices = [x for x in o["invoice"].split(", ") if x and x.split()[0] not in credit_notes]
        paid = invoices and all(x.endswith("(paid)") for x in invoices)
        # Shipped is open while our delivery notes wait for an invoice or an invoice for its money;
        # an order shipped outside caturactl (no delivery note of ours) has nothing left to do here.
        waits = (invoices and not paid) or (not invoices and o["carrier"])
        if o["state"] in ("cancelled", "shipped"):
            assert (number in shown) == bool(o["state"] == "shipped" and waits), number
        else:
            assert number in shown and shown[number]["hold_reason"] == o["hold_reason"]
    for r in rows:
        invoices = [x for x in r["invoice"].split(", ") if x and x.split()[0] not in credit_notes]
        if r["payment"] == "open":
            assert any(not x.endswith("(paid)") for x in invoices)
        elif invoices:
            assert datetime.strptime(r["payment"], "%Y-%m-%d")  # the day the money came
        if r["state"] == "shipped":
            assert r["location"] and r["carrier"] and r["tracking"]
    # Oldest first, and a table for people.
    assert [r["date"] for r in rows] == sorted(r["date"] for r in rows)
    assert "Open orders" in ws.ok("report", "cockpit", "--limit", "3")
    assert _csv(ws.ok("report", "cockpit", "--format", "csv"))[0].keys() == {c.key for c in COCKPIT}


def test_overdue_lists_holds_late_notes_old_invoices_and_failing_messages(books):
    ws = books
    rows = _by_section(json.loads(ws.ok("report", "overdue", "--json")), OVERDUE)
    held = json.loads(ws.ok("orders", "list", "--state", "on_hold", "--json"))
    assert {r["order"] for r in rows["hold"]} == {o["number"] for o in held}
    assert all(r["since"] and r["ticket"].startswith("T") and r["hold_reason"] for r in rows["hold"])
    assert rows["unpaid"] == [] and rows["outbox"] == []  # invoices issued today; everything was sent
    # Forty days on (the service takes the time): every unpaid invoice is overdue.
    app = ws.app()
    unpaid = json.loads(ws.ok("invoices", "list", "--unpaid", "--json"))
    with app.session() as s:
        later = overdue(s, app.cfg.tz, clock.now() + timedelta(days=40), unpaid_days=30)
    assert sorted(r["invoice"] for r in later.unpaid) == sorted(d["number"] for d in unpaid)
    assert all(r["age_days"] >= 40 for r in later.unpaid)


# --- the sums themselves -------------------------------------------------------------------------

amounts = st.lists(st.decimals(min_value=D("-99999999.999999"), max_value=D("99999999.999999"), places=6),
                   min_size=1, max_size=40)


@pytest.fixture
def amounts_table(database_url):
    """A scratch table with one Amount column (text on SQLite, NUMERIC on PostgreSQL), as the models keep money."""
    from caturactl.core.db import Amount, make_engine
    engine = make_engine(database_url)
    table = Table("scratch_amounts", MetaData(), Column("a", Amount))
    table.create(engine)

    def total(xs: list[D]) -> D:
        with engine.begin() as c:
            c.execute(table.delete())
            c.execute(table.insert(), [{"a": x} for x in xs])
            return c.scalar(select(money_sum(table.c.a)))
    yield total
    engine.dispose()


def test_money_sum_is_exact_where_floats_are_not(amounts_table):
    # 0.1 + 0.2 in floating point is 0.30000000000000004; a thousand cents add up to 10.00.
    assert amounts_table([D("0.1"), D("0.2")]) == D("0.30")
    assert amounts_table([D("0.01")] * 1000) == D("10.00")
    assert amounts_table([D("19.99"), D("-19.99")]) == D("0.00")
    assert amounts_table([D("12345678.123456"), D("0.000001")]) == D("12345678.123457")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(xs=amounts)
def test_money_sum_equals_the_decimal_sum(amounts_table, xs):
    assert amounts_table(xs) == tidy(sum(xs, D(0)))


def test_a_difference_is_open_until_the_books_explain_it():
    assert difference_open("no_invoice", D("30.00"), None, None)
    assert not difference_open("no_invoice", D("30.00"), D("30.00"), None)  # the invoice came
    assert difference_open("amount_differs", D("29.00"), D("30.00"), None)
    assert not difference_open("amount_differs", D("29.00"), D("30.00"), D("1.00"))  # credited the euro
    assert difference_open("unknown_order", D("5.00"), None, None)
    assert difference_open("refund_without_credit_note", D("-10.00"), D("30.00"), None)
    assert not difference_open("refund_without_credit_note", D("-10.00"), D("30.00"), D("10.00"))
    assert difference_open("refund_differs", D("-10.00"), D("30.00"), D("9.00"))
