"""Settlements reconciled against invoices to the cent; a broken file stores nothing."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from caturactl.model import Invoice, Settlement, SettlementDifference
from caturactl.settlement import kind_of, reconcile
from tests import fulfilment

SAMPLE = Path(__file__).parent / "data" / "settlement_v2_flatfile_DE_composed.tsv"


@pytest.fixture
def standin():
    from standins.amazon import AmazonStandin
    s = AmazonStandin(orders=60, seed=11, day="2026-11-24", rate_scale=2000.0).start()
    yield s
    s.stop()


def test_the_reference_sample_imports_with_every_unknown_order_listed(bare_workspace, tmp_path):
    ws = bare_workspace
    out = json.loads(ws.ok("settlement", "import", str(SAMPLE), "--json"))
    assert out["lines"] > 0 and not out["duplicate"]
    listed = json.loads(ws.ok("settlement", "list", "--json"))
    [row] = listed
    total = D(row["total"])
    parts = sum(D(row[k]) for k in ("sales", "refunds", "fees", "reserve", "other", "differences"))
    assert parts == total == D(out["total"])  # to the cent, nothing rounded away
    diffs = json.loads(ws.ok("settlement", "differences", "--json"))
    assert diffs and {d["kind"] for d in diffs} <= {"unknown_order", "refund_without_credit_note"}
    again = json.loads(ws.ok("settlement", "import", str(SAMPLE), "--json"))
    assert again["duplicate"]
    app = ws.app()
    with app.session() as s:
        assert s.scalar(select(func.count()).select_from(Settlement)) == 1


def test_a_file_with_one_bad_line_is_rejected_whole(bare_workspace, tmp_path):
    ws = bare_workspace
    broken = tmp_path / "broken.tsv"
    lines = SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)
    cols = lines[3].split("\t")
    cols[14] = "zwölf"
    lines[3] = "\t".join(cols)
    broken.write_text("".join(lines), encoding="utf-8")
    r = ws.run("settlement", "import", str(broken))
    assert r.code == 65 and "broken.tsv:4:amount" in r.err
    app = ws.app()
    with app.session() as s:
        assert s.scalar(select(func.count()).select_from(Settlement)) == 0
        assert s.scalar(select(func.count()).select_from(SettlementDifference)) == 0


def test_a_settlement_of_what_we_sold_marks_invoices_paid(workspace, tmp_path):
    ws = workspace
    fulfilment.ship_everything(ws, tmp_path)
    created = json.loads(ws.ok("invoices", "create", "--json"))["created"]
    ws.standin.advance(timedelta(hours=1))  # the settlement period ends after our parcels left
    closed = ws.standin.close_settlement(locale="DE")
    path = tmp_path / "settlement.tsv"
    path.write_text(ws.standin.settlement_text(closed["reportIds"][0]), encoding="utf-8")
    dry = json.loads(ws.ok("settlement", "import", str(path), "--dry-run", "--json"))
    unpaid_before = json.loads(ws.ok("invoices", "list", "--unpaid", "--json"))
    assert len(unpaid_before) == created
    out = json.loads(ws.ok("settlement", "import", str(path), "--json"))
    assert out["invoices_paid"] == dry["invoices_paid"] > 0
    unpaid = json.loads(ws.ok("invoices", "list", "--unpaid", "--json"))
    assert len(unpaid) == created - out["invoices_paid"]
    cockpit = json.loads(ws.ok("orders", "list", "--state", "shipped", "--json"))
    assert sum(r["invoice"].endswith("(paid)") for r in cockpit) == out["invoices_paid"]  # payment state shown
    app = ws.app()
    with app.session() as s:
        st_ = s.scalars(select(Settlement)).one()
        assert st_.sales + st_.refunds + st_.fees + st_.reserve + st_.other + st_.differences_total == st_.total_amount
        paid = s.scalars(select(Invoice).where(Invoice.paid_at.is_not(None))).all()
        assert all(i.paid_at == st_.deposit_date for i in paid)
        # Every difference says why; the orders Amazon settled without an invoice of ours are listed.
        assert all(d.reason for d in st_.differences)
    shown = json.loads(ws.ok("settlement", "show", closed["settlementId"], "--json"))
    assert shown["settlement"] == closed["settlementId"] and shown["by_type"]


def test_line_kinds():
    assert kind_of("Order", "ItemPrice", "Principal") == "sale"
    assert kind_of("Refund", "ItemPrice", "Tax") == "refund"
    assert kind_of("Order", "ItemFees", "Commission") == "fee"
    assert kind_of("other-transaction", "other-transaction", "Current Reserve Amount") == "reserve"
    assert kind_of("other-transaction", "other-transaction", "Storage Fee") == "other"


money = st.decimals(min_value=D("-500"), max_value=D("500"), places=2)


@given(sales=st.dictionaries(st.sampled_from([f"O{i}" for i in range(8)]), money, max_size=8),
       refunds=st.dictionaries(st.sampled_from([f"O{i}" for i in range(8)]), money, max_size=4),
       fees=money, reserve=money, other=money,
       known=st.sets(st.sampled_from([f"O{i}" for i in range(8)])),
       invoiced=st.dictionaries(st.sampled_from([f"O{i}" for i in range(8)]), money, max_size=8),
       credited=st.dictionaries(st.sampled_from([f"O{i}" for i in range(8)]), money, max_size=4))
def test_any_settlement_reconciles_to_the_cent(sales, refunds, fees, reserve, other, known, invoiced, credited):
    invoiced = {k: v for k, v in invoiced.items() if k in known}
    r = reconcile(sales, refunds, fees, reserve, other, known, invoiced, credited)
    assert r.total == sum(sales.values(), D(0)) + sum(refunds.values(), D(0)) + fees + reserve + other
    assert all(d[5] for d in r.differences)  # every difference has a reason
    assert set(r.paid_orders) == {o for o, v in sales.items() if o in invoiced and invoiced[o] == v}


def test_fetch_downloads_each_report_once_and_stores_a_repeated_settlement_once(workspace, tmp_path):
    from caturactl import settlement as service
    ws = workspace
    fulfilment.ship_everything(ws, tmp_path)
    ws.ok("invoices", "create")
    ws.standin.advance(timedelta(hours=1))
    first = ws.standin.close_settlement(locale="EN", gzip=True, duplicate=True)  # behind two reports
    app = ws.app()
    with app.session() as s:
        source = app.settlement_reports(s)
        r = service.fetch(s, source, tmp_path / "settlements", since=ws.standin.now() - timedelta(days=30))
        source.close()
    assert r.reports == 2 and r.imported == [first["settlementId"]] and r.duplicates == 1
    assert len(list((tmp_path / "settlements").glob("settlement-*.tsv"))) == 2  # the originals are kept
    with app.session() as s:
        assert s.scalar(select(func.count()).select_from(Settlement)) == 1
        paid = s.scalar(select(func.count()).select_from(Invoice).where(Invoice.paid_at.is_not(None)))
    assert paid > 0


def test_bookings_export_to_datev_and_csv_once_per_period(workspace, tmp_path):
    import csv
    import io
    ws = workspace
    fulfilment.ship_everything(ws, tmp_path, extra="[accounts]\ndatev_consultant = 1001\ndatev_client = 1\n")
    ws.ok("invoices", "create")
    ws.standin.advance(timedelta(hours=1))
    closed = ws.standin.close_settlement(locale="DE")
    path = tmp_path / "s.tsv"
    path.write_text(ws.standin.settlement_text(closed["reportIds"][0]), encoding="utf-8")
    ws.ok("settlement", "import", str(path))
    app = ws.app()
    with app.session() as s:
        days = [d for (d,) in s.execute(select(Invoice.issue_date))]
        deposit = s.scalars(select(Settlement)).one().deposit_date.date()
    start, end = min(days + [deposit]).isoformat(), max(days + [deposit]).isoformat()
    out = tmp_path / "extf.csv"
    r = json.loads(ws.ok("export", "bookings", "--from", start, "--to", end, "-o", str(out), "--json"))
    raw = out.read_bytes()
    assert raw.startswith(b'"EXTF";700;21;"Buchungsstapel"') and b"\r\n" in raw
    rows = list(csv.reader(io.StringIO(raw.decode("cp1252")), delimiter=";"))
    assert len(rows) == r["rows"] + 2 and r["rows"] > 0
    # The same period again is refused (it would be booked twice), unless asked.
    again = ws.run("export", "bookings", "--from", start, "--to", end, "-o", str(out))
    assert again.code == 70 and "--again" in again.err
    ws.ok("export", "bookings", "--from", start, "--to", end, "-o", str(out), "--again")
    csv_out = tmp_path / "b.csv"
    c = json.loads(ws.ok("export", "bookings", "--from", start, "--to", end, "--format", "csv", "--bom",
                         "-o", str(csv_out), "--json"))
    text = csv_out.read_text(encoding="utf-8-sig")
    lines = text.strip().splitlines()
    assert lines[0].startswith("date;document;text;debit;credit;amount") and len(lines) == c["rows"] + 1
    assert D(c["total"]) == D(r["total"])


def test_customers_export_as_datev_debtors(workspace, tmp_path):
    import csv
    import io
    ws = workspace
    ws.write_config(extra="[accounts]\ndatev_consultant = 1001\ndatev_client = 1\n")
    ws.load_catalogue()
    ws.ok("import", "amazon")
    customers = json.loads(ws.ok("customers", "list", "--json"))
    out = tmp_path / "debitoren.csv"
    r = json.loads(ws.ok("export", "customers", "-o", str(out), "--json"))
    raw = out.read_bytes()
    assert raw.startswith(b'"EXTF";700;16;"Debitoren/Kreditoren"')
    rows = list(csv.reader(io.StringIO(raw.decode("cp1252")), delimiter=";"))
    assert r["rows"] == len(rows) - 2 == len(customers)
    assert all(row[0].isdigit() and 10000 < int(row[0]) < 70000 for row in rows[2:])
