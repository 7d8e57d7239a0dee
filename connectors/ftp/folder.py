"""Folder transport: a location reached through a local directory (a mounted share, or the
warehouse PC next door), with the same promises as SFTP and FTP (connectors/ftp/transport.py).

The base folder (``cfg.path``) must already exist: when a share is not mounted, its mount point
is an empty local directory or missing, and creating folders there would "deliver" files nobody
ever sees. Subfolders below it (outbound, archive, error) are created as needed.

A file is written to ``.NAME.part``, fsynced, then published as NAME with a hard link (which,
unlike a rename, fails when NAME exists: a file that appears at NAME meanwhile is never
replaced), and the directory is fsynced, so after a crash the location sees either the whole
file or none.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from caturactl.config import TransportConfig
from caturactl.core.errors import InputError, NotFoundError, RemoteError
from connectors.ftp.transport import FileTransport

log = logging.getLogger(__name__)
# What link(2) answers on a file system that has no hard links.
_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS}


class FolderTransport(FileTransport[None]):
    """Writes files into ``path/outbound_dir`` and reads answers from ``path/inbound_dir``."""

    kinds = ("folder",)
    needs = "path"

    def __init__(self, name: str, cfg: TransportConfig, *, base_dir: Path) -> None:
        """Resolves the folders (``cfg.path`` relative to ``base_dir``, the others relative to
        it); raises ConfigError when ``cfg.path`` is empty or the kind is not folder."""
        super().__init__(name, cfg)
        self._base = base_dir / cfg.path
        self._out = self._base / cfg.outbound_dir
        self._in = self._base / cfg.inbound_dir
        self._inbound = str(self._in)
        self._label = f"folder {name} ({self._base})"

    def _failed(self, action: str, e: OSError) -> RemoteError:
        where = f" {e.filename}" if e.filename else ""
        return RemoteError(f"{self._label}: {action}: {e.strerror or e}{where}")

    def _connect(self) -> None:
        """Raises RemoteError when the base folder is not there (share not mounted?)."""
        if not self._base.is_dir():
            raise RemoteError(f"{self._label}: the folder does not exist (share not mounted?)")

    def _failure(self, action: str, e: Exception) -> RemoteError | None:
        return self._failed(action, e) if isinstance(e, OSError) else None

    def _drop(self) -> None:
        """Nothing to forget: a folder has no connection."""

    # --- send ---------------------------------------------------------------------------------

    def _outbound_has(self, conn: None, name: str) -> bool:
        self._out.mkdir(parents=True, exist_ok=True)
        return os.path.lexists(self._out / name)

    def _read_dir_has(self, conn: None, read_dir: str, name: str) -> bool:
        return os.path.lexists(self._out / read_dir / name)  # an absolute read_dir stays itself

    def _upload(self, conn: None, tmp: str, name: str, content: bytes) -> bool:
        with open(self._out / tmp, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        if os.path.lexists(self._out / name):  # delivered by someone else while we wrote
            (self._out / tmp).unlink()
            return False
        return True

    def _rename(self, conn: None, tmp: str, name: str) -> bool:
        if not _publish(self._out / tmp, self._out / name):
            return False  # delivered by someone else between the check and now
        _fsync_dir(self._out)
        return True

    # --- incoming and fetch -------------------------------------------------------------------

    def _inbound_files(self, conn: None) -> Iterator[tuple[str, os.DirEntry]]:
        # Symlinks are not files here: one planted in the inbox must not offer a file elsewhere.
        try:
            with os.scandir(self._in) as entries:
                for entry in entries:
                    if entry.is_file(follow_symlinks=False):
                        yield entry.name, entry
        except FileNotFoundError as e:
            if not (e.filename and Path(e.filename) == self._in):
                raise  # vanished while listing

    def _modified(self, entry: os.DirEntry) -> int:
        return entry.stat(follow_symlinks=False).st_mtime_ns

    def _read(self, conn: None, name: str, max_bytes: int | None) -> bytes:
        try:
            # O_NOFOLLOW: a symlink planted in the inbox must not make us read a file elsewhere.
            fd = os.open(self._in / name, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as e:
            if e.errno == errno.ENOENT:
                raise NotFoundError(self._no_file(name)) from None
            if e.errno in (errno.ELOOP, errno.EISDIR):
                raise InputError(f"{self._label}: {name} in {self._in} is not a regular file") from None
            if e.errno in (errno.EACCES, errno.EPERM):  # this file's problem, not the folder's
                raise InputError(f"{self._label}: {name} in {self._in} may not be read") from None
            raise
        with open(fd, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise InputError(f"{self._label}: {name} in {self._in} is not a regular file")
            self._refuse_size(name, info.st_size, max_bytes)
            return self._read_limited(f, max_bytes)

    # --- move_aside ---------------------------------------------------------------------------

    def _inbound_has(self, conn: None, name: str) -> bool:
        return os.path.lexists(self._in / name)

    def _aside_taken(self, conn: None, target: str) -> Callable[[str], bool]:
        Path(target).mkdir(parents=True, exist_ok=True)
        return lambda candidate: os.path.lexists(Path(target) / candidate)

    def _move(self, conn: None, name: str, target: str, candidate: str, folder: str) -> bool:
        # os.rename would replace a file that appears between the check and the rename; that
        # needs a second reader moving the same name at the same moment.
        os.rename(self._in / name, Path(target) / candidate)
        _fsync_dir(Path(target))
        return True

    def close(self) -> None:
        """Nothing to close; present for the Transport protocol."""


def _publish(tmp: Path, final: Path) -> bool:
    """Give ``tmp`` the name ``final`` unless ``final`` exists (then ``tmp`` is removed and the
    answer is False). A rename would silently replace a file that appeared after our check."""
    try:
        os.link(tmp, final)  # atomic, and refuses an existing name (EEXIST)
    except FileExistsError:
        tmp.unlink()
        return False
    except OSError as e:
        if e.errno not in _NO_HARD_LINKS:
            raise
        # A share without hard links (FAT, some SMB mounts): the rename, after one more look.
        # What appears in the moment between the two is replaced; nothing closes that here.
        if os.path.lexists(final):
            tmp.unlink()
            return False
        os.replace(tmp, final)
        return True
    try:
        tmp.unlink()
    except OSError as e:  # the file is published; a leftover temp name hides nothing
        log.warning("%s: cannot remove %s: %s", final.parent, tmp.name, e.strerror or e)
    return True


def _fsync_dir(path: Path) -> None:
    # A new name (a rename, a link) is durable only once the directory entry is on disk.
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
