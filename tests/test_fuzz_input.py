"""Generated bad input against the real commands: partners' files and operators' values never end
in an internal error (exit 1), never half-apply, and the next good file is still read."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from caturactl.model import Product, Stock
from tests import fulfilment

# Cells a spreadsheet, a careless partner or a hostile one may produce.
CELLS = st.one_of(
    st.text(max_size=30),
    st.integers(min_value=-10**30, max_value=10**30).map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["", "NaN", "-Infinity", "1E+308", "=1+1", "@SUM(1+1)", "²³", "0x10", "١٢", " 7 ", "12,50",
                     "[bold red]x", "\x00", "L99999999999999999999999"]),
)
ENCODINGS = st.sampled_from(["utf-8", "utf-8-sig", "cp1252"])
FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _csv(header: list[str], rows: list[list[str]], sep: str) -> str:
    return "\n".join(sep.join(r) for r in [header, *rows]) + "\n"


def _encode(text: str, encoding: str) -> bytes:
    return text.encode(encoding, errors="replace")


def _products(ws) -> list[tuple]:
    with ws.app().session() as s:
        return [(p.sku, p.title, p.asin, p.price, p.weight_g, p.length_mm, p.tax_class)
                for p in s.scalars(select(Product).order_by(Product.sku))]


def test_generated_product_files_never_crash_nor_half_apply(bare_workspace):
    ws = bare_workspace
    (ws.path / "good.csv").write_text("sku;title;price;weight_g\nGOOD-1;Schere;9,99;120\n", encoding="utf-8")
    ws.ok("products", "import", "good.csv")
    columns = ["sku", "title", "asin", "price", "weight_g", "length_mm", "width_mm", "height_mm", "tax_class"]

    @FUZZ
    @given(header=st.lists(st.sampled_from(columns), min_size=1, max_size=6, unique=True),
           cells=st.lists(st.lists(CELLS, min_size=1, max_size=7), min_size=1, max_size=4),
           sep=st.sampled_from([";", ","]), encoding=ENCODINGS)
    def check(header, cells, sep, encoding):
        before = _products(ws)
        rows = [[c.replace(sep, " ").replace("\n", " ").replace("\r", " ").replace('"', "") for c in r] for r in cells]
        (ws.path / "bad.csv").write_bytes(_encode(_csv(header, rows, sep), encoding))
        r = ws.run("products", "import", "bad.csv")
        assert r.code in (0, 65), (r.code, r.err)
        assert "Traceback" not in r.err + r.out and "internal error" not in r.err
        if r.code == 65:
            assert _products(ws) == before  # all or nothing
        assert ws.run("products", "import", "good.csv").code == 0  # the next good file still reads

    check()


def test_generated_stock_files_never_crash_nor_half_apply(workspace):
    ws = workspace
    for folder in ("wh", "ful"):
        (ws.path / folder).mkdir(exist_ok=True)
    ws.write_config(extra=fulfilment.carrier_section() + fulfilment.locations()
                    + fulfilment.folder_transport("wh", ws.path / "wh") + fulfilment.folder_transport("ful", ws.path / "ful"))
    (ws.path / "good.csv").write_text("sku;on_hand\nGOOD-1;4\n", encoding="utf-8")
    ws.ok("stock", "import", "WH", "good.csv")

    def stock() -> list[tuple]:
        with ws.app().session() as s:
            return [(x.location, x.sku, x.on_hand, x.reserved)
                    for x in s.scalars(select(Stock).order_by(Stock.location, Stock.sku))]

    @FUZZ
    @given(header=st.sampled_from([["sku", "on_hand"], ["sku", "available"], ["on_hand", "sku"], ["sku"]]),
           cells=st.lists(st.lists(CELLS, min_size=1, max_size=3), min_size=1, max_size=4),
           encoding=ENCODINGS, location=st.sampled_from(["WH", "FUL", "NOPE", "[red]X"]))
    def check(header, cells, encoding, location):
        before = stock()
        rows = [[c.replace(";", " ").replace("\n", " ").replace("\r", " ").replace('"', "") for c in r] for r in cells]
        (ws.path / "bad.csv").write_bytes(_encode(_csv(header, rows, ";"), encoding))
        r = ws.run("stock", "import", location, "bad.csv", "--json")
        assert r.code in (0, 3, 65, 66), (r.code, r.err)
        assert "Traceback" not in r.err + r.out and "internal error" not in r.err
        if r.code in (65, 66):
            assert stock() == before
        else:
            json.loads(r.out)
        assert ws.run("stock", "import", "WH", "good.csv").code == 0

    check()
