"""Reading what dropshippers send back on their return channels: answers (ORDERRESPONSE),
parcels (DISPATCHNOTIFICATION), availability feeds, return confirmations and answers to our
cancellation requests, file by file.

The same skeleton as a fulfiller's confirmations (``inbound.ChannelReader``): a file is applied
whole in one transaction or rejected whole (a ticket, moved to the error folder, nothing changed);
only after the commit is it moved to the archive, and a file seen again after a crash is known by
its hash (``InboundFile``, whose row is the claim). A file is judged alone: what is wrong with it
stops only it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Sequence
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, selectinload

from caturactl.config import Config
from caturactl.core.errors import InputError
from caturactl.core.events import EventKind, record
from caturactl.fulfilment import inbound
from caturactl.fulfilment.dropship import cancellations, partner_stock, returns, service, terms
from caturactl.fulfilment.dropship.messages import PartnerFile, PartnerInterface
from caturactl.fulfilment.dropship.models import PurchaseOrder, partners_row
from caturactl.ports import Transport


@dataclass
class ReadResult(inbound.Result):
    answers: int = 0  # lines answered
    parcels: int = 0  # new parcels
    availability: int = 0  # figures set
    returns: int = 0  # returns confirmed received
    cancellations: int = 0  # cancellation requests answered

    @property
    def stored(self) -> int:
        """What one file's counts keep on its row (``inbound.Tally``): the lines it answered."""
        return self.answers + self.parcels + self.returns + self.cancellations

    def add_to(self, r: ReadResult) -> None:
        """Add one file's counts to the run's."""
        r.answers += self.answers
        r.parcels += self.parcels
        r.availability += self.availability
        r.returns += self.returns
        r.cancellations += self.cancellations

    def as_dict(self) -> dict:
        return {"files": self.files, "answers": self.answers, "parcels": self.parcels,
                "availability": self.availability, "returns": self.returns, "cancellations": self.cancellations,
                "rejected": self.rejected, "duplicates": self.duplicates,
                "unreachable": self.unreachable, "dry_run": self.dry_run}


def return_channels(cfg: Config) -> dict[str, list[str]]:
    """Return transport name -> the dropshippers answering on it (partners on the portal have none)."""
    out: dict[str, list[str]] = {}
    for code in terms.partners(cfg):
        loc = cfg.locations[code]
        name = loc.return_transport or loc.transport
        if name:
            out.setdefault(name, []).append(code)
    return out


class Reader(inbound.ChannelReader):
    """Reads every dropshipper's return channel and applies its files, one by one."""

    WHAT = "dropshipper file"

    def __init__(self, session: Session, cfg: Config, transport: Callable[[str], Transport],
                 interface: PartnerInterface, *, now: datetime):
        super().__init__(session, cfg, transport)
        self.interface, self.now = interface, now

    def run(self, *, dry_run: bool = False) -> ReadResult:
        """Read each channel; one that cannot be reached is left for the next run."""
        r = ReadResult(dry_run=dry_run)
        self.read_all(r, dry_run=dry_run)
        return r

    def channels(self) -> dict[str, list[str]]:
        """The dropshippers' return channels (``return_channels``)."""
        return return_channels(self.cfg)

    def apply_file(self, tname: str, codes: list[str], name: str, content: bytes) -> ReadResult:
        """Read the file as its partners' interface writes it and apply all it says."""
        counts = ReadResult()
        found = self.interface.read(name, content, ZoneInfo(self.cfg.locations[codes[0]].timezone))
        self._apply(found, name, codes, counts)
        return counts

    def _apply(self, found: PartnerFile, name: str, codes: Sequence[str], counts: ReadResult) -> None:
        """Everything one file says, in the open transaction; InputError/StateError reject it whole."""
        if found.kind == "availability":
            if len(codes) != 1:
                raise InputError(f"an availability file must come on a channel of one partner "
                                 f"(this one serves {', '.join(codes)})", where=name)
            as_of = partner_stock.dated(found.as_of, self.now, f"{name}:{partner_stock.AS_OF_FIELD}")
            fr = partner_stock.store(self.s, codes[0], list(found.availability), as_of, name, self.now)
            record(self.s, EventKind.NOTE, f"availability of {codes[0]} from {name}: {fr.rows} SKU(s), "
                                           f"{fr.changed} changed", data={"partner": codes[0]})
            counts.availability += fr.rows
            return
        if found.kind == "return":
            counts.returns += returns.apply_receipts(self.s, self.cfg, found.returns, codes, self.now, name)
            return
        if found.kind == "cancellation":
            counts.cancellations += cancellations.apply_answers(self.s, found.cancellations, codes, self.now)
            return
        by_po: dict[str, list] = {}
        for item in (*found.answers, *found.parcels):
            by_po.setdefault(item.po_number, []).append(item)
        for number, items in by_po.items():
            po = self._po(number, codes, items[0].where)
            if found.kind == "answer":
                counts.answers += service.apply_answers(self.s, self.cfg, po, items, self.now)
            else:
                counts.parcels += sum(service.apply_parcel(self.s, self.cfg, po, p, self.now) for p in items)

    def _po(self, number: str, codes: Sequence[str], where: str) -> PurchaseOrder:
        # One not sent yet is as unknown to the partner as one that does not exist.
        return partners_row(self.s, PurchaseOrder, number, codes, what="purchase order", where=f"{where}:ORDER_ID",
                            also=[PurchaseOrder._state != "created"],
                            options=[selectinload(PurchaseOrder.lines), selectinload(PurchaseOrder.parcels)])
