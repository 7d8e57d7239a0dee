"""products import: only what the file names changes, every value checked, both encodings."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from caturactl.catalogue.models import Product

FULL = "sku;title;asin;price;weight_g;length_mm;width_mm;height_mm\nHG-1;Gartenschere;B0TEST0001;19,99;250;200;80;30\n"


def _locations(ws) -> None:
    from tests import fulfilment
    for folder in ("wh", "ful"):
        (ws.path / folder).mkdir(exist_ok=True)
    ws.write_config(extra=fulfilment.carrier_section() + fulfilment.locations()
                    + fulfilment.folder_transport("wh", ws.path / "wh") + fulfilment.folder_transport("ful", ws.path / "ful"))


def _products(ws) -> dict[str, Product]:
    with ws.app().session() as s:
        return {p.sku: p for p in s.scalars(select(Product))}


def test_a_file_without_a_column_leaves_that_column_as_it_is(bare_workspace):
    ws = bare_workspace
    (ws.path / "full.csv").write_text(FULL, encoding="utf-8")
    ws.ok("products", "import", "full.csv")
    (ws.path / "titles.csv").write_text("sku,title\nHG-1,Gartenschere Profi\nHG-2,Neu\n", encoding="utf-8")
    assert "1 new, 1 updated" in ws.ok("products", "import", "titles.csv")
    p = _products(ws)
    assert p["HG-1"].title == "Gartenschere Profi"
    assert (p["HG-1"].listing_id, p["HG-1"].price, p["HG-1"].weight_g, p["HG-1"].height_mm) == \
        ("B0TEST0001", Decimal("19.99"), 250, 30)
    assert p["HG-2"].price is None and p["HG-2"].tax_class == "standard"


@pytest.mark.parametrize("price", ["-19.99", "NaN", "Infinity", "1E+308", "19.999", "1e3", "9999999999", "12.5.0"])
def test_a_price_that_is_not_a_price_is_refused_by_line(bare_workspace, price):
    ws = bare_workspace
    (ws.path / "p.csv").write_text(f"sku;price\nHG-1;1,00\nHG-2;{price}\n", encoding="utf-8")
    r = ws.run("products", "import", "p.csv")
    assert r.code == 65 and "p.csv:3:price" in r.err and "Traceback" not in r.err
    assert _products(ws) == {}


@pytest.mark.parametrize("column, value", [("weight_g", "100000000000000000000000"), ("weight_g", "-5"),
                                           ("length_mm", "²³"), ("height_mm", "1.5")])
def test_sizes_and_weights_are_whole_and_bounded(bare_workspace, column, value):
    ws = bare_workspace
    (ws.path / "p.csv").write_text(f"sku,{column}\nHG-1,{value}\n", encoding="utf-8")
    r = ws.run("products", "import", "p.csv")
    assert r.code == 65 and f"p.csv:2:{column}" in r.err
    assert _products(ws) == {}


def test_windows_1252_and_utf8_with_a_bom_both_read(bare_workspace):
    ws = bare_workspace
    (ws.path / "win.csv").write_bytes("sku;title;price\nHG-1;Gießkanne 10 l;12,50\n".encode("cp1252"))
    (ws.path / "bom.csv").write_bytes("sku;title\nHG-2;Rosenschere für Profis\n".encode("utf-8-sig"))
    ws.ok("products", "import", "win.csv")
    ws.ok("products", "import", "bom.csv")
    p = _products(ws)
    assert p["HG-1"].title == "Gießkanne 10 l" and p["HG-1"].price == Decimal("12.50")
    assert p["HG-2"].title == "Rosenschere für Profis"


def test_bytes_that_are_no_text_are_named_by_line(bare_workspace):
    ws = bare_workspace
    (ws.path / "bad.csv").write_bytes(b"sku;title\nHG-1;ok\nHG-2;\x81\x8d\n")
    r = ws.run("products", "import", "bad.csv")
    assert r.code == 65 and "bad.csv:3" in r.err and "0x81" in r.err


@pytest.mark.parametrize("qty", ["100000000000000000000000", "9223372036854775807", "-1", "³", "1.0", "NaN"])
def test_a_stock_quantity_out_of_range_is_refused_by_line_and_changes_nothing(workspace, qty):
    ws = workspace
    _locations(ws)
    (ws.path / "s.csv").write_text(f"sku;on_hand\nA;5\nB;{qty}\n", encoding="utf-8")
    r = ws.run("stock", "import", "WH", "s.csv")
    assert r.code == 65 and "s.csv:3:on_hand" in r.err and "Traceback" not in r.err
    assert "no stock" in ws.ok("stock", "list")


def test_a_windows_1252_stock_file_reads(workspace):
    ws = workspace
    _locations(ws)
    (ws.path / "s.csv").write_bytes("sku;on_hand\nGIESSKANNE-Ä;7\n".encode("cp1252"))
    ws.ok("stock", "import", "WH", "s.csv")
    assert "GIESSKANNE-Ä" in ws.ok("stock", "list", "--json")
