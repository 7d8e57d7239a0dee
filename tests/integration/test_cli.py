"""The command line as a user meets it: set-up, listings for scripts, and bad input."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from caturactl.catalogue.models import Product
from caturactl.orders.models import Order

ORDER_KEYS = ["number", "date", "channel", "customer", "state", "hold_reason", "total", "carrier", "tracking", "invoice"]


def test_init_then_upgrade_on_a_fresh_folder(tmp_path, database_url, monkeypatch, capsys):
    from caturactl import migrations
    from caturactl.cli import main
    monkeypatch.chdir(tmp_path)
    assert main(["init", "--database-url", database_url]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and f"database ready (schema {migrations.head()})" in out
    assert (tmp_path / "caturactl.toml").exists() and (tmp_path / "jobs.toml").exists()
    assert main(["init"]) == 0 and "kept existing" in capsys.readouterr().out
    assert main(["db", "upgrade"]) == 0 and f"already at {migrations.head()}" in capsys.readouterr().out
    assert main(["orders", "list", "--json"]) == 0 and json.loads(capsys.readouterr().out) == []


def test_the_console_script_runs_and_maps_errors_to_exit_codes(tmp_path):
    from pathlib import Path
    exe = str(Path(sys.executable).parent / "caturactl")
    r = subprocess.run([exe, "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and "caturactl" in r.stdout
    r = subprocess.run([exe, "orders", "list"], capture_output=True, text=True, cwd=tmp_path,
                       env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 78 and "no configuration file" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([exe, "orders", "frobnicate"], capture_output=True, text=True)
    assert r.returncode == 2 and "No such command" in r.stderr


def test_orders_list_json_and_csv_have_the_table_columns(workspace, standin):
    workspace.load_catalogue()
    assert workspace.run("import", "amazon").code == 0
    rows = json.loads(workspace.ok("orders", "list", "--json"))
    assert len(rows) == len(standin.visible_orders())
    assert all(list(r) == ORDER_KEYS for r in rows)
    held = json.loads(workspace.ok("orders", "list", "--state", "on_hold", "--json"))
    assert held and all(r["state"] == "on_hold" and r["hold_reason"] for r in held)
    assert json.loads(workspace.ok("orders", "list", "--format", "json", "--limit", "3")) == rows[:3]
    reader = list(csv.reader(io.StringIO(workspace.ok("orders", "list", "--format", "csv"))))
    assert reader[0] == ORDER_KEYS and len(reader) == len(rows) + 1
    one = rows[5]
    assert [r["number"] for r in json.loads(workspace.ok("orders", "list", "--search", one["number"], "--json"))] \
        == [one["number"]]
    table = workspace.ok("orders", "list", "--limit", "5")
    assert "Order" in table and "Hold reason" in table
    month = json.loads(workspace.ok("orders", "list", "--month", "2026-11", "--json"))
    assert len(month) == len(rows)
    assert json.loads(workspace.ok("orders", "list", "--month", "2026-10", "--json")) == []
    name = rows[0]["customer"].rsplit(" (", 1)[0]
    assert rows[0]["number"] in [r["number"] for r in json.loads(
        workspace.ok("orders", "list", "--customer", name, "--json"))]


def test_order_show_tells_the_whole_story(workspace, standin):
    workspace.load_catalogue()
    assert workspace.run("import", "amazon").code == 0
    number = json.loads(workspace.ok("orders", "list", "--state", "on_hold", "--json"))[0]["number"]
    shown = json.loads(workspace.ok("orders", "show", number, "--json"))
    assert shown["lines"] and shown["tickets"][0]["status"] == "open"
    kinds = [e["kind"] for e in shown["events"]]
    assert kinds[0] == "state_changed" and "ticket_opened" in kinds and "customer_matched" in kinds
    assert all(e["actor"] == "cli:import amazon" for e in shown["events"])
    text = workspace.ok("orders", "show", number)
    assert "History" in text and number in text
    r = workspace.run("orders", "show", "999-0000000-0000000")
    assert r.code == 66 and "no order" in r.err


def test_csv_output_is_guarded_against_formulas(bare_workspace):
    path = bare_workspace.path / "products.csv"
    path.write_text("sku,title\nSKU-1,=HYPERLINK(\"http://x\")\nSKU-2,+49 Gartenschlauch\n", encoding="utf-8")
    bare_workspace.ok("products", "import", "products.csv")
    out = bare_workspace.ok("products", "list", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows[0]["title"] == "'=HYPERLINK(\"http://x\")" and rows[1]["title"] == "'+49 Gartenschlauch"


def test_a_products_file_with_one_bad_line_changes_nothing(bare_workspace):
    path = bare_workspace.path / "products.csv"
    path.write_text("sku,title,weight_g\nA,Schere,120\nB,Hacke,zwölf\nC,Rechen,900\n", encoding="utf-8")
    r = bare_workspace.run("products", "import", "products.csv")
    assert r.code == 65 and "products.csv:3:weight_g: not a whole number from 0 to 1000000: 'zwölf'" in r.err
    with bare_workspace.app().session() as s:
        assert s.scalar(select(func.count()).select_from(Product)) == 0


def test_a_bad_database_url_is_one_line(bare_workspace, monkeypatch):
    monkeypatch.setenv("CATURACTL_DATABASE_URL", "nosuchdb://x/y")
    r = bare_workspace.run("orders", "list")
    assert r.code == 78 and "database.url" in r.err and "Traceback" not in r.err
    monkeypatch.setenv("CATURACTL_DATABASE_URL", "postgresql+psycopg://nobody:pw@127.0.0.1:1/none")
    r = bare_workspace.run("orders", "list")
    assert r.code == 69 and "cannot open the database" in r.err and "pw" not in r.err


def test_an_unmigrated_database_says_run_db_upgrade(tmp_path, monkeypatch, capsys):
    from caturactl.cli import main
    (tmp_path / "caturactl.toml").write_text('[database]\nurl = "sqlite:///fresh.db"\n')
    monkeypatch.chdir(tmp_path)
    assert main(["orders", "list"]) == 78
    assert "run 'caturactl db upgrade'" in capsys.readouterr().err


def test_an_unreadable_config_is_one_line(tmp_path, monkeypatch, capsys):
    from caturactl.cli import main
    (tmp_path / "caturactl.toml").write_text('[amazon]\nmarketplaces = ["DE", "ZZ"]\n')
    monkeypatch.chdir(tmp_path)
    assert main(["orders", "list"]) == 78
    err = capsys.readouterr().err
    assert "caturactl.toml: amazon.marketplaces" in err and "unknown Amazon marketplace 'ZZ'" in err


def test_dry_run_resolution_changes_nothing(workspace, standin):
    workspace.load_catalogue()
    assert workspace.run("import", "amazon").code == 0
    t = json.loads(workspace.ok("tickets", "list", "--json"))[0]
    out = workspace.ok("tickets", "resolve", t["ticket"], "--release", "--note", "x", "--dry-run")
    assert "DRY RUN" in out.splitlines()[0]
    assert json.loads(workspace.ok("tickets", "list", "--json"))[0]["status"] == "open"
    with workspace.app().session() as s:
        assert s.scalar(select(func.count()).select_from(Order).where(Order._state == "on_hold")) > 0


def test_the_standin_starts_from_the_checkout(tmp_path):
    from pathlib import Path

    import httpx
    exe = str(Path(sys.executable).parent / "caturactl")
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([exe, "standins", "amazon", "--port", "0", "--orders", "7", "--seed", "3"],
                            cwd=root / "docs" if (root / "docs").is_dir() else root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert "stand-in on http://127.0.0.1:" in first
        url = first.rsplit(" ", 1)[1].strip()
        assert httpx.get(url + "/_standin/stats", timeout=5).json()["calls"]["searchOrders"] == 0
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_table_shows_a_screenful_and_says_so(workspace, standin):
    workspace.load_catalogue()
    assert workspace.run("import", "amazon").code == 0
    total = len(standin.visible_orders())
    out = workspace.ok("orders", "list")
    assert f"Orders (100 of {total})" in out and "showing the newest 100" in out
    assert len(json.loads(workspace.ok("orders", "list", "--json"))) == total
    assert f"Orders ({total})" in workspace.ok("orders", "list", "--limit", "1000")


def test_init_into_a_folder_that_cannot_be_written_is_one_line(tmp_path, capsys):
    from caturactl.cli import main
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    assert main(["init", "--dir", str(blocked / "sub")]) == 65
    err = capsys.readouterr().err
    assert "cannot write there" in err and "Traceback" not in err


def test_every_job_in_the_example_jobs_toml_is_a_real_command(capsys):
    import shlex
    import tomllib
    from pathlib import Path

    from caturactl.cli import main
    jobs = tomllib.loads((Path(__file__).resolve().parents[2] / "jobs.toml").read_text(encoding="utf-8"))["jobs"]
    assert {"import-amazon", "route", "ship-export", "ship-collect", "outbox-send", "ship-overdue",
            "invoices-create", "invoices-feeds", "reviews-request"} <= set(jobs)
    for name, job in jobs.items():
        words = [w for w in shlex.split(job["command"]) if not w.startswith("-")]
        words = [w for w in words if not w.replace(".", "").isdigit()]
        assert main([*words, "--help"]) == 0, name
    capsys.readouterr()


# --- init: what invoices need and the template cannot know ------------------------------------


def _init_on_a_terminal(*args: str, typed: str = "") -> subprocess.CompletedProcess:
    """``caturactl init ARGS`` in a child process whose stdin is a real pseudo-terminal (init asks
    only there), with ``typed`` already typed into it; nothing of init itself is replaced."""
    master, slave = os.openpty()
    try:
        if typed:
            os.write(master, typed.encode())
        return subprocess.run([sys.executable, "-m", "caturactl", "init", *args], stdin=slave, capture_output=True,
                              text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])
    finally:
        os.close(slave)
        os.close(master)


def test_init_asks_for_the_seller_contact_the_legal_data_and_oss(tmp_path):
    from caturactl.config import load
    answers = ["Erika Buchhalter", "12", "+49 221 123456", "erika@", "erika@handel.example", "gmbh",
               "Amtsgericht Köln", "HRB 12345", "Erika Muster, Max Muster", "y"]
    r = _init_on_a_terminal("--dir", str(tmp_path), "--no-db", typed="\n".join(answers) + "\n")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "not a phone number: '12'" in out and "not an e-mail address: 'erika@'" in out  # asked again
    cfg = load(tmp_path / "caturactl.toml", environ={})
    c = cfg.company
    assert (c.contact, c.phone, c.email) == ("Erika Buchhalter", "+49 221 123456", "erika@handel.example")
    assert (c.legal_form, c.register_court, c.register_number, c.managing_directors) == \
        ("GmbH", "Amtsgericht Köln", "HRB 12345", "Erika Muster, Max Muster")
    assert cfg.tax.oss is True
    assert c.legal_lines() == ("Sitz der Gesellschaft: Berlin", "Registergericht: Amtsgericht Köln", "HRB 12345",
                               "Geschäftsführer: Erika Muster, Max Muster")
    text = (tmp_path / "caturactl.toml").read_text(encoding="utf-8")
    assert 'register_number = "HRB 12345"  # e.g. "HRB 12345"' in text  # the template's comment stays


def test_init_takes_the_answers_from_options_and_asks_a_sole_trader_no_register(tmp_path, capsys):
    from caturactl.cli import main
    from caturactl.config import load
    # On a terminal with nothing typed: a question would wait until the timeout and fail the test.
    r = _init_on_a_terminal("--dir", str(tmp_path), "--no-db", "--contact", "Jonas Beispiel", "--phone",
                            "+49 30 1234567", "--email", "jonas@beispiel.example", "--legal-form",
                            "Einzelunternehmen", "--no-oss")
    assert r.returncode == 0, r.stderr
    cfg = load(tmp_path / "caturactl.toml", environ={})
    assert (cfg.company.contact, cfg.company.legal_form, cfg.company.register_court) == \
        ("Jonas Beispiel", "Einzelunternehmen", "")
    assert cfg.tax.oss is False and cfg.company.legal_lines() == ()
    assert main(["init", "--dir", str(tmp_path / "x"), "--no-db", "--email", "kein-at"]) == 2
    assert "not an e-mail address: 'kein-at'" in capsys.readouterr().err
    # A GmbH without its register data is written, and told what its invoices lack.
    assert main(["init", "--dir", str(tmp_path / "gmbh"), "--no-db", "--no-input", "--legal-form", "gmbh",
                 "--register-court", "Amtsgericht Köln"]) == 0
    assert "note: invoices of a GmbH must name its register_number, managing_directors" in \
        " ".join(capsys.readouterr().out.split())
    assert load(tmp_path / "gmbh" / "caturactl.toml", environ={}).company.legal_form == "GmbH"


def test_init_without_a_terminal_asks_nothing(tmp_path, capsys):
    from caturactl.cli import main
    from caturactl.config import load
    assert main(["init", "--dir", str(tmp_path), "--no-db"]) == 0
    cfg = load(tmp_path / "caturactl.toml", environ={})
    assert (cfg.company.contact, cfg.company.legal_form, cfg.tax.oss) == ("", "", False)


# --- invoices pdf --xrechnung: a second rendition of an issued invoice ---------------------------


def _issued_without_contact():
    from datetime import date
    from decimal import Decimal as D

    from caturactl.ports import InvoiceDocument, InvoiceItem, InvoiceParty, TaxBreakdown
    seller = InvoiceParty(name="Test Handel GmbH", street="Lagerweg 7", postal_code="50667", city="Köln",
                          country="DE", vat_id="DE123456789", email="buchhaltung@test-handel.example")
    buyer = InvoiceParty(name="Jonas Becker", company="Becker & Söhne KG", street="Industriestr. 8",
                         postal_code="50667", city="Köln", country="DE", vat_id="DE987654321",
                         email="rechnungseingang@becker-soehne.de")
    item = InvoiceItem(1, "KAF-1", "Espressobohnen 1 kg", D(2), D("20.9244"), D("41.85"), "S", D(19))
    return InvoiceDocument(
        number="RE2025-000007", type_code=380, issue_date=date(2025, 3, 3), supply_date=date(2025, 3, 2),
        currency="EUR", seller=seller, buyer=buyer, ship_to=None, items=(item,),
        taxes=(TaxBreakdown("S", D(19), D("41.85"), D("7.95")),), net_total=D("41.85"), tax_total=D("7.95"),
        gross_total=D("49.80"), prepaid=D("49.80"), due=D(0), order_id="302-7", order_date=date(2025, 3, 1),
        channel="Amazon.de", customer_number="K000007", payment_terms="Der Betrag wurde über Amazon.de bezahlt.",
        paid_through_channel=True)


def _store(ws, doc) -> None:
    from datetime import UTC, datetime

    from caturactl.billing.invoicing import to_json
    from caturactl.billing.models import Invoice
    from caturactl.core.lifecycle import OrderState, transition
    t = datetime(2025, 3, 1, tzinfo=UTC)
    with ws.app().session() as s:
        order = Order(channel="amazon", external_id=doc.order_id, created_at=t, remote_updated_at=t)
        s.add(order)
        transition(s, order, OrderState.IMPORTED, "test")
        s.add(Invoice(number=doc.number, kind="invoice", series="RE", year=2025, seq=7, order=order,
                      issue_date=doc.issue_date, supply_date=doc.supply_date, currency="EUR",
                      net_total=doc.net_total, tax_total=doc.tax_total, gross_total=doc.gross_total,
                      document=to_json(doc), pdf=b"%PDF-as-issued", xml=b"<as-issued/>"))
        s.commit()


def test_xrechnung_of_an_invoice_issued_before_the_contact_takes_todays_contact(bare_workspace):
    from lxml import etree

    from caturactl.billing.invoicing import find
    ws = bare_workspace
    ws.write_config(company='[company]\nname = "Test Handel GmbH"\ncontact = "Erika Buchhalter"\n'
                            'phone = "+49 221 123456"\nemail = "rechnung@test-handel.example"\n')
    issued = _issued_without_contact()
    _store(ws, issued)
    r = ws.run("invoices", "pdf", issued.number, "--xrechnung", "-o", "x.xml")
    assert r.code == 0, r.err
    # The issued e-mail stays; the name and phone it lacked come from caturactl.toml, and stderr says so.
    assert "RE2025-000007: the issued invoice has no seller contact, phone; the XRechnung takes them from " \
           "caturactl.toml [company] (the stored invoice and its PDF are unchanged)" in " ".join(r.err.split())
    ram = {"ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"}
    contact = etree.parse(str(ws.path / "x.xml")).find(".//ram:SellerTradeParty/ram:DefinedTradeContact", ram)
    assert [contact.findtext(p, namespaces=ram) for p in (
        "ram:PersonName", "ram:TelephoneUniversalCommunication/ram:CompleteNumber",
        "ram:EmailURIUniversalCommunication/ram:URIID")] == \
        ["Erika Buchhalter", "+49 221 123456", "buchhaltung@test-handel.example"]
    with ws.app().session() as s:
        stored = find(s, issued.number)
        assert stored.document["seller"]["contact"] == "" and stored.document["seller"]["phone"] == ""
        assert (stored.pdf, stored.xml) == (b"%PDF-as-issued", b"<as-issued/>")
    assert "a second rendition of the issued invoice" in " ".join(ws.ok("invoices", "pdf", "--help").split())


def test_xrechnung_without_any_seller_contact_names_the_keys_to_set(bare_workspace):
    ws = bare_workspace
    _store(ws, _issued_without_contact())
    r = ws.run("invoices", "pdf", "RE2025-000007", "--xrechnung")
    assert r.code == 78
    assert "caturactl.toml: company" in r.err and "set contact, phone" in " ".join(r.err.split())
    assert not (ws.path / "RE2025-000007-xrechnung.xml").exists()
