"""What the buyer and the merchant are told (caturactl/orders/notices.py) and what an invoice says
about its money (caturactl/billing/terms.py): the order confirmation with the transfer to make for a
prepayment, the shipping notice, the invoice with payment terms and EPC QR code for a purchase on
account, "paid on ... by ..." for a paid one; German and English; nothing to Amazon's buyers."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest
from lxml import etree
from pypdf import PdfReader
from sqlalchemy import select

import caturactl.model  # noqa: F401  (every table on Base.metadata)
from caturactl.billing import invoicing, terms
from caturactl.core import clock
from caturactl.core.db import Base, make_engine, make_sessionmaker
from caturactl.orders import notices
from caturactl.outbox.models import OutboxMessage
from tests import factories as f

NS = {"ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
      "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"}
ISSUE = date(2025, 11, 3)


@pytest.fixture
def s():
    engine = make_engine("sqlite://")
    Base.metadata.create_all(engine)
    session = make_sessionmaker(engine)()
    f.fixed_clock()
    yield session
    session.close()


def shop_order(s, *, method: str, country: str = "DE", **kw):
    return f.released(s, lines=[("KAF-ESP-1KG", 2, "24.90")], country=country, channel="shop",
                      marketplace_name="Kaffee-Shop", external_id=kw.pop("external_id", f"SW{method.upper()}"),
                      buyer_email=f"{method}@kunde.example", payment_method=method, **kw)


def mails(s, to: str | None = None) -> dict[str, dict]:
    rows = s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "email")).all()
    return {m.key: m.payload for m in rows if to is None or m.payload["to"] == [to]}


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "invoice.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], check=True, capture_output=True,
                          text=True).stdout


# --- the rule -------------------------------------------------------------------------------


def test_a_purchase_on_account_is_due_fourteen_days_after_the_invoice_by_transfer():
    t = terms.decide(collects=False, channel="Shop", method="invoice", settled=None, issue_date=ISSUE,
                     due_days=14, lang="de")
    assert (t.paid, t.due_date, t.means) == (False, date(2025, 11, 17), terms.TRANSFER)
    assert t.text == ("Zahlbar ohne Abzug bis zum 17.11.2025 per Überweisung; bitte geben Sie die "
                      "Rechnungsnummer als Verwendungszweck an.")
    en = terms.decide(collects=False, channel="Shop", method="invoice", settled=None, issue_date=ISSUE,
                      due_days=14, lang="en")
    assert en.text.startswith("Payable without deduction by 17 Nov 2025 by bank transfer")


@pytest.mark.parametrize("lang, method, on, text", [
    ("de", "paypal", date(2025, 11, 1), "Bezahlt am 01.11.2025 per PayPal."),
    ("en", "card", date(2025, 11, 1), "Paid on 1 Nov 2025 by credit card."),
    ("de", "prepayment", date(2025, 10, 30), "Bezahlt am 30.10.2025 per Vorkasse (Überweisung)."),
    ("de", "paypal", None, "Bezahlt per PayPal."),
])
def test_a_paid_order_says_when_and_how_it_was_paid_and_asks_for_nothing(lang, method, on, text):
    t = terms.decide(collects=False, channel="Shop", method=method, settled=terms.Settled(on, method),
                     issue_date=ISSUE, due_days=14, lang=lang)
    assert (t.paid, t.through_channel, t.text, t.due_date, t.means) == (True, False, text, None, "")


def test_money_the_channel_collected_is_paid_through_it_as_before():
    t = terms.decide(collects=True, channel="Amazon.de", method="", settled=None, issue_date=ISSUE,
                     due_days=14, lang="de")
    assert (t.paid, t.through_channel, t.text) == (True, True, "Der Betrag wurde über Amazon.de bezahlt.")


def test_cash_on_delivery_asks_for_no_transfer():
    t = terms.decide(collects=False, channel="Shop", method="cod", settled=None, issue_date=ISSUE,
                     due_days=21, lang="de")
    assert (t.paid, t.means, t.due_date) == (False, terms.CASH_ON_DELIVERY, None)


# --- invoices of shop orders -------------------------------------------------------------------


def test_an_invoice_purchase_carries_terms_bank_details_and_the_epc_qr_code(s, tmp_path):
    cfg = f.company_config()
    order = shop_order(s, method="invoice")
    [inv] = f.invoiced(s, cfg, order)
    doc = invoicing.from_json(inv.document)
    due = inv.issue_date + timedelta(days=14)
    assert (doc.due, doc.prepaid, doc.due_date, doc.payment_means) == (inv.gross_total, 0, due, "transfer")

    text = pdf_text(inv.pdf, tmp_path)
    assert f"Zahlbar ohne Abzug bis zum {due:%d.%m.%Y} per Überweisung" in text
    assert "IBAN DE02 1203 0000 0000 2020 51 · BIC BYLADEM1001 · Deutsche Kreditbank" in text
    assert f"Verwendungszweck: {inv.number}" in text
    assert "GiroCode" in text
    assert len(PdfReader(tmp_path / "invoice.pdf").pages[0].images) == 2  # the logo and the QR code

    xml = etree.fromstring(inv.xml)
    assert xml.xpath("//ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString/text()",
                     namespaces=NS) == [f"{due:%Y%m%d}"]
    assert xml.xpath("//ram:SpecifiedTradeSettlementPaymentMeans/ram:TypeCode/text()", namespaces=NS) == ["58"]
    assert xml.xpath("//ram:PayeePartyCreditorFinancialAccount/ram:IBANID/text()", namespaces=NS) == \
        ["DE02120300000000202051"]
    assert xml.xpath("//ram:PaymentReference/text()", namespaces=NS) == [inv.number]

    # The invoice mail says the terms too.
    body = mails(s)[f"email:invoice:{inv.number}"]["body"]
    assert f"bis zum {due:%d.%m.%Y}" in body


def test_an_order_paid_by_paypal_is_invoiced_as_paid_on_its_day_without_a_bank_account(s, tmp_path):
    cfg = f.company_config()
    order = shop_order(s, method="paypal")
    f.payment(s, order, method="paypal", paid=order.total_amount)
    [inv] = f.invoiced(s, cfg, order)
    doc = invoicing.from_json(inv.document)
    assert (doc.due, doc.prepaid, doc.due_date) == (0, inv.gross_total, None)
    assert doc.payment_terms == f"Bezahlt am {clock.now().astimezone(cfg.tz):%d.%m.%Y} per PayPal."
    text = pdf_text(inv.pdf, tmp_path)
    assert doc.payment_terms in text and "Verwendungszweck" not in text and "GiroCode" not in text
    assert len(PdfReader(tmp_path / "invoice.pdf").pages[0].images) == 1  # the logo alone
    xml = etree.fromstring(inv.xml)
    assert xml.xpath("//ram:SpecifiedTradeSettlementPaymentMeans/ram:TypeCode/text()", namespaces=NS) == ["ZZZ"]
    assert xml.xpath("//ram:IBANID", namespaces=NS) == []


def test_a_shop_order_the_shop_reports_paid_is_invoiced_as_paid(s):
    cfg = f.company_config()
    order = shop_order(s, method="card", payment_state="paid")
    [inv] = f.invoiced(s, cfg, order)
    assert inv.document["payment_terms"] == "Bezahlt per Kreditkarte." and Decimal(inv.document["due"]) == 0


# --- mails -------------------------------------------------------------------------------------


def test_a_prepayment_order_is_confirmed_with_the_transfer_to_make(s):
    cfg = f.company_config()
    order = shop_order(s, method="prepayment")
    p = f.payment(s, order, method="prepayment", due_in_days=7)
    assert notices.order_placed(s, cfg, order, payment=p) == 1
    body = mails(s)[f"email:order_confirmation:{order.external_id}"]["body"]
    due = (clock.now() + timedelta(days=7)).astimezone(cfg.tz)
    assert "vielen Dank für Ihre Bestellung SWPREPAYMENT" in body
    assert "2 × " in body and "Gesamtbetrag: " in body and "Zahlungsart: Vorkasse (Überweisung)" in body
    assert f"bis zum {due:%d.%m.%Y} auf unser Konto" in body
    assert "IBAN:             DE02 1203 0000 0000 2020 51" in body
    assert "Verwendungszweck: SWPREPAYMENT" in body
    assert f"Bitte überweisen Sie {notices.money(order.total_amount, 'EUR', 'de')}" in body


def test_a_buyer_abroad_gets_the_confirmation_in_english(s):
    cfg = f.company_config()
    order = shop_order(s, method="paypal", country="FR")
    notices.order_placed(s, cfg, order)
    mail = mails(s)[f"email:order_confirmation:{order.external_id}"]
    assert mail["subject"] == f"Your order {order.external_id}"
    assert "thank you for your order" in mail["body"] and "Payment method: PayPal" in mail["body"]
    assert "IBAN" not in mail["body"]


def test_the_merchant_hears_of_each_new_order_when_an_address_is_set(s):
    cfg = f.company_config(company={**f.company_config().company.model_dump(), "order_mail": "laden@test.example"})
    shop = shop_order(s, method="invoice")
    amazon = f.released(s)
    notices.order_placed(s, cfg, shop)
    notices.order_placed(s, cfg, amazon)
    to_merchant = mails(s, "laden@test.example")
    assert set(to_merchant) == {f"email:merchant:new_order:{shop.external_id}",
                                f"email:merchant:new_order:{amazon.external_id}"}
    assert to_merchant[f"email:merchant:new_order:{shop.external_id}"]["subject"] == \
        f"Neue Bestellung {shop.external_id}"
    # ... and none without one
    assert notices.order_placed(s, f.company_config(), f.released(s)) == 0


def test_nothing_is_mailed_to_amazon_buyers(s):
    cfg = f.company_config()
    order = f.released(s)
    parcel = SimpleNamespace(carrier="DHL", tracking_number="00340434161094042557")
    assert notices.order_placed(s, cfg, order) == 0
    assert not notices.notify(s, cfg, order, "shipped", key="shipped:P1", parcel=parcel, tracking_url="")
    assert mails(s) == {}


def test_an_old_order_of_a_first_import_is_not_confirmed_again(s):
    order = shop_order(s, method="paypal", created_at=clock.now() - timedelta(days=20))
    assert notices.order_placed(s, f.company_config(), order) == 0


@pytest.mark.parametrize("country, greeting, line", [
    ("DE", "Guten Tag", "Sendungsverfolgung: https://track.example/1"),
    ("NL", "Hello", "Track your parcel: https://track.example/1"),
])
def test_the_shipping_notice_keeps_its_outbox_key_and_speaks_the_buyers_language(s, country, greeting, line):
    order = shop_order(s, method="invoice", country=country)
    parcel = SimpleNamespace(carrier="DHL", tracking_number="00340434161094042557")
    assert notices.notify(s, f.company_config(), order, "shipped", key="shipped:PKG-1", parcel=parcel,
                          tracking_url="https://track.example/1")
    mail = mails(s)[f"email:shipped:{order.external_id}:PKG-1"]
    assert mail["body"].startswith(greeting) and line in mail["body"] and "00340434161094042557" in mail["body"]
    assert f"{order.external_id}" in mail["subject"]


@pytest.mark.skipif(shutil.which("zbarimg") is None, reason="zbarimg (zbar-tools) is not installed")
def test_the_qr_code_on_the_page_decodes_to_the_epc_payload(s, tmp_path):
    cfg = f.company_config()
    [inv] = f.invoiced(s, cfg, shop_order(s, method="invoice"))
    (tmp_path / "invoice.pdf").write_bytes(inv.pdf)
    subprocess.run(["pdftoppm", "-png", "-r", "300", "-f", "1", "-l", "1", str(tmp_path / "invoice.pdf"),
                    str(tmp_path / "page")], check=True)
    [png] = tmp_path.glob("page*.png")
    out = subprocess.run(["zbarimg", "-q", "--raw", "-Sbinary", str(png)], capture_output=True, check=True).stdout
    amount = format(inv.gross_total, "f").rstrip("0").rstrip(".")
    assert out.rstrip(b"\n").decode("utf-8") == "\n".join([
        "BCD", "002", "1", "SCT", "BYLADEM1001", "Test Handel GmbH", "DE02120300000000202051",
        f"EUR{amount}", "", "", inv.number])


def test_a_buyer_in_luxembourg_reads_notices_in_the_language_of_the_invoice(s):
    cfg = f.company_config()
    order = shop_order(s, method="invoice", country="LU")
    notices.order_placed(s, cfg, order)
    [inv] = f.invoiced(s, cfg, order)
    mail = mails(s)[f"email:order_confirmation:{order.external_id}"]
    assert inv.language == invoicing.language_for(cfg, "LU") == "en"
    assert mail["subject"] == notices.SUBJECTS[inv.language]["order_confirmation"].format(order=order.external_id)
