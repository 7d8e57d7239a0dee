"""The merchant's bank for the demo: an account statement as the bank delivers it, ISO 20022
``camt.053.001.08`` (BankToCustomerStatementV08), for ``caturactl payments import`` to read.

The shape is the one ``tests/data/bank/camt053_v08.xml`` documents field by field (its README
names the sources: the ISO 20022 message definition and the Deutsche Kreditwirtschaft's
DFÜ-Abkommen, Anlage 3): ``GrpHdr/MsgId`` and ``Stmt/Id`` (the statement's identity), the
account's IBAN and currency, the opening (``PRCD``) and closing (``CLBD``) booked balances, and
one booked ``Ntry`` per movement with its bank reference, ISO bank transaction code (``PMNT/
RCDT/ESCT`` a SEPA credit transfer received, ``ACMT/MDOP/CHRG`` charges) and one ``TxDtls`` with
the payer, the payer's IBAN and the remittance text in ``Ustrd`` lines of at most 140 characters.
Money is Decimal; the closing balance is the opening one plus every movement.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from lxml import etree

NS = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"
USTRD = 140  # the longest Ustrd line (ISO 20022 Max140Text)
CREDIT_TRANSFER = ("PMNT", "RCDT", "ESCT")
CHARGES = ("ACMT", "MDOP", "CHRG")


@dataclass(frozen=True)
class Movement:
    """One booked movement: a credit (``amount`` > 0) from ``name`` or a debit (< 0) such as
    the bank's charges, with its remittance text (Verwendungszweck)."""
    booked: date
    amount: Decimal
    name: str = ""
    iban: str = ""
    text: str = ""


def iban_de(bank_code: str, account: int) -> str:
    """A German IBAN with a valid check number (ISO 13616 mod 97) for ``bank_code`` and
    ``account``: the payers' accounts of a made-up statement."""
    bban = f"{bank_code:0>8}{account:010d}"
    check = 98 - int(bban + "131400") % 97  # "DE00" moved to the end, letters as numbers
    return f"DE{check:02d}{bban}"


def statement(*, msg_id: str, statement_id: str, created: datetime, iban: str, owner: str, opening: Decimal,
              movements: list[Movement]) -> tuple[bytes, Decimal]:
    """The statement file and its closing balance: ``movements`` booked on ``iban`` after
    ``opening`` (a credit balance)."""
    closing = opening + sum((m.amount for m in movements), Decimal(0))
    first = min((m.booked for m in movements), default=created.date())
    last = max((m.booked for m in movements), default=created.date())
    doc = etree.Element(f"{{{NS}}}Document", nsmap={None: NS})
    msg = _sub(doc, "BkToCstmrStmt")
    header = _sub(msg, "GrpHdr")
    _sub(header, "MsgId", msg_id)
    _sub(header, "CreDtTm", created.isoformat(timespec="seconds"))
    stmt = _sub(msg, "Stmt")
    _sub(stmt, "Id", statement_id)
    _sub(stmt, "CreDtTm", created.isoformat(timespec="seconds"))
    acct = _sub(stmt, "Acct")
    _sub(_sub(acct, "Id"), "IBAN", iban)
    _sub(acct, "Ccy", "EUR")
    _sub(_sub(acct, "Ownr"), "Nm", owner)
    _balance(stmt, "PRCD", opening, first)
    _balance(stmt, "CLBD", closing, last)
    for n, m in enumerate(movements, 1):
        _entry(stmt, f"{statement_id}-{n:04d}", m)
    return etree.tostring(doc, xml_declaration=True, encoding="UTF-8", pretty_print=True), closing


def _sub(parent, tag: str, text: str | None = None, **attrib):
    el = etree.SubElement(parent, f"{{{NS}}}{tag}", **attrib)
    if text is not None:
        el.text = text
    return el


def _amount(parent, value: Decimal) -> None:
    _sub(parent, "Amt", f"{abs(value):.2f}", Ccy="EUR")
    _sub(parent, "CdtDbtInd", "CRDT" if value >= 0 else "DBIT")


def _balance(stmt, code: str, value: Decimal, on: date) -> None:
    bal = _sub(stmt, "Bal")
    _sub(_sub(_sub(bal, "Tp"), "CdOrPrtry"), "Cd", code)
    _amount(bal, value)
    _sub(_sub(bal, "Dt"), "Dt", on.isoformat())


def _entry(stmt, ref: str, m: Movement) -> None:
    ntry = _sub(stmt, "Ntry")
    _amount(ntry, m.amount)
    _sub(_sub(ntry, "Sts"), "Cd", "BOOK")
    _sub(_sub(ntry, "BookgDt"), "Dt", m.booked.isoformat())
    _sub(_sub(ntry, "ValDt"), "Dt", m.booked.isoformat())
    _sub(ntry, "AcctSvcrRef", ref)
    domain, family, sub = CREDIT_TRANSFER if m.amount > 0 else CHARGES
    domn = _sub(_sub(ntry, "BkTxCd"), "Domn")
    _sub(domn, "Cd", domain)
    fmly = _sub(domn, "Fmly")
    _sub(fmly, "Cd", family)
    _sub(fmly, "SubFmlyCd", sub)
    tx = _sub(_sub(ntry, "NtryDtls"), "TxDtls")
    _sub(_sub(tx, "Refs"), "EndToEndId", "NOTPROVIDED")
    _amount(tx, m.amount)
    if m.name:
        parties = _sub(tx, "RltdPties")
        side = "Dbtr" if m.amount > 0 else "Cdtr"
        _sub(_sub(_sub(parties, side), "Pty"), "Nm", m.name)
        if m.iban:
            _sub(_sub(_sub(parties, f"{side}Acct"), "Id"), "IBAN", m.iban)
    if m.text:
        rmt = _sub(tx, "RmtInf")
        for line in textwrap.wrap(m.text, USTRD):
            _sub(rmt, "Ustrd", line)
