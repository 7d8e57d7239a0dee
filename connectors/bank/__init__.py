"""Bank statements as German banks deliver them: ISO 20022 camt.053 (``camt053``) and SWIFT MT940
with the Deutsche Kreditwirtschaft's structured field 86 (``mt940``). Both give the same plain
values (``caturactl.ports.BankStatementData``); ``read_statement`` tells them apart by content.
"""

from __future__ import annotations

from caturactl.core.errors import InputError
from caturactl.ports import BankStatementData
from connectors.bank import camt053, mt940


def read_statement(name: str, data: bytes) -> list[BankStatementData]:
    """Every statement in the file ``name``: CAMT.053 when it is XML, MT940 when it starts with a
    SWIFT block or ``:20:``. Raises InputError for anything else, or for a broken file."""
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        return camt053.read(name, data)
    if head.startswith((b":20:", b"{1:", b":940:")) or b"\n:20:" in head:
        return mt940.read(name, data)
    raise InputError("neither a CAMT.053 XML file nor an MT940 statement (no XML, no :20: field)", where=name)
