"""The small CSV files beside the openTRANS documents, for what openTRANS 2.1 has no document for
that we use (a return announced to the partner, our request to cancel a purchase order, and the
partner's answers to both): written UTF-8, ``;``-separated, CRLF, text that a spreadsheet would
run as a formula guarded; read as every partner CSV is (``caturactl.core.csvfile``: UTF-8 or
Windows-1252, ``;`` or ``,``), all or nothing, the first bad value naming FILE:LINE:FIELD.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from typing import Iterator, Sequence

from caturactl.core import csvfile
from caturactl.core.errors import InputError
from caturactl.core.spreadsheet import guard_formula
# Text fit for a partner's file (printable, at most so many characters): the ORDER's rule.
from connectors.opentrans.order import _clean as text

MAX_ROWS = 10_000
NUMBER = re.compile(r"[A-Z]{1,4}[0-9]{1,12}")  # our numbers: PO000123, RT000012


def local_time(at: datetime) -> str:
    """A moment as ISO 8601 with its offset, to the second."""
    return at.isoformat(timespec="seconds")


def write(header: Sequence[str], rows: Sequence[Sequence[object]]) -> bytes:
    """The CSV file of ``rows`` under ``header``."""
    out = io.StringIO()
    w = csv.writer(out, delimiter=";", lineterminator="\r\n")
    w.writerow(header)
    for row in rows:
        w.writerow([guard_formula(v) if isinstance(v, str) else v for v in row])
    return out.getvalue().encode("utf-8")


def header_of(name: str, content: bytes) -> list[str]:
    """The lower-cased header of a CSV (to tell the kinds of file apart); InputError when unreadable."""
    header, _ = csvfile.rows(csvfile.decode(content, name), name)
    return header


def rows(name: str, content: bytes, needed: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, row) of a CSV whose header names every field of ``needed``; InputError otherwise,
    also for more than MAX_ROWS rows or none."""
    header, body = csvfile.rows(csvfile.decode(content, name), name)
    missing = [f for f in needed if f not in header]
    if missing:
        raise InputError(f"the header needs {', '.join(repr(f) for f in needed)} (missing: {', '.join(missing)})",
                         where=f"{name}:1")
    count = 0
    for lineno, row in body:
        count += 1
        if count > MAX_ROWS:
            raise InputError(f"more than {MAX_ROWS} rows", where=f"{name}:{lineno}")
        yield lineno, row
    if not count:
        raise InputError("no rows under the header", where=f"{name}:2")


def keyed_rows(name: str, content: bytes, needed: Sequence[str], key: str) -> Iterator[tuple[str, str, dict[str, str]]]:
    """(FILE:LINE, our number in column ``key``, row) of a CSV as ``rows`` reads it; InputError
    for a number that is not ours or named twice."""
    seen = set()
    for lineno, row in rows(name, content, needed):
        where = f"{name}:{lineno}"
        found = number(row[key], where, key)
        if found in seen:
            raise InputError(f"{found} twice", where=f"{where}:{key}")
        seen.add(found)
        yield where, found, row


def choice(value: str, allowed: Sequence[str], where: str, field: str) -> str:
    """``value`` lower-cased when it is one of ``allowed``; InputError naming ``where:field`` otherwise."""
    found = value.strip().lower()
    if found not in allowed:
        raise InputError(f"{value[:40]!r} is not one of {', '.join(allowed)}", where=f"{where}:{field}")
    return found


def number(value: str, where: str, field: str) -> str:
    """One of our numbers (PO000123, RT000012), upper-cased; InputError otherwise."""
    found = value.strip().upper()
    if not NUMBER.fullmatch(found):
        raise InputError(f"not a number of ours: {value[:40]!r}", where=f"{where}:{field}")
    return found


__all__ = ["choice", "header_of", "keyed_rows", "local_time", "number", "rows", "text", "write"]
