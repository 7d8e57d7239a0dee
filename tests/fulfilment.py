"""Configuration pieces for fulfilment tests: the template's carrier matrix, an own warehouse and
a fulfiller, each behind a transport the test chooses (a folder, SFTP, FTP, e-mail)."""

from __future__ import annotations

from pathlib import Path

from standins.demo import with_billing_numbers

TEMPLATE = Path(__file__).resolve().parents[1] / "caturactl" / "templates" / "caturactl.toml"


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
