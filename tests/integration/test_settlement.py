"""Settlements reconciled against invoices to the cent; a broken file stores nothing.

Invoiced orders come from tests/factories.py, except where Amazon's side is the subject: fetching
the stand-in's settlement of the orders shipped through the whole pipeline."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal as D
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from caturactl.migrations import apply as migrations
from caturactl.accounting import exporting
from caturactl.app import App
from caturactl.config import AccountsConfig, Config
from caturactl.core.errors import InputError, StateError
from caturactl.accounting.models import ExportBatch, Settlement, SettlementDifference
from caturactl.billing.models import Invoice
from caturactl.orders.models import Order
from caturactl.core.events import Event
from caturactl.core.db import Amount, UTCDateTime, make_engine
from caturactl.accounting.models import SettlementFee
from caturactl.accounting.settlement import NO_INVOICE_YET, UNKNOWN_ORDER, import_file, kind_of, reconcile
from connectors.datev.extf import BOOKING_CAPTIONS
from tests import factories as f
from tests import fulfilment
from tests.unit.test_accounting import SAMPLE_FEES

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "settlement_v2_flatfile_DE_composed.tsv"
NOT_SENT = '[invoices]\namazon_delivery = "none"\n'  # invoices stay here: no Amazon in these tests


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


def test_a_settlement_of_what_we_sold_marks_invoices_paid(bare_workspace, tmp_path):
    ws = bare_workspace
    f.fixed_clock()
    ws.write_config(extra=NOT_SENT, company=fulfilment.COMPANY)
    app = ws.app()
    with app.session() as s:
        invoices = f.invoiced(s, app.cfg, *(f.shipped(s, country=c) for c in ("DE", "DE", "FR", "IT")))
        late = f.shipped(s)  # Amazon settles it before our invoice is written
        s.commit()
        created = len(invoices)
        # Amazon settles all of it a day later: one order at another amount, one we do not know.
        differs = invoices[1].order.external_id
        path = f.settlement_for(invoices, folder=tmp_path, deposit=f.T + timedelta(days=1),
                                differ={differs: invoices[1].gross_total - D("0.50"), late.external_id: "28.98"},
                                extra=f.sale_lines("302-9999999-9999999", "5.95"))
    dry = json.loads(ws.ok("settlement", "import", str(path), "--dry-run", "--json"))
    unpaid_before = json.loads(ws.ok("invoices", "list", "--unpaid", "--json"))
    assert len(unpaid_before) == created
    out = json.loads(ws.ok("settlement", "import", str(path), "--json"))
    assert out["invoices_paid"] == dry["invoices_paid"] == created - 1  # all but the one that differs
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
        assert {(d.order_id, d.kind) for d in st_.differences} == {
            (differs, "amount_differs"), (late.external_id, "no_invoice"), ("302-9999999-9999999", "unknown_order")}
    shown = json.loads(ws.ok("settlement", "show", "770001", "--json"))
    assert shown["settlement"] == "770001" and shown["by_type"]


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


@given(sales=st.dictionaries(st.sampled_from([f"O{i}" for i in range(12)]), money, max_size=12),
       refunds=st.dictionaries(st.sampled_from([f"O{i}" for i in range(12)]), money, max_size=6),
       known=st.sets(st.sampled_from([f"O{i}" for i in range(12)])),
       invoiced=st.dictionaries(st.sampled_from([f"O{i}" for i in range(12)]), money, max_size=12),
       credited=st.dictionaries(st.sampled_from([f"O{i}" for i in range(12)]), money, max_size=6),
       vcs=st.sets(st.sampled_from([f"O{i}" for i in range(12)])), size=st.integers(1, 5))
def test_reconciling_in_chunks_adds_up_to_reconciling_at_once(sales, refunds, known, invoiced, credited, vcs, size):
    # import_file reconciles a few hundred orders at a time; the parts must add up to the whole.
    invoiced = {k: v for k, v in invoiced.items() if k in known}
    whole = reconcile(sales, refunds, D(0), D(0), D(0), known, invoiced, credited, channel_invoiced=vcs)
    orders = sorted(set(sales) | set(refunds))
    parts = [reconcile({o: sales[o] for o in chunk if o in sales}, {o: refunds[o] for o in chunk if o in refunds},
                       D(0), D(0), D(0), known, invoiced, credited, channel_invoiced=vcs)
             for chunk in (orders[i:i + size] for i in range(0, len(orders), size))]
    assert sum((p.total for p in parts), D(0)) == whole.total
    assert sorted(d for p in parts for d in p.differences) == sorted(whole.differences)
    assert sorted(o for p in parts for o in p.paid_orders) == sorted(whole.paid_orders)
    # Under VCS Amazon's own documents cover a known order: its money is matched, never a difference
    assert not [d for d in whole.differences if d[0] in vcs and d[0] in known and d[0] not in invoiced
                and d[1] in ("no_invoice", "refund_without_credit_note")]
    assert whole.total == sum(sales.values(), D(0)) + sum(refunds.values(), D(0))
    assert set(whole.channel_invoiced) == {o for o in sales if o in vcs and o in known and o not in invoiced}


# --- import_file against a database with orders, invoices and credit notes -------------------

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def books(database_url):
    """A migrated database of the kind under test with a session on it."""
    from caturactl.migrations.apply import upgrade
    from caturactl.core.db import make_engine, make_sessionmaker
    engine = make_engine(database_url)
    upgrade(engine)
    session = make_sessionmaker(engine)()
    yield session
    session.close()
    engine.dispose()


def add_order(s, external_id: str, *, fulfilled_by: str = "MERCHANT", invoices=(), credit_notes=(),
              paid: bool = False) -> Order:
    from caturactl.core.lifecycle import OrderState, transition
    order = Order(channel="amazon", external_id=external_id, created_at=T0, remote_updated_at=T0,
                  fulfilled_by=fulfilled_by)
    s.add(order)
    transition(s, order, OrderState.IMPORTED, "test")
    for kind, amounts in (("invoice", invoices), ("credit_note", credit_notes)):
        for gross in amounts:
            seq = s.query(Invoice).count() + 1
            s.add(Invoice(number=f"T-{seq}", kind=kind, series="T", year=2026, seq=seq, order=order,
                          issue_date=date(2026, 11, 2), supply_date=date(2026, 11, 2), currency="EUR",
                          net_total=D(gross), tax_total=D(0), gross_total=D(gross), document={}, pdf=b"",
                          xml=b"", paid_at=T0 if paid else None))
    s.flush()
    return order


def settlement_file(path: Path, lines: list[tuple[str, str, str, str, str]], *, settlement_id: str = "770001",
                    crlf: bool = False) -> Path:
    """A DE flat file of (transaction-type, order-id, amount-type, amount-description, amount) over
    1-15 November 2026, deposited on 17 November 08:00 UTC, every line posted on 3 November."""
    return f.settlement_file(path, lines, settlement_id=settlement_id, start=datetime(2026, 11, 1, tzinfo=timezone.utc),
                             end=datetime(2026, 11, 15, tzinfo=timezone.utc),
                             deposit=datetime(2026, 11, 17, 8, 0, tzinfo=timezone.utc),
                             posted=datetime(2026, 11, 3, 10, 0, tzinfo=timezone.utc), crlf=crlf)


def order_lines(order_id: str, price: str, tax: str, fee: str) -> list[tuple[str, str, str, str, str]]:
    return [("Order", order_id, "ItemPrice", "Principal", price), ("Order", order_id, "ItemPrice", "Tax", tax),
            ("Order", order_id, "ItemFees", "Commission", fee)]


def refund_lines(order_id: str, price: str) -> list[tuple[str, str, str, str, str]]:
    return [("Refund", order_id, "ItemPrice", "Principal", price)]


def test_import_matches_invoices_and_credit_notes_and_lists_every_difference_with_its_reason(books, tmp_path):
    s = books
    add_order(s, "302-0000001-0000001", invoices=["119.00"])  # paid exactly
    add_order(s, "302-0000002-0000002", invoices=["50.00"])  # Amazon settles 49.99
    add_order(s, "302-0000003-0000003")  # ours, not invoiced yet
    add_order(s, "302-0000004-0000004", fulfilled_by="AMAZON")  # FBA: we never invoice it
    add_order(s, "302-0000006-0000006", invoices=["23.80"])  # refunded, no credit note yet
    add_order(s, "302-0000007-0000007", invoices=["11.90"], credit_notes=["11.90"])  # refunded and credited
    add_order(s, "302-0000008-0000008", invoices=["20.00"], credit_notes=["5.00"])  # refund differs
    add_order(s, "302-0000009-0000009", invoices=["10.00", "9.00"])  # two invoices, paid exactly
    s.commit()
    lines = (order_lines("302-0000001-0000001", "100,00", "19,00", "-15,00")
             + order_lines("302-0000002-0000002", "42,01", "7,98", "-6,00")
             + order_lines("302-0000003-0000003", "10,00", "1,90", "-1,50")
             + order_lines("302-0000004-0000004", "20,00", "3,80", "-3,00")
             + order_lines("302-0000005-0000005", "5,00", "0,95", "-0,75")  # not ours at all
             + order_lines("302-0000006-0000006", "20,00", "3,80", "-3,00")
             + refund_lines("302-0000006-0000006", "-23,80")
             + refund_lines("302-0000007-0000007", "-11,90")
             + refund_lines("302-0000008-0000008", "-6,00")
             + order_lines("302-0000009-0000009", "15,97", "3,03", "-2,85")
             + [("other-transaction", "", "other-transaction", "Current Reserve Amount", "-10,00"),
                ("other-transaction", "", "other-transaction", "Storage Fee", "-2,50"),
                ("ServiceFee", "", "Cost of Advertising", "TransactionTotalAmount", "-4,00")])
    path = settlement_file(tmp_path / "s.tsv", lines)
    dry = import_file(s, path, dry_run=True, chunk_size=2)
    s.rollback()
    assert s.scalar(select(func.count()).select_from(Settlement)) == 0
    r = import_file(s, path, chunk_size=3)  # chunks cut through the orders: the same answer
    s.commit()
    assert (r.paid, r.differences, r.differences_total) == (dry.paid, dry.differences, dry.differences_total)
    st_ = s.scalars(select(Settlement)).one()
    assert st_.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() and st_.lines == len(lines)
    assert st_.sales + st_.refunds + st_.fees + st_.reserve + st_.other + st_.differences_total == st_.total_amount
    assert (st_.sales, st_.refunds) == (D("119.00") + D("50.00") + D("23.80") + D("19.00"), -D("11.90") - D("5.00"))
    assert (st_.reserve, st_.other) == (D("-10.00"), D("-2.50"))
    diffs = {(d.order_id, d.kind): (d.amount, d.reason) for d in s.scalars(select(SettlementDifference))}
    assert diffs == {
        ("302-0000002-0000002", "amount_differs"): (D("-0.01"), "Amazon settled 49.99, invoiced 50.00: differs by -0.01"),
        ("302-0000003-0000003", "no_invoice"): (D("11.90"), NO_INVOICE_YET),
        ("302-0000004-0000004", "no_invoice"): (D("23.80"), NO_INVOICE_YET),  # FBA, not invoiced yet
        ("302-0000005-0000005", "unknown_order"): (D("5.95"), UNKNOWN_ORDER),
        ("302-0000006-0000006", "refund_without_credit_note"): (
            D("-23.80"), "Amazon refunded the buyer; no credit note (Rechnungskorrektur) yet"),
        ("302-0000008-0000008", "refund_differs"): (D("-1.00"), "Amazon refunded 6.00, credited 5.00: differs by 1.00"),
    }
    assert r.differences == len(diffs) and r.differences_total == st_.differences_total
    paid = s.execute(select(Order.external_id, Invoice.kind, Invoice.paid_at).join(Invoice.order)).all()
    deposit = datetime(2026, 11, 17, 8, 0, tzinfo=timezone.utc)
    assert all(at in (None, deposit) for _, _, at in paid)
    # The sale of 6 arrived exactly (its refund is a difference); 9's two invoices add up to it.
    assert sorted((o[-1], kind) for o, kind, at in paid if at is not None) == [
        ("1", "invoice"), ("6", "invoice"), ("9", "invoice"), ("9", "invoice")]
    assert s.scalar(select(func.count()).select_from(Event).where(Event.why.like("settlement 770001 imported%"))) == 1


def test_an_invoice_paid_before_keeps_its_date(books, tmp_path):
    s = books
    add_order(s, "302-0000001-0000001", invoices=["119.00"], paid=True)
    s.commit()
    r = import_file(s, settlement_file(tmp_path / "s.tsv", order_lines("302-0000001-0000001", "100,00", "19,00", "0,00")))
    s.commit()
    assert (r.paid, r.differences) == (1, 0)
    assert s.scalar(select(Invoice.paid_at)) == T0


def test_a_file_that_does_not_add_up_or_has_a_bad_line_stores_and_marks_nothing(books, tmp_path):
    s = books
    add_order(s, "302-0000001-0000001", invoices=["119.00"])
    s.commit()
    good = order_lines("302-0000001-0000001", "100,00", "19,00", "-15,00") + order_lines("302-0000005-0000005", "5,00",
                                                                                         "0,95", "-0,75")
    path = settlement_file(tmp_path / "s.tsv", good, crlf=True)
    text = path.read_text(encoding="utf-8")
    assert "\t109,20\tEUR" in text
    path.write_text(text.replace("\t109,20\t", "\t109,21\t"), encoding="utf-8")  # the header's total
    with pytest.raises(InputError) as caught:
        import_file(s, path)
    assert caught.value.where == "s.tsv:2:total-amount"
    path.write_text(text.replace("\t-0,75\t", "\t-0,7x\t"), encoding="utf-8")
    with pytest.raises(InputError) as caught:
        import_file(s, path)
    assert caught.value.where == "s.tsv:8:amount"
    s.rollback()
    assert s.scalar(select(func.count()).select_from(Settlement)) == 0
    assert s.scalar(select(func.count()).select_from(SettlementDifference)) == 0
    assert s.scalar(select(Invoice.paid_at)) is None
    path.write_text(text, encoding="utf-8")  # CRLF as written by Windows tools reads
    assert import_file(s, path).paid == 1


@pytest.mark.slow
def test_fetch_downloads_each_report_once_and_stores_a_repeated_settlement_once(workspace, tmp_path):
    from caturactl.accounting import settlement as service
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


def test_bookings_export_to_datev_and_csv_once_per_period(bare_workspace, tmp_path):
    ws = bare_workspace
    f.fixed_clock()
    ws.write_config(extra="[accounts]\ndatev_consultant = 1001\ndatev_client = 1\n" + NOT_SENT,
                    company=fulfilment.COMPANY)
    with ws.app().session() as s:
        invoices = f.invoiced(s, ws.app().cfg, *(f.shipped(s, country=c) for c in ("DE", "FR", "IT")))
        f.settled(s, invoices, folder=tmp_path, deposit=f.T + timedelta(days=1))
        s.commit()
    app = ws.app()
    with app.session() as s:
        days = [d for (d,) in s.execute(select(Invoice.issue_date))]
        deposit = s.scalars(select(Settlement)).one().deposit_date.astimezone(app.cfg.tz).date()  # booked that day
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


def test_fetch_dry_run_lists_the_reports_and_downloads_writes_and_stores_nothing(workspace, tmp_path):
    ws = workspace
    closed = ws.standin.close_settlement(locale="EN", duplicate=True)  # one settlement, two reports
    app = ws.app()

    def stored() -> tuple[int, int]:
        with app.session() as s:
            return (s.scalar(select(func.count()).select_from(Settlement)),
                    s.scalar(select(func.count()).select_from(Event)))

    before = stored()
    r = ws.run("settlement", "fetch", "--dry-run", "--json")
    out = json.loads(r.out)
    assert r.code == 0, r.err
    assert out["dry_run"] and out["reports"] == 2 and sorted(out["to_download"]) == sorted(closed["reportIds"])
    assert out["imported"] == [] and out["duplicates"] == 0
    assert not (tmp_path / "settlements").exists()  # not even the folder
    assert ws.standin.stats()["calls"].get("getReportDocument", 0) == 0
    assert stored() == before
    r = ws.run("settlement", "fetch", "--dry-run")
    assert r.code == 0 and "DRY RUN" in r.out and "2 to download" in r.out
    # The real fetch, then a dry run again: both files are there, nothing to download.
    assert json.loads(ws.ok("settlement", "fetch", "--json"))["imported"] == [closed["settlementId"]]
    after = stored()
    assert json.loads(ws.ok("settlement", "fetch", "--dry-run", "--json"))["to_download"] == []
    assert stored() == after and len(list((tmp_path / "settlements").iterdir())) == 2


# --- fee lines, their accounts, and the business day of a deposit -------------------------------

SAMPLE_FEE_LINES = SAMPLE_FEES  # the composed sample's fee lines, as tests/unit/test_accounting.py has them


def test_import_keeps_every_fee_line_and_they_add_up_to_the_fees_and_other_money(books):
    s = books
    dry = import_file(s, SAMPLE, dry_run=True)
    s.rollback()
    assert dry.fee_totals == SAMPLE_FEE_LINES
    assert s.scalar(select(func.count()).select_from(SettlementFee)) == 0
    r = import_file(s, SAMPLE)
    s.commit()
    st_ = s.scalars(select(Settlement)).one()
    assert r.fee_totals == [(f.description, f.amount) for f in st_.fee_totals] == SAMPLE_FEE_LINES
    assert sum((f.amount for f in st_.fee_totals), D(0)) == st_.fees + st_.other == D("-57.89")
    assert (st_.reserve, st_.total_amount) == (D("-1.00"), D("2.05"))


def _deposited(path: Path, lines, settlement_id: str, deposit: str) -> Path:
    """A settlement file like ``settlement_file``'s, deposited at ``deposit`` (DE form, UTC)."""
    settlement_file(path, lines, settlement_id=settlement_id)
    text = path.read_text(encoding="utf-8")
    for old, new in (("01.11.2026 00:00:00 UTC", "17.03.2026 00:00:00 UTC"),
                     ("15.11.2026 00:00:00 UTC", "31.03.2026 20:00:00 UTC"),
                     ("17.11.2026 08:00:00 UTC", deposit), ("03.11.2026", "20.03.2026")):
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")
    return path


def test_a_deposit_at_2330_utc_on_31_march_is_booked_in_aprils_export_and_marchs_export_succeeds(books, tmp_path):
    s = books
    cfg = Config(accounts=AccountsConfig(datev_consultant=1001, datev_client=1))  # display.timezone Europe/Berlin
    fees = [("other-transaction", "", "other-transaction", "Subscription Fee", "-39,00"),
            ("ServiceFee", "", "Cost of Advertising", "TransactionTotalAmount", "-10,00"),
            ("Order", "302-0000005-0000005", "ItemPrice", "Principal", "100,00")]  # an unknown order: waits
    # Berlin is on summer time from 29 March 2026 (UTC+2): 23:30 UTC is 01:30 on 1 April there,
    # 21:59:59 UTC is 23:59:59 on 31 March.
    import_file(s, _deposited(tmp_path / "april.tsv", fees, "770001", "31.03.2026 23:30:00 UTC"))
    import_file(s, _deposited(tmp_path / "march.tsv", fees, "770002", "31.03.2026 21:59:59 UTC"))
    s.commit()

    def export(first: date, last: date, name: str) -> tuple[exporting.ExportResult, list[dict]]:
        r = exporting.export_bookings(s, cfg, fmt="datev", date_from=first, date_to=last, path=tmp_path / name,
                                      write_datev=App.write_datev_bookings)
        s.commit()
        lines = (tmp_path / name).read_bytes().decode("cp1252").split("\r\n")
        return r, [dict(zip(BOOKING_CAPTIONS, row)) for row in csv.reader(io.StringIO("\n".join(lines[2:-1])),
                                                                         delimiter=";")]

    march, march_rows = export(date(2026, 3, 1), date(2026, 3, 31), "march.csv")
    april, april_rows = export(date(2026, 4, 1), date(2026, 4, 30), "april.csv")
    cells = ("Belegfeld 1", "Belegdatum", "Konto", "Gegenkonto (ohne BU-Schlüssel)", "Umsatz (ohne Soll/Haben-Kz)",
             "BU-Schlüssel")
    assert [tuple(r[c] for c in cells) for r in march_rows] == [
        ("770002", "3103", "4600", "1500", "10,00", "94"), ("770002", "3103", "4760", "1500", "39,00", "94"),
        ("770002", "3103", "1360", "1500", "51,00", "")]
    assert [tuple(r[c] for c in cells) for r in april_rows] == [
        ("770001", "0104", "4600", "1500", "10,00", "94"), ("770001", "0104", "4760", "1500", "39,00", "94"),
        ("770001", "0104", "1360", "1500", "51,00", "")]
    assert (march.rows, april.rows, march.unmapped_fees, april.unmapped_fees) == (3, 3, [], [])
    assert [e.date for e in exporting.entries(s, cfg, date(2026, 4, 1), date(2026, 4, 1))] == [date(2026, 4, 1)] * 3
    assert exporting.entries(s, cfg, date(2026, 3, 1), date(2026, 3, 30)) == []
    # The batches remember their days; any day of them again is refused, the next month is not.
    assert [(b.date_from, b.date_to) for b in s.scalars(select(ExportBatch).order_by(ExportBatch.id))] == [
        (date(2026, 3, 1), date(2026, 3, 31)), (date(2026, 4, 1), date(2026, 4, 30))]
    for first, last in ((date(2026, 3, 31), date(2026, 3, 31)), (date(2026, 4, 1), date(2026, 4, 1)),
                        (date(2026, 2, 1), date(2026, 3, 1)), (date(2026, 4, 30), date(2026, 5, 31))):
        with pytest.raises(StateError, match="overlaps"):
            export(first, last, "again.csv")
    may, may_rows = export(date(2026, 5, 1), date(2026, 5, 31), "may.csv")
    assert (may.rows, may_rows) == (0, [])


def test_a_fee_line_no_pattern_names_is_listed_at_import_show_and_export(bare_workspace, tmp_path):
    ws = bare_workspace
    ws.write_config(extra="[accounts]\ndatev_consultant = 1001\ndatev_client = 1\n")
    path = settlement_file(tmp_path / "s.tsv", [
        ("other-transaction", "", "other-transaction", "Subscription Fee", "-39,00"),
        ("other-transaction", "", "other-transaction", "Digital Services Fee", "-1,20")])
    out = json.loads(ws.ok("settlement", "import", str(path), "--json"))
    assert out["unmapped_fees"] == [{"description": "other-transaction/other-transaction/Digital Services Fee",
                                     "amount": "-1.20"}]
    shown = json.loads(ws.ok("settlement", "show", "770001", "--json"))
    assert [(f["type"], f["amount"], f["account"], f["tax_key"], f["reverse_charge"]) for f in shown["fee_lines"]] == [
        ("other-transaction/other-transaction/Digital Services Fee", "-1.20", "3123", "", True),
        ("other-transaction/other-transaction/Subscription Fee", "-39.00", "4760", "94", True)]
    csv_out = tmp_path / "b.csv"
    r = ws.run("export", "bookings", "--from", "2026-11-17", "--to", "2026-11-17", "--format", "csv",
               "-o", str(csv_out))
    assert r.code == 0 and "1 fee line(s) not named" in r.out and "Digital Services Fee -1.20" in r.out
    lines = csv_out.read_text(encoding="utf-8").strip().splitlines()
    assert [ln.split(";")[3:7] for ln in lines[1:]] == [
        ["3123", "1500", "1.20", ""], ["4760", "1500", "39.00", "94"], ["1500", "1360", "40.20", ""]]
    # Once named, it goes where it was told (a second export of the day: --again).
    ws.write_config(extra='[accounts]\ndatev_consultant = 1001\ndatev_client = 1\n'
                          '[accounts.fee_accounts]\n"Digital Services Fee" = { account = "4761" }\n')
    again = json.loads(ws.ok("export", "bookings", "--from", "2026-11-17", "--to", "2026-11-17", "--format", "csv",
                             "-o", str(csv_out), "--again", "--json"))
    assert again["unmapped_fees"] == []
    assert csv_out.read_text(encoding="utf-8").splitlines()[1].split(";")[3:7] == ["4761", "1500", "1.20", "94"]


def test_settlements_imported_before_0009_get_their_fee_lines_and_export_batches_their_days(database_url):
    engine = make_engine(database_url)
    migrations.upgrade(engine, "0008")
    settlements = sa.table("settlements", *(sa.column(c, UTCDateTime()) for c in ("start", "end", "deposit_date",
                                                                                   "imported_at")),
                           *(sa.column(c, Amount()) for c in ("total_amount", "sales", "refunds", "fees", "reserve",
                                                               "other", "differences_total")),
                           sa.column("settlement_id", sa.String), sa.column("currency", sa.String),
                           sa.column("lines", sa.Integer), sa.column("by_type", sa.JSON),
                           sa.column("file_name", sa.String), sa.column("sha256", sa.String))
    batches = sa.table("export_batches", sa.column("kind", sa.String), sa.column("format", sa.String),
                       sa.column("date_from", UTCDateTime()), sa.column("date_to", UTCDateTime()),
                       sa.column("rows", sa.Integer), sa.column("total", Amount()), sa.column("file_name", sa.String),
                       sa.column("again", sa.Boolean), sa.column("created_at", UTCDateTime()))
    by_type = {"Order/ItemPrice/Principal": "100.00", "Order/ItemFees/Commission": "-15.00",
               "Refund/ItemPrice/Principal": "-10.00", "other-transaction/other-transaction/Current Reserve Amount":
               "-5.00", "other-transaction/other-transaction/Storage Fee": "-2.50"}
    at = datetime(2026, 11, 17, 8, 0, tzinfo=timezone.utc)
    with engine.begin() as conn:
        conn.execute(settlements.insert().values(
            settlement_id="770001", start=at, end=at, deposit_date=at, imported_at=at, currency="EUR", lines=5,
            total_amount=D("67.50"), sales=D("100.00"), refunds=D("-10.00"), fees=D("-15.00"), reserve=D("-5.00"),
            other=D("-2.50"), differences_total=D(0), by_type=by_type, file_name="s.tsv", sha256=""))
        conn.execute(batches.insert().values(
            kind="bookings", format="datev", date_from=datetime(2026, 3, 1, tzinfo=timezone.utc),
            date_to=datetime(2026, 3, 31, tzinfo=timezone.utc), rows=3, total=D("1.00"), file_name="m.csv",
            again=False, created_at=at))
    migrations.upgrade(engine)
    with engine.connect() as conn:
        fees = conn.execute(sa.text("SELECT description, amount FROM settlement_fees ORDER BY id")).all()
        days = conn.execute(sa.select(sa.column("date_from", sa.Date), sa.column("date_to", sa.Date))
                            .select_from(sa.table("export_batches"))).all()
    assert [(d, D(str(a))) for d, a in fees] == [("Order/ItemFees/Commission", D("-15.00")),
                                                 ("other-transaction/other-transaction/Storage Fee", D("-2.50"))]
    assert days == [(date(2026, 3, 1), date(2026, 3, 31))]
    with engine.begin() as conn:  # and back: caturactl itself only migrates up
        command.downgrade(migrations._config(conn), "0008")
    with engine.connect() as conn:
        back = conn.execute(sa.select(batches.c.date_from, batches.c.date_to)).all()
    assert back == [(datetime(2026, 3, 1, tzinfo=timezone.utc), datetime(2026, 3, 31, tzinfo=timezone.utc))]
    engine.dispose()


def test_under_vcs_amazon_invoiced_orders_are_matched_not_differences():
    r = reconcile({"A": D("23.80"), "B": D("10.00"), "C": D("5.00")}, {"A": D("-3.00")}, D("-4.00"), D(0), D(0),
                  {"A", "B"}, {"B": D("10.00")}, {}, channel_invoiced={"A", "B"})
    assert r.channel_invoiced == ["A"] and r.paid_orders == ["B"]  # B has our invoice: matched by it
    assert (r.sales, r.refunds) == (D("33.80"), D("-3.00"))
    assert [(d[0], d[1]) for d in r.differences] == [("C", "unknown_order")]
    assert r.total == D("23.80") + D("10.00") + D("5.00") - D("3.00") - D("4.00")
