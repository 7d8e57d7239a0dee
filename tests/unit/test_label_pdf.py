"""The A6 shipping label (carriers/label_pdf.py) and the merchant's design (carriers/design.py),
without a database: a page per parcel, the same bytes twice, what Code 39 cannot carry refused by
field, a design file that is missing named by its key."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from carriers.delivery_note_pdf import DeliveryNotePdf
from carriers.design import Design, color, load
from carriers.label_pdf import LabelPdf, barcode_text
from caturactl.core.errors import ConfigError, InputError
from tests.unit.test_formats import SIMPLE, TWO_PARCELS


def _design() -> Design:
    return load(logo="", color_text="#125E6E", font="", font_bold="", base_dir=Path("."))


def test_a_label_has_a_page_per_parcel_and_the_same_bytes_twice():
    one, again = LabelPdf(_design()).render(TWO_PARCELS), LabelPdf(_design()).render(TWO_PARCELS)
    assert one.name == "LABEL_L-2025-000103.pdf" and one.content == again.content
    assert len(re.findall(rb"/Type /Page\b", one.content)) == 2


def test_a_delivery_id_code_39_cannot_carry_is_refused_naming_the_field():
    with pytest.raises(InputError) as caught:
        LabelPdf().render(replace(SIMPLE, delivery_id="L_0001"))
    assert caught.value.where == "L_0001.delivery_id"
    assert barcode_text(" l-2025-000101 ", "x") == "L-2025-000101"


def test_a_receiver_without_street_gets_no_label():
    with pytest.raises(InputError, match="street and a city"):
        LabelPdf().render(replace(SIMPLE, ship_to=replace(SIMPLE.ship_to, line1="", line2="")))


def test_the_design_reads_its_files_and_names_the_key_of_a_missing_one(tmp_path):
    d = _design()
    assert d.logo.startswith(b"\x89PNG") and d.color == (0x12, 0x5E, 0x6E) and d.font.name == "DejaVuSans.ttf"
    assert d.tint(0) == (255, 255, 255) and d.tint(1) == d.color
    with pytest.raises(ConfigError) as caught:
        load(logo="", color_text="#125E6E", font="brand.ttf", font_bold="", base_dir=tmp_path)
    assert caught.value.where == "documents.font"
    (tmp_path / "logo.gif").write_bytes(b"GIF89a")
    with pytest.raises(ConfigError, match="PNG or JPEG"):
        load(logo="logo.gif", color_text="#125E6E", font="", font_bold="", base_dir=tmp_path)
    with pytest.raises(ConfigError):
        color("teal", "documents.color")
    assert load(logo="none", color_text="#000000", font="", font_bold="", base_dir=tmp_path).logo is None


def test_the_delivery_note_in_a_design_embeds_its_font_and_logo_and_without_stays_plain():
    plain, designed = DeliveryNotePdf().render(SIMPLE).content, DeliveryNotePdf(_design()).render(SIMPLE).content
    assert b"/FontFile2" not in plain and b"/Subtype /Image" not in plain and b"/Helvetica" in plain
    assert b"/FontFile2" in designed and b"/Subtype /Image" in designed
