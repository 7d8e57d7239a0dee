"""The plain values that cross a dropshipper's interface (the openTRANS adapter in
connectors/opentrans/, wired in by ``caturactl.app``): the purchase order we send, the answers
and parcels we read back. No ORM object crosses; adapters import only this module and
``caturactl.ports``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from decimal import Decimal
from typing import Protocol

from caturactl.core.address import Address
from caturactl.fulfilment.dropship.partner_files import CancellationAnswer, ReturnReceipt
from caturactl.ports import RenderedFile


@dataclass(frozen=True, slots=True)
class PurchaseLineDoc:
    line_no: int
    sku: str
    title: str
    quantity: int
    unit_price: Decimal | None  # the agreed net purchase price each; None when none is agreed


@dataclass(frozen=True, slots=True)
class AttachedFile:
    """A file sent beside the purchase order over the same transport (the delivery note, the
    label), which the order names so the partner knows it belongs to it."""

    name: str
    media_type: str
    description: str


@dataclass(frozen=True, slots=True)
class PurchaseOrderDoc:
    """What a partner needs to ship one purchase order to our buyer, in our name."""

    number: str  # "PO000123": the key of every answer
    created_at: datetime  # UTC
    currency: str
    buyer: Address  # the merchant, who buys (and is the sender on the parcel)
    buyer_id: str  # the merchant's id in the document ("caturactl" party id)
    supplier_id: str  # the partner's code
    supplier_name: str
    ship_to: Address  # the end customer: name and address only, no e-mail, no phone
    ship_date: date | None  # when we expect the parcel to leave
    carrier: str
    service: str
    lines: tuple[PurchaseLineDoc, ...]
    note: str = ""  # for the packer (delivery instructions)
    attachments: tuple[AttachedFile, ...] = ()  # sent beside it, in this order


@dataclass(frozen=True, slots=True)
class LineAnswer:
    """The partner's answer to one line: accepted whole, or rejected with a reason."""

    po_number: str
    line_no: int
    accepted: bool
    quantity: int | None = None  # what the partner confirmed (an accepted line: all of it)
    reason: str = ""  # a REJECT_REASONS code when rejected
    note: str = ""  # the partner's own words
    where: str = ""  # "FILE:LINE_ITEM[2]" for messages


@dataclass(frozen=True, slots=True)
class ParcelReport:
    """One parcel the partner handed to a carrier, with the lines (and pieces) in it."""

    po_number: str
    carrier: str
    tracking_number: str
    shipped_at: datetime  # UTC
    lines: tuple[tuple[int, int], ...]  # (line_no, quantity); empty: every open line
    where: str = ""


@dataclass(frozen=True, slots=True)
class PartnerFile:
    """Everything one file from a partner says (a file says one kind of thing)."""

    kind: str  # "answer" | "dispatch" | "availability" | "return" | "cancellation"
    answers: tuple[LineAnswer, ...] = ()
    parcels: tuple[ParcelReport, ...] = ()
    availability: tuple[tuple[str, int], ...] = ()
    as_of: datetime | None = None  # the moment an availability feed speaks for
    returns: tuple[ReturnReceipt, ...] = ()  # returns the partner took in (partner_files)
    cancellations: tuple[CancellationAnswer, ...] = ()  # its answers to our cancellation requests


class PartnerInterface(Protocol):
    """Writes our purchase orders in a partner's format and reads what the partner sends back."""

    name: str

    def render_order(self, doc: PurchaseOrderDoc, order_format: str = "opentrans") -> RenderedFile:
        """The purchase order file in ``order_format`` (the partner's ``order_format``: "opentrans"
        or "csv"); raises InputError naming the field a value does not fit."""
        ...

    def read(self, name: str, content: bytes, tz: tzinfo) -> PartnerFile:
        """Every message of one file, all or nothing: InputError(where="FILE:...:FIELD") at the
        first bad value. ``tz`` applies to times without an offset."""
        ...
