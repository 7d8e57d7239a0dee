"""``make demo``: a day of Amazon orders, from import to tracking numbers confirmed at Amazon,
in a fresh workspace under ./demo.

Starts the outside world in this process (no root, nothing but pip packages): the SP-API
stand-in, an SFTP server for the fulfiller (asyncssh), an FTPS server and an SMTP server for a
small dropship partner, and a folder the own warehouse's software reads. Then it runs the real
``caturactl`` commands a merchant would, echoing each one, and plays the warehouse, the
fulfiller and the partner in between (``standins/fulfiller.py``). Afterwards the workspace stays
for exploring: ``cd demo && ../.venv/bin/caturactl deliveries list``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from standins.amazon import AmazonStandin
from standins.fulfiller import FulfillerStandin
from standins.servers import FtpStandin, SftpStandin, SmtpStandin

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo"
PORT = int(os.environ.get("DEMO_AMAZON_PORT", "8600"))
CATURACTL = str(Path(sys.executable).parent / "caturactl")
# Amazon's published rates, sped up for the demo: createFeed allows one invoice upload every two
# minutes after a burst of 15, which would make the demo take hours at real speed.
SPEED = 2000.0


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def caturactl(*args: str, check: bool = True) -> int:
    print("$ caturactl " + " ".join(args), flush=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATURACTL_") and k != "SP_API_DEFAULT_MARKETPLACE"}
    code = subprocess.run([CATURACTL, *args], cwd=DEMO, env=env).returncode
    if check and code != 0:
        raise SystemExit(f"demo: caturactl {' '.join(args)} exited {code}")
    return code


def configure(standin: AmazonStandin) -> None:
    cfg = DEMO / "caturactl.toml"
    text = cfg.read_text(encoding="utf-8")
    for old, new in {
        'name = "Muster Handel GmbH"': 'name = "Gartenfreude Demo GmbH"',
        'endpoint = "https://sellingpartnerapi-eu.amazon.com"': f'endpoint = "{standin.url}"',
        'lwa_url = "https://api.amazon.com/auth/o2/token"': f'lwa_url = "{standin.lwa_url}"',
        'client_id = ""': f'client_id = "{standin.client_id}"',
        'marketplaces = ["DE"]': 'marketplaces = ["DE", "FR", "IT", "ES"]',
        'secrets_file = ""': 'secrets_file = "secrets.toml"',
        'vat_id = ""': 'vat_id = "DE123456789"',
        'tax_number = ""': 'tax_number = "214/5678/0123"',
        'iban = ""': 'iban = "DE02120300000000202051"',
        'bic = ""': 'bic = "BYLADEM1001"',
        'bank = ""': 'bank = "Deutsche Kreditbank"',
        'trade_register = ""': 'trade_register = "Amtsgericht Berlin-Charlottenburg, HRB 123456"',
        'managing_directors = ""': 'managing_directors = "Erika Mustermann"',
        # The stand-in's rate limits run SPEED times faster than Amazon's; the client keeps to the same.
        'max_retries = 6 ': f'rate_scale = {SPEED}\nmax_retries = 6 ',
    }.items():
        assert old in text, old
        text = text.replace(old, new)
    cfg.write_text(text, encoding="utf-8")
    secrets = DEMO / "secrets.toml"
    secrets.write_text(f'[amazon]\nclient_secret = "{standin.client_secret}"\n'
                       f'refresh_token = "{standin.refresh_token}"\n', encoding="utf-8")
    secrets.chmod(0o600)


# Placeholder DHL billing numbers (EKP 3333333333, as in reference/carriers/ samples).
BILLING = {"V01PAK": "33333333330101", "V62KP": "33333333336201", "V53WPAK": "33333333335301"}
PARTNER_PASSWORD_ENV = "DEMO_PARTNER_FTPS_PASSWORD"


def with_billing_numbers(text: str) -> str:
    """caturactl.toml text with a placeholder DHL billing number on each DHL product (tests use it too)."""
    lines = []
    for line in text.splitlines():
        if line.startswith("billing_number"):
            continue
        lines.append(line)
        for service, number in BILLING.items():
            if line == f'service = "{service}"':
                lines.append(f'billing_number = "{number}"')
    return "\n".join(lines) + "\n"


def configure_fulfilment(sftp: SftpStandin, ftps: FtpStandin, smtp: SmtpStandin, warehouse: Path) -> None:
    """Locations, transports and mail for the demo; carriers come from the template as written."""
    cfg = DEMO / "caturactl.toml"
    text = with_billing_numbers(cfg.read_text(encoding="utf-8"))
    text = text.replace("outbox_backoff_seconds = 60.0", "outbox_backoff_seconds = 1.0")
    text += f"""
# --- written by make demo: the three places that ship, and how they are reached ---
[accounts]
chart = "SKR03"
datev_consultant = 1001   # from the tax advisor
datev_client = 1

[mail]
host = "127.0.0.1"
port = {smtp.port}
security = "none"
from_address = "orders@gartenfreude.example"

[locations.WH]
name = "Lager Köln"
kind = "own"
street = "Lagerweg 7"
postal_code = "50667"
city = "Köln"
priority = 10
carriers = ["dhl_paket", "dhl_kleinpaket", "dhl_international"]
format = "dhl_csv"
documents = ["delivery_note_pdf"]
transport = "warehouse"
confirmation_format = "confirmation_csv"
deadline_hours = 8
holidays = "DE-NW"

[locations.FUL]
name = "Fulfiller Nord"
kind = "fulfiller"
stock = "report"
priority = 20
carriers = ["dpd_classic", "gls_business", "ups_express"]
format = "fulfiller_xml"
transport = "fulfiller"
confirmation_format = "confirmation_xml"
deadline_hours = 24

[locations.PARTNER]
name = "Gartenmöbel Partner"
kind = "fulfiller"
stock = "report"
priority = 30
carriers = ["gls_business", "dpd_classic"]
format = "fulfiller_xml"
documents = ["text"]
transport = "partner_mail"
return_transport = "partner_ftps"
confirmation_format = "confirmation_csv"
deadline_hours = 16

[transports.warehouse]
kind = "folder"
path = "{warehouse}"

[transports.fulfiller]
kind = "sftp"
host = "127.0.0.1"
port = {sftp.port}
user = "merchant"
key_file = "{sftp.client_key_file}"
host_key = "{sftp.host_key_line}"
timeout_seconds = 5

[transports.partner_mail]
kind = "email"
to = ["auftraege@partner.example"]

[transports.partner_ftps]
kind = "ftps"
host = "127.0.0.1"
port = {ftps.port}
user = "demo"
password_env = "{PARTNER_PASSWORD_ENV}"
ca_file = "{ftps.ca_file}"
"""
    cfg.write_text(text, encoding="utf-8")


def write_stock(skus: list[str]) -> None:
    bulky = {"HG-1011", "HH-2024", "HH-2008"}  # raised bed, drying rack, ironing board
    files = {"WH": {s: 25 for s in skus[::2] if s not in bulky},
             "FUL": {s: 12 for s in skus if s not in bulky},
             "PARTNER": {s: 40 for s in bulky}}
    for code, rows in files.items():
        (DEMO / f"stock-{code}.csv").write_text("sku;on_hand\n" + "".join(f"{k};{v}\n" for k, v in rows.items()),
                                                 encoding="utf-8")


def partner_reads_mail(smtp: SmtpStandin, root: Path, seen: set[str]) -> None:
    """The partner saves the order XML from each new e-mail into its inbox (the way its staff do)."""
    (root / "in").mkdir(parents=True, exist_ok=True)
    for msg in smtp.messages:
        for part in msg.iter_attachments():
            name = part.get_filename() or ""
            if name.endswith(".xml") and name not in seen:
                seen.add(name)
                (root / "in" / name).write_bytes(part.get_content() if isinstance(part.get_content(), bytes)
                                                 else part.get_content().encode("utf-8"))


def fulfilment(standin: AmazonStandin) -> None:
    servers = DEMO / "servers"
    warehouse = servers / "warehouse"
    warehouse.mkdir(parents=True)
    os.environ[PARTNER_PASSWORD_ENV] = "demo"
    with SftpStandin(servers / "fulfiller-sftp") as sftp, FtpStandin(servers / "partner-ftps", tls=True) as ftps, \
            SmtpStandin() as smtp:
        configure_fulfilment(sftp, ftps, smtp, warehouse)
        write_stock([p["sku"] for p in standin.catalogue()])
        say("Stock: the own warehouse counts its own, the fulfiller and the partner report theirs")
        for code in ("WH", "FUL", "PARTNER"):
            caturactl("stock", "import", code, f"stock-{code}.csv")

        say("Routing: one location with everything first, else the fewest; a carrier from the matrix")
        caturactl("route")
        listed = subprocess.run([CATURACTL, "deliveries", "list", "--json"], cwd=DEMO, capture_output=True, text=True)
        notes = json.loads(listed.stdout)
        example = next((n for n in notes if n["location"] == "WH"), notes[0] if notes else None)
        if example:
            caturactl("carriers", "choose", example["order"], "--explain")

        say("Export, while the fulfiller's SFTP server is down: its files wait in the outbox")
        sftp.stop()
        caturactl("ship", "export", check=False)
        caturactl("outbox", "list", "--limit", "5")
        say("The SFTP server is back: the waiting files go out, each exactly once")
        sftp.start()
        time.sleep(1.1)  # the demo's first retry is due after a second
        caturactl("outbox", "send")

        seen: set[str] = set()
        players = [FulfillerStandin(warehouse, seed=1, reply="csv", carrier="DHL", late_rate=0.05),
                   FulfillerStandin(sftp.root, seed=2, reply="xml", carrier="DPD", partial_rate=0.15,
                                    multi_parcel_rate=0.25, late_rate=0.2, broken_rate=0.03),
                   FulfillerStandin(ftps.root, seed=3, reply="csv", carrier="GLS", late_rate=0.3)]
        for round_no in range(1, 4):
            standin.advance(timedelta(hours=6))
            partner_reads_mail(smtp, ftps.root, seen)
            report = [p.work(standin.now()) for p in players]
            say(f"Round {round_no}: the locations answer ({sum(r.shipped_whole for r in report)} whole, "
                f"{sum(r.shipped_partial for r in report)} partial, {sum(r.multi_parcel for r in report)} in "
                f"several parcels, {sum(r.deferred for r in report)} later, {sum(r.broken_files for r in report)} "
                f"broken file(s)); we collect and confirm at Amazon")
            caturactl("ship", "collect", check=False)

        say("What needs a person: rejected files, failed messages, overdue deliveries")
        caturactl("ship", "overdue")
        caturactl("tickets", "list", "--kind", "confirmation_rejected")
        caturactl("outbox", "list")

        say("Delivery notes, one of them in detail, and the cockpit with carrier and tracking")
        caturactl("deliveries", "list", "--limit", "15")
        listed = subprocess.run([CATURACTL, "deliveries", "list", "--json"], cwd=DEMO, capture_output=True, text=True)
        multi = next((n for n in json.loads(listed.stdout) if "," in n["tracking"]), None)
        if multi:
            caturactl("deliveries", "show", multi["delivery"])
        caturactl("orders", "list", "--state", "shipped", "--limit", "20")
        print(f"\nThe Amazon stand-in holds {len(standin.shipments())} confirmed parcels "
              f"(confirmShipment, Orders API v0).", flush=True)
        invoices(standin)


def invoices(standin: AmazonStandin) -> None:
    say("Invoices: gap-free numbers, PDF/A-3 with the EN 16931 e-invoice inside, uploaded to Amazon "
        "(UPLOAD_VAT_INVOICE; at real speed Amazon takes one about every 2 minutes after a burst of 15, and "
        "the outbox spreads them over the day)")
    caturactl("invoices", "create", "--jobs", "2")
    caturactl("invoices", "list", "--month", datetime.now(timezone.utc).strftime("%Y-%m"))
    listed = subprocess.run([CATURACTL, "invoices", "list", "--json"], cwd=DEMO, capture_output=True, text=True)
    rows = json.loads(listed.stdout)
    if rows:
        first = rows[0]["number"]
        caturactl("invoices", "show", first)
        caturactl("invoices", "pdf", first)
        say(f"A buyer sends everything back: a Rechnungskorrektur (credit note, type 381) for {first}")
        caturactl("invoices", "credit", first, "--reason", "Retoure: Ware unbeschädigt zurück")
    say("Nine days later: review requests through Amazon's Solicitations API, inside its window, once")
    # The demo moves both clocks: Amazon's, and the one our timer would see on that day.
    standin.advance(timedelta(days=9))
    from caturactl import reviews
    from caturactl.app import App
    from caturactl.config import load
    app = App(load(DEMO / "caturactl.toml"))
    with app.session() as s:
        due = reviews.queue_due(s, now=standin.now())
    app.dispose()
    print(f"(as of {standin.now():%Y-%m-%d}: {len(due.queued)} orders inside their window)", flush=True)
    caturactl("outbox", "send")
    caturactl("reviews", "list", "--format", "csv", check=True)
    say("Amazon has judged the invoice uploads by now")
    caturactl("invoices", "feeds")

    say("Amazon closes a settlement: fetched through the Reports API, reconciled against the invoices")
    standin.close_settlement(locale="DE")
    caturactl("settlement", "fetch")
    caturactl("settlement", "list")
    caturactl("settlement", "differences", "--format", "csv")
    caturactl("invoices", "list", "--unpaid", "--format", "csv")
    today = datetime.now(timezone.utc).date()
    say("The cockpit with carrier, tracking, invoice and payment")
    caturactl("orders", "list", "--state", "shipped", "--limit", "10")
    say("The accountant's file: a DATEV Buchungsstapel of the month and what followed")
    caturactl("export", "bookings", "--from", today.replace(day=1).isoformat(),
              "--to", today.replace(month=12, day=31).isoformat(), "--format", "datev")
    caturactl("export", "customers", "--format", "datev")
    say("The cockpit with carrier, tracking and invoice")
    caturactl("orders", "list", "--state", "shipped", "--limit", "15")
    print(f"\nThe Amazon stand-in holds {len(standin.invoices())} uploaded invoices and "
          f"{len(standin.solicitations())} review requests.", flush=True)


def main() -> int:
    # Three days back, so that Amazon's simulated clock, which the demo moves forward by about
    # two days, stays behind the real one: parcels cannot leave in the future.
    day = (datetime.now(timezone.utc) - timedelta(days=3)).date()
    if DEMO.exists():
        shutil.rmtree(DEMO)
    DEMO.mkdir()
    with AmazonStandin(orders=400, seed=1, day=day, port=PORT, rate_scale=SPEED) as standin:
        say(f"SP-API stand-in on {standin.url}: 400 Amazon orders placed on {day} (DE/FR/IT/ES)")
        caturactl("init")
        configure(standin)
        (DEMO / "products.csv").write_text(standin.catalogue_csv(), encoding="utf-8")

        say("The catalogue, then the night's import (Orders API 2026-01-01, one call per 100 orders)")
        caturactl("products", "import", "products.csv")
        caturactl("import", "amazon")

        say("Orders that need a person wait as tickets")
        caturactl("tickets", "list")
        held = subprocess.run([CATURACTL, "tickets", "list", "--json"], cwd=DEMO, capture_output=True, text=True)
        tickets = [t for t in json.loads(held.stdout) if "gift_message" in t["reasons"]]
        if tickets:
            say(f"Someone reads the gift message of order {tickets[0]['order']} and releases it")
            caturactl("tickets", "resolve", tickets[0]["ticket"], "--release", "--note", "gift card added by hand")
            caturactl("orders", "show", tickets[0]["order"])

        say("A day and a half later: some buyers cancelled; the next import notices")
        standin.advance(timedelta(hours=36))
        caturactl("import", "amazon")

        say("The cockpit of the imported day")
        caturactl("orders", "list", "--limit", "40")

        fulfilment(standin)
    print(f"\nThe workspace stays in {DEMO}: cd demo && ../.venv/bin/caturactl deliveries list")
    print("To import again, start the stand-in: .venv/bin/python -m standins.amazon --port "
          f"{PORT} --orders 400 --seed 1 --day {day}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
