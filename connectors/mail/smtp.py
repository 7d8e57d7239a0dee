"""Sending e-mail over SMTP (smtplib), and the transport that mails delivery files to a location.

The mailer decides between "try again later" and "a person must look": a server that cannot be
reached or times out raises RemoteError, and a 4xx answer (greylisting, a full mailbox)
RefusedError, a RemoteError that also says the server did not take the message; both are
retried by the outbox, but only a send whose answer was lost stays in doubt. A 5xx refusal of
the sender, a recipient or the message raises RejectedError (resending unchanged will not help);
a refused login, a certificate that does not verify, or a server lacking STARTTLS/AUTH is a
ConfigError. One connection per message: order e-mails are few, and a fresh connection never
trips over a server's idle timeout.
"""

from __future__ import annotations

import email.errors
import hashlib
import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Callable

from caturactl.config import MailConfig, TransportConfig
from caturactl.core import clock
from caturactl.core.errors import ConfigError, InputError, RefusedError, RejectedError, RemoteError
from caturactl.ports import MailMessage, Mailer, RenderedFile
from connectors.ftp.names import safe_name

# 530: "authentication required" or "must issue STARTTLS first": the settings, not the message.
_NEEDS_LOGIN_OR_TLS = 530


class SmtpMailer:
    """A ``Mailer`` that hands each message to one SMTP server."""

    def __init__(self, cfg: MailConfig, *, password: str | None = None, base_dir: Path) -> None:
        """Checks the configuration without connecting; raises ConfigError when host or
        from_address is empty, a user has no password, or ca_file cannot be read."""
        if not cfg.host:
            raise ConfigError("mail: host is empty")
        if not cfg.from_address:
            raise ConfigError("mail: from_address is empty")
        self._cfg = cfg
        self._label = f"smtp ({cfg.host}:{cfg.port})"
        if cfg.user and password is None:
            raise ConfigError(f"{self._label}: user {cfg.user!r} is set but no password "
                              f"(password_env {cfg.password_env or 'is empty'})")
        self._password = password
        self._tls: ssl.SSLContext | None = None
        if cfg.security != "none":
            ca = str(base_dir / cfg.ca_file) if cfg.ca_file else None
            try:
                self._tls = ssl.create_default_context(cafile=ca)
            except (OSError, ssl.SSLError) as e:
                raise ConfigError(f"{self._label}: cannot read ca_file {ca}: {e}") from None

    def compose(self, message: MailMessage) -> EmailMessage:
        """The e-mail as it goes on the wire (UTF-8 subject and body, attachments, Date and
        Message-ID); raises InputError when it has no recipient or a header would break."""
        if not message.to:
            raise InputError("e-mail has no recipient")
        try:
            msg = EmailMessage()
            msg["From"] = self._cfg.from_address
            msg["To"] = ", ".join(message.to)
            msg["Subject"] = message.subject
            msg["Date"] = format_datetime(clock.now().astimezone())
            if message.message_id:
                mid = message.message_id.strip()
                msg["Message-ID"] = mid if mid.startswith("<") else f"<{mid}>"
            else:
                msg["Message-ID"] = make_msgid(domain=self._cfg.from_address.rpartition("@")[2] or None)
            if message.reply_to:
                msg["Reply-To"] = message.reply_to
            # quoted-printable keeps the body 7-bit, so no server has to offer 8BITMIME.
            msg.set_content(message.body, charset="utf-8", cte="quoted-printable")
            for file in message.attachments:
                maintype, _, subtype = file.media_type.partition("/")
                if not maintype or not subtype:
                    maintype, subtype = "application", "octet-stream"
                msg.add_attachment(file.content, maintype=maintype, subtype=subtype,
                                   filename=safe_name(file.name))
        except (ValueError, TypeError, email.errors.MessageError) as e:
            # the policy refuses CR/LF in headers: a subject must not smuggle in a header
            raise InputError(f"e-mail {message.subject!r} cannot be built: {e}") from None
        return msg

    def send(self, message: MailMessage, *, before_data: Callable[[], None] | None = None) -> None:
        """Hand ``message`` to the server; ``before_data`` is called once connected and logged
        in, right before MAIL FROM (the outbox marks the point after which a crash leaves the
        e-mail in doubt). Raises RemoteError when it cannot be reached or times out; RefusedError
        when it answers 4xx to sender, recipients or message (nothing was taken); RejectedError
        on a 5xx refusal of sender, recipients or message (also when only some recipients were
        refused: the others got it); ConfigError for login, TLS or certificate problems;
        InputError when the message cannot be built."""
        msg = self.compose(message)
        cfg = self._cfg
        smtp: smtplib.SMTP | None = None
        try:
            # Host in the constructor: smtplib checks the certificate against the name given there.
            if cfg.security == "ssl":
                smtp = smtplib.SMTP_SSL(cfg.host, cfg.port, context=self._tls, timeout=cfg.timeout_seconds)
            else:
                smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_seconds)
            if cfg.security == "starttls":
                smtp.starttls(context=self._tls)
            if cfg.user:
                smtp.login(cfg.user, self._password or "")
            smtp.ehlo_or_helo_if_needed()  # a server refusing to talk at all does so before the mark
            if before_data is not None:
                before_data()
            refused = smtp.send_message(msg, from_addr=cfg.from_address, to_addrs=list(message.to))
            _quit(smtp)
        except smtplib.SMTPAuthenticationError as e:
            raise ConfigError(f"{self._label}: login as {cfg.user!r} refused: {_reply(e)}") from None
        except smtplib.SMTPNotSupportedError as e:
            raise ConfigError(f"{self._label}: {e} (check security and user)") from None
        except smtplib.SMTPRecipientsRefused as e:
            raise self._refused(e.recipients, delivered=False) from None
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as e:
            what = "sender refused" if isinstance(e, smtplib.SMTPSenderRefused) else "message refused"
            if e.smtp_code == _NEEDS_LOGIN_OR_TLS:
                raise ConfigError(f"{self._label}: {what}: {_reply(e)} (check security and user)") from None
            error = RejectedError if e.smtp_code >= 500 else RefusedError
            raise error(f"{self._label}: {what}: {_reply(e)}") from None
        except smtplib.SMTPResponseException as e:
            raise RemoteError(f"{self._label}: {_reply(e)}") from None
        except ssl.SSLCertVerificationError as e:
            raise ConfigError(f"{self._label}: server certificate not trusted: {e.verify_message} "
                              "(check ca_file)") from None
        except (smtplib.SMTPException, OSError) as e:
            raise RemoteError(f"{self._label}: {_reason(e, cfg.timeout_seconds)}") from None
        finally:
            if smtp is not None:
                smtp.close()  # no QUIT after an error: a hung server would cost a second timeout
        if refused:
            raise self._refused(refused, delivered=True)

    def _refused(self, recipients: dict[str, tuple[int, bytes]], *, delivered: bool) -> RemoteError:
        detail = "; ".join(f"{addr}: {code} {text.decode('utf-8', 'replace')}"
                           for addr, (code, text) in recipients.items())
        note = " (sent to the other recipients)" if delivered else ""
        # Refused for now, and nobody got it: a retry is no risk. Once the others have it, a retry
        # would mail them twice, so that stays a plain RemoteError (in doubt when the outbox sent it).
        error = RejectedError if any(code >= 500 for code, _ in recipients.values()) else \
            RemoteError if delivered else RefusedError
        return error(f"{self._label}: recipient refused: {detail}{note}")


class EmailTransport:
    """A location that takes its delivery files by e-mail: each file is mailed to ``cfg.to``.
    E-mail is one-way: there is no listing to check for an earlier copy and no return channel."""

    def __init__(self, name: str, cfg: TransportConfig, mailer: Mailer, *, from_company: str = "") -> None:
        """Raises ConfigError when the kind is not email or no recipient is configured."""
        if cfg.kind != "email":
            raise ConfigError(f"transport {name}: kind {cfg.kind!r} is not email")
        if not cfg.to:
            raise ConfigError(f"transport {name}: 'to' lists no recipient")
        self.name = name
        self._cfg = cfg
        self._mailer = mailer
        self._company = from_company

    def message_id(self, file_name: str) -> str:
        """The Message-ID the mail for ``file_name`` carries, the same on every resend, so the
        location's mail system can drop a duplicate. The company is part of it because a
        fulfiller serving several merchants gets the same delivery numbers from each."""
        digest = hashlib.sha1(f"{self._company}\n{self.name}\n{file_name}".encode()).hexdigest()
        return f"<{digest}@caturactl>"

    def send(self, file: RenderedFile, *, before_commit: Callable[[], None] | None = None) -> bool:
        """Mail ``file`` as an attachment to the configured recipients; always True, because an
        e-mail cannot be checked for an earlier copy (a resend is a second mail with the same
        Message-ID). ``before_commit`` is called right before the message goes out. Raises
        InputError for an unsafe name and what the mailer raises."""
        name = safe_name(file.name)
        sender = f" von {self._company}" if self._company else ""
        sender_en = f" from {self._company}" if self._company else ""
        body = (f"Guten Tag,\n\nanbei der Lieferauftrag {name}{sender}.\n\n"
                f"Hello,\n\nattached is the delivery order {name}{sender_en}.\n\n"
                "-- \nDiese E-Mail wurde automatisch erstellt. / This e-mail was sent automatically.\n")
        self._mailer.send(MailMessage(to=tuple(self._cfg.to), subject=f"Lieferauftrag {name}", body=body,
                                      attachments=(file,), message_id=self.message_id(name)),
                          before_data=before_commit)
        return True

    def incoming(self) -> list[str]:
        """Always empty: nothing comes back by e-mail."""
        return []

    def fetch(self, name: str) -> bytes:
        """Raises InputError: e-mail is not a return channel."""
        raise InputError("e-mail is not a return channel")

    def move_aside(self, name: str, folder: str) -> None:
        """Raises InputError: e-mail is not a return channel."""
        raise InputError("e-mail is not a return channel")

    def close(self) -> None:
        """Nothing to close: the mailer connects per message."""


def _quit(smtp: smtplib.SMTP) -> None:
    # After the server took the message, a failing QUIT must not turn success into a retry.
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _reply(e: smtplib.SMTPResponseException) -> str:
    text = e.smtp_error.decode("utf-8", "replace") if isinstance(e.smtp_error, bytes) else str(e.smtp_error)
    return f"{e.smtp_code} {text}"


def _reason(e: BaseException, timeout: float) -> str:
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, (socket.timeout, TimeoutError)):
        return f"no answer within {timeout:g} s"
    if isinstance(e, smtplib.SMTPServerDisconnected):
        return f"the server closed the connection ({e})" if str(e) else "the server closed the connection"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__
