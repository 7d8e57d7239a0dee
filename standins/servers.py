"""In-process SFTP, FTP/FTPS and SMTP servers on loopback, for ``make demo`` and the tests.

They need no root, no apt and no network: asyncssh, pyftpdlib and aiosmtpd run in background
threads of this process (reference/toolchain.md §2, §4, §5). Each serves a directory (or keeps
the mails it got) so a test can look at what a transport really did, and each can be stopped and
started again on the same port, with the same keys and certificates, to play "server down, then
back". For realism of error codes and extensions the tests also run OpenSSH's sshd
(``tests/servers.py``); these stand-ins are the fast, rootless companions.

    with SftpStandin(Path("sftp-root")) as s:
        ...  # TransportConfig(kind="sftp", host="127.0.0.1", port=s.port,
             #                 host_key=s.host_key_line, key_file=str(s.client_key_file))
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import shutil
import socket
import ssl
import tempfile
import threading
import weakref
from collections import deque
from datetime import datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import asyncssh
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.ioloop import IOLoop
from pyftpdlib.servers import FTPServer

HOST = "127.0.0.1"


class _DropLoginDataNotice(logging.Filter):
    """aiosmtpd 1.4 logs a deprecation notice about its own Session.login_data on every AUTH."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


logging.getLogger("mail.log").addFilter(_DropLoginDataNotice())


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A TCP port on loopback that nothing is bound to right now, chosen below the kernel's
    ephemeral range: a server stopped and started again on its port (an outage in a test) must
    not find it taken by some client's outgoing connection, which the kernel numbers from that
    range. Falls back to a port the kernel picks if the range below is crowded."""
    low = _ephemeral_low()
    first = max(1024, low - 12000)
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(first, low)
        with socket.socket() as s:
            try:
                s.bind((HOST, port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class _Scratch:
    """A private temp directory for keys and certificates, removed when the stand-in is
    garbage-collected or the process ends (not on stop(): a restart needs the same keys)."""

    def __init__(self, owner: object, prefix: str) -> None:
        self.path = Path(tempfile.mkdtemp(prefix=prefix))
        weakref.finalize(owner, shutil.rmtree, self.path, True)


def write_tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """Write a throwaway CA and a server certificate it signed, valid for 127.0.0.1 and localhost;
    returns (ca_file, cert_file, key_file). A separate CA, rather than one self-signed leaf,
    passes the strict X.509 checks newer Pythons and OpenSSLs apply to trust anchors."""
    now = datetime.now(timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "caturactl stand-in CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address(HOST))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + ca_file.read_bytes())
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    return ca_file, cert_file, key_file


# --- SFTP ------------------------------------------------------------------------------------


class SftpStandin:
    """An SFTP server (asyncssh) chrooted to ``root``; logs in any user name with the client key
    in ``client_key_file`` or, when given, ``password``. Plain rename refuses to replace a file,
    posix_rename replaces it, as on OpenSSH."""

    def __init__(self, root: Path, *, port: int = 0, password: str | None = None) -> None:
        """Generates the ed25519 host key and client key pair; serves nothing until start()."""
        self.root = Path(root)
        self.port = port
        self.password = password
        self._scratch = _Scratch(self, "caturactl-sftp-")
        self._host_key = asyncssh.generate_private_key("ssh-ed25519")
        client_key = asyncssh.generate_private_key("ssh-ed25519", comment="caturactl-standin-client")
        self.client_key_file = self._scratch.path / "client_ed25519"
        client_key.write_private_key(str(self.client_key_file))
        self.client_key_file.chmod(0o600)
        self.host_key_line = self._host_key.export_public_key("openssh").decode().split("\n")[0].strip()
        self._authorized = asyncssh.import_authorized_keys(client_key.export_public_key("openssh").decode())
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._connections: set[asyncssh.SSHServerConnection] = set()

    def start(self) -> "SftpStandin":
        """Listen on 127.0.0.1 (a free port the first time, the same port after a stop)."""
        if self._loop is not None:
            return self
        self.root.mkdir(parents=True, exist_ok=True)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="sftp-standin", daemon=True)
        thread.start()
        try:
            self._acceptor = asyncio.run_coroutine_threadsafe(self._listen(), loop).result(timeout=10)
        except BaseException:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            loop.close()
            raise
        self._loop, self._thread = loop, thread
        self.port = self._acceptor.get_port()
        return self

    async def _listen(self) -> asyncssh.SSHAcceptor:
        standin = self

        class Server(asyncssh.SSHServer):
            def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
                self._conn = conn
                standin._connections.add(conn)

            def connection_lost(self, exc: Exception | None) -> None:
                standin._connections.discard(self._conn)

            def password_auth_supported(self) -> bool:
                return standin.password is not None

            def validate_password(self, username: str, password: str) -> bool:
                return password == standin.password

        class Sftp(asyncssh.SFTPServer):
            def __init__(self, chan: asyncssh.SSHServerChannel) -> None:
                super().__init__(chan, chroot=str(standin.root).encode())

        return await asyncssh.listen(HOST, self.port, server_host_keys=[self._host_key],
                                     authorized_client_keys=self._authorized, server_factory=Server,
                                     sftp_factory=Sftp, allow_scp=False)

    def stop(self) -> None:
        """Stop listening and cut every open connection, as a crashed server would."""
        loop, self._loop = self._loop, None
        if loop is None:
            return

        async def shutdown() -> None:
            if self._acceptor is not None:
                self._acceptor.close()
            for conn in list(self._connections):
                conn.abort()
            self._connections.clear()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=5)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(timeout=5)
            loop.close()
            self._thread = self._acceptor = None

    def __enter__(self) -> "SftpStandin":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- FTP / FTPS ------------------------------------------------------------------------------


class FtpStandin:
    """An FTP server (pyftpdlib) serving ``root`` to one user. With ``tls=True`` it is FTPS only
    (AUTH TLS and PROT P required) with a certificate ``ca_file`` verifies. ``mlsd=False`` plays
    an old server without MLSD/MLST, so clients must fall back to NLST."""

    def __init__(self, root: Path, *, user: str = "demo", password: str = "demo", tls: bool = False,
                 port: int = 0, mlsd: bool = True) -> None:
        """Writes the TLS files when ``tls``; serves nothing until start()."""
        self.root = Path(root)
        self.user, self.password, self.tls, self.port, self.mlsd = user, password, tls, port, mlsd
        self.ca_file: Path | None = None
        self._cert: tuple[Path, Path] | None = None
        if tls:
            self._scratch = _Scratch(self, "caturactl-ftps-")
            self.ca_file, cert_file, key_file = write_tls_files(self._scratch.path)
            self._cert = (cert_file, key_file)
        self._server: FTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def _handler(self) -> type[FTPHandler]:
        authorizer = DummyAuthorizer()
        authorizer.add_user(self.user, self.password, str(self.root), perm="elradfmwMT")
        # passive_ports stays None: each data connection gets a port from the OS, so two
        # stand-ins (or two test runs) never fight over a range.
        attrs: dict[str, object] = {"authorizer": authorizer, "banner": "caturactl FTP stand-in",
                                    "passive_ports": None,
                                    # pyftpdlib waits 3 s before answering a wrong password; a
                                    # client with a short timeout would see a timeout instead.
                                    "auth_failed_timeout": 0.1}
        base: type[FTPHandler] = FTPHandler
        if self._cert is not None:
            from pyftpdlib.handlers import TLS_FTPHandler  # present only with pyOpenSSL installed
            base = TLS_FTPHandler
            # ssl_context is cached on the class: a subclass per server keeps each one's certificate.
            attrs.update(certfile=str(self._cert[0]), keyfile=str(self._cert[1]), ssl_context=None,
                         tls_control_required=True, tls_data_required=True)
        if not self.mlsd:
            attrs["proto_cmds"] = {k: v for k, v in base.proto_cmds.items() if k not in ("MLSD", "MLST")}
        return type("StandinFtpHandler", (base,), attrs)

    def start(self) -> "FtpStandin":
        """Listen on 127.0.0.1 (a free port the first time, the same port after a stop)."""
        if self._server is not None:
            return self
        self.root.mkdir(parents=True, exist_ok=True)
        # pyftpdlib logs every command to stderr unless logging looks configured.
        ftp_log = logging.getLogger("pyftpdlib")
        if not ftp_log.handlers:
            ftp_log.addHandler(logging.NullHandler())
            ftp_log.setLevel(logging.WARNING)
        # Its own IOLoop: the default is a process-wide singleton, shared by every server.
        server = FTPServer((HOST, self.port), self._handler(), ioloop=IOLoop())
        self.port = server.address[1]
        self._server = server
        self._stopping.clear()
        self._thread = threading.Thread(target=self._serve, args=(server,), name=f"ftp-standin:{self.port}",
                                        daemon=True)
        self._thread.start()
        return self

    def _serve(self, server: FTPServer) -> None:
        # One poll at a time so stop() only sets a flag and the loop is closed by its own thread.
        while not self._stopping.is_set():
            server.serve_forever(timeout=0.02, blocking=False, handle_exit=False)
        server.close_all()

    def stop(self) -> None:
        """Stop listening and close every client connection."""
        if self._server is None:
            return
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> "FtpStandin":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- SMTP ------------------------------------------------------------------------------------


class SmtpStandin:
    """An SMTP server (aiosmtpd) that keeps what it receives in ``messages`` (parsed with
    ``email.policy.default``) and ``envelopes`` ((mail_from, rcpt_tos) pairs).

    ``tls=True``: STARTTLS required, certificate verifiable with ``ca_file``; ``implicit_tls=True``
    instead serves SMTPS. With ``user``/``password`` AUTH is required (after TLS when there is
    TLS). ``fail_next`` makes the next commands fail with a chosen code.
    """

    def __init__(self, *, tls: bool = False, implicit_tls: bool = False, user: str | None = None,
                 password: str | None = None, port: int = 0) -> None:
        """Picks the port now (aiosmtpd's readiness check cannot handle port 0) and writes the
        TLS files when needed; serves nothing until start()."""
        self.port = port or free_port()
        self.tls, self.implicit_tls = tls, implicit_tls
        self.user, self.password = user, password
        self.ca_file: Path | None = None
        self._cert: tuple[Path, Path] | None = None
        if tls or implicit_tls:
            self._scratch = _Scratch(self, "caturactl-smtp-")
            self.ca_file, cert_file, key_file = write_tls_files(self._scratch.path)
            self._cert = (cert_file, key_file)
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, tuple[str, ...]]] = []
        self._failures: dict[str, deque[int]] = {"rcpt": deque(), "data": deque()}
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    def fail_next(self, code: int, n: int = 1, *, stage: str = "data") -> None:
        """Answer the next ``n`` DATA (or, with stage="rcpt", RCPT TO) commands with ``code``:
        4xx plays a transient failure, 5xx a permanent refusal."""
        if stage not in self._failures:
            raise ValueError(f"stage must be 'rcpt' or 'data', not {stage!r}")
        with self._lock:
            self._failures[stage].extend([code] * n)

    def _failure(self, stage: str) -> str | None:
        with self._lock:
            if not self._failures[stage]:
                return None
            code = self._failures[stage].popleft()
        if code < 500:
            return f"{code} 4.3.0 Try again later (stand-in)"
        return f"{code} 5.1.1 Recipient refused (stand-in)" if stage == "rcpt" else f"{code} 5.6.0 Message refused (stand-in)"

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:  # noqa: ANN001
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == self.user
              and auth_data.password.decode() == self.password)
        # handled=False: with the default (True) aiosmtpd sends no reply on failure, and the
        # client waits for its timeout (toolchain.md §5).
        return AuthResult(success=ok, handled=False)

    def start(self) -> "SmtpStandin":
        """Listen on 127.0.0.1:``port`` (the same port after a stop)."""
        if self._controller is not None:
            return self
        kwargs: dict[str, object] = {}
        if self._cert is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*self._cert)
            if self.implicit_tls:
                kwargs["ssl_context"] = context
            else:
                kwargs.update(tls_context=context, require_starttls=True)
        if self.user is not None:
            # aiosmtpd only recognises STARTTLS as TLS; with SMTPS it would never offer AUTH.
            kwargs.update(authenticator=self._authenticate, auth_required=True,
                          auth_require_tls=self.tls and not self.implicit_tls)
        controller = Controller(_SmtpHandler(self), hostname=HOST, port=self.port, ready_timeout=5,
                                server_hostname="localhost", **kwargs)
        controller.start()
        self._controller = controller
        return self

    def stop(self) -> None:
        """Stop listening and drop open connections; ``messages`` stay."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def __enter__(self) -> "SmtpStandin":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _SmtpHandler:
    def __init__(self, standin: SmtpStandin) -> None:
        self.standin = standin

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:  # noqa: ANN001
        failure = self.standin._failure("rcpt")
        if failure:
            return failure
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001
        failure = self.standin._failure("data")
        if failure:
            return failure
        raw = envelope.original_content or envelope.content
        # The wire uses CRLF; a mail program shows "\n", and so should the parsed bodies here.
        message = BytesParser(policy=policy.default).parsebytes(raw.replace(b"\r\n", b"\n"))
        with self.standin._lock:
            self.standin.messages.append(message)
            self.standin.envelopes.append((envelope.mail_from, tuple(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


__all__ = ["FtpStandin", "SftpStandin", "SmtpStandin", "free_port", "write_tls_files"]
