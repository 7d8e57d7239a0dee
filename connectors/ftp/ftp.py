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
import posixpath
import socket
import ssl
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

from caturactl.config import TransportConfig
from caturactl.core.errors import CaturactlError, ConfigError, InputError, NotFoundError, RemoteError
from connectors.ftp.names import too_large
from connectors.ftp.transport import FileTransport

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


class FtpTransport(FileTransport[ftplib.FTP]):
    """Sends files to ``cfg.outbound_dir`` and reads answers from ``cfg.inbound_dir`` over FTP
    (kind "ftp") or explicit FTPS (kind "ftps")."""

    kinds = ("ftp", "ftps")
    needs = "host"

    def __init__(self, name: str, cfg: TransportConfig, *, password: str | None = None,
                 base_dir: Path) -> None:
        """Checks the configuration without connecting; raises ConfigError when the kind is not
        ftp/ftps, the host is missing or the ca_file cannot be read."""
        super().__init__(name, cfg)
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

    def _connect(self) -> ftplib.FTP:
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
            with suppress(Exception):  # closing a broken connection may fail any way
                ftp.close()

    def _succeeded(self) -> None:
        self._last_used = time.monotonic()

    def _failure(self, action: str, e: Exception) -> CaturactlError | None:
        """ftplib's, ssl's and the socket's exceptions in our words."""
        if isinstance(e, ssl.SSLCertVerificationError):
            return ConfigError(f"{self._label}: server certificate not trusted: {e.verify_message} (check ca_file)")
        if isinstance(e, UnicodeDecodeError):
            # ftplib reads replies and listings as strict UTF-8; a name written by a Latin-1
            # system would otherwise end the whole run, not just this channel.
            return RemoteError(f"{self._label}: {action}: the server sent a name that is not UTF-8 "
                               f"({e.object[e.start:e.end + 8]!r}); rename that file")
        if isinstance(e, (ftplib.Error, OSError, EOFError)):
            return RemoteError(f"{self._label}: {action}: {self._reason(e)}")
        return None

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

    def close(self) -> None:
        """Say goodbye to the server if connected; never raises."""
        if self._ftp is not None:
            with suppress(Exception):  # a server that is gone cannot be told
                self._ftp.quit()
        self._drop()

    # --- send ---------------------------------------------------------------------------------

    def _outbound_has(self, ftp: ftplib.FTP, name: str) -> bool:
        out = self._cfg.outbound_dir
        listing = self._listing(ftp, out)
        if listing is None:
            self._makedirs(ftp, out)
            return False
        return name in listing

    def _read_dir_has(self, ftp: ftplib.FTP, read_dir: str, name: str) -> bool:
        return self._has_file(ftp, posixpath.join(self._cfg.outbound_dir, read_dir, name))

    def _upload(self, ftp: ftplib.FTP, tmp: str, name: str, content: bytes) -> bool:
        """Stores ``tmp`` and checks its size; servers differ in what RNTO does onto an existing
        name, so a NAME that appeared during the upload is looked for here, before the rename."""
        out = self._cfg.outbound_dir
        path = posixpath.join(out, tmp)
        ftp.storbinary(f"STOR {path}", io.BytesIO(content))
        size = self._size(ftp, path)
        if size is not None and size != len(content):
            ftp.delete(path)
            raise RemoteError(f"{self._label}: send {name}: server stored {size} of "
                              f"{len(content)} bytes; removed the partial file")
        if name in (self._listing(ftp, out) or {}):
            ftp.delete(path)  # delivered by someone else during our upload
            return False
        return True

    def _rename(self, ftp: ftplib.FTP, tmp: str, name: str) -> bool:
        out = self._cfg.outbound_dir
        try:
            ftp.rename(posixpath.join(out, tmp), posixpath.join(out, name))
        except ftplib.error_perm:
            if name in (self._listing(ftp, out) or {}):
                ftp.delete(posixpath.join(out, tmp))
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

    # --- incoming and fetch -------------------------------------------------------------------

    def _inbound_files(self, ftp: ftplib.FTP) -> list[tuple[str, dict[str, str]]]:
        listing = self._listing(ftp, self._inbound) or {}
        return [(name, facts) for name, facts in listing.items() if facts.get("type", "").lower() == "file"]

    def _modified(self, facts: dict[str, str]) -> str:
        return facts.get("modify", "")

    def _read(self, ftp: ftplib.FTP, name: str, max_bytes: int | None) -> bytes:
        """RETR, refused by SIZE when the server tells it, else cut off once the transfer passes
        ``max_bytes``; a file the server lists but refuses to send (5xx) is an InputError."""
        path = posixpath.join(self._inbound, name)
        buf = io.BytesIO()

        def keep(chunk: bytes) -> None:
            buf.write(chunk)
            if max_bytes is not None and buf.tell() > max_bytes:
                raise _OverLimit

        try:
            self._refuse_size(name, self._size(ftp, path) if max_bytes is not None else None, max_bytes)
            ftp.retrbinary(f"RETR {path}", keep)
        except _OverLimit:
            # The transfer was cut off while the server still owes its reply to RETR; a new
            # connection is simpler than reading that reply back in step.
            self._drop()
            raise too_large(self._label, name, None, max_bytes) from None
        except ftplib.error_perm as e:
            if name not in (self._listing(ftp, self._inbound) or {}):
                raise NotFoundError(self._no_file(name)) from None
            # Listed but refused (550 no permission): this file's problem, not the server's.
            raise InputError(f"{self._label}: the server refuses to send {name}: {e}") from None
        return buf.getvalue()

    # --- move_aside ---------------------------------------------------------------------------

    def _inbound_has(self, ftp: ftplib.FTP, name: str) -> bool:
        return name in (self._listing(ftp, self._inbound) or {})

    def _aside_taken(self, ftp: ftplib.FTP, target: str) -> Callable[[str], bool]:
        taken = self._listing(ftp, target)
        if taken is None:
            self._makedirs(ftp, target)
            taken = {}
        return taken.__contains__

    def _move(self, ftp: ftplib.FTP, name: str, target: str, candidate: str, folder: str) -> bool:
        try:
            ftp.rename(posixpath.join(self._inbound, name), posixpath.join(target, candidate))
        except ftplib.error_perm as e:
            # Listed but refused (a server that lists a name it cannot map back to a file): this
            # file's problem, so the caller can go on with the others.
            raise InputError(f"{self._label}: the server refuses to move {name} to {folder}: {e}") from None
        return True


class _OverLimit(Exception):
    """Raised from inside a transfer to stop it once a file passes the caller's limit."""

