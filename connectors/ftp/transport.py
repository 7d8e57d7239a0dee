"""The order of steps every file transport (SFTP, FTP/FTPS, a folder) follows, whatever its protocol.

``send`` uploads under a temporary name and renames when the upload is complete, and sends nothing
when the name is already there or in a folder the location moves read files to; ``incoming``
offers plain names, oldest first; ``fetch`` refuses a file over the caller's limit; ``move_aside``
never replaces an earlier file. ``FileTransport`` holds that order once, and each call's session
(``_session``: the connection, its errors in our words, a failed connection dropped). A subclass
says how to connect, what its protocol's errors mean, and how each step is done over the
protocol, with what the protocol lets it promise beyond that (a folder's fsync and hard link,
FTP's second look before the rename).
"""

from __future__ import annotations

import logging
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import IO, Any, Generic, Self, TypeVar

from caturactl.config import TransportConfig
from caturactl.core.errors import CaturactlError, ConfigError, InputError, RemoteError
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

Conn = TypeVar("Conn")


class FileTransport(ABC, Generic[Conn]):
    """The Transport port over one location's outbound and inbound folders. ``Conn`` is what a
    session hands the steps: an FTP or SFTP client, nothing for a folder."""

    kinds: tuple[str, ...]  # the TransportConfig kinds the subclass serves
    needs: str  # the TransportConfig field that must not be empty ("host", "path")

    def __init__(self, name: str, cfg: TransportConfig) -> None:
        """Raises ConfigError when ``cfg.kind`` is not one of ``kinds`` or ``cfg.<needs>`` is empty.
        The subclass then names the location in ``_label`` and, where it differs from
        ``cfg.inbound_dir``, the inbound folder in ``_inbound``."""
        if cfg.kind not in self.kinds:
            raise ConfigError(f"transport {name}: kind {cfg.kind!r} is not {' or '.join(self.kinds)}")
        if not getattr(cfg, self.needs):
            raise ConfigError(f"transport {name}: {self.needs} is empty")
        self.name = name
        self._cfg = cfg
        self._label = name
        self._inbound = cfg.inbound_dir

    # --- the steps a subclass does over its protocol -----------------------------------------

    @abstractmethod
    def _connect(self) -> Conn:
        """The connection a call works over: the open one if it still works, else a new one."""

    @abstractmethod
    def _failure(self, action: str, e: Exception) -> CaturactlError | None:
        """What ``e``, raised by the protocol during ``action``, is in our words (RemoteError
        naming ``action``, ConfigError for login, host key or certificate problems); None for an
        exception that is not the protocol's."""

    @abstractmethod
    def _drop(self) -> None:
        """Forgets the connection, closing it if it can; never raises."""

    @abstractmethod
    def _outbound_has(self, conn: Conn, name: str) -> bool:
        """Creates the outbound folder if missing; True when ``name`` is in it."""

    @abstractmethod
    def _read_dir_has(self, conn: Conn, read_dir: str, name: str) -> bool:
        """True when ``name`` is in ``read_dir`` (relative to the outbound folder unless absolute)."""

    @abstractmethod
    def _upload(self, conn: Conn, tmp: str, name: str, content: bytes) -> bool:
        """Writes ``content`` completely to ``tmp`` in the outbound folder; False (and ``tmp``
        removed) when ``name`` appeared meanwhile."""

    @abstractmethod
    def _rename(self, conn: Conn, tmp: str, name: str) -> bool:
        """Makes ``tmp`` visible as ``name`` without replacing a file of that name; False (and
        ``tmp`` removed) when one appeared meanwhile."""

    @abstractmethod
    def _inbound_files(self, conn: Conn) -> Iterable[tuple[str, Any]]:
        """(name, entry) of each regular file in the inbound folder; none when it is missing."""

    @abstractmethod
    def _modified(self, entry: Any) -> Any:
        """What sorts an entry of ``_inbound_files`` by its age (older is smaller)."""

    @abstractmethod
    def _read(self, conn: Conn, name: str, max_bytes: int | None) -> bytes:
        """``name``'s content from the inbound folder, at most one byte past ``max_bytes``;
        NotFoundError when it is not there, InputError when it may not be read or is too large."""

    @abstractmethod
    def _inbound_has(self, conn: Conn, name: str) -> bool:
        """True when ``name`` is in the inbound folder."""

    @abstractmethod
    def _aside_taken(self, conn: Conn, target: str) -> Callable[[str], bool]:
        """Creates ``target`` if missing; answers whether a name there is taken."""

    @abstractmethod
    def _move(self, conn: Conn, name: str, target: str, candidate: str, folder: str) -> bool:
        """Moves ``name`` from the inbound folder to ``target/candidate`` without replacing a file;
        False when ``candidate`` was taken meanwhile."""

    @abstractmethod
    def close(self) -> None:
        """Closes the connection if one is open; never raises."""

    # --- the Transport port ------------------------------------------------------------------

    def send(self, file: RenderedFile, *, before_commit: Callable[[], None] | None = None) -> bool:
        """Upload ``file`` as ``.NAME.part`` into the outbound folder (created if missing), then
        rename it to NAME. False, and nothing left behind, when NAME is already there or in one of
        the location's ``read_dirs``, or appears while we upload or rename. ``before_commit`` is
        called right before the rename. Raises InputError for an unsafe name, ConfigError for login,
        host key or certificate problems, RemoteError otherwise."""
        name = safe_name(file.name)
        with self._session(f"send {name}") as conn:
            if self._outbound_has(conn, name) or any(self._read_dir_has(conn, d, name) for d in self._cfg.read_dirs):
                return False
            tmp = temp_name(name)
            if not self._upload(conn, tmp, name, file.content):
                return False
            if before_commit is not None:
                before_commit()
            return self._rename(conn, tmp, name)

    def incoming(self) -> list[str]:
        """Regular files in the inbound folder, oldest first (by modification time, then name);
        temp, hidden and unsafe names are left out. A missing inbound folder is an empty list.
        Raises RemoteError (ConfigError for login problems)."""
        with self._session("list incoming files") as conn:
            found = [(self._modified(entry), name) for name, entry in self._inbound_files(conn)
                     if self._offered(name)]
        return [name for _, name in sorted(found)]

    def fetch(self, name: str, *, max_bytes: int | None = None) -> bytes:
        """The content of ``name`` in the inbound folder. Raises NotFoundError when no file of that
        name is there; InputError when the name is unsafe, the file may not be read, or it has more
        than ``max_bytes`` (refused by the size reported before reading where the protocol tells
        it, else once reading passes the limit); RemoteError when the server or folder fails."""
        name = safe_name(name)
        with self._session(f"fetch {name}") as conn:
            content = self._read(conn, name, max_bytes)
        if max_bytes is not None and len(content) > max_bytes:
            raise too_large(self._label, name, None, max_bytes)
        return content

    def move_aside(self, name: str, folder: str) -> None:
        """Move ``name`` from the inbound folder into the archive or error folder (created if
        missing); an existing file of that name there is kept and this one gets ".1", ".2"...
        Raises InputError for an unsafe name, an unknown folder, a missing file or one the server
        refuses to move, RemoteError otherwise."""
        name = safe_name(name)
        target = aside_folder(self._cfg, folder, self._inbound)
        with self._session(f"move {name} to {folder}") as conn:
            if not self._inbound_has(conn, name):
                raise InputError(self._no_file(name))
            taken = self._aside_taken(conn, target)
            for candidate in aside_candidates(name):
                if not taken(candidate) and self._move(conn, name, target, candidate, folder):
                    return
        raise RemoteError(f"{self._label}: {target} already holds {MAX_ASIDE_COPIES} copies of {name}")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- for the steps -----------------------------------------------------------------------

    @contextmanager
    def _session(self, action: str) -> Iterator[Conn]:
        """The connection for one call of ``action``. The protocol's exceptions leave as ours,
        and a connection that failed is dropped so the next call starts clean."""
        try:
            yield self._connect()
            self._succeeded()
        except CaturactlError:
            raise
        except Exception as e:
            failure = self._failure(action, e)
            if failure is None:
                raise
            self._drop()
            raise failure from None

    def _succeeded(self) -> None:
        """Called when a call ended well (FTP counts a connection's idle time from here)."""

    def _reason(self, e: BaseException) -> str:
        """What went wrong with a server connection, as it follows the action's name: "connection
        refused", "no answer within 3 s", "the server closed the connection", the system's words."""
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
        if isinstance(e, (socket.timeout, TimeoutError)):
            return f"no answer within {self._cfg.timeout_seconds:g} s"
        if isinstance(e, EOFError):
            return "the server closed the connection"
        if isinstance(e, OSError) and e.strerror:
            return e.strerror if not e.filename else f"{e.strerror}: {e.filename}"
        return str(e).strip() or type(e).__name__

    def _no_file(self, name: str) -> str:
        """How every transport says ``name`` is not in the inbound folder."""
        return f"{self._label}: no file {name} in {self._inbound or '.'}"

    def _refuse_size(self, name: str, size: int | None, max_bytes: int | None) -> None:
        """Raises InputError when the size the server or folder reports (None: it tells none) is
        over ``max_bytes``; the file is refused unread."""
        if max_bytes is not None and size is not None and size > max_bytes:
            raise too_large(self._label, name, size, max_bytes)

    @staticmethod
    def _read_limited(f: IO[bytes], max_bytes: int | None) -> bytes:
        # One byte past the limit: a file that grew since its size was read shows as too large.
        return f.read() if max_bytes is None else f.read(max_bytes + 1)

    def _offered(self, name: str) -> bool:
        """Whether incoming() offers a listed ``name``: not a temp or hidden name, and a plain one
        (an unsafe name is skipped with a warning, never refused: the others still come in)."""
        if is_temp_name(name):
            return False
        if not is_plain_name(name):
            logging.getLogger(type(self).__module__).warning(
                "%s: skipping %r in %s: not a plain file name", self._label, name, self._inbound)
            return False
        return True
