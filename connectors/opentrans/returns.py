"""Returns with a dropshipper, as CSV (openTRANS 2.1 has no document for a return announced to a
supplier): the return notice we send, ``RETURN_<number>.csv``, one row per returned line, and the
partner's confirmation it reads back on its return channel, a CSV whose header names ``return``
and ``condition`` (and ``note``): one row per return it took in.

The notice names the sender by name and place only, and the reference the buyer's return label
carries (``label_reference``: not a label booked with a carrier).
"""

from __future__ import annotations

from functools import partial

from caturactl.fulfilment.dropship.partner_files import CONDITIONS, ReturnNoticeDoc, ReturnReceipt
from caturactl.ports import RenderedFile
from connectors.opentrans import csv_files

NOTICE_HEADER = ("return", "purchase_order", "line", "sku", "description", "quantity", "reason", "label_reference",
                 "announced_at", "sender_name", "sender_postal_code", "sender_city", "sender_country")
CONFIRMATION_FIELDS = ("return", "condition")


def render(doc: ReturnNoticeDoc) -> RenderedFile:
    """The notice ``RETURN_<number>.csv``; InputError naming a field that does not fit."""
    t = partial(csv_files.text, number=doc.number)
    rows = [(doc.number, doc.purchase_order, ln.line_no, t(ln.sku, "sku", most=100),
             t(ln.title, "description", most=500), ln.quantity, t(doc.reason, "reason", most=1000),
             t(doc.label_reference, "label_reference", most=40), csv_files.local_time(doc.announced_at),
             t(doc.sender_name, "sender_name"), t(doc.sender_postal_code, "sender_postal_code", most=20),
             t(doc.sender_city, "sender_city", most=100), t(doc.sender_country, "sender_country", most=2))
            for ln in doc.lines]
    return RenderedFile(f"RETURN_{doc.number}.csv", csv_files.write(NOTICE_HEADER, rows), "text/csv")


def is_confirmation(header: list[str]) -> bool:
    """Whether a CSV header is a return confirmation's."""
    return all(f in header for f in CONFIRMATION_FIELDS)


def read(name: str, content: bytes) -> tuple[ReturnReceipt, ...]:
    """The returns a confirmation file says the partner took in, all or nothing."""
    return tuple(ReturnReceipt(number, csv_files.choice(row["condition"], CONDITIONS, where, "condition"),
                               csv_files.text(row.get("note", ""), "note", where, 1000), where)
                 for where, number, row in csv_files.keyed_rows(name, content, CONFIRMATION_FIELDS, "return"))
