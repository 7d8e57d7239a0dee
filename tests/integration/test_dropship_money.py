"""Money with the dropshippers, on a real database: what a partner shipped is a purchase at the
agreed price; its invoices (CSV, ZUGFeRD PDF, XRechnung CII) are matched against that, all or
nothing per file, differences become a disputed invoice with a ticket; the accountant's export
books the invoices and our purchase credits on the partner's creditor account."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from carriers.tracking import make_number
from caturactl.accounting import exporting
from caturactl.app import App
from caturactl.core import clock
from caturactl.core.errors import ConfigError, InputError, StateError
from caturactl.core.tax import cents
from caturactl.fulfilment import routing
from caturactl.fulfilment.dropship import back_office, outgoing, purchases, return_credit, returns, service
from caturactl.fulfilment.dropship.models import PurchaseOrder
from caturactl.fulfilment.dropship.purchases import PurchaseInvoice
from caturactl.orders.tickets import OPEN, Ticket
from caturactl.ports import InvoiceDocument, InvoiceItem, InvoiceParty, TaxBreakdown
from connectors.einvoice.renderer import Renderer
from connectors.opentrans import OpenTrans
from tests import factories as f
from tests.dropship import config, sections
from tests.fulfilment import COMPANY

T = datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)  # a Tuesday
CREDITORS = {"ds1": 'creditor_account = "70001"', "ds2": 'creditor_account = "70002"'}
HEADER = "invoice;date;purchase_order;line;sku;quantity;unit_price;tax_rate\n"


@pytest.fixture
def app(migrated_database_url, tmp_path):
    f.fixed_clock(T)
    a = App(config(migrated_database_url, tmp_path, **CREDITORS))
    yield a
    a.dispose()


def _shipped_po(app, s, partner: str = "DS1", lines=(("B-1", 2), ("C-1", 4))) -> PurchaseOrder:
    """A purchase order of ``partner`` for ``lines`` (sku, pieces), shipped in one parcel."""
    service.set_availability(s, partner, {sku: 10 for sku, _ in lines}, actor="test")
    for sku, _ in lines:
        f.product(s, sku)
    order = f.released(s, [f.Line(sku=sku, quantity=qty) for sku, qty in lines])
    s.commit()
    routing.Router(s, app.cfg).run()
    outgoing.send(s, app.cfg, OpenTrans(), now=clock.now())
    s.commit()
    po = s.scalar(select(PurchaseOrder).where(PurchaseOrder.order_id == order.id))
    carrier = "DHL" if partner == "DS1" else "DPD"
    service.add_parcel(s, partner, po.number, carrier=carrier, tracking=make_number(carrier, po.id + 100), lines=None,
                       actor="test")
    s.commit()
    return po


def _file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _import(app, tmp_path, name: str, text: str, partner: str = "DS1"):
    return back_office.import_invoice(app, partner, _file(tmp_path, name, text), dry_run=False)


def _bookings(app, document: str):
    with app.session() as s:
        entries = exporting.entries(s, app.cfg, date(2026, 11, 1), date(2026, 11, 30))
        return [e for e in entries if e.document == document]


def test_an_invoice_for_what_was_shipped_at_the_agreed_prices_is_matched_and_booked_on_the_creditor(app, tmp_path):
    with app.session() as s:
        po = _shipped_po(app, s)
    out = _import(app, tmp_path, "re-1.csv", HEADER + f"RE-DS1-1;25.11.2026;{po.number};1;B-1;2;7,50;19\n"
                                                      f"RE-DS1-1;25.11.2026;{po.number};;C-1;4;3.25;19\n")
    assert out.data["state"] == "matched" and out.data["gross"] == "33.32" and out.fine
    [entry] = _bookings(app, "RE-DS1-1")
    # Wareneingang 19 % (SKR03 3400, accounts.md §3) against DS1's creditor account, gross
    assert (entry.debit, entry.credit, entry.amount, entry.date) == ("3400", "70001", Decimal("33.32"),
                                                                     date(2026, 11, 25))
    with app.session() as s:
        rows = purchases.shipped(s, "DS1")
        assert sorted((r["sku"], r["shipped"], r["billed"], r["amount"]) for r in rows) == \
            [("B-1", 2, 2, f.money("15.00")), ("C-1", 4, 4, f.money("13.00"))]
        assert purchases.shipped(s, "DS1", unbilled=True) == []


def test_price_and_quantity_differences_make_the_invoice_disputed_with_a_ticket(app, tmp_path):
    with app.session() as s:
        po = _shipped_po(app, s)
    out = _import(app, tmp_path, "re-2.csv", HEADER + f"RE-DS1-2;2026-11-25;{po.number};1;B-1;3;7.50;19\n"
                                                      f"RE-DS1-2;2026-11-25;{po.number};2;C-1;4;3.40;19\n")
    assert out.data["state"] == "disputed" and not out.fine and len(out.problems) == 2
    assert "3 piece(s) billed in all, 2 shipped" in out.problems[0]
    assert "3.40 each billed, 3.25 agreed" in out.problems[1]
    assert _bookings(app, "RE-DS1-2") == []  # not booked while disputed
    with app.session() as s:
        ticket = s.scalar(select(Ticket).where(Ticket.external_ref == "DS1:RE-DS1-2"))
        assert ticket.kind == "dropship" and ticket.status == OPEN and ticket.reasons == "quantity,price"
        inv = s.scalar(select(PurchaseInvoice))
        assert [bool(ln.difference) for ln in inv.lines] == [True, True]
    with pytest.raises(InputError):
        back_office.decide_invoice(app, "DS1", "RE-DS1-2", approve=True, note=" ", dry_run=False)
    back_office.decide_invoice(app, "DS1", "RE-DS1-2", approve=True, note="Preiserhöhung vereinbart", dry_run=False)
    [entry] = _bookings(app, "RE-DS1-2")
    assert (entry.debit, entry.credit, entry.amount) == ("3400", "70001", Decimal("42.96"))
    with app.session() as s:
        assert s.scalar(select(Ticket.status).where(Ticket.external_ref == "DS1:RE-DS1-2")) == "resolved"
    with pytest.raises(StateError):
        back_office.decide_invoice(app, "DS1", "RE-DS1-2", approve=False, note="doch nicht", dry_run=False)


def test_an_invoice_naming_another_partners_purchase_order_is_disputed_as_unknown(app, tmp_path):
    with app.session() as s:
        theirs = _shipped_po(app, s, "DS2", lines=(("B-1", 1),))
    out = _import(app, tmp_path, "re-3.csv", HEADER + f"RE-DS1-3;2026-11-25;{theirs.number};1;B-1;1;8.10;19\n"
                                                      "RE-DS1-3;2026-11-25;PO999999;1;B-1;1;7.50;19\n")
    assert out.data["state"] == "disputed"
    assert all("is not one of ours to this partner" in p for p in out.problems) and len(out.problems) == 2
    back_office.decide_invoice(app, "DS1", "RE-DS1-3", approve=False, note="nicht unsere Bestellung", dry_run=False)
    assert _bookings(app, "RE-DS1-3") == []


def test_a_bad_invoice_file_changes_nothing(app, tmp_path):
    with app.session() as s:
        po = _shipped_po(app, s)
    with pytest.raises(InputError) as e:
        _import(app, tmp_path, "bad.csv", HEADER + f"RE-DS1-4;2026-11-25;{po.number};1;B-1;2;7.50;19\n"
                                                   f"RE-DS1-4;2026-11-25;{po.number};2;C-1;zwei;3.25;19\n")
    assert e.value.where == "bad.csv:3:quantity"
    with pytest.raises(InputError) as e:
        _import(app, tmp_path, "two.csv", HEADER + f"RE-DS1-5;2026-11-25;{po.number};1;B-1;2;7.50;19\n"
                                                   f"RE-DS1-6;2026-11-25;{po.number};2;C-1;4;3.25;19\n")
    assert e.value.where == "two.csv:3:invoice"  # one invoice a file
    with app.session() as s:
        assert s.scalar(select(PurchaseInvoice)) is None and s.scalar(select(Ticket)) is None


def test_the_same_file_twice_changes_nothing_and_its_number_from_another_file_is_refused(app, tmp_path):
    with app.session() as s:
        po = _shipped_po(app, s)
    text = HEADER + f"RE-DS1-7;2026-11-25;{po.number};1;B-1;2;7.50;19\n"
    assert _import(app, tmp_path, "a.csv", text).data["state"] == "matched"
    assert _import(app, tmp_path, "a-again.csv", text).data["state"] == "known"
    with pytest.raises(InputError, match="read before"):
        _import(app, tmp_path, "b.csv", text.replace(";2;7.50;", ";1;7.50;"))
    with app.session() as s:
        assert len(s.scalars(select(PurchaseInvoice)).all()) == 1


def _partner_invoice(number: str, po: str, items: list[tuple[str, int, str]]) -> InvoiceDocument:
    """DS1's e-invoice to us (the merchant) for ``items`` (sku, pieces, net price each), naming our
    purchase order as the buyer's order reference (BT-13)."""
    seller = InvoiceParty(name="Strecke Eins GmbH", street="Streckenweg 1", postal_code="40210", city="Düsseldorf",
                          country="DE", vat_id="DE111111111", email="rechnung@strecke-eins.example",
                          contact="Paula Strecke", phone="+49 211 123456")
    buyer = InvoiceParty(name="Test Handel GmbH", street="Hauptstraße 1", postal_code="50667", city="Köln",
                         country="DE", vat_id="DE222222222", email="einkauf@test-handel.example")
    rows = [InvoiceItem(i, sku, f"Artikel {sku}", Decimal(qty), Decimal(price), Decimal(price) * qty, "S", Decimal(19))
            for i, (sku, qty, price) in enumerate(items, 1)]
    net = sum((r.net for r in rows), Decimal(0))
    vat = cents(net * Decimal("0.19"))
    return InvoiceDocument(
        number=number, type_code=380, issue_date=date(2026, 11, 26), supply_date=date(2026, 11, 24), currency="EUR",
        seller=seller, buyer=buyer, ship_to=None, items=tuple(rows), taxes=(TaxBreakdown("S", Decimal(19), net, vat),),
        net_total=net, tax_total=vat, gross_total=net + vat, prepaid=Decimal(0), due=net + vat, order_id=po,
        order_date=date(2026, 11, 24), channel="", customer_number="", buyer_reference=po,
        payment_terms="Zahlbar innerhalb von 30 Tagen ohne Abzug.", seller_iban="DE02120300000000202051")


def test_a_zugferd_pdf_and_an_xrechnung_are_read_back_with_factur_x_and_matched(app, tmp_path):
    with app.session() as s:
        po = _shipped_po(app, s)
    renderer = Renderer()
    pdf = renderer.pdf(_partner_invoice("ZF-1", po.number, [("B-1", 2, "7.50"), ("C-1", 2, "3.25")]))
    (tmp_path / "ZF-1.pdf").write_bytes(pdf.content)
    out = back_office.import_invoice(app, "DS1", tmp_path / "ZF-1.pdf", dry_run=False)
    assert (out.data["state"], out.data["lines"], out.data["gross"]) == ("matched", 2, "25.59")
    xml = renderer.xml(_partner_invoice("XR-2", po.number, [("C-1", 2, "3.25")]), flavour="xrechnung")
    (tmp_path / "XR-2.xml").write_bytes(xml.content)
    out = back_office.import_invoice(app, "DS1", tmp_path / "XR-2.xml", dry_run=False)
    assert out.data["state"] == "matched"
    with app.session() as s:
        assert {i.number: i.source for i in s.scalars(select(PurchaseInvoice))} == {"ZF-1": "cii", "XR-2": "cii"}
        assert purchases.shipped(s, "DS1", unbilled=True) == []
    # a third invoice for C-1 bills more than was shipped
    xml = renderer.xml(_partner_invoice("XR-3", po.number, [("C-1", 1, "3.25")]), flavour="xrechnung")
    (tmp_path / "XR-3.xml").write_bytes(xml.content)
    out = back_office.import_invoice(app, "DS1", tmp_path / "XR-3.xml", dry_run=False)
    assert out.data["state"] == "disputed" and "5 piece(s) billed in all, 4 shipped" in out.problems[0]


def test_a_broken_e_invoice_is_refused_whole(app, tmp_path):
    (tmp_path / "x.pdf").write_bytes(b"%PDF-1.7 not really")
    with pytest.raises(InputError) as e:
        back_office.import_invoice(app, "DS1", tmp_path / "x.pdf", dry_run=False)
    assert e.value.where == "x.pdf"
    (tmp_path / "y.xml").write_bytes(b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>')
    with pytest.raises(InputError, match="DOCTYPE"):
        back_office.import_invoice(app, "DS1", tmp_path / "y.xml", dry_run=False)


def test_a_credited_return_books_the_purchase_credit_back_on_the_creditor(app, tmp_path):
    with app.session() as s:
        po = _shipped_po(app, s, "DS1", lines=(("B-1", 2),))
        [invoice] = f.invoiced(s, app.cfg, po.order)
        [rt] = returns.announce(s, app.cfg, po.order, {1: 1}, "zu klein", source="test", now=clock.now())
        s.commit()
        service.confirm_return(s, "DS1", rt.id, condition="as_new", note="", actor="test")
        s.commit()
        r = return_credit.credit_received(s, app.cfg, f.renderer())
        assert len(r.credited) == 1
    [entry] = _bookings(app, rt.number)
    # our purchase credit (7.50 net + 19 %) on DS1's creditor, against Wareneingang
    assert (entry.debit, entry.credit, entry.amount) == ("70001", "3400", Decimal("8.93"))


def test_booking_a_partners_invoice_needs_its_creditor_account(app, tmp_path):
    with app.session() as s:
        po = _shipped_po(app, s)
    _import(app, tmp_path, "re-8.csv", HEADER + f"RE-DS1-8;2026-11-25;{po.number};1;B-1;2;7.50;19\n")
    app.cfg.locations["DS1"].creditor_account = ""
    with pytest.raises(ConfigError) as e:
        _bookings(app, "RE-DS1-8")
    assert "locations.DS1.creditor_account" in e.value.where


def test_the_datev_export_books_the_partner_invoice_through_the_commands(bare_workspace, tmp_path):
    ws = bare_workspace
    f.fixed_clock(T)
    ds = sections(tmp_path, ds1=CREDITORS["ds1"], ds2=CREDITORS["ds2"])
    ws.write_config(extra=ds + "\n[accounts]\ndatev_consultant = 1001\ndatev_client = 1\n", company=COMPANY)
    app = ws.app()
    with app.session() as s:
        po = _shipped_po(app, s)
    app.dispose()
    path = _file(tmp_path, "re-9.csv", HEADER + f"RE-DS1-9;2026-11-25;{po.number};1;B-1;2;7.50;19\n")
    out = json.loads(ws.ok("dropship", "invoices", "import", str(path), "--partner", "DS1", "--json"))
    assert out["state"] == "matched"
    listed = json.loads(ws.ok("dropship", "invoices", "list", "--json"))
    assert [(i["invoice"], i["state"], i["gross"]) for i in listed] == [("RE-DS1-9", "matched", "17.85")]
    target = tmp_path / "extf.csv"
    ws.ok("export", "bookings", "--from", "2026-11-01", "--to", "2026-11-30", "--format", "datev", "-o", str(target))
    [row] = [ln for ln in target.read_text(encoding="cp1252").splitlines() if "RE-DS1-9" in ln]
    cells = row.split(";")
    assert cells[0] == "17,85" and "3400" in cells[6:8] and "70001" in cells[6:8]
