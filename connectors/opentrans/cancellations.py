"""Cancellations with a dropshipper, as CSV beside the openTRANS ORDER: our request not to ship a
purchase order, ``CANCEL_<number>.csv`` (one row per line still to ship), and the partner's
answer it reads back on its return channel, a CSV whose header names ``purchase_order`` and
``cancellation`` (accepted or refused) and ``note``: one row per purchase order.

openTRANS 2.1 has ORDERCHANGE for changing an order; its elements for a cancellation are not
checked against the specification here, so the request goes as this CSV instead.
"""

from __future__ import annotations

from caturactl.fulfilment.dropship.partner_files import (CANCELLATION_ANSWERS, CancellationAnswer,
                                                         CancellationRequestDoc)
from caturactl.ports import RenderedFile
from connectors.opentrans import csv_files

REQUEST_HEADER = ("purchase_order", "line", "sku", "quantity", "reason", "requested_at")
ANSWER_FIELDS = ("purchase_order", "cancellation")


def render(doc: CancellationRequestDoc) -> RenderedFile:
    """The request ``CANCEL_<number>.csv`` (a purchase order with nothing left to ship still gets
    one row, so the partner knows)."""
    reason = csv_files.text(doc.reason, "reason", doc.purchase_order, 1000)
    at = csv_files.local_time(doc.requested_at)
    rows = [(doc.purchase_order, line_no, csv_files.text(sku, "sku", doc.purchase_order, 100), qty, reason, at)
            for line_no, sku, qty in doc.lines] or [(doc.purchase_order, "", "", 0, reason, at)]
    return RenderedFile(f"CANCEL_{doc.purchase_order}.csv", csv_files.write(REQUEST_HEADER, rows), "text/csv")


def is_answer(header: list[str]) -> bool:
    """Whether a CSV header is a cancellation answer's."""
    return all(f in header for f in ANSWER_FIELDS)


def read(name: str, content: bytes) -> tuple[CancellationAnswer, ...]:
    """The answers of a file, all or nothing."""
    return tuple(CancellationAnswer(number, csv_files.choice(row["cancellation"], CANCELLATION_ANSWERS, where,
                                                             "cancellation") == "accepted",
                                    csv_files.text(row.get("note", ""), "note", where, 1000), where)
                 for where, number, row in csv_files.keyed_rows(name, content, ANSWER_FIELDS, "purchase_order"))
