"""Bookings of invoices and credit notes (pure)."""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal as D

from caturactl.accounting import invoice_entries
from caturactl.config import AccountsConfig
from caturactl.ports import InvoiceDocument, InvoiceItem, InvoiceParty, TaxBreakdown

SELLER = InvoiceParty("Test Handel GmbH", "Lagerweg 7", "50667", "Köln", "DE", vat_id="DE123456789")


def doc(country="DE", taxes=(("S", D(19), D("100.00"), D("19.00")), ("S", D(7), D("10.00"), D("0.70"))),
        notes=(), vat_id="", type_code=380, tax_country="DE") -> InvoiceDocument:
    items = tuple(InvoiceItem(i + 1, f"SKU{i}", "x", D(1), net, net, cat, rate)
                  for i, (cat, rate, net, _) in enumerate(taxes))
    tb = tuple(TaxBreakdown(cat, rate, net, tax) for cat, rate, net, tax in taxes)
    net = sum(t.net for t in tb)
    tax = sum(t.tax for t in tb)
    return InvoiceDocument(
        number="RE2026-000001", type_code=type_code, issue_date=date(2026, 11, 25), supply_date=date(2026, 11, 24),
        currency="EUR", seller=SELLER, buyer=InvoiceParty("Eva Roth", "Rue 1", "75001", "Paris", country,
                                                          vat_id=vat_id),
        ship_to=None, items=items, taxes=tb, net_total=net, tax_total=tax, gross_total=net + tax,
        prepaid=net + tax, due=D(0), order_id="302-1234567-1234567", order_date=date(2026, 11, 23),
        channel="Amazon.de", customer_number="K000001", notes=tuple(notes),
        preceding_invoice="RE2026-000000" if type_code == 381 else "", tax_country=tax_country)


def test_domestic_invoice_books_gross_per_rate_on_automatic_accounts():
    skr03 = invoice_entries(doc(), AccountsConfig())
    assert [(e.debit, e.credit, e.amount, e.tax_key) for e in skr03] == [
        ("1500", "8400", D("119.00"), ""), ("1500", "8300", D("10.70"), "")]
    skr04 = invoice_entries(doc(), AccountsConfig(chart="SKR04"), paid_through_amazon=False)
    assert [(e.debit, e.credit) for e in skr04] == [("1200", "4400"), ("1200", "4300")]
    assert sum(e.amount for e in skr03) == doc().gross_total


def test_oss_intra_eu_export_and_credit_notes():
    oss = invoice_entries(doc("FR", (("S", D(20), D("50.00"), D("10.00")),),
                              tax_country="FR"),
                          AccountsConfig())
    assert [(e.credit, e.tax_key, e.country, e.rate) for e in oss] == [("8320", "10", "FR", D(20))]
    k = invoice_entries(doc("AT", (("K", D(0), D("80.00"), D("0.00")),), vat_id="ATU12345678"), AccountsConfig())
    assert [(e.credit, e.vat_id, e.amount) for e in k] == [("8125", "ATU12345678", D("80.00"))]
    g = invoice_entries(doc("CH", (("G", D(0), D("30.00"), D("0.00")),)), AccountsConfig())
    assert g[0].credit == "8120"
    credit = invoice_entries(dataclasses.replace(doc(), type_code=381), AccountsConfig())
    assert [(e.debit, e.credit) for e in credit] == [("8400", "1500"), ("8300", "1500")]
    custom = AccountsConfig(overrides={"amazon_clearing": "1290"})
    assert invoice_entries(doc(), custom)[0].debit == "1290"


def test_oss_bookings_name_the_destination_not_the_billing_country():
    # Billed to an address in Germany, shipped to Austria and taxed there under OSS.
    oss = invoice_entries(doc("DE", (("S", D(20), D("50.00"), D("10.00")),), tax_country="AT"),
                          AccountsConfig())
    assert [(e.tax_key, e.country, e.rate) for e in oss] == [("10", "AT", D(20))]
    domestic = invoice_entries(doc(), AccountsConfig())
    assert all(e.country == "" and e.rate is None for e in domestic)


def test_oss_bookings_reach_datev_columns_40_and_41_and_the_csv_export():
    import csv
    import io
    from types import SimpleNamespace

    from caturactl.app import App
    from caturactl.exporting import write_csv
    from connectors.datev.extf import BOOKING_CAPTIONS
    accounts = AccountsConfig(datev_consultant=1001, datev_client=1)
    rows = (invoice_entries(doc(), accounts)
            + invoice_entries(doc("IT", (("S", D(22), D("50.00"), D("11.00")),), tax_country="IT"), accounts)
            + invoice_entries(doc("GR", (("S", D(13), D("10.00"), D("1.30")),), tax_country="GR"), accounts))
    out = io.BytesIO()
    day = date(2026, 11, 25)
    App.write_datev_bookings(SimpleNamespace(accounts=accounts), rows, day, day, out)
    lines = out.getvalue().decode("cp1252").split("\r\n")
    assert lines[1].split(";") == list(BOOKING_CAPTIONS)
    written = [dict(zip(BOOKING_CAPTIONS, r)) for r in csv.reader(lines[2:-1], delimiter=";")]
    assert [(r["Gegenkonto (ohne BU-Schlüssel)"], r["BU-Schlüssel"], r["EU-Land u. UStID (Bestimmung)"],
             r["EU-Steuersatz (Bestimmung)"]) for r in written] == [
        ("8400", "", "", ""), ("8300", "", "", ""), ("8320", "10", "IT", "22,00"), ("8320", "10", "EL", "13,00")]
    out = io.BytesIO()
    write_csv(rows, out, bom=False)
    exported = list(csv.DictReader(io.StringIO(out.getvalue().decode("utf-8")), delimiter=";"))
    assert [(r["country"], r["rate"]) for r in exported] == [("", ""), ("", ""), ("IT", "22"), ("GR", "13")]
