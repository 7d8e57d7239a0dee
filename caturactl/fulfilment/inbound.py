"""Reading what partners send back on their return channels, file by file: the one skeleton of a
fulfiller's confirmations (``shipping.Collector``) and a dropshipper's answers (``dropship.inbox``).

Each channel's files are listed; a file is fetched, known again by its hash (``InboundFile``: a
file seen before is only moved aside), claimed by inserting its row, and applied whole in one
savepoint or rejected whole (a ticket, the error folder, nothing changed). Only after the commit
is it moved to the archive. Files come from partners, who may be careless or hostile, so a file is
judged alone and stops only itself; a channel that cannot be reached is left for the next run.
What a file means is the subclass's ``apply_file``.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Callable, Mapping, Protocol, Sequence

from sqlalchemy import select
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from caturactl.config import Config
from caturactl.core.errors import CaturactlError, InputError, NotFoundError, StateError
from caturactl.core.events import EventKind, record
from caturactl.core.lifecycle import move
from caturactl.fulfilment.models import InboundFile, InboundFileStatus
from caturactl.orders.tickets import OPEN, Ticket
from caturactl.orders.triage import Hold, open_ticket
from caturactl.ports import Transport

log = logging.getLogger(__name__)
MESSAGE_LIMIT = 1000  # characters of a partner's error kept in tickets, events and output
TICKET_KIND = "confirmation_rejected"


def printable(name: str) -> str:
    """A file name as text: bytes that are not UTF-8 (kept by the listing as surrogates) are
    written as \\xNN, so the name can go into the database, a ticket and a terminal."""
    try:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return name.encode("utf-8", "backslashreplace").decode("utf-8")


def plain(message: str, most: int = MESSAGE_LIMIT) -> str:
    """A message about a partner's file, fit for a ticket, the database and a terminal: control
    characters (a NUL PostgreSQL refuses, an escape sequence for the operator's terminal) as
    \\xNN, and cut after ``most`` characters."""
    text = "".join(ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii")
                   for ch in message[:most])
    return text if len(message) <= most else text + "…"


def max_file_bytes(cfg: Config, codes: Sequence[str]) -> int:
    """The largest file read from a channel: the most generous ``max_file_mb`` of the locations
    answering on it (which one sent a file is only known once it is read)."""
    return max(cfg.locations[c].max_file_mb for c in codes) * 1024 * 1024


class Tally(Protocol):
    """What one applied file counted, added to the run's result once the file is through."""

    @property
    def stored(self) -> int:
        """The number kept on the file's row (``InboundFile.confirmations``)."""

    def add_to(self, result) -> None:
        """Add these counts to the run's result."""


@dataclass
class Result:
    """What a run read, as the skeleton counts it; a reader's result adds what its files said."""
    files: int = 0
    rejected: list[str] = field(default_factory=list)  # "FILE: why"
    duplicates: int = 0  # files read before (a crash between commit and move) or taken by another run
    unreachable: list[str] = field(default_factory=list)  # "TRANSPORT: why"
    dry_run: bool = False

    @property
    def exit_code(self) -> int:
        """69 when a channel could not be reached, 65 when a file was rejected, else 0."""
        if self.unreachable:
            return 69
        return 65 if self.rejected else 0


class _DryRun(Exception):
    pass


class ChannelReader:
    """Reads every return channel and applies its files one by one; ``apply_file`` says what a
    file means, ``channels`` which transports to read and who answers on each."""

    REJECTS: tuple[type[Exception], ...] = (InputError, StateError, DataError)  # what rejects a file whole
    WHAT = "file"  # how tickets name a file: "WHAT NAME from TRANSPORT ..."

    def __init__(self, session: Session, cfg: Config, transport: Callable[[str], Transport]):
        self.s, self.cfg, self.transport = session, cfg, transport

    def channels(self) -> Mapping[str, list[str]]:
        """Transport name -> the location codes answering on it."""
        raise NotImplementedError

    def apply_file(self, tname: str, codes: list[str], name: str, content: bytes) -> Tally:
        """Apply one file in the open savepoint; InputError (or another of ``REJECTS``) rejects it whole."""
        raise NotImplementedError

    def read_all(self, r: Result, *, dry_run: bool, progress: Callable[[int], None] | None = None) -> None:
        """Read every channel into ``r``. A bad file is rejected alone; a channel that cannot be
        reached (RemoteError, ConfigError) is left for the next run, the others are still read."""
        for tname, codes in self.channels().items():
            try:
                t = self.transport(tname)
                try:
                    for name in t.incoming():
                        self._one_file(t, tname, codes, name, r, dry_run)
                        if progress:
                            progress(1)
                finally:
                    t.close()
            except CaturactlError as exc:
                self.s.rollback()
                r.unreachable.append(f"{tname}: {exc}")

    def _one_file(self, t: Transport, tname: str, codes: list[str], name: str, r: Result, dry_run: bool) -> None:
        r.files += 1
        content = self._fetch(t, tname, codes, name, r, dry_run)
        if content is None:
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
            r.duplicates += 1  # another run is reading this file right now (or just did)
            return
        try:
            with self.s.begin_nested():
                tally = self.apply_file(tname, codes, name, content)
                if dry_run:
                    raise _DryRun()
        except _DryRun:
            tally.add_to(r)
            return
        except self.REJECTS as exc:
            if isinstance(exc, DataError):  # a value none of our checks caught; still this file's
                exc = InputError(f"the database refuses a value of this file: {exc.orig}", where=name)
            self._reject(t, tname, name, claim, exc, r, dry_run, how="rejected whole, nothing applied")
            return
        claim.confirmations = tally.stored
        self.s.commit()
        tally.add_to(r)
        self._move(t, name, "archive")

    def _fetch(self, t: Transport, tname: str, codes: list[str], name: str, r: Result, dry_run: bool) -> bytes | None:
        """The file's content; None when it is gone (another run took it) or was set aside unread
        (its name, its size, the server refuses it)."""
        shown = printable(name)
        try:
            if shown != name:
                # Kept in tickets, events and the database, a name must be text; this one is bytes
                # from a system that does not write UTF-8.
                raise InputError("the file name is not UTF-8; rename it (letters, digits, '_', '-', '.') "
                                 "and put it back", where=shown)
            return t.fetch(name, max_bytes=max_file_bytes(self.cfg, codes))
        except NotFoundError:
            r.duplicates += 1  # taken by another run between our listing and now
        except InputError as exc:
            self._reject(t, tname, name, None, exc, r, dry_run, how="set aside unread")
        return None

    def _claim(self, tname: str, name: str, digest: str) -> InboundFile | bool:
        """The file's row, inserted before it is applied: the unique (transport, content) key makes
        this the claim. False when another run holds it (PostgreSQL waits for that run's commit)."""
        row = InboundFile(transport=tname, name=name[:300], sha256=digest, status=InboundFileStatus.PROCESSED.value)
        try:
            with self.s.begin_nested():
                self.s.add(row)
                self.s.flush()
        except IntegrityError:
            return False
        return row

    def _reject(self, t: Transport, tname: str, name: str, claim: InboundFile | None, exc: CaturactlError,
                r: Result, dry_run: bool, *, how: str) -> None:
        """A ticket (one while it is open), the claim rejected (or an event, for a file never
        read: there is no hash to know it again by), the file to the error folder."""
        shown = printable(name)
        message = plain(str(exc) if exc.where else f"{shown}: {exc}")
        r.rejected.append(f"{shown}: {message}")
        if dry_run:
            return
        ref = shown[:100]
        known = self.s.scalar(select(Ticket.id).where(Ticket.kind == TICKET_KIND, Ticket.external_ref == ref,
                                                      Ticket.status == OPEN))
        if not known:
            open_ticket(self.s, TICKET_KIND, [Hold(TICKET_KIND, f"{self.WHAT} {shown} from {tname} {how}: {message}; "
                                                                f"moved to the error folder")], external_ref=ref)
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
        """Move a read file aside; one that is gone already (another run moved it) is left be."""
        try:
            t.move_aside(name, folder)
        except InputError as exc:
            log.warning("%s: not moved to %s: %s", printable(name), folder, exc)
