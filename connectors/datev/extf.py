"""Bookings and debtors as DATEV "EXTF" files, the form a German tax advisor imports.

The advisor's DATEV program takes a booking batch (Buchungsstapel) and debtor master data
(Debitoren/Kreditoren) only as the CSV dialect described in reference/accounting/datev.md; an
import refuses the whole file over one bad field, and the refusal reaches the merchant weeks
later through the advisor. So this module checks every field it writes against that reference
and refuses (``InputError`` naming the booking and the field) rather than hand over a file that
DATEV would reject or, worse, book wrongly.

The writers are pure: plain values in, bytes out, no session. They stream, so a year of Amazon
orders is written in constant memory; because they stream, a refused booking leaves the output
incomplete -- the caller writes to a temporary file and keeps it only when no error was raised.

Every format fact carries its section of datev.md ("datev.md §2"); facts the reference marks
uncertain, or that it does not state, are marked UNCERTAIN where they are used.
"""

from __future__ import annotations

import io
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import BinaryIO, Collection, Iterable

from caturactl.config import EU_COUNTRIES
from caturactl.core.errors import InputError
from caturactl.core.spreadsheet import guard_formula
from carriers.text_encoding import clean_text, cp1252_text

# --- Column captions -----------------------------------------------------------------------------
# datev.md §3: line 2 names every column of the chosen format version, all are written, in order;
# "build columns from the caption list of the chosen format version, not by memory". Columns
# 1-124 are OCA's list (OCA/l10n-germany datev_export_dtvf/datev.py), which datev.md §3 names as
# the source of the numbering; its positions agree with every position datev.md gives (Konto 7,
# KOST1 37, Festschreibung 114, Leistungsdatum 115, EU-Steuersatz (Ursprung) 124).


def _numbered_pairs(kind: str, content: str, count: int) -> tuple[str, ...]:
    return tuple(caption for i in range(1, count + 1)
                 for caption in (f"{kind} {i}", f"{content} {i}"))


BOOKING_FORMAT_VERSION = 13  # datev.md §2 field 5: Buchungsstapel 13 (current)
BOOKING_CAPTIONS: tuple[str, ...] = (
    "Umsatz (ohne Soll/Haben-Kz)", "Soll/Haben-Kennzeichen", "WKZ Umsatz", "Kurs", "Basis-Umsatz",
    "WKZ Basis-Umsatz", "Konto", "Gegenkonto (ohne BU-Schlüssel)", "BU-Schlüssel", "Belegdatum",
    "Belegfeld 1", "Belegfeld 2", "Skonto", "Buchungstext", "Postensperre",
    "Diverse Adressnummer", "Geschäftspartnerbank", "Sachverhalt", "Zinssperre", "Beleglink",
    *_numbered_pairs("Beleginfo - Art", "Beleginfo - Inhalt", 8),
    "KOST1 - Kostenstelle", "KOST2 - Kostenstelle", "Kost-Menge",
    "EU-Land u. UStID (Bestimmung)", "EU-Steuersatz (Bestimmung)", "Abw. Versteuerungsart",
    "Sachverhalt L+L", "Funktionsergänzung L+L", "BU 49 Hauptfunktionstyp",
    "BU 49 Hauptfunktionsnummer", "BU 49 Funktionsergänzung",
    # The missing space in "Zusatzinformation- Inhalt" is DATEV's spelling, kept 1:1.
    *_numbered_pairs("Zusatzinformation - Art", "Zusatzinformation- Inhalt", 20),
    "Stück", "Gewicht", "Zahlweise", "Forderungsart", "Veranlagungsjahr",
    "Zugeordnete Fälligkeit", "Skontotyp", "Auftragsnummer", "Buchungstyp",
    "USt-Schlüssel (Anzahlungen)", "EU-Land (Anzahlungen)", "Sachverhalt L+L (Anzahlungen)",
    "EU-Steuersatz (Anzahlungen)", "Erlöskonto (Anzahlungen)", "Herkunft-Kz", "Buchungs GUID",
    "KOST-Datum", "SEPA-Mandatsreferenz", "Skontosperre", "Gesellschaftername",
    "Beteiligtennummer", "Identifikationsnummer", "Zeichnernummer", "Postensperre bis",
    "Bezeichnung SoBil-Sachverhalt", "Kennzeichen SoBil-Buchung", "Festschreibung",
    "Leistungsdatum", "Datum Zuord. Steuerperiode", "Fälligkeit", "Generalumkehr (GU)",
    "Steuersatz", "Land", "Abrechnungsreferenz", "BVV-Position", "EU-Land u. UStID (Ursprung)",
    "EU-Steuersatz (Ursprung)",
    # UNCERTAIN: datev.md §3 says format 13 has 125 columns and that column 125 is "a newly
    # appended field (name not verified)". This caption is the one a public generator built from
    # DATEV's sample file gives; it is not confirmed by datev.md. We never fill it.
    "Abw. Skontokonto",
)

DEBTOR_FORMAT_VERSION = 5  # datev.md §2 field 5 and §4: Debitoren/Kreditoren 5


def _bank_block(i: int, spare: int) -> tuple[str, ...]:
    return (f"Bankleitzahl {i}", f"Bankbezeichnung {i}", f"Bank-Kontonummer {i}",
            f"Länderkennzeichen {i}", f"IBAN-Nr. {i}", f"Leerfeld{spare}", f"SWIFT-Code {i}",
            f"Abw. Kontoinhaber {i}", f"Kennz. Hauptbankverb. {i}", f"Bankverb {i} Gültig von",
            f"Bankverb {i} Gültig bis")


# datev.md §4: 254 columns, "the first ones (OCA list)"; the whole list is OCA's (see above).
DEBTOR_CAPTIONS: tuple[str, ...] = (
    "Konto", "Name (Adressattyp Unternehmen)", "Unternehmensgegenstand",
    "Name (Adressattyp natürl. Person)", "Vorname (Adressattyp natürl. Person)",
    "Name (Adressattyp keine Angabe)", "Adressattyp", "Kurzbezeichnung", "EU-Land", "EU-UStID",
    "Anrede", "Titel/Akad. Grad", "Adelstitel", "Namensvorsatz", "Adressart", "Straße",
    "Postfach", "Postleitzahl", "Ort", "Land", "Versandzusatz", "Adresszusatz",
    "Abweichende Anrede", "Abw. Zustellbezeichnung 1", "Abw. Zustellbezeichnung 2",
    "Kennz. Korrespondenzadresse", "Adresse Gültig von", "Adresse Gültig bis", "Telefon",
    "Bemerkung (Telefon)", "Telefon GL", "Bemerkung (Telefon GL)", "E-Mail",
    "Bemerkung (E-Mail)", "Internet", "Bemerkung (Internet)", "Fax", "Bemerkung (Fax)",
    "Sonstige", "Bemerkung (Sonstige)",
    *(caption for i in range(1, 6) for caption in _bank_block(i, i)),
    "Leerfeld6", "Briefanrede", "Grußformel", "Kunden-/Lief.-Nr.", "Steuernummer", "Sprache",
    "Ansprechpartner", "Vertreter", "Sachbearbeiter", "Diverse-Konto", "Ausgabeziel",
    "Währungssteuerung", "Kreditlimit (Debitor)", "Zahlungsbedingung",
    "Fälligkeit in Tagen (Debitor)", "Skonto in Prozent (Debitor)", "Kreditoren-Ziel 1 Tg.",
    "Kreditoren-Skonto 1 %", "Kreditoren-Ziel 2 Tg.", "Kreditoren-Skonto 2 %",
    "Kreditoren-Ziel 3 Brutto Tg.", "Kreditoren-Ziel 4 Tg.", "Kreditoren-Skonto 4 %",
    "Kreditoren-Ziel 5 Tg.", "Kreditoren-Skonto 5 %", "Mahnung", "Kontoauszug", "Mahntext 1",
    "Mahntext 2", "Mahntext 3", "Kontoauszugstext", "Mahnlimit Betrag", "Mahnlimit %",
    "Zinsberechnung", "Mahnzinssatz 1", "Mahnzinssatz 2", "Mahnzinssatz 3", "Lastschrift",
    "Leerfeld7", "Mandantenbank", "Zahlungsträger",
    *(f"Indiv. Feld {i}" for i in range(1, 16)),
    "Abweichende Anrede (Rechnungsadresse)", "Adressart (Rechnungsadresse)",
    "Straße (Rechnungsadresse)", "Postfach (Rechnungsadresse)",
    "Postleitzahl (Rechnungsadresse)", "Ort (Rechnungsadresse)", "Land (Rechnungsadresse)",
    "Versandzusatz (Rechnungsadresse)", "Adresszusatz (Rechnungsadresse)",
    "Abw. Zustellbezeichnung 1 (Rechnungsadresse)", "Abw. Zustellbezeichnung 2 (Rechnungsadresse)",
    "Adresse Gültig von (Rechnungsadresse)", "Adresse Gültig bis (Rechnungsadresse)",
    *(caption for i in range(6, 11) for caption in _bank_block(i, i + 2)),
    "Nummer Fremdsystem", "Insolvent",
    *(f"SEPA-Mandatsreferenz {i}" for i in range(1, 11)),
    "Verknüpftes OPOS-Konto", "Mahnsperre bis", "Lastschriftsperre bis", "Zahlungssperre bis",
    "Gebührenberechnung", "Mahngebühr 1", "Mahngebühr 2", "Mahngebühr 3",
    "Pauschalenberechnung", "Verzugspauschale 1", "Verzugspauschale 2", "Verzugspauschale 3",
    "Alternativer Suchname", "Status", "Anschrift manuell geändert (Korrespondenzadresse)",
    "Anschrift individuell (Korrespondenzadresse)",
    "Anschrift manuell geändert (Rechnungsadresse)", "Anschrift individuell (Rechnungsadresse)",
    "Fristberechnung bei Debitor", "Mahnfrist 1", "Mahnfrist 2", "Mahnfrist 3", "Letzte Frist",
)

assert len(BOOKING_CAPTIONS) == 125, len(BOOKING_CAPTIONS)  # datev.md §3
assert len(DEBTOR_CAPTIONS) == 254, len(DEBTOR_CAPTIONS)  # datev.md §4

# --- Field rules (datev.md §3 unless said otherwise) ---------------------------------------------

_CENT = Decimal("0.01")
_AMOUNT_LIMIT = Decimal(10) ** 10  # "up to 10 integer digits"
_SIDES = {"S": '"S"', "H": '"H"'}  # Soll/Haben-Kennzeichen, a quoted text field
# Belegfeld 1: letters, digits and $ % & * + - /, at most 36. datev.md has this from vendor docs
# (SelectLine), not DATEV's own page; it does not say whether umlauts count as "letters" nor that
# anything is transliterated, so only ASCII letters pass and anything else is refused.
_DOCUMENT = re.compile(r"[A-Za-z0-9$%&*+\-/]{0,36}")
_DOCUMENT2_MAX = 12  # Belegfeld 2
_TEXT_MAX = 60  # Buchungstext; datev.md gives no truncation rule, so a longer text is refused
_TAX_KEY = re.compile(r"[0-9]{1,4}")  # BU-Schlüssel: DATEV's regex allows up to 4 digits
_AUTOMATIC_OFF = "40"  # accounts.md §4: BU 40 "Aufhebung der Automatik" is meant for them
# UNCERTAIN: datev.md names no length for KOST1; 36 is OCA's limit for the column.
_COST_CENTER_MAX = 36
# datev.md §3 columns 48-87 "Zusatzinformation Art/Inhalt: free notes, pairs" -- the free text
# field the Amazon order id goes into; both halves are filled, as for Beleginfo.
_ORDER_ID_KIND = '"Bestellnummer"'
# datev.md §3 column 40: "Greece = EL", DATEV writes the VAT-id prefix, not the ISO code.
_DATEV_COUNTRY = {country: "EL" if country == "GR" else country for country in EU_COUNTRIES}
_EU_VAT = re.compile(r"([A-Z]{2})([0-9A-Z+*]{2,13})")  # VAT id: prefix, then at most 13 (datev.md §4)
_RATE_LIMIT = Decimal(100)
_CURRENCY = re.compile(r"[A-Z]{3}")

# accounts.md §1 and §3: the default automatic accounts (built-in tax function, "AM") at G/L
# length 4. Every advisor configures the client, so callers pass their own set when they know it.
DEFAULT_AUTOMATIC_ACCOUNTS: dict[str, frozenset[str]] = {
    "SKR03": frozenset({"8400", "8300", "8125", "8120", "3123"}),  # 3123: UNCERTAIN per accounts.md
    "SKR04": frozenset({"4400", "4300", "4125", "4120", "5923"}),  # 5923: UNCERTAIN per accounts.md
}
_CHARTS = {"SKR03": "03", "SKR04": "04"}  # datev.md §2 field 27


@dataclass(frozen=True, slots=True)
class Booking:
    """One line of a Buchungsstapel (datev.md §3): ``amount`` on ``account`` at ``debit_credit``,
    the contra account gets the other side. Plain values; ``write_extf`` checks them."""

    amount: Decimal  # Umsatz (ohne Soll/Haben-Kz): positive, 2 decimals, gross with a tax key
    debit_credit: str  # Soll/Haben-Kennzeichen: "S" or "H", the side of ``account``
    account: str  # Konto
    contra_account: str  # Gegenkonto (ohne BU-Schlüssel)
    date: date  # Belegdatum
    document: str  # Belegfeld 1, the invoice number (OPOS matching key)
    text: str  # Buchungstext
    tax_key: str = ""  # BU-Schlüssel, only for accounts without automatic tax
    document2: str = ""  # Belegfeld 2
    currency: str = "EUR"  # WKZ Umsatz
    cost_center: str = ""  # KOST1 - Kostenstelle
    order_id: str = ""  # Zusatzinformation 1 ("Bestellnummer")
    # OSS (EU distance sale taxed in the destination): EU-Land u. UStID (Bestimmung), the ISO
    # code of the destination, and EU-Steuersatz (Bestimmung), its rate in percent. Both or none.
    eu_country: str = ""
    eu_rate: Decimal | None = None
    # Intra-Community supply (B2B): the buyer's VAT id with its country prefix ("FR12345678901"),
    # written whole into EU-Land u. UStID (Bestimmung); not together with ``eu_country``.
    eu_vat_id: str = ""


@dataclass(frozen=True, slots=True)
class BatchHeader:
    """The header line (Vorlaufsatz, datev.md §2) of an EXTF file; bookings and debtors share it."""

    consultant_number: int  # Beraternummer, field 11
    client_number: int  # Mandantennummer, field 12
    fiscal_year_start: date  # WJ-Beginn, field 13
    account_length: int  # Sachkontenlänge, field 14
    date_from: date  # Datum vom, field 15
    date_to: date  # Datum bis, field 16
    description: str  # Bezeichnung, field 17
    created_at: datetime  # Erzeugt am, field 6
    initials: str  # Diktatkürzel, field 18
    chart: str = "SKR03"  # Sachkontenrahmen, field 27
    currency: str = "EUR"  # WKZ, field 22
    locked: bool = False  # Festschreibung, field 21 (and column 114 of every row)
    # "caturactl" as the sender goes into field 9 (Exportiert von, text 25) and field 31
    # (Anwendungsinformation, text 16): field 8 (Herkunft) is a 2-letter code, "RE" in DATEV's
    # example, and DATEV replaces it on import anyway.
    exported_by: str = "caturactl"
    application_info: str = "caturactl"
    origin: str = "RE"


@dataclass(frozen=True, slots=True)
class Debtor:
    """A personal account (Debitor; a Kreditor number is written the same way) as master data,
    datev.md §4. ``is_company`` picks the Adressattyp: a company name, or a person's name."""

    account: str  # Konto: one digit longer than the G/L length
    name: str  # company name, or a person's family name
    is_company: bool = False
    first_name: str = ""  # persons only
    street: str = ""
    postal_code: str = ""
    city: str = ""
    country: str = ""  # ISO 3166 alpha-2
    vat_id: str = ""  # with its country prefix, "DE123456789"; split into EU-Land and EU-UStID
    email: str = ""


# --- Header --------------------------------------------------------------------------------------


def _quoted(value: str) -> str:
    # datev.md §1: text fields always in double quotes, an embedded quote doubled.
    return '"' + value.replace('"', '""') + '"'


def _header_text(value: str, limit: int, field: str) -> str:
    where = f"header: {field}"
    value = cp1252_text(clean_text(value, where), where)
    if len(value) > limit:
        raise InputError(f"{value!r} is {len(value)} characters, DATEV takes at most {limit} "
                         f"(datev.md §2)", where=where)
    return _quoted(value)


def _fiscal_year_end(start: date) -> date:
    try:
        return start.replace(year=start.year + 1) - timedelta(days=1)
    except ValueError:  # a fiscal year starting on 29 February
        return date(start.year + 1, 3, 1) - timedelta(days=1)


def _check_header(header: BatchHeader, *, bookings: bool) -> None:
    def refuse(field: str, message: str) -> None:
        raise InputError(message, where=f"header: {field}")

    if not 1001 <= header.consultant_number <= 9999999:
        refuse("consultant_number", "Beraternummer must be 1001-9999999 (datev.md §2 field 11)")
    if not 1 <= header.client_number <= 99999:
        refuse("client_number", "Mandantennummer must be 1-99999 (datev.md §2 field 12)")
    if not 4 <= header.account_length <= 8:
        refuse("account_length", "Sachkontenlänge must be 4-8 (datev.md §2 field 14)")
    if header.chart not in _CHARTS:
        refuse("chart", f"{header.chart!r} is not one of {sorted(_CHARTS)} (datev.md §2 field 27)")
    if not _CURRENCY.fullmatch(header.currency):
        refuse("currency", f"{header.currency!r} is not an ISO currency code "
                           f"(datev.md §2 field 22)")
    if len(header.origin) != 2 or not header.origin.isascii() or not header.origin.isalpha():
        refuse("origin", "Herkunft is a 2-letter code such as 'RE' (datev.md §2 field 8)")
    if bookings:
        if header.date_from > header.date_to:
            refuse("date_to", "Datum bis lies before Datum vom")
        # datev.md §1: a batch must not cross a fiscal year.
        if not (header.fiscal_year_start <= header.date_from
                and header.date_to <= _fiscal_year_end(header.fiscal_year_start)):
            refuse("date_from", f"{header.date_from}..{header.date_to} is not inside the fiscal "
                                f"year starting {header.fiscal_year_start} (datev.md §1)")


def _timestamp(moment: datetime) -> str:
    # datev.md §2 field 6: YYYYMMDDHHMMSSmmm, 17 digits with milliseconds.
    return f"{moment:%Y%m%d%H%M%S}{moment.microsecond // 1000:03d}"


def header_line(header: BatchHeader, *, debtors: bool = False) -> str:
    """The 31-field header line (datev.md §2, header version 700) without its line end, for a
    booking batch or (``debtors``) for Debitoren/Kreditoren; raises InputError("header: field")."""
    _check_header(header, bookings=not debtors)
    if debtors:
        # datev.md §4 and the DATEV example in §2: no date range, label, initials, booking type,
        # purpose or lock; WKZ written as "".
        kind = f'16;"Debitoren/Kreditoren";{DEBTOR_FORMAT_VERSION}'
        batch = ';;"";"";;;;""'
    else:
        kind = f'21;"Buchungsstapel";{BOOKING_FORMAT_VERSION}'
        batch = (f"{header.date_from:%Y%m%d};{header.date_to:%Y%m%d};"
                 f"{_header_text(header.description, 30, 'description')};"
                 f"{_header_text(header.initials, 2, 'initials')};"
                 # 19 Buchungstyp 1 = Finanzbuchführung; 20 Rechnungslegungszweck 0 = normal case
                 f"1;0;{int(header.locked)};{_quoted(header.currency)}")
    fields = [
        '"EXTF"', "700", kind,  # 1-5: EXTF, not DTVF, which is DATEV's own
        _timestamp(header.created_at),
        "",  # 7 Importiert: set by DATEV
        _quoted(header.origin),
        _header_text(header.exported_by, 25, "exported_by"),
        '""',  # 10 Importiert von
        str(header.consultant_number), str(header.client_number),
        f"{header.fiscal_year_start:%Y%m%d}", str(header.account_length),
        batch,
        "", '""', "", "",  # 23 reserviert, 24 Derivatskennzeichen, 25-26 reserviert
        _quoted(_CHARTS[header.chart]),
        "", "", '""',  # 28 Branchenlösung, 29-30 reserviert
        _header_text(header.application_info, 16, "application_info"),
    ]
    return ";".join(fields)


def extf_file_name(header: BatchHeader) -> str:
    """``EXTF_Buchungsstapel_<from>_<to>.csv`` (dates YYYYMMDD): datev.md §1 wants ``EXTF_`` and
    ``.csv``, and one file per period, so the period names the file."""
    return f"EXTF_Buchungsstapel_{header.date_from:%Y%m%d}_{header.date_to:%Y%m%d}.csv"


def debtors_file_name(header: BatchHeader) -> str:
    """``EXTF_Debitoren_Kreditoren_<created>.csv``: master data has no period, so the creation
    time tells two exports apart; "/" of the format name cannot stand in a file name."""
    return f"EXTF_Debitoren_Kreditoren_{header.created_at:%Y%m%d%H%M%S}.csv"


# --- Bookings ------------------------------------------------------------------------------------


def _col(caption: str) -> int:
    return BOOKING_CAPTIONS.index(caption) + 1


def _gap(before: str, after: str) -> str:
    """The separators between two written columns (the empty columns between them included)."""
    return ";" * (_col(after) - _col(before))


# The row is hand-joined from these gaps: one f-string per booking is what keeps a million rows
# within twice the time of a bare csv.writer.
_G_CUR_KONTO = _gap("WKZ Umsatz", "Konto")
_G_DOC2_TEXT = _gap("Belegfeld 2", "Buchungstext")
_G_TEXT_KOST = _gap("Buchungstext", "KOST1 - Kostenstelle")
_G_KOST_EU = _gap("KOST1 - Kostenstelle", "EU-Land u. UStID (Bestimmung)")
_G_EU_ZUSATZ = _gap("EU-Steuersatz (Bestimmung)", "Zusatzinformation - Art 1")
_G_ZUSATZ_LOCK = _gap("Zusatzinformation- Inhalt 1", "Festschreibung")
_TAIL = ";" * (len(BOOKING_CAPTIONS) - _col("Festschreibung")) + "\r\n"  # CRLF: datev.md §1
assert _col("Zusatzinformation- Inhalt 1") == _col("Zusatzinformation - Art 1") + 1
assert _col("EU-Land u. UStID (Bestimmung)") == 40 and _col("EU-Steuersatz (Bestimmung)") == 41  # datev.md §3

_FLUSH_ROWS = 2048  # rows per write: few calls into the text layer, memory stays constant


def _date_codes(start: date, end: date) -> dict[date, str]:
    # datev.md §3 column 10: Belegdatum is TTMM with leading zeros, the year comes from the
    # header; dates outside fields 15-16 are not in this table, so one lookup checks and formats.
    codes = {}
    day = start
    while day <= end:
        codes[day] = f"{day:%d%m}"
        day += timedelta(days=1)
    return codes


def _refuse(n: int, field: str, message: str) -> InputError:
    return InputError(message, where=f"booking {n}: {field}")


def _amount_text(amount: Decimal, n: int) -> str:
    try:
        cents = amount.quantize(_CENT)
    except (AttributeError, InvalidOperation):
        raise _refuse(n, "amount", f"{amount!r} is not a finite Decimal") from None
    if cents != amount:
        raise _refuse(n, "amount", f"{amount} has more than 2 decimals (datev.md §3 column 1)")
    if cents <= 0:
        raise _refuse(n, "amount", f"{amount} is not positive; DATEV amounts are always positive "
                                   f"and a negative one flips S/H (datev.md §3)")
    if cents >= _AMOUNT_LIMIT:
        raise _refuse(n, "amount", f"{amount} has more than 10 integer digits (datev.md §3)")
    # An exponent of -2 always prints without exponent, exactly two decimals: "1234.56".
    return str(cents).replace(".", ",")


# Character -> its Windows-1252 stand-in, filled from cp1252_text one character at a time.
_TRANSLITERATED: dict[int, str] = {}


def _cp1252(value: str, where: str) -> str:
    """``value`` as cp1252_text makes it, but with the work done once per distinct character
    instead of once per character of every text: a million Polish names stay fast."""
    if value.isascii():
        return value
    try:
        value.encode("cp1252")
        return value
    except UnicodeEncodeError:
        pass
    value = unicodedata.normalize("NFC", value).translate(_TRANSLITERATED)
    while True:
        try:
            value.encode("cp1252")
            return value
        except UnicodeEncodeError as error:
            char = value[error.start]
            # Raises InputError(where) for a character with no Latin form (Cyrillic, CJK).
            _TRANSLITERATED[ord(char)] = cp1252_text(char, where)
            value = value.translate(_TRANSLITERATED)


def _free_text(value: str, limit: int, n: int, field: str) -> str:
    where = f"booking {n}: {field}"
    # datev.md §1: no line breaks or control characters; Windows-1252, so PL/CZ letters are
    # transliterated (carriers/text_encoding, the project's one way) and anything without a
    # Latin form is refused there. Tax advisors open these files in a spreadsheet too: a text
    # that would run as a formula there gets the apostrophe (counted in DATEV's limit).
    value = guard_formula(_cp1252(clean_text(value, where), where))
    if len(value) > limit:
        raise InputError(f"{value!r} is {len(value)} characters, DATEV takes at most {limit} "
                         f"(datev.md §3)", where=where)
    if '"' in value:
        value = value.replace('"', '""')
    return '"' + value + '"'


# VAT-id prefixes of the member states: the ISO codes, but Greece writes EL (datev.md §3 column 40).
_VAT_PREFIXES = frozenset(_DATEV_COUNTRY.values())


def _eu_vat_id_cells(vat_id: str, n: int) -> str:
    """Columns 40 and 41 of an intra-Community supply (datev.md §3): the buyer's full VAT id in
    column 40 (quoted text, Greece "EL"), column 41 empty: the supply is tax-free, no rate."""
    vat = vat_id.replace(" ", "").upper()
    m = _EU_VAT.fullmatch(vat)
    prefix = m and ("EL" if m[1] == "GR" else m[1])
    if prefix not in _VAT_PREFIXES:
        raise _refuse(n, "eu_vat_id", f"{vat_id!r} is not a VAT id of an EU member state: its country "
                                      f"prefix and at most 13 letters or digits (datev.md §3 column 40)")
    return f'"{prefix}{m[2]}";'


def _eu_cells(country: str, rate: Decimal | None, n: int) -> str:
    """Columns 40 and 41 of an OSS booking (datev.md §3): the destination as DATEV writes it
    (quoted text, Greece "EL") and its rate with two decimals and a decimal comma ("22,00")."""
    datev_country = _DATEV_COUNTRY.get(country)
    if datev_country is None:
        raise _refuse(n, "eu_country", f"{country!r} is not the ISO code of an EU member state "
                                       f"(datev.md §3 column 40)")
    if rate is None:
        raise _refuse(n, "eu_rate", "an OSS booking needs the destination's rate with its country "
                                    "(datev.md §3 column 41)")
    try:
        percent = rate.quantize(_CENT)
    except (AttributeError, InvalidOperation):
        raise _refuse(n, "eu_rate", f"{rate!r} is not a finite Decimal") from None
    if percent != rate or not 0 < percent < _RATE_LIMIT:
        raise _refuse(n, "eu_rate", f"{rate} is not a rate in percent above 0 and below 100 with at "
                                    f"most 2 decimals (datev.md §3 column 41)")
    return f'"{datev_country}";{str(percent).replace(".", ",")}'


class _AccountCheck:
    """Accounts seen so far, so each distinct account is checked once, not once per row."""

    def __init__(self, length: int) -> None:
        self.length = length
        self.ok: set[str] = set()

    def __call__(self, account: str, n: int, field: str) -> None:
        # datev.md §3 column 7: digits only; G/L accounts have the header's length, personal
        # accounts (debitors/creditors) exactly one digit more.
        if (not isinstance(account, str) or not account.isascii() or not account.isdigit()
                or len(account) not in (self.length, self.length + 1)):
            raise _refuse(n, field, f"{account!r} is not a {self.length}-digit G/L account or a "
                                    f"{self.length + 1}-digit personal account (datev.md §3)")
        self.ok.add(account)


def write_extf(header: BatchHeader, bookings: Iterable[Booking], out: BinaryIO, *,
               automatic_accounts: Collection[str] | None = None) -> int:
    """Write ``bookings`` as an EXTF Buchungsstapel (datev.md §1-§3) to ``out`` and return the
    number of booking rows. Streams: memory does not grow with the number of bookings.

    ``automatic_accounts`` are the accounts with built-in tax; a tax key on one of them is refused
    (except 40, which switches the automatic off). Default: accounts.md's defaults for the chart.
    Raises InputError("header: field") or InputError("booking n: field", n counted from 1); the
    output is then incomplete and must be discarded.
    """
    head = header_line(header)
    if automatic_accounts is None:
        padding = "0" * (header.account_length - 4)  # accounts.md: longer charts append zeros
        automatic = frozenset(a + padding for a in DEFAULT_AUTOMATIC_ACCOUNTS[header.chart])
    else:
        automatic = frozenset(automatic_accounts)
    date_codes = _date_codes(header.date_from, header.date_to)
    sides = _SIDES
    currency = header.currency
    currency_cell = _quoted(currency)
    lock = "1" if header.locked else "0"  # column 114 written on every row: see below
    # UNCERTAIN (datev.md §3 column 114): an empty per-row Festschreibung may count as locked in
    # format 13, so the header's choice is repeated explicitly on each row.
    check_account = _AccountCheck(header.account_length)
    accounts_ok = check_account.ok
    tax_keys_ok: set[str] = set()

    text = io.TextIOWrapper(out, encoding="cp1252", errors="strict", newline="")
    try:
        # datev.md §1/§3: line 1 header, line 2 captions (unquoted in DATEV's example), CRLF.
        text.write(head + "\r\n" + ";".join(BOOKING_CAPTIONS) + "\r\n")
        lines: list[str] = []
        n = 0
        for n, b in enumerate(bookings, 1):
            amount = _amount_text(b.amount, n)
            side = sides.get(b.debit_credit)
            if side is None:
                raise _refuse(n, "debit_credit", f"{b.debit_credit!r} is not 'S' or 'H' "
                                                 f"(datev.md §3 column 2)")
            account, contra = b.account, b.contra_account
            if account not in accounts_ok:
                check_account(account, n, "account")
            if contra not in accounts_ok:
                check_account(contra, n, "contra_account")
            day = date_codes.get(b.date) if type(b.date) is date else None
            if day is None:
                raise _refuse(n, "date", f"{b.date!r} is not a date from {header.date_from} to "
                                         f"{header.date_to}, the header's range (datev.md §3 "
                                         f"column 10)")
            document = b.document
            if not (document.isascii() and _DOCUMENT.fullmatch(document)):
                raise _refuse(n, "document", f"Belegfeld 1 {document!r} must be at most 36 "
                                             f"letters, digits or $%&*+-/ (datev.md §3 column 11)")
            if b.currency != currency:
                # datev.md §3 columns 3-6: a foreign amount needs Kurs and Basis-Umsatz, which a
                # Booking does not carry; refused instead of written without them.
                raise _refuse(n, "currency", f"{b.currency!r} differs from the batch currency "
                                             f"{currency!r}; foreign-currency bookings are not "
                                             f"supported")
            tax_key = b.tax_key
            if tax_key:
                if tax_key not in tax_keys_ok:
                    if not _TAX_KEY.fullmatch(tax_key):
                        raise _refuse(n, "tax_key", f"BU-Schlüssel {tax_key!r} must be 1-4 "
                                                    f"digits (datev.md §3 column 9)")
                    tax_keys_ok.add(tax_key)
                if tax_key != _AUTOMATIC_OFF and (account in automatic or contra in automatic):
                    raise _refuse(n, "tax_key", f"BU-Schlüssel {tax_key} on automatic account "
                                                f"{account if account in automatic else contra}: "
                                                f"DATEV rejects or double-counts it (datev.md §3 "
                                                f"column 9)")
                tax_cell = '"' + tax_key + '"'
            else:
                tax_cell = '""'
            document2 = _free_text(b.document2, _DOCUMENT2_MAX, n, "document2") \
                if b.document2 else '""'
            booking_text = _free_text(b.text, _TEXT_MAX, n, "text")
            cost = _free_text(b.cost_center, _COST_CENTER_MAX, n, "cost_center") \
                if b.cost_center else '""'
            if b.order_id:
                order = _ORDER_ID_KIND + ";" + _free_text(b.order_id, 210, n, "order_id")
            else:
                order = '"";""'
            if b.eu_vat_id:
                if b.eu_country or b.eu_rate is not None:
                    raise _refuse(n, "eu_vat_id", "a booking names either the buyer's VAT id or an OSS "
                                                  "country and rate: both go to column 40 (datev.md §3)")
                eu = _eu_vat_id_cells(b.eu_vat_id, n)
            elif b.eu_country or b.eu_rate is not None:
                eu = _eu_cells(b.eu_country, b.eu_rate, n)
            else:
                eu = ";"
            lines.append(
                f'{amount};{side};{currency_cell}{_G_CUR_KONTO}{account};{contra};{tax_cell};'
                f'{day};"{document}";{document2}{_G_DOC2_TEXT}{booking_text}{_G_TEXT_KOST}'
                f'{cost}{_G_KOST_EU}{eu}{_G_EU_ZUSATZ}{order}{_G_ZUSATZ_LOCK}{lock}{_TAIL}')
            if len(lines) >= _FLUSH_ROWS:
                text.write("".join(lines))
                lines.clear()
        text.write("".join(lines))
        text.flush()
        return n
    finally:
        text.detach()  # the caller owns ``out``; closing the wrapper would close it


# --- Debtors -------------------------------------------------------------------------------------

_DEBTOR_COLUMNS = {caption: i for i, caption in enumerate(DEBTOR_CAPTIONS)}


def write_debtors(header: BatchHeader, debtors: Iterable[Debtor], out: BinaryIO) -> int:
    """Write ``debtors`` as EXTF Debitoren/Kreditoren master data (datev.md §2, §4) to ``out``
    and return the number of rows. Raises InputError("header: field") or InputError("debtor n:
    field"); the output is then incomplete and must be discarded."""
    head = header_line(header, debtors=True)
    personal_length = header.account_length + 1
    text = io.TextIOWrapper(out, encoding="cp1252", errors="strict", newline="")
    try:
        text.write(head + "\r\n" + ";".join(DEBTOR_CAPTIONS) + "\r\n")
        n = 0
        for n, d in enumerate(debtors, 1):
            text.write(";".join(_debtor_row(d, n, personal_length)) + "\r\n")
        text.flush()
        return n
    finally:
        text.detach()


def _debtor_row(d: Debtor, n: int, personal_length: int) -> list[str]:
    def cell(value: str, field: str, limit: int | None = None) -> str:
        where = f"debtor {n}: {field}"
        value = guard_formula(cp1252_text(clean_text(value, where), where))  # as in _free_text
        if limit is not None and len(value) > limit:
            raise InputError(f"{value!r} is {len(value)} characters, DATEV takes at most {limit} "
                             f"(datev.md §4)", where=where)
        return _quoted(value)

    # datev.md §3 column 7 / §4 column 1: a personal account is one digit longer than G/L.
    if not (d.account.isascii() and d.account.isdigit() and len(d.account) == personal_length):
        raise InputError(f"{d.account!r} is not a {personal_length}-digit personal account "
                         f"(datev.md §4)", where=f"debtor {n}: account")
    row = [""] * len(DEBTOR_CAPTIONS)
    row[0] = d.account  # a number: unquoted (datev.md §1)
    if not d.name.strip():
        raise InputError("a debtor needs a name", where=f"debtor {n}: name")
    if d.is_company:
        row[_DEBTOR_COLUMNS["Name (Adressattyp Unternehmen)"]] = cell(d.name, "name", 50)
        kind = "2"
    else:
        row[_DEBTOR_COLUMNS["Name (Adressattyp natürl. Person)"]] = cell(d.name, "name", 30)
        # UNCERTAIN: datev.md gives no limit for Vorname; 30 as for the family name (OCA).
        row[_DEBTOR_COLUMNS["Vorname (Adressattyp natürl. Person)"]] = cell(
            d.first_name, "first_name", 30)
        kind = "1"
    # datev.md §4: Adressattyp 1 = natürliche Person, 2 = Unternehmen. UNCERTAIN: datev.md does
    # not say whether the field is text or number; quoted as OCA writes it.
    row[_DEBTOR_COLUMNS["Adressattyp"]] = _quoted(kind)
    if d.vat_id:
        vat = d.vat_id.replace(" ", "").upper()
        if not (m := _EU_VAT.fullmatch(vat)):
            raise InputError(f"{d.vat_id!r} is not a VAT id with a 2-letter prefix and at most "
                             f"13 further characters (datev.md §4)", where=f"debtor {n}: vat_id")
        row[_DEBTOR_COLUMNS["EU-Land"]] = _quoted(m[1])
        row[_DEBTOR_COLUMNS["EU-UStID"]] = _quoted(m[2])  # "without country prefix"
    if d.street or d.postal_code or d.city:
        row[_DEBTOR_COLUMNS["Adressart"]] = '"STR"'  # datev.md §4: STR street, PF P.O. box
    # UNCERTAIN: datev.md gives no lengths for address and e-mail columns; not limited here.
    row[_DEBTOR_COLUMNS["Straße"]] = cell(d.street, "street")
    row[_DEBTOR_COLUMNS["Postleitzahl"]] = cell(d.postal_code, "postal_code")
    row[_DEBTOR_COLUMNS["Ort"]] = cell(d.city, "city")
    row[_DEBTOR_COLUMNS["Land"]] = cell(d.country.strip().upper(), "country", 2)
    row[_DEBTOR_COLUMNS["E-Mail"]] = cell(d.email, "email")
    return row
