"""The confirmation readers: carriers/confirmation_csv.py and carriers/confirmation_xml.py."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from caturactl.core.errors import InputError
from caturactl.ports import ConfirmationReader, ConfirmedLine
from carriers.confirmation_csv import ConfirmationCsv
from carriers.confirmation_xml import ConfirmationXml, schema

BERLIN = ZoneInfo("Europe/Berlin")
UTC = timezone.utc
# Copied unchanged from reference/carriers/ (a composed example, UTF-8, German decimal commas).
REFERENCE = Path(__file__).resolve().parents[1] / "data" / "sample-shipment-confirmation.csv"
NAME = "SHP_20251103_001.csv"
HEADER = "order_id;delivery_id;carrier;service;tracking_number;parcel_no;parcel_count;weight_kg;shipped_at"
ROW = "SHOP-1;L1;DHL;V01PAK;00340434123456789012;1;1;2,40;2025-11-03T14:05:00+01:00"


def csv_read(text: str | bytes, tz=BERLIN, name: str = NAME):
    content = text.encode("utf-8") if isinstance(text, str) else text
    return ConfirmationCsv().read(name, content, tz)


def test_both_readers_fit_the_port():
    readers: list[ConfirmationReader] = [ConfirmationCsv(), ConfirmationXml()]
    assert [r.name for r in readers] == ["confirmation_csv", "confirmation_xml"]


# --- CSV ---------------------------------------------------------------------------------------


@pytest.fixture
def sample_csv() -> bytes:
    return REFERENCE.read_bytes()


def test_the_reference_sample_reads_into_one_confirmation_per_delivery(sample_csv):
    confirmations = csv_read(sample_csv)
    assert [c.delivery_id for c in confirmations] == [
        "L-2025-000101", "L-2025-000104", "L-2025-000105", "L-2025-000106", "L-2025-000107"]
    dpd = confirmations[1]
    assert dpd.carrier == "DPD" and dpd.service == "CLASSIC"
    assert dpd.tracking_numbers == ("01234567890123", "01234567890124")
    assert dpd.weights_g == (6100, 5900)
    assert dpd.shipped_at == datetime(2025, 11, 3, 14, 20, tzinfo=UTC)
    assert dpd.where == f"{NAME}:3"
    assert all(c.lines == () for c in confirmations)  # no sku columns: everything open shipped
    assert confirmations[0].weights_g == (2400,) and confirmations[4].weights_g == (950,)
    assert confirmations[4].shipped_at == datetime(2025, 11, 4, 7, 30, tzinfo=UTC)


def test_a_header_only_file_has_no_confirmations():
    assert csv_read(HEADER + "\r\n") == []


@pytest.mark.parametrize("weight, grams", [("2,40", 2400), ("2.40", 2400), ("0,955", 955), ("12", 12000),
                                           ("1,0004", 1000), ("1,0005", 1001)])
def test_weights_read_with_a_decimal_comma_or_dot(weight, grams):
    [c] = csv_read(f"{HEADER}\n{ROW.replace('2,40', weight)}\n")
    assert c.weights_g == (grams,)


@pytest.mark.parametrize("shipped_at, utc", [
    ("2025-11-03T14:05:00+01:00", datetime(2025, 11, 3, 13, 5)),
    ("2025-11-03T13:05:00Z", datetime(2025, 11, 3, 13, 5)),
    ("2025-11-03 14:05", datetime(2025, 11, 3, 13, 5)),  # winter: CET, UTC+1
    ("2025-11-03 14:05:30", datetime(2025, 11, 3, 13, 5, 30)),
    ("2025-07-01T14:05:00", datetime(2025, 7, 1, 12, 5)),  # summer: CEST, UTC+2
    ("2025-03-30 01:59", datetime(2025, 3, 30, 0, 59)),  # the last minute of winter time
    ("2025-03-30 03:00", datetime(2025, 3, 30, 1, 0)),  # the first of summer time
    ("2025-10-26 02:30", datetime(2025, 10, 26, 0, 30)),  # occurs twice; the first (CEST) counts
])
def test_times_without_offset_are_local_time_of_the_given_zone(shipped_at, utc):
    [c] = csv_read(f"{HEADER}\n{ROW.replace('2025-11-03T14:05:00+01:00', shipped_at)}\n")
    assert c.shipped_at == utc.replace(tzinfo=UTC)


def test_the_zone_passed_in_decides_about_times_without_offset():
    [c] = csv_read(f"{HEADER}\n{ROW.replace('2025-11-03T14:05:00+01:00', '2025-11-03 14:05')}\n", tz=UTC)
    assert c.shipped_at == datetime(2025, 11, 3, 14, 5, tzinfo=UTC)


def test_rows_of_one_delivery_make_one_confirmation_with_lines_summed_per_sku():
    text = (f"{HEADER};sku;quantity\n"
            f"{ROW.replace(';1;1;', ';1;2;')};TEE-BLK-M;2\n"
            f"{ROW.replace(';1;1;', ';1;2;')};CAP-RED;1\n"
            f"{ROW.replace(';1;1;2,40', ';2;2;1,10').replace('789012', '789029')};TEE-BLK-M;1\n")
    [c] = csv_read(text)
    assert c.tracking_numbers == ("00340434123456789012", "00340434123456789029")
    assert c.weights_g == (2400, 1100)
    assert c.lines == (ConfirmedLine("TEE-BLK-M", 3), ConfirmedLine("CAP-RED", 1))


def test_a_repeated_identical_parcel_row_counts_once():
    [c] = csv_read(f"{HEADER}\n{ROW}\n{ROW}\n")
    assert c.tracking_numbers == ("00340434123456789012",) and c.weights_g == (2400,)


def test_columns_are_found_by_name_in_any_order_and_extra_columns_are_ignored():
    text = ("Shipped_At ; Tracking_Number;Remark;Carrier;DELIVERY_ID\n"
            "2025-11-03 14:05;0034 0434 1234 5678 9012;fragile;DHL;L7\n")
    [c] = csv_read(text)
    assert (c.delivery_id, c.carrier, c.service, c.weights_g) == ("L7", "DHL", "", ())
    assert c.tracking_numbers == ("00340434123456789012",)  # normalised


def test_tracking_numbers_are_normalised_but_not_checked():
    # The service checks them against the delivery's carrier; the reader must not guess.
    [c] = csv_read(f"{HEADER}\n{ROW.replace('00340434123456789012', ' 0034 0434 1234 5678 9013')}\n")
    assert c.tracking_numbers == ("00340434123456789013",)


def test_empty_lines_are_ignored_and_lines_still_counted():
    text = f"{HEADER}\r\n\r\n{ROW}\r\n;;;;;;;;\r\n\r\n{ROW.replace('L1', 'L2').replace('2,40', 'x')}\r\n"
    with pytest.raises(InputError) as e:
        csv_read(text)
    assert e.value.where == f"{NAME}:6:weight_kg"


def test_a_bom_is_skipped(sample_csv):
    assert csv_read(b"\xef\xbb\xbf" + sample_csv) == csv_read(sample_csv)


def test_a_file_that_is_not_utf8_is_read_as_cp1252():
    text = f"{HEADER};sku;quantity\n{ROW.replace('SHOP-1', 'Müller')};MÜTZE-GRÜN;1\n"
    [c] = csv_read(text.encode("cp1252"))
    assert c.lines == (ConfirmedLine("MÜTZE-GRÜN", 1),)


def test_a_file_neither_utf8_nor_cp1252_is_refused_naming_the_line():
    with pytest.raises(InputError, match="neither UTF-8 nor CP1252") as e:
        csv_read(f"{HEADER}\n".encode() + b"L1;\x81\x8d\n")
    assert e.value.where == f"{NAME}:2"


def _row(**changes: str) -> str:
    values = dict(zip(HEADER.split(";"), ROW.split(";")))
    values.update(changes)
    return ";".join(values.values())


# Each: file text, the where of the error, part of the message.
BROKEN = {
    "empty tracking number": (f"{HEADER}\n{ROW}\n{_row(tracking_number='  ')}\n", "3:tracking_number", "empty"),
    "empty delivery id": (f"{HEADER}\n{_row(delivery_id='')}\n", "2:delivery_id", "empty"),
    "empty carrier": (f"{HEADER}\n{_row(carrier='')}\n", "2:carrier", "empty"),
    "empty time": (f"{HEADER}\n{_row(shipped_at='')}\n", "2:shipped_at", "empty"),
    "no such date": (f"{HEADER}\n{_row(shipped_at='2025-02-30T10:00:00+01:00')}\n", "2:shipped_at", "no such date"),
    "a date without time": (f"{HEADER}\n{_row(shipped_at='2025-11-03')}\n", "2:shipped_at", "not a date and time"),
    "a German date": (f"{HEADER}\n{_row(shipped_at='03.11.2025 14:05')}\n", "2:shipped_at", "not a date and time"),
    "a time the clocks skip": (f"{HEADER}\n{_row(shipped_at='2025-03-30 02:30')}\n", "2:shipped_at", "does not exist"),
    "bad weight": (f"{HEADER}\n{ROW}\n{_row(weight_kg='2,4,0')}\n", "3:weight_kg", "not a weight"),
    "zero weight": (f"{HEADER}\n{_row(weight_kg='0,000')}\n", "2:weight_kg", "more than 0"),
    "bad parcel number": (f"{HEADER}\n{_row(parcel_no='1a')}\n", "2:parcel_no", "whole number"),
    "zero parcel count": (f"{HEADER}\n{_row(parcel_count='0')}\n", "2:parcel_count", "whole number"),
    "parcel number above count": (f"{HEADER}\n{_row(parcel_no='2')}\n", "2:parcel_no", "more than parcel_count"),
    "more parcels than counted": (
        f"{HEADER}\n{ROW}\n{_row(parcel_no='', tracking_number='00340434123456789029')}\n",
        "3:tracking_number", "more parcels than"),
    "carriers differ within a delivery": (
        f"{HEADER}\n{_row(parcel_count='2')}\n{_row(carrier='DPD', parcel_no='2', parcel_count='2')}\n",
        "3:carrier", "differs"),
    "orders differ within a delivery": (
        f"{HEADER}\n{_row(parcel_count='2')}\n{_row(order_id='SHOP-2', parcel_no='2', parcel_count='2')}\n",
        "3:order_id", "differs"),
    "one parcel, two tracking numbers": (
        f"{HEADER}\n{_row(parcel_count='2')}\n{_row(parcel_count='2', tracking_number='00340434123456789029')}\n",
        "3:tracking_number", "already has tracking number"),
    "one parcel, two weights": (f"{HEADER}\n{ROW}\n{_row(weight_kg='2,41')}\n", "3:weight_kg", "weighs"),
    "parcel counts differ": (
        f"{HEADER}\n{_row(parcel_count='2')}\n{_row(parcel_count='3', parcel_no='2')}\n",
        "3:parcel_count", "differs"),
    "too many fields": (f"{HEADER}\n{ROW};surplus\n", "2", "header names 9"),
    "missing column": (HEADER.replace(";shipped_at", "") + "\n", "1:shipped_at", "missing column"),
    "comma separated": (HEADER.replace(";", ",") + "\n", "1:delivery_id", "separator must be ';'"),
    "empty file": ("", "1:delivery_id", "header row is expected"),
    "column twice": (HEADER + ";carrier\n", "1:carrier", "twice"),
}
BROKEN_LINES = {
    "quantity without sku": (";;3", "2:sku", "sku is empty"),
    "sku without quantity": (";TEE;", "2:quantity", "quantity is empty"),
    "negative quantity": (";TEE;-1", "2:quantity", "whole number"),
}


@pytest.mark.parametrize("text, where, message", BROKEN.values(), ids=BROKEN.keys())
def test_a_broken_csv_is_refused_naming_file_line_and_column(text, where, message):
    with pytest.raises(InputError, match=message) as e:
        csv_read(text)
    assert e.value.where == f"{NAME}:{where}"


@pytest.mark.parametrize("tail, where, message", BROKEN_LINES.values(), ids=BROKEN_LINES.keys())
def test_a_broken_sku_row_is_refused_naming_the_column(tail, where, message):
    with pytest.raises(InputError, match=message) as e:
        csv_read(f"{HEADER};sku;quantity\n{ROW}{tail}\n")
    assert e.value.where == f"{NAME}:{where}"


def test_mixing_rows_with_and_without_sku_in_one_delivery_is_refused():
    text = (f"{HEADER};sku;quantity\n{_row(parcel_count='2')};TEE;1\n"
            f"{_row(parcel_no='2', parcel_count='2', tracking_number='00340434123456789029')};;\n")
    with pytest.raises(InputError, match="either every row names what it holds or none does") as e:
        csv_read(text)
    assert e.value.where == f"{NAME}:3:sku"


def test_one_delivery_with_sku_and_another_without_is_fine():
    text = f"{HEADER};sku;quantity\n{ROW};TEE;2\n{_row(delivery_id='L2', tracking_number='00340434123456789029')};;\n"
    first, second = csv_read(text)
    assert first.lines == (ConfirmedLine("TEE", 2),) and second.lines == ()


def test_the_first_bad_value_of_a_file_wins_so_nothing_is_half_read(sample_csv):
    text = sample_csv.decode() + "SHOP-9;L9;DHL;V01PAK;;1;1;1,00;2025-11-04T08:30:00+01:00\n"
    with pytest.raises(InputError) as e:
        csv_read(text)
    assert e.value.where == f"{NAME}:8:tracking_number"


def test_a_quoted_field_over_two_lines_keeps_later_line_numbers_right():
    text = f'{HEADER};remark\n{ROW};"two\nlines"\n{_row(delivery_id="L2", weight_kg="x")};\n'
    with pytest.raises(InputError) as e:
        csv_read(text)
    assert e.value.where == f"{NAME}:4:weight_kg"


# --- XML ---------------------------------------------------------------------------------------

XML_NAME = "SHP_20251103140500_001.xml"
XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<confirmation xmlns="urn:caturactl:fulfilment:confirmation:1" version="1.0">
  <shipment>
    <deliveryId>L000123</deliveryId>
    <orderId>302-1234567-7654321</orderId>
    <carrier>DHL</carrier>
    <service>V01PAK</service>
    <shippedAt>2025-11-03T14:05:00+01:00</shippedAt>
    <parcel>
      <trackingNumber>0034 0434 1234 5678 9012</trackingNumber>
      <weightKg>2.40</weightKg>
      <line sku="TEE-BLK-M" quantity="2"/>
    </parcel>
    <parcel>
      <trackingNumber>00340434123456789029</trackingNumber>
      <line sku="CAP-RED" quantity="1"/>
      <line sku="TEE-BLK-M" quantity="1"/>
    </parcel>
  </shipment>
  <shipment>
    <deliveryId>L000124</deliveryId>
    <carrier>GLS</carrier>
    <shippedAt>2025-07-01T14:05:00</shippedAt>
    <parcel>
      <trackingNumber>205512345673</trackingNumber>
      <weightKg>0.955</weightKg>
    </parcel>
  </shipment>
</confirmation>
"""


def xml_read(content: bytes, tz=BERLIN):
    return ConfirmationXml().read(XML_NAME, content, tz)


def test_the_xml_example_reads_with_lines_summed_across_parcels():
    first, second = xml_read(XML)
    assert first.delivery_id == "L000123" and first.carrier == "DHL" and first.service == "V01PAK"
    assert first.tracking_numbers == ("00340434123456789012", "00340434123456789029")
    assert first.weights_g == (2400, None)
    assert first.lines == (ConfirmedLine("TEE-BLK-M", 3), ConfirmedLine("CAP-RED", 1))
    assert first.shipped_at == datetime(2025, 11, 3, 13, 5, tzinfo=UTC)
    assert first.where == f"{XML_NAME}:3"
    # Optional elements left out; no lines anywhere = everything open shipped; local summer time.
    assert (second.service, second.lines, second.weights_g) == ("", (), (955,))
    assert second.shipped_at == datetime(2025, 7, 1, 12, 5, tzinfo=UTC)


def test_an_xml_without_shipments_has_no_confirmations():
    assert xml_read(b'<confirmation xmlns="urn:caturactl:fulfilment:confirmation:1" version="1.0"/>') == []


def test_a_minor_version_is_accepted():
    assert len(xml_read(XML.replace(b':1" version="1.0"', b':1" version="1.3"'))) == 2


# Each: a replacement in XML, the where of the error (line:element), part of the message.
XML_BROKEN = {
    "decimal comma": ((b"2.40", b"2,40"), "11:weightKg", "not a valid value"),
    "missing carrier": ((b"<carrier>DHL</carrier>", b""), "7:service", r"Expected is \( carrier \)"),
    "zero quantity": ((b'"CAP-RED" quantity="1"', b'"CAP-RED" quantity="0"'), "16:line", "positiveInteger"),
    "empty tracking number": ((b"<trackingNumber>205512345673</trackingNumber>", b"<trackingNumber> </trackingNumber>"),
                              "25:trackingNumber", "minimum length"),
    "a date that is not one": ((b"2025-11-03T14:05:00+01:00", b"2025-11-03"), "8:shippedAt", "dateTime"),
    "unknown element": ((b"<orderId>", b"<remark/><orderId>"), "5:remark", "not expected"),
    "no parcel": ((b"""    <parcel>
      <trackingNumber>205512345673</trackingNumber>
      <weightKg>0.955</weightKg>
    </parcel>
""", b""), "20:shipment", "Missing child element"),
    "wrong version": ((b':1" version="1.0"', b':1" version="2.0"'), "2:confirmation", "version"),
    "wrong namespace": ((b"confirmation:1", b"confirmation:2"), "2:confirmation", "No matching global declaration"),
    "a time the clocks skip": ((b"2025-07-01T14:05:00", b"2025-03-30T02:30:00"), "23:shippedAt", "does not exist"),
    "parcel without lines beside one with": (
        (b"""      <line sku="CAP-RED" quantity="1"/>
      <line sku="TEE-BLK-M" quantity="1"/>
""", b""), "14:parcel", "either every parcel"),
    "one tracking number twice": ((b"00340434123456789029", b"00340434123456789012"), "15:trackingNumber", "twice"),
    "not well-formed": ((b"</carrier>", b"</carier>"), "6", "not well-formed"),
}


@pytest.mark.parametrize("change, where, message", XML_BROKEN.values(), ids=XML_BROKEN.keys())
def test_a_broken_xml_is_refused_naming_file_line_and_element(change, where, message):
    old, new = change
    assert old in XML
    with pytest.raises(InputError, match=message) as e:
        xml_read(XML.replace(old, new, 1))
    assert e.value.where == f"{XML_NAME}:{where}"


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE confirmation [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<confirmation xmlns="urn:caturactl:fulfilment:confirmation:1" version="1.0">
  <shipment><deliveryId>&lol9;</deliveryId></shipment>
</confirmation>
"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE confirmation [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<confirmation xmlns="urn:caturactl:fulfilment:confirmation:1" version="1.0">
  <shipment><deliveryId>&xxe;</deliveryId></shipment>
</confirmation>
"""


@pytest.mark.parametrize("content", [
    BILLION_LAUGHS,
    XXE,
    XXE.decode().encode("utf-16"),  # a byte search for ASCII "<!DOCTYPE" alone would miss it
    b'<?xml version="1.0"?><!DOCTYPE confirmation SYSTEM "http://example.invalid/c.dtd">' + XML[39:],
    b"<!DOCTYPE confirmation>" + XML[39:],
], ids=["billion laughs", "external entity", "utf-16", "external DTD", "bare doctype"])
def test_a_document_with_a_doctype_is_refused(content):
    with pytest.raises(InputError, match="DOCTYPE") as e:
        xml_read(content)
    assert e.value.where == f"{XML_NAME}:1"
    assert "root:" not in str(e.value)


def test_an_undeclared_entity_is_not_well_formed():
    with pytest.raises(InputError, match="not well-formed"):
        xml_read(XML.replace(b"<carrier>DHL", b"<carrier>&xxe;"))


def test_an_empty_file_is_refused():
    with pytest.raises(InputError, match="not well-formed") as e:
        xml_read(b"")
    assert e.value.where == f"{XML_NAME}:1"


def test_the_schema_is_loaded_once_per_process():
    assert schema() is schema()
