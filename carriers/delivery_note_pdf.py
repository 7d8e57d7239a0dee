"""The delivery note (Lieferschein) as an A4 PDF: what goes into the parcel and onto the packer's table.

Core Helvetica with Windows-1252 encoding, not an embedded TTF: about six times faster and
enough for German text and "€ „ “ –" (reference/toolchain.md §7). A delivery note is not an
invoice, so it need not be PDF/A, which a non-embedded core font rules out. Characters outside
Windows-1252 are transliterated (carriers/text_encoding.py), the same as in the DHL CSV, so the
note shows the name the label shows.

A dropshipper's note is drawn in the merchant's design (``carriers/design.py``: its logo at the
top right, its colour in the title, the table heading and the rules, its TrueType font embedded);
the layout is the same, so there is one delivery note, not two.

The bytes depend only on the document: the PDF creation date is the delivery note's
``created_at`` and fpdf2 derives the file /ID from the content and that date, so rendering
twice gives the same file, and a resend is recognisably the same.
"""

from __future__ import annotations

from fpdf import FPDF
from fpdf.fonts import FontFace

from caturactl.core.errors import InputError
from caturactl.core.address import Address
from caturactl.ports import RenderedFile, ShipmentDocument
from carriers.design import Design, use_fonts
from carriers.text_encoding import (
    address_block,
    as_utc,
    clean_address,
    clean_text,
    cp1252_text,
    file_name_part,
    kg_de,
    money_de,
)

MARGIN = 20  # mm, left, right and top
BOTTOM = 25  # mm kept free for the footer
# DIN 5008 form B puts the address field 45 mm from the top, 20-25 mm from the left, 85 mm wide.
ADDRESS_TOP = 45
ADDRESS_WIDTH = 85
INFO_LEFT = 120
INFO_LABEL = 32
INFO_VALUE = 58
# Pos. | Artikelnr. | Bezeichnung | Menge, as fractions of the text width (170 mm).
COLUMNS = (12, 40, 103, 15)
HEADINGS = ("Pos.", "Artikelnr.", "Bezeichnung", "Menge")
_HEADING_FILL = (230, 230, 230)
LOGO_WIDTH = 22  # mm, at the top right of a note in the merchant's design


class _NotePage(FPDF):
    """FPDF with the sender's address and the page count in every footer, and the delivery
    number above the table on every further page (pages get separated on a packing table)."""

    def __init__(self, footer: str, continued: str, design: Design) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self._footer = footer
        self._continued = continued
        self._design = design
        self.face = use_fonts(self, design)

    def header(self) -> None:
        if self.page_no() > 1:
            self.set_y(MARGIN - 8)
            self.set_font(self.face, size=8)
            self.cell(0, 5, self._continued)
            self.set_y(MARGIN)

    def footer(self) -> None:
        self.set_y(-18)
        self.set_font(self.face, size=7)
        self.set_draw_color(*(self._design.color if self._design.font else (160, 160, 160)))
        self.line(MARGIN, self.get_y(), self.w - MARGIN, self.get_y())
        self.cell(self.epw - 25, 5, self._footer)
        # "{nb}" is fpdf2's alias for the page count, filled in at output.
        self.cell(25, 5, f"Seite {self.page_no()}/{{nb}}", align="R")


def _one_line(address: Address) -> str:
    return " · ".join(address_block(address, home_country=address.country))


class DeliveryNotePdf:
    """DocumentFormat "delivery_note_pdf": the German Lieferschein, A4; core Helvetica, or the
    merchant's ``design``."""

    name = "delivery_note_pdf"
    media_type = "application/pdf"

    def __init__(self, design: Design | None = None) -> None:
        self.design = design or Design()

    def render(self, doc: ShipmentDocument) -> RenderedFile:
        """``LS_<delivery_id>.pdf``, the same bytes for the same document; raises
        InputError(where="<delivery_id>.<field>") for a control character or a character with
        no Windows-1252 form."""
        did = doc.delivery_id
        delivery_id = file_name_part(did, f"{did}.delivery_id")

        def text(value: str, field: str, *, multiline: bool = False) -> str:
            where = f"{did}.{field}"
            return cp1252_text(clean_text(value, where, multiline=multiline), where)

        sender = clean_address(doc.sender, f"{did}.sender", cp1252=True)
        to = clean_address(doc.ship_to, f"{did}.ship_to", cp1252=True)
        if not sender.lines and not sender.city:
            raise InputError("the sender address is empty; the note names who sent it",
                             where=f"{did}.sender")
        sender_line = _one_line(sender)

        design = self.design
        pdf = _NotePage(footer=sender_line, continued=f"Lieferschein {delivery_id} (Fortsetzung)", design=design)
        font = pdf.face
        pdf.set_creation_date(as_utc(doc.created_at))
        pdf.set_title(f"Lieferschein {delivery_id}")
        pdf.set_author(sender.company or sender.name)
        pdf.set_creator("caturactl")
        pdf.set_margins(MARGIN, MARGIN, MARGIN)
        pdf.set_auto_page_break(True, margin=BOTTOM)
        pdf.add_page()

        if design.logo is not None:
            pdf.image(design.logo, x=pdf.w - MARGIN - LOGO_WIDTH, y=MARGIN - 8, w=LOGO_WIDTH)
        pdf.set_font(font, "B", 18)
        if design.font:
            pdf.set_text_color(*design.color)
        pdf.cell(0, 10, "Lieferschein")
        if design.font:
            pdf.set_text_color(0)
        pdf.set_xy(MARGIN, 30)
        pdf.set_font(font, "B", 10)
        pdf.cell(ADDRESS_WIDTH, 5, sender.company or sender.name)

        # The return line above the address, small and underlined, as window envelopes expect.
        pdf.set_xy(MARGIN, ADDRESS_TOP)
        pdf.set_font(font, "U", 7)
        pdf.multi_cell(ADDRESS_WIDTH, 3.5, sender_line, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(font, size=10)
        pdf.ln(1)
        for line in address_block(to, postnummer=text(doc.postnummer, "postnummer"),
                                  home_country=sender.country or "DE"):
            pdf.multi_cell(ADDRESS_WIDTH, 5, line, new_x="LMARGIN", new_y="NEXT")
        address_end = pdf.get_y()

        info = [
            ("Lieferschein-Nr.", delivery_id),
            ("Bestellnummer", text(doc.order_id, "order_id")),
            ("Verkaufskanal", text(doc.sales_channel, "sales_channel")),
            ("Kundennummer", text(doc.customer_number, "customer_number")),
            ("Datum", doc.ship_date.strftime("%d.%m.%Y")),
            ("Versand", " ".join(x for x in (text(doc.carrier, "carrier"),
                                              text(doc.service, "service"),
                                              "Express" if doc.express else "") if x)),
        ]
        if doc.cash_on_delivery is not None:
            info.append(("Nachnahme", money_de(doc.cash_on_delivery)))
        pdf.set_y(ADDRESS_TOP)
        for label, value in info:
            if not value:  # e.g. no customer number yet: no empty label
                continue
            pdf.set_x(INFO_LEFT)
            pdf.set_font(font, size=9)
            pdf.cell(INFO_LABEL, 5, label)
            pdf.set_font(font, "B", 9)
            pdf.multi_cell(INFO_VALUE, 5, value, new_x="LMARGIN", new_y="NEXT")

        pdf.set_y(max(address_end, pdf.get_y()) + 12)
        pdf.set_font(font, size=9)
        heading = FontFace(emphasis="BOLD", fill_color=design.tint(0.15) if design.font else _HEADING_FILL)
        # fpdf2 repeats the heading row at the top of every further page (repeat_headings=1)
        # and wraps long text inside its cell, so a long title grows the row, not the width.
        with pdf.table(col_widths=COLUMNS, text_align=("RIGHT", "LEFT", "LEFT", "RIGHT"),
                       headings_style=heading, line_height=5, padding=(1, 1.5),
                       borders_layout="HORIZONTAL_LINES", repeat_headings=1,
                       first_row_as_headings=True) as table:
            table.row(HEADINGS)
            for i, ln in enumerate(doc.lines):
                table.row((str(ln.line_no), text(ln.sku, f"lines[{i}].sku"),
                           text(ln.title, f"lines[{i}].title"), str(ln.quantity)))

        pdf.ln(5)
        pdf.set_font(font, size=10)
        count = len(doc.parcels)
        pdf.multi_cell(0, 5, f"{count} {'Paket' if count == 1 else 'Pakete'}, "
                             f"Gesamtgewicht {kg_de(doc.weight_g)} kg",
                       new_x="LMARGIN", new_y="NEXT")
        if note := text(doc.note, "note", multiline=True):
            pdf.ln(4)
            pdf.set_font(font, "B", 10)
            pdf.cell(0, 5, "Hinweis", new_x="LMARGIN", new_y="NEXT")
            pdf.set_font(font, size=10)
            pdf.multi_cell(0, 5, note, new_x="LMARGIN", new_y="NEXT")

        return RenderedFile(name=f"LS_{delivery_id}.pdf", content=bytes(pdf.output()),
                            media_type=self.media_type)
