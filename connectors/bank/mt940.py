"""SWIFT MT940 customer statements as German banks deliver them: the Deutsche Kreditwirtschaft's
rules (DFÜ-Abkommen, Anlage 3, "Kontoauszugsinformationen gemäß SWIFT") with the structured
field 86.

Fields read per statement: ``:20:`` (reference), ``:25:`` (BLZ/account or IBAN), ``:28C:``
(statement/sequence number), ``:60F:``/``:60M:`` (opening balance), each ``:61:`` (value date,
booking date, C/D/RC/RD mark, amount, transaction type, references) with the ``:86:`` after it,
and ``:62F:``/``:62M:`` (closing balance). A structured ``:86:`` is the 3-digit Geschäftsvorfallcode
(GVC) and ``?NN`` subfields: ``?00`` booking text, ``?10`` primanota, ``?20``-``?29`` and
``?60``-``?63`` the purpose with SEPA identifiers (``EREF+``, ``MREF+``, ``SVWZ+`` ...),
``?30`` BIC, ``?31`` IBAN, ``?32``/``?33`` name, ``?34`` the return reason of a Rücklastschrift.

Why not the ``mt-940`` package: it logs and raises a bare RuntimeError without the line, and reads
what it does not recognise leniently; a statement here is either read whole, its balances adding
up, or refused with file:line and field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from caturactl.core.errors import InputError
from caturactl.ports import BankEntry, BankStatementData

TAG = re.compile(r":(\d{2}[A-Z]?):(.*)")
BALANCE = re.compile(r"(?P<mark>[CD])(?P<date>\d{6})(?P<ccy>[A-Z]{3})(?P<amount>\d{1,12},\d{0,2})")
LINE61 = re.compile(r"(?P<value>\d{6})(?P<entry>\d{4})?(?P<mark>RC|RD|C|D)(?P<funds>[A-Z])?"
                    r"(?P<amount>\d{1,12},\d{0,2})(?P<type>[SNF][A-Z0-9]{3})(?P<cref>(?:(?!//).){0,16})"
                    r"(?://(?P<bref>.{0,16}))?")
SUBFIELD = re.compile(r"\?(\d{2})([^?]*)")
PURPOSE_KEYS = [f"{n:02d}" for n in (*range(20, 30), *range(60, 64))]
# SEPA identifiers that open a segment of the purpose (DK, Anlage 3, "Strukturierte Belegung des Feldes 86").
IDENTIFIERS = ("EREF+", "KREF+", "MREF+", "CRED+", "DEBT+", "COAM+", "OAMT+", "SVWZ+", "ABWA+", "ABWE+",
               "IBAN+", "BIC+")
RETURN_GVC = {"109"}  # SEPA Core direct debit returned to the creditor (Rücklastschrift)
SUBFIELD_WIDTH = 27  # a purpose subfield is full at 27 characters: the next one continues it
NOT_PROVIDED = "NOTPROVIDED"


def read(name: str, data: bytes) -> list[BankStatementData]:
    """Every statement (one per ``:20:``) of the MT940 file ``name``. Raises InputError naming
    file:line and the field that is missing or wrong; nothing is returned then."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # German banks' ISO 8859-1; every byte decodes
    fields = _fields(name, text.lstrip("\ufeff"))
    statements, current = [], []
    for f in fields:
        if f.tag == "20" and current:
            statements.append(current)
            current = []
        if f.tag != "-":
            current.append(f)
    if current:
        statements.append(current)
    if not statements:
        raise InputError("no statement (:20:) in the file", where=f"{name}:1")
    return [_Statement(name, fs).read() for fs in statements]


@dataclass
class _Field:
    tag: str
    value: str
    line: int
    lines: list[str] = field(default_factory=list)


def _fields(name: str, text: str) -> list[_Field]:
    out: list[_Field] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not line:
            continue
        if line.startswith("{"):  # the SWIFT header blocks {1:..}{2:..}{4: around the text block
            rest = line.split("{4:", 1)[1] if "{4:" in line else ""
            if not rest.strip():
                continue
            line = rest
        if line in ("-", "-}") or line.startswith("-}"):
            out.append(_Field("-", "", n))
            continue
        m = TAG.fullmatch(line)
        if m:
            out.append(_Field(m.group(1), m.group(2), n, [m.group(2)]))
        elif out and out[-1].tag != "-":
            out[-1].lines.append(line)
        else:
            raise InputError(f"expected a field such as :20:, found {line[:30]!r}", where=f"{name}:{n}")
    return out


def _amount(text: str, where: str, what: str) -> Decimal:
    whole, _, cents = text.partition(",")
    if not whole.isdigit() or not (cents.isdigit() or cents == "") or len(cents) > 2:
        raise InputError(f"not an amount: {text!r}", where=f"{where}:{what}")
    return Decimal(f"{whole}.{cents or '0'}").quantize(Decimal("0.01"))


def _date(yymmdd: str, where: str, what: str) -> date:
    try:
        return date(2000 + int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:6]))
    except ValueError:
        raise InputError(f"not a date (YYMMDD): {yymmdd!r}", where=f"{where}:{what}") from None


class _Statement:
    def __init__(self, name: str, fields: list[_Field]) -> None:
        self.name, self.fields, self.i = name, fields, 0

    def at(self, f: _Field) -> str:
        return f"{self.name}:{f.line}"

    def take(self, *tags: str, required: str = "") -> _Field | None:
        if self.i < len(self.fields) and self.fields[self.i].tag in tags:
            self.i += 1
            return self.fields[self.i - 1]
        if required:
            f = self.fields[min(self.i, len(self.fields) - 1)]
            found = f":{f.tag}:" if self.i < len(self.fields) else "the end of the statement"
            raise InputError(f"expected {required}, found {found}", where=f"{self.at(f)}:{required}")
        return None

    def balance(self, f: _Field, tag: str) -> tuple[Decimal, str]:
        m = BALANCE.fullmatch(f.value.strip())
        if not m:
            raise InputError(f"not a balance (C/D, YYMMDD, currency, amount): {f.value!r}", where=f"{self.at(f)}:{tag}")
        _date(m["date"], self.at(f), tag)
        value = _amount(m["amount"], self.at(f), tag)
        return (value if m["mark"] == "C" else -value), m["ccy"]

    def read(self) -> BankStatementData:
        ref = self.take("20", required=":20:").value.strip()
        self.take("21")
        account = self.take("25", required=":25:").value.strip()
        number_field = self.take("28C", "28", required=":28C:")
        number = number_field.value.strip()
        opening_field = self.take("60F", "60M", required=":60F:")
        opening, currency = self.balance(opening_field, ":60F:")
        entries: list[BankEntry] = []
        seen: set[str] = set()
        while (line61 := self.take("61")) is not None:
            info = self.take("86")
            entry = self._entry(line61, info, currency, len(entries) + 1, seen)
            entries.append(entry)
        closing_field = self.take("62F", "62M", required=":62F:")
        closing, closing_ccy = self.balance(closing_field, ":62F:")
        if closing_ccy != currency:
            raise InputError(f"closing balance in {closing_ccy}, opening in {currency}", where=f"{self.at(closing_field)}:62F")
        while self.take("64", "65", "86") is not None:
            pass
        if self.i < len(self.fields):
            f = self.fields[self.i]
            raise InputError(f"unexpected :{f.tag}: after the closing balance", where=f"{self.at(f)}:{f.tag}")
        moved = sum((e.amount for e in entries), Decimal(0))
        if opening + moved != closing:
            raise InputError(f"opening balance {opening} and the entries ({moved:+}) do not make the closing "
                             f"balance {closing}", where=f"{self.at(closing_field)}:62F")
        return BankStatementData(identity=f"mt940:{account}/{ref}/{number}", format="mt940", account=account,
                                 statement_id=f"{ref} {number}", currency=currency, opening=opening, closing=closing,
                                 entries=tuple(entries))

    def _entry(self, f: _Field, info: _Field | None, currency: str, k: int, seen: set[str]) -> BankEntry:
        where = self.at(f)
        m = LINE61.fullmatch(f.lines[0].strip())
        if not m:
            raise InputError(f"not a statement line (date, C/D, amount, type, reference): {f.lines[0]!r}",
                             where=f"{where}:61")
        value_date = _date(m["value"], where, "61 value date")
        booked = value_date
        if m["entry"]:
            month, day = int(m["entry"][:2]), int(m["entry"][2:])
            year = value_date.year + (1 if month == 1 and value_date.month == 12 else
                                      -1 if month == 12 and value_date.month == 1 else 0)
            try:
                booked = date(year, month, day)
            except ValueError:
                raise InputError(f"not a booking date (MMDD): {m['entry']!r}", where=f"{where}:61 booking date") from None
        amount = _amount(m["amount"], where, "61 amount")
        mark = m["mark"]
        signed = amount if mark in ("C", "RD") else -amount
        cref, bref = m["cref"].strip(), (m["bref"] or "").strip()
        base = next((r for r in (bref, cref) if r and r != "NONREF"), "") or f"{k}"
        ref, n = base, 2
        while ref in seen:
            ref, n = f"{base}#{n}", n + 1
        seen.add(ref)
        details = _details(info) if info is not None else {}
        gvc = details.get("gvc", "")
        booking_text = details.get("00", "")
        returned = mark == "RC" or (mark == "D" and (gvc in RETURN_GVC or "CKLASTSCHRIFT" in booking_text.upper()
                                                     or "RUECKLASTSCHRIFT" in booking_text.upper()))
        return BankEntry(where=where, entry_ref=ref, booking_date=booked, amount=signed, currency=currency,
                         debtor_name=details.get("name", ""), debtor_iban=details.get("31", "").replace(" ", ""),
                         remittance=details.get("purpose", ""), end_to_end_id=details.get("EREF+", ""),
                         returned=returned, return_reason=details.get("34", "") if returned else "",
                         bank_code=gvc or m["type"])


def _details(info: _Field) -> dict[str, str]:
    """The structured field 86 (GVC and ?NN subfields) as a dict, or its text as the purpose."""
    raw = "".join(info.lines)  # DK: lines of 65 characters, a subfield may go on in the next line
    if not re.match(r"\d{3}\?", raw):
        return {"purpose": " ".join(" ".join(info.lines).split())}
    out: dict[str, str] = {"gvc": raw[:3]}
    parts: list[tuple[str, str]] = SUBFIELD.findall(raw[3:])
    purpose: list[str] = []
    for key, value in parts:
        if key in PURPOSE_KEYS:
            purpose.append(value)
        else:
            out[key] = out.get(key, "") + value
    out["name"] = " ".join((out.get("32", "") + out.get("33", "")).split())
    segments: dict[str, str] = {}
    current, free = "", []
    for i, value in enumerate(purpose):
        ident = next((x for x in IDENTIFIERS if value.startswith(x)), None)
        if ident:
            current = ident
            segments[current] = value[len(ident):]
        elif current:
            segments[current] += value  # continues the segment (no identifier repeated)
        else:
            joiner = "" if i and len(purpose[i - 1]) >= SUBFIELD_WIDTH else " "
            free.append((joiner if free else "") + value)
    e2e = segments.get("EREF+", "").strip()
    out["EREF+"] = "" if e2e == NOT_PROVIDED else e2e
    text = segments.get("SVWZ+") or "".join(free)
    kref = segments.get("KREF+", "").strip()
    out["purpose"] = " ".join(" ".join(x for x in (text, kref if kref != NOT_PROVIDED else "") if x).split())
    return out
