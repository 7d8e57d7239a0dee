"""The openTRANS 2.1 ORDER we send a dropshipper for one purchase order.

Element names and their order follow the openTRANS 2.1 specification (Fraunhofer IAO /
BME, "openTRANS 2.1", the ORDER document; namespace http://www.opentrans.org/XMLSchema/2.1 with
the BMEcat 2005 elements in http://www.bmecat.org/bmecat/2005), as its published sample
``sample_order_opentrans_2_1.xml`` shows them: ORDER_HEADER / CONTROL_INFO / ORDER_INFO
(ORDER_ID, ORDER_DATE, DELIVERY_DATE, PARTIES with PARTY_ROLE buyer, supplier and delivery,
ORDER_PARTIES_REFERENCE with SHIPMENT_PARTIES_REFERENCE/DELIVERY_IDREF, bmecat:CURRENCY,
PARTIAL_SHIPMENT_ALLOWED, REMARKS), ORDER_ITEM_LIST / ORDER_ITEM (LINE_ITEM_ID, PRODUCT_ID with
bmecat:SUPPLIER_PID, bmecat:BUYER_PID, bmecat:DESCRIPTION_SHORT, QUANTITY, bmecat:ORDER_UNIT,
PRODUCT_PRICE_FIX/bmecat:PRICE_AMOUNT, PRICE_LINE_AMOUNT), ORDER_SUMMARY (TOTAL_ITEM_NUM,
TOTAL_AMOUNT). We checked names against that sample and two public libraries that map the
schema (OpenTransSharp, DXSdata/openTRANS); the XSD itself is not in this repository, so files
are not validated against it here.

A dropshipment: the merchant is the buyer, the end customer is the delivery party (name and
address only: no e-mail, no phone, no price the customer paid), and the order says so twice:
``REMARKS type="dropshipment"`` (openTRANS 2.1 has no element of its own for it; REMARKS carries
a free type) and a delivery party other than the buyer. Prices are our agreed purchase prices.

The papers for the parcel (delivery note, label: ``PurchaseOrderDoc.attachments``) travel beside
the ORDER over the same transport, uploaded before it, and the ORDER names each in
ORDER_INFO / MIME_INFO / MIME (bmecat:MIME_TYPE, bmecat:MIME_SOURCE = the file name,
bmecat:MIME_DESCR, MIME_PURPOSE "others", bmecat:MIME_ORDER), the way the published sample shows
MIME_INFO in a PARTY or an AGREEMENT; its place in ORDER_INFO, just before REMARKS, follows the
specification's sequence as we read it and is not checked against the XSD either.
"""

from __future__ import annotations

from decimal import Decimal

from lxml import etree

from caturactl.core.address import Address
from caturactl.core.errors import InputError
from caturactl.fulfilment.dropship.messages import PurchaseOrderDoc
from caturactl.ports import RenderedFile

NS = "http://www.opentrans.org/XMLSchema/2.1"
BMECAT = "http://www.bmecat.org/bmecat/2005"
_NSMAP = {None: NS, "bmecat": BMECAT}
UNIT = "C62"  # UN/ECE recommendation 20: one (piece)
DROPSHIPMENT = "dropshipment"  # the REMARKS type that marks the order
DROPSHIPMENT_REMARK = ("Streckengeschäft: ship to the delivery party in the buyer's name, "
                       "no prices or invoice in the parcel")


def _el(parent, tag: str, text: str | None = None, ns: str = NS, **attrs) -> etree._Element:
    e = etree.SubElement(parent, f"{{{ns}}}{tag}", **attrs)
    if text is not None:
        e.text = text
    return e


def _b(parent, tag: str, text: str | None = None, **attrs) -> etree._Element:
    return _el(parent, tag, text, ns=BMECAT, **attrs)


def _clean(value: str, field: str, number: str, most: int = 100) -> str:
    """``value`` as text fit for the file: printable, at most ``most`` characters."""
    if any(not (ch.isprintable() or ch == " ") for ch in value):
        raise InputError("a control character is not allowed", where=f"{number}:{field}")
    if len(value) > most:
        raise InputError(f"longer than {most} characters", where=f"{number}:{field}")
    return value


def _party(parent, party_id: str, role: str, a: Address, number: str) -> None:
    party = _el(parent, "PARTY")
    _b(party, "PARTY_ID", party_id, type="buyer_specific")
    _el(party, "PARTY_ROLE", role)
    addr = _el(party, "ADDRESS")
    _b(addr, "NAME", _clean(a.name or a.company, f"{role}.name", number))
    if not a.line1:  # a party known by name alone (the supplier: it knows its own address)
        return
    if a.company and a.name:
        _b(addr, "NAME2", _clean(a.company, f"{role}.company", number))
    if a.line2 or a.line3:
        _b(addr, "NAME3", _clean(" ".join(x for x in (a.line2, a.line3) if x), f"{role}.line2", number))
    _b(addr, "STREET", _clean(a.line1, f"{role}.street", number))
    _b(addr, "ZIP", _clean(a.postal_code, f"{role}.postal_code", number, 20))
    _b(addr, "CITY", _clean(a.city, f"{role}.city", number))
    _b(addr, "COUNTRY_CODED", _clean(a.country, f"{role}.country", number, 2))


def _amount(x: Decimal) -> str:
    return f"{x:.2f}" if x == x.quantize(Decimal("0.01")) else f"{x.normalize():f}"


def check(doc: PurchaseOrderDoc) -> None:
    """InputError unless ``doc`` has a line and a delivery address with street, postal code, city
    and country (whatever the file it becomes)."""
    n = doc.number
    if not doc.lines:
        raise InputError("a purchase order needs a line", where=f"{n}:lines")
    if not (doc.ship_to.line1 and doc.ship_to.postal_code and doc.ship_to.city and doc.ship_to.country):
        raise InputError("the delivery address needs street, postal code, city and country", where=f"{n}:ship_to")


def render(doc: PurchaseOrderDoc) -> RenderedFile:
    """The ORDER of ``doc`` as ``<number>.xml`` (UTF-8); raises InputError naming the field."""
    n = doc.number
    check(doc)
    root = etree.Element(f"{{{NS}}}ORDER", nsmap=_NSMAP, version="2.1", type="standard")
    header = _el(root, "ORDER_HEADER")
    _el(_el(header, "CONTROL_INFO"), "GENERATION_DATE", doc.created_at.isoformat(timespec="seconds"))
    info = _el(header, "ORDER_INFO")
    _el(info, "ORDER_ID", n)
    _el(info, "ORDER_DATE", doc.created_at.isoformat(timespec="seconds"))
    if doc.ship_date is not None:
        dates = _el(info, "DELIVERY_DATE")
        _el(dates, "DELIVERY_START_DATE", doc.ship_date.isoformat())
        _el(dates, "DELIVERY_END_DATE", doc.ship_date.isoformat())
    parties = _el(info, "PARTIES")
    delivery_id = f"{n}-delivery"
    _party(parties, doc.buyer_id, "buyer", doc.buyer, n)
    _party(parties, doc.supplier_id, "supplier", Address(name=doc.supplier_name), n)
    _party(parties, delivery_id, "delivery", doc.ship_to, n)
    refs = _el(info, "ORDER_PARTIES_REFERENCE")
    _b(refs, "BUYER_IDREF", doc.buyer_id, type="buyer_specific")
    _b(refs, "SUPPLIER_IDREF", doc.supplier_id, type="buyer_specific")
    _el(_el(refs, "SHIPMENT_PARTIES_REFERENCE"), "DELIVERY_IDREF", delivery_id, type="buyer_specific")
    _b(info, "CURRENCY", doc.currency)
    _el(info, "PARTIAL_SHIPMENT_ALLOWED", "TRUE")
    if doc.attachments:
        mime_info = _el(info, "MIME_INFO")
        for i, a in enumerate(doc.attachments, 1):
            mime = _el(mime_info, "MIME")
            _b(mime, "MIME_TYPE", a.media_type)
            _b(mime, "MIME_SOURCE", _clean(a.name, f"attachments[{i}].name", n))
            _b(mime, "MIME_DESCR", _clean(a.description, f"attachments[{i}].description", n))
            _el(mime, "MIME_PURPOSE", "others")
            _b(mime, "MIME_ORDER", str(i))
    _el(info, "REMARKS", DROPSHIPMENT_REMARK, type=DROPSHIPMENT)
    if doc.carrier:
        _el(info, "REMARKS", f"{doc.carrier} {doc.service}".strip(), type="carrier")
    if doc.note:
        _el(info, "REMARKS", _clean(doc.note, "note", n, 500), type="delivery_instructions")
    items = _el(root, "ORDER_ITEM_LIST")
    total = Decimal(0)
    for ln in doc.lines:
        item = _el(items, "ORDER_ITEM")
        _el(item, "LINE_ITEM_ID", str(ln.line_no))
        pid = _el(item, "PRODUCT_ID")
        _b(pid, "SUPPLIER_PID", _clean(ln.sku, f"line[{ln.line_no}].sku", n))
        _b(pid, "BUYER_PID", _clean(ln.sku, f"line[{ln.line_no}].sku", n))
        if ln.title:
            _b(pid, "DESCRIPTION_SHORT", _clean(ln.title, f"line[{ln.line_no}].title", n, 150))
        _el(item, "QUANTITY", str(ln.quantity))
        _b(item, "ORDER_UNIT", UNIT)
        if ln.unit_price is not None:
            _b(_el(item, "PRODUCT_PRICE_FIX"), "PRICE_AMOUNT", _amount(ln.unit_price))
            line_amount = ln.unit_price * ln.quantity
            total += line_amount
            _el(item, "PRICE_LINE_AMOUNT", _amount(line_amount))
    summary = _el(root, "ORDER_SUMMARY")
    _el(summary, "TOTAL_ITEM_NUM", str(len(doc.lines)))
    _el(summary, "TOTAL_AMOUNT", _amount(total))
    content = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return RenderedFile(f"{n}.xml", content, "application/xml")
