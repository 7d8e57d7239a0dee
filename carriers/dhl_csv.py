"""DHL Geschäftskundenportal (GKP) "Versenden" CSV: one delivery note as the rows DHL imports.

Why it looks the way it does (reference/carriers/formats.md §2 and sample-dhl-gkp-import.csv):
no public field specification of the GKP import exists, so the columns, their order and the
quoting are those of the composed sample, which mirrors a public integration; confirm against
the template inside the GKP before relying on it **(u)**. Windows-1252, ";" and doubled inner
quotes follow the published DHL Online Frankierung spec (formats.md §1), which the GKP import
shares in practice.

One row per parcel: DHL makes one label per row, so a two-parcel delivery is two rows whose
Sendungsreferenz carries a running suffix ("L000123-01", "-02"), the convention formats.md §3a
documents for GLS hand-over files; a single parcel keeps the bare delivery id so that the
tracking confirmation matches it directly.
"""

from __future__ import annotations

import re
from decimal import ROUND_UP, Decimal

from caturactl.core.errors import InputError
from caturactl.core.address import Address, street_parts
from caturactl.ports import Parcel, RenderedFile, ShipmentDocument
from caturactl.core.spreadsheet import guard_formula
from carriers.text_encoding import clean_text, cp1252_text, file_name_part, fit

# The header of reference/carriers/sample-dhl-gkp-import.csv, in that order.
HEADER: tuple[str, ...] = (
    "Sendungsreferenz", "Sendungsdatum",
    "Name_1_Absender", "Strasse_Absender", "Hausnummer_Absender", "PLZ_Absender",
    "Ort_Absender", "Land_Absender",
    "Name_1_Empfaenger", "Name_2_Postnummer_Empfaenger", "Name_3_Empfaenger",
    "Strasse_Empfaenger", "Hausnummer_Empfaenger", "Adresszusatz_1_Empfaenger",
    "PLZ_Empfaenger", "Ort_Empfaenger", "Provinz_Empfaenger", "Land_Empfaenger",
    "E_Mail_Adresse_Empfaenger", "Telefonnummer_Empfaenger",
    "Gewicht", "Laenge", "Breite", "Hoehe",
    "Produkt_und_Servicekennzeichnung", "Abrechnungsnummer",
)

# Field lengths: formats.md §1 quotes them from a public Odoo exporter for DHL Online
# Frankierung ("names/street 50, house number 11, PLZ 11, city 38, product 30") and marks them
# uncertain (u); no GKP figures are published, so these are the best known limits, not DHL's.
NAME_MAX = 50
STREET_MAX = 50
HOUSE_NUMBER_MAX = 11
POSTAL_CODE_MAX = 11
CITY_MAX = 38
PRODUCT_MAX = 30


# formats.md §2: Abrechnungsnummer = EKP (10) + Verfahren (2) + Teilnahme (2), 14 digits.
_BILLING_NUMBER = re.compile(r"\d{14}")
# DHL PostNummer 6-10 digits: the rule caturactl.core.address.postnummer applies.
_POSTNUMMER = re.compile(r"\d{6,10}")
# A phone number of digits and separators cannot call a function or DDE even if a spreadsheet
# evaluates "+49 ..." as arithmetic, and the sample writes "+431234567" as is; anything else
# in the phone field gets the formula guard like every other text.
_PHONE = re.compile(r"\+?[0-9][0-9 ()/.-]*")
_COUNTRY = re.compile(r"[A-Z]{2}")
_GRAMS_PER_KG = Decimal(1000)
_TEN_GRAMS = Decimal("0.01")

_LINE_END = "\r\n"
_HEADER_LINE = ";".join(HEADER)  # unquoted, as in the sample; the names hold no ";" or '"'


def _quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


class _Fields:
    """Turns one document's values into cells, naming the column in every error."""

    __slots__ = ("delivery_id",)

    def __init__(self, delivery_id: str) -> None:
        self.delivery_id = delivery_id

    def where(self, column: str) -> str:
        return f"{self.delivery_id}.{column}"

    def text(self, value: str, column: str, source: str, limit: int | None = None,
             required: bool = False) -> str:
        where = self.where(column)
        cell = guard_formula(cp1252_text(clean_text(value, where), where))
        if required and not cell:
            raise InputError(f"{source} is empty; DHL needs {column}", where=where)
        if limit is not None:  # after the guard: its apostrophe is part of what DHL receives
            fit(cell, limit, where, what=source)
        return cell

    def exact(self, value: str, column: str, source: str) -> str:
        """A value that must arrive unchanged (e-mail, phone): no transliteration."""
        where = self.where(column)
        cell = clean_text(value, where)
        try:
            cell.encode("cp1252")
        except UnicodeEncodeError:
            raise InputError(f"{source} {cell!r} cannot be written in Windows-1252, and changing "
                             f"it would make it another address", where=where) from None
        return cell

    def country(self, value: str, column: str, source: str) -> str:
        code = value.strip().upper()
        if not _COUNTRY.fullmatch(code):
            raise InputError(f"{source} {value!r} is not an ISO 3166-1 alpha-2 code",
                             where=self.where(column))
        return code

    def street(self, address: Address, prefix: str, suffix: str) -> tuple[str, str]:
        street, number, _ = street_parts(address)
        return (self.text(street, f"Strasse_{suffix}", f"{prefix}.line1 (street)", STREET_MAX,
                          required=True),
                self.text(number, f"Hausnummer_{suffix}", f"{prefix}.line1 (house number)",
                          HOUSE_NUMBER_MAX))

    def parcel(self, parcel: Parcel, index: int) -> tuple[str, str, str, str]:
        source = f"parcel {index}"
        if parcel.weight_g <= 0:
            raise InputError(f"{source}.weight_g is {parcel.weight_g}; a parcel weighs something",
                             where=self.where("Gewicht"))
        for column, value in (("Laenge", parcel.length_cm), ("Breite", parcel.width_cm),
                              ("Hoehe", parcel.height_cm)):
            if value <= 0:
                raise InputError(f"{source} {column} is {value} cm", where=self.where(column))
        # Rounded up to 10 g: a declared weight below the real one could put the parcel in a
        # lower weight class than DHL then measures.
        kg = (Decimal(parcel.weight_g) / _GRAMS_PER_KG).quantize(_TEN_GRAMS, rounding=ROUND_UP)
        return f"{kg}", str(parcel.length_cm), str(parcel.width_cm), str(parcel.height_cm)


class DhlCsv:
    """DocumentFormat "dhl_csv": the GKP CSV import, one row per parcel, Windows-1252."""

    name = "dhl_csv"
    media_type = "text/csv"

    def render(self, doc: ShipmentDocument) -> RenderedFile:
        """``DHL_<delivery_id>.csv``: header plus one quoted row per parcel, CRLF, Windows-1252.

        Raises InputError(where="<delivery_id>.<column>") when a value is missing, too long for
        the column, has a character with no Windows-1252 form, or is not a valid code.
        """
        delivery_id = file_name_part(doc.delivery_id, f"{doc.delivery_id}.delivery_id")
        f = _Fields(delivery_id)
        if not doc.parcels:
            raise InputError("the delivery has no parcels; DHL needs one row per parcel",
                             where=f.where("Gewicht"))
        sender, to = doc.sender, doc.ship_to

        sender_street, sender_number = f.street(sender, "sender", "Absender")
        # A person's name goes first on the label; a company-only address puts the company there.
        name_1, name_3 = (to.name, to.company) if to.name.strip() else (to.company, "")
        if doc.postnummer and not _POSTNUMMER.fullmatch(doc.postnummer):
            raise InputError(f"postnummer {doc.postnummer!r} is not 6-10 digits",
                             where=f.where("Name_2_Postnummer_Empfaenger"))
        to_street, to_number = f.street(to, "ship_to", "Empfaenger")
        if not _BILLING_NUMBER.fullmatch(doc.billing_number):
            raise InputError(f"billing_number {doc.billing_number!r} is not the 14-digit DHL "
                             f"Abrechnungsnummer", where=f.where("Abrechnungsnummer"))
        phone = f.exact(to.phone, "Telefonnummer_Empfaenger", "ship_to.phone")
        if phone and not _PHONE.fullmatch(phone):
            phone = guard_formula(phone)

        head = [
            doc.ship_date.isoformat(),
            f.text(sender.company or sender.name, "Name_1_Absender", "sender.company/name",
                   NAME_MAX, required=True),
            sender_street,
            sender_number,
            f.text(sender.postal_code, "PLZ_Absender", "sender.postal_code", POSTAL_CODE_MAX,
                   required=True),
            f.text(sender.city, "Ort_Absender", "sender.city", CITY_MAX, required=True),
            f.country(sender.country, "Land_Absender", "sender.country"),
            f.text(name_1, "Name_1_Empfaenger", "ship_to.name", NAME_MAX, required=True),
            # formats.md §2: "For DHL Packstation/Postfiliale, Name 2 carries the Postnummer".
            doc.postnummer,
            f.text(name_3, "Name_3_Empfaenger", "ship_to.company", NAME_MAX),
            to_street,
            to_number,
            # The sample has one Adresszusatz column; a third address line (often "c/o") must
            # not be lost, so it shares the column and the street length limit.
            f.text(", ".join(x for x in street_parts(to)[2] if x.strip()),
                   "Adresszusatz_1_Empfaenger", "ship_to.line2/line3", STREET_MAX),
            f.text(to.postal_code, "PLZ_Empfaenger", "ship_to.postal_code", POSTAL_CODE_MAX,
                   required=True),
            f.text(to.city, "Ort_Empfaenger", "ship_to.city", CITY_MAX, required=True),
            # formats.md §2: US states must be in "Provinz" for CSV imports.
            f.text(to.state, "Provinz_Empfaenger", "ship_to.state"),
            f.country(to.country, "Land_Empfaenger", "ship_to.country"),
            # An address starting with "=" or "-" is legal but never seen; a formula is worse.
            guard_formula(f.exact(doc.email, "E_Mail_Adresse_Empfaenger", "email")),
            phone,
        ]
        tail = [
            f.text(doc.service, "Produkt_und_Servicekennzeichnung", "service", PRODUCT_MAX,
                   required=True),
            doc.billing_number,
        ]
        quoted_head = ";".join(_quote(v) for v in head)
        quoted_tail = ";".join(_quote(v) for v in tail)

        lines = [_HEADER_LINE]
        several = len(doc.parcels) > 1
        for i, parcel in enumerate(doc.parcels, start=1):
            reference = f"{delivery_id}-{i:02d}" if several else delivery_id
            sizes = ";".join(_quote(v) for v in f.parcel(parcel, i))
            lines.append(f"{_quote(reference)};{quoted_head};{sizes};{quoted_tail}")
        lines.append("")  # the last row ends with CRLF too
        # Every cell went through cp1252_text or is ASCII, so strict encoding cannot fail on data.
        content = _LINE_END.join(lines).encode("cp1252")
        return RenderedFile(name=f"DHL_{delivery_id}.csv", content=content,
                            media_type=self.media_type)
