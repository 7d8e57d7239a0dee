"""The composition root: reads the configuration and wires adapters to ports.

Services never import an adapter; the CLI and the job runner ask this module for what they need.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import inspect
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from caturactl import channels
from caturactl import config as config_mod
from caturactl.config import Config
from caturactl.core import clock
from caturactl.core.errors import ConfigError, RemoteError
from caturactl.core.db import make_engine, make_sessionmaker
from caturactl.migrations import current, head


class App:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.engine = make_engine(cfg.database.url)
        self._sessions = make_sessionmaker(self.engine)

    @classmethod
    def from_config(cls, path: str | None = None) -> "App":
        return cls(config_mod.load(path))

    def check_database(self) -> None:
        """Raise a one-line error when the database is unreachable or not migrated."""
        try:
            with self.engine.connect() as conn:
                if not inspect(conn).has_table("orders"):
                    raise ConfigError("the database has no tables yet: run 'caturactl db upgrade'",
                                      where=_safe_url(self.cfg.database.url))
                if current(conn) != head():
                    raise ConfigError("the database schema is not current: run 'caturactl db upgrade'",
                                      where=_safe_url(self.cfg.database.url))
        except (OperationalError, DBAPIError) as exc:
            raise database_error(exc, "cannot open the database", where=_safe_url(self.cfg.database.url)) from None

    @contextmanager
    def work(self, dry_run: bool = False) -> Iterator[Session]:
        """One unit of work: a session committed at the end, or rolled back when ``dry_run`` (the
        one meaning of --dry-run: everything runs and checks, nothing stays) or on any error."""
        with self.session() as s:
            yield s
            s.rollback() if dry_run else s.commit()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session; the caller commits. Rolled back and closed on any error. It carries the
        configuration for services that take none (``session.info["config"]``)."""
        s = self._sessions()
        s.info["config"] = self.cfg
        try:
            yield s
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    def order_source(self, session: Session, channel: str):
        """(the ``Marketplace`` adapter of ``channel``, the scope its import runs over), asked of
        the channel (``SalesChannel.order_source``); ConfigError when it is switched off here."""
        return channels.get(channel).order_source(self, session)

    # --- fulfilment -------------------------------------------------------------------------

    def formats(self) -> dict:
        """Document formats by name (carriers/)."""
        from carriers import formats
        return formats()

    def readers(self) -> dict:
        """Confirmation readers by name (carriers/)."""
        from carriers import readers
        return readers()

    def partner_interface(self):
        """How purchase orders go to dropshippers and their answers come back (connectors/opentrans/)."""
        from connectors.opentrans import OpenTrans
        return OpenTrans()

    def statement_reader(self):
        """The bank statement reader (connectors/bank/: CAMT.053 or MT940, told apart by content)."""
        from connectors.bank import read_statement
        return read_statement

    def _password(self, env_name: str, where: str) -> str | None:
        if not env_name:
            return None
        value = os.environ.get(env_name)
        if value is None:
            raise ConfigError(f"environment variable {env_name} is not set", where=where)
        return value

    def transport(self, name: str):
        """The transport ``[transports.NAME]``, not yet connected (it connects on first use)."""
        t = self.cfg.transports.get(name)
        if t is None:
            raise ConfigError(f"no [transports.{name}] section", where="caturactl.toml")
        password = self._password(t.password_env, f"transports.{name}.password_env")
        base = self.cfg.base_dir
        if t.kind == "sftp":
            from connectors.ftp.sftp import SftpTransport
            return SftpTransport(name, t, password=password, base_dir=base)
        if t.kind in ("ftp", "ftps"):
            from connectors.ftp.ftp import FtpTransport
            return FtpTransport(name, t, password=password, base_dir=base)
        if t.kind == "folder":
            from connectors.ftp.folder import FolderTransport
            return FolderTransport(name, t, base_dir=base)
        from connectors.mail.smtp import EmailTransport
        return EmailTransport(name, t, self.mailer(), from_company=self.cfg.company.name)

    def mailer(self):
        from connectors.mail.smtp import SmtpMailer
        if not self.cfg.mail.host:
            raise ConfigError("no SMTP server configured", where="caturactl.toml: mail.host")
        return SmtpMailer(self.cfg.mail, password=self._password(self.cfg.mail.password_env, "mail.password_env"),
                          base_dir=self.cfg.base_dir)

    def settlement_reports(self, session: Session):
        """The settlement reports of the channel whose settlements are reconciled
        (``SalesChannel.settlement_source``), starting from the stored rate budgets."""
        return channels.settling().settlement_source(self, session)

    @staticmethod
    def write_datev_bookings(cfg, rows, date_from, date_to, out) -> int:
        """A DATEV EXTF Buchungsstapel of ``rows`` (caturactl.ports.JournalEntry) into ``out``: OSS
        rows with the destination and its rate, intra-Community supplies with the buyer's VAT id."""

        from connectors.datev.extf import BatchHeader, Booking, write_extf
        a = cfg.accounts
        fiscal = _fiscal_year_start(a.fiscal_year_start, date_from)
        header = BatchHeader(consultant_number=a.datev_consultant, client_number=a.datev_client,
                             fiscal_year_start=fiscal, account_length=4, date_from=date_from, date_to=date_to,
                             description=f"caturactl {date_from:%d.%m.}-{date_to:%d.%m.%Y}",
                             created_at=clock.now(), initials=a.initials, chart=a.chart)
        return write_extf(header, (Booking(amount=e.amount, debit_credit="S", account=e.debit,
                                           contra_account=e.credit, date=e.date, document=e.document, text=e.text,
                                           tax_key=e.tax_key, order_id=e.order_id,
                                           eu_country=e.country, eu_rate=e.rate, eu_vat_id=e.vat_id)
                                   for e in rows), out)

    @staticmethod
    def write_datev_debtors(cfg, rows, out) -> int:
        """DATEV EXTF debtor master data of ``rows`` (dicts from caturactl.accounting.exporting.debtors)."""

        from connectors.datev.extf import BatchHeader, Debtor, write_debtors
        a = cfg.accounts
        today = clock.today(cfg.tz)
        fiscal = _fiscal_year_start(a.fiscal_year_start, today)
        header = BatchHeader(consultant_number=a.datev_consultant, client_number=a.datev_client,
                             fiscal_year_start=fiscal, account_length=4, date_from=fiscal, date_to=today,
                             description="caturactl Debitoren", created_at=clock.now(),
                             initials=a.initials, chart=a.chart)
        return write_debtors(header, (Debtor(**r) for r in rows), out)

    def invoice_renderer(self):
        """PDF/A-3 with the EN 16931 XML embedded (connectors/einvoice)."""
        from connectors.einvoice.renderer import Renderer
        return Renderer()

    def invoice_render_pool(self, jobs: int):
        """Renders batches of invoices in ``jobs`` processes that each load the fonts once; close it."""
        from connectors.einvoice.renderer import RenderPool
        return RenderPool(jobs)

    def sender(self, session: Session):
        """The outbox sender with a handler per message kind; transports are opened once per run."""
        from caturactl.billing import invoicing
        from caturactl.fulfilment import shipping
        from caturactl.core.errors import InDoubtError
        from caturactl.billing.models import Invoice
        from caturactl.outbox.service import Sender
        from caturactl.ports import MailMessage, RenderedFile

        open_transports: dict = {}
        lazy: dict = {}

        def upload(msg, attempt) -> str | None:
            t = open_transports.get(msg.target)
            if t is None:
                t = open_transports[msg.target] = self.transport(msg.target)
            file = shipping.file_from_payload(msg.payload)
            tcfg = self.cfg.transports[msg.target]
            if attempt.in_doubt and (tcfg.kind == "email" or not tcfg.read_dirs):
                # The inbox alone cannot say: the location may have read the file and moved
                # or deleted it. send() looks in the read_dirs too, so with them it can.
                why = ("an e-mail cannot be looked up afterwards" if tcfg.kind == "email" else
                       f"[transports.{msg.target}] names no read_dirs, so a file the location has read is not "
                       f"to be seen")
                raise InDoubtError(f"a crash interrupted sending {file.name} at {_at(attempt.in_doubt)} and {why}; "
                                   f"check whether {msg.target} has it")
            if not t.send(file, before_commit=attempt.sending):
                return (f"{file.name} is at {msg.target} already" +
                        (" (a crash cut off the send that delivered it)" if attempt.in_doubt else ""))
            return None

        def email(msg, attempt) -> None:
            message_id = f"<outbox-{msg.id}@caturactl>"
            if attempt.in_doubt:
                raise InDoubtError(f"a crash interrupted sending this e-mail at {_at(attempt.in_doubt)}, and an e-mail "
                                   f"cannot be looked up afterwards; look for Message-ID {message_id} in the "
                                   f"mailbox of {', '.join(msg.payload['to'])} or the server's log")
            if "mailer" not in lazy:
                lazy["mailer"] = self.mailer()
            p = msg.payload
            attachments = ()
            if p.get("invoice_id"):
                inv = session.get(Invoice, p["invoice_id"])
                attachments = (RenderedFile(f"{inv.number}.pdf", inv.pdf, "application/pdf"),)
            lazy["mailer"].send(MailMessage(to=tuple(p["to"]), subject=p["subject"], body=p["body"],
                                            attachments=attachments, message_id=message_id),
                                before_data=attempt.sending)

        def close_all() -> None:
            for t in open_transports.values():
                t.close()
            open_transports.clear()
            for h in per_channel:
                h.close()

        # Each channel sends its own messages (connectors/<channel>/outbox.py).
        per_channel = [channels.get(name).outbox(self, session) for name in sorted(channels.REGISTERED)]
        handlers = {shipping.UPLOAD: upload, shipping.EMAIL: email}
        followups = {shipping.UPLOAD: shipping.file_uploaded, shipping.EMAIL: invoicing.invoice_sent}
        for h in per_channel:
            handlers.update(h.handlers())
            followups.update(h.followups())
        return Sender(session, self.cfg.shipping, handlers, followups, on_close=close_all)

    def dispose(self) -> None:
        self.engine.dispose()


# SQLite's answer when another connection held the write lock for the whole busy timeout.
_LOCKED = ("database is locked", "database table is locked")


def database_error(exc: DBAPIError, doing: str = "database error", where: str | None = None) -> RemoteError:
    """The one line for an error the database raised: its first line, and what to do about a
    SQLite database that another writer keeps locked (exit 69, like any unavailable system)."""
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    said = lines[0] if lines else type(exc).__name__
    if any(s in said for s in _LOCKED):
        return RemoteError(f"{doing}: the database is locked: another caturactl command or job is writing to it; "
                           "wait until it is done and run this again ('caturactl jobs list' shows the jobs)",
                           where=where)
    return RemoteError(f"{doing}: {said}", where=where)


def _at(t) -> str:
    return f"{t:%Y-%m-%d %H:%M:%S} UTC"


def _safe_url(url: str) -> str:
    """The database URL without its password, for messages."""
    from sqlalchemy.engine import make_url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only for a message; never leak the raw URL
        return "database.url"


__all__ = ["App"]


def _fiscal_year_start(month_day: str, day):
    """The first day of the fiscal year ``day`` falls in, the year starting on ``month_day`` ("MM-DD")."""
    from datetime import date as date_
    month, first = (int(x) for x in month_day.split("-"))
    start = date_(day.year, month, first)
    return start if start <= day else date_(day.year - 1, month, first)
