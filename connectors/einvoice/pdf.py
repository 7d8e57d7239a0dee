"""The visible invoice: an A4 PDF/A-3B drawn with fpdf2 from ``templates/invoices/layout.toml``.

Why it looks like this:

- PDF/A-3 is what a Factur-X/ZUGFeRD invoice must be so the CII XML may ride inside it
  (reference/accounting/invoice.md §7), and PDF/A forbids the non-embedded core fonts, so
  DejaVu Sans and DejaVu Sans Bold (Debian ``fonts-dejavu-core``) are embedded, subset per
  document (reference/accounting/libraries.md §1).
- Everything § 14 Abs. 4 UStG asks of a full invoice is printed (invoice.md §1): both parties'
  names and addresses, the seller's VAT id / tax number, issue date, number, quantity and
  description of each item, the date of supply, net amount and VAT per rate, the gross total,
  and the legal notes of ``doc.notes`` (intra-EU supply, reverse charge; § 14a UStG). A credit
  note is titled "Rechnungskorrektur", never "Gutschrift", and names the invoice it corrects by
  number and date (invoice.md §4, § 31 Abs. 5 UStDV), and says how the amount goes back to the
  buyer, as its XML does (``payment.py``). A discount (line allowance) is a row of its own under
  its item, so the page says what the XML says: the item at its price, then what was taken off.
- The footer carries the company's data once, its legal data from ``doc.footer`` (register,
  managing directors; § 35a GmbHG), and stays inside the margins and above the bottom edge.
- Where things go and what they are called lives in the layout file; this module knows the
  fields. Numbers, amounts and dates are formatted by Babel for the document's locale.

Speed. The naive way -- a new ``FPDF`` and ``add_font`` per invoice -- spends ~53 ms parsing
the two 700 kB TTF files and most of the rest subsetting them (reference/toolchain.md §7),
which caps a process at ~12 invoices/s. Here each font file is read once per process and cut
down (fontTools, hinting dropped) to the glyphs of Latin-script European text (~380 glyphs,
~25 kB); fpdf2's ``TTFFont`` is built once from that cut. Each document then gets its own
``TTFFont`` copied from it, with a *fresh* fontTools font parsed from the small cut and a fresh
subset map, so fpdf2's per-document subsetting -- which mutates the fontTools font in place and
writes the font descriptor -- touches nothing shared (see ``_Face.attach``). A document with a
character outside the cut (a Greek or Cyrillic name) uses a second, complete copy of the font,
built on first need. Layout is computed here (wrapping from the font's advance widths) and
drawn with ``FPDF.text``/``line``/``rect``: once the fonts are cached, fpdf2's ``table()`` and
``multi_cell`` line breaking cost more per invoice than the fonts do (bench/invoices.py).

The bytes depend only on the document: the creation date is the issue date, the XMP packet is
written here with that date (fpdf2's own would stamp "now" as ModifyDate), and fpdf2 derives the
file /ID from the content and the creation date. Rendering twice gives the same file.
"""

from __future__ import annotations

import copy
import logging
import math
import multiprocessing
import re
import tomllib
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from decimal import Decimal
from functools import lru_cache
from html import escape
from importlib import resources
from io import BytesIO
from pathlib import Path
from typing import Any, Iterable, Sequence

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, format_percent
from fontTools import subset as ftsubset
from fontTools import ttLib
from fpdf import FPDF, FPDF_VERSION
from fpdf.fonts import SubsetMap, TTFFont

from carriers.text_encoding import clean_text
from caturactl.core.errors import ConfigError, InputError
from caturactl.ports import InvoiceDocument, InvoiceParty
from connectors.einvoice.payment import (
    SEPA_CREDIT_TRANSFER,
    epc_qr,
    epc_transfer,
    payment_of,
    refund_text,
)

log = logging.getLogger(__name__)

FONT_PACKAGE = "fonts-dejavu-core"
DEFAULT_FONT_DIR = "/usr/share/fonts/truetype/dejavu"
_FAMILY = "dejavu"
_FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}
_MM_PER_PT = 25.4 / 72

# The characters of the cut every document starts with: Latin-1, Latin Extended-A (Polish,
# Czech, Hungarian, Turkish, ...), Romanian s/t with comma, the spaces Babel puts into numbers
# (U+00A0, U+202F), typographic quotes and dashes, and the currency signs.
_COMMON_CODEPOINTS = frozenset(
    [*range(0x20, 0x7F), *range(0xA0, 0x180), *range(0x218, 0x21C), *range(0x2000, 0x200B),
     *range(0x2010, 0x2028), 0x202F, 0x2030, 0x2039, 0x203A, *range(0x20A0, 0x20C0),
     0x2116, 0x2122, 0x2212])
# Tables a PDF viewer does not use for a CID TrueType font without text shaping; fpdf2 drops
# most of them per document anyway, dropping them from the cut saves parsing them per document.
_DROP_TABLES = ["FFTM", "GDEF", "GPOS", "GSUB", "MATH", "hdmx", "meta", "kern", "gasp", "VDMX",
                "LTSH", "PCLT", "DSIG"]


# --- fonts: parsed once per process, attached to every document ----------------------------

# What a per-document TTFFont shares with the template (set in TTFFont.__init__ and only read
# afterwards) and what it must own, because output() writes it: the fontTools font is subset in
# place, the descriptor gets the font name, the stream and its object id, the subset map and
# missing_glyphs collect this document's characters, cw gains entries on lookups of absent
# characters (defaultdict). If fpdf2 adds a slot we do not know, _CLONE_OK is False and every
# document builds its TTFFont with the constructor (slower, still correct).
_SHARED = frozenset({"type", "name", "glyph_ids", "sp", "ss", "up", "ut", "ttffile", "fontkey",
                     "emphasis", "scale", "cmap", "unicode_range", "palette_index",
                     "is_compressed", "is_cff", "is_cid_keyed", "is_symbol", "cff_ros",
                     "collection_font_number", "color_font"})
_PER_DOCUMENT = frozenset({"i", "desc", "ttfont", "subset", "missing_glyphs", "biggest_size_pt",
                           "_hbfont", "cw"})
_CLONE_OK = set(TTFFont.__slots__) == _SHARED | _PER_DOCUMENT


class _Face:
    """One style of the font cut down to some characters, parsed once, attachable to any FPDF."""

    def __init__(self, source: Path, style: str, codepoints: Iterable[int], copies: bool = True) -> None:
        # copies=False (or an fpdf2 whose font slots we do not know) builds each document's font
        # with fpdf2's own constructor: slower, always correct.
        self.copies = copies and _CLONE_OK
        font = ttLib.TTFont(source, recalcTimestamp=False)
        # Hinting (fpgm/prep/cvt and glyph programs) is half of DejaVu's bytes and a third of the
        # per-document subsetting time; print and today's PDF viewers do not need it.
        # Glyph names are kept so each document's parse reads them instead of deriving them from
        # the cmap; only the Windows Unicode cmap is kept, the one fontTools and fpdf2 read.
        options = ftsubset.Options(notdef_outline=True, recommended_glyphs=True, hinting=False,
                                   glyph_names=True)
        options.drop_tables += _DROP_TABLES
        subsetter = ftsubset.Subsetter(options)
        subsetter.populate(unicodes=codepoints)
        subsetter.subset(font)
        cmap = font["cmap"]
        windows = [t for t in cmap.tables if (t.platformID, t.platEncID) in ((3, 1), (3, 10))]
        if windows:
            cmap.tables = windows
        buffer = BytesIO()
        font.save(buffer)
        self.data = buffer.getvalue()
        self.style = style
        self.fontkey = _FAMILY + style
        self.template = TTFFont(FPDF(), BytesIO(self.data),  # type: ignore[arg-type]
                                self.fontkey, style)
        if self.template.color_font is not None or self.template.is_cff:
            raise ConfigError(f"{source} is not a plain TrueType font", where=str(source))
        self.codepoints = frozenset(self.template.cmap)
        self.widths: dict[int, float] = dict(self.template.cw)
        self.missing_width = float(self.template.desc.missing_width)

    def attach(self, pdf: FPDF) -> None:
        """Make this face available to ``pdf`` as if ``add_font`` had loaded it (same key)."""
        if not self.copies:
            pdf.fonts[self.fontkey] = TTFFont(pdf, BytesIO(self.data),  # type: ignore[arg-type]
                                              self.fontkey, self.style)
            return
        template = self.template
        font = TTFFont.__new__(TTFFont)
        for name in _SHARED:
            if hasattr(template, name):  # unicode_range is a slot fpdf2 never sets
                setattr(font, name, getattr(template, name))
        font.i = len(pdf.fonts) + 1
        font.desc = copy.copy(template.desc)
        font.cw = copy.copy(template.cw)
        # recalcBBoxes=False: glyphs are copied as stored instead of being decoded and encoded
        # again to recompute bounding boxes that subsetting does not change (the default of
        # fontTools' own pyftsubset); the head/hhea boxes stay those of the cut, a superset.
        font.ttfont = ttLib.TTFont(BytesIO(self.data), recalcTimestamp=False,
                                   recalcBBoxes=False, lazy=True)
        font._hbfont = None
        font.missing_glyphs = []
        font.biggest_size_pt = 0
        font.subset = SubsetMap(font)
        pdf.fonts[self.fontkey] = font

    def width(self, text: str, size_pt: float) -> float:
        """Advance width of ``text`` in mm at ``size_pt`` (no kerning, as fpdf2 draws it)."""
        widths, missing = self.widths, self.missing_width
        units = sum(widths.get(ord(c), missing) for c in text)
        return units * size_pt * _MM_PER_PT / 1000


class _Fonts:
    """DejaVu Sans regular and bold: the common cut built at once, the complete one on need."""

    def __init__(self, font_dir: str, copies: bool = True) -> None:
        self.copies = copies
        self.paths: dict[str, Path] = {}
        for style, name in _FONT_FILES.items():
            path = Path(font_dir) / name
            if not path.is_file():
                raise ConfigError(f"font file {path} is missing; install the Debian package "
                                  f"{FONT_PACKAGE} (apt-get install {FONT_PACKAGE}) or pass "
                                  f"font_dir", where=str(path))
            self.paths[style] = path
        self.common = {style: _Face(path, style, _COMMON_CODEPOINTS, copies)
                       for style, path in self.paths.items()}
        self._complete: dict[str, _Face] | None = None
        # What both styles can draw: the full cmaps, read without building the complete cut.
        covered = None
        for path in self.paths.values():
            cmap = frozenset(ttLib.TTFont(path, lazy=True).getBestCmap())
            covered = cmap if covered is None else covered & cmap
        self.covered: frozenset[int] = covered or frozenset()
        self.common_codepoints = frozenset.intersection(*(f.codepoints for f in self.common.values()))

    def faces_for(self, chars: set[str]) -> dict[str, _Face]:
        """The common cut when it has every character in ``chars``, else the complete font."""
        if all(ord(c) in self.common_codepoints for c in chars):
            return self.common
        if self._complete is None:
            log.info("building the complete DejaVu cut for a document with rare characters")
            self._complete = {style: _Face(path, style, self.covered, self.copies)
                              for style, path in self.paths.items()}
        return self._complete


@lru_cache(maxsize=4)
def _fonts(font_dir: str, copies: bool = True) -> _Fonts:
    # One parse per process and font directory, shared by every InvoicePdf.
    return _Fonts(font_dir, copies)


# --- layout ----------------------------------------------------------------------------------

_LABEL_KEYS = (
    "locale", "date_format", "invoice", "credit_note", "corrects", "continued", "number",
    "credit_note_number", "date", "supply_date", "order_id", "order_date", "channel",
    "customer_number", "buyer_vat_id", "delivery_ids", "buyer_reference", "page", "page_of",
    "ship_to", "col_position", "col_sku", "col_description", "col_quantity", "col_unit_net",
    "col_tax_rate", "col_net", "tax_rate", "tax_net", "tax_amount", "net_total", "tax_total",
    "gross_total", "prepaid", "due", "refunded", "to_refund", "notes", "payment", "phone", "email", "vat_id",
    "tax_number", "iban", "bic", "allowance", "incl_vat", "payee", "remittance", "amount", "qr_caption")
_COLUMN_FIELDS = ("position", "sku", "description", "quantity", "unit_net", "tax_rate", "net")
_INFO_ROWS = ("number", "date", "supply_date", "order_id", "order_date", "channel",
              "customer_number", "buyer_vat_id", "delivery_ids", "buyer_reference", "page")
# The numbers each block of the layout must give, checked when the layout is read so that a
# broken file fails at start, not at the first invoice.
_NUMBERS = {
    "company": ("x", "y", "width", "name_size", "font_size", "line_height"),
    "address_window": ("x", "width", "indent", "return_line_y", "return_size", "address_top",
                       "font_size", "line_height"),
    "info": ("x", "y", "label_width", "width", "font_size", "line_height"),
    "title": ("y", "font_size", "reference_size", "ship_to_size", "gap_after"),
    "table": ("font_size", "header_size", "line_height", "padding"),
    "taxes": ("x", "font_size", "line_height", "gap_before"),
    "totals": ("x", "label_width", "width", "font_size", "grand_size", "line_height", "gap_before"),
    "notes": ("font_size", "line_height", "gap_before"),
    "payment": ("qr_size", "qr_gap", "caption_size"),
    "footer": ("y", "bottom", "font_size", "line_height", "gap"),
}
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\.([a-z_]+)\}")
# Footer values that identify a line of company data wherever they stand: the city or the company
# name do not ("Amtsgericht Berlin-Charlottenburg" is legal data of a company in Berlin).
_DISTINCT_FIELDS = frozenset({"street", "vat_id", "tax_number", "email", "phone", "seller_bank",
                              "seller_iban", "seller_bic"})
_FOOTER_FIELDS = {
    "seller": ("name", "company", "street", "postal_code", "city", "country_name", "vat_id",
               "tax_number", "email", "phone", "contact"),
    "doc": ("seller_bank", "seller_iban", "seller_bic", "footer"),
}


class _Table:
    """One TOML table of the layout, read with the file and key named in every error."""

    def __init__(self, data: dict[str, Any], where: str) -> None:
        self.data = data
        self.where = where

    def _get(self, key: str) -> Any:
        if key not in self.data:
            raise ConfigError(f"missing key {key!r}", where=f"{self.where}.{key}")
        return self.data[key]

    def num(self, key: str) -> float:
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} must be a number, not {value!r}", where=f"{self.where}.{key}")
        return float(value)

    def text(self, key: str) -> str:
        value = self._get(key)
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, not {value!r}", where=f"{self.where}.{key}")
        return value

    def nums(self, key: str) -> tuple[float, ...]:
        value = self._get(key)
        if not isinstance(value, list) or not all(isinstance(v, (int, float)) for v in value):
            raise ConfigError(f"{key} must be a list of numbers", where=f"{self.where}.{key}")
        return tuple(float(v) for v in value)

    def texts(self, key: str) -> tuple[str, ...]:
        value = self._get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key} must be a list of strings", where=f"{self.where}.{key}")
        return tuple(value)

    def table(self, key: str) -> "_Table":
        value = self._get(key)
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a table", where=f"{self.where}.{key}")
        return _Table(value, f"{self.where}.{key}")

    def tables(self, key: str) -> list["_Table"]:
        value = self._get(key)
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise ConfigError(f"{key} must be an array of tables", where=f"{self.where}.{key}")
        return [_Table(v, f"{self.where}.{key}[{i}]") for i, v in enumerate(value)]

    def color(self, key: str) -> tuple[int, int, int]:
        value = self.nums(key)
        if len(value) != 3 or not all(0 <= v <= 255 for v in value):
            raise ConfigError(f"{key} must be [r, g, b] with 0-255", where=f"{self.where}.{key}")
        return int(value[0]), int(value[1]), int(value[2])


@dataclass(frozen=True)
class _Column:
    field: str
    width: float
    align: str  # "left" | "right"
    label: str  # key in the labels


@dataclass(frozen=True)
class _Labels:
    texts: dict[str, str]
    units: dict[str, str]  # UN/ECE rec. 20 code -> printed unit
    locale: Locale
    countries: dict[str, str]  # ISO 3166-1 alpha-2 -> name in this language


class _Layout:
    """The layout file, read and checked once; every error is a ConfigError naming the key."""

    def __init__(self, source: str, raw: bytes, logo_dir: Path | None) -> None:
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise ConfigError(f"not a valid TOML file: {err}", where=source) from err
        top = _Table(data, source)
        page = top.table("page")
        self.page_w, self.page_h = page.num("width"), page.num("height")
        self.left, self.right = page.num("margin_left"), page.num("margin_right")
        self.text_w = self.page_w - self.left - self.right
        self.content_top, self.content_bottom = page.num("content_top"), page.num("content_bottom")
        self.font_size, self.line_h = page.num("font_size"), page.num("line_height")
        self.rule_color, self.rule_w = page.color("rule_color"), page.num("rule_width")

        logo = top.table("logo")
        self.logo: bytes | None = None
        if name := logo.text("file"):
            # Next to a custom layout first, so a merchant's copy can bring its own logo; else
            # the packaged one.
            candidates = [logo_dir / name] if logo_dir else []
            candidates.append(resources.files("templates.invoices").joinpath(name))
            for candidate in candidates:
                if candidate.is_file():
                    self.logo = candidate.read_bytes()
                    break
            else:
                raise ConfigError(f"logo file {name!r} not found", where=f"{source}.logo.file")
        self.logo_x, self.logo_y, self.logo_w = logo.num("x"), logo.num("y"), logo.num("width")

        self.company = top.table("company")
        self.window = top.table("address_window")
        self.info = top.table("info")
        self.info_rows = self.info.texts("rows")
        for row in self.info_rows:
            if row not in _INFO_ROWS:
                raise ConfigError(f"unknown info row {row!r}; known: {', '.join(_INFO_ROWS)}",
                                  where=f"{source}.info.rows")
        self.title = top.table("title")
        self.table = top.table("table")
        self.header_fill = self.table.color("header_fill")
        self.columns: list[_Column] = []
        for col in self.table.tables("columns"):
            field, align = col.text("field"), col.text("align")
            if field not in _COLUMN_FIELDS:
                raise ConfigError(f"unknown column {field!r}; known: {', '.join(_COLUMN_FIELDS)}",
                                  where=f"{col.where}.field")
            if align not in ("left", "right"):
                raise ConfigError("align must be 'left' or 'right'", where=f"{col.where}.align")
            self.columns.append(_Column(field, col.num("width"), align, f"col_{field}"))
        if sum(c.width for c in self.columns) > self.text_w + 0.01:
            raise ConfigError(f"the columns are wider than the text width ({self.text_w:g} mm)",
                              where=f"{source}.table.columns")
        if "description" not in {c.field for c in self.columns}:
            raise ConfigError("the table needs a description column (§ 14 Abs. 4 Nr. 5 UStG)",
                              where=f"{source}.table.columns")
        self.taxes = top.table("taxes")
        self.tax_widths = self.taxes.nums("widths")
        if len(self.tax_widths) != 3:
            raise ConfigError("widths must give rate, net and VAT", where=f"{source}.taxes.widths")
        self.totals = top.table("totals")
        self.notes = top.table("notes")
        self.payment = top.table("payment")
        self.footer = top.table("footer")
        self.footer_columns: list[tuple[float, tuple[str, ...]]] = []
        for col in self.footer.tables("columns"):
            lines = col.texts("lines")
            for line in lines:
                for scope, name in _PLACEHOLDER.findall(line):
                    if scope == "label" or name in _FOOTER_FIELDS.get(scope, ()):
                        continue
                    raise ConfigError(f"unknown placeholder {{{scope}.{name}}}",
                                      where=f"{col.where}.lines")
            self.footer_columns.append((col.num("width"), lines))
        widths = sum(w for w, _ in self.footer_columns) + self.footer.num("gap") * (len(self.footer_columns) - 1)
        if widths > self.text_w + 0.01:
            # Wider than the text, the last column runs into the margin or off the page.
            raise ConfigError(f"the footer columns and gaps are {widths:g} mm wide, more than the "
                              f"text width ({self.text_w:g} mm)", where=f"{source}.footer.columns")

        for name, keys in _NUMBERS.items():
            block = top.table(name)
            for key in keys:
                block.num(key)
        self.labels: dict[str, _Labels] = {}
        for language, table in top.table("labels").data.items():
            self.labels[language] = self._labels(_Table(table, f"{source}.labels.{language}"))

    @staticmethod
    def _labels(table: _Table) -> _Labels:
        texts = {key: table.text(key) for key in _LABEL_KEYS}
        sample = {"number": "1", "date": "1", "title": "1", "page": 1, "pages": 1}
        for key in ("corrects", "continued", "page_of"):
            try:
                texts[key].format(**sample)
            except (KeyError, IndexError, ValueError) as err:
                raise ConfigError(f"bad placeholder in {texts[key]!r}: {err}",
                                  where=f"{table.where}.{key}") from err
        units = table.data.get("units", {})
        if not isinstance(units, dict) or not all(isinstance(v, str) for v in units.values()):
            raise ConfigError("units must map unit codes to strings", where=f"{table.where}.units")
        try:
            locale = Locale.parse(texts["locale"])
        except (ValueError, TypeError) as err:
            raise ConfigError(f"unknown locale {texts['locale']!r}",
                              where=f"{table.where}.locale") from err
        return _Labels(texts, dict(units), locale, dict(locale.territories))


# --- content: every printed string, checked and formatted -----------------------------------


class _Format:
    """Numbers, amounts and dates as the document's locale writes them (Babel/CLDR)."""

    def __init__(self, labels: _Labels, currency: str) -> None:
        self.locale = labels.locale
        self.date_format = labels.texts["date_format"]
        self.currency = currency

    def money(self, value: Decimal) -> str:
        return format_currency(value, self.currency, locale=self.locale)

    def unit_price(self, value: Decimal) -> str:
        # Up to 4 decimals (BT-146) and never rounded here; at least the currency's 2.
        value = value.normalize()
        if value.as_tuple().exponent > -2:  # type: ignore[operator]
            value = value.quantize(Decimal("0.01"))
        return format_currency(value, self.currency, locale=self.locale, decimal_quantization=False)

    def number(self, value: Decimal) -> str:
        return format_decimal(value.normalize(), locale=self.locale, decimal_quantization=False)

    def percent(self, rate: Decimal) -> str:
        return format_percent(rate / 100, locale=self.locale, decimal_quantization=False)

    def day(self, value: date) -> str:
        return format_date(value, self.date_format, locale=self.locale)


@dataclass
class _Content:
    """The invoice as strings, before anything is placed."""

    kind: str  # "Rechnung" / "Rechnungskorrektur"
    number: str
    title: str  # kind and number
    reference: str  # "zu Rechnung ... vom ..." or ""
    ship_to: str
    return_line: str
    company: list[str]  # first line is the name
    address: list[str]
    info: list[tuple[str, str]]  # (label, value); the "page" row's value is filled per page
    header: list[str]  # per column
    rows: list[list[list[str]]]  # per item: its row, then its discount row if any; per column
    taxes: list[tuple[str, str, str, str]]  # rate, net, tax, exemption reason
    totals: list[tuple[str, str, bool]]  # label, value, emphasised
    notes: list[str]
    payment: str
    transfer: list[str]  # payee, IBAN and BIC, reference and amount of a transfer asked for
    qr: Any  # the EPC QR code (segno.QRCode) of that transfer, or None
    footer: list[list[str]]  # per column
    page_of: str  # template
    continued: str  # template
    labels: dict[str, str]
    chars: set[str]


class _Reader:
    """Cleans each field once, names it in errors, and remembers every character printed."""

    def __init__(self, number: str, covered: frozenset[int]) -> None:
        self.number = number
        self.covered = covered
        self.chars: set[str] = set()

    def __call__(self, value: str, field: str, *, required: bool = False,
                 multiline: bool = False) -> str:
        where = f"{self.number}.{field}"
        text = clean_text(value or "", where, multiline=multiline)
        if required and not text:
            raise InputError("is empty; § 14 Abs. 4 UStG requires it on the invoice", where=where)
        chars = set(text)
        chars.discard("\n")  # a paragraph break, not a glyph
        if not chars <= self.chars:
            for char in chars - self.chars:
                if ord(char) not in self.covered:
                    raise InputError(f"character {char!r} (U+{ord(char):04X}) is not in the "
                                     f"invoice font (DejaVu Sans) and would print as a box",
                                     where=where)
            self.chars |= chars
        return text

    def add(self, *texts: str) -> None:
        """Record characters of text made here (labels, Babel's numbers) for the font choice."""
        for text in texts:
            self.chars.update(text)


def _party_lines(party: InvoiceParty, field: str, read: _Reader, home: str,
                 countries: dict[str, str]) -> list[str]:
    name = read(party.name, f"{field}.name", required=not party.company)
    company = read(party.company, f"{field}.company")
    lines = [company, name] if company else [name]
    lines += [read(party.extra_line, f"{field}.extra_line"),
              read(party.street, f"{field}.street", required=True),
              " ".join(x for x in (read(party.postal_code, f"{field}.postal_code"),
                                   read(party.city, f"{field}.city", required=True)) if x)]
    country = read(party.country, f"{field}.country").upper()
    if country and country != home.upper():
        # Abroad the country goes last, in capitals (DIN 5008, UPU).
        lines.append(countries.get(country, country).upper())
    return [line for line in lines if line]


def _legal_lines(lines: Sequence[str], shown: set[str]) -> list[str]:
    """The lines of ``doc.footer`` (register court and number, managing directors: § 35a GmbHG,
    § 37a HGB) as the footer prints them: one line per " · " part, without the parts that say
    again what the footer's other lines show (address, VAT id, bank, phone). Invoices stored so
    far carry the company's whole letterhead in ``doc.footer``; printed as it is, it repeated
    the other columns and ran past the bottom of the page."""
    known = [v.replace(" ", "") for v in shown if v.strip()]
    out: list[str] = []
    for line in lines:
        for part in (p.strip() for p in line.split(" · ")):
            squeezed = part.replace(" ", "")
            if part and not any(value in squeezed for value in known):
                out.append(part)
    return out


def _content(doc: InvoiceDocument, layout: _Layout, covered: frozenset[int]) -> _Content:
    number = doc.number.strip() or "?"
    read = _Reader(number, covered)
    read(doc.number, "number", required=True)
    labels = layout.labels.get(doc.language)
    if labels is None:
        raise InputError(f"language {doc.language!r} has no labels in the layout "
                         f"(have: {', '.join(sorted(layout.labels))})", where=f"{number}.language")
    t = labels.texts
    read.add(*t.values(), *labels.units.values())
    fmt = _Format(labels, read(doc.currency, "currency", required=True))
    countries = labels.countries
    seller, buyer = doc.seller, doc.buyer
    home = seller.country or "DE"

    if not (seller.vat_id.strip() or seller.tax_number.strip()):
        raise InputError("the seller needs a VAT id or a tax number (§ 14 Abs. 4 Nr. 2 UStG)",
                         where=f"{number}.seller.vat_id")
    if not doc.items:
        raise InputError("an invoice without items (§ 14 Abs. 4 Nr. 5 UStG)", where=f"{number}.items")
    if not doc.taxes:
        raise InputError("no VAT breakdown (§ 14 Abs. 4 Nr. 8 UStG)", where=f"{number}.taxes")

    seller_name = read(seller.company or seller.name, "seller.name", required=True)
    seller_street = read(seller.street, "seller.street", required=True)
    seller_city = " ".join(x for x in (read(seller.postal_code, "seller.postal_code", required=True),
                                       read(seller.city, "seller.city", required=True)) if x)
    buyer_abroad = buyer.country.strip().upper() not in ("", home.upper())
    seller_country = countries.get(seller.country.upper(), seller.country) if seller.country else ""
    return_parts = [seller_name, seller_street, seller_city]
    if buyer_abroad and seller_country:
        return_parts.append(seller_country.upper())
    company = [seller_name, seller_street, seller_city]
    if buyer_abroad and seller_country:
        company.append(seller_country)
    if phone := read(seller.phone, "seller.phone"):
        company.append(f"{t['phone']} {phone}")
    if email := read(seller.email, "seller.email"):
        company.append(f"{t['email']} {email}")

    if doc.is_credit_note:
        title = t["credit_note"]
        if not doc.preceding_invoice.strip() or doc.preceding_date is None:
            raise InputError("a credit note must name the invoice it corrects, by number and "
                             "date (§ 31 Abs. 5 UStDV)", where=f"{number}.preceding_invoice")
        reference = t["corrects"].format(number=read(doc.preceding_invoice, "preceding_invoice"),
                                         date=fmt.day(doc.preceding_date))
    else:
        title = t["invoice"]
        reference = ""
    ship_to = ""
    if doc.ship_to is not None:
        lines = _party_lines(doc.ship_to, "ship_to", read, home, countries)
        if lines != _party_lines(buyer, "buyer", read, home, countries):
            ship_to = f"{t['ship_to']}: " + ", ".join(lines)

    values = {
        "number": read(doc.number, "number"),
        "date": fmt.day(doc.issue_date),
        "supply_date": fmt.day(doc.supply_date),
        "order_id": read(doc.order_id, "order_id"),
        "order_date": fmt.day(doc.order_date) if doc.order_date else "",
        "channel": read(doc.channel, "channel"),
        "customer_number": read(doc.customer_number, "customer_number"),
        "buyer_vat_id": read(buyer.vat_id, "buyer.vat_id"),
        "delivery_ids": ", ".join(read(d, f"delivery_ids[{i}]")
                                  for i, d in enumerate(doc.delivery_ids)),
        "buyer_reference": read(doc.buyer_reference, "buyer_reference"),
        "page": "{page}",
    }
    info = []
    for row in layout.info_rows:
        label = t["credit_note_number"] if row == "number" and doc.is_credit_note else t[row]
        if values[row]:
            info.append((label, values[row]))

    rows = []
    has_net = any(c.field == "net" for c in layout.columns)
    for i, item in enumerate(doc.items):
        unit = labels.units.get(item.unit_code, item.unit_code)
        cells = {
            "position": str(item.position),
            "sku": read(item.sku, f"items[{i}].sku"),
            "description": read(item.description, f"items[{i}].description", required=True),
            "quantity": f"{fmt.number(item.quantity)} {unit}".strip(),
            "unit_net": fmt.unit_price(item.unit_net),
            "tax_rate": fmt.percent(item.tax_rate),
            # Before the discount, so that quantity x price reads right; the discount row below
            # takes the allowance off and the column adds up to the net total (BT-131 each).
            "net": fmt.money(item.net + item.allowance),
        }
        group = [[cells[c.field] for c in layout.columns]]
        if item.allowance:
            # The discount stays visible on its line (BG-27): what the buyer saw taken off
            # (VAT included) in the text, its net amount in the net column.
            reason = read(item.allowance_reason, f"items[{i}].allowance_reason")
            text = f"{t['allowance']}: {reason}" if reason else t["allowance"]
            if item.allowance_gross:
                text += f" ({fmt.money(-item.allowance_gross)} {t['incl_vat']})"
            if not has_net:
                text += f", {t['col_net']} {fmt.money(-item.allowance)}"
            discount = {"description": text, "net": fmt.money(-item.allowance)}
            group.append([discount.get(c.field, "") for c in layout.columns])
        rows.append(group)
    taxes = [(fmt.percent(tax.rate), fmt.money(tax.net), fmt.money(tax.tax),
              read(tax.exemption_reason, f"taxes[{i}].exemption_reason"))
             for i, tax in enumerate(doc.taxes)]
    totals = [(t["net_total"], fmt.money(doc.net_total), False),
              (t["tax_total"], fmt.money(doc.tax_total), False),
              (t["gross_total"], fmt.money(doc.gross_total), True)]
    if doc.prepaid:
        # On a credit note the money flows back: "paid" and "due" would read the wrong way round.
        paid, due = ("refunded", "to_refund") if doc.is_credit_note else ("prepaid", "due")
        totals += [(t[paid], fmt.money(doc.prepaid), False), (t[due], fmt.money(doc.due), True)]
    notes = [read(n, f"notes[{i}]", multiline=True) for i, n in enumerate(doc.notes)]
    payment = read(doc.payment_terms, "payment_terms", multiline=True)
    if doc.is_credit_note:
        # How the amount goes back to the buyer, as the XML's payment means says (payment.py).
        refund = read(refund_text(doc), "payment")
        payment = refund if payment in ("", refund) else f"{refund}\n{payment}"
    transfer, qr = _transfer(doc, t, fmt, read, seller_name)

    fields = {
        "seller": {"name": seller_name, "company": read(seller.company, "seller.company"),
                   "street": seller_street,
                   "postal_code": read(seller.postal_code, "seller.postal_code"),
                   "city": read(seller.city, "seller.city"), "country_name": seller_country,
                   "vat_id": read(seller.vat_id, "seller.vat_id"),
                   "tax_number": read(seller.tax_number, "seller.tax_number"),
                   "email": read(seller.email, "seller.email"),
                   "phone": read(seller.phone, "seller.phone"),
                   "contact": read(seller.contact, "seller.contact")},
        "doc": {"seller_bank": read(doc.seller_bank, "seller_bank"),
                "seller_iban": read(doc.seller_iban, "seller_iban"),
                "seller_bic": read(doc.seller_bic, "seller_bic")},
        "label": t,
    }
    footer_lines = [read(line, f"footer[{i}]") for i, line in enumerate(doc.footer)]
    footer: list[list[str]] = []
    shown: set[str] = set()  # the distinctive values the footer's own lines print
    legal_column = None
    for column, (_, templates) in enumerate(layout.footer_columns):
        lines: list[str] = []
        for template in templates:
            if template.strip() == "{doc.footer}":
                legal_column = (column, len(lines))
                continue
            parts = _PLACEHOLDER.findall(template)
            if any(scope != "label" and not fields[scope][name] for scope, name in parts):
                continue  # e.g. no tax number: no "Steuernr." line
            shown.update(fields[scope][name] for scope, name in parts if name in _DISTINCT_FIELDS)
            lines.append(_PLACEHOLDER.sub(lambda m: fields[m[1]][m[2]], template))
        footer.append(lines)
    if legal_column is not None:
        column, at = legal_column
        footer[column][at:at] = _legal_lines(footer_lines, shown)

    content = _Content(
        kind=title, number=values["number"], title=f"{title} {values['number']}",
        reference=reference, ship_to=ship_to, return_line=" · ".join(return_parts), company=company,
        address=_party_lines(buyer, "buyer", read, home, countries),
        info=info, header=[t[c.label] for c in layout.columns], rows=rows, taxes=taxes,
        totals=totals, notes=[n for n in notes if n], payment=payment, transfer=transfer, qr=qr, footer=footer,
        page_of=t["page_of"], continued=t["continued"], labels=t, chars=read.chars)
    for group in rows:
        for row in group:
            read.add(*row)
    read.add(reference, *(v for r in taxes for v in r), *(v for _, v, _ in totals),
             *(v for _, v in info), *(line for col in footer for line in col), *transfer, "0123456789")
    return content


def _transfer(doc: InvoiceDocument, t: dict[str, str], fmt: _Format, read: _Reader,
              payee: str) -> tuple[list[str], Any]:
    """What the buyer needs to pay an invoice by transfer, as the XML's payment means says
    (``payment.py``): payee, IBAN, BIC and bank, the reference to quote (the invoice number) and
    the amount; and the EPC QR code a banking app reads them from (None: not in euros)."""
    means = payment_of(doc)
    if doc.is_credit_note or means is None or means.code != SEPA_CREDIT_TRANSFER:
        return [], None
    iban = read(means.iban, "seller_iban")
    account = [f"{t['iban']} {' '.join(iban[i:i + 4] for i in range(0, len(iban), 4))}"]
    if bic := read(means.bic, "seller_bic"):
        account.append(f"{t['bic']} {bic}")
    if bank := read(doc.seller_bank, "seller_bank"):
        account.append(bank)
    lines = [f"{t['payee']}: {payee}", " · ".join(account),
             f"{t['remittance']}: {read(means.reference, 'number')}", f"{t['amount']}: {fmt.money(doc.due)}"]
    transfer = epc_transfer(doc)
    if transfer is None:
        return lines, None
    try:
        return lines, epc_qr(transfer)
    except ValueError as err:  # a value the EPC standard does not allow (segno checks the lengths)
        raise InputError(f"no EPC QR code for the transfer: {err}", where=f"{doc.number or '?'}.seller_iban") from err


# --- placing: pages of drawing operations -------------------------------------------------

# Drawing operations, plain tuples because a 40-item invoice has a few thousand of them:
#   ("T", style, size, x, baseline, text)    ("L", x1, y1, x2, y2)
#   ("F", x, y, w, h, rgb)                   ("I", x, y, w)  (the logo)
#   ("Q", x, y, size)                        (the EPC QR code of the content)
_Op = tuple


def _wrap(text: str, width: float, face: _Face, size: float) -> list[str]:
    """``text`` broken into lines no wider than ``width`` mm: at spaces, else inside a word."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        if face.width(paragraph, size) <= width:
            lines.append(paragraph)
            continue
        space = face.width(" ", size)
        current, current_w = "", 0.0
        for word in paragraph.split(" "):
            word_w = face.width(word, size)
            if current and current_w + space + word_w <= width:
                current, current_w = f"{current} {word}", current_w + space + word_w
                continue
            if current:
                lines.append(current)
            while word_w > width:  # a word longer than the column: cut it where it must
                cut = len(word)
                while cut > 1 and face.width(word[:cut], size) > width:
                    cut -= 1
                lines.append(word[:cut])
                word = word[cut:]
                word_w = face.width(word, size)
            current, current_w = word, word_w
        lines.append(current)
    return lines


def _baseline(top: float, line_h: float, size: float) -> float:
    # Text of size ``size`` centred in a line box of ``line_h``: cap height is ~0.7 em.
    return top + (line_h + size * _MM_PER_PT * 0.7) / 2


class _Planner:
    """Places the content on pages; pure, so the page count is known before anything is drawn."""

    def __init__(self, layout: _Layout, faces: dict[str, _Face], content: _Content) -> None:
        self.lay = layout
        self.faces = faces
        self.c = content

    def text(self, ops: list[_Op], style: str, size: float, x: float, y: float, text: str,
             align: str = "left", width: float = 0.0) -> None:
        if align == "right":
            x += width - self.faces[style].width(text, size)
        ops.append(("T", style, size, x, y, text))

    def plan(self) -> list[list[_Op]]:
        lay = self.lay
        first: list[_Op] = []
        title_bottom = self._first_page_head(first)
        header_ops, header_h = self._table_header()
        bottom = lay.content_bottom
        pages: list[list[_Op]] = [first]
        ops, y = first, title_bottom

        def new_page() -> None:
            nonlocal ops, y
            ops = []
            pages.append(ops)
            y = lay.content_top

        def place_header() -> None:
            nonlocal y
            ops.extend(_shift(header_ops, y))
            y += header_h

        place_header()
        for r, row in enumerate(self._rows()):
            row_ops, row_h = row
            if y + row_h > bottom:
                if row_h > bottom - lay.content_top - header_h:
                    raise InputError("this item's text is longer than a page",
                                     where=f"{self.c.number}.items[{r}].description")
                new_page()
                place_header()
            ops.extend(_shift(row_ops, y))
            y += row_h
        for block_ops, block_h, gap in self._trailer():
            if y + gap + block_h > bottom:
                new_page()
                gap = 0.0
            ops.extend(_shift(block_ops, y + gap))
            y += gap + block_h

        count = len(pages)
        for number, page in enumerate(pages, start=1):
            if number > 1:
                self._continuation_head(page, number, count)
            self._footer(page)
        self._fill_page_numbers(first, count)
        return pages

    def _first_page_head(self, ops: list[_Op]) -> float:
        lay, c = self.lay, self.c
        if lay.logo:
            ops.append(("I", lay.logo_x, lay.logo_y, lay.logo_w))
        co = lay.company
        x, y, w = co.num("x"), co.num("y"), co.num("width")
        size, lh = co.num("font_size"), co.num("line_height")
        name_size = co.num("name_size")
        for part in _wrap(c.company[0], w, self.faces["B"], name_size):
            y += name_size * _MM_PER_PT * 1.15
            self.text(ops, "B", name_size, x, y, part)
        y += 1.5
        for line in c.company[1:]:
            for part in _wrap(line, w, self.faces[""], size):
                self.text(ops, "", size, x, _baseline(y, lh, size), part)
                y += lh

        win = lay.window
        x = win.num("x") + win.num("indent")
        width = win.num("width") - 2 * win.num("indent")
        size = win.num("return_size")
        line = c.return_line
        while self.faces[""].width(line, size) > width and size > 5:
            size -= 0.25  # the return line stays one line: it must not reach into the address
        base = win.num("return_line_y")
        self.text(ops, "", size, x, base, line)
        ops.append(("L", x, base + 0.7, x + min(width, self.faces[""].width(line, size)), base + 0.7))
        size, lh = win.num("font_size"), win.num("line_height")
        y = win.num("address_top")
        for line in c.address:
            for part in _wrap(line, width, self.faces[""], size):
                self.text(ops, "", size, x, _baseline(y, lh, size), part)
                y += lh
        address_bottom = y

        info = lay.info
        x, y = info.num("x"), info.num("y")
        label_w, width = info.num("label_width"), info.num("width")
        size, lh = info.num("font_size"), info.num("line_height")
        for label, value in c.info:
            self.text(ops, "", size, x, _baseline(y, lh, size), label)
            for part in _wrap(value, width - label_w, self.faces["B"], size):
                self.text(ops, "B", size, x + label_w, _baseline(y, lh, size), part)
                y += lh

        ti = lay.title
        size = ti.num("font_size")
        top = max(ti.num("y") - size * _MM_PER_PT, y + 6, address_bottom + 4)
        y = top
        for part in _wrap(c.title, lay.text_w, self.faces["B"], size):
            y += size * _MM_PER_PT * 1.25
            self.text(ops, "B", size, lay.left, y, part)
        for extra, key in ((c.reference, "reference_size"), (c.ship_to, "ship_to_size")):
            if extra:
                size = ti.num(key)
                for part in _wrap(extra, lay.text_w, self.faces[""], size):
                    y += size * _MM_PER_PT * 1.5
                    self.text(ops, "", size, lay.left, y, part)
        return y + ti.num("gap_after")

    def _continuation_head(self, ops: list[_Op], number: int, count: int) -> None:
        lay = self.lay
        line = self.c.continued.format(title=self.c.kind, number=self.c.number, page=number,
                                       pages=count)
        size = lay.font_size
        y = lay.content_top - 8
        self.text(ops, "", size, lay.left, y, self.c.company[0])
        self.text(ops, "", size, lay.left, y, line, align="right", width=lay.text_w)
        ops.append(("L", lay.left, y + 2, lay.left + lay.text_w, y + 2))

    def _fill_page_numbers(self, first: list[_Op], count: int) -> None:
        value = self.c.page_of.format(page=1, pages=count)
        for i, op in enumerate(first):
            if op[0] == "T" and op[5] == "{page}":
                first[i] = (*op[:5], value)

    def _table_header(self) -> tuple[list[_Op], float]:
        lay, tab = self.lay, self.lay.table
        size, lh, pad = tab.num("header_size"), tab.num("line_height"), tab.num("padding")
        texts: list[_Op] = []
        height = self._cells(texts, self.c.header, "B", size, pad) * lh + 2 * pad
        ops: list[_Op] = [("F", lay.left, 0.0, sum(c.width for c in lay.columns), height,
                           lay.header_fill)]
        return ops + texts, height

    def _cells(self, ops: list[_Op], row: Sequence[str], face: str, size: float, top: float) -> int:
        """One table row's cells, wrapped to their columns, from ``top``; its height in lines."""
        lay, tab = self.lay, self.lay.table
        lh, pad = tab.num("line_height"), tab.num("padding")
        cells = [_wrap(text, col.width - 2 * pad, self.faces[face], size) for text, col in zip(row, lay.columns)]
        x = lay.left
        for lines, col in zip(cells, lay.columns):
            for n, line in enumerate(lines):
                self.text(ops, face, size, x + pad, _baseline(top + n * lh, lh, size), line,
                          col.align, col.width - 2 * pad)
            x += col.width
        return max(len(lines) for lines in cells)

    def _rows(self) -> Iterable[tuple[list[_Op], float]]:
        lay, tab = self.lay, self.lay.table
        size, lh, pad = tab.num("font_size"), tab.num("line_height"), tab.num("padding")
        right = lay.left + sum(c.width for c in lay.columns)
        for group in self.c.rows:
            # An item and its discount row stay together, with one rule under both.
            ops: list[_Op] = []
            top = pad
            for row in group:
                top += self._cells(ops, row, "", size, top) * lh
            height = top + pad
            ops.append(("L", lay.left, height, right, height))
            yield ops, height

    def _trailer(self) -> Iterable[tuple[list[_Op], float, float]]:
        """Blocks after the table, each kept on one page: VAT table with totals, each note, payment."""
        lay, c, t = self.lay, self.c, self.c.labels
        tx = lay.taxes
        size, lh = tx.num("font_size"), tx.num("line_height")
        x0 = tx.num("x")
        w_rate, w_net, w_tax = lay.tax_widths
        ops: list[_Op] = []
        y = 0.0
        for text, x, w, align in ((t["tax_rate"], x0, w_rate, "left"),
                                  (t["tax_net"], x0 + w_rate, w_net, "right"),
                                  (t["tax_amount"], x0 + w_rate + w_net, w_tax, "right")):
            self.text(ops, "B", size, x, _baseline(y, lh, size), text, align, w)
        y += lh
        ops.append(("L", x0, y, x0 + w_rate + w_net + w_tax, y))
        for rate, net, tax, reason in c.taxes:
            self.text(ops, "", size, x0, _baseline(y, lh, size), rate)
            self.text(ops, "", size, x0 + w_rate, _baseline(y, lh, size), net, "right", w_net)
            self.text(ops, "", size, x0 + w_rate + w_net, _baseline(y, lh, size), tax, "right", w_tax)
            y += lh
            for part in _wrap(reason, w_rate + w_net + w_tax, self.faces[""], size - 1) if reason else ():
                self.text(ops, "", size - 1, x0, _baseline(y, lh - 0.4, size - 1), part)
                y += lh - 0.4

        # The totals stay with the VAT table: a total alone on the next page reads as unrelated.
        to = lay.totals
        size, lh, grand = to.num("font_size"), to.num("line_height"), to.num("grand_size")
        x0, label_w, width = to.num("x"), to.num("label_width"), to.num("width")
        y += to.num("gap_before")
        for label, value, strong in c.totals:
            s, style = (grand, "B") if strong else (size, "")
            if strong:
                ops.append(("L", x0, y + 0.3, x0 + width, y + 0.3))
            self.text(ops, style, s, x0, _baseline(y, lh, s), label)
            self.text(ops, style, s, x0 + label_w, _baseline(y, lh, s), value, "right", width - label_w)
            y += lh
        yield ops, y, tx.num("gap_before")

        no = lay.notes
        size, lh = no.num("font_size"), no.num("line_height")
        for n, paragraph in enumerate(c.notes):
            ops, y = [], 0.0
            if n == 0:  # the heading stays with the first paragraph
                self.text(ops, "B", size, lay.left, _baseline(y, lh, size), t["notes"])
                y += lh
            for part in _wrap(paragraph, lay.text_w, self.faces[""], size):
                self.text(ops, "", size, lay.left, _baseline(y, lh, size), part)
                y += lh
            yield ops, y, no.num("gap_before") if n == 0 else 1.0
        if c.payment or c.transfer:
            yield self._payment(size, lh) + (no.num("gap_before"),)

    def _payment(self, size: float, lh: float) -> tuple[list[_Op], float]:
        """The payment block, kept on one page: the terms, the transfer's details and, to their
        right, the EPC QR code with its caption."""
        lay, c, t = self.lay, self.c, self.c.labels
        pay = lay.payment
        qr_size = pay.num("qr_size") if c.qr is not None else 0.0
        text_w = lay.text_w - (qr_size + pay.num("qr_gap") if qr_size else 0.0)
        ops: list[_Op] = []
        self.text(ops, "B", size, lay.left, _baseline(0.0, lh, size), t["payment"])
        y = lh
        for paragraph in [p for p in (c.payment, *c.transfer) if p]:
            for part in _wrap(paragraph, text_w, self.faces[""], size):
                self.text(ops, "", size, lay.left, _baseline(y, lh, size), part)
                y += lh
        if not qr_size:
            return ops, y
        x = lay.left + lay.text_w - qr_size
        ops.append(("Q", x, 0.0, qr_size))
        small = pay.num("caption_size")
        below = qr_size
        for part in _wrap(t["qr_caption"], qr_size, self.faces[""], small):
            width = self.faces[""].width(part, small)
            self.text(ops, "", small, x + (qr_size - width) / 2, _baseline(below, lh - 1, small), part)
            below += lh - 1
        return ops, max(y, below)

    def _footer(self, ops: list[_Op]) -> None:
        lay, fo = self.lay, self.lay.footer
        y0, size, lh, gap = fo.num("y"), fo.num("font_size"), fo.num("line_height"), fo.num("gap")
        columns = [[part for line in lines for part in _wrap(line, width, self.faces[""], size)]
                   for (width, _), lines in zip(lay.footer_columns, self.c.footer)]
        # The footer ends above the bottom edge printers leave blank: a longer one starts higher,
        # as long as it stays below the content.
        height = 1 + max((len(c) for c in columns), default=0) * lh
        y0 = min(y0, fo.num("bottom") - height)
        if y0 < lay.content_bottom:
            raise InputError(f"the footer needs {height:.0f} mm, more than fits under the content "
                             f"(footer lines: shorten the company's legal data)",
                             where=f"{self.c.number}.footer")
        ops.append(("L", lay.left, y0, lay.left + lay.text_w, y0))
        x = lay.left
        for (width, _), parts in zip(lay.footer_columns, columns):
            y = y0 + 1
            for part in parts:
                self.text(ops, "", size, x, _baseline(y, lh, size), part)
                y += lh
            x += width + gap


def _shift(ops: list[_Op], dy: float) -> list[_Op]:
    """``ops`` placed relative to y=0 moved down by ``dy``."""
    out: list[_Op] = []
    for op in ops:
        kind = op[0]
        if kind == "T":
            out.append((kind, op[1], op[2], op[3], op[4] + dy, op[5]))
        elif kind == "L":
            out.append((kind, op[1], op[2] + dy, op[3], op[4] + dy))
        elif kind == "F":
            out.append((kind, op[1], op[2] + dy, op[3], op[4], op[5]))
        elif kind == "Q":
            out.append((kind, op[1], op[2] + dy, op[3]))
        else:
            out.append(op)
    return out


# --- drawing -------------------------------------------------------------------------------


def _xmp(title: str, author: str, lang: str, moment: datetime) -> str:
    """The XMP packet PDF/A requires, with the document's own date as every date in it."""
    stamp = moment.isoformat(timespec="seconds")
    return "\n".join([
        '<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="caturactl">',
        '  <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">',
        '    <rdf:Description rdf:about=""',
        '        xmlns:dc="http://purl.org/dc/elements/1.1/"',
        '        xmlns:xmp="http://ns.adobe.com/xap/1.0/"',
        '        xmlns:pdf="http://ns.adobe.com/pdf/1.3/"',
        '        xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/"',
        '        xmp:CreatorTool="caturactl"',
        f'        xmp:CreateDate="{stamp}"',
        f'        xmp:ModifyDate="{stamp}"',
        f'        xmp:MetadataDate="{stamp}"',
        f'        pdf:Producer="fpdf2 {escape(FPDF_VERSION)}">',
        "      <pdfaid:part>3</pdfaid:part>",
        "      <pdfaid:conformance>B</pdfaid:conformance>",
        f'      <dc:title><rdf:Alt><rdf:li xml:lang="x-default">{escape(title)}</rdf:li></rdf:Alt></dc:title>',
        f"      <dc:creator><rdf:Seq><rdf:li>{escape(author)}</rdf:li></rdf:Seq></dc:creator>",
        f"      <dc:language><rdf:Bag><rdf:li>{escape(lang)}</rdf:li></rdf:Bag></dc:language>",
        "    </rdf:Description>",
        "  </rdf:RDF>",
        "</x:xmpmeta>",
    ])


def _draw(pages: list[list[_Op]], faces: dict[str, _Face], layout: _Layout,
          doc: InvoiceDocument, content: _Content) -> bytes:
    pdf = FPDF(orientation="P", unit="mm", format=(layout.page_w, layout.page_h),
               enforce_compliance="PDF/A-3B")
    for face in faces.values():
        face.attach(pdf)
    # Noon UTC is the issue date in every time zone a reader may be in.
    moment = datetime.combine(doc.issue_date, time(12, 0), tzinfo=timezone.utc)
    pdf.set_creation_date(moment)
    lang = str(layout.labels[doc.language].locale).replace("_", "-")
    pdf.set_lang(lang)
    pdf.set_title(content.title)
    pdf.set_author(content.company[0])
    pdf.set_creator("caturactl")
    pdf.set_xmp_metadata(_xmp(content.title, content.company[0], lang, moment))
    pdf.set_auto_page_break(False)  # _Planner broke the pages already
    pdf.set_margins(layout.left, layout.content_top, layout.right)
    pdf.set_draw_color(*layout.rule_color)
    pdf.set_line_width(layout.rule_w)
    pdf.set_text_color(0, 0, 0)
    logo = BytesIO(layout.logo) if layout.logo else None
    for ops in pages:
        pdf.add_page()
        font: tuple[str, float] | None = None
        for op in ops:
            kind = op[0]
            if kind == "T":
                if (op[1], op[2]) != font:
                    font = (op[1], op[2])
                    pdf.set_font(_FAMILY, op[1], op[2])
                pdf.text(op[3], op[4], op[5])
            elif kind == "L":
                pdf.line(op[1], op[2], op[3], op[4])
            elif kind == "F":
                pdf.set_fill_color(*op[5])
                pdf.rect(op[1], op[2], op[3], op[4], style="F")
            elif kind == "I" and logo is not None:
                pdf.image(logo, x=op[1], y=op[2], w=op[3])
            elif kind == "Q":
                # Black modules on white with the 4-module quiet zone the QR standard wants,
                # drawn large enough that a viewer scaling it keeps the edges sharp.
                png = BytesIO()
                content.qr.save(png, kind="png", scale=8, border=4)
                pdf.image(BytesIO(png.getvalue()), x=op[1], y=op[2], w=op[3], h=op[3])
    return bytes(pdf.output())


class InvoicePdf:
    """Renders InvoiceDocuments as PDF/A-3B; build one per process and reuse it."""

    def __init__(self, layout: str | None = None, font_dir: str | None = None, *,
                 font_copies: bool = True) -> None:
        """Read the layout (default: the packaged ``templates/invoices/layout.toml``) and the
        fonts; raises ConfigError when either is missing or wrong (the message names the Debian
        package for missing fonts). ``font_copies=False`` builds every document's font with
        fpdf2's constructor instead of copying the parsed one (the slow, plain path)."""
        if layout is None:
            raw = resources.files("templates.invoices").joinpath("layout.toml").read_bytes()
            self.layout = _Layout("templates/invoices/layout.toml", raw, None)
        else:
            path = Path(layout)
            try:
                raw = path.read_bytes()
            except OSError as err:
                raise ConfigError(f"cannot read the invoice layout: {err}", where=layout) from err
            self.layout = _Layout(layout, raw, path.parent)
        self.fonts = _fonts(font_dir or DEFAULT_FONT_DIR, font_copies)
        for language, labels in self.layout.labels.items():
            for text in (*labels.texts.values(), *labels.units.values()):
                if missing := [c for c in text if ord(c) not in self.fonts.covered]:
                    raise ConfigError(f"character {missing[0]!r} is not in DejaVu Sans",
                                      where=f"labels.{language}")

    def check(self, doc: InvoiceDocument) -> None:
        """Raises the InputError ``render`` would for ``doc``'s content (an empty § 14 UStG
        field, a character no font has), without laying out a page."""
        _content(doc, self.layout, self.fonts.covered)

    def render(self, doc: InvoiceDocument) -> bytes:
        """The invoice (or credit note, type 381) as PDF/A-3B bytes, the same for the same
        document. Raises InputError(where="<number>.<field>") when a § 14 UStG field is empty,
        a credit note names no invoice, or a character cannot be printed."""
        content = _content(doc, self.layout, self.fonts.covered)
        faces = self.fonts.faces_for(content.chars)
        pages = _Planner(self.layout, faces, content).plan()
        return _draw(pages, faces, self.layout, doc, content)


# --- many documents ------------------------------------------------------------------------

_worker: InvoicePdf | None = None


def _start_worker(layout: str | None, font_dir: str | None) -> None:
    global _worker
    _worker = InvoicePdf(layout, font_dir)  # fonts parsed once per worker process


def _render_in_worker(doc: InvoiceDocument) -> bytes:
    assert _worker is not None
    return _worker.render(doc)


def render_many(docs: Sequence[InvoiceDocument], jobs: int = 1, *, layout: str | None = None,
                font_dir: str | None = None) -> list[bytes]:
    """The PDFs of ``docs``, in their order. ``jobs`` > 1 renders in a pool of that many
    processes, each holding one InvoicePdf (fonts prepared once per process); ``jobs`` = 1
    renders here. Raises a failing document's InputError (``where`` starts with its invoice
    number) or ConfigError, and then returns nothing: check documents before a large run."""
    if jobs <= 1 or len(docs) < 2:
        renderer = InvoicePdf(layout, font_dir)
        return [renderer.render(doc) for doc in docs]
    jobs = min(jobs, len(docs))
    # Chunks big enough that pickling round trips do not dominate, small enough to balance.
    chunk = max(1, min(64, math.ceil(len(docs) / (jobs * 4))))
    # spawn, not fork: a process with threads (a server, a test runner's worker) can hand a
    # forked child a lock another thread held, and the pool never ends (seen under pytest-xdist).
    with multiprocessing.get_context("spawn").Pool(jobs, initializer=_start_worker,
                                                   initargs=(layout, font_dir)) as pool:
        return pool.map(_render_in_worker, docs, chunksize=chunk)
