"""Shipment confirmations from a fulfiller in our own XML format (namespace
``urn:caturactl:fulfilment:confirmation:1``, schema ``carriers/schemas/confirmation.xsd``).

We define this format because no vendor-neutral 3PL standard exists (reference/carriers/formats.md
§6); a fulfiller that can write XML gets an exact schema instead of a CSV convention. The file
comes from outside, so it is parsed with entities, DTDs and network access switched off, and a
document that declares a DOCTYPE at all is refused (billion laughs, external entities). It is then
validated against the schema and read all or nothing, like the CSV confirmation: the first bad
value rejects the whole file, named by file:line:element. The schema bounds texts but not
numbers (xs:decimal, xs:positiveInteger and xs:dateTime have no upper end), so weights,
quantities and times go through the CSV reader's range checks too.
"""

from __future__ import annotations

from datetime import tzinfo
from decimal import Decimal
from functools import cache
from importlib.resources import files

from lxml import etree

from carriers import safe_xml

from caturactl.core.errors import InputError
from caturactl.ports import Confirmation, ConfirmedLine
from carriers.confirmation_csv import MAX_QUANTITY, parse_count, parse_time, weight_in_g
from carriers.tracking import normalise

NAMESPACE = "urn:caturactl:fulfilment:confirmation:1"
_NS = {"c": NAMESPACE}


def safe_parser() -> etree.XMLParser:
    """The safe parser of carriers/safe_xml.py."""
    return safe_xml.parser()


@cache
def schema() -> etree.XMLSchema:
    """The confirmation schema, loaded once per process from the package data."""
    source = files("carriers").joinpath("schemas/confirmation.xsd").read_bytes()
    return etree.XMLSchema(etree.fromstring(source, safe_parser()))


# The byte patterns of a DOCTYPE in the encodings a document can start in without a declaration;
# refusing early means a hostile DTD is never handed to the parser at all.
_DOCTYPE_MARKS = tuple("<!DOCTYPE".encode(enc) for enc in ("ascii", "utf-16-le", "utf-16-be"))


def parse_untrusted(file_name: str, content: bytes) -> etree._ElementTree:
    """The parsed document; raises InputError(where="FILE:LINE") when it is not well-formed XML
    or declares a DOCTYPE (entity declarations are how billion laughs and XXE attacks start)."""
    if any(mark in content for mark in _DOCTYPE_MARKS):
        raise InputError("a DOCTYPE or entity declaration is not allowed", where=f"{file_name}:1")
    try:
        root = etree.fromstring(content, safe_parser())
    except etree.XMLSyntaxError as e:
        raise InputError(f"not well-formed XML: {e.msg}", where=f"{file_name}:{e.lineno or 1}") from None
    tree = root.getroottree()
    # Other encodings (UTF-32, EBCDIC) get past the byte check; the parser still saw the DTD.
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise InputError("a DOCTYPE or entity declaration is not allowed", where=f"{file_name}:1")
    return tree


class ConfirmationXml:
    """Reads confirmation XML files (see carriers/schemas/confirmation.xsd)."""

    name = "confirmation_xml"

    def read(self, file_name: str, content: bytes, tz: tzinfo) -> list[Confirmation]:
        """One Confirmation per <shipment>, in document order; raises InputError
        (where="FILE:LINE:ELEMENT") on the first problem, so a broken file is rejected whole."""
        tree = parse_untrusted(file_name, content)
        xsd = schema()
        if not xsd.validate(tree):
            raise _schema_error(file_name, tree, xsd.error_log.filter_from_errors()[0])
        return [_shipment(file_name, s, tz) for s in tree.getroot().iterfind("c:shipment", _NS)]


def _schema_error(file_name: str, tree: etree._ElementTree, error) -> InputError:
    """The first schema error as InputError naming the element and its line."""
    found = tree.xpath(error.path) if error.path else []
    element = found[0] if found and isinstance(found[0], etree._Element) else None
    name = etree.QName(element).localname if element is not None else "?"
    line = (element.sourceline if element is not None else None) or error.line
    message = error.message.replace("{" + NAMESPACE + "}", "")
    return InputError(message, where=f"{file_name}:{line}:{name}")


def _text(element: etree._Element) -> str:
    # The schema types are xs:token, which compares collapsed whitespace; read them the same way.
    return " ".join((element.text or "").split())


def _shipment(file_name: str, shipment: etree._Element, tz: tzinfo) -> Confirmation:
    """One schema-valid <shipment> as a Confirmation; InputError for what the schema cannot check."""

    def child(name: str) -> etree._Element | None:
        return shipment.find(f"c:{name}", _NS)

    def text(name: str) -> str:
        element = child(name)
        return _text(element) if element is not None else ""

    when = child("shippedAt")
    try:
        shipped_at = parse_time(_text(when), tz)
    except ValueError as e:
        raise InputError(str(e), where=f"{file_name}:{when.sourceline}:shippedAt") from None

    tracking_numbers: list[str] = []
    weights: list[int | None] = []
    lines: dict[str, int] = {}
    parcels = shipment.findall("c:parcel", _NS)
    with_lines = shipment.find("c:parcel/c:line", _NS) is not None
    for parcel in parcels:
        number_element = parcel.find("c:trackingNumber", _NS)
        number = normalise(number_element.text or "")
        if number in tracking_numbers:
            raise InputError(f"tracking number {number} appears twice in this shipment",
                             where=f"{file_name}:{number_element.sourceline}:trackingNumber")
        tracking_numbers.append(number)
        weight = parcel.find("c:weightKg", _NS)
        try:
            # The schema allows at most 3 decimals of a positive kg value, so grams are exact.
            weights.append(weight_in_g(Decimal(_text(weight))) if weight is not None else None)
        except ValueError as e:
            raise InputError(str(e), where=f"{file_name}:{weight.sourceline}:weightKg") from None
        parcel_lines = parcel.findall("c:line", _NS)
        if with_lines and not parcel_lines:
            raise InputError("this parcel lists no <line> while other parcels of the shipment do: "
                             "either every parcel says what it holds or none does",
                             where=f"{file_name}:{parcel.sourceline}:parcel")
        for line in parcel_lines:
            sku = " ".join(line.get("sku", "").split())
            try:
                # xs:positiveInteger may carry a "+"; its digits are ASCII.
                quantity = parse_count(line.get("quantity", "").strip().lstrip("+"), MAX_QUANTITY)
            except ValueError as e:
                raise InputError(str(e), where=f"{file_name}:{line.sourceline}:quantity") from None
            lines[sku] = lines.get(sku, 0) + quantity
            if lines[sku] > MAX_QUANTITY:
                raise InputError(f"{lines[sku]} × {sku} in this shipment: at most {MAX_QUANTITY}",
                                 where=f"{file_name}:{line.sourceline}:quantity")

    return Confirmation(
        delivery_id=text("deliveryId"),
        carrier=text("carrier"),
        service=text("service"),
        tracking_numbers=tuple(tracking_numbers),
        shipped_at=shipped_at,
        weights_g=tuple(weights) if any(w is not None for w in weights) else (),
        lines=tuple(ConfirmedLine(sku, q) for sku, q in lines.items()),
        where=f"{file_name}:{shipment.sourceline}",
        order_id=text("orderId"),
    )
