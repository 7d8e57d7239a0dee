"""The purchase order as CSV, for a partner that reads no openTRANS (``[locations.X] order_format
= "csv"``): ``<number>.csv``, one row per line, written as ``csv_files`` writes every CSV we send
(UTF-8, ``;``, CRLF, formulas guarded).

Each row repeats the order's head: our number and date, the day the parcel should leave, the
carrier, the delivery party (the end customer: name and address only, no e-mail, no phone, no
price the customer paid), the ``remark`` that marks it a dropshipment (the ORDER's REMARKS
text), the packer's note, and the papers uploaded beside it. Prices are our agreed net purchase
prices; a line without one leaves the price columns empty.
"""

from __future__ import annotations

from functools import partial

from caturactl.fulfilment.dropship.messages import PurchaseOrderDoc
from caturactl.ports import RenderedFile
from connectors.opentrans import csv_files
from connectors.opentrans.order import DROPSHIPMENT_REMARK, _amount, check

HEADER = ("purchase_order", "order_date", "line", "sku", "description", "quantity", "unit_price", "line_amount",
          "currency", "ship_date", "carrier", "ship_name", "ship_company", "ship_street", "ship_street2",
          "ship_postal_code", "ship_city", "ship_country", "remark", "note", "papers")


def render(doc: PurchaseOrderDoc) -> RenderedFile:
    """The purchase order ``<number>.csv``; InputError naming a field that does not fit."""
    check(doc)
    t = partial(csv_files.text, number=doc.number)
    a = doc.ship_to
    head = (csv_files.local_time(doc.created_at),)
    ship = (doc.ship_date.isoformat() if doc.ship_date else "", f"{doc.carrier} {doc.service}".strip(),
            t(a.name, "ship_to.name"), t(a.company, "ship_to.company"), t(a.line1, "ship_to.street"),
            t(" ".join(x for x in (a.line2, a.line3) if x), "ship_to.line2"),
            t(a.postal_code, "ship_to.postal_code", most=20), t(a.city, "ship_to.city"),
            t(a.country, "ship_to.country", most=2), DROPSHIPMENT_REMARK, t(doc.note, "note", most=500),
            " ".join(t(f.name, "attachments.name") for f in doc.attachments))
    rows = []
    for ln in doc.lines:
        price = "" if ln.unit_price is None else _amount(ln.unit_price)
        amount = "" if ln.unit_price is None else _amount(ln.unit_price * ln.quantity)
        rows.append((doc.number, *head, ln.line_no, t(ln.sku, f"line[{ln.line_no}].sku"),
                     t(ln.title, f"line[{ln.line_no}].title", most=150), ln.quantity, price, amount, doc.currency,
                     *ship))
    return RenderedFile(f"{doc.number}.csv", csv_files.write(HEADER, rows), "text/csv")
