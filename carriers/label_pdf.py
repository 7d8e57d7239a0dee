"""The shipping label (Versandetikett) as an A6 PDF: one page per planned parcel, in the carrier's
layout (its name in its house colours in the band at the top, sender small, receiver large, the
weight, the date and a Code 39 barcode of our delivery number) and in the merchant's design
(``carriers/design.py``: logo beside the sender, accent colour, font). The sender is whoever
``doc.sender`` names: for a dropshipper's parcel the merchant with its return address.

It is NOT a label booked with the carrier, and it says so on its face twice: a red box at the
bottom and a watermark across the receiver. No postage is paid, no tracking number exists, and
the barcode is our reference, not a carrier's parcel number. Booking labels through the carriers'
APIs comes later (issue 18).

Texts and the carriers' colours come from ``templates/documents/label.toml``. The bytes depend
only on the document (the creation date is the delivery note's), as for the delivery note.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from fpdf import FPDF

from carriers.design import Design, color, use_fonts
from carriers.text_encoding import (address_block, as_utc, clean_address, clean_text, cp1252_text,
                                    file_name_part, kg_de)
from caturactl.core.errors import ConfigError, InputError
from caturactl.ports import RenderedFile, ShipmentDocument

LAYOUT = "label.toml"
_TEXTS = ("sender", "receiver", "weight", "date", "parcels", "reference", "order", "not_booked",
          "not_booked_detail", "watermark")
# Code 39 (ISO/IEC 16388) takes these; fpdf2 draws it (FPDF.code39), start and stop "*" added here.
_CODE39 = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-. $/+%")
BARCODE_MAX_WIDTH = 80.0  # mm, leaving quiet zones on the 97 mm wide label
BARCODE_HEIGHT = 13.0
NOT_BOOKED_RED = (200, 16, 46)


@dataclass(frozen=True)
class _Layout:
    width: float
    height: float
    margin: float
    texts: dict[str, str]
    carriers: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]]  # name -> (band, text)

    def colors(self, carrier: str) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        """(band, text) colours of ``carrier``, matched without regard to case; else the default."""
        by_name = {name.casefold(): c for name, c in self.carriers.items()}
        return by_name.get(carrier.strip().casefold(), self.carriers["default"])


@lru_cache(maxsize=1)
def layout() -> _Layout:
    """templates/documents/label.toml, read and checked once; ConfigError naming the key."""
    where = f"templates/documents/{LAYOUT}"
    try:
        data = tomllib.loads(resources.files("templates.documents").joinpath(LAYOUT).read_text(encoding="utf-8"))
        page, texts, carriers = data["page"], data["texts"], data["carriers"]
        missing = [k for k in _TEXTS if not isinstance(texts.get(k), str)]
        if missing:
            raise ConfigError(f"texts.{missing[0]} is missing", where=where)
        colors = {name: (color(c["band"], f"{where}: carriers.{name}.band"),
                         color(c["text"], f"{where}: carriers.{name}.text")) for name, c in carriers.items()}
        if "default" not in colors:
            raise ConfigError("carriers.default is missing", where=where)
        return _Layout(float(page["width"]), float(page["height"]), float(page["margin"]),
                       {k: texts[k] for k in _TEXTS}, colors)
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"not a label layout: {exc}", where=where) from None


def barcode_text(value: str, where: str) -> str:
    """``value`` as Code 39 can carry it (upper case); InputError naming ``where`` otherwise."""
    text = value.strip().upper()
    if not text or any(ch not in _CODE39 for ch in text):
        raise InputError(f"{value!r} cannot be a Code 39 barcode (A-Z, 0-9, - . $ / + % and space)", where=where)
    return text


class LabelPdf:
    """The A6 label of a delivery: sender, receiver, weight, date, reference barcode, and the
    plain statement that it is not booked with the carrier."""

    name = "label_pdf"
    media_type = "application/pdf"

    def __init__(self, design: Design | None = None) -> None:
        self.design = design or Design()

    def render(self, doc: ShipmentDocument, *, product: str = "", reference: str = "") -> RenderedFile:
        """``LABEL_<delivery_id>.pdf``, a page per planned parcel (at least one); ``product`` is
        the carrier product's name ("DHL Paket"), ``reference`` a further number printed beside
        ours (a purchase order). InputError(where="<delivery_id>.<field>") for a value that
        cannot be printed."""
        did = doc.delivery_id
        delivery_id = file_name_part(did, f"{did}.delivery_id")
        code = barcode_text(delivery_id, f"{did}.delivery_id")

        def text(value: str, field: str) -> str:
            return cp1252_text(clean_text(value, f"{did}.{field}"), f"{did}.{field}")

        sender = clean_address(doc.sender, f"{did}.sender", cp1252=True)
        to = clean_address(doc.ship_to, f"{did}.ship_to", cp1252=True)
        if not (to.lines and to.city):
            raise InputError("the receiver needs a street and a city", where=f"{did}.ship_to")
        carrier = text(doc.carrier, "carrier") or "?"
        receiver = address_block(to, postnummer=text(doc.postnummer, "postnummer"), home_country=sender.country or "DE")
        city = f"{to.postal_code.strip()} {to.city.strip()}".strip()
        values = _Values(
            carrier=carrier, product=" · ".join(x for x in (text(product, "product"), text(doc.service, "service"))
                                                if x),
            express=doc.express, sender=address_block(sender, home_country=to.country or "DE"),
            receiver=receiver, bold_from=receiver.index(city) if city in receiver else len(receiver),
            date=doc.ship_date.strftime("%d.%m.%Y"), code=code,
            references=" · ".join(x for x in (delivery_id, text(reference, "reference")) if x),
            order=text(doc.order_id, "order_id"))
        weights = [p.weight_g for p in doc.parcels] or [doc.weight_g]

        lay = layout()
        pdf = FPDF(orientation="P", unit="mm", format=(lay.width, lay.height))
        face = use_fonts(pdf, self.design)
        pdf.set_creation_date(as_utc(doc.created_at))
        pdf.set_title(f"Versandetikett {delivery_id}")
        pdf.set_author(sender.company or sender.name)
        pdf.set_creator("caturactl")
        pdf.set_margins(lay.margin, lay.margin, lay.margin)
        pdf.set_auto_page_break(False)
        for i, grams in enumerate(weights, 1):
            pdf.add_page()
            _Page(pdf, lay, self.design, face, values).draw(i, len(weights), grams)
        return RenderedFile(name=f"LABEL_{delivery_id}.pdf", content=bytes(pdf.output()), media_type=self.media_type)


@dataclass(frozen=True)
class _Values:
    carrier: str
    product: str
    express: bool
    sender: list[str]
    receiver: list[str]
    bold_from: int  # the receiver's "PLZ Ort" line: it and the country after it are bold
    date: str
    code: str
    references: str
    order: str


class _Page:
    """One label page, drawn top to bottom."""

    def __init__(self, pdf: FPDF, lay: _Layout, design: Design, face: str, v: _Values) -> None:
        self.pdf, self.lay, self.design, self.face, self.v = pdf, lay, design, face, v
        self.x, self.w = lay.margin, lay.width - 2 * lay.margin

    def draw(self, number: int, count: int, grams: int) -> None:
        """The whole label of parcel ``number`` of ``count``, weighing ``grams``."""
        self._band()
        self._sender(21.0)
        self._receiver(44.0, 88.0)
        self._facts(91.0, number, count, grams)
        self._barcode(106.0)
        self._not_booked(128.0)

    def _caption(self, y: float, label: str) -> None:
        pdf = self.pdf
        pdf.set_font(self.face, "B", 6)
        pdf.set_text_color(*self.design.color)
        pdf.set_xy(self.x + 1.5, y)
        pdf.cell(self.w - 3, 3, label)
        pdf.set_text_color(0)

    def _band(self) -> None:
        pdf, (band, ink) = self.pdf, self.lay.colors(self.v.carrier)
        top, height = self.lay.margin, 14.0
        pdf.set_fill_color(*band)
        pdf.rect(self.x, top, self.w, height, style="F")
        pdf.set_text_color(*ink)
        pdf.set_font(self.face, "B", 22)
        pdf.set_xy(self.x + 3, top + 2)
        pdf.cell(self.w / 2, 10, self.v.carrier.upper())
        pdf.set_font(self.face, "B", 8)
        pdf.set_xy(self.x + self.w / 2, top + 2.5)
        pdf.cell(self.w / 2 - 3, 4.5, self.v.product, align="R")
        if self.v.express:
            pdf.set_xy(self.x + self.w / 2, top + 7.5)
            pdf.cell(self.w / 2 - 3, 4.5, "EXPRESS", align="R")
        pdf.set_text_color(0)

    def _sender(self, y: float) -> None:
        pdf, logo = self.pdf, self.design.logo
        self._caption(y, self.lay.texts["sender"])
        if logo is not None:
            pdf.image(logo, x=self.x + self.w - 13, y=y, w=12, h=12, keep_aspect_ratio=True)
        text_w = self.w - (18 if logo is not None else 3)
        pdf.set_xy(self.x + 1.5, y + 3.5)
        for i, line in enumerate(self.v.sender[:5]):
            pdf.set_font(self.face, "B" if i == 0 else "", 7.5)
            pdf.set_x(self.x + 1.5)
            pdf.cell(text_w, 3.4, line, new_x="LMARGIN", new_y="NEXT")
        pdf.set_draw_color(*self.design.color)
        pdf.set_line_width(0.3)
        pdf.line(self.x, y + 21.5, self.x + self.w, y + 21.5)

    def _receiver(self, top: float, bottom: float) -> None:
        pdf, lines = self.pdf, self.v.receiver
        pdf.set_draw_color(0)
        pdf.set_line_width(0.6)
        pdf.rect(self.x, top, self.w, bottom - top)
        self._watermark(top, bottom)
        self._caption(top + 1.5, self.lay.texts["receiver"])
        size = 12.0 if len(lines) <= 5 else 10.0
        pdf.set_font(self.face, "B", size + 1)
        while size > 7 and max(pdf.get_string_width(line) for line in lines) > self.w - 8:
            size -= 0.5  # a long name or street gets smaller, never cut off or over the border
            pdf.set_font(self.face, "B", size + 1)
        step = size * 0.47
        y = top + 6 + max(0.0, (bottom - top - 8 - step * len(lines)) / 3)
        for i, line in enumerate(lines):
            bold = i == 0 or i >= self.v.bold_from
            pdf.set_font(self.face, "B" if bold else "", size + (1 if i == 0 else 0))
            pdf.set_xy(self.x + 4, y)
            pdf.cell(self.w - 8, step, line)
            y += step

    def _watermark(self, top: float, bottom: float) -> None:
        pdf = self.pdf
        cx, cy = self.x + self.w / 2, (top + bottom) / 2
        with pdf.local_context(fill_opacity=0.18, text_color=NOT_BOOKED_RED), pdf.rotation(25, cx, cy):
            pdf.set_font(self.face, "B", 15)
            pdf.set_xy(self.x, cy - 4)  # (a negative x would count from the right edge)
            pdf.cell(self.w, 8, self.lay.texts["watermark"], align="C")

    def _facts(self, y: float, number: int, count: int, grams: int) -> None:
        pdf, t = self.pdf, self.lay.texts
        facts = [(t["weight"], f"{kg_de(grams)} kg"), (t["date"], self.v.date), (t["parcels"], f"{number}/{count}")]
        cell = self.w / len(facts)
        pdf.set_draw_color(*self.design.color)
        pdf.set_line_width(0.3)
        for i, (label, value) in enumerate(facts):
            x = self.x + i * cell
            pdf.rect(x, y, cell, 12)
            pdf.set_font(self.face, "", 6)
            pdf.set_xy(x + 1.5, y + 1.2)
            pdf.cell(cell - 3, 3, label)
            pdf.set_font(self.face, "B", 10)
            pdf.set_xy(x + 1.5, y + 5.2)
            pdf.cell(cell - 3, 5, value)

    def _barcode(self, y: float) -> None:
        pdf, code = self.pdf, f"*{self.v.code}*"
        wide = min(1.2, BARCODE_MAX_WIDTH / (len(code) * 16 / 3))  # a character: 3 wide, 7 narrow (w/3)
        width = len(code) * 16 / 3 * wide - wide / 3
        pdf.set_fill_color(0)
        pdf.code39(code, x=self.x + (self.w - width) / 2, y=y, w=wide, h=BARCODE_HEIGHT)
        pdf.set_font(self.face, "", 7)
        pdf.set_xy(self.x, y + BARCODE_HEIGHT + 1)
        t = self.lay.texts
        pdf.cell(self.w, 3.4, f"{t['reference']} {self.v.references}", align="C", new_x="LMARGIN", new_y="NEXT")
        if self.v.order:
            pdf.set_x(self.x)
            pdf.cell(self.w, 3.4, f"{t['order']} {self.v.order}", align="C")

    def _not_booked(self, y: float) -> None:
        pdf, t = self.pdf, self.lay.texts
        bottom = self.lay.height - self.lay.margin
        pdf.set_fill_color(*NOT_BOOKED_RED)
        pdf.rect(self.x, y, self.w, 6.5, style="F")
        pdf.set_text_color(255)
        pdf.set_font(self.face, "B", 7)
        pdf.set_xy(self.x, y + 0.6)
        pdf.cell(self.w, 5.3, t["not_booked"].format(carrier=self.v.carrier.upper()), align="C")
        pdf.set_text_color(0)
        pdf.set_draw_color(*NOT_BOOKED_RED)
        pdf.set_line_width(0.5)
        pdf.rect(self.x, y, self.w, bottom - y)
        pdf.set_font(self.face, "", 6.5)
        pdf.set_xy(self.x + 2, y + 7.8)
        pdf.multi_cell(self.w - 4, 3, t["not_booked_detail"].format(carrier=self.v.carrier), align="C")
