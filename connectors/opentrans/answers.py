"""What a dropshipper sends back in openTRANS 2.1: ORDERRESPONSE (accept or reject per line) and
DISPATCHNOTIFICATION (parcels with tracking numbers).

Element names follow the openTRANS 2.1 specification (Fraunhofer IAO / BME) as its published
samples and the public libraries that map its schema show them (OpenTransSharp's
``sample_dispatchnotification_opentrans_2_1.xml``; DXSdata/openTRANS ``OrderResponseItem``,
``DispatchnotificationItem``, ``Package``):

- ORDERRESPONSE / ORDERRESPONSE_HEADER / ORDERRESPONSE_INFO / ORDER_ID: our purchase order
  number; ORDERRESPONSE_ITEM_LIST / ORDERRESPONSE_ITEM with LINE_ITEM_ID (our line number) and
  QUANTITY: the ordered quantity accepts the line, 0 rejects it. The reason of a rejection is a
  ``REMARKS type="reject_reason"`` of the item (openTRANS has no coded reason): one of
  out_of_stock, address, discontinued, other, or free text (then "other" with that text).
- DISPATCHNOTIFICATION / DISPATCHNOTIFICATION_HEADER / DISPATCHNOTIFICATION_INFO:
  DISPATCHNOTIFICATION_DATE (when the parcels left), SHIPMENT_ID (the tracking number of a file
  with one parcel), PARTIES / PARTY with PARTY_ROLE "deliverer" whose ADDRESS / bmecat:NAME is the
  carrier; DISPATCHNOTIFICATION_ITEM_LIST / DISPATCHNOTIFICATION_ITEM with QUANTITY and
  ORDER_REFERENCE (ORDER_ID, LINE_ITEM_ID: our purchase order and line). An item in another
  parcel names it by LOGISTIC_DETAILS / PACKAGE_INFO / PACKAGE / PACKAGE_ID, the parcel's
  tracking number; the parcels of one file are its items grouped by that number.

Partners often leave out the namespace; elements are matched by name in the openTRANS (and
BMEcat) namespace or in none. The file comes from outside: it is parsed as carriers/safe_xml.py
says (no entities, no DTD, no network; a DOCTYPE is refused) and read all or nothing, the first
bad value naming FILE:LINE:ELEMENT. It is not validated against the openTRANS XSD (not shipped).
"""

from __future__ import annotations

import re
from datetime import tzinfo

from lxml import etree

from carriers.confirmation_csv import parse_time
from carriers.confirmation_xml import parse_untrusted
from carriers.tracking import normalise
from caturactl.core.errors import InputError
from caturactl.fulfilment.dropship.messages import LineAnswer, ParcelReport, PartnerFile

NAMESPACES = ("http://www.opentrans.org/XMLSchema/2.1", "http://www.bmecat.org/bmecat/2005", None)
REASONS = ("out_of_stock", "address", "discontinued", "other")
MAX_LINES = 10_000
MAX_QUANTITY = 1_000_000
_QTY = re.compile(r"([0-9]{1,7})(\.0{1,6})?")
_NUMBER = re.compile(r"[A-Z]{1,4}[0-9]{1,12}")


def _name(e: etree._Element) -> str:
    q = etree.QName(e)
    return q.localname if q.namespace in NAMESPACES else ""


def _children(e: etree._Element, name: str) -> list[etree._Element]:
    return [c for c in e if isinstance(c.tag, str) and _name(c) == name]


def _path(e: etree._Element, *names: str) -> list[etree._Element]:
    found = [e]
    for n in names:
        found = [c for f in found for c in _children(f, n)]
    return found


def _one(e: etree._Element, file: str, *names: str, required: bool = True) -> etree._Element | None:
    found = _path(e, *names)
    if len(found) > 1:
        raise InputError(f"{names[-1]} more than once", where=f"{file}:{found[1].sourceline}:{names[-1]}")
    if not found:
        if required:
            raise InputError(f"{'/'.join(names)} is missing", where=f"{file}:{e.sourceline}:{names[-1]}")
        return None
    return found[0]


def _text(e: etree._Element | None, file: str, field: str, most: int = 100) -> str:
    value = (e.text or "").strip() if e is not None else ""
    line = e.sourceline if e is not None else 1
    if len(value) > most or any(not (ch.isprintable() or ch == " ") for ch in value):
        raise InputError(f"at most {most} printable characters", where=f"{file}:{line}:{field}")
    return value


def _quantity(e: etree._Element, file: str) -> int:
    text = _text(e, file, "QUANTITY", 20)
    m = _QTY.fullmatch(text)
    if not m or int(m[1]) > MAX_QUANTITY:
        raise InputError(f"not a whole number from 0 to {MAX_QUANTITY}: {text!r}", where=f"{file}:{e.sourceline}:QUANTITY")
    return int(m[1])


def _line_no(e: etree._Element, file: str) -> int:
    text = _text(e, file, "LINE_ITEM_ID", 20)
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_LINES:
        raise InputError(f"not a line number of ours (1 to {MAX_LINES}): {text!r}",
                         where=f"{file}:{e.sourceline}:LINE_ITEM_ID")
    return int(text)


def _po_number(e: etree._Element, file: str) -> str:
    text = _text(e, file, "ORDER_ID", 40).upper()
    if not _NUMBER.fullmatch(text):
        raise InputError(f"not a purchase order number of ours: {text!r} (e.g. PO000123)",
                         where=f"{file}:{e.sourceline}:ORDER_ID")
    return text


def read(file: str, content: bytes, tz: tzinfo) -> PartnerFile:
    """An ORDERRESPONSE or DISPATCHNOTIFICATION; raises InputError(where="FILE:LINE:ELEMENT")."""
    root = parse_untrusted(file, content).getroot()
    kind = _name(root)
    if kind == "ORDERRESPONSE":
        return PartnerFile(kind="answer", answers=tuple(_order_response(root, file)))
    if kind == "DISPATCHNOTIFICATION":
        return PartnerFile(kind="dispatch", parcels=tuple(_dispatch(root, file, tz)))
    raise InputError(f"an openTRANS ORDERRESPONSE or DISPATCHNOTIFICATION was expected, not {root.tag!r}",
                     where=f"{file}:{root.sourceline}")


def _order_response(root: etree._Element, file: str) -> list[LineAnswer]:
    info = _one(root, file, "ORDERRESPONSE_HEADER", "ORDERRESPONSE_INFO")
    number = _po_number(_one(info, file, "ORDER_ID"), file)
    items = _path(root, "ORDERRESPONSE_ITEM_LIST", "ORDERRESPONSE_ITEM")
    if not items:
        raise InputError("no ORDERRESPONSE_ITEM", where=f"{file}:{root.sourceline}:ORDERRESPONSE_ITEM_LIST")
    out, seen = [], set()
    for item in items:
        where = f"{file}:{item.sourceline}"
        line_no = _line_no(_one(item, file, "LINE_ITEM_ID"), file)
        if line_no in seen:
            raise InputError(f"line {line_no} answered twice", where=f"{where}:LINE_ITEM_ID")
        seen.add(line_no)
        qty = _quantity(_one(item, file, "QUANTITY"), file)
        said = [r for r in _children(item, "REMARKS") if r.get("type") == "reject_reason"]
        text = _text(said[0], file, "REMARKS", 300) if said else ""
        reason, note = (text, "") if text in REASONS else ("other" if text or not qty else "", text)
        if qty == 0 and not reason:
            reason = "other"
        out.append(LineAnswer(po_number=number, line_no=line_no, accepted=qty > 0, quantity=qty,
                              reason="" if qty else reason, note="" if qty else note, where=where))
    return out


def _dispatch(root: etree._Element, file: str, tz: tzinfo) -> list[ParcelReport]:
    info = _one(root, file, "DISPATCHNOTIFICATION_HEADER", "DISPATCHNOTIFICATION_INFO")
    when = _one(info, file, "DISPATCHNOTIFICATION_DATE")
    try:
        shipped_at = parse_time(_text(when, file, "DISPATCHNOTIFICATION_DATE", 40), tz)
    except ValueError as exc:
        raise InputError(str(exc), where=f"{file}:{when.sourceline}:DISPATCHNOTIFICATION_DATE") from None
    shipment = _one(info, file, "SHIPMENT_ID", required=False)
    default_tracking = normalise(_text(shipment, file, "SHIPMENT_ID", 40)) if shipment is not None else ""
    carriers = [p for p in _path(info, "PARTIES", "PARTY")
                if _text(_one(p, file, "PARTY_ROLE"), file, "PARTY_ROLE", 40) == "deliverer"]
    if len(carriers) != 1:
        raise InputError("exactly one PARTY with PARTY_ROLE deliverer (the carrier) is needed",
                         where=f"{file}:{info.sourceline}:PARTIES")
    carrier = _text(_one(carriers[0], file, "ADDRESS", "NAME"), file, "NAME", 40)
    if not carrier:
        raise InputError("the deliverer's NAME (the carrier) is empty", where=f"{file}:{carriers[0].sourceline}:NAME")
    items = _path(root, "DISPATCHNOTIFICATION_ITEM_LIST", "DISPATCHNOTIFICATION_ITEM")
    if not items:
        raise InputError("no DISPATCHNOTIFICATION_ITEM", where=f"{file}:{root.sourceline}:DISPATCHNOTIFICATION_ITEM_LIST")
    parcels: dict[tuple[str, str], list[tuple[int, int]]] = {}
    first: dict[tuple[str, str], str] = {}
    for item in items:
        ref = _one(item, file, "ORDER_REFERENCE")
        number = _po_number(_one(ref, file, "ORDER_ID"), file)
        line_no = _line_no(_one(ref, file, "LINE_ITEM_ID"), file)
        qty = _quantity(_one(item, file, "QUANTITY"), file)
        if qty == 0:
            raise InputError("a dispatched QUANTITY is at least 1", where=f"{file}:{item.sourceline}:QUANTITY")
        package = _one(item, file, "LOGISTIC_DETAILS", "PACKAGE_INFO", "PACKAGE", "PACKAGE_ID", required=False)
        tracking = normalise(_text(package, file, "PACKAGE_ID", 40)) if package is not None else default_tracking
        if not tracking:
            raise InputError("no tracking number: SHIPMENT_ID or the item's PACKAGE_ID",
                             where=f"{file}:{item.sourceline}:SHIPMENT_ID")
        key = (number, tracking)
        parcels.setdefault(key, []).append((line_no, qty))
        first.setdefault(key, f"{file}:{item.sourceline}")
    return [ParcelReport(po_number=n, carrier=carrier, tracking_number=t, shipped_at=shipped_at,
                         lines=tuple(lines), where=first[(n, t)]) for (n, t), lines in parcels.items()]
