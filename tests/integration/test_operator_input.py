"""Hostile partners and careless operators (issue 14): what a person types is checked at the door,
text from outside is printed as text, every CSV a person may open is guarded against formulas,
and the SQLite database is the owner's alone and says what to do when it is locked."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import stat
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from caturactl.core import clock
from caturactl.outbox.models import OutboxMessage
from caturactl.billing.models import Invoice
from caturactl.customers.models import Customer
from caturactl.orders.models import Order
from caturactl.orders.tickets import Ticket
from caturactl.core.spreadsheet import guard_formula
from connectors.datev.extf import BOOKING_CAPTIONS, DEBTOR_CAPTIONS, BatchHeader, Booking, Debtor, write_debtors, \
    write_extf
from tests import fulfilment
from tests.conftest import DB_KIND

BIG = "99999999999999999999999"  # beyond a 64-bit integer, let alone an id


@pytest.fixture
def standin():
    """A small day at Amazon: a dozen orders are enough here, and quick to ship and invoice."""
    from standins.amazon import AmazonStandin
    s = AmazonStandin(orders=12, seed=11, day="2026-11-24", rate_scale=500.0).start()
    clock.install(s.clock)
    yield s
    s.stop()


# Every command of 'caturactl --help' and each of its options that takes a value, with a value a
# careless or hostile operator may type, and the exit code that must come back: 2 for a usage
# error, 65 for bad input, 66 for a reference nothing can have, 78 for a configuration.
BAD_INPUT = [
    ("alerts", "check", "--ticket-hours", "99999999999999999999", 2),
    ("alerts", "check", "--ticket-hours", "nan", 2),
    ("alerts", "check", "--ticket-hours", "inf", 2),
    ("carriers", "choose", BIG, 66),
    ("carriers", "choose", "²³", 66),
    ("customers", "list", "--limit", BIG, 2),
    ("customers", "merge", "K²", "K1", 66),
    ("customers", "merge", "K1", f"K{BIG}", 66),
    ("customers", "show", "K²", 66),
    ("customers", "show", "²³", 66),
    ("customers", "show", f"K{BIG}", 66),
    ("db", "upgrade", "--revision", "¹", 78),
    ("deliveries", "list", "--limit", BIG, 2),
    ("deliveries", "list", "--state", "[red]x", 65),
    ("deliveries", "show", "L²³⁷", 66),
    ("deliveries", "show", f"L{BIG}", 66),
    ("deliveries", "show", BIG, 66),
    ("export", "bookings", "--from", "0001-01-01", "--to", "0001-12-31", 65),
    ("export", "bookings", "--from", "2026-01-01", "--to", "9999-12-31", 65),
    ("export", "bookings", "--from", "2026-02-30", "--to", "2026-03-31", 65),
    ("export", "bookings", "--from", "2026-01-01", "--to", "2026-01-31", "--bom", 2),
    ("import", "amazon", "--since", "0001-01-01", 65),
    ("import", "amazon", "--since", "9999-12-31T23:59:59", 65),
    ("import", "amazon", "--max-minutes", "nan", 2),
    ("import", "amazon", "--max-minutes", "1e308", 2),
    ("init", "--dir", "sub", "--database-url", "sqlite:///sub.db?timeout=nan", 78),
    ("invoices", "create", "--limit", BIG, 2),
    ("invoices", "create", "--jobs", BIG, 2),
    ("invoices", "credit", "RE2026-000001", "--lines", "1:-1", "--reason", "x", 65),
    ("invoices", "credit", "RE2026-000001", "--lines", "1:0.5", "--reason", "x", 65),
    ("invoices", "credit", "RE2026-000001", "--lines", "1:NaN", "--reason", "x", 65),
    ("invoices", "credit", "RE2026-000001", "--lines", "1:Infinity", "--reason", "x", 65),
    ("invoices", "credit", "RE2026-000001", "--lines", "1:1e999999999", "--reason", "x", 65),
    ("invoices", "credit", "RE2026-000001", "--lines", "²:1", "--reason", "x", 65),
    ("invoices", "credit", "RE2026-000001", "--lines", f"{BIG}:1", "--reason", "x", 65),
    ("invoices", "credit", "RE2026-000001", "--lines", f"1:{BIG}", "--reason", "x", 65),
    ("invoices", "credit", "RE2026-000001", "--lines", "", "--reason", "x", 65),
    ("invoices", "credit", "RE2026-000001", "--lines", "1,1:1", "--reason", "x", 65),
    ("invoices", "list", "--month", "9999-12", 65),
    ("invoices", "list", "--month", "0001-01", 65),
    ("invoices", "list", "--json", "--format", "csv", 2),
    ("invoices", "pdf", "RE2026-000001", "--xml", "--xrechnung", 2),
    ("invoices", "resend", "[bold]RE1", 66),
    ("invoices", "show", "²", 66),
    ("jobs", "daemon", "--max-parallel", BIG, 2),
    ("jobs", "history", "x", "--limit", BIG, 2),
    ("jobs", "show", BIG, 2),
    ("orders", "list", "--since", "0001-01-01", 65),
    ("orders", "list", "--month", "9999-12", 65),
    ("orders", "list", "--customer", f"K{BIG}", 0),
    ("orders", "list", "--customer", "K²", 0),
    ("orders", "list", "--limit", BIG, 2),
    ("orders", "show", BIG, 66),
    ("orders", "show", "²", 66),
    ("outbox", "done", BIG, "--reason", "x", 66),
    ("outbox", "done", "²", "--reason", "x", 66),
    ("outbox", "done", "1", "--reason", " ", 65),
    ("outbox", "list", "--limit", BIG, 2),
    ("outbox", "retry", BIG, 66),
    ("outbox", "retry", "²", 66),
    ("outbox", "retry", "--all-failed", "--resend", 2),
    ("outbox", "show", BIG, 66),
    ("outbox", "show", "²", 66),
    ("products", "list", "--json", "--format", "csv", 2),
    ("report", "cockpit", "--limit", "99999999999999999999", 2),
    ("report", "finance", "--month", "9999-12", 65),
    ("report", "overdue", "--unpaid-days", "999999999999", 2),
    ("report", "sales", "--month", "0001-01", 65),
    ("report", "sales", "--top", BIG, 2),
    ("report", "sales", "--slow-max-units", BIG, 2),
    ("report", "stock", "--json", "--format", "csv", 2),
    ("reviews", "list", "--json", "--format", "csv", 2),
    ("route", "--limit", BIG, 2),
    ("settlement", "fetch", "--days", BIG, 2),
    ("settlement", "show", "²", 66),
    ("settlement", "show", BIG, 66),
    ("ship", "export", "--limit", BIG, 2),
    ("standins", "amazon", "--port", BIG, 65),
    ("standins", "amazon", "--port", "x", 2),
    ("stock", "list", "--json", "--format", "csv", 2),
    ("tickets", "resolve", "T2", "--release", "--cancel", "--note", "x", 2),
    ("tickets", "resolve", "T2", "--close", "--release", "--note", "x", 2),
    ("tickets", "resolve", "T2", "--note", "x", 2),
    ("tickets", "resolve", "T²", "--release", "--note", "x", 66),
    ("tickets", "resolve", f"T{BIG}", "--release", "--note", "x", 66),
    ("tickets", "show", f"T{BIG}", 66),
    ("tickets", "show", "²", 66),
]


@pytest.mark.parametrize("case", BAD_INPUT, ids=lambda c: " ".join(map(str, c)))
def test_bad_operator_input_is_a_usage_or_input_error_never_an_internal_one(bare_workspace, case):
    *args, code = case
    r = bare_workspace.run(*args)
    said = r.out + r.err
    assert "Traceback" not in said and "internal error" not in said, said
    assert r.code == code, said


# --- checked at the door, on real data ----------------------------------------------------------


def test_release_and_cancel_at_once_are_refused_and_the_order_stays_on_hold(workspace):
    ws = workspace
    ws.load_catalogue()
    ws.ok("import", "amazon")
    [ticket, *_] = json.loads(ws.ok("tickets", "list", "--json"))
    r = ws.run("tickets", "resolve", ticket["ticket"], "--release", "--cancel", "--note", "both?")
    assert r.code == 2 and "--release and --cancel exclude each other" in r.err
    order = json.loads(ws.ok("orders", "show", ticket["order"], "--json"))
    assert order["state"] == "on_hold" and order["tickets"][0]["status"] == "open"


def test_a_credit_note_counts_whole_pieces_and_a_bad_quantity_credits_nothing(workspace, tmp_path):
    ws = workspace
    fulfilment.ship_everything(ws, tmp_path)
    [number, *_] = json.loads(ws.ok("invoices", "create", "--json"))["numbers"]
    app = ws.app()

    def credited() -> list[Invoice]:
        with app.session() as s:
            return s.scalars(select(Invoice).where(Invoice.kind == "credit_note")).all()

    # -1 was the parser's own marker for "the whole position": it credited everything.
    for bad in ("1:-1", "1:0.5", "1:NaN", "1:0", "1:+1", "1: 1e0"):
        r = ws.run("invoices", "credit", number, "--lines", bad, "--reason", "Retoure")
        assert r.code == 65 and "--lines" in r.err and "internal error" not in r.err, (bad, r.err)
    assert credited() == []
    # A position alone: all of it not yet credited.
    ws.ok("invoices", "credit", number, "--lines", "1", "--reason", "Retoure")
    [credit] = credited()
    assert [i["position"] for i in credit.document["items"]] == [1]


def test_marking_a_refused_message_as_arrived_needs_force_and_a_reason(bare_workspace, smtp_server):
    from caturactl.outbox.service import enqueue
    ws = bare_workspace
    ws.write_config(extra="[mail]\n" f"host = \"127.0.0.1\"\nport = {smtp_server.port}\nsecurity = \"none\"\n"
                          "from_address = \"shop@example.org\"\n")
    app = ws.app()
    with app.session() as s:
        enqueue(s, "email:test:1", "email", "customer", {"to": ["kunde@example.com"], "subject": "Ihre Bestellung",
                                                         "body": "Hallo\n"})
        s.commit()
        msg_id = s.scalar(select(OutboxMessage.id))
    smtp_server.fail_next(550, stage="rcpt")
    assert ws.run("outbox", "send").code == 69

    r = ws.run("outbox", "done", str(msg_id), "--reason", "it must have arrived")
    assert r.code == 70 and "did not arrive" in r.err and "550" in r.err and "--force" in r.err
    assert ws.run("outbox", "done", str(msg_id), "--force", "--reason", "  ").code == 65
    ws.ok("outbox", "done", str(msg_id), "--force", "--reason", "sent it by hand from the shop's mailbox")
    with app.session() as s:
        assert s.get(OutboxMessage, msg_id).status == "done"
    assert smtp_server.messages == []


# --- text from outside is printed as text ---------------------------------------------------------

HIDDEN = "[white on white]hidden[/white on white] back door"
LINK = "[link=https:attacker.invalid]click[/link]"


def test_a_buyers_markup_is_shown_as_typed_in_tables_records_and_tickets(workspace, standin):
    ws = workspace
    order = standin.visible_orders()[0]
    placed = datetime.fromisoformat(order["createdTime"].replace("Z", "+00:00"))
    standin.change_order(order["orderId"], address={"name": f"{LINK} :warning:"}, instruction=HIDDEN,
                         at=placed + timedelta(minutes=1))
    ws.load_catalogue()
    ws.ok("import", "amazon")
    shown = ws.ok("orders", "show", order["orderId"])
    assert f"delivery instructions  {HIDDEN}" in shown and f"{LINK} :warning:," in shown
    assert "\x1b]8;" not in shown and "⚠" not in shown  # no terminal hyperlink, no emoji
    assert f"delivery instructions: '{HIDDEN[:20]}" in ws.ok("tickets", "list")
    assert f"delivery instructions: '{HIDDEN}'" in ws.ok("tickets", "show", "T1")
    assert "delivery instructions: '[white on" in ws.ok("orders", "list", "--state", "on_hold")


def test_a_partners_file_name_and_our_own_brackets_survive_in_tickets_and_errors(bare_workspace, tmp_path):
    ws = bare_workspace
    for folder in ("wh", "ful"):
        (tmp_path / folder / "out").mkdir(parents=True)
    transports = fulfilment.folder_transport("wh", tmp_path / "wh") + fulfilment.folder_transport("ful", tmp_path / "ful")
    ws.write_config(extra=fulfilment.carrier_section() + fulfilment.locations() + transports,
                    company=fulfilment.COMPANY)
    (tmp_path / "wh" / "out" / "SHP_[bold red]X.csv").write_text("no;columns\n1;2\n", encoding="utf-8")
    r = ws.run("ship", "collect")
    assert r.code == 65 and "SHP_[bold red]X.csv" in r.out
    assert "SHP_[bold red]X.csv" in ws.ok("tickets", "list")
    assert "order        SHP_[bold red]X.csv" in ws.ok("tickets", "show", "T1")
    # Our own messages name sections in brackets: the error line keeps them.
    ws.write_config(extra=fulfilment.carrier_section() + fulfilment.locations(ful_transport="nowhere")
                    + fulfilment.folder_transport("wh", tmp_path / "wh"), company=fulfilment.COMPANY)
    r = ws.run("orders", "list")
    assert r.code == 78 and "locations.FUL.transport: no [transports.nowhere] section" in r.err


def test_an_error_quoting_what_was_typed_keeps_its_brackets(bare_workspace):
    r = bare_workspace.run("invoices", "show", "[red]RE1[/red]")
    assert r.code == 66 and "no invoice '[red]RE1[/red]'" in r.err


# --- every CSV a person may open ------------------------------------------------------------------


@pytest.mark.parametrize("value, written", [
    ("=1+1", "'=1+1"), ("@SUM(1+1)", "'@SUM(1+1)"), ("+49 221", "'+49 221"), ("-1+2", "'-1+2"),
    ("-A1", "'-A1"), ("\tx", "'\tx"), ("-12.50", "-12.50"), ("-3", "-3"), ("-0,5", "-0,5"),
    ("Müller", "Müller"), ("12-3", "12-3"),
])
def test_a_formula_gets_the_apostrophe_and_a_negative_number_stays_a_number(value, written):
    assert guard_formula(value) == written


HEADER = BatchHeader(consultant_number=29098, client_number=55003, fiscal_year_start=datetime(2026, 1, 1).date(),
                     account_length=4, date_from=datetime(2026, 10, 1).date(), date_to=datetime(2026, 10, 31).date(),
                     description="caturactl", created_at=datetime(2026, 11, 2, 9, 30), initials="CT")


def _datev_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(data.decode("cp1252").split("\r\n")[2:-1], delimiter=";"))


def test_datev_debtors_and_bookings_guard_formulas_in_text(tmp_path):
    out = io.BytesIO()
    write_debtors(HEADER, [Debtor(account="10001", name="=1+1", first_name="@SUM(1+1)", street="-2+3",
                                  postal_code="50667", city="+Köln", country="DE")], out)
    [row] = _datev_rows(out.getvalue())
    by = dict(zip(DEBTOR_CAPTIONS, row))
    assert (by["Name (Adressattyp natürl. Person)"], by["Vorname (Adressattyp natürl. Person)"], by["Straße"],
            by["Ort"], by["Postleitzahl"]) == ("'=1+1", "'@SUM(1+1)", "'-2+3", "'+Köln", "50667")
    out = io.BytesIO()
    write_extf(HEADER, [Booking(amount=Decimal("12.50"), debit_credit="H", account="10001", contra_account="8400",
                                date=datetime(2026, 10, 3).date(), document="RK2026-000001", text="=HYPERLINK(1)",
                                order_id="@cmd")], out, automatic_accounts=())
    [row] = _datev_rows(out.getvalue())
    by = dict(zip(BOOKING_CAPTIONS, row))
    assert by["Buchungstext"] == "'=HYPERLINK(1)" and row[0] == "12,50" and "'@cmd" in row


def test_export_customers_writes_a_buyers_formula_as_text(bare_workspace):
    ws = bare_workspace
    ws.write_config(extra="[accounts]\ndatev_consultant = 29098\ndatev_client = 55003\n", company=fulfilment.COMPANY)
    with ws.app().session() as s:
        s.add_all([Customer(name="=1+1"), Customer(name="@SUM(1+1)"), Customer(name="Jürgen Müller")])
        s.commit()
    ws.ok("export", "customers", "-o", "debitoren.csv")
    names = [dict(zip(DEBTOR_CAPTIONS, r))["Name (Adressattyp natürl. Person)"]
             for r in _datev_rows((ws.path / "debitoren.csv").read_bytes())]
    assert names == ["'=1+1", "'@SUM(1+1)", "Jürgen Müller"]


# --- the SQLite database ------------------------------------------------------------------------------


@pytest.mark.skipif(DB_KIND != "sqlite", reason="file modes and the write lock are SQLite's")
def test_init_creates_the_database_and_its_config_for_the_owner_alone(tmp_path, monkeypatch, capsys):
    from caturactl.cli import main
    monkeypatch.chdir(tmp_path)
    old = os.umask(0o022)  # the usual one, which leaves new files readable by everyone
    try:
        assert main(["init"]) == 0
        db = tmp_path / "caturactl.db"
        with sqlite3.connect(db) as conn:  # a write in WAL mode: the -wal and -shm files exist now
            conn.execute("CREATE TABLE t (x)")
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.glob("caturactl.db*")}
    finally:
        os.umask(old)
    assert set(modes) == {"caturactl.db", "caturactl.db-wal", "caturactl.db-shm"}
    assert set(modes.values()) == {0o600}, modes
    assert stat.S_IMODE((tmp_path / "caturactl.toml").stat().st_mode) == 0o600


@pytest.mark.skipif(DB_KIND != "sqlite", reason="file modes and the write lock are SQLite's")
def test_a_database_another_writer_holds_says_what_to_do(bare_workspace):
    ws = bare_workspace
    ws.database_url += "?timeout=0.2"  # not 30 s: the test waits for the lock to time out
    ws.write_config()
    (ws.path / "products.csv").write_text("sku,title\nSKU-1,Teekanne\n", encoding="utf-8")
    holder = sqlite3.connect(ws.database_url.removeprefix("sqlite:///").split("?")[0], isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # a job in the middle of its write
    try:
        r = ws.run("products", "import", "products.csv")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert r.code == 69 and "database is locked" in r.err
    assert "another caturactl command or job is writing" in r.err and "caturactl jobs list" in r.err
    ws.ok("products", "import", "products.csv")


def test_an_order_lookup_by_id_still_works_after_the_id_check(workspace):
    ws = workspace
    ws.load_catalogue()
    ws.ok("import", "amazon")
    with ws.app().session() as s:
        order = s.scalars(select(Order).order_by(Order.id)).first()
        ticket = s.scalars(select(Ticket).order_by(Ticket.id)).first()
        oid, ext, tid = order.id, order.external_id, ticket.id
    assert json.loads(ws.ok("orders", "show", str(oid), "--json"))["number"] == ext
    assert json.loads(ws.ok("tickets", "show", str(tid), "--json"))["ticket"] == f"T{tid}"
    assert json.loads(ws.ok("customers", "show", "K000001", "--json"))["number"] == "K000001"
