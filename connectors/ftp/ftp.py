"""FTP and FTPS transport (ftplib): hands files to a location's FTP server and reads its answers.

FTPS is explicit TLS (AUTH TLS on the control port, then PROT P), with the server certificate
verified against ``ca_file`` or the system CAs and the host name checked. Passive mode only:
locations sit behind firewalls that let no connection back in to us.

Uploads go to ``.NAME.part`` and are renamed when complete. FTP servers differ in what RNTO does
onto an existing file (pyftpdlib and many Unix servers replace it, others refuse), so send()
checks the listing before the upload and again just before the rename; what is left is a window
of one round trip in which another client could deliver the same name.
"""

from __future__ import annotations

import ftplib
import io
import logging
import posixpath
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from caturactl.config import TransportConfig
from caturactl.core.errors import CaturactlError, ConfigError, InputError, NotFoundError, RemoteError
from caturactl.ports import RenderedFile
from connectors.ftp.names import (
    MAX_ASIDE_COPIES,
    aside_candidates,
    aside_folder,
    is_plain_name,
    is_temp_name,
    safe_name,
    temp_name,
    too_large,
)

log = logging.getLogger(__name__)

# Servers drop idle control connections (pyftpdlib and vsftpd after 300 s); after this long
# without a command a NOOP checks the connection before it is trusted with a file.
IDLE_CHECK_SECONDS = 15.0
# Reply codes meaning "this server does not know the command" (MLSD, SIZE on old servers).
_UNKNOWN_COMMAND = ("500", "501", "502", "504")


class _FtpTls(ftplib.FTP_TLS):
    """FTP_TLS whose data connections resume the control connection's TLS session.

    vsftpd (require_ssl_reuse) and FileZilla Server refuse data connections that do not, and
    plain ftplib does not, so without this uploads to them fail after a successful login.
    """

    def ntransfercmd(self, cmd: str, rest: int | str | None = None) -> tuple[socket.socket, int | None]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        return conn, size


class FtpTransport:
    """Sends files to ``cfg.outbound_dir`` and reads answers from ``cfg.inbound_dir`` over FTP
    (kind "ftp") or explicit FTPS (kind "ftps")."""

    def __init__(self, name: str, cfg: TransportConfig, *, password: str | None = None,
                 base_dir: Path) -> None:
        """Checks the configuration without connecting; raises ConfigError when the kind is not
        ftp/ftps, the host is missing or the ca_file cannot be read."""
        if cfg.kind not in ("ftp", "ftps"):
            raise ConfigError(f"transport {name}: kind {cfg.kind!r} is not ftp or ftps")
        if not cfg.host:
            raise ConfigError(f"transport {name}: host is empty")
        self.name = name
        self._cfg = cfg
        self._port = cfg.port or 21
        self._label = f"{cfg.kind} {name} ({cfg.host}:{self._port})"
        self._password = password or ""
        self._tls: ssl.SSLContext | None = None
        if cfg.kind == "ftps":
            ca = str(base_dir / cfg.ca_file) if cfg.ca_file else None
            try:
                # Verification and host name check stay on: that is what FTPS is for.
                self._tls = ssl.create_default_context(cafile=ca)
            except (OSError, ssl.SSLError) as e:
                raise ConfigError(f"{self._label}: cannot read ca_file {ca}: {e}") from None
        self._ftp: ftplib.FTP | None = None
        self._last_used = 0.0

    # --- connection -------------------------------------------------------------------------

    def _client(self) -> ftplib.FTP:
        if self._ftp is not None:
            if time.monotonic() - self._last_used < IDLE_CHECK_SECONDS:
                return self._ftp
            try:
                self._ftp.voidcmd("NOOP")
                return self._ftp
            except (ftplib.Error, OSError, EOFError):
                self._drop()  # the server let it go while idle; a new one is fine
        cfg, timeout = self._cfg, self._cfg.timeout_seconds
        ftp = _FtpTls(context=self._tls, timeout=timeout) if self._tls else ftplib.FTP(timeout=timeout)
        self._ftp = ftp
        ftp.connect(cfg.host, self._port)
        try:
            ftp.login(cfg.user or "anonymous", self._password)  # FTP_TLS.login sends AUTH TLS first
            if isinstance(ftp, ftplib.FTP_TLS):
                ftp.prot_p()
        except ftplib.error_perm as e:
            self._drop()
            # 530 wrong password; 550/534 TLS required or refused; 500 AUTH unknown (no FTPS)
            raise ConfigError(f"{self._label}: login as {cfg.user or 'anonymous'!r} refused: {e}") from None
        ftp.set_pasv(True)
        return ftp

    def _drop(self) -> None:
        ftp, self._ftp = self._ftp, None
        if ftp is not None:
            try:
                ftp.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail any way
                pass

    @contextmanager
    def _talking(self, action: str) -> Iterator[None]:
        """Turns ftplib's, ssl's and the socket's exceptions into ours, and drops a connection
        that failed so the next call starts clean."""
        try:
            yield
            self._last_used = time.monotonic()
        except CaturactlError:
            raise
        except ssl.SSLCertVerificationError as e:
            self._drop()
            raise ConfigError(f"{self._label}: server certificate not trusted: {e.verify_message} "
                              "(check ca_file)") from None
        except UnicodeDecodeError as e:
            # ftplib reads replies and listings as strict UTF-8; a name written by a Latin-1
            # system would otherwise end the whole run, not just this channel.
            self._drop()
            raise RemoteError(f"{self._label}: {action}: the server sent a name that is not UTF-8 "
                              f"({e.object[e.start:e.end + 8]!r}); rename that file") from None
        except (ftplib.Error, OSError, EOFError) as e:
            self._drop()
            raise RemoteError(f"{self._label}: {action}: {_reason(e, self._cfg.timeout_seconds)}") from None

    def _listing(self, ftp: ftplib.FTP, directory: str) -> dict[str, dict[str, str]] | None:
        """Entries of ``directory`` with their MLSD facts (type, modify), None when it is missing.

        Servers without MLSD get NLST plus SIZE (a directory has none) and MDTM per name.
        """
        try:
            return {n: facts for n, facts in ftp.mlsd(directory, facts=["type", "modify"])
                    if facts.get("type", "").lower() not in ("cdir", "pdir")}
        except ftplib.error_perm as e:
            if str(e)[:3] not in _UNKNOWN_COMMAND:
                return None  # 550: no such directory (or not one we may list)
        try:
            names = [posixpath.basename(n.rstrip("/")) for n in ftp.nlst(directory)]
        except ftplib.error_perm:
            return None
        except ftplib.error_temp as e:
            if str(e).startswith("450"):  # several servers answer an empty directory so
                return {}
            raise
        listing: dict[str, dict[str, str]] = {}
        for n in names:
            if n in (".", "..", ""):
                continue
            path = posixpath.join(directory, n)
            facts = {"type": "file"}
            try:
                ftp.voidcmd("TYPE I")  # SIZE is refused in ASCII mode, and NLST just switched to it
                ftp.size(path)
            except ftplib.error_perm:
                facts["type"] = "dir"
            try:
                facts["modify"] = ftp.sendcmd(f"MDTM {path}").split()[-1]
            except ftplib.error_perm:
                pass
            listing[n] = facts
        return listing

    def _makedirs(self, ftp: ftplib.FTP, path: str) -> None:
        path = path.rstrip("/")
        if path in ("", "."):
            return
        parent, leaf = posixpath.split(path)
        siblings = self._listing(ftp, parent)
        if siblings is not None and leaf in siblings:
            return
        if siblings is None:
            self._makedirs(ftp, parent)
        try:
            ftp.mkd(path)
        except ftplib.error_perm:
            again = self._listing(ftp, parent)
            if again is None or leaf not in again:  # not made by someone else meanwhile
                raise

    # --- Transport --------------------------------------------------------------------------

    def send(self, file: RenderedFile, *, before_commit: Callable[[], None] | None = None) -> bool:
        """Upload ``file`` as ``.NAME.part`` into outbound_dir (created if missing), check its size,
        then rename it to NAME. False, and nothing left behind, when NAME is already there or in
        one of the location's ``read_dirs``. ``before_commit`` is called right before the rename.
        Raises
        InputError for an unsafe name, ConfigError for login or certificate problems, RemoteError
        otherwise."""
        name = safe_name(file.name)
        out = self._cfg.outbound_dir
        final, tmp = posixpath.join(out, name), posixpath.join(out, temp_name(name))
        with self._talking(f"send {name}"):
            ftp = self._client()
            listing = self._listing(ftp, out)
            if listing is None:
                self._makedirs(ftp, out)
            elif name in listing:
                return False
            if any(self._has_file(ftp, posixpath.join(out, d, name)) for d in self._cfg.read_dirs):
                return False
            ftp.storbinary(f"STOR {tmp}", io.BytesIO(file.content))
            size = self._size(ftp, tmp)
            if size is not None and size != len(file.content):
                ftp.delete(tmp)
                raise RemoteError(f"{self._label}: send {name}: server stored {size} of "
                                  f"{len(file.content)} bytes; removed the partial file")
            if name in (self._listing(ftp, out) or {}):
                ftp.delete(tmp)  # delivered by someone else during our upload
                return False
            if before_commit is not None:
                before_commit()
            try:
                ftp.rename(tmp, final)
            except ftplib.error_perm:
                if name in (self._listing(ftp, out) or {}):
                    ftp.delete(tmp)
                    return False
                raise
        return True

    def _has_file(self, ftp: ftplib.FTP, path: str) -> bool:
        """Whether ``path`` is a file: SIZE (one command, however full its folder is), or the
        folder's listing on a server without SIZE."""
        try:
            return self._size(ftp, path) is not None or \
                posixpath.basename(path) in (self._listing(ftp, posixpath.dirname(path)) or {})
        except ftplib.error_perm:
            return False  # 550: no such file

    def _size(self, ftp: ftplib.FTP, path: str) -> int | None:
        try:
            ftp.voidcmd("TYPE I")  # SIZE is refused in ASCII mode
            return ftp.size(path)
        except ftplib.error_perm as e:
            if str(e)[:3] in _UNKNOWN_COMMAND:
                return None
            raise

    def incoming(self) -> list[str]:
        """Regular files in inbound_dir, oldest first (by modification time, then name); temp,
        hidden and unsafe names are left out. A missing inbound_dir is an empty list. Raises
        RemoteError (ConfigError for login problems)."""
        inbound = self._cfg.inbound_dir
        with self._talking("list incoming files"):
            listing = self._listing(self._client(), inbound) or {}
        found = []
        for name, facts in listing.items():
            if facts.get("type", "").lower() != "file" or is_temp_name(name):
                continue
            if not is_plain_name(name):
                log.warning("%s: skipping %r in %s: not a plain file name", self._label, name, inbound)
                continue
            found.append((facts.get("modify", ""), name))
        return [name for _, name in sorted(found)]

    def fetch(self, name: str, *, max_bytes: int | None = None) -> bytes:
        """The content of ``name`` in inbound_dir. Raises NotFoundError when no such file is there;
        InputError when the name is unsafe, the server refuses to send it (5xx) or it has more
        than ``max_bytes`` (refused by its SIZE, unread, or cut off once the transfer passes the
        limit on a server without SIZE); RemoteError when the server fails."""
        name = safe_name(name)
        inbound = self._cfg.inbound_dir
        path = posixpath.join(inbound, name)
        buf = io.BytesIO()

        def keep(chunk: bytes) -> None:
            buf.write(chunk)
            if max_bytes is not None and buf.tell() > max_bytes:
                raise _OverLimit

        with self._talking(f"fetch {name}"):
            ftp = self._client()
            try:
                size = self._size(ftp, path) if max_bytes is not None else None
                if size is not None and size > max_bytes:
                    raise too_large(self._label, name, size, max_bytes)
                ftp.retrbinary(f"RETR {path}", keep)
            except _OverLimit:
                # The transfer was cut off while the server still owes its reply to RETR; a new
                # connection is simpler than reading that reply back in step.
                self._drop()
                raise too_large(self._label, name, None, max_bytes) from None
            except ftplib.error_perm as e:
                if name not in (self._listing(ftp, inbound) or {}):
                    raise NotFoundError(f"{self._label}: no file {name} in {inbound or '.'}") from None
                # Listed but refused (550 no permission): this file's problem, not the server's.
                raise InputError(f"{self._label}: the server refuses to send {name}: {e}") from None
        return buf.getvalue()

    def move_aside(self, name: str, folder: str) -> None:
        """Move ``name`` from inbound_dir into the archive or error directory (created if missing);
        an existing file of that name there is kept and this one gets ".1", ".2"... Raises
        InputError for an unsafe name, an unknown folder, a missing file or one the server refuses
        to move (5xx), RemoteError otherwise."""
        name = safe_name(name)
        inbound = self._cfg.inbound_dir
        target = aside_folder(self._cfg, folder, inbound)
        with self._talking(f"move {name} to {folder}"):
            ftp = self._client()
            if name not in (self._listing(ftp, inbound) or {}):
                raise InputError(f"{self._label}: no file {name} in {inbound or '.'}")
            taken = self._listing(ftp, target)
            if taken is None:
                self._makedirs(ftp, target)
                taken = {}
            for candidate in aside_candidates(name):
                if candidate not in taken:
                    try:
                        ftp.rename(posixpath.join(inbound, name), posixpath.join(target, candidate))
                    except ftplib.error_perm as e:
                        # Listed but refused (a server that lists a name it cannot map back to a
                        # file): this file's problem, so the caller can go on with the others.
                        raise InputError(f"{self._label}: the server refuses to move {name} to {folder}: "
                                         f"{e}") from None
                    return
        raise RemoteError(f"{self._label}: {target} already holds {MAX_ASIDE_COPIES} copies of {name}")

    def close(self) -> None:
        """Say goodbye to the server if connected; never raises."""
        ftp = self._ftp
        if ftp is not None:
            try:
                ftp.quit()
            except Exception:  # noqa: BLE001 - a server that is gone cannot be told
                pass
        self._drop()

    def __enter__(self) -> "FtpTransport":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _OverLimit(Exception):
    """Raised from inside a transfer to stop it once a file passes the caller's limit."""


def _reason(e: BaseException, timeout: float) -> str:
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, (socket.timeout, TimeoutError)):
        return f"no answer within {timeout:g} s"
    if isinstance(e, EOFError):
        return "the server closed the connection"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e).strip() or type(e).__name__
