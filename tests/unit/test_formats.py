"""The document formats under carriers/: DHL GKP CSV, fulfiller XML, PDF delivery note, text order.

Each test builds ShipmentDocuments in memory and reads the rendered bytes back the way the
receiver would (csv in Windows-1252, lxml with the safe parser against the shipped XSD,
pdftotext, plain UTF-8).
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
import unicodedata
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from lxml import etree

from caturactl.core.errors import InputError
from caturactl.core.address import Address
from caturactl.core.money import Money
from caturactl.ports import DocumentFormat, Parcel, ShipmentDocument, ShipmentLine
from carriers.delivery_note_pdf import DeliveryNotePdf
from carriers.dhl_csv import DhlCsv
from carriers.fulfiller_xml import NAMESPACE, FulfillerXml, parser, schema
from carriers.text import TextOrder
from carriers.text_encoding import cp1252_text

IN_CI = bool(os.environ.get("CI"))

# The header row of reference/carriers/sample-dhl-gkp-import.csv, copied so the tests do not
# read ../shared.
SAMPLE_HEADER = (
    "Sendungsreferenz;Sendungsdatum;Name_1_Absender;Strasse_Absender;Hausnummer_Absender;"
    "PLZ_Absender;Ort_Absender;Land_Absender;Name_1_Empfaenger;Name_2_Postnummer_Empfaenger;"
    "Name_3_Empfaenger;Strasse_Empfaenger;Hausnummer_Empfaenger;Adresszusatz_1_Empfaenger;"
    "PLZ_Empfaenger;Ort_Empfaenger;Provinz_Empfaenger;Land_Empfaenger;E_Mail_Adresse_Empfaenger;"
    "Telefonnummer_Empfaenger;Gewicht;Laenge;Breite;Hoehe;Produkt_und_Servicekennzeichnung;"
    "Abrechnungsnummer"
).split(";")

SENDER = Address(company="Musterhandel GmbH", line1="Lagerweg 7", postal_code="50667",
                 city="Köln", country="DE", phone="+49 221 123456")
ERIKA = Address(name="Erika Müller", line1="Hauptstraße 12a", line2="Hinterhaus",
                postal_code="10115", city="Berlin", country="DE")
T_SHIRT = ShipmentLine(1, "TEE-BLK-M", "T-Shirt schwarz M", 2, Money(Decimal("19.90"), "EUR"),
                       ean="4006381333931", channel_line_id="11111111111111")
CAP = ShipmentLine(2, "CAP-RED", "Cap rot", 1, Money(Decimal("14.9"), "EUR"), ean="4012345678901")
NO_PRICE = ShipmentLine(2, "MUG-WHT", "Tasse weiß", 3, None)


def delivery(**changes) -> ShipmentDocument:
    """One simple DE order: two lines, one parcel of 2.4 kg."""
    fields = dict(
        delivery_id="L-2025-000101", order_id="302-1234567-7654321", channel="amazon",
        sales_channel="Amazon.de", customer_number="K-004711",
        ordered_at=datetime(2025, 11, 2, 17, 42, 10, tzinfo=timezone.utc),
        created_at=datetime(2025, 11, 3, 8, 15, 0, tzinfo=timezone.utc),
        ship_date=date(2025, 11, 3), carrier="DHL", service="V01PAK", express=False,
        cash_on_delivery=None, ship_to=ERIKA, email="erika@example.org", sender=SENDER,
        lines=(T_SHIRT, CAP), parcels=(Parcel(2400, 40, 30, 15),),
        billing_number="33333333330101")
    fields.update(changes)
    return ShipmentDocument(**fields)


SIMPLE = delivery()
PACKSTATION = delivery(
    delivery_id="L-2025-000102", service="V62KP", billing_number="33333333336201",
    ship_to=Address(name="Max Beispiel", line1="Packstation 105", postal_code="80331",
                    city="München", country="DE"),
    postnummer="12345678", email="", lines=(CAP,), parcels=(Parcel(800, 30, 20, 5),))
TWO_PARCELS = delivery(delivery_id="L-2025-000103",
                       parcels=(Parcel(2400, 40, 30, 15), Parcel(805, 30, 20, 5)))
POLISH = delivery(
    delivery_id="L-2025-000104", service="V54EPAK", billing_number="33333333335401",
    ship_to=Address(name="Łukasz Wałęsa", company="Przedsiębiorstwo Źródło", line1="ul. Długa 5",
                    postal_code="90-001", city="Łódź", country="PL", phone="+48 42 1234567"))
FORMULA = delivery(
    delivery_id="L-2025-000105",
    ship_to=replace(ERIKA, name="=SUM(A1)", company="@cmd", line2="-1+2", city="+Berlin"))
AUSTRIA = delivery(
    delivery_id="L-2025-000106", service="V53WPAK", billing_number="33333333335301",
    ship_to=Address(name="Jean Exemple", company="Exemple SARL", line1="Rue de la Paix 3",
                    postal_code="1010", city="Wien", country="AT", phone="+431234567"),
    email="jean@example.org", cash_on_delivery=Money(Decimal("49.5"), "EUR"), express=True,
    note="Bitte beim Nachbarn abgeben.\nDanke!", parcels=(Parcel(12500, 80, 40, 40),))
NO_PRICE_LINE = delivery(delivery_id="L-2025-000107", lines=(T_SHIRT, NO_PRICE))

ALL = [SIMPLE, PACKSTATION, TWO_PARCELS, POLISH, FORMULA, AUSTRIA, NO_PRICE_LINE]
FORMATS: list[DocumentFormat] = [DhlCsv(), FulfillerXml(), DeliveryNotePdf(), TextOrder()]


def csv_rows(doc: ShipmentDocument) -> list[dict[str, str]]:
    content = DhlCsv().render(doc).content
    reader = csv.reader(io.StringIO(content.decode("cp1252"), newline=""), delimiter=";")
    header, *rows = list(reader)
    assert header == SAMPLE_HEADER
    return [dict(zip(header, row, strict=True)) for row in rows]


# --- every format ------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
@pytest.mark.parametrize("doc", ALL, ids=lambda d: d.delivery_id)
def test_every_format_renders_the_same_bytes_and_name_twice(fmt, doc):
    first, second = fmt.render(doc), fmt.render(doc)
    assert first == second
    assert doc.delivery_id in first.name


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_every_format_refuses_a_delivery_id_that_is_not_a_file_name(fmt):
    with pytest.raises(InputError) as caught:
        fmt.render(delivery(delivery_id="../L1"))
    assert caught.value.where == "../L1.delivery_id"


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_every_format_refuses_a_control_character_naming_the_field(fmt):
    with pytest.raises(InputError) as caught:
        fmt.render(delivery(ship_to=replace(ERIKA, city="Ber\x00lin")))
    assert caught.value.where.startswith("L-2025-000101.")
    assert "control character" in caught.value.message


def test_format_names_are_the_ones_the_configuration_accepts():
    from caturactl.config import DOCUMENT_FORMATS

    assert {f.name for f in FORMATS} == DOCUMENT_FORMATS


# --- transliteration -----------------------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    ("Łukasz Wałęsa", "Lukasz Walesa"),
    ("Dvořák", "Dvorák"),  # á is in Windows-1252, ř is not
    ("Đorđević", "Dordevic"),
    ("Müller Groß Søren Œuvre", "Müller Groß Søren Œuvre"),  # in Windows-1252: unchanged
    ("„Preis“ 5 € – ok", "„Preis“ 5 € – ok"),
    ("ﬁle ①", "file 1"),
    ("zero\u200bwidth", "zerowidth"),
    ("x\u2011y \u2212 z", "x-y - z"),
])
def test_cp1252_text_keeps_what_windows_1252_has_and_transliterates_the_rest(raw, expected):
    assert cp1252_text(raw, "w") == expected


@pytest.mark.parametrize("raw", ["王小明", "Иван"])
def test_cp1252_text_refuses_a_script_with_no_latin_form_instead_of_writing_question_marks(raw):
    with pytest.raises(InputError) as caught:
        cp1252_text(raw, "L1.Name_1_Empfaenger")
    assert caught.value.where == "L1.Name_1_Empfaenger"
    assert "no Latin transliteration" in caught.value.message


# --- DHL CSV -------------------------------------------------------------------------------------

def test_dhl_csv_is_windows_1252_with_crlf_and_every_value_quoted():
    rendered = DhlCsv().render(SIMPLE)
    assert rendered.name == "DHL_L-2025-000101.csv"
    assert rendered.media_type == "text/csv"
    text = rendered.content.decode("cp1252")
    assert "Müller".encode("cp1252") in rendered.content  # umlauts stay, as one byte each
    assert text.endswith("\r\n")
    assert text.count("\r\n") == text.count("\n") == 2
    header, row = text.split("\r\n")[:2]
    assert header.split(";") == SAMPLE_HEADER  # unquoted, as in the sample
    assert re.fullmatch(r'"(?:[^"]|"")*"(?:;"(?:[^"]|"")*")*', row)
    assert row.count(";") == len(SAMPLE_HEADER) - 1


def test_dhl_csv_simple_order_fills_the_columns_like_the_sample():
    [row] = csv_rows(SIMPLE)
    assert row == {
        "Sendungsreferenz": "L-2025-000101", "Sendungsdatum": "2025-11-03",
        "Name_1_Absender": "Musterhandel GmbH", "Strasse_Absender": "Lagerweg",
        "Hausnummer_Absender": "7", "PLZ_Absender": "50667", "Ort_Absender": "Köln",
        "Land_Absender": "DE", "Name_1_Empfaenger": "Erika Müller",
        "Name_2_Postnummer_Empfaenger": "", "Name_3_Empfaenger": "",
        "Strasse_Empfaenger": "Hauptstraße", "Hausnummer_Empfaenger": "12a",
        "Adresszusatz_1_Empfaenger": "Hinterhaus", "PLZ_Empfaenger": "10115",
        "Ort_Empfaenger": "Berlin", "Provinz_Empfaenger": "", "Land_Empfaenger": "DE",
        "E_Mail_Adresse_Empfaenger": "erika@example.org", "Telefonnummer_Empfaenger": "",
        "Gewicht": "2.40", "Laenge": "40", "Breite": "30", "Hoehe": "15",
        "Produkt_und_Servicekennzeichnung": "V01PAK", "Abrechnungsnummer": "33333333330101",
    }


def test_dhl_csv_packstation_puts_the_postnummer_in_name_2():
    [row] = csv_rows(PACKSTATION)
    assert row["Name_2_Postnummer_Empfaenger"] == "12345678"
    assert (row["Strasse_Empfaenger"], row["Hausnummer_Empfaenger"]) == ("Packstation", "105")
    assert (row["Produkt_und_Servicekennzeichnung"], row["Gewicht"]) == ("V62KP", "0.80")


def test_dhl_csv_two_parcels_are_two_rows_with_numbered_references_and_their_own_weights():
    rows = csv_rows(TWO_PARCELS)
    assert [r["Sendungsreferenz"] for r in rows] == ["L-2025-000103-01", "L-2025-000103-02"]
    # 805 g is declared as 0.81 kg: never less than the parcel weighs.
    assert [r["Gewicht"] for r in rows] == ["2.40", "0.81"]
    assert [(r["Laenge"], r["Breite"], r["Hoehe"]) for r in rows] == [("40", "30", "15"),
                                                                      ("30", "20", "5")]
    assert rows[0]["Name_1_Empfaenger"] == rows[1]["Name_1_Empfaenger"] == "Erika Müller"


def test_dhl_csv_transliterates_polish_letters_windows_1252_lacks():
    rendered = DhlCsv().render(POLISH)
    [row] = csv_rows(POLISH)
    assert row["Name_1_Empfaenger"] == "Lukasz Walesa"
    assert row["Name_3_Empfaenger"] == "Przedsiebiorstwo Zródlo"  # ó is in Windows-1252
    assert (row["Strasse_Empfaenger"], row["Hausnummer_Empfaenger"]) == ("ul. Dluga", "5")
    assert row["Ort_Empfaenger"] == "Lódz"
    assert b"?" not in rendered.content


def test_dhl_csv_guards_values_a_spreadsheet_would_run_as_formulas():
    [row] = csv_rows(FORMULA)
    assert row["Name_1_Empfaenger"] == "'=SUM(A1)"
    assert row["Name_3_Empfaenger"] == "'@cmd"
    assert row["Adresszusatz_1_Empfaenger"] == "'-1+2"
    assert row["Ort_Empfaenger"] == "'+Berlin"


def test_dhl_csv_keeps_an_international_phone_number_and_the_austrian_address():
    [row] = csv_rows(AUSTRIA)
    assert row["Telefonnummer_Empfaenger"] == "+431234567"
    assert (row["Name_1_Empfaenger"], row["Name_3_Empfaenger"]) == ("Jean Exemple", "Exemple SARL")
    assert (row["Strasse_Empfaenger"], row["Hausnummer_Empfaenger"]) == ("Rue de la Paix", "3")
    assert (row["PLZ_Empfaenger"], row["Ort_Empfaenger"], row["Land_Empfaenger"]) == (
        "1010", "Wien", "AT")
    assert row["Gewicht"] == "12.50"


def test_dhl_csv_doubles_quotes_inside_a_value():
    [row] = csv_rows(delivery(ship_to=replace(ERIKA, company='Firma "Zum Anker"')))
    assert row["Name_3_Empfaenger"] == 'Firma "Zum Anker"'


@pytest.mark.parametrize("changes, column", [
    (dict(name="E" * 51), "Name_1_Empfaenger"),
    (dict(company="C" * 51), "Name_3_Empfaenger"),
    (dict(line1="S" * 51 + " 1"), "Strasse_Empfaenger"),
    (dict(line1="Hauptstraße 123456789012"), "Hausnummer_Empfaenger"),
    (dict(line2="Z" * 51), "Adresszusatz_1_Empfaenger"),
    (dict(postal_code="1" * 12), "PLZ_Empfaenger"),
    (dict(city="B" * 39), "Ort_Empfaenger"),
])
def test_dhl_csv_refuses_a_value_longer_than_its_column_naming_the_column(changes, column):
    with pytest.raises(InputError) as caught:
        DhlCsv().render(delivery(ship_to=replace(ERIKA, **changes)))
    assert caught.value.where == f"L-2025-000101.{column}"


def test_dhl_csv_takes_a_value_exactly_at_the_limit():
    [row] = csv_rows(delivery(ship_to=replace(ERIKA, name="E" * 50, city="B" * 38)))
    assert (len(row["Name_1_Empfaenger"]), len(row["Ort_Empfaenger"])) == (50, 38)


@pytest.mark.parametrize("doc, column", [
    (delivery(billing_number=""), "Abrechnungsnummer"),
    (delivery(billing_number="3333333333010"), "Abrechnungsnummer"),
    (delivery(postnummer="12 34"), "Name_2_Postnummer_Empfaenger"),
    (delivery(ship_to=replace(ERIKA, name="", company="")), "Name_1_Empfaenger"),
    (delivery(ship_to=replace(ERIKA, country="Deutschland")), "Land_Empfaenger"),
    (delivery(ship_to=replace(ERIKA, name="王小明")), "Name_1_Empfaenger"),
    (delivery(email="łukasz@example.pl"), "E_Mail_Adresse_Empfaenger"),
    (delivery(parcels=()), "Gewicht"),
    (delivery(parcels=(Parcel(0, 10, 10, 10),)), "Gewicht"),
])
def test_dhl_csv_refuses_what_dhl_cannot_take_naming_the_column(doc, column):
    with pytest.raises(InputError) as caught:
        DhlCsv().render(doc)
    assert caught.value.where == f"{doc.delivery_id}.{column}"


def test_dhl_csv_company_only_address_puts_the_company_in_name_1():
    [row] = csv_rows(delivery(ship_to=replace(ERIKA, name="", company="Anker GmbH")))
    assert (row["Name_1_Empfaenger"], row["Name_3_Empfaenger"]) == ("Anker GmbH", "")


_NAME_CHARS = st.characters(categories=("L", "M", "N", "P", "S", "Zs"))


@settings(max_examples=300, deadline=None)
@given(name=st.text(_NAME_CHARS, min_size=1, max_size=40))
@example(name="\u2047")  # DOUBLE QUESTION MARK: its compatibility form is "??", a question mark it meant
def test_dhl_csv_any_printable_name_renders_as_windows_1252_or_is_refused_by_name(name):
    try:
        rendered = DhlCsv().render(delivery(ship_to=replace(ERIKA, name=name)))
    except InputError as e:  # no Latin form, too long once transliterated, or empty
        assert e.where == "L-2025-000101.Name_1_Empfaenger"
        return
    [row] = csv.DictReader(io.StringIO(rendered.content.decode("cp1252"), newline=""),
                           delimiter=";")
    assert row["Ort_Empfaenger"] == "Berlin"  # the name did not shift any column
    # No character went in as a "?" of the encoder's: a question mark comes from the name itself,
    # as written or in its compatibility form (NFKD, what the transliteration reads).
    assert "?" not in row["Name_1_Empfaenger"] or "?" in unicodedata.normalize("NFKD", name)


@settings(max_examples=300, deadline=None)
@given(name=st.text(st.characters(min_codepoint=0x20, max_codepoint=0x17F,
                                  categories=("L", "Zs")), min_size=1, max_size=20)
       .filter(str.strip))
def test_dhl_csv_every_european_latin_name_renders(name):
    rendered = DhlCsv().render(delivery(ship_to=replace(ERIKA, name=name)))
    rendered.content.decode("cp1252")
    assert b"?" not in rendered.content


# --- fulfiller XML -------------------------------------------------------------------------------

NS = {"o": NAMESPACE}


def parsed(doc: ShipmentDocument) -> etree._Element:
    return etree.fromstring(FulfillerXml().render(doc).content, parser())


@pytest.mark.parametrize("doc", ALL, ids=lambda d: d.delivery_id)
def test_fulfiller_xml_validates_against_the_shipped_schema(doc):
    root = parsed(doc)
    assert schema().validate(root), schema().error_log
    assert root.tag == f"{{{NAMESPACE}}}order" and root.get("version") == "1.0"


def test_fulfiller_xml_is_utf8_with_declaration_and_a_deterministic_name():
    rendered = FulfillerXml().render(SIMPLE)
    assert rendered.name == "ORD_L-2025-000101_20251103081500.xml"
    assert rendered.media_type == "application/xml"
    assert rendered.content.startswith(b"<?xml version='1.0' encoding='UTF-8'?>\n")
    assert "Erika Müller".encode("utf-8") in rendered.content
    assert b"\n    <orderId>" in rendered.content  # pretty-printed


def test_fulfiller_xml_names_the_file_by_created_at_in_utc_whatever_zone_it_came_in():
    berlin = timezone(timedelta(hours=1))
    at_berlin = delivery(created_at=datetime(2025, 11, 3, 9, 15, 0, tzinfo=berlin))
    naive = delivery(created_at=datetime(2025, 11, 3, 8, 15, 0))
    assert FulfillerXml().render(at_berlin).name == FulfillerXml().render(SIMPLE).name
    assert FulfillerXml().render(naive).content == FulfillerXml().render(SIMPLE).content


def test_fulfiller_xml_round_trips_the_values():
    root = parsed(AUSTRIA)
    get = lambda path: root.findtext(path, namespaces=NS)  # noqa: E731
    assert get("o:header/o:orderId") == "302-1234567-7654321"
    assert get("o:header/o:deliveryId") == "L-2025-000106"
    assert get("o:header/o:orderDate") == "2025-11-02T17:42:10+00:00"
    assert get("o:header/o:createdAt") == "2025-11-03T08:15:00+00:00"
    assert get("o:header/o:salesChannel") == "Amazon.de"
    assert get("o:header/o:customerNumber") == "K-004711"
    assert get("o:shipping/o:carrier") == "DHL"
    assert get("o:shipping/o:service") == "V53WPAK"
    assert get("o:shipping/o:express") == "true"
    cod = root.find("o:shipping/o:cashOnDelivery", NS)
    assert (cod.text, cod.get("currency")) == ("49.50", "EUR")
    ship_to = {etree.QName(e).localname: e.text or "" for e in
               root.find("o:shipping/o:shipTo", NS)}
    assert ship_to == {"name1": "Jean Exemple", "name2": "Exemple SARL",
                       "street": "Rue de la Paix", "houseNumber": "3", "addressAddition": "",
                       "postalCode": "1010", "city": "Wien", "countryCode": "AT",
                       "email": "jean@example.org", "phone": "+431234567"}
    [parcel] = root.findall("o:parcels/o:parcel", NS)
    assert parcel.get("no") == "1"
    assert [parcel.findtext(f"o:{t}", namespaces=NS) for t in
            ("weightKg", "lengthCm", "widthCm", "heightCm")] == ["12.500", "80", "40", "40"]
    lines = root.findall("o:lines/o:line", NS)
    assert [(ln.get("no"), ln.findtext("o:sku", namespaces=NS),
             ln.findtext("o:ean", namespaces=NS), ln.findtext("o:description", namespaces=NS),
             ln.findtext("o:quantity", namespaces=NS), ln.findtext("o:unitPriceGross", namespaces=NS))
            for ln in lines] == [
        ("1", "TEE-BLK-M", "4006381333931", "T-Shirt schwarz M", "2", "19.90"),
        ("2", "CAP-RED", "4012345678901", "Cap rot", "1", "14.90"),
    ]
    assert get("o:note") == "Bitte beim Nachbarn abgeben.\nDanke!"


def test_fulfiller_xml_without_cod_writes_zero_euro_and_without_note_omits_it():
    root = parsed(SIMPLE)
    cod = root.find("o:shipping/o:cashOnDelivery", NS)
    assert (cod.text, cod.get("currency")) == ("0.00", "EUR")
    assert root.find("o:note", NS) is None
    assert root.find("o:shipping/o:shipTo/o:postNumber", NS) is None
    assert root.findtext("o:shipping/o:shipTo/o:addressAddition", namespaces=NS) == "Hinterhaus"


def test_fulfiller_xml_packstation_carries_the_post_number():
    root = parsed(PACKSTATION)
    assert root.findtext("o:shipping/o:shipTo/o:postNumber", namespaces=NS) == "12345678"
    assert root.findtext("o:shipping/o:shipTo/o:street", namespaces=NS) == "Packstation"


def test_fulfiller_xml_two_parcels_are_numbered_with_exact_weights():
    parcels = parsed(TWO_PARCELS).findall("o:parcels/o:parcel", NS)
    assert [(p.get("no"), p.findtext("o:weightKg", namespaces=NS)) for p in parcels] == [
        ("1", "2.400"), ("2", "0.805")]


def test_fulfiller_xml_line_without_price_has_no_price_element():
    lines = parsed(NO_PRICE_LINE).findall("o:lines/o:line", NS)
    assert lines[0].find("o:unitPriceGross", NS) is not None
    assert lines[1].find("o:unitPriceGross", NS) is None
    assert lines[1].find("o:ean", NS) is None
    assert lines[1].findtext("o:description", namespaces=NS) == "Tasse weiß"


def test_fulfiller_xml_keeps_polish_letters_and_formula_text_as_they_are():
    assert parsed(POLISH).findtext("o:shipping/o:shipTo/o:name1", namespaces=NS) == "Łukasz Wałęsa"
    assert parsed(FORMULA).findtext("o:shipping/o:shipTo/o:name1", namespaces=NS) == "=SUM(A1)"


@pytest.mark.parametrize("doc, where", [
    (delivery(lines=(replace(T_SHIRT, ean="12345"),)), "lines/line/ean"),
    (delivery(lines=(replace(T_SHIRT, quantity=0),)), "lines/line/quantity"),
    (delivery(parcels=()), "parcels"),
    (delivery(cash_on_delivery=Money(Decimal("-1"), "EUR")), "cash_on_delivery"),
    (delivery(ship_to=replace(ERIKA, country="DEU")), "shipping/shipTo/countryCode"),
])
def test_fulfiller_xml_refuses_what_the_schema_refuses_naming_the_element(doc, where):
    with pytest.raises(InputError) as caught:
        FulfillerXml().render(doc)
    assert caught.value.where == f"L-2025-000101.{where}"


def test_safe_parser_does_not_expand_external_entities():
    hostile = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
               b"<x>&e;</x>")
    root = etree.fromstring(hostile, parser())
    assert "root:" not in etree.tostring(root, encoding="unicode")


# --- PDF delivery note ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def pdftotext():
    path = shutil.which("pdftotext")
    if path is None:
        if IN_CI:
            pytest.fail("pdftotext (poppler-utils) is not installed: CI must check the PDF text")
        pytest.skip("pdftotext (poppler-utils) is not installed here (CI installs it)")
    return lambda content: subprocess.run([path, "-", "-"], input=content, check=True,
                                          capture_output=True).stdout.decode("utf-8")


def page_count(content: bytes) -> int:
    return len(re.findall(rb"/Type /Page\b", content))


def test_pdf_is_a_pdf_named_after_the_delivery_and_the_same_bytes_twice():
    first, second = DeliveryNotePdf().render(SIMPLE), DeliveryNotePdf().render(SIMPLE)
    assert first.name == "LS_L-2025-000101.pdf"
    assert first.media_type == "application/pdf"
    assert first.content.startswith(b"%PDF-")
    assert first.content == second.content
    assert b"/CreationDate (D:20251103081500Z)" in first.content


def test_pdf_shows_delivery_number_sku_title_and_the_umlaut_name(pdftotext):
    text = pdftotext(DeliveryNotePdf().render(SIMPLE).content)
    for expected in ("Lieferschein", "L-2025-000101", "302-1234567-7654321", "TEE-BLK-M",
                     "T-Shirt schwarz M", "Erika Müller", "Hauptstraße 12a", "10115 Berlin",
                     "Musterhandel GmbH", "Köln", "Gesamtgewicht 2,40 kg", "Pos.", "Menge"):
        assert expected in text, expected


def test_pdf_transliterates_polish_and_shows_the_foreign_country(pdftotext):
    text = pdftotext(DeliveryNotePdf().render(POLISH).content)
    assert "Lukasz Walesa" in text and "90-001 Lódz" in text and "POLEN" in text


def test_pdf_shows_postnummer_cod_express_and_note(pdftotext):
    text = pdftotext(DeliveryNotePdf().render(PACKSTATION).content)
    assert "12345678" in text and "Packstation 105" in text
    text = pdftotext(DeliveryNotePdf().render(AUSTRIA).content)
    assert "49,50 EUR" in text and "Express" in text and "Bitte beim Nachbarn" in text
    assert "ÖSTERREICH" in text


def test_pdf_refuses_a_name_with_no_latin_form_naming_the_field():
    with pytest.raises(InputError) as caught:
        DeliveryNotePdf().render(delivery(ship_to=replace(ERIKA, name="王小明")))
    assert caught.value.where == "L-2025-000101.ship_to.name"


def test_pdf_with_60_lines_flows_onto_further_pages_with_the_heading_repeated(pdftotext):
    lines = tuple(ShipmentLine(i, f"SKU-{i:03d}", f"Artikel {i}", 1, None) for i in range(1, 61))
    content = DeliveryNotePdf().render(delivery(lines=lines)).content
    assert page_count(content) >= 2
    text = pdftotext(content)
    assert text.count("Artikelnr.") >= 2
    assert "SKU-001" in text and "SKU-060" in text
    assert "Lieferschein L-2025-000101 (Fortsetzung)" in text


def test_pdf_wraps_a_long_title_instead_of_cutting_it(pdftotext):
    title = "Sehr langer Artikeltitel " * 8 + "ENDE"
    content = DeliveryNotePdf().render(delivery(lines=(replace(T_SHIRT, title=title),))).content
    assert page_count(content) == 1
    assert "ENDE" in pdftotext(content)


# --- text order ----------------------------------------------------------------------------------

def test_text_order_has_address_block_lines_and_parcels():
    rendered = TextOrder().render(TWO_PARCELS)
    assert rendered.name == "LA_L-2025-000103.txt"
    assert rendered.media_type == "text/plain"
    text = rendered.content.decode("utf-8")
    assert text.startswith("Lieferauftrag L-2025-000103\n")
    assert "302-1234567-7654321" in text
    assert "    Erika Müller\n    Hauptstraße 12a\n    Hinterhaus\n    10115 Berlin\n" in text
    assert "DHL V01PAK" in text
    assert "2 × TEE-BLK-M – T-Shirt schwarz M" in text
    assert "1 × CAP-RED – Cap rot" in text
    assert "Pakete: 2, zusammen 3,205 kg" in text
    assert text.endswith("\n") and not text.endswith("\n\n")


def test_text_order_shows_postnummer_foreign_country_express_cod_and_note():
    text = TextOrder().render(PACKSTATION).content.decode("utf-8")
    assert "    Max Beispiel\n    12345678\n    Packstation 105\n    80331 München\n" in text
    text = TextOrder().render(AUSTRIA).content.decode("utf-8")
    assert "    1010 Wien\n    ÖSTERREICH\n" in text
    assert "EXPRESS" in text and "Nachnahme:     49,50 EUR" in text
    assert "Hinweis:\n    Bitte beim Nachbarn abgeben.\n    Danke!\n" in text
    assert "Hinweis" not in TextOrder().render(SIMPLE).content.decode("utf-8")


def test_text_order_keeps_unicode_names_as_they_are():
    text = TextOrder().render(POLISH).content.decode("utf-8")
    assert "Łukasz Wałęsa" in text and "90-001 Łódź" in text


def test_the_street_is_the_first_line_with_a_house_number_in_both_label_formats():
    # Amazon buyers write "c/o" or a company in line 1 and the street in line 2.
    doc = delivery(delivery_id="L-2025-000110",
                   ship_to=Address(name="Eva Roth", line1="c/o Müller", line2="Hauptstraße 5",
                                   postal_code="10115", city="Berlin", country="DE"))
    [row] = csv_rows(doc)
    assert (row["Strasse_Empfaenger"], row["Hausnummer_Empfaenger"], row["Adresszusatz_1_Empfaenger"]) == \
        ("Hauptstraße", "5", "c/o Müller")
    root = etree.fromstring(FulfillerXml().render(doc).content)
    to = {el.tag.split("}")[1]: el.text for el in root.find("o:shipping/o:shipTo", NS)}
    assert (to["street"], to["houseNumber"], to["addressAddition"]) == ("Hauptstraße", "5", "c/o Müller")
