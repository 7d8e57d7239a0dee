"""A postal address as dumb data, and the pure functions that read it.

The functions below the dataclass normalise addresses for matching (case, umlauts and ß,
"Str."/"Straße", house-number forms, whitespace) and classify them for triage (Packstation,
post office, PO box, broken). No I/O, no database.

What the normalisation treats as equal, and why:

- Case, accents and punctuation: "MÜLLER", "Müller" and "Mueller" are one name; "Müller" and
  "Muller" are not, because a buyer who cannot type "ü" writes "ue" (the German
  transliteration), not "u". Other accents are dropped ("José" == "Jose"), ß and ẞ become "ss";
  punctuation and runs of whitespace become one space ("Karl-Marx-Str." == "Karl Marx Str").
- Street types: "Straße", "Strasse", "Str." and "Str" (also as a suffix: "Hauptstraße" ==
  "Hauptstr.") and "Platz"/"Pl." are the German abbreviations buyers actually alternate
  between; "Avenue"/"Av.", "Boulevard"/"Bd" (FR) and "Calle"/"C/", "Avenida"/"Avda." (ES) are
  the same for France and Spain. Nothing else is abbreviated: a wrong merge ("Weg" vs "W.")
  costs more than a missed one, which the fuzzy score still catches.
- House numbers: "12 a", "12-a", "12A" are "12a"; "12 - 14" is "12-14". Two addresses with
  different house numbers are never similar, however alike the strings look: "Hauptstr. 12"
  and "Hauptstr. 21" are different front doors.
- Postal codes compare with spaces removed and upper-cased ("1012 ab" == "1012AB").
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from rapidfuzz import fuzz


@dataclass(frozen=True, slots=True)
class Address:
    name: str = ""
    company: str = ""
    line1: str = ""
    line2: str = ""
    line3: str = ""
    postal_code: str = ""
    city: str = ""
    state: str = ""
    country: str = ""  # ISO 3166-1 alpha-2, upper case
    phone: str = ""
    address_type: str = ""  # RESIDENTIAL | COMMERCIAL | PICKUP_POINT (Amazon 2026-01-01)

    @property
    def lines(self) -> tuple[str, ...]:
        return tuple(x for x in (self.line1, self.line2, self.line3) if x and x.strip())


# --- text ------------------------------------------------------------------------------------

# German transliteration before accent stripping: NFKD alone would turn "ü" into "u".
_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "ẞ": "ss",
                          "Ä": "ae", "Ö": "oe", "Ü": "ue"})
_NON_WORD = re.compile(r"[\W_]+")


def _strip_marks(s: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", s) if unicodedata.category(c) != "Mn")


def normalise_text(s: str) -> str:
    """Casefolded text with umlauts as ae/oe/ue, ß as ss, other accents dropped, punctuation
    as spaces and whitespace collapsed; normalise_text(normalise_text(s)) == normalise_text(s)."""
    if s.isascii():
        return _NON_WORD.sub(" ", s.lower()).strip()
    # NFC first so that a decomposed "u" + U+0308 is caught by the umlaut table too.
    s = unicodedata.normalize("NFC", s).translate(_UMLAUTS)
    if s.isascii():  # German text is ascii once its umlauts are spelled out
        return _NON_WORD.sub(" ", s.lower()).strip()
    # casefold between two mark strips: "İ" casefolds to "i" + U+0307, "ℌ" decomposes to "H".
    s = _strip_marks(_strip_marks(s).casefold())
    return _NON_WORD.sub(" ", s).strip()


# --- street and house number ----------------------------------------------------------------

# "12", "12a", "12 b", "12-a", "3-5", "12 - 14", "12/1" (Stuttgart style), "12a-12c".
_NUM = r"\d+(?:\s*-?\s*[a-z](?![^\W\d_]))?(?:\s*[-/]\s*\d+(?:\s*[a-z](?![^\W\d_]))?)?"
# French "bis/ter/quater" only appear number-first ("12bis avenue Foch").
_NUM_FR = r"\d+(?:\s*-?\s*(?:bis|ter|quater|[a-z])(?![^\W\d_]))?(?:\s*-\s*\d+)?"
_TRAILING = re.compile(rf"(?:(?P<street>.*?\D)\s*)?(?P<num>{_NUM})\s*", re.I)
_LEADING = re.compile(rf"(?P<num>{_NUM_FR})\s*,?\s+(?P<street>[^\d\s].*)", re.I)
# A comma part that is only a house number: "C/ Mayor, 5", "Via Roma, 5", "Calle Mayor, nº 5".
_BARE_NUM = re.compile(rf"(?:n\s*[º°o]?\s*\.?\s*)?(?P<num>{_NUM_FR})", re.I)
# Floor and door right after the number ("5 2º B", "5A bajo"): not part of the house number.
# Only after a number, so that "Calle 2º de Mayo 5" and "Calle Derecha 5" keep their street.
_AFTER_NUMBER = r"(?:(?<=\d)|(?<=\d[a-zA-Z]))"
_FLOOR_ORDINAL = re.compile(rf"{_AFTER_NUMBER}\s+\d+\s*[ºª°].*$")
_FLOOR_ES = re.compile(rf"{_AFTER_NUMBER}\s+(?:bajo|piso|planta|puerta|pta|esc|escalera"
                       r"|izq|izqda|izda|izquierda|dcha|der|derecha|atico|ático|entlo"
                       r"|entresuelo)\b.*$", re.I)
# "sin número" (ES) and "senza numero civico" (IT): an address that legally has no number.
_NO_NUMBER = re.compile(r"[\s,]*\b(?:s/n|s\.\s*n\.?|snc|s\.n\.c\.?|sin\s+n[uú]mero)\s*$", re.I)
_NUMBER_FIRST = frozenset({"FR", "LU", "MC", "GB", "IE", "US", "CA", "AU", "NZ"})
_STREET_PUNCT = " ,;"


def _split_part(part: str, country: str) -> tuple[str, str] | None:
    part = _FLOOR_ORDINAL.sub("", part)
    if country == "ES":
        part = _FLOOR_ES.sub("", part)
    trailing = _TRAILING.fullmatch(part)
    leading = _LEADING.fullmatch(part)
    first, second = (leading, trailing) if country in _NUMBER_FIRST else (trailing, leading)
    m = first or second
    if m is None:
        return None
    return (m["street"] or "").strip(_STREET_PUNCT), m["num"].strip()


def split_street(line: str, country: str) -> tuple[str, str]:
    """(street, house_number) of one address line, both stripped but not normalised;
    ("", "") for an empty line, house number "" when the line has none."""
    s = line.strip()
    if not s:
        return "", ""
    country = country.strip().upper()
    if no_number := _NO_NUMBER.search(s):
        return s[: no_number.start()].strip(_STREET_PUNCT), ""
    parts = [p.strip() for p in s.split(",")]
    parts = [p for p in parts if p]
    if not parts:
        return s, ""
    head = parts[0]
    if len(parts) > 1 and (bare := _BARE_NUM.fullmatch(head)):  # "12, rue de la Paix"
        return parts[1], bare["num"]
    found = _split_part(head, country)
    if found is not None:
        return found
    if len(parts) > 1 and (bare := _BARE_NUM.fullmatch(parts[1])):  # "C/ Mayor, 5, 2º"
        return head, bare["num"]
    for part in parts[1:]:  # "c/o Weber, Hauptstr. 12" / "Résidence Les Pins, 12 rue X"
        found = _split_part(part, country)
        if found is not None and found[0]:
            return found
    return s.strip(_STREET_PUNCT), ""


# Applied to normalised text (lower case, single spaces). "strasse" and "platz" also end
# compounds (Hauptstraße, Marktplatz); the French and Spanish words only stand alone.
_STREET_SHORT = {"strasse": "str", "platz": "pl",  # DE
                 "avenue": "av", "boulevard": "bd", "blvd": "bd",  # FR
                 "avenida": "av", "avda": "av", "calle": "c"}  # ES ("C/ Mayor", "Avda.")
_STREET_WORDS = re.compile(r"(?:strasse|platz)\b|\b(?:avenue|boulevard|blvd|avenida|avda)\b"
                           r"|^calle\b")
_NUM_SPACE = re.compile(r"\s+")
_NUM_LETTER_SEP = re.compile(r"(?<=\d)-(?=[a-z])")


def _normalise_street_name(street: str) -> str:
    return _STREET_WORDS.sub(lambda m: _STREET_SHORT[m[0]], normalise_text(street))


def _normalise_number(number: str) -> str:
    # Keeps "-" and "/": "12-14" and "12/1" must not become "1214" and "121".
    return _NUM_LETTER_SEP.sub("", _NUM_SPACE.sub("", number.casefold()))


def normalise_street(line: str, country: str) -> str:
    """"<street> <house number>" with normalise_text applied, German/French/Spanish street
    types shortened ("straße" -> "str") and the house number compacted ("12 A" -> "12a")."""
    street, number = split_street(line, country)
    return " ".join(x for x in (_normalise_street_name(street), _normalise_number(number)) if x)


def _street_index(lines: tuple[str, ...], country: str) -> tuple[int, tuple[str, str]]:
    # The street is usually line1, but marketplaces put company or "c/o" there and the street
    # in line2; the first line with a house number is the street line.
    first = ("", "")
    for i, line in enumerate(lines):
        split = split_street(line, country)
        if split[1]:
            return i, split
        if i == 0:
            first = split
    return 0, first


def street_parts(a: Address) -> tuple[str, str, tuple[str, ...]]:
    """(street, house number, the other lines) for a label: the street is the first line with a
    house number, so "c/o Müller" in line1 and the street in line2 still print right."""
    lines = a.lines
    if not lines:
        return "", "", ()
    i, (street, number) = _street_index(lines, a.country)
    return street, number, lines[:i] + lines[i + 1:]


def _street_line(a: Address) -> str:
    lines = a.lines
    return lines[_street_index(lines, a.country)[0]] if lines else ""


def postal_key(code: str) -> str:
    """The postal code as a lookup key: spaces removed, upper case."""
    return "".join(code.split()).upper()


def address_key(a: Address) -> str:
    """"COUNTRY|POSTALCODE|normalised street line" for exact lookups; equal for addresses that
    differ only in case, spacing, umlaut spelling, street abbreviation or house-number form."""
    street = normalise_street(_street_line(a), a.country)
    return f"{a.country.strip().upper()}|{postal_key(a.postal_code)}|{street}"


# --- names -----------------------------------------------------------------------------------

def name_key(name: str) -> str:
    """Normalised name with its words sorted: "Müller, Hans" and "hans mueller" give one key."""
    return " ".join(sorted(normalise_text(name).split()))


def name_similarity(a: str, b: str) -> float:
    """0..100, rapidfuzz token_sort_ratio of the normalised names; 0 when either is empty."""
    na, nb = normalise_text(a), normalise_text(b)
    if not na or not nb:
        return 0.0
    return fuzz.token_sort_ratio(na, nb)


# --- similarity ------------------------------------------------------------------------------

_STREET_WEIGHT = 0.75  # the street says more about the house than the spelling of the town
_EXTRA_WEIGHT = 0.2  # share of the street score that other lines (c/o, Hinterhaus) take


def _ratio(x: str, y: str) -> float:
    return 100.0 if x == y else fuzz.token_sort_ratio(x, y)


def _street_parts(a: Address) -> tuple[str, str, str]:
    lines = a.lines
    if not lines:
        return "", "", ""
    i, (street, number) = _street_index(lines, a.country)
    extra = " ".join(normalise_text(x) for j, x in enumerate(lines) if j != i)
    return _normalise_street_name(street), _normalise_number(number), extra.strip()


def address_similarity(a: Address, b: Address) -> float:
    """0..100: 0 when country, postal code or house number differ, else a weighted rapidfuzz
    score of normalised street (other address lines count only when both have them) and city."""
    if a.country.strip().upper() != b.country.strip().upper():
        return 0.0
    if postal_key(a.postal_code) != postal_key(b.postal_code):
        return 0.0
    street_a, number_a, extra_a = _street_parts(a)
    street_b, number_b, extra_b = _street_parts(b)
    if number_a != number_b:
        return 0.0
    street = _ratio(street_a, street_b)
    if extra_a and extra_b:  # a missing "2. OG" on one side does not make it another house
        street = (1 - _EXTRA_WEIGHT) * street + _EXTRA_WEIGHT * _ratio(extra_a, extra_b)
    city = _ratio(normalise_text(a.city), normalise_text(b.city))
    return _STREET_WEIGHT * street + (1 - _STREET_WEIGHT) * city


# --- pickup points and PO boxes --------------------------------------------------------------

# Matched against normalise_text output (ascii, lower case, single spaces).
_PICKUP_PATTERNS = (
    ("packstation", re.compile(r"\bpack ?station\b")),
    ("postfiliale", re.compile(r"\bpost ?filiale\b|^filiale \d")),
    ("parcelshop", re.compile(r"\b(?:paket ?shop|parcel ?shop|pick ?up point|point relais"
                              r"|relais colis|punto pack|pickup station)\b")),
    ("po_box", re.compile(
        r"\bpostfach\b"  # DE/AT/CH
        r"|^pf \d"  # DE abbreviation, only at the start of the line ("Pf 12 34")
        r"|\bp ?o ?box\b|\bpost office box\b"  # GB/IE/US
        r"|\bboite postale\b|(?:^| )bp \d"  # FR boîte postale, "BP 45"
        r"|\bapartado(?: de correos)?\b|\bapdo\b"  # ES
        r"|\bcasella postale\b|(?:^| )c p \d|\bcas post\b"  # IT "C.P. 123"
        r"|\bpostbus\b|\bpostboks\b|\bskrytka pocztowa\b"  # NL/BE, DK/NO, PL
    )),
)


_ANY_PICKUP = re.compile("|".join(f"(?:{p.pattern})" for _, p in _PICKUP_PATTERNS))


def pickup_kind(a: Address) -> str | None:
    """"packstation", "postfiliale", "parcelshop" or "po_box" from the address lines (an
    Amazon PICKUP_POINT without a telling line is "parcelshop"); None for a street address."""
    texts = [normalise_text(x) for x in a.lines]
    if any(_ANY_PICKUP.search(t) for t in texts):  # one pass for the common street address
        for kind, pattern in _PICKUP_PATTERNS:
            if any(pattern.search(t) for t in texts):
                return kind
    if a.address_type.strip().upper() == "PICKUP_POINT":
        return "parcelshop"
    return None


# DHL PostNummer: 6 to 10 digits. NOT in /work/shared/reference (uncertain there); taken from
# the public DHL Parcel DE Shipping API as generated into public clients (Locker.postNumber
# pattern ^[0-9]{6,10}$). The reference (formats.md, GKP CSV, itself marked "confirm against
# the template") says the PostNummer goes in "Name 2", so buyers put it in name/company too.
_POSTNUMMER_LABELLED = re.compile(
    r"\b(?:post\s*-?\s*n(?:umme)?r|postnummer|pnr|kundennummer|kd\s*-?\s*nr)\b\.?\s*:?\s*"
    r"(\d{6,10})(?!\d)", re.I)
# A standalone block of digits; part of a longer number ("+49 171 1234567", "0171 1234567")
# is a phone number, not a PostNummer.
_POSTNUMMER_BARE = re.compile(r"(?<![\w+])(?<!\d[\s/-])(\d{6,10})(?!\w)(?![\s/-]\d)")


def postnummer(a: Address) -> str | None:
    """The DHL PostNummer (6-10 digits) from the address lines, name or company, a labelled one
    ("Postnummer: 12345678") first, else the first standalone 6-10 digit number; else None."""
    fields = (*a.lines, a.name, a.company)
    for field in fields:
        if m := _POSTNUMMER_LABELLED.search(field):
            return m[1]
    for field in fields:
        if m := _POSTNUMMER_BARE.search(field):
            return m[1]
    return None


# --- triage ----------------------------------------------------------------------------------

# Postal-code formats by country, checked on the code upper-cased and stripped (inner spaces
# kept where the format has one, optional where buyers leave it out).
_POSTAL_FORMATS: dict[str, tuple[re.Pattern[str], str]] = {
    "DE": (re.compile(r"\d{5}"), "5 digits"),
    "AT": (re.compile(r"\d{4}"), "4 digits"),
    "CH": (re.compile(r"\d{4}"), "4 digits"),
    "FR": (re.compile(r"\d{5}"), "5 digits"),
    "IT": (re.compile(r"\d{5}"), "5 digits"),
    "ES": (re.compile(r"(?:0[1-9]|[1-4]\d|5[0-2])\d{3}"), "5 digits, 01xxx-52xxx"),
    "NL": (re.compile(r"[1-9]\d{3} ?[A-Z]{2}"), "4 digits and 2 letters, e.g. 1012 AB"),
    "BE": (re.compile(r"\d{4}"), "4 digits"),
    "LU": (re.compile(r"\d{4}"), "4 digits"),
    "PL": (re.compile(r"\d{2}-?\d{3}"), "NN-NNN"),
    "GB": (re.compile(r"[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}"), "e.g. SW1A 1AA"),
    "IE": (re.compile(r"(?:[A-Z]\d{2}|D6W) ?[0-9A-Z]{4}"), "Eircode, e.g. D02 X285"),
    "SE": (re.compile(r"\d{3} ?\d{2}"), "NNN NN"),
    "DK": (re.compile(r"\d{4}"), "4 digits"),
}
# Countries whose street addresses always carry a house number (Spanish "s/n" and Italian
# "snc" are the explicit exceptions split_street recognises).
_HOUSE_NUMBER_REQUIRED = frozenset({"DE", "AT", "CH", "FR", "IT", "ES"})
_COUNTRY_CODE = re.compile(r"[A-Z]{2}")
# C0 and C1 controls, plus the invisible format characters that arrive from copy and paste.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060\ufeff]")
_LABEL_FIELDS = ("name", "company", "line1", "line2", "line3", "city")
_ALL_FIELDS = (*_LABEL_FIELDS, "postal_code", "state", "country", "phone")


def address_problems(a: Address, *, max_line: int = 35) -> list[str]:
    """Human-readable reasons why the address cannot be shipped unchecked, each naming its
    field; an empty list when it looks shippable. max_line bounds every printed label line."""
    problems: list[str] = []
    country = a.country.strip()
    postal_code = a.postal_code.strip()
    if not a.name.strip() and not a.company.strip():
        problems.append("name is empty (and no company)")
    if not a.lines:
        problems.append("line1 is empty: no street, Packstation or PO box")
    if not postal_code:
        problems.append("postal_code is empty")
    if not a.city.strip():
        problems.append("city is empty")
    if not country:
        problems.append("country is empty")
    elif not _COUNTRY_CODE.fullmatch(country):
        problems.append(f"country '{a.country}' is not an upper-case ISO 3166-1 alpha-2 code, "
                        f"e.g. DE")

    if postal_code and (fmt := _POSTAL_FORMATS.get(country)):
        pattern, shape = fmt
        if not pattern.fullmatch(postal_code.upper()):
            problems.append(f"postal_code '{a.postal_code}' is not a {country} postal code "
                            f"({shape})")

    kind = pickup_kind(a)
    if kind is None and country in _HOUSE_NUMBER_REQUIRED and a.lines:
        line = _street_line(a)
        if not split_street(line, country)[1] and not _NO_NUMBER.search(line):
            field = next(f for f in ("line1", "line2", "line3") if getattr(a, f) == line)
            problems.append(f"{field} '{line.strip()}' has no house number")
    if kind in ("packstation", "postfiliale") and postnummer(a) is None:
        problems.append(f"{kind} address has no PostNummer (6-10 digits) in name, company "
                        f"or lines")

    for field in _LABEL_FIELDS:
        value = getattr(a, field)
        if len(value.strip()) > max_line:
            problems.append(f"{field} is {len(value.strip())} characters, longer than "
                            f"{max_line}")
    for field in _ALL_FIELDS:
        if m := _CONTROL.search(getattr(a, field)):
            problems.append(f"{field} contains a control character (U+{ord(m[0]):04X})")
    return problems
