"""Folder transport: a location reached through a local directory (a mounted share, or the
warehouse PC next door), with the same promises as SFTP and FTP.

The base folder (``cfg.path``) must already exist: when a share is not mounted, its mount point
is an empty local directory or missing, and creating folders there would "deliver" files nobody
ever sees. Subfolders below it (outbound, archive, error) are created as needed.

A file is written to ``.NAME.part``, fsynced, then renamed, and the directory is fsynced, so after
a crash the location sees either the whole file or none.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path

from caturactl.config import TransportConfig
from caturactl.errors import ConfigError, InputError, RemoteError
from caturactl.ports import RenderedFile
from connectors.ftp.names import (
    MAX_ASIDE_COPIES,
    aside_candidates,
    aside_folder,
    is_plain_name,
    is_temp_name,
    safe_name,
    temp_name,
)

log = logging.getLogger(__name__)


class FolderTransport:
    """Writes files into ``path/outbound_dir`` and reads answers from ``path/inbound_dir``."""

    def __init__(self, name: str, cfg: TransportConfig, *, base_dir: Path) -> None:
        """Resolves the folders (``cfg.path`` relative to ``base_dir``, the others relative to
        it); raises ConfigError when ``cfg.path`` is empty or the kind is not folder."""
        if cfg.kind != "folder":
            raise ConfigError(f"transport {name}: kind {cfg.kind!r} is not folder")
        if not cfg.path:
            raise ConfigError(f"transport {name}: path is empty")
        self.name = name
        self._cfg = cfg
        self._base = base_dir / cfg.path
        self._out = self._base / cfg.outbound_dir
        self._in = self._base / cfg.inbound_dir
        self._read = [self._out / d for d in cfg.read_dirs]  # an absolute d stays itself
        self._label = f"folder {name} ({self._base})"

    def _reachable(self) -> None:
        if not self._base.is_dir():
            raise RemoteError(f"{self._label}: the folder does not exist (share not mounted?)")

    def _failed(self, action: str, e: OSError) -> RemoteError:
        where = f" {e.filename}" if e.filename else ""
        return RemoteError(f"{self._label}: {action}: {e.strerror or e}{where}")

    def send(self, file: RenderedFile, *, before_commit: Callable[[], None] | None = None) -> bool:
        """Write ``file`` as ``.NAME.part`` into the outbound folder (created if missing), fsync,
        rename it to NAME. False, and nothing written, when NAME is already there or in one of
        the location's ``read_dirs``. ``before_commit`` is called right before the rename. Raises
        InputError for an unsafe name, RemoteError when the folder is missing or not writable."""
        name = safe_name(file.name)
        self._reachable()
        final, tmp = self._out / name, self._out / temp_name(name)
        try:
            self._out.mkdir(parents=True, exist_ok=True)
            if os.path.lexists(final) or any(os.path.lexists(d / name) for d in self._read):
                return False
            with open(tmp, "wb") as f:
                f.write(file.content)
                f.flush()
                os.fsync(f.fileno())
            if os.path.lexists(final):  # delivered by someone else while we wrote
                tmp.unlink()
                return False
            if before_commit is not None:
                before_commit()
            os.replace(tmp, final)
            _fsync_dir(self._out)
        except OSError as e:
            raise self._failed(f"send {name}", e) from None
        return True

    def incoming(self) -> list[str]:
        """Regular files in the inbound folder, oldest first (by mtime, then name); temp, hidden,
        unsafe names and symlinks are left out. A missing inbound folder is an empty list.
        Raises RemoteError when the base folder is missing or unreadable."""
        self._reachable()
        found = []
        try:
            with os.scandir(self._in) as entries:
                for entry in entries:
                    if not entry.is_file(follow_symlinks=False) or is_temp_name(entry.name):
                        continue
                    if not is_plain_name(entry.name):
                        log.warning("%s: skipping %r: not a plain file name", self._label, entry.name)
                        continue
                    found.append((entry.stat(follow_symlinks=False).st_mtime_ns, entry.name))
        except FileNotFoundError as e:
            if e.filename and Path(e.filename) == self._in:
                return []
            raise self._failed("list incoming files", e) from None  # vanished while listing
        except OSError as e:
            raise self._failed("list incoming files", e) from None
        return [name for _, name in sorted(found)]

    def fetch(self, name: str) -> bytes:
        """The content of ``name`` in the inbound folder. Raises InputError when the name is unsafe
        or no regular file of that name is there, RemoteError when it cannot be read."""
        name = safe_name(name)
        self._reachable()
        path = self._in / name
        try:
            # O_NOFOLLOW: a symlink planted in the inbox must not make us read a file elsewhere.
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ELOOP, errno.EISDIR):
                raise InputError(f"{self._label}: no file {name} in {self._in}") from None
            raise self._failed(f"fetch {name}", e) from None
        try:
            with open(fd, "rb") as f:
                if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                    raise InputError(f"{self._label}: {name} in {self._in} is not a regular file")
                return f.read()
        except OSError as e:
            raise self._failed(f"fetch {name}", e) from None

    def move_aside(self, name: str, folder: str) -> None:
        """Move ``name`` from the inbound folder into the archive or error folder (created if
        missing); an existing file of that name there is kept and this one gets ".1", ".2"...
        Raises InputError for an unsafe name, an unknown folder or a missing file, RemoteError
        otherwise."""
        name = safe_name(name)
        target = Path(aside_folder(self._cfg, folder, str(self._in)))
        self._reachable()
        src = self._in / name
        if not os.path.lexists(src):
            raise InputError(f"{self._label}: no file {name} in {self._in}")
        try:
            target.mkdir(parents=True, exist_ok=True)
            for candidate in aside_candidates(name):
                dst = target / candidate
                if not os.path.lexists(dst):
                    # os.rename would replace a file that appears between the check and the
                    # rename; that needs a second reader moving the same name at the same moment.
                    os.rename(src, dst)
                    _fsync_dir(target)
                    return
        except OSError as e:
            raise self._failed(f"move {name} to {folder}", e) from None
        raise RemoteError(f"{self._label}: {target} already holds {MAX_ASIDE_COPIES} copies of {name}")

    def close(self) -> None:
        """Nothing to close; present for the Transport protocol."""

    def __enter__(self) -> "FolderTransport":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _fsync_dir(path: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
