"""The pure rules of dropshipping: own stock first, partners for the rest; a stale feed counts
as zero; prices and availability files read all or nothing; the openTRANS 2.1 ORDER we write
read back, and the ORDERRESPONSE and DISPATCHNOTIFICATION we read, refusing what is wrong."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from lxml import etree

from caturactl.core.address import Address
from caturactl.core.errors import InputError
from caturactl.fulfilment.dropship import partner_stock, terms
from caturactl.fulfilment.dropship.messages import PurchaseLineDoc, PurchaseOrderDoc
from caturactl.fulfilment.routing import LineNeed, split_with_partners
from connectors.opentrans import OpenTrans, answers
from tests.dropship import dispatch, order_response

BERLIN = ZoneInfo("Europe/Berlin")
A, B = LineNeed(1, "A", 1), LineNeed(2, "B", 1)


def test_own_stock_ships_everything_it_can_alone():
    plan = split_with_partners([A, B], {"WH": {"A": 1, "B": 1}, "DS1": {"A": 9, "B": 9}}, ["WH"], ["DS1"],
                               mixed=["DS1"])
    assert plan == {"WH": [A, B]}


def test_only_what_we_cannot_ship_goes_to_a_partner():
    plan = split_with_partners([A, B], {"WH": {"A": 1}, "DS1": {"A": 9, "B": 9}}, ["WH"], ["DS1"], mixed=["DS1"])
    assert plan == {"WH": [A], "DS1": [B]}


def test_without_a_split_the_whole_order_goes_to_partners():
    plan = split_with_partners([A, B], {"WH": {"A": 1}, "DS1": {"A": 9, "B": 9}}, ["WH"], ["DS1"], mixed=[])
    assert plan == {"DS1": [A, B]}


def test_nothing_anywhere_waits():
    assert split_with_partners([A, B], {"WH": {"A": 1}, "DS1": {"A": 9}}, ["WH"], ["DS1"], mixed=["DS1"]) is None


def test_a_feed_older_than_the_allowed_age_is_stale():
    now = datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)
    assert terms.is_fresh(now - timedelta(hours=24), now, 24)
    assert not terms.is_fresh(now - timedelta(hours=24, seconds=1), now, 24)


def test_a_price_file_names_the_bad_line_and_field():
    assert terms.read_prices("p.csv", "sku;price\nB-1;7,50\nC-1;3.25\n") == {"B-1": Decimal("7.50"),
                                                                             "C-1": Decimal("3.25")}
    with pytest.raises(InputError) as e:
        terms.read_prices("p.csv", "sku;price\nB-1;7.50\nC-1;free\n")
    assert e.value.where == "p.csv:3:price"


def test_an_availability_csv_refuses_a_repeated_sku():
    with pytest.raises(InputError) as e:
        partner_stock.read_csv("f.csv", b"sku,quantity\nB-1,3\nB-1,4\n")
    assert e.value.where == "f.csv:3:sku"


def _doc(**kw) -> PurchaseOrderDoc:
    values = dict(number="PO000042", created_at=datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc), currency="EUR",
                  buyer=Address(name="Test Handel GmbH", line1="Lagerweg 7", postal_code="50667", city="Köln",
                                country="DE"),
                  buyer_id="merchant", supplier_id="DS1", supplier_name="Strecke Eins GmbH",
                  ship_to=Address(name="Anna Beispiel", line1="Hauptstr. 5", postal_code="10115", city="Berlin",
                                  country="DE", phone="+49 30 1234"),
                  ship_date=date(2026, 11, 25), carrier="DHL", service="V01PAK",
                  lines=(PurchaseLineDoc(1, "B-1", "Artikel B", 2, Decimal("7.50")),
                         PurchaseLineDoc(2, "C-1", "Artikel C", 1, None)))
    values.update(kw)
    return PurchaseOrderDoc(**values)


NS = {"o": "http://www.opentrans.org/XMLSchema/2.1", "b": "http://www.bmecat.org/bmecat/2005"}


def test_the_order_we_write_reads_back_as_a_dropshipment_to_the_end_customer():
    f = OpenTrans().render_order(_doc())
    assert f.name == "PO000042.xml" and f.media_type == "application/xml"
    root = etree.fromstring(f.content)
    assert root.tag == "{http://www.opentrans.org/XMLSchema/2.1}ORDER" and root.get("version") == "2.1"
    info = root.find("o:ORDER_HEADER/o:ORDER_INFO", NS)
    assert info.findtext("o:ORDER_ID", namespaces=NS) == "PO000042"
    assert info.find("o:REMARKS[@type='dropshipment']", NS) is not None
    roles = {p.findtext("o:PARTY_ROLE", namespaces=NS): p for p in info.iterfind("o:PARTIES/o:PARTY", NS)}
    assert set(roles) == {"buyer", "supplier", "delivery"}
    delivery = roles["delivery"].find("o:ADDRESS", NS)
    assert delivery.findtext("b:NAME", namespaces=NS) == "Anna Beispiel"
    assert delivery.findtext("b:CITY", namespaces=NS) == "Berlin"
    assert b"+49 30 1234" not in f.content  # no phone, no e-mail for the partner
    ref = info.findtext("o:ORDER_PARTIES_REFERENCE/o:SHIPMENT_PARTIES_REFERENCE/o:DELIVERY_IDREF", namespaces=NS)
    assert ref == roles["delivery"].findtext("b:PARTY_ID", namespaces=NS)
    items = root.findall("o:ORDER_ITEM_LIST/o:ORDER_ITEM", NS)
    assert [(i.findtext("o:LINE_ITEM_ID", namespaces=NS), i.findtext("o:PRODUCT_ID/b:SUPPLIER_PID", namespaces=NS),
             i.findtext("o:QUANTITY", namespaces=NS)) for i in items] == [("1", "B-1", "2"), ("2", "C-1", "1")]
    assert items[0].findtext("o:PRICE_LINE_AMOUNT", namespaces=NS) == "15.00"
    assert root.findtext("o:ORDER_SUMMARY/o:TOTAL_ITEM_NUM", namespaces=NS) == "2"


def test_an_order_without_a_street_is_refused_naming_the_field():
    with pytest.raises(InputError) as e:
        OpenTrans().render_order(_doc(ship_to=Address(name="X", city="Berlin", country="DE")))
    assert e.value.where == "PO000042:ship_to"


def test_an_order_response_accepts_and_rejects_per_line():
    found = OpenTrans().read("r.xml", order_response("PO000042", {1: (2, ""), 2: (0, "discontinued")}), BERLIN)
    assert found.kind == "answer"
    assert [(a.po_number, a.line_no, a.accepted, a.quantity, a.reason) for a in found.answers] == \
        [("PO000042", 1, True, 2, ""), ("PO000042", 2, False, 0, "discontinued")]


def test_a_free_text_rejection_is_other_with_the_text_kept():
    [a] = OpenTrans().read("r.xml", order_response("PO000042", {1: (0, "Lager leer")}), BERLIN).answers
    assert (a.reason, a.note) == ("other", "Lager leer")


def test_a_dispatch_notification_is_one_parcel_per_tracking_number():
    found = OpenTrans().read("d.xml", dispatch("PO000042", "00340434161094042557", {1: 2, 2: 1}), BERLIN)
    [p] = found.parcels
    assert (p.po_number, p.carrier, p.tracking_number, p.lines) == ("PO000042", "DHL", "00340434161094042557",
                                                                    ((1, 2), (2, 1)))
    assert p.shipped_at == datetime(2026, 11, 24, 14, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("content, where", [
    (order_response("PO000042", {1: (2, "")}).replace(b"<QUANTITY>2</QUANTITY>", b"<QUANTITY>two</QUANTITY>"),
     "QUANTITY"),
    (order_response("PO000042", {1: (2, "")}).replace(b"<LINE_ITEM_ID>1<", b"<LINE_ITEM_ID>x1<"), "LINE_ITEM_ID"),
    (order_response("DROP TABLE", {1: (2, "")}), "ORDER_ID"),
    (dispatch("PO000042", "", {1: 1}), "SHIPMENT_ID"),
    (dispatch("PO000042", "123", {1: 1}).replace(b"2026-11-24T15:00:00+01:00", b"yesterday"),
     "DISPATCHNOTIFICATION_DATE"),
    (dispatch("PO000042", "123", {1: 1}).replace(b"deliverer", b"carrier"), "PARTIES"),
])
def test_a_bad_value_rejects_the_whole_file_naming_line_and_element(content, where):
    with pytest.raises(InputError) as e:
        OpenTrans().read("x.xml", content, BERLIN)
    assert e.value.where.startswith("x.xml:") and e.value.where.endswith(where)


def test_a_doctype_is_refused_before_parsing():
    evil = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><ORDERRESPONSE>&a;</ORDERRESPONSE>'
    with pytest.raises(InputError, match="DOCTYPE"):
        answers.read("evil.xml", evil, BERLIN)


def test_a_file_of_another_kind_is_refused():
    with pytest.raises(InputError, match="ORDERRESPONSE or DISPATCHNOTIFICATION"):
        OpenTrans().read("o.xml", OpenTrans().render_order(_doc()).content, BERLIN)
