"""Bookings of invoices, credit notes and settlements (pure), and what DATEV reads of them."""

from __future__ import annotations

import csv
import dataclasses
import io
import tomllib
from datetime import date
from decimal import Decimal as D
from types import SimpleNamespace

import pytest

from caturactl.accounting import bookings
from caturactl.accounting.bookings import FeeBooking, fee_booking, unmapped_fees
from caturactl.app import App
from caturactl.config import AccountsConfig
from caturactl.core.errors import InputError
from caturactl.accounting.exporting import write_csv
from caturactl.ports import InvoiceDocument, InvoiceItem, InvoiceParty, TaxBreakdown
from connectors.datev.extf import BOOKING_CAPTIONS

AMAZON = {"clearing_account": "amazon_clearing"}  # what AmazonChannel books on


def invoice_entries(d, accounts, **kw):
    """The bookings of an invoice Amazon collected the money of, unless ``kw`` says otherwise."""
    return bookings.invoice_entries(d, accounts, **{**AMAZON, **kw})


def settlement_entries(*args):
    return bookings.settlement_entries(*args, **AMAZON, label="Amazon")


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
    skr04 = invoice_entries(doc(), AccountsConfig(chart="SKR04"), clearing_account=None)
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


def datev_rows(rows, accounts: AccountsConfig, day: date = date(2026, 11, 25)) -> list[dict]:
    """``rows`` as App.write_datev_bookings writes them, read back cell by cell as DATEV reads."""
    out = io.BytesIO()
    App.write_datev_bookings(SimpleNamespace(accounts=accounts), rows, day, day, out)
    lines = out.getvalue().decode("cp1252").split("\r\n")
    return [dict(zip(BOOKING_CAPTIONS, r)) for r in csv.reader(lines[2:-1], delimiter=";")]


CELLS = ("Konto", "Gegenkonto (ohne BU-Schlüssel)", "Umsatz (ohne Soll/Haben-Kz)", "BU-Schlüssel",
         "EU-Land u. UStID (Bestimmung)", "EU-Steuersatz (Bestimmung)")


def cells(rows: list[dict]) -> list[tuple[str, ...]]:
    return [tuple(r[c] for c in CELLS) for r in rows]


def test_intra_community_supplies_and_their_credit_notes_carry_the_buyers_vat_id_to_datev():
    accounts = AccountsConfig(datev_consultant=1001, datev_client=1)
    b2b = doc("FR", (("K", D(0), D("80.00"), D("0.00")),), vat_id="fr 12345678901", tax_country="")
    rows = invoice_entries(b2b, accounts) + invoice_entries(dataclasses.replace(b2b, type_code=381), accounts)
    assert [(e.debit, e.credit, e.amount, e.tax_key, e.vat_id, e.country, e.rate) for e in rows] == [
        ("1500", "8125", D("80.00"), "", "FR12345678901", "", None),
        ("8125", "1500", D("80.00"), "", "FR12345678901", "", None)]
    # datev.md §3 column 40: the buyer's full VAT id (country prefix included), for the ZM;
    # column 41 stays empty: a tax-free supply has no destination rate.
    assert cells(datev_rows(rows, accounts)) == [
        ("1500", "8125", "80,00", "", "FR12345678901", ""), ("8125", "1500", "80,00", "", "FR12345678901", "")]
    greek = invoice_entries(doc("GR", (("K", D(0), D("10.00"), D("0.00")),), vat_id="EL094259216", tax_country=""),
                            AccountsConfig(chart="SKR04", datev_consultant=1001, datev_client=1))
    assert cells(datev_rows(greek, AccountsConfig(chart="SKR04", datev_consultant=1001, datev_client=1))) == [
        ("1300", "4125", "10,00", "", "EL094259216", "")]
    out = io.BytesIO()
    write_csv(rows, out, bom=False)
    exported = list(csv.DictReader(io.StringIO(out.getvalue().decode("utf-8")), delimiter=";"))
    assert [(r["credit"], r["vat_id"], r["country"], r["rate"]) for r in exported] == [
        ("8125", "FR12345678901", "", ""), ("1500", "FR12345678901", "", "")]


def test_an_intra_community_supply_without_the_buyers_vat_id_is_refused():
    with pytest.raises(InputError) as caught:
        invoice_entries(doc("FR", (("K", D(0), D("80.00"), D("0.00")),), tax_country=""), AccountsConfig())
    assert caught.value.where == "RE2026-000001: buyer vat_id"


def test_oss_sales_to_france_italy_and_spain_and_their_credit_notes_in_datev_columns_40_and_41():
    accounts = AccountsConfig(datev_consultant=1001, datev_client=1)
    sales = [doc(country, (("S", rate, D("50.00"), tax),), tax_country=country)
             for country, rate, tax in (("FR", D(20), D("10.00")), ("IT", D(22), D("11.00")),
                                        ("ES", D(21), D("10.50")))]
    rows = [e for d in sales for e in invoice_entries(d, accounts)]
    rows += [e for d in sales for e in invoice_entries(dataclasses.replace(d, type_code=381), accounts)]
    assert cells(datev_rows(rows, accounts)) == [
        ("1500", "8320", "60,00", "10", "FR", "20,00"), ("1500", "8320", "61,00", "10", "IT", "22,00"),
        ("1500", "8320", "60,50", "10", "ES", "21,00"),
        ("8320", "1500", "60,00", "10", "FR", "20,00"), ("8320", "1500", "61,00", "10", "IT", "22,00"),
        ("8320", "1500", "60,50", "10", "ES", "21,00")]
    newer = AccountsConfig(chart="SKR04", oss_tax_key="240", datev_consultant=1001, datev_client=1)
    assert cells(datev_rows(invoice_entries(sales[1], newer), newer)) == [
        ("1300", "4320", "61,00", "240", "IT", "22,00")]


# The fee and other lines of reference/amazon/settlement_v2_flatfile_DE_composed.tsv, summed per
# transaction-type/amount-type/amount-description (what the settlement import stores); its sales
# are 80.94, refunds -20.00, the reserve -1.00 and the payout 2.05.
SAMPLE_FEES = [
    ("Order/ItemFees/Commission", D("-12.29")),
    ("Order/ItemFees/FBAPerUnitFulfillmentFee", D("-3.05")),
    ("Refund/ItemFees/Commission", D("3.37")),
    ("Refund/ItemFees/RefundCommission", D("-0.67")),
    ("ServiceFee/Cost of Advertising/TransactionTotalAmount", D("-12.40")),
    ("other-transaction/FBA Inventory Reimbursement/WAREHOUSE_DAMAGE", D("8.50")),
    ("other-transaction/other-transaction/Storage Fee", D("-2.35")),
    ("other-transaction/other-transaction/Subscription Fee", D("-39.00")),
]
SAMPLE_PAYOUT, SAMPLE_SALES, SAMPLE_REFUNDS, SAMPLE_RESERVE = D("2.05"), D("80.94"), D("-20.00"), D("-1.00")


@pytest.mark.parametrize(("chart", "accounts"), [
    ("SKR03", {"commission": "4760", "fba": "4730", "ads": "4600", "reimbursed": "2742", "clearing": "1500",
               "transit": "1360"}),
    ("SKR04", {"commission": "6770", "fba": "6740", "ads": "6600", "reimbursed": "4970", "clearing": "1300",
               "transit": "1460"})])
def test_each_settlement_fee_line_is_booked_on_its_account_under_section_13b(chart, accounts):
    a = SimpleNamespace(**accounts)
    day = date(2024, 5, 17)
    rows = settlement_entries("11894563021", day, SAMPLE_FEES, SAMPLE_PAYOUT, AccountsConfig(chart=chart))
    assert [(e.debit, e.credit, e.amount, e.tax_key) for e in rows] == [
        (a.commission, a.clearing, D("12.29"), "94"),  # Amazon's services: § 13b key (accounts.md §4)
        (a.fba, a.clearing, D("3.05"), "94"),
        (a.clearing, a.commission, D("3.37"), "94"),  # a commission paid back lowers the § 13b base
        (a.commission, a.clearing, D("0.67"), "94"),
        (a.ads, a.clearing, D("12.40"), "94"),
        (a.clearing, a.reimbursed, D("8.50"), ""),  # damages for lost stock: no service, no VAT
        (a.fba, a.clearing, D("2.35"), "94"),
        (a.commission, a.clearing, D("39.00"), "94"),
        (a.transit, a.clearing, D("2.05"), "")]
    assert all(e.date == day and e.document == "11894563021" for e in rows)
    assert rows[4].text == "Amazon ServiceFee/Cost of Advertising/TransactionTotalAmount"
    # Every cent of the settlement ends on an account: with the sales and refunds booked by their
    # invoices and credit notes, the clearing account keeps exactly the reserve Amazon holds.
    clearing = SAMPLE_SALES + SAMPLE_REFUNDS + sum(
        (e.amount if e.debit == a.clearing else -e.amount for e in rows), D(0))
    assert clearing == -SAMPLE_RESERVE
    assert sum((amount for _, amount in SAMPLE_FEES), D(0)) + SAMPLE_SALES + SAMPLE_REFUNDS + SAMPLE_RESERVE \
        == SAMPLE_PAYOUT
    assert unmapped_fees(SAMPLE_FEES, AccountsConfig(chart=chart)) == []
    # DATEV takes them: the § 13b key on the non-automatic fee accounts, none on the others.
    written = datev_rows(rows, AccountsConfig(chart=chart, datev_consultant=1001, datev_client=1), day)
    assert [(r["Konto"], r["BU-Schlüssel"], r["Umsatz (ohne Soll/Haben-Kz)"]) for r in written][:2] == [
        (a.commission, "94", "12,29"), (a.fba, "94", "3,05")]


def test_a_fee_line_nothing_names_is_booked_under_section_13b_on_the_default_account_and_listed():
    unknown = [("other-transaction/other-transaction/Digital Services Fee", D("-1.20")),
               ("Chargeback Refund/ItemPrice/Principal", D("-5.00"))]
    lines = SAMPLE_FEES + unknown
    default = AccountsConfig()
    assert unmapped_fees(lines, default) == unknown
    rows = settlement_entries("770001", date(2026, 11, 17), unknown, D(0), default)
    # The automatic § 13b account (3123) books both taxes itself: no key on it (accounts.md §3).
    assert [(e.debit, e.credit, e.amount, e.tax_key) for e in rows] == [
        ("3123", "1500", D("1.20"), ""), ("3123", "1500", D("5.00"), "")]
    elsewhere = AccountsConfig(fee_default="4900", reverse_charge_tax_key="46")
    assert [(e.debit, e.tax_key) for e in settlement_entries("770001", date(2026, 11, 17), unknown, D(0),
                                                             elsewhere)] == [("4900", "46"), ("4900", "46")]
    assert fee_booking(unknown[0][0], default) == FeeBooking("3123", "", True, "")


def test_fee_accounts_from_the_configuration_come_before_the_defaults():
    accounts = AccountsConfig(**tomllib.loads('''  # as in caturactl.toml
        [accounts]
        chart = "SKR04"
        [accounts.fee_accounts]
        "Digital Services Fee" = { account = "6771" }
        "*/ItemFees/Commission" = { account = "fees_13b" }
        "Subscription Fee" = { account = "6300", reverse_charge = false, tax_key = "9" }
        "Chargeback Refund/*" = { account = "revenue_standard", reverse_charge = false }
        ''')["accounts"])
    assert fee_booking("other-transaction/other-transaction/Digital Services Fee", accounts) == FeeBooking(
        "6771", "94", True, "Digital Services Fee")
    assert fee_booking("Order/ItemFees/Commission", accounts) == FeeBooking(
        "5923", "", True, "*/ItemFees/Commission")  # the automatic § 13b account: no key
    assert fee_booking("other-transaction/other-transaction/Subscription Fee", accounts) == FeeBooking(
        "6300", "9", False, "Subscription Fee")
    assert fee_booking("Chargeback Refund/ItemPrice/Principal", accounts) == FeeBooking(
        "4400", "", False, "Chargeback Refund/*")
    assert fee_booking("Refund/ItemFees/RefundCommission", accounts) == FeeBooking(  # a default still
        "6770", "94", True, "*/ItemFees/RefundCommission")
    with pytest.raises(ValueError, match="neither an account number nor a purpose"):
        AccountsConfig(fee_accounts={"Storage Fee": {"account": "storage"}})
