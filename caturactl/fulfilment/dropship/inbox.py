"""Reading what dropshippers send back on their return channels: answers (ORDERRESPONSE),
parcels (DISPATCHNOTIFICATION), availability feeds, return confirmations and answers to our
cancellation requests, file by file.

The same rules as a fulfiller's confirmations (``shipping.Collector``): a file is applied whole
in one transaction or rejected whole (a ticket, moved to the error folder, nothing changed);
only after the commit is it moved to the archive, and a file seen again after a crash is known by
its hash (``InboundFile``, whose row is the claim). A file is judged alone: what is wrong with it
stops only it.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session, selectinload

from caturactl.config import Config
from caturactl.core.errors import CaturactlError, InputError, NotFoundError, StateError
from caturactl.core.events import EventKind, record
from caturactl.core.lifecycle import move
from caturactl.fulfilment import shipping
from caturactl.fulfilment.dropship import cancellations, partner_stock, returns, service, terms
from caturactl.fulfilment.dropship.messages import PartnerFile, PartnerInterface
from caturactl.fulfilment.dropship.models import PurchaseOrder
from caturactl.fulfilment.models import InboundFile, InboundFileStatus
from caturactl.orders.tickets import OPEN, Ticket
from caturactl.orders.triage import Hold, open_ticket
from caturactl.ports import Transport

log = logging.getLogger(__name__)
TICKET_KIND = "confirmation_rejected"


@dataclass
class ReadResult:
    files: int = 0
    answers: int = 0  # lines answered
    parcels: int = 0  # new parcels
    availability: int = 0  # figures set
    returns: int = 0  # returns confirmed received
    cancellations: int = 0  # cancellation requests answered
    rejected: list[str] = field(default_factory=list)  # "FILE: why"
    duplicates: int = 0
    unreachable: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def exit_code(self) -> int:
        if self.unreachable:
            return 69
        return 65 if self.rejected else 0

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


class _DryRun(Exception):
    pass


class Reader:
    """Reads every dropshipper's return channel and applies its files, one by one."""

    def __init__(self, session: Session, cfg: Config, transport: Callable[[str], Transport],
                 interface: PartnerInterface, *, now: datetime):
        self.s, self.cfg, self.transport, self.interface, self.now = session, cfg, transport, interface, now

    def run(self, *, dry_run: bool = False) -> ReadResult:
        """Read each channel; one that cannot be reached is left for the next run."""
        r = ReadResult(dry_run=dry_run)
        for tname, codes in return_channels(self.cfg).items():
            try:
                t = self.transport(tname)
                try:
                    for name in t.incoming():
                        self._one_file(t, tname, codes, name, r, dry_run)
                finally:
                    t.close()
            except CaturactlError as exc:
                self.s.rollback()
                r.unreachable.append(f"{tname}: {exc}")
        return r

    def _one_file(self, t: Transport, tname: str, codes: list[str], name: str, r: ReadResult, dry_run: bool) -> None:
        r.files += 1
        shown = shipping.printable(name)
        try:
            if shown != name:
                raise InputError("the file name is not UTF-8", where=shown)
            content = t.fetch(name, max_bytes=shipping.max_file_bytes(self.cfg, codes))
        except NotFoundError:
            r.duplicates += 1
            return
        except InputError as exc:
            self._reject(t, tname, name, None, exc, r, dry_run)
            return
        digest = hashlib.sha256(content).hexdigest()
        seen = self.s.scalar(select(InboundFile).where(InboundFile.transport == tname, InboundFile.sha256 == digest))
        if seen is not None:
            r.duplicates += 1
            if not dry_run:
                self._move(t, name, "archive" if seen.status == InboundFileStatus.PROCESSED.value else "error")
            return
        claim = None if dry_run else self._claim(tname, name, digest)
        if claim is False:
            r.duplicates += 1
            return
        counts = ReadResult()
        try:
            with self.s.begin_nested():
                found = self.interface.read(name, content, ZoneInfo(self.cfg.locations[codes[0]].timezone))
                self._apply(found, name, codes, counts)
                if dry_run:
                    raise _DryRun()
        except _DryRun:
            self._add(r, counts)
            return
        except (InputError, StateError, DataError) as exc:
            if isinstance(exc, DataError):
                exc = InputError(f"the database refuses a value of this file: {exc.orig}", where=name)
            self._reject(t, tname, name, claim, exc, r, dry_run)
            return
        claim.confirmations = counts.answers + counts.parcels + counts.returns + counts.cancellations
        self.s.commit()
        self._add(r, counts)
        self._move(t, name, "archive")

    @staticmethod
    def _add(r: ReadResult, counts: ReadResult) -> None:
        r.answers += counts.answers
        r.parcels += counts.parcels
        r.availability += counts.availability
        r.returns += counts.returns
        r.cancellations += counts.cancellations

    def _apply(self, found: PartnerFile, name: str, codes: Sequence[str], counts: ReadResult) -> None:
        """Everything one file says, in the open transaction; InputError/StateError reject it whole."""
        if found.kind == "availability":
            if len(codes) != 1:
                raise InputError(f"an availability file must come on a channel of one partner "
                                 f"(this one serves {', '.join(codes)})", where=name)
            fr = partner_stock.store(self.s, codes[0], list(found.availability), found.as_of or self.now, name, self.now)
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
        po = self.s.scalar(select(PurchaseOrder).where(PurchaseOrder.number == number)
                           .options(selectinload(PurchaseOrder.lines), selectinload(PurchaseOrder.parcels))
                           .with_for_update(of=PurchaseOrder, key_share=True))
        if po is None or po.partner not in codes or po.state == "created":
            # Another partner's number is as unknown here as one that does not exist.
            raise InputError(f"unknown purchase order {number!r} for {', '.join(codes)}", where=f"{where}:ORDER_ID")
        return po

    def _claim(self, tname: str, name: str, digest: str) -> InboundFile | bool:
        row = InboundFile(transport=tname, name=name[:300], sha256=digest, status=InboundFileStatus.PROCESSED.value)
        try:
            with self.s.begin_nested():
                self.s.add(row)
                self.s.flush()
        except IntegrityError:
            return False
        return row

    def _reject(self, t: Transport, tname: str, name: str, claim: InboundFile | None, exc: CaturactlError,
                r: ReadResult, dry_run: bool) -> None:
        shown = shipping.printable(name)
        message = shipping.plain(str(exc) if exc.where else f"{shown}: {exc}")
        r.rejected.append(f"{shown}: {message}")
        if dry_run:
            return
        ref = shown[:100]
        known = self.s.scalar(select(Ticket.id).where(Ticket.kind == TICKET_KIND, Ticket.external_ref == ref,
                                                      Ticket.status == OPEN))
        if not known:
            open_ticket(self.s, TICKET_KIND, [Hold(TICKET_KIND, f"dropshipper file {shown} from {tname} rejected "
                                                                f"whole, nothing applied: {message}; moved to the "
                                                                f"error folder")], external_ref=ref)
        if claim is not None:
            claim.error = message
            move(self.s, claim, InboundFileStatus.REJECTED, f"{tname}:{shown}: {message}",
                 kind=EventKind.CONFIRMATION_REJECTED)
        else:
            record(self.s, EventKind.CONFIRMATION_REJECTED, f"{tname}:{shown}: {message}")
        self.s.commit()
        self._move(t, name, "error")

    @staticmethod
    def _move(t: Transport, name: str, folder: str) -> None:
        try:
            t.move_aside(name, folder)
        except InputError as exc:
            log.warning("%s: not moved to %s: %s", shipping.printable(name), folder, exc)
