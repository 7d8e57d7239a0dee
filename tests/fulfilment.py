"""Configuration pieces for fulfilment tests: the template's carrier matrix, an own warehouse and
a fulfiller, each behind a transport the test chooses (a folder, SFTP, FTP, e-mail)."""

from __future__ import annotations

from pathlib import Path

from standins.demo import with_billing_numbers

TEMPLATE = Path(__file__).resolve().parents[1] / "templates" / "config" / "caturactl.toml"


def carrier_section() -> str:
    """The template's [carriers.*] tables, with the demo's placeholder DHL billing numbers."""
    text = TEMPLATE.read_text(encoding="utf-8")
    return with_billing_numbers(text[text.index("[carriers.dhl_paket]"):text.index("# --- Fulfilment locations")])


def locations(wh_transport: str = "wh", ful_transport: str = "ful", *, deadline_hours: int = 8,
              documents: str = '["delivery_note_pdf"]') -> str:
    return f"""
[locations.WH]
name = "Lager Köln"
kind = "own"
street = "Lagerweg 7"
postal_code = "50667"
city = "Köln"
priority = 10
carriers = ["dhl_paket", "dhl_kleinpaket", "dhl_international"]
format = "dhl_csv"
documents = {documents}
transport = "{wh_transport}"
confirmation_format = "confirmation_csv"
deadline_hours = {deadline_hours}
holidays = "DE-NW"

[locations.FUL]
name = "Fulfiller Nord"
kind = "fulfiller"
stock = "report"
priority = 20
carriers = ["dpd_classic", "gls_business", "ups_express"]
format = "fulfiller_xml"
transport = "{ful_transport}"
confirmation_format = "confirmation_xml"
deadline_hours = 24
"""


def folder_transport(name: str, path: Path) -> str:
    return f"""
[transports.{name}]
kind = "folder"
path = "{path}"
"""


def sftp_transport(name: str, server, *, timeout: float = 5) -> str:
    return f"""
[transports.{name}]
kind = "sftp"
host = "127.0.0.1"
port = {server.port}
user = "{getattr(server, 'user', 'root')}"
key_file = "{server.client_key_file}"
host_key = "{server.host_key_line}"
outbound_dir = "{getattr(server, 'outbound_dir', 'in')}"
inbound_dir = "{getattr(server, 'inbound_dir', 'out')}"
timeout_seconds = {timeout}
"""


def stock_csv(path: Path, rows: dict[str, int]) -> Path:
    path.write_text("sku;on_hand\n" + "".join(f"{sku};{n}\n" for sku, n in rows.items()), encoding="utf-8")
    return path


COMPANY = """
[company]
name = "Test Handel GmbH"
street = "Lagerweg 7"
postal_code = "50667"
city = "Köln"
country = "DE"
vat_id = "DE123456789"
tax_number = "214/5678/0123"
email = "buchhaltung@test-handel.example"
phone = "+49 221 123456"
contact = "Erika Buchhalter"
iban = "DE02120300000000202051"
bic = "BYLADEM1001"
bank = "Deutsche Kreditbank"
trade_register = "Amtsgericht Köln, HRB 12345"
managing_directors = "Max Muster"
"""


def route_everything(ws, tmp_path, *, wh: str | None = None, ful: str | None = None, extra: str = "",
                     company: str = COMPANY) -> dict:
    """Configure both locations (folder transports unless ``wh``/``ful`` give other sections),
    import, stock (WH every other SKU, FUL all, 30 each) and route. Returns the route summary."""
    import json
    for folder in ("wh", "ful"):  # the shares exist; the transport creates in/ and out/ itself
        (tmp_path / folder).mkdir(exist_ok=True)
    wh = wh or folder_transport("wh", tmp_path / "wh")
    ful = ful or folder_transport("ful", tmp_path / "ful")
    ws.write_config(extra=carrier_section() + locations() + wh + ful + extra, company=company)
    ws.load_catalogue()
    ws.ok("import", "amazon")
    skus = [p["sku"] for p in ws.standin.catalogue()]
    ws.ok("stock", "import", "WH", str(stock_csv(tmp_path / "wh.csv", {s: 30 for s in skus[::2]})))
    ws.ok("stock", "import", "FUL", str(stock_csv(tmp_path / "ful.csv", {s: 30 for s in skus})))
    return json.loads(ws.ok("route", "--json"))


def ship_everything(ws, tmp_path, *, extra: str = "", company: str = COMPANY, rounds: int = 3) -> dict:
    """Import, stock, route, export and let both locations answer until every note is shipped; the
    stand-in's clock is used for ship dates. Returns the route summary.

    The whole pipeline over real transports and the stand-in, a few seconds: for tests about that
    run or about Amazon's side of it. A test that only needs shipped or invoiced orders builds them
    with tests/factories.py instead."""
    from standins.fulfiller import FulfillerStandin
    routed = route_everything(ws, tmp_path, extra=extra, company=company)
    ws.ok("ship", "export")
    for _ in range(rounds):
        now = ws.standin.now()
        FulfillerStandin(tmp_path / "wh", seed=3, reply="csv", late_rate=0.0).work(now)
        FulfillerStandin(tmp_path / "ful", seed=4, reply="xml", carrier="DPD", late_rate=0.0).work(now)
        ws.ok("ship", "collect")
    return routed
