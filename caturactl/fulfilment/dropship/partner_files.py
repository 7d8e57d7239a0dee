"""The plain values of the files about returns, cancellations and invoices that cross a
dropshipper's interface, beside the purchase order's (``messages.py``): the return notice and the
cancellation request we send, the partner's return confirmation and cancellation answer read
back on its return channel (``dropship read``), and the partner's invoice to us (``dropship
invoices import``). No ORM object crosses; adapters import only this module, ``messages.py`` and
``caturactl.ports``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol

from caturactl.ports import RenderedFile

# The condition a partner finds a returned parcel in (the portal offers the same words).
CONDITIONS = ("as_new", "opened", "damaged", "incomplete")
CANCELLATION_ANSWERS = ("accepted", "refused")


@dataclass(frozen=True, slots=True)
class ReturnLineDoc:
    line_no: int  # the purchase order's line
    sku: str
    title: str
    quantity: int


@dataclass(frozen=True, slots=True)
class ReturnNoticeDoc:
    """What a partner needs to take a return in: which purchase order, which pieces, from whom
    (name and place only), why, and the reference the buyer's return label carries."""

    number: str  # "RT000012": the key of the partner's confirmation
    purchase_order: str
    announced_at: datetime  # UTC
    reason: str
    label_reference: str  # not a label booked with a carrier: the reference the return label carries
    sender_name: str
    sender_postal_code: str
    sender_city: str
    sender_country: str
    lines: tuple[ReturnLineDoc, ...]


@dataclass(frozen=True, slots=True)
class ReturnReceipt:
    """The partner's confirmation that a return arrived, and in which condition."""

    return_number: str
    condition: str  # one of CONDITIONS
    note: str = ""
    where: str = ""  # "FILE:LINE" for messages


@dataclass(frozen=True, slots=True)
class CancellationRequestDoc:
    """Our request that a partner not ship a purchase order (the buyer cancelled)."""

    purchase_order: str
    requested_at: datetime  # UTC
    reason: str
    lines: tuple[tuple[int, str, int], ...]  # (line_no, sku, quantity) still to ship


@dataclass(frozen=True, slots=True)
class CancellationAnswer:
    purchase_order: str
    accepted: bool
    note: str = ""
    where: str = ""


@dataclass(frozen=True, slots=True)
class InvoiceLineDoc:
    """One line of a partner's invoice: what it says it delivered, and for how much (net)."""

    position: int
    purchase_order: str  # our number, "" when the line names none
    line_no: int | None  # our purchase order line; None: found by the SKU
    sku: str
    quantity: int
    unit_price: Decimal  # net, each
    net: Decimal
    tax_rate: Decimal  # percent
    where: str = ""


@dataclass(frozen=True, slots=True)
class PartnerInvoiceDoc:
    """A partner's invoice (Eingangsrechnung) as its file says it, totals checked against its lines."""

    number: str
    issue_date: date
    currency: str
    net_total: Decimal
    tax_total: Decimal
    gross_total: Decimal
    lines: tuple[InvoiceLineDoc, ...]
    source: str  # "csv", "cii" (ZUGFeRD / Factur-X / XRechnung CII) or "ubl" (XRechnung UBL)


class PartnerDocuments(Protocol):
    """Writes return notices and cancellation requests in a partner's format and reads its
    invoices (the partner's confirmations and answers come in through ``PartnerInterface.read``)."""

    def render_return(self, doc: ReturnNoticeDoc) -> RenderedFile:
        """The return notice file; InputError naming a field that does not fit."""
        ...

    def render_cancellation(self, doc: CancellationRequestDoc) -> RenderedFile:
        """The cancellation request file."""
        ...

    def read_invoice(self, name: str, content: bytes) -> PartnerInvoiceDoc:
        """One invoice file (CSV, ZUGFeRD PDF, CII or UBL XML), all or nothing: InputError naming
        FILE:LINE:FIELD (or the EN 16931 term) at the first bad value."""
        ...
