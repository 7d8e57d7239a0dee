"""Settlements reconciled against invoices to the cent; a broken file stores nothing."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal as D
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from caturactl.errors import InputError
from caturactl.model import Event, Invoice, Order, Settlement, SettlementDifference
from caturactl.settlement import NO_INVOICE_FBA, NO_INVOICE_YET, UNKNOWN_ORDER, import_file, kind_of, reconcile
from connectors.amazon.settlement import CAPTIONS
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


@given(sales=st.dictionaries(st.sampled_from([f"O{i}" for i in range(12)]), money, max_size=12),
       refunds=st.dictionaries(st.sampled_from([f"O{i}" for i in range(12)]), money, max_size=6),
       known=st.sets(st.sampled_from([f"O{i}" for i in range(12)])),
       invoiced=st.dictionaries(st.sampled_from([f"O{i}" for i in range(12)]), money, max_size=12),
       credited=st.dictionaries(st.sampled_from([f"O{i}" for i in range(12)]), money, max_size=6),
       fba=st.sets(st.sampled_from([f"O{i}" for i in range(12)])), size=st.integers(1, 5))
def test_reconciling_in_chunks_adds_up_to_reconciling_at_once(sales, refunds, known, invoiced, credited, fba, size):
    # import_file reconciles a few hundred orders at a time; the parts must add up to the whole.
    invoiced = {k: v for k, v in invoiced.items() if k in known}
    whole = reconcile(sales, refunds, D(0), D(0), D(0), known, invoiced, credited, fba=fba)
    orders = sorted(set(sales) | set(refunds))
    parts = [reconcile({o: sales[o] for o in chunk if o in sales}, {o: refunds[o] for o in chunk if o in refunds},
                       D(0), D(0), D(0), known, invoiced, credited, fba=fba)
             for chunk in (orders[i:i + size] for i in range(0, len(orders), size))]
    assert sum((p.total for p in parts), D(0)) == whole.total
    assert sorted(d for p in parts for d in p.differences) == sorted(whole.differences)
    assert sorted(o for p in parts for o in p.paid_orders) == sorted(whole.paid_orders)
    assert all(d[5] == NO_INVOICE_FBA for d in whole.differences if d[1] == "no_invoice" and d[0] in fba)


# --- import_file against a database with orders, invoices and credit notes -------------------

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def books(database_url):
    """A migrated database of the kind under test with a session on it."""
    from caturactl.migrations import upgrade
    from caturactl.model.base import make_engine, make_sessionmaker
    engine = make_engine(database_url)
    upgrade(engine)
    session = make_sessionmaker(engine)()
    yield session
    session.close()
    engine.dispose()


def add_order(s, external_id: str, *, fulfilled_by: str = "MERCHANT", invoices=(), credit_notes=(),
              paid: bool = False) -> Order:
    from caturactl.model.states import OrderState, transition
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
    """A DE flat file of (transaction-type, order-id, amount-type, amount-description, amount)."""
    def row(**cells: str) -> str:
        return "\t".join(cells.get(c, "") for c in CAPTIONS)

    total = sum((D(amount.replace(",", ".")) for *_, amount in lines), D(0))
    out = ["\t".join(CAPTIONS), row(**{
        "settlement-id": settlement_id, "settlement-start-date": "01.11.2026 00:00:00 UTC",
        "settlement-end-date": "15.11.2026 00:00:00 UTC", "deposit-date": "17.11.2026 08:00:00 UTC",
        "total-amount": f"{total:.2f}".replace(".", ","), "currency": "EUR"})]
    for transaction_type, order_id, amount_type, description, amount in lines:
        out.append(row(**{"settlement-id": settlement_id, "transaction-type": transaction_type, "order-id": order_id,
                          "amount-type": amount_type, "amount-description": description, "amount": amount,
                          "posted-date": "03.11.2026", "posted-date-time": "03.11.2026 10:00:00 UTC"}))
    end = "\r\n" if crlf else "\n"
    path.write_bytes((end.join(out) + end).encode("utf-8"))
    return path


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
        ("302-0000004-0000004", "no_invoice"): (D("23.80"), NO_INVOICE_FBA),
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
