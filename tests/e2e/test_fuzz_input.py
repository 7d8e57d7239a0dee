"""Generated bad input against the real commands: partners' files and operators' values never end
in an internal error (exit 1), never half-apply, and the next good file is still read."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from caturactl.fulfilment.models import Stock
from caturactl.catalogue.models import Product
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
        return [(p.sku, p.title, p.listing_id, p.price, p.weight_g, p.length_mm, p.tax_class)
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


@pytest.mark.slow
def test_generated_confirmation_files_never_crash_and_the_good_file_beside_them_is_applied(workspace, tmp_path):
    from datetime import timedelta

    from carriers.tracking import make_number
    from caturactl.fulfilment.models import DeliveryNote, ShippedParcel
    ws = workspace
    fulfilment.route_everything(ws, tmp_path)
    ws.ok("ship", "export")
    with ws.app().session() as s:
        notes = [(n.number, n.order.external_id, n.carrier, n.service) for n in s.scalars(
            select(DeliveryNote).where(DeliveryNote.location == "WH", DeliveryNote._state == "exported")
            .order_by(DeliveryNote.id))]
    assert len(notes) >= 10
    out = tmp_path / "wh" / "out"
    out.mkdir(parents=True, exist_ok=True)
    header = ["order_id", "delivery_id", "carrier", "service", "tracking_number", "weight_kg", "shipped_at"]
    when = (ws.standin.now() - timedelta(minutes=5)).isoformat(timespec="seconds")
    serial = iter(range(1, 10_000))
    good_notes = iter(notes)

    def parcels() -> int:
        with ws.app().session() as s:
            return len(s.scalars(select(ShippedParcel)).all())

    @settings(max_examples=25, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(kind=st.sampled_from(["csv", "xml"]), cells=st.lists(CELLS, min_size=7, max_size=7),
           keep=st.lists(st.booleans(), min_size=7, max_size=7))
    def check(kind, cells, keep):
        # A row of a real delivery with some of its cells replaced by generated ones.
        number, order, carrier, service = notes[0]
        real = [order, number, carrier, service, make_number(carrier, next(serial)), "1,25", when]
        row = [r if k else c.replace(";", " ").replace("\n", " ").replace("\r", " ") for r, k, c in zip(real, keep, cells)]
        if kind == "csv":
            bad = (";".join(header) + "\n" + ";".join(row) + "\n").encode("utf-8", errors="replace")
        else:
            esc = [c.replace("&", "&amp;").replace("<", "&lt;").replace("\x00", "") for c in row]
            bad = ('<?xml version="1.0" encoding="UTF-8"?>\n<confirmation xmlns="urn:caturactl:fulfilment:'
                   f'confirmation:1" version="1.0">\n<shipment><deliveryId>{esc[1]}</deliveryId><orderId>{esc[0]}'
                   f'</orderId><carrier>{esc[2]}</carrier><service>{esc[3]}</service><shippedAt>{esc[6]}</shippedAt>'
                   f'<parcel><trackingNumber>{esc[4]}</trackingNumber><weightKg>{esc[5].replace(",", ".")}'
                   '</weightKg></parcel></shipment>\n</confirmation>\n').encode("utf-8", errors="replace")
        good_number, good_order, good_carrier, good_service = next(good_notes, notes[-1])
        good = [good_order, good_number, good_carrier, good_service, make_number(good_carrier, next(serial)),
                "1,25", when]
        n = next(serial)
        (out / f"SHP_{n:05d}_bad.{kind}").write_bytes(bad)
        (out / f"SHP_{n:05d}_zgood.csv").write_text(";".join(header) + "\n" + ";".join(good) + "\n",
                                                    encoding="utf-8")
        before = parcels()
        r = ws.run("ship", "collect", "--json")
        assert r.code in (0, 3, 65), (r.code, r.err[-500:])
        assert "Traceback" not in r.err + r.out and "internal error" not in r.err
        result = json.loads(r.out)
        assert not any(f"SHP_{n:05d}_zgood" in line for line in result["rejected"])  # the good one is read
        assert parcels() >= before + (1 if good_number != notes[-1][0] else 0)
        assert not list(out.glob(f"SHP_{n:05d}_*"))  # both moved aside: archive or error, none left behind

    check()


# Options that take a number or a reference, and what an operator may type into them.
OPTION_VALUES = st.one_of(st.integers(min_value=-10**25, max_value=10**25).map(str),
                          st.sampled_from(["nan", "inf", "-0", "1e400", "²³", "L²³⁷", "", " ", "0x1F", "1_000",
                                           "١٢٣", "0001-01-01", "9999-12-31", "2026-13-45"]),
                          # A process's arguments cannot hold NUL (execve ends each at the first one).
                          st.text(st.characters(blacklist_characters="\x00"), max_size=12))
COMMANDS = [("route", "--limit"), ("report", "cockpit", "--limit"), ("alerts", "check", "--ticket-hours"),
            ("report", "overdue", "--unpaid-days"), ("orders", "list", "--since"), ("orders", "list", "--limit"),
            ("deliveries", "show"), ("outbox", "retry"), ("orders", "show"), ("tickets", "show"),
            ("invoices", "list", "--month"), ("jobs", "show"), ("settlement", "show"), ("customers", "show")]


def test_generated_option_values_are_refused_cleanly_or_taken(bare_workspace):
    ws = bare_workspace

    @FUZZ
    @given(command=st.sampled_from(COMMANDS), value=OPTION_VALUES)
    def check(command, value):
        r = ws.run(*command, value)
        assert r.code in (0, 2, 3, 65, 66, 78), (command, value, r.code, r.err[-300:])
        assert "Traceback" not in r.err + r.out and "internal error" not in r.err

    check()
