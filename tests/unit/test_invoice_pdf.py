"""The invoice PDF (connectors/einvoice/pdf.py): PDF/A-3B, fonts embedded, every § 14 Abs. 4 UStG
field on the page (reference/accounting/invoice.md §1), German and English, credit notes,
paging, the same bytes for the same document, and the font reuse that makes it fast.

The text checks read the PDF's text layer with poppler's ``pdftotext -raw`` (content-stream
order, so a wrapped description reads as one run once whitespace is folded). Without poppler
those tests skip on a developer's machine and fail under CI, where a skip proves nothing.

``CATURACTL_WRITE_SAMPLES=1 .venv/bin/pytest tests/unit/test_invoice_pdf.py -k sample`` rewrites
docs/invoice-sample.pdf and docs/invoice-sample.png (page 1 at 80 dpi). The variable is read at
import because conftest's autouse fixture removes CATURACTL_* variables before each test.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from io import BytesIO
from pathlib import Path

import pytest
from fpdf.fonts import TTFFont
from PIL import Image
from pypdf import PdfReader

from caturactl.core.errors import ConfigError, InputError
from caturactl.ports import InvoiceDocument, InvoiceItem, InvoiceParty, TaxBreakdown
from connectors.einvoice import pdf as pdf_module
from connectors.einvoice.pdf import FONT_PACKAGE, InvoicePdf, render_many

IN_CI = bool(os.environ.get("CI"))
WRITE_SAMPLES = os.environ.get("CATURACTL_WRITE_SAMPLES") == "1"
REPO = Path(__file__).resolve().parents[2]
CENT = Decimal("0.01")

SELLER = InvoiceParty(name="Muster Handel GmbH", street="Beispielstraße 1", postal_code="10115",
                      city="Berlin", country="DE", vat_id="DE123456789",
                      tax_number="27/123/45678", email="rechnung@muster-handel.de",
                      phone="+49 30 1234567")
FOOTER = ("Amtsgericht Berlin-Charlottenburg, HRB 123456", "Geschäftsführerin: Erika Mustermann")
# What CompanyConfig.legal_lines() gives for a GmbH (§ 35a GmbHG), and the whole letterhead that
# invoicing.footer() put into doc.footer so far (the invoices stored with it keep it).
LEGAL_FOOTER = ("Sitz der Gesellschaft: Berlin", "Registergericht: Amtsgericht Berlin-Charlottenburg",
                "HRB 123456", "Geschäftsführer: Erika Mustermann, Max Mustermann")
LETTERHEAD_FOOTER = (
    "Muster Handel GmbH, Beispielstraße 1, 10115 Berlin", "USt-IdNr. DE123456789 · Steuernummer 27/123/45678",
    "Deutsche Kreditbank · IBAN DE02120300000000202051 · BIC BYLADEM1001",
    "Amtsgericht Berlin-Charlottenburg, HRB 123456 · Geschäftsführung: Erika Mustermann",
    "+49 30 1234567 · rechnung@muster-handel.de · www.muster-handel.de")
MM = 72 / 25.4  # PDF points per millimetre
INTRA_EU_NOTE = ("Steuerfreie innergemeinschaftliche Lieferung nach § 4 Nr. 1 Buchst. b "
                 "i. V. m. § 6a UStG.")


# --- documents -----------------------------------------------------------------------------


def item(position: int, description: str, quantity: str, unit_net: str, rate: str, *,
         category: str = "S", sku: str = "") -> InvoiceItem:
    qty, price = Decimal(quantity), Decimal(unit_net)
    return InvoiceItem(position=position, sku=sku or f"MH-{position:03d}", description=description,
                       quantity=qty, unit_net=price,
                       net=(qty * price).quantize(CENT, rounding=ROUND_HALF_UP),
                       tax_category=category, tax_rate=Decimal(rate))


def invoice(items: list[InvoiceItem], **fields) -> InvoiceDocument:
    """A consistent document: the VAT breakdown and totals computed from ``items``."""
    reasons = fields.pop("exemption_reasons", {})
    groups: dict[tuple[str, Decimal], Decimal] = {}
    for it in items:
        groups[(it.tax_category, it.tax_rate)] = groups.get((it.tax_category, it.tax_rate), Decimal(0)) + it.net
    taxes = tuple(TaxBreakdown(category=cat, rate=rate, net=net,
                               tax=(net * rate / 100).quantize(CENT, rounding=ROUND_HALF_UP),
                               exemption_reason=reasons.get(cat, ""))
                  for (cat, rate), net in sorted(groups.items(), key=lambda kv: -kv[0][1]))
    net_total = sum((t.net for t in taxes), Decimal(0))
    tax_total = sum((t.tax for t in taxes), Decimal(0))
    values = dict(
        number="RE-2026-000123", type_code=380, issue_date=date(2026, 11, 25),
        supply_date=date(2026, 11, 24), currency="EUR", seller=SELLER,
        buyer=InvoiceParty(name="Jürgen Müller", street="Hauptstraße 12a", postal_code="50667",
                           city="Köln", country="DE"),
        ship_to=None, items=tuple(items), taxes=taxes, net_total=net_total, tax_total=tax_total,
        gross_total=net_total + tax_total, prepaid=net_total + tax_total, due=Decimal("0.00"),
        order_id="028-1234567-1234567", order_date=date(2026, 11, 23), channel="Amazon.de",
        customer_number="K000042", delivery_ids=("L000123",), payment_terms="Bezahlt über Amazon.",
        seller_iban="DE02120300000000202051", seller_bic="BYLADEM1001",
        seller_bank="Deutsche Kreditbank", footer=FOOTER)
    values.update(fields)
    return InvoiceDocument(**values)


def german_b2c() -> InvoiceDocument:
    return invoice([
        item(1, "Bio-Kräutertee „Abendruhe“, 20 Beutel – mit Melisse, Lavendel und Orangenblüten "
                "aus kontrolliert biologischem Anbau", "2", "4.2017", "7"),
        item(2, "Teekanne aus Borosilikatglas, 1 l", "2", "617.28", "19", sku="MH-KANNE-1L"),
        item(3, "Edelstahl-Teesieb", "3", "5.0336", "19"),
    ])


def covid_rates() -> InvoiceDocument:
    # The reduced rates of 2020-07-01..2020-12-31 (Zweites Corona-Steuerhilfegesetz).
    return invoice([item(1, "Espressomaschine", "1", "199.00", "16"),
                    item(2, "Kaffeebohnen 1 kg", "2", "12.50", "5")],
                   number="RE-2020-004711", issue_date=date(2020, 9, 15),
                   supply_date=date(2020, 9, 14), order_date=date(2020, 9, 12))


def english_for_france() -> InvoiceDocument:
    buyer = InvoiceParty(name="Amélie Dubois", street="12 Rue de Rivoli", postal_code="75001",
                         city="Paris", country="FR")
    return invoice([item(1, "Glass teapot, 1 l", "2", "617.28", "20"),
                    item(2, "Stainless steel tea strainer", "1", "5.0336", "20")],
                   number="RE-2026-000124", buyer=buyer, language="en", channel="Amazon.fr",
                   notes=("VAT of France charged under the EU One-Stop-Shop scheme (OSS).",),
                   payment_terms="Paid via Amazon.",
                   footer=("Register court Berlin-Charlottenburg, HRB 123456",
                           "Managing director: Erika Mustermann"))


def intra_eu_b2b() -> InvoiceDocument:
    buyer = InvoiceParty(name="Anna Gruber", company="Gruber Gastro GmbH", street="Mariahilfer Straße 45",
                         postal_code="1060", city="Wien", country="AT", vat_id="ATU12345678")
    return invoice([item(1, "Teekanne aus Borosilikatglas, 1 l", "10", "20.50", "0", category="K"),
                    item(2, "Edelstahl-Teesieb", "20", "4.20", "0", category="K")],
                   number="RE-2026-000125", buyer=buyer, notes=(INTRA_EU_NOTE,),
                   exemption_reasons={"K": "Steuerfreie innergemeinschaftliche Lieferung"},
                   prepaid=Decimal("0.00"), due=Decimal("289.00"),
                   payment_terms="Zahlbar innerhalb von 14 Tagen ohne Abzug.")


def credit_note() -> InvoiceDocument:
    return invoice([item(1, "Edelstahl-Teesieb", "1", "5.0336", "19")],
                   number="RK-2026-000007", type_code=381, preceding_invoice="RE-2026-000123",
                   preceding_date=date(2026, 11, 25), issue_date=date(2026, 12, 2),
                   supply_date=date(2026, 11, 24), payment_terms="Der Betrag wird über Amazon erstattet.")


def discounted(position: int, description: str, quantity: str, unit_gross: str, rate: str,
               discount_gross: str, reason: str, *, sku: str = "") -> InvoiceItem:
    """A line the buyer got ``discount_gross`` off (a promotion), split as the invoicing stage
    does: line net and allowance each from their gross, the unit price before the discount."""
    qty, factor = Decimal(quantity), 1 + Decimal(rate) / 100
    net = ((qty * Decimal(unit_gross) - Decimal(discount_gross)) / factor).quantize(CENT, rounding=ROUND_HALF_UP)
    allowance = (Decimal(discount_gross) / factor).quantize(CENT, rounding=ROUND_HALF_UP)
    return InvoiceItem(position=position, sku=sku or f"MH-{position:03d}", description=description,
                       quantity=qty, unit_net=((net + allowance) / qty).quantize(Decimal("0.0001")), net=net,
                       tax_category="S", tax_rate=Decimal(rate), allowance=allowance,
                       allowance_gross=Decimal(discount_gross), allowance_reason=reason)


def promotion_19() -> InvoiceDocument:
    # 29.99 - 5.00 paid for the scissors: 21.00 net after 4.20 net off, 25.20 net before.
    return invoice([discounted(1, "Gartenschere Profi", "1", "29.99", "19", "5.00", "Aktion PLM-4711"),
                    item(2, "Pflanzkübel", "2", "8.36", "19")], paid_through_channel=True)


def promotion_7_with_shipping() -> InvoiceDocument:
    # 3 x 4.49 - 1.35 paid for the tea, 4.90 shipping: all at 7 %.
    return invoice([discounted(1, "Bio-Kräutertee „Abendruhe“", "3", "4.49", "7", "1.35", "Aktion PLM-0815"),
                    item(2, "Versandkosten", "1", "4.5794", "7", sku="VERSAND")], paid_through_channel=True)


def forty_items(language: str = "de") -> InvoiceDocument:
    items = [item(n, f"Artikel Nummer {n} mit einer etwas längeren Bezeichnung, damit die Zeile "
                     f"umbricht", str(n % 3 + 1), f"{n}.99", "19" if n % 4 else "7")
             for n in range(1, 41)]
    return invoice(items, number="RE-2026-000140", language=language)


# --- helpers ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def renderer() -> InvoicePdf:
    return InvoicePdf()


def poppler(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        if IN_CI:
            pytest.fail(f"{tool} (poppler-utils) is not installed: CI must check the rendered PDF")
        pytest.skip(f"{tool} (poppler-utils) is not installed here (CI installs it)")
    return path


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    """The text layer in content-stream order, whitespace (and Babel's no-break spaces) folded."""
    path = tmp_path / "invoice.pdf"
    path.write_bytes(pdf)
    out = subprocess.run([poppler("pdftotext"), "-raw", "-enc", "UTF-8", str(path), "-"],
                         check=True, capture_output=True).stdout.decode("utf-8")
    return " ".join(out.replace("\xa0", " ").replace("\u202f", " ").split())


def page_texts(pdf: bytes, tmp_path: Path) -> list[str]:
    path = tmp_path / "pages.pdf"
    path.write_bytes(pdf)
    out = subprocess.run([poppler("pdftotext"), "-raw", "-enc", "UTF-8", str(path), "-"],
                         check=True, capture_output=True).stdout.decode("utf-8")
    return [" ".join(p.replace("\xa0", " ").split()) for p in out.split("\f") if p.strip()]


def de(amount: Decimal) -> str:
    """German number format, written without Babel so the test does not check Babel with itself."""
    return format(amount, ",.2f").replace(",", "_").replace(".", ",").replace("_", ".")


def en(amount: Decimal) -> str:
    return format(amount, ",.2f")


# --- PDF/A and fonts -------------------------------------------------------------------------


def test_invoice_is_pdfa_3b_with_its_own_dates_in_the_xmp(renderer):
    pdf = renderer.render(german_b2c())
    assert pdf.startswith(b"%PDF-")
    xmp = PdfReader(BytesIO(pdf)).xmp_metadata
    assert xmp is not None
    assert xmp.pdfaid_part == "3"
    assert xmp.pdfaid_conformance == "B"
    assert xmp.dc_title["x-default"] == "Rechnung RE-2026-000123"
    assert xmp.xmp_create_date.date() == date(2026, 11, 25)
    assert xmp.xmp_modify_date == xmp.xmp_create_date


def test_both_dejavu_fonts_are_embedded_as_subsets(renderer, tmp_path):
    path = tmp_path / "invoice.pdf"
    path.write_bytes(renderer.render(german_b2c()))
    out = subprocess.run([poppler("pdffonts"), str(path)], check=True, capture_output=True,
                         text=True).stdout
    fonts = [line.split() for line in out.splitlines()[2:] if line.strip()]
    names = {row[0].split("+")[-1] for row in fonts}
    assert names == {"DejaVuSansBook", "DejaVuSansBold"}
    for row in fonts:
        emb, sub = row[-5], row[-4]
        assert (emb, sub) == ("yes", "yes"), row


def test_page_one_renders_to_a_page_that_is_not_blank(renderer, tmp_path):
    path = tmp_path / "invoice.pdf"
    path.write_bytes(renderer.render(german_b2c()))
    subprocess.run([poppler("pdftoppm"), "-r", "50", "-png", "-f", "1", "-l", "1", str(path),
                    str(tmp_path / "page")], check=True)
    image = Image.open(next(tmp_path.glob("page*.png"))).convert("L")
    inked = sum(image.histogram()[:250])  # pixels darker than near-white
    assert inked / (image.width * image.height) > 0.01


def test_the_same_document_gives_the_same_bytes_even_after_other_documents(renderer):
    # The fonts are parsed once and shared: a document must not see another one's subset.
    first = renderer.render(german_b2c())
    renderer.render(forty_items())
    renderer.render(english_for_france())
    assert renderer.render(german_b2c()) == first
    assert InvoicePdf().render(german_b2c()) == first


def test_fpdf2_still_has_the_font_slots_the_copy_trick_knows():
    # If this fails after an fpdf2 upgrade, invoices still render (each document then builds its
    # font with TTFFont's constructor) but slower: review _SHARED/_PER_DOCUMENT in pdf.py.
    known = pdf_module._SHARED | pdf_module._PER_DOCUMENT
    assert pdf_module._CLONE_OK, sorted(set(TTFFont.__slots__) ^ known)


def test_without_the_copy_trick_the_constructor_path_prints_the_same_text(renderer, tmp_path):
    fast = pdf_text(renderer.render(german_b2c()), tmp_path)
    plain = InvoicePdf(font_copies=False)
    assert not plain.fonts.common["B"].copies
    assert pdf_text(plain.render(german_b2c()), tmp_path) == fast


# --- § 14 Abs. 4 UStG contents ---------------------------------------------------------------


def test_german_invoice_shows_every_mandatory_field(renderer, tmp_path):
    doc = german_b2c()
    text = pdf_text(renderer.render(doc), tmp_path)
    for expected in ("Muster Handel GmbH", "Beispielstraße 1", "10115 Berlin",  # Nr. 1 seller
                     "USt-IdNr. DE123456789", "Steuernr. 27/123/45678",  # Nr. 2
                     "Jürgen Müller", "Hauptstraße 12a", "50667 Köln",  # Nr. 1 buyer
                     "Datum 25.11.2026",  # Nr. 3
                     "Rechnung RE-2026-000123", "Rechnungsnr. RE-2026-000123",  # Nr. 4
                     "Leistungsdatum 24.11.2026",  # Nr. 6
                     "Summe netto", "Umsatzsteuer", "Gesamtbetrag"):
        assert expected in text, expected
    for it in doc.items:  # Nr. 5: quantity and description
        assert it.description in text, it.description
        assert f"{it.quantity} Stk." in text
        assert f"{de(it.net)} €" in text
    assert "1.234,56 €" in text  # the 19 % item: 2 x 617,28
    for tax in doc.taxes:  # Nr. 7 and 8: net, rate and VAT per rate
        assert f"{tax.rate} % {de(tax.net)} € {de(tax.tax)} €" in text, tax
    assert f"Gesamtbetrag {de(doc.gross_total)} €" in text
    assert "Gutschrift" not in text


def test_invoice_of_the_second_half_of_2020_shows_16_and_5_percent(renderer, tmp_path):
    doc = covid_rates()
    text = pdf_text(renderer.render(doc), tmp_path)
    assert "16 % 199,00 € 31,84 €" in text
    assert "5 % 25,00 € 1,25 €" in text
    assert "Datum 15.09.2020" in text and "Leistungsdatum 14.09.2020" in text
    assert "19 %" not in text and "7 %" not in text


def test_english_invoice_for_a_french_buyer_uses_english_labels_and_formats(renderer, tmp_path):
    doc = english_for_france()
    text = pdf_text(renderer.render(doc), tmp_path)
    for expected in ("Invoice RE-2026-000124", "Invoice no. RE-2026-000124", "Date 25 Nov 2026",
                     "Date of supply 24 Nov 2026", "Description", "Qty", "VAT rate", "Total net",
                     "Amélie Dubois", "12 Rue de Rivoli", "75001 Paris", "FRANCE",
                     f"€{en(Decimal('1234.56'))}", "20%", "VAT ID DE123456789",
                     "VAT of France charged under the EU One-Stop-Shop scheme (OSS).",
                     "Paid via Amazon."):
        assert expected in text, expected
    for german in ("Rechnung", "Leistungsdatum", "Menge", "Seite", "Umsatzsteuer"):
        assert german not in text, german


def test_intra_eu_invoice_prints_both_vat_ids_the_note_and_the_exemption(renderer, tmp_path):
    doc = intra_eu_b2b()
    text = pdf_text(renderer.render(doc), tmp_path)
    for expected in ("Gruber Gastro GmbH", "Anna Gruber", "Mariahilfer Straße 45", "1060 Wien",
                     "ÖSTERREICH", "Ihre USt-IdNr. ATU12345678", "USt-IdNr. DE123456789",
                     INTRA_EU_NOTE, "Steuerfreie innergemeinschaftliche Lieferung",
                     "0 % 289,00 € 0,00 €", "Gesamtbetrag 289,00 €",
                     "Zahlbar innerhalb von 14 Tagen ohne Abzug."):
        assert expected in text, expected


def test_credit_note_is_a_rechnungskorrektur_naming_the_invoice_it_corrects(renderer, tmp_path):
    text = pdf_text(renderer.render(credit_note()), tmp_path)
    assert "Rechnungskorrektur RK-2026-000007" in text
    assert "zu Rechnung RE-2026-000123 vom 25.11.2026" in text
    assert "Korrekturnr. RK-2026-000007" in text
    assert "Bereits erstattet 5,99 €" in text and "Bereits bezahlt" not in text
    assert "Gutschrift" not in text


def test_english_credit_note_says_credit_note_and_the_corrected_invoice(renderer, tmp_path):
    doc = replace(credit_note(), language="en", payment_terms="Refunded via Amazon.")
    text = pdf_text(renderer.render(doc), tmp_path)
    assert "Credit note RK-2026-000007" in text
    assert "correcting invoice RE-2026-000123 of 25 Nov 2026" in text


def test_a_discount_is_a_row_of_its_own_under_its_item(renderer, tmp_path):
    doc = promotion_19()
    text = pdf_text(renderer.render(doc), tmp_path)
    # The item at its price before the discount, then what was taken off: the buyer's 5,00 €
    # incl. VAT in the text, its net in the net column; the column adds up to the net total.
    assert "1 MH-001 Gartenschere Profi 1 Stk. 25,20 € 19 % 25,20 €" in text
    assert "Rabatt: Aktion PLM-4711 (-5,00 € inkl. USt.) -4,20 €" in text
    assert "2 MH-002 Pflanzkübel 2 Stk. 8,36 € 19 % 16,72 €" in text
    assert f"19 % {de(Decimal('37.72'))} € {de(Decimal('7.17'))} €" in text
    assert "Gesamtbetrag 44,89 €" in text


def test_a_discount_on_seven_percent_goods_beside_their_shipping_in_english(renderer, tmp_path):
    doc = replace(promotion_7_with_shipping(), language="en")
    text = pdf_text(renderer.render(doc), tmp_path)
    assert "Discount: Aktion PLM-0815 (-€1.35 incl. VAT) -€1.26" in text
    assert "€12.59" in text  # 3 x 4.1967 before the discount: 11.33 + 1.26
    assert "Shipping" not in text and "Versandkosten 1 pc €4.5794 7% €4.58" in text
    assert "7% €15.91 €1.11" in text and "Total €17.02" in text


def test_a_credit_note_for_an_amazon_order_says_amazon_refunds_it(renderer, tmp_path):
    doc = replace(credit_note(), paid_through_channel=True, prepaid=Decimal(0),
                  due=credit_note().gross_total, payment_terms="")
    text = pdf_text(renderer.render(doc), tmp_path)
    assert "Zahlung Der Betrag wird über Amazon.de erstattet." in text
    english = pdf_text(renderer.render(replace(doc, language="en")), tmp_path)
    assert "Payment Refunded through Amazon.de." in english


def test_a_credit_note_paid_otherwise_says_we_transfer_the_amount(renderer, tmp_path):
    doc = replace(credit_note(), channel="Shop", prepaid=Decimal(0), due=credit_note().gross_total,
                  payment_terms="Bitte nennen Sie uns Ihre IBAN.")
    text = pdf_text(renderer.render(doc), tmp_path)
    assert "Zahlung Wir überweisen Ihnen den Betrag. Bitte nennen Sie uns Ihre IBAN." in text


def test_forty_items_flow_onto_further_pages_with_the_header_repeated(renderer, tmp_path):
    doc = forty_items()
    pdf = renderer.render(doc)
    pages = page_texts(pdf, tmp_path)
    assert len(pages) >= 2
    assert len(PdfReader(BytesIO(pdf)).pages) == len(pages)
    assert f"Seite 1 von {len(pages)}" in pages[0]
    for number, page in enumerate(pages[1:], start=2):
        assert f"Seite {number} von {len(pages)}" in page
        assert "USt-IdNr. DE123456789" in page  # the footer on every page
        if "Artikel Nummer" in page:  # items continue here: the table header again, first
            assert page.index("Pos. Artikelnr. Bezeichnung Menge") < page.index("Artikel Nummer")
    text = " ".join(pages)
    for it in doc.items:
        assert it.description in text, it.position
    assert f"Gesamtbetrag {de(doc.gross_total)} €" in pages[-1]


def test_english_paging_says_page_x_of_y(renderer, tmp_path):
    pages = page_texts(renderer.render(forty_items("en")), tmp_path)
    assert len(pages) >= 2
    assert f"Page 2 of {len(pages)}" in pages[1]


def test_a_name_in_cyrillic_is_printed_with_the_complete_font(renderer, tmp_path):
    buyer = InvoiceParty(name="Дмитрий Иванов", street="Hauptstraße 1", postal_code="10115",
                         city="Berlin", country="DE")
    text = pdf_text(renderer.render(replace(german_b2c(), buyer=buyer)), tmp_path)
    assert "Дмитрий Иванов" in text


# --- the footer: the company's legal data, once, on the page ------------------------------------


def layout_lines(pdf: bytes, tmp_path: Path) -> list[str]:
    path = tmp_path / "layout.pdf"
    path.write_bytes(pdf)
    out = subprocess.run([poppler("pdftotext"), "-layout", "-enc", "UTF-8", str(path), "-"],
                         check=True, capture_output=True).stdout.decode("utf-8")
    return [line.replace("\xa0", " ") for line in out.splitlines()]


def words_with_boxes(pdf: bytes, tmp_path: Path) -> list[tuple[str, float, float, float, float]]:
    """(word, xMin, yMin, xMax, yMax) in millimetres from the top left, page 1, by pdftotext -bbox."""
    path = tmp_path / "bbox.pdf"
    path.write_bytes(pdf)
    out = subprocess.run([poppler("pdftotext"), "-bbox", "-f", "1", "-l", "1", "-enc", "UTF-8", str(path), "-"],
                         check=True, capture_output=True).stdout.decode("utf-8")
    found = re.findall(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>', out)
    return [(w, float(a) / MM, float(b) / MM, float(c) / MM, float(d) / MM) for a, b, c, d, w in found]


@pytest.mark.parametrize("footer", [LEGAL_FOOTER, LETTERHEAD_FOOTER], ids=["legal lines", "whole letterhead"])
def test_the_footer_shows_the_legal_data_once_and_fits_the_page(renderer, tmp_path, footer):
    pdf = renderer.render(replace(german_b2c(), footer=footer))
    lines = layout_lines(pdf, tmp_path)
    page = "\n".join(lines)
    # The footer's lines, its columns side by side, from the last "Tel." (the letterhead has one too).
    start = max(i for i, line in enumerate(lines) if "Tel. +49 30 1234567" in line)
    rows = [line for line in lines[start:] if line.strip()]
    expected = [  # each column's lines, as wrapped to the column
        ["Muster Handel GmbH", "Beispielstraße 1", "10115 Berlin", "Deutschland"],
        ["Tel. +49 30 1234567", "E-Mail rechnung@muster-handel.de", "USt-IdNr. DE123456789",
         "Steuernr. 27/123/45678"],
        ["Deutsche Kreditbank", "IBAN DE02120300000000202051", "BIC BYLADEM1001"],
    ]
    for column in expected:
        for n, value in enumerate(column):
            assert value in rows[n], (value, rows[n])
    # The fourth column (from 25 + 33 + 42 + 39 mm and three 3 mm gaps): the legal data, in order.
    words = words_with_boxes(pdf, tmp_path)
    legal = " ".join(w for w, x0, y0, *_ in sorted(words, key=lambda w: (round(w[2], 1), w[1]))
                     if y0 > 262 and x0 >= 148 - 0.2)
    if footer is LEGAL_FOOTER:
        assert legal == " ".join(LEGAL_FOOTER)
    else:  # the letterhead's parts the other columns show are left out, its legal data stays
        assert legal == ("Amtsgericht Berlin-Charlottenburg, HRB 123456 Geschäftsführung: Erika Mustermann "
                         "www.muster-handel.de")
        assert "Steuernummer" not in page
    # Once: the VAT id, the IBAN and the register number are not repeated anywhere on the page.
    assert page.count("DE123456789") == 1 and page.count("DE02120300000000202051") == 1
    assert page.count("HRB 123456") == 1
    # On the page: nothing left of the 25 mm margin or right of 190 mm (A4 minus 20 mm), and the
    # footer ends above the last 10 mm, which printers leave blank.
    assert any(w == "123456" for w, *_ in words)
    for word, x0, y0, x1, y1 in words:
        assert x0 >= 25 - 0.2 and x1 <= 190 + 0.2, (word, round(x0, 1), round(x1, 1))
        assert y1 <= 287 + 0.2, (word, round(y1, 1))
    footer_words = [w for w in words if w[2] > 262]
    assert {w for w, *_ in footer_words} >= {"Registergericht:" if footer is LEGAL_FOOTER else "Amtsgericht",
                                             "DE02120300000000202051", "BYLADEM1001"}


def test_a_footer_longer_than_the_room_under_the_content_is_refused(renderer):
    footer = tuple(f"Geschäftsführer {n}: Vorname Nachname-Doppelname" for n in range(12))
    with pytest.raises(InputError) as err:
        renderer.render(replace(german_b2c(), footer=footer))
    assert err.value.where == "RE-2026-000123.footer"


def test_footer_columns_wider_than_the_page_are_refused(tmp_path):
    layout = (REPO / "templates" / "invoices" / "layout.toml").read_text(encoding="utf-8")
    path = tmp_path / "layout.toml"
    path.write_text(layout.replace("width = 42.0\nlines = [\"{doc.footer}\"]",
                                   "width = 60.0\nlines = [\"{doc.footer}\"]"), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        InvoicePdf(layout=str(path))
    assert err.value.where == f"{path}.footer.columns"


# --- refusals ----------------------------------------------------------------------------------


def test_credit_note_without_the_corrected_invoice_is_refused(renderer):
    with pytest.raises(InputError) as err:
        renderer.render(replace(credit_note(), preceding_invoice=""))
    assert err.value.where == "RK-2026-000007.preceding_invoice"


def test_seller_without_vat_id_and_tax_number_is_refused(renderer):
    seller = replace(SELLER, vat_id="", tax_number="")
    with pytest.raises(InputError) as err:
        renderer.render(replace(german_b2c(), seller=seller))
    assert err.value.where == "RE-2026-000123.seller.vat_id"


def test_buyer_without_address_is_refused(renderer):
    buyer = InvoiceParty(name="Jürgen Müller", street="", postal_code="", city="", country="DE")
    with pytest.raises(InputError) as err:
        renderer.render(replace(german_b2c(), buyer=buyer))
    assert err.value.where == "RE-2026-000123.buyer.street"


def test_a_character_the_font_lacks_is_refused_naming_the_field(renderer):
    # DejaVu Sans has no CJK: the name would print as boxes, and the invoice would name nobody.
    doc = replace(german_b2c(), buyer=replace(german_b2c().buyer, name="王小明"))
    with pytest.raises(InputError) as err:
        renderer.render(doc)
    assert err.value.where == "RE-2026-000123.buyer.name"


def test_missing_fonts_name_the_debian_package(tmp_path):
    with pytest.raises(ConfigError) as err:
        InvoicePdf(font_dir=str(tmp_path))
    assert FONT_PACKAGE in err.value.message


def test_a_layout_with_a_missing_key_names_it(tmp_path):
    layout = (REPO / "templates" / "invoices" / "layout.toml").read_text(encoding="utf-8")
    path = tmp_path / "layout.toml"
    path.write_text(layout.replace('supply_date = "Leistungsdatum"\n', ""), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        InvoicePdf(layout=str(path))
    assert err.value.where == f"{path}.labels.de.supply_date"


# --- many at once ----------------------------------------------------------------------------


def test_render_many_in_two_processes_gives_the_same_files_in_order(renderer):
    docs = [german_b2c(), english_for_france(), intra_eu_b2b(), credit_note(), covid_rates()]
    assert render_many(docs, jobs=2) == [renderer.render(d) for d in docs]


# --- samples for people --------------------------------------------------------------------


def sample_pdf() -> bytes:
    items = [*german_b2c().items, discounted(4, "Teedose aus Weißblech, 500 g", "1", "12.99", "19", "3.00",
                                             "Aktion PLM-4711")]
    return InvoicePdf().render(invoice(items, footer=LEGAL_FOOTER, paid_through_channel=True,
                                       notes=("Leistungsdatum entspricht dem Versanddatum.",)))


def write_samples() -> None:
    """Rewrite docs/invoice-sample.pdf and docs/invoice-sample.png (page 1 at 80 dpi)."""
    pdf_path = REPO / "docs" / "invoice-sample.pdf"
    pdf_path.write_bytes(sample_pdf())
    stem = REPO / "docs" / "invoice-sample"
    subprocess.run([poppler("pdftoppm"), "-r", "80", "-png", "-f", "1", "-l", "1",
                    "-singlefile", str(pdf_path), str(stem)], check=True)


def test_the_sample_in_docs_is_what_the_renderer_makes_today():
    if WRITE_SAMPLES:
        write_samples()
    assert (REPO / "docs" / "invoice-sample.pdf").read_bytes() == sample_pdf(), \
        "docs/invoice-sample.pdf is stale: CATURACTL_WRITE_SAMPLES=1 .venv/bin/pytest tests/unit/test_invoice_pdf.py -k sample"
    assert (REPO / "docs" / "invoice-sample.png").stat().st_size > 0


# --- payment: terms, bank details and the EPC QR code ------------------------------------------


def on_account(language: str = "de") -> InvoiceDocument:
    """german_b2c() bought on account (Kauf auf Rechnung): due by transfer 14 days after the invoice."""
    doc = german_b2c()
    terms = {"de": "Zahlbar ohne Abzug bis zum 09.12.2026 per Überweisung; bitte geben Sie die Rechnungsnummer "
                   "als Verwendungszweck an.",
             "en": "Payable without deduction by 9 Dec 2026 by bank transfer; please quote the invoice number "
                   "as the payment reference."}[language]
    return replace(doc, prepaid=Decimal("0.00"), due=doc.gross_total, channel="Shop", language=language,
                   due_date=date(2026, 12, 9), payment_means="transfer", payment_terms=terms)


def test_the_epc_qr_code_asks_for_the_amount_due_quoting_the_invoice_number():
    from connectors.einvoice.payment import EpcTransfer, epc_qr, epc_transfer
    doc = on_account()
    transfer = epc_transfer(doc)
    assert transfer == EpcTransfer(name=SELLER.company or SELLER.name, iban="DE02120300000000202051",
                                   bic="BYLADEM1001", amount=doc.due, text="RE-2026-000123")
    qr = epc_qr(transfer)
    assert qr.error == "M" and qr.version <= 13  # EPC069-12: level M, version 13 at most
    # Nothing to transfer, nothing in euros, or a credit note: no code.
    assert epc_transfer(german_b2c()) is None
    assert epc_transfer(replace(doc, currency="GBP")) is None
    assert epc_transfer(replace(doc, payment_means="cod")) is None


@pytest.mark.parametrize("language, lines", [
    ("de", ["Zahlbar ohne Abzug bis zum 09.12.2026", "IBAN DE02 1203 0000 0000 2020 51 · BIC BYLADEM1001",
            "Verwendungszweck: RE-2026-000123", "Betrag: ", "GiroCode"]),
    ("en", ["Payable without deduction by 9 Dec 2026", "IBAN DE02 1203 0000 0000 2020 51 · BIC BYLADEM1001",
            "Reference: RE-2026-000123", "Amount: ", "EPC QR code"]),
])
def test_an_invoice_on_account_prints_its_terms_the_account_and_the_qr_code(renderer, tmp_path, language, lines):
    pdf = renderer.render(on_account(language))
    text = pdf_text(pdf, tmp_path)
    for line in lines:
        assert line in text
    assert len(PdfReader(BytesIO(pdf)).pages[0].images) == 2  # the logo and the QR code


def test_a_paid_invoice_has_no_qr_code_and_no_account_to_pay_into(renderer, tmp_path):
    pdf = renderer.render(replace(german_b2c(), channel="Shop", payment_terms="Bezahlt am 20.11.2026 per PayPal."))
    text = pdf_text(pdf, tmp_path)
    assert "Bezahlt am 20.11.2026 per PayPal." in text
    assert "Verwendungszweck" not in text and "GiroCode" not in text
    assert len(PdfReader(BytesIO(pdf)).pages[0].images) == 1  # the logo alone
