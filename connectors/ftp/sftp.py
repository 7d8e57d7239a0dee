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
import posixpath
import stat
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

import paramiko
from paramiko.sftp import CMD_CLOSE, CMD_HANDLE, CMD_NAME, CMD_OPENDIR, CMD_READDIR
from paramiko.sftp_attr import SFTPAttributes

from caturactl.config import TransportConfig
from caturactl.core.errors import CaturactlError, ConfigError, InputError, NotFoundError, RemoteError
from connectors.ftp.transport import FileTransport


class _RefuseUnknownHost(paramiko.MissingHostKeyPolicy):
    """Refuses a server whose name is not pinned at all (paramiko's RejectPolicy raises a bare
    SSHException, which we could not tell apart from a broken connection)."""

    def __init__(self, label: str) -> None:
        self.label = label

    def missing_host_key(self, client, hostname, key) -> None:  # noqa: ANN001 - paramiko's signature
        raise ConfigError(f"{self.label}: host key of {hostname} is not pinned "
                          f"(server offers {key.get_name()} {key.get_base64()})")


class SftpTransport(FileTransport[paramiko.SFTPClient]):
    """Sends files to ``cfg.outbound_dir`` and reads answers from ``cfg.inbound_dir`` over SFTP."""

    kinds = ("sftp",)
    needs = "host"

    def __init__(self, name: str, cfg: TransportConfig, *, password: str | None = None,
                 base_dir: Path) -> None:
        """Checks the configuration without connecting; raises ConfigError when the host is
        missing, the host key is not pinned, or the key file is missing, unreadable or readable
        by group/others."""
        super().__init__(name, cfg)
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

    def _connect(self) -> paramiko.SFTPClient:
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
                with suppress(Exception):  # closing a broken connection may fail any way
                    thing.close()

    def _failure(self, action: str, e: Exception) -> CaturactlError | None:
        """paramiko's and the socket's exceptions in our words."""
        if isinstance(e, paramiko.BadHostKeyException):
            return ConfigError(f"{self._label}: host key does not match the pinned key "
                               f"(server offers {e.key.get_name()} {e.key.get_base64()})")
        if isinstance(e, paramiko.AuthenticationException):
            return ConfigError(f"{self._label}: login as {self._cfg.user!r} refused: {e}")
        if isinstance(e, paramiko.ssh_exception.NoValidConnectionsError):
            return RemoteError(f"{self._label}: {action}: connection refused")
        if isinstance(e, (paramiko.SSHException, OSError, EOFError)):
            return RemoteError(f"{self._label}: {action}: {self._reason(e)}")
        return None

    def close(self) -> None:
        """Close the connection if one is open; never raises."""
        self._drop()

    # --- send ---------------------------------------------------------------------------------

    def _outbound_has(self, sftp: paramiko.SFTPClient, name: str) -> bool:
        out = self._cfg.outbound_dir
        _makedirs(sftp, out)
        return _exists(sftp, posixpath.join(out, name))

    def _read_dir_has(self, sftp: paramiko.SFTPClient, read_dir: str, name: str) -> bool:
        return _exists(sftp, posixpath.join(self._cfg.outbound_dir, read_dir, name))

    def _upload(self, sftp: paramiko.SFTPClient, tmp: str, name: str, content: bytes) -> bool:
        # confirm=True stats the upload and raises when the size differs.
        sftp.putfo(io.BytesIO(content), posixpath.join(self._cfg.outbound_dir, tmp), file_size=len(content),
                   confirm=True)
        return True

    def _rename(self, sftp: paramiko.SFTPClient, tmp: str, name: str) -> bool:
        out = self._cfg.outbound_dir
        final = posixpath.join(out, name)
        try:
            sftp.rename(posixpath.join(out, tmp), final)  # plain rename: never replaces (module docstring)
        except OSError:
            if _exists(sftp, final):  # someone delivered the same name meanwhile
                sftp.remove(posixpath.join(out, tmp))
                return False
            raise
        return True

    # --- incoming and fetch -------------------------------------------------------------------

    def _inbound_files(self, sftp: paramiko.SFTPClient) -> list[tuple[str, paramiko.SFTPAttributes]]:
        inbound = self._inbound or "."
        try:
            entries = sftp.listdir_attr(inbound)
        except FileNotFoundError:
            return []
        except UnicodeDecodeError:
            # paramiko reads names as strict UTF-8: one name written by a Latin-1 system
            # would hide every file of the channel. Listed again, that name keeps its bytes.
            entries = _listdir_attr_bytes(sftp, inbound)
        return [(e.filename, e) for e in entries if stat.S_ISREG(e.st_mode or 0)]

    def _modified(self, entry: paramiko.SFTPAttributes) -> float:
        return entry.st_mtime or 0

    def _read(self, sftp: paramiko.SFTPClient, name: str, max_bytes: int | None) -> bytes:
        try:
            with sftp.open(_remote(posixpath.join(self._inbound, name)), "rb") as f:
                size = f.stat().st_size
                self._refuse_size(name, size, max_bytes)
                f.prefetch(size)  # pipelined reads, as getfo does
                return self._read_limited(f, max_bytes)
        except FileNotFoundError:
            raise NotFoundError(self._no_file(name)) from None
        except PermissionError:  # this file's problem: the connection is fine
            raise InputError(f"{self._label}: {name} in {self._inbound or '.'} may not be read") from None

    # --- move_aside ---------------------------------------------------------------------------

    def _inbound_has(self, sftp: paramiko.SFTPClient, name: str) -> bool:
        return _exists(sftp, _remote(posixpath.join(self._inbound, name)))

    def _aside_taken(self, sftp: paramiko.SFTPClient, target: str) -> Callable[[str], bool]:
        _makedirs(sftp, target)
        return lambda candidate: _exists(sftp, _remote(posixpath.join(target, candidate)))

    def _move(self, sftp: paramiko.SFTPClient, name: str, target: str, candidate: str, folder: str) -> bool:
        dst = _remote(posixpath.join(target, candidate))
        try:
            sftp.rename(_remote(posixpath.join(self._inbound, name)), dst)  # plain rename: never replaces
        except OSError:
            if _exists(sftp, dst):  # taken meanwhile: the next candidate
                return False
            raise
        return True


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

