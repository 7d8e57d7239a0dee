"""SFTP transport (paramiko): hands files to a location's SSH server and reads its answers.

The server's host key is always pinned (``host_key`` or ``known_hosts``): an unknown or changed
key is a configuration error, never a question to the user and never auto-accepted, because a
delivery file carries customers' addresses. One connection is opened on first use and reused
until ``close()``; a connection that broke is dropped and the next call opens a new one.

Uploads go to a hidden ``.NAME.part`` first and are renamed when complete, so the location never
reads half a file. The rename is the plain SFTP rename, which on OpenSSH (SFTP v3) refuses to
replace an existing file: together with the check before the upload, a resend never replaces a
file the location may already be reading. (``posix_rename`` would replace it silently.)
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import posixpath
import socket
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import paramiko
from paramiko.sftp import CMD_CLOSE, CMD_HANDLE, CMD_NAME, CMD_OPENDIR, CMD_READDIR
from paramiko.sftp_attr import SFTPAttributes

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


class _RefuseUnknownHost(paramiko.MissingHostKeyPolicy):
    """Refuses a server whose name is not pinned at all (paramiko's RejectPolicy raises a bare
    SSHException, which we could not tell apart from a broken connection)."""

    def __init__(self, label: str) -> None:
        self.label = label

    def missing_host_key(self, client, hostname, key) -> None:  # noqa: ANN001 - paramiko's signature
        raise ConfigError(f"{self.label}: host key of {hostname} is not pinned "
                          f"(server offers {key.get_name()} {key.get_base64()})")


class SftpTransport:
    """Sends files to ``cfg.outbound_dir`` and reads answers from ``cfg.inbound_dir`` over SFTP."""

    def __init__(self, name: str, cfg: TransportConfig, *, password: str | None = None,
                 base_dir: Path) -> None:
        """Checks the configuration without connecting; raises ConfigError when the host is
        missing, the host key is not pinned, or the key file is missing, unreadable or readable
        by group/others."""
        if cfg.kind != "sftp":
            raise ConfigError(f"transport {name}: kind {cfg.kind!r} is not sftp")
        if not cfg.host:
            raise ConfigError(f"transport {name}: host is empty")
        self.name = name
        self._cfg = cfg
        self._port = cfg.port or 22
        self._label = f"sftp {name} ({cfg.host}:{self._port})"
        self._password = password
        # paramiko looks a non-standard port up as "[host]:port", as OpenSSH writes it.
        self._host_key_name = cfg.host if self._port == 22 else f"[{cfg.host}]:{self._port}"
        self._host_keys = self._pinned_host_keys(base_dir)
        self._pkey = self._private_key(base_dir) if cfg.key_file else None
        if self._pkey is None and password is None:
            raise ConfigError(f"{self._label}: neither key_file nor a password is configured")
        self._ssh: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None

    # --- configuration ----------------------------------------------------------------------

    def _pinned_host_keys(self, base_dir: Path) -> paramiko.HostKeys:
        cfg = self._cfg
        keys = paramiko.HostKeys()
        if cfg.host_key:
            parts = cfg.host_key.split()
            if len(parts) < 2:
                raise ConfigError(f"{self._label}: host_key must look like 'ssh-ed25519 AAAA...'")
            try:
                key = paramiko.PKey.from_type_string(parts[0], base64.b64decode(parts[1], validate=True))
            except (binascii.Error, paramiko.SSHException, ValueError) as e:
                raise ConfigError(f"{self._label}: host_key is not a public key: {e}") from None
            keys.add(self._host_key_name, key.get_name(), key)
        if cfg.known_hosts:
            path = base_dir / cfg.known_hosts
            try:
                keys.load(str(path))
            except (OSError, paramiko.SSHException, UnicodeDecodeError) as e:
                raise ConfigError(f"{self._label}: cannot read known_hosts {path}: {e}") from None
        if keys.lookup(self._host_key_name) is None:
            where = f"known_hosts {base_dir / cfg.known_hosts} has no entry for {self._host_key_name}" \
                if cfg.known_hosts else "set host_key or known_hosts"
            raise ConfigError(f"{self._label}: the server's host key is not pinned: {where}")
        return keys

    def _private_key(self, base_dir: Path) -> paramiko.PKey:
        path = base_dir / self._cfg.key_file
        try:
            mode = path.stat().st_mode
        except OSError as e:
            raise ConfigError(f"{self._label}: key_file {path}: {e.strerror}") from None
        if mode & 0o077:
            # The same rule OpenSSH applies: a private key others can read is no longer private.
            raise ConfigError(f"{self._label}: key_file {path} is accessible by group/others "
                              f"(mode {stat.S_IMODE(mode):04o}); chmod 600 it")
        try:
            return paramiko.PKey.from_path(str(path))
        except paramiko.PasswordRequiredException:
            raise ConfigError(f"{self._label}: key_file {path} is encrypted; "
                              "caturactl needs a key without passphrase (mode 600)") from None
        except (OSError, paramiko.SSHException, ValueError) as e:
            raise ConfigError(f"{self._label}: key_file {path} is not a private key: {e}") from None

    # --- connection -------------------------------------------------------------------------

    def _client(self) -> paramiko.SFTPClient:
        if self._sftp is not None and self._ssh is not None:
            transport = self._ssh.get_transport()
            if transport is not None and transport.is_active():
                return self._sftp
        self._drop()
        cfg, timeout = self._cfg, self._cfg.timeout_seconds
        ssh = paramiko.SSHClient()
        ssh.set_missing_host_key_policy(_RefuseUnknownHost(self._label))
        pinned = ssh.get_host_keys()
        for entry in self._host_keys.lookup(self._host_key_name).items():
            pinned.add(self._host_key_name, *entry)
        self._ssh = ssh
        # No agent, no ~/.ssh keys: only what the configuration names may log in.
        ssh.connect(cfg.host, self._port, username=cfg.user or None, password=self._password,
                    pkey=self._pkey, timeout=timeout, banner_timeout=timeout, auth_timeout=timeout,
                    channel_timeout=timeout, allow_agent=False, look_for_keys=False)
        sftp = ssh.open_sftp()
        sftp.get_channel().settimeout(timeout)
        self._sftp = sftp
        return sftp

    def _drop(self) -> None:
        sftp, ssh = self._sftp, self._ssh
        self._sftp = self._ssh = None
        for thing in (sftp, ssh):
            if thing is not None:
                try:
                    thing.close()
                except Exception:  # noqa: BLE001 - closing a broken connection may fail any way
                    pass

    @contextmanager
    def _talking(self, action: str) -> Iterator[None]:
        """Turns paramiko's and the socket's exceptions into ours, and drops a connection that
        failed so the next call starts clean."""
        try:
            yield
        except CaturactlError:
            raise
        except paramiko.BadHostKeyException as e:
            self._drop()
            raise ConfigError(f"{self._label}: host key does not match the pinned key "
                              f"(server offers {e.key.get_name()} {e.key.get_base64()})") from None
        except paramiko.AuthenticationException as e:
            self._drop()
            raise ConfigError(f"{self._label}: login as {self._cfg.user!r} refused: {e}") from None
        except (paramiko.SSHException, OSError, EOFError) as e:
            self._drop()
            raise RemoteError(f"{self._label}: {action}: {_reason(e, self._cfg.timeout_seconds)}") from None

    # --- Transport --------------------------------------------------------------------------

    def send(self, file: RenderedFile, *, before_commit: Callable[[], None] | None = None) -> bool:
        """Upload ``file`` as ``.NAME.part`` into outbound_dir (created if missing), then rename it
        to NAME. False, and nothing uploaded, when NAME is already there or in one of the location's
        ``read_dirs``. ``before_commit`` is called right before the rename. Raises InputError for an
        unsafe name, ConfigError for host key or login problems, RemoteError otherwise."""
        name = safe_name(file.name)
        out = self._cfg.outbound_dir
        final, tmp = posixpath.join(out, name), posixpath.join(out, temp_name(name))
        with self._talking(f"send {name}"):
            sftp = self._client()
            _makedirs(sftp, out)
            if _exists(sftp, final) or any(_exists(sftp, posixpath.join(out, d, name))
                                           for d in self._cfg.read_dirs):
                return False
            # confirm=True stats the upload and raises when the size differs.
            sftp.putfo(io.BytesIO(file.content), tmp, file_size=len(file.content), confirm=True)
            if before_commit is not None:
                before_commit()
            try:
                sftp.rename(tmp, final)
            except OSError:
                if _exists(sftp, final):  # someone delivered the same name meanwhile
                    sftp.remove(tmp)
                    return False
                raise
        return True

    def incoming(self) -> list[str]:
        """Regular files in inbound_dir, oldest first (by mtime, then name); temp, hidden and
        unsafe names are left out. A missing inbound_dir is an empty list. Raises RemoteError."""
        inbound = self._cfg.inbound_dir
        with self._talking("list incoming files"):
            sftp = self._client()
            try:
                entries = sftp.listdir_attr(inbound or ".")
            except FileNotFoundError:
                return []
            except UnicodeDecodeError:
                # paramiko reads names as strict UTF-8: one name written by a Latin-1 system
                # would hide every file of the channel. Listed again, that name keeps its bytes.
                entries = _listdir_attr_bytes(sftp, inbound or ".")
        found = []
        for entry in entries:
            if not stat.S_ISREG(entry.st_mode or 0) or is_temp_name(entry.filename):
                continue
            if not is_plain_name(entry.filename):
                log.warning("%s: skipping %r in %s: not a plain file name", self._label, entry.filename, inbound)
                continue
            found.append((entry.st_mtime or 0, entry.filename))
        return [name for _, name in sorted(found)]

    def fetch(self, name: str, *, max_bytes: int | None = None) -> bytes:
        """The content of ``name`` in inbound_dir. Raises NotFoundError when no such file is
        there; InputError when the name is unsafe, the server does not let us read it, or it has
        more than ``max_bytes`` (refused by the size the server reports, unread); RemoteError
        when the server fails."""
        name = safe_name(name)
        inbound = self._cfg.inbound_dir or "."
        path = _remote(posixpath.join(self._cfg.inbound_dir, name))
        with self._talking(f"fetch {name}"):
            sftp = self._client()
            try:
                with sftp.open(path, "rb") as f:
                    size = f.stat().st_size
                    if max_bytes is not None and size is not None and size > max_bytes:
                        raise too_large(self._label, name, size, max_bytes)
                    f.prefetch(size)  # pipelined reads, as getfo does
                    if max_bytes is None:
                        return f.read()
                    content = f.read(max_bytes + 1)  # it may have grown since the stat
            except FileNotFoundError:
                raise NotFoundError(f"{self._label}: no file {name} in {inbound}") from None
            except PermissionError:  # this file's problem: the connection is fine
                raise InputError(f"{self._label}: {name} in {inbound} may not be read") from None
        if len(content) > max_bytes:
            raise too_large(self._label, name, None, max_bytes)
        return content

    def move_aside(self, name: str, folder: str) -> None:
        """Move ``name`` from inbound_dir into the archive or error directory (created if missing);
        an existing file of that name there is kept and this one gets ".1", ".2"... Raises
        InputError for an unsafe name, an unknown folder or a missing file, RemoteError otherwise."""
        name = safe_name(name)
        inbound = self._cfg.inbound_dir
        target = aside_folder(self._cfg, folder, inbound)
        src = _remote(posixpath.join(inbound, name))
        with self._talking(f"move {name} to {folder}"):
            sftp = self._client()
            if not _exists(sftp, src):
                raise InputError(f"{self._label}: no file {name} in {inbound or '.'}")
            _makedirs(sftp, target)
            for candidate in aside_candidates(name):
                dst = _remote(posixpath.join(target, candidate))
                if _exists(sftp, dst):
                    continue
                try:
                    sftp.rename(src, dst)  # plain rename: never replaces (see module docstring)
                    return
                except OSError:
                    if _exists(sftp, dst):
                        continue
                    raise
        raise RemoteError(f"{self._label}: {target} already holds {MAX_ASIDE_COPIES} copies of {name}")

    def close(self) -> None:
        """Close the connection if one is open; never raises."""
        self._drop()

    def __enter__(self) -> "SftpTransport":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _remote(path: str) -> bytes:
    """``path`` as the server spells it: a name listed with bytes that are not UTF-8 goes back
    with those bytes (paramiko would refuse to encode it)."""
    return path.encode("utf-8", "surrogateescape")


def _listdir_attr_bytes(sftp: paramiko.SFTPClient, path: str) -> list[paramiko.SFTPAttributes]:
    """``sftp.listdir_attr(path)``, except that a name which is not UTF-8 is kept, its bytes as
    surrogates (as os.listdir does), instead of failing the whole listing. Uses paramiko's
    request layer, the one listdir_attr itself uses."""
    kind, msg = sftp._request(CMD_OPENDIR, path)
    if kind != CMD_HANDLE:
        raise paramiko.SFTPError("Expected handle")
    handle = msg.get_binary()
    entries = []
    try:
        while True:
            try:
                kind, msg = sftp._request(CMD_READDIR, handle)
            except EOFError:  # the end of the directory
                break
            if kind != CMD_NAME:
                raise paramiko.SFTPError("Expected name response")
            for _ in range(msg.get_int()):
                filename = msg.get_string().decode("utf-8", "surrogateescape")
                longname = msg.get_string().decode("utf-8", "replace")
                attr = SFTPAttributes._from_msg(msg, filename, longname)
                if filename not in (".", ".."):
                    entries.append(attr)
    finally:
        sftp._request(CMD_CLOSE, handle)
    return entries


def _exists(sftp: paramiko.SFTPClient, path: str | bytes) -> bool:
    try:
        sftp.lstat(path)
    except FileNotFoundError:
        return False
    return True


def _makedirs(sftp: paramiko.SFTPClient, path: str) -> None:
    path = path.rstrip("/")
    if path in ("", "."):
        return
    if _exists(sftp, path):
        return
    _makedirs(sftp, posixpath.dirname(path))
    try:
        sftp.mkdir(path)
    except OSError:
        if not _exists(sftp, path):  # another client may have made it meanwhile
            raise


def _reason(e: BaseException, timeout: float) -> str:
    if isinstance(e, paramiko.ssh_exception.NoValidConnectionsError) or isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, (socket.timeout, TimeoutError)):
        return f"no answer within {timeout:g} s"
    if isinstance(e, EOFError):
        return "the server closed the connection"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror if not e.filename else f"{e.strerror}: {e.filename}"
    return str(e) or type(e).__name__
