"""Folder transport: a location reached through a local directory (a mounted share, or the
warehouse PC next door), with the same promises as SFTP and FTP.

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
from collections.abc import Callable
from pathlib import Path

from caturactl.config import TransportConfig
from caturactl.core.errors import ConfigError, InputError, NotFoundError, RemoteError
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
# What link(2) answers on a file system that has no hard links.
_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS}


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
        publish it as NAME. False, and nothing written, when NAME is already there (also when it
        appears while we write or publish) or in one of the location's ``read_dirs``; an existing
        NAME is never replaced. ``before_commit`` is called right before publishing. Raises
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
            if not _publish(tmp, final):
                return False  # delivered by someone else between the check and now
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

    def fetch(self, name: str, *, max_bytes: int | None = None) -> bytes:
        """The content of ``name`` in the inbound folder. Raises NotFoundError when no file of
        that name is there; InputError when the name is unsafe, it is not a regular file, it may
        not be read, or it has more than ``max_bytes`` (refused by its size, unread); RemoteError
        when the folder fails."""
        name = safe_name(name)
        self._reachable()
        path = self._in / name
        try:
            # O_NOFOLLOW: a symlink planted in the inbox must not make us read a file elsewhere.
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as e:
            if e.errno == errno.ENOENT:
                raise NotFoundError(f"{self._label}: no file {name} in {self._in}") from None
            if e.errno in (errno.ELOOP, errno.EISDIR):
                raise InputError(f"{self._label}: {name} in {self._in} is not a regular file") from None
            if e.errno in (errno.EACCES, errno.EPERM):  # this file's problem, not the folder's
                raise InputError(f"{self._label}: {name} in {self._in} may not be read") from None
            raise self._failed(f"fetch {name}", e) from None
        try:
            with open(fd, "rb") as f:
                info = os.fstat(f.fileno())
                if not stat.S_ISREG(info.st_mode):
                    raise InputError(f"{self._label}: {name} in {self._in} is not a regular file")
                if max_bytes is None:
                    return f.read()
                if info.st_size > max_bytes:
                    raise too_large(self._label, name, info.st_size, max_bytes)
                content = f.read(max_bytes + 1)  # it may have grown since the fstat
                if len(content) > max_bytes:
                    raise too_large(self._label, name, None, max_bytes)
                return content
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
