"""Reading the CSV files people and partners make: their encoding, their delimiter, and a line
number for every complaint.

A spreadsheet saved on a German Windows machine is Windows-1252; one saved elsewhere is UTF-8,
with or without a byte-order mark. Both are read; bytes neither can be are reported by line.
"""

from __future__ import annotations

import csv
from typing import Iterator

from caturactl.core.errors import InputError


def decode(data: bytes, where: str) -> str:
    """The text of ``data``: UTF-8 (a BOM is dropped), else Windows-1252; raises InputError naming
    the line of the first byte that is neither."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(f"byte 0x{data[exc.start]:02x} is neither UTF-8 nor Windows-1252 text",
                         where=f"{where}:{line}") from None


def rows(text: str, where: str) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """The header (lower-cased, stripped) and (line number, row) pairs of a ``;`` or ``,``
    separated text; blank lines are skipped. Raises InputError for a line with more fields than
    the header."""
    sample = text[:2048]
    delimiter = ";" if sample.count(";") > sample.count(",") else ","
    reader = csv.reader(text.splitlines(), delimiter=delimiter)
    header = [h.strip().lower() for h in next(reader, [])]

    def body() -> Iterator[tuple[int, dict[str, str]]]:
        for lineno, fields in enumerate(reader, start=2):
            if not any(f.strip() for f in fields):
                continue
            if len(fields) > len(header):
                raise InputError(f"{len(fields)} fields, the header has {len(header)}", where=f"{where}:{lineno}")
            yield lineno, {h: (fields[i].strip() if i < len(fields) else "") for i, h in enumerate(header)}
    return header, body()
