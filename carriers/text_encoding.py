"""Delivery data as the text a document format may write: clean, encodable, named when it is not.

Every format under ``carriers/`` writes the same address and article text, so the decisions
about that text live here once:

- Control characters are refused (a NUL or a C1 byte from a copy-and-paste is a broken
  address, not something to print); line breaks are folded for one-line fields.
- Carrier CSV and core-font PDFs are Windows-1252 (reference/carriers/formats.md §1 and §6,
  reference/toolchain.md §7). A character outside it is transliterated to its closest Latin
  form ("ł" -> "l", "ř" -> "r", "ﬁ" -> "fi") and invisible format characters (zero-width
  space, BOM) are dropped; a character with no Latin form (Chinese, Cyrillic, Greek) raises
  ``InputError`` naming the field, because a parcel label with "?" for a name reaches nobody
  and a person must decide.
- Times are written in UTC; a naive datetime is taken as UTC, which is what the contract
  (``caturactl.ports.ShipmentDocument``) promises and what SQLite hands back.
- What people read (PDF delivery note, text order) shows the same address block in the same
  order, and weights and amounts the German way ("2,40 kg", "12,50 EUR"), exact, never rounded.
- Parts of file names are checked, because a transport refuses a name with a path in it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import fields, replace
from datetime import datetime, timezone
from decimal import Decimal
from functools import lru_cache

from babel import Locale

from caturactl.core.errors import InputError
from caturactl.core.address import Address
from caturactl.core.money import Money

# C0 and C1 controls except tab, line feed and carriage return (those are folded instead), lone
# surrogates and the two non-characters XML 1.0 forbids.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_LINE_BREAK = re.compile(r"\r\n?")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")

# Letters NFKD does not decompose (a stroke or a ligature is not a combining mark), and
# punctuation Windows-1252 lacks. Everything else is found by NFKD and, failing that, by the
# Unicode name ("LATIN SMALL LETTER B WITH STROKE" -> "b"): see _fallback.
_TABLE = {
    "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ħ": "h", "Ħ": "H", "ŧ": "t", "Ŧ": "T",
    "ı": "i", "ŀ": "l", "Ŀ": "L", "ŉ": "'n", "ĸ": "k", "ŋ": "ng", "Ŋ": "NG",
    "ẞ": "SS", "ə": "e", "Ə": "E", "ǝ": "e", "Ǝ": "E", "ɛ": "e", "Ɛ": "E", "ɔ": "o", "Ɔ": "O",
    "ʒ": "z", "Ʒ": "Z", "ɨ": "i", "ȷ": "j",
    "ʻ": "'", "ʼ": "'", "ʹ": "'", "′": "'", "″": '"', "‛": "'", "‟": '"',
    "‐": "-", "‑": "-", "‒": "-", "―": "-", "−": "-", "⁄": "/", "∕": "/",
}
_LATIN_LETTER = re.compile(r"LATIN (SMALL|CAPITAL) LETTER ([A-Z])\b")

# German country names for the last line of a foreign address (babel ships CLDR; loaded once).
_COUNTRY_NAMES_DE = dict(Locale.parse("de").territories)

_FILE_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _encodable(text: str) -> bool:
    try:
        text.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


@lru_cache(maxsize=4096)
def _fallback(char: str) -> str | None:
    """The cp1252 text standing in for one character, "" to drop it, None when there is none."""
    if char in _TABLE:
        return _TABLE[char]
    if unicodedata.category(char) == "Cf":  # zero-width space, BOM, joiners: invisible
        return ""
    decomposed = "".join(c for c in unicodedata.normalize("NFKD", char)
                         if unicodedata.category(c) != "Mn")
    if decomposed and decomposed != char:
        parts = [c if _encodable(c) else _fallback(c) for c in decomposed]
        if None not in parts:
            return "".join(parts)  # type: ignore[arg-type]
    if m := _LATIN_LETTER.match(unicodedata.name(char, "")):
        return m[2].lower() if m[1] == "SMALL" else m[2]
    return None


def clean_text(value: str, where: str, *, multiline: bool = False) -> str:
    """``value`` stripped, with runs of whitespace (line breaks too) as one space, or for
    ``multiline`` with line breaks kept as "\\n"; raises InputError(where) on a control character."""
    if value.isprintable() and not multiline:  # the common case: nothing to fold or refuse
        return " ".join(value.split()) if "  " in value else value.strip()
    if m := _CONTROL.search(value):
        raise InputError(f"contains a control character (U+{ord(m[0]):04X})", where=where)
    if not multiline:
        return " ".join(value.split())
    value = _LINE_BREAK.sub("\n", value).replace("\t", " ")
    return _TRAILING_SPACE.sub("\n", value).strip()


def cp1252_text(value: str, where: str) -> str:
    """``value`` with every character Windows-1252 lacks replaced by its closest Latin form;
    raises InputError(where) naming the first character that has none (never writes "?")."""
    if value.isascii() or _encodable(value):
        return value
    out: list[str] = []
    for char in unicodedata.normalize("NFC", value):
        if _encodable(char):
            out.append(char)
            continue
        replacement = _fallback(char)
        if replacement is None:
            raise InputError(
                f"character {char!r} (U+{ord(char):04X}, {unicodedata.name(char, 'unnamed')}) "
                f"cannot be written in Windows-1252 and has no Latin transliteration",
                where=where)
        out.append(replacement)
    return "".join(out)


def fit(value: str, limit: int, where: str, *, what: str = "") -> str:
    """``value`` unchanged if it has at most ``limit`` characters; else InputError(where)."""
    if len(value) > limit:
        raise InputError(f"{what or 'value'} {value!r} is {len(value)} characters, the format "
                         f"takes at most {limit}", where=where)
    return value


def as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def file_name_part(value: str, where: str) -> str:
    """``value`` if it can stand inside a file name (letters, digits, "._-", no leading dot);
    else InputError(where), since transports refuse names with a path in them."""
    if not _FILE_PART.fullmatch(value) or ".." in value:
        raise InputError(f"{value!r} cannot be part of a file name (letters, digits, '.', '_', "
                         f"'-' only)", where=where)
    return value


def country_name_de(code: str) -> str:
    """The German name of an ISO 3166-1 alpha-2 country ("AT" -> "Österreich"); the code itself
    when CLDR does not know it."""
    return _COUNTRY_NAMES_DE.get(code.strip().upper(), code.strip().upper())


def address_block(address: Address, *, postnummer: str = "", home_country: str = "DE") -> list[str]:
    """The printed address lines: name, company, PostNummer, street lines, "PLZ Ort", state, and
    the country in capitals when it is not ``home_country`` (as a German sender writes it)."""
    lines = [address.name, address.company, postnummer, *address.lines,
             f"{address.postal_code.strip()} {address.city.strip()}", address.state]
    country = address.country.strip().upper()
    if country and country != home_country.strip().upper():
        lines.append(country_name_de(country).upper())
    return [line.strip() for line in lines if line and line.strip()]


_ADDRESS_FIELDS = tuple(f.name for f in fields(Address))


def clean_address(address: Address, where: str, *, cp1252: bool = False) -> Address:
    """``address`` with clean_text applied to every field (and cp1252_text when ``cp1252``);
    raises InputError naming "<where>.<field>" for the first field that cannot be written."""
    changes = {}
    for name in _ADDRESS_FIELDS:
        value = getattr(address, name)
        cleaned = clean_text(value, f"{where}.{name}")
        if cp1252:
            cleaned = cp1252_text(cleaned, f"{where}.{name}")
        if cleaned != value:
            changes[name] = cleaned
    return replace(address, **changes) if changes else address


_CENTS = Decimal("0.01")
_GRAMS_PER_KG = Decimal(1000)


def decimal_text(value: Decimal) -> str:
    """``value`` with at least two decimals and no exponent ("19.90", "0.125", "10.00"), never
    rounded: a price with more decimals keeps them."""
    value = value.normalize()
    if value.as_tuple().exponent >= -2:  # type: ignore[operator]
        value = value.quantize(_CENTS)  # only adds zeros: normalize() removed the others
    return format(value, "f")


def kg_de(grams: int) -> str:
    """Grams as kilograms the German way, exact: 2400 -> "2,40", 2405 -> "2,405"."""
    return decimal_text(Decimal(grams) / _GRAMS_PER_KG).replace(".", ",")


def money_de(money: Money) -> str:
    """"12,50 EUR": at least two decimals, never rounded."""
    return f"{decimal_text(money.amount).replace('.', ',')} {money.currency}"
