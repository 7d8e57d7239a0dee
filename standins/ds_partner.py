"""A stand-in for a dropshipper's own system on the SFTP server it shares with the merchant,
speaking openTRANS 2.1, for ``make demo`` (``standins/dropship_day.py``) and its test.

The server's directory is laid out as the merchant's ``[transports.*]`` section says: our
purchase orders arrive in ``orders/`` (the ORDER ``PO000123.xml`` and, uploaded before it, the
delivery note and label PDFs it names); the partner moves what it has read to ``orders/done/``
and writes its own files into ``answers/``, each under a temporary name renamed when complete:

- an availability CSV (``sku;quantity``) when its stock count is done (``stock_file``);
- per purchase order an ORDERRESPONSE: the ordered quantity accepts a line, 0 with
  ``REMARKS type="reject_reason"`` rejects it (``answer``);
- per purchase order a DISPATCHNOTIFICATION of one parcel: the deliverer party names the carrier
  (the one our order asked for, in its ``REMARKS type="carrier"``), SHIPMENT_ID is the parcel's
  tracking number (``dispatch``).

It answers as a partner's ERP would: what it decides comes from the caller (the demo's story),
tracking numbers are valid numbers of the carrier (``carriers.tracking.make_number``) from a
serial range of its own. The ORDER is parsed as any partner file from outside would be
(``carriers.confirmation_xml.parse_untrusted``).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from lxml import etree

from carriers.confirmation_xml import parse_untrusted
from carriers.tracking import known_carriers, make_number

OPENTRANS = "http://www.opentrans.org/XMLSchema/2.1"
BMECAT = "http://www.bmecat.org/bmecat/2005"
NS = {"o": OPENTRANS, "b": BMECAT}
TEMP_SUFFIX = ".part"


@dataclass(frozen=True)
class ReceivedOrder:
    """One purchase order as the partner's system took it in."""

    number: str  # our purchase order number, the key of every answer
    carrier: str  # the carrier the merchant asked for ("DHL")
    lines: tuple[tuple[int, str, int], ...]  # (line_no, sku, quantity)
    papers: tuple[str, ...]  # the PDFs named beside it (delivery note, label)


class OpenTransPartner:
    """The partner's system on ``root`` (see the module docstring). ``serial`` is the first
    tracking serial it numbers parcels with; ``carrier`` the one it uses when an order names a
    carrier without number rules. Raises ValueError for such a default carrier."""

    def __init__(self, root: Path, *, orders_dir: str = "orders", answers_dir: str = "answers",
                 carrier: str = "DHL", serial: int = 5_000_001, tz: str = "Europe/Berlin") -> None:
        make_number(carrier, serial)  # ValueError now rather than at the first parcel
        self.root = Path(root)
        self.orders, self.answers = self.root / orders_dir, self.root / answers_dir
        self.carrier, self.serial, self.tz = carrier, serial, ZoneInfo(tz)
        self.taken: dict[str, ReceivedOrder] = {}
        self.accepted: dict[str, list[int]] = {}  # purchase order -> lines it accepted, not yet dispatched
        for folder in (self.orders / "done", self.answers):
            folder.mkdir(parents=True, exist_ok=True)

    # --- what the partner reads ----------------------------------------------------------------

    def take_orders(self) -> list[ReceivedOrder]:
        """Read every new ORDER in the orders folder and move it, with the papers it names, to
        ``done/``; the orders read, by number."""
        out = []
        for path in sorted(self.orders.glob("*.xml")):
            order = self._read_order(path)
            for name in (*order.papers, path.name):
                if (self.orders / name).exists():
                    shutil.move(self.orders / name, self.orders / "done" / name)
            self.taken[order.number] = order
            out.append(order)
        return out

    def _read_order(self, path: Path) -> ReceivedOrder:
        root = parse_untrusted(path.name, path.read_bytes()).getroot()
        info = root.find("o:ORDER_HEADER/o:ORDER_INFO", NS)
        asked = next((r.text or "" for r in info.iterfind("o:REMARKS", NS) if r.get("type") == "carrier"), "")
        named = [c for c in known_carriers() if f"{asked.upper()} ".startswith(c.upper() + " ")]
        carrier = max(named, key=len, default=self.carrier)  # "DHL Express ..." is not DHL's
        lines = tuple((int(item.findtext("o:LINE_ITEM_ID", namespaces=NS)),
                       item.findtext("o:PRODUCT_ID/b:SUPPLIER_PID", namespaces=NS),
                       int(item.findtext("o:QUANTITY", namespaces=NS)))
                      for item in root.iterfind("o:ORDER_ITEM_LIST/o:ORDER_ITEM", NS))
        papers = tuple(m.text for m in info.iterfind("o:MIME_INFO/o:MIME/b:MIME_SOURCE", NS))
        return ReceivedOrder(info.findtext("o:ORDER_ID", namespaces=NS), carrier, lines, papers)

    # --- what the partner writes ---------------------------------------------------------------

    def stock_file(self, quantities: dict[str, int], now: datetime) -> str:
        """Its stock count as an availability CSV in the answers folder; the file's name."""
        body = "sku;quantity\r\n" + "".join(f"{sku};{qty}\r\n" for sku, qty in sorted(quantities.items()))
        return self._write(f"AVAIL_{self._stamp(now)}.csv", body.encode("utf-8"))

    def answer(self, order: ReceivedOrder, now: datetime, rejected: dict[int, str] | None = None) -> str:
        """An ORDERRESPONSE to ``order``: every line accepted but those in ``rejected`` (line ->
        reason: out_of_stock, address, discontinued, other); the file's name."""
        rejected = rejected or {}
        root = _element(None, "ORDERRESPONSE", version="2.1")
        info = _element(_element(root, "ORDERRESPONSE_HEADER"), "ORDERRESPONSE_INFO")
        _element(info, "ORDER_ID", order.number)
        _element(info, "ORDERRESPONSE_DATE", self._local(now))
        items = _element(root, "ORDERRESPONSE_ITEM_LIST")
        for line_no, _sku, qty in order.lines:
            item = _element(items, "ORDERRESPONSE_ITEM")
            _element(item, "LINE_ITEM_ID", str(line_no))
            _element(item, "QUANTITY", "0" if line_no in rejected else str(qty))
            if line_no in rejected:
                _element(item, "REMARKS", rejected[line_no], type="reject_reason")
        self.accepted[order.number] = [n for n, _, _ in order.lines if n not in rejected]
        return self._write(f"ORDRSP_{order.number}.xml", _xml(root))

    def dispatch(self, order: ReceivedOrder, now: datetime) -> tuple[str, str] | None:
        """A DISPATCHNOTIFICATION of the lines it accepted of ``order``, in one parcel of the
        carrier the order asked for; (file name, tracking number), or None when it accepted none."""
        lines = self.accepted.pop(order.number, [])
        if not lines:
            return None
        tracking = make_number(order.carrier, self.serial)
        self.serial += 1
        root = _element(None, "DISPATCHNOTIFICATION", version="2.1")
        info = _element(_element(root, "DISPATCHNOTIFICATION_HEADER"), "DISPATCHNOTIFICATION_INFO")
        _element(info, "DISPATCHNOTIFICATION_ID", f"LS-{order.number}")
        _element(info, "DISPATCHNOTIFICATION_DATE", self._local(now))
        party = _element(_element(info, "PARTIES"), "PARTY")
        _element(party, "PARTY_ID", "carrier", ns=BMECAT)
        _element(party, "PARTY_ROLE", "deliverer")
        _element(_element(party, "ADDRESS"), "NAME", order.carrier, ns=BMECAT)
        _element(info, "SHIPMENT_ID", tracking)
        items = _element(root, "DISPATCHNOTIFICATION_ITEM_LIST")
        quantities = {n: q for n, _, q in order.lines}
        for i, line_no in enumerate(lines, 1):
            item = _element(items, "DISPATCHNOTIFICATION_ITEM")
            _element(item, "LINE_ITEM_ID", str(i))
            _element(item, "QUANTITY", str(quantities[line_no]))
            ref = _element(item, "ORDER_REFERENCE")
            _element(ref, "ORDER_ID", order.number)
            _element(ref, "LINE_ITEM_ID", str(line_no))
        return self._write(f"DISPATCH_{order.number}.xml", _xml(root)), tracking

    def _write(self, name: str, data: bytes) -> str:
        temp = self.answers / (name + TEMP_SUFFIX)
        temp.write_bytes(data)
        os.replace(temp, self.answers / name)
        return name

    def _local(self, now: datetime) -> str:
        return now.astimezone(self.tz).isoformat(timespec="seconds")

    def _stamp(self, now: datetime) -> str:
        return now.astimezone(self.tz).strftime("%Y%m%d-%H%M%S")


def _element(parent: etree._Element | None, tag: str, text: str | None = None, *, ns: str = OPENTRANS,
             **attrs: str) -> etree._Element:
    name = f"{{{ns}}}{tag}"
    e = etree.Element(name, nsmap={None: OPENTRANS, "bmecat": BMECAT}, **attrs) if parent is None \
        else etree.SubElement(parent, name, **attrs)
    if text is not None:
        e.text = text
    return e


def _xml(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


__all__ = ["OpenTransPartner", "ReceivedOrder"]
