"""File names that may cross a transport, and the names a transport makes up itself.

Every transport joins names onto a remote or local directory. A name from a renderer, a
command line or a remote listing that carries a path ("../x", "/etc/passwd", "C:x", "a/b")
would let a file land outside the location's folder, so each one passes ``safe_name`` first.
The temp name and the "move aside" names live here too, so all transports agree on them.
"""

from __future__ import annotations

import posixpath
import re
import unicodedata
from collections.abc import Iterator

from caturactl.config import TransportConfig
from caturactl.core.errors import ConfigError, InputError

# ".NAME.part" must still fit the usual 255-byte limit of a file name.
MAX_NAME_BYTES = 255 - len("..part")
_DRIVE = re.compile(r"^[A-Za-z]:")
TEMP_SUFFIXES = (".part", ".tmp")
ASIDE_FOLDERS = ("archive", "error")
# A folder holding this many copies of one name means something loops; stop rather than spin.
MAX_ASIDE_COPIES = 1000


def safe_name(name: str) -> str:
    """Return ``name`` unchanged if it is a plain file name; raises InputError otherwise
    (empty, ".", "..", a separator, NUL or another control character, a drive letter, too long)."""
    if not isinstance(name, str) or not name:
        raise InputError("empty file name")
    if name in (".", ".."):
        raise InputError(f"not a file name: {name!r}")
    if "/" in name or "\\" in name:
        raise InputError(f"file name contains a path: {name!r}")
    # Cc covers NUL, the C0 and C1 controls and DEL: none belongs in a name a person can read.
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise InputError(f"file name contains a control character: {name!r}")
    if _DRIVE.match(name):
        raise InputError(f"file name starts with a drive letter: {name!r}")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise InputError(f"file name longer than {MAX_NAME_BYTES} bytes: {name[:40]!r}...")
    return name


def is_plain_name(name: str) -> bool:
    """True when ``safe_name`` would accept ``name``; for names a server lists, which are
    skipped rather than refused."""
    try:
        safe_name(name)
    except InputError:
        return False
    return True


def is_temp_name(name: str) -> bool:
    """True for names an upload in progress or a hidden file uses (".x", "x.part", "x.tmp");
    incoming() never offers them."""
    return name.startswith(".") or name.endswith(TEMP_SUFFIXES)


def temp_name(name: str) -> str:
    """The name a file is uploaded under before the rename makes it visible; hidden and ".part",
    so neither our incoming() nor a location's importer picks up half a file."""
    return f".{safe_name(name)}.part"


def too_large(label: str, name: str, size: int | None, max_bytes: int) -> InputError:
    """How every transport refuses to fetch a file over the caller's limit: ``size`` as the
    server reported it before reading, or None when reading went past the limit."""
    found = f"is {size} bytes, more" if size is not None else "has more"
    return InputError(f"{label}: {name} {found} than the {max_bytes} bytes allowed")


def aside_candidates(name: str) -> Iterator[str]:
    """``name``, then ``name.1``, ``name.2`` ...: the names move_aside tries in turn, so an
    earlier file of the same name in the archive is never overwritten."""
    yield safe_name(name)
    for n in range(1, MAX_ASIDE_COPIES):
        yield f"{name}.{n}"


def aside_folder(cfg: TransportConfig, folder: str, inbound_dir: str) -> str:
    """The directory move_aside puts files for ``folder`` ("archive" or "error"): the configured
    archive_dir / error_dir, under ``inbound_dir`` unless absolute. Raises InputError for any other
    folder and ConfigError when the configured directory is empty."""
    if folder not in ASIDE_FOLDERS:
        raise InputError(f"move_aside folder must be 'archive' or 'error', not {folder!r}")
    configured = cfg.archive_dir if folder == "archive" else cfg.error_dir
    if not configured:
        raise ConfigError(f"{folder}_dir is empty: read files would have nowhere to go")
    return posixpath.join(inbound_dir, configured)
