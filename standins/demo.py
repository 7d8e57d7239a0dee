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
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from caturactl.core import clock
from caturactl.core.clock import RunningClock

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
    code = subprocess.run([CATURACTL, *args], cwd=DEMO, env=child_env()).returncode
    if check and code != 0:
        raise SystemExit(f"demo: caturactl {' '.join(args)} exited {code}")
    return code


def child_env() -> dict[str, str]:
    """The environment of the caturactl commands the demo runs: none of the developer's own
    CATURACTL_* settings, but the demo's clock (CATURACTL_CLOCK), so every date is the day it plays."""
    return {k: v for k, v in os.environ.items()
            if (k == clock.ENV or not k.startswith("CATURACTL_")) and k != "SP_API_DEFAULT_MARKETPLACE"}


def explain_differences(rows: list[dict]) -> None:
    """Why each difference of the demo's settlement is there: every one is something the day
    stages (an order Amazon sent without a city, whose invoice waits on a ticket; an order
    shipped in parcels on both sides of the settlement's close, whose invoice covers more than
    Amazon paid out yet; an order invoiced after the settlement was fetched)."""
    invoiced: dict[str, Decimal] = {}
    for inv in json.loads(output("invoices", "list", "--kind", "invoice", "--json")):
        invoiced[inv["order"]] = invoiced.get(inv["order"], Decimal(0)) + Decimal(inv["gross"])
    waiting = {t["order"]: t["summary"] for t in json.loads(output("tickets", "list", "--json"))
               if t["kind"] == "invoice_failed" and t["status"] == "open"}
    for d in rows:
        gross, settled = invoiced.get(d["order"]), Decimal(d["settled"])
        if d["order"] in waiting:
            why = f"its invoice waits on a ticket: {waiting[d['order']].split('cannot be invoiced: ', 1)[-1]}"
        elif gross == settled:
            why = f"invoiced ({gross}) after the settlement was fetched: matched, no person needed"
        elif gross is not None and gross > settled:
            why = (f"shipped in parcels on both sides of the settlement's close: Amazon paid {settled} "
                   f"of the {gross} invoiced, the next settlement brings the rest")
        else:
            why = d["reason"]
        print(f"  {d['order']} ({d['kind']}, {d['amount']}): {why}", flush=True)


def output(*args: str) -> str:
    """What ``caturactl ARGS`` prints, for the demo to pick something to show next."""
    return subprocess.run([CATURACTL, *args], cwd=DEMO, capture_output=True, text=True, env=child_env()).stdout


def configure(standin: AmazonStandin, folder: Path = DEMO, *, company: str = "Gartenfreude Demo GmbH",
              rate_scale: float = SPEED, first_import_days: int | None = None) -> None:
    """Point the caturactl.toml that 'caturactl init' wrote in ``folder`` at the stand-in (the
    benches pass their own company name, rate scale and look-back). SystemExit when the template
    no longer has a line this replaces."""
    cfg = folder / "caturactl.toml"
    text = cfg.read_text(encoding="utf-8")
    changes = {
        'name = "Muster Handel GmbH"': f'name = "{company}"',
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
        # The seller contact an XRechnung requires (BR-DE-5/6/7), and the footer's legal data.
        'contact = ""': 'contact = "Jonas Beispiel"',
        'phone = ""': 'phone = "+49 30 1234567"',
        'email = ""': 'email = "rechnung@gartenfreude.example"',
        'legal_form = ""': 'legal_form = "GmbH"',
        'register_court = ""': 'register_court = "Amtsgericht Berlin-Charlottenburg"',
        'register_number = ""': 'register_number = "HRB 123456"',
        'managing_directors = ""': 'managing_directors = "Erika Mustermann"',
        # ~400 orders a day to FR, IT and ES are far past the EUR 10,000 distance-sales threshold.
        'oss = false': 'oss = true',
        # The stand-in's rate limits run rate_scale times faster than Amazon's; the client keeps to the same.
        'max_retries = 6 ': f'rate_scale = {rate_scale}\nmax_retries = 6 ',
    }
    if first_import_days is not None:
        changes['first_import_days = 7'] = f'first_import_days = {first_import_days}'
    for old, new in changes.items():
        if old not in text:
            raise SystemExit(f"demo: the caturactl.toml template no longer has {old!r}")
        text = text.replace(old, new)
    cfg.write_text(text, encoding="utf-8")
    secrets = folder / "secrets.toml"
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


def configure_fulfilment(sftp: SftpStandin, ftps: FtpStandin, smtp: SmtpStandin, warehouse: Path,
                         folder: Path = DEMO) -> None:
    """Locations, transports and mail for the demo (and the benches that play its day); carriers
    come from the template as written."""
    cfg = folder / "caturactl.toml"
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
read_dirs = ["done", "error"]

[transports.fulfiller]
kind = "sftp"
host = "127.0.0.1"
port = {sftp.port}
user = "merchant"
key_file = "{sftp.client_key_file}"
host_key = "{sftp.host_key_line}"
read_dirs = ["done", "error"]
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


BULKY = {"HG-1011", "HH-2024", "HH-2008"}  # raised bed, drying rack, ironing board: the partner's goods


def write_stock(skus: list[str], folder: Path = DEMO, *, extra: int = 0) -> None:
    """Stock files for the three locations; ``extra`` more of each SKU (benches with more orders)."""
    files = {"WH": {s: 25 + extra for s in skus[::2] if s not in BULKY},
             "FUL": {s: 12 + extra for s in skus if s not in BULKY},
             "PARTNER": {s: 40 + extra for s in BULKY}}
    for code, rows in files.items():
        (folder / f"stock-{code}.csv").write_text("sku;on_hand\n" + "".join(f"{k};{v}\n" for k, v in rows.items()),
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


DAY_START, DAY_END = "06:00", "23:00"  # the evening leaves room for the 22:00 DATEV export
DEMO_DAY = "2026-11-24"  # a Tuesday; DEMO_DAY=YYYY-MM-DD plays another (a working day, for the locations)
BERLIN = ZoneInfo("Europe/Berlin")
DAY_SPEED = 1000.0  # 16.5 hours in about a minute


# The demo's jobs: the example's, at a pace a compressed day can show (name, command, schedule).
DAY_JOBS = [("import-amazon", "import amazon", "every 15 minutes"), ("route", "route", "every 15 minutes"),
            ("ship-export", "ship export", "every 30 minutes"), ("ship-collect", "ship collect", "every 30 minutes"),
            ("outbox-send", "outbox send", "every 10 minutes"), ("ship-overdue", "ship overdue", "daily at 09:00"),
            ("invoices-create", "invoices create", "every hour"), ("invoices-feeds", "invoices feeds", "every 2 hours"),
            ("reviews-request", "reviews request", "daily at 10:00"),
            ("settlement-fetch", "settlement fetch", "daily at 21:00")]


def day_jobs(today: date) -> str:
    """The demo's jobs.toml. Timeouts are on the compressed clock: 12 h is 43 s of real time."""
    month = today.replace(day=1)
    jobs = [*DAY_JOBS, ("datev-export", f"export bookings --from {month.isoformat()} --to "
                                        f"{month.replace(month=12, day=31).isoformat()} --format datev", "daily at 22:00")]
    return ("# Written by make demo for its compressed business day (the example is ../jobs.toml).\n"
            '[settings]\nlease = "10m"   # on the compressed clock: 0.6 s of real time\nmax_parallel = 3\n'
            + "".join(f'\n[jobs.{name}]\ncommand = "{command}"\nschedule = "{schedule}"\ntimeout = "12h"\n'
                      for name, command, schedule in jobs))


def at(day: date, hhmm: str) -> datetime:
    """``hhmm`` on ``day`` in Berlin, as a UTC instant."""
    return datetime.combine(day, datetime.strptime(hhmm, "%H:%M").time(), BERLIN).astimezone(timezone.utc)


def business_day(standin: AmazonStandin, day, sftp: SftpStandin, ftps: FtpStandin, smtp: SmtpStandin,
                 warehouse: Path) -> None:
    """The day runs through jobs.toml: 'caturactl jobs daemon' on a compressed clock, while this
    process plays Amazon's buyers (orders appear as the stand-in's clock passes them), the three
    locations answering their files every half hour, an SFTP outage in the morning and Amazon
    closing a settlement in the evening."""
    import threading

    start = at(day, DAY_START).astimezone(BERLIN)
    # The app's clock for this process and, through CATURACTL_CLOCK, for the daemon and its jobs.
    day_clock = RunningClock(start, speed=DAY_SPEED, epoch=time.time() + 2.0)
    clock.install(day_clock)
    players = [FulfillerStandin(warehouse, seed=1, reply="csv", carrier="DHL", late_rate=0.05),
               FulfillerStandin(sftp.root, seed=2, reply="xml", carrier="DPD", partial_rate=0.15,
                                multi_parcel_rate=0.25, late_rate=0.2, broken_rate=0.03),
               FulfillerStandin(ftps.root, seed=3, reply="csv", carrier="GLS", late_rate=0.3)]
    stop = threading.Event()
    notes: list[str] = []

    def play() -> None:
        seen: set[str] = set()
        next_work, next_note = start + timedelta(minutes=30), start + timedelta(hours=2)
        outage = (start.replace(hour=9), start.replace(hour=10, minute=30))
        sftp_down = settled = False
        while not stop.is_set():
            now = day_clock.now()
            if now > standin.now():  # Amazon follows the app's clock
                standin.advance(now - standin.now())
            if not sftp_down and outage[0] <= now < outage[1]:
                sftp.stop()
                sftp_down = True
                notes.append(f"{now.astimezone(BERLIN):%H:%M} the fulfiller's SFTP server goes down")
            elif sftp_down and now >= outage[1]:
                sftp.start()
                sftp_down = False
                notes.append(f"{now.astimezone(BERLIN):%H:%M} the fulfiller's SFTP server is back")
            if now >= next_work:
                partner_reads_mail(smtp, ftps.root, seen)
                for p in players:
                    p.work(standin.now())
                next_work += timedelta(minutes=30)
            if not settled and now >= start.replace(hour=20, minute=30):
                standin.close_settlement(locale="DE")
                settled = True
                notes.append(f"{now.astimezone(BERLIN):%H:%M} Amazon closes a settlement")
            if now >= next_note:
                notes.append(f"{now.astimezone(BERLIN):%H:%M} {len(standin.shipments())} parcels confirmed at Amazon, "
                             f"{len(standin.invoices())} invoices uploaded")
                next_note += timedelta(hours=2)
            time.sleep(0.05)

    player = threading.Thread(target=play, name="demo-players", daemon=True)
    log = DEMO / "day.log"
    print(f"$ caturactl jobs daemon --until {day}T{DAY_END}   (on a clock {DAY_SPEED:g}x fast from "
          f"{day} {DAY_START}; its log: demo/day.log)", flush=True)
    with open(log, "w", encoding="utf-8") as out:
        daemon = subprocess.Popen([CATURACTL, "jobs", "daemon", "--until", f"{day}T{DAY_END}"], cwd=DEMO,
                                  env=child_env(), stdout=out, stderr=subprocess.STDOUT)
        player.start()
        shown = 0
        while daemon.poll() is None:
            time.sleep(0.2)
            while shown < len(notes):
                print("   " + notes[shown], flush=True)
                shown += 1
        stop.set()
        player.join()
    for line in notes[shown:]:
        print("   " + line, flush=True)
    lines = log.read_text(encoding="utf-8").splitlines()
    runs = [ln for ln in lines if " start " in ln]
    failed = [ln for ln in lines if ln[9:].startswith("failed ")]
    print(f"   the daemon ran {len(runs)} job slots; {len(failed)} failed (each has a ticket; the next run "
          f"tries again):", flush=True)
    for ln in failed[:8]:
        print("     " + ln[:160], flush=True)
    if daemon.returncode != 0:
        raise SystemExit(f"demo: the jobs daemon exited {daemon.returncode}; see demo/day.log")
    # The evening after the day: the stand-in's clock is the app's again, stopped a minute later.
    clock.install(standin.clock)
    standin.advance(max(timedelta(0), at(day, DAY_END) + timedelta(minutes=1) - standin.now()))


def after_the_day(standin: AmazonStandin, day: date) -> None:
    say("What the jobs did: each job's last run and the next one, and the history of one job")
    caturactl("jobs", "list")
    caturactl("jobs", "history", "ship-collect", "--limit", "8")

    say("Orders that need a person wait as tickets; someone releases a gift message by hand")
    tickets = json.loads(output("tickets", "list", "--json"))
    caturactl("tickets", "list", "--kind", "confirmation_rejected")
    gift = [t for t in tickets if "gift_message" in t["reasons"]]
    if gift:
        caturactl("tickets", "resolve", gift[0]["ticket"], "--release", "--note", "gift card added by hand")

    say("Delivery notes; one sent in several parcels, with its tracking links")
    caturactl("deliveries", "list", "--limit", "10")
    multi = next((n for n in json.loads(output("deliveries", "list", "--json")) if "," in n["tracking"]), None)
    if multi:
        caturactl("deliveries", "show", multi["delivery"])

    say("Invoices: gap-free numbers, PDF/A-3 with the EN 16931 e-invoice inside, uploaded to Amazon")
    rows = json.loads(output("invoices", "list", "--json"))
    caturactl("invoices", "list", "--month", day.strftime("%Y-%m"))
    if rows:
        first = rows[-1]["number"]
        caturactl("invoices", "show", first)
        caturactl("invoices", "pdf", first)
        by_order = {r["order"]: r["number"] for r in rows if r["kind"] == "invoice"}
        tagged = {t: [o.order_id for o in standin.marketplace.generated() if t in o.tags and o.order_id in by_order]
                  for t in ("promotion", "fba")}
        if tagged["promotion"]:
            number = by_order[tagged["promotion"][0]]
            say(f"A promotion order: the invoice says what the buyer paid, the discount as a line allowance ({number})")
            caturactl("orders", "show", tagged["promotion"][0])
            caturactl("invoices", "show", number)
            say("... and its XRechnung 3.0 for a buyer who asks (the issued invoice stays as it is)")
            caturactl("invoices", "pdf", number, "--xrechnung", "-o", str(DEMO / f"{number}-xrechnung.xml"))
        if tagged["fba"]:
            say(f"Amazon fulfilled {len(tagged['fba'])} orders itself (FBA): never routed, invoiced once shipped")
            caturactl("invoices", "show", by_order[tagged["fba"][0]])
        say(f"A buyer sends everything back: a Rechnungskorrektur (credit note, type 381) for {first}")
        caturactl("invoices", "credit", first, "--reason", "Retoure: Ware unbeschädigt zurück")

    say("The settlement the evening job fetched, reconciled against the invoices")
    caturactl("settlement", "list")
    caturactl("settlement", "differences")
    explain_differences(json.loads(output("settlement", "differences", "--json")))
    caturactl("export", "customers", "--format", "datev")
    print("The DATEV files:", ", ".join(sorted(p.name for p in DEMO.glob("EXTF_*.csv"))), flush=True)

    say("What needs a person now (a timer would mail this; the exit code says whether to)")
    caturactl("alerts", "check", check=False)
    say("The cockpit: every open order with state, location, carrier, tracking, invoice and payment")
    caturactl("report", "cockpit", "--limit", "25")
    say("The finance report of the month")
    caturactl("report", "finance")
    say("Nine days later: review requests through Amazon's Solicitations API, inside its window, once")
    standin.advance(timedelta(days=9))  # the app's clock too: they are one
    print(f"(the clock now shows {standin.now().astimezone(BERLIN):%Y-%m-%d %H:%M})", flush=True)
    caturactl("reviews", "request")
    caturactl("reviews", "list")

    print(f"\nThe Amazon stand-in holds {len(standin.shipments())} confirmed parcels, {len(standin.invoices())} "
          f"uploaded invoices and {len(standin.solicitations())} review requests.", flush=True)


def main() -> int:
    # The day the demo plays, on the app's clock (CATURACTL_CLOCK for every command it runs):
    # whatever the real date, every date a person sees belongs to this day.
    day = date.fromisoformat(os.environ.get("DEMO_DAY", DEMO_DAY))
    if DEMO.exists():
        shutil.rmtree(DEMO)
    DEMO.mkdir()
    with AmazonStandin(orders=400, seed=1, day=day, port=PORT, rate_scale=SPEED,
                       start=at(day, "05:30")) as standin:
        clock.install(standin.clock)  # setting up, before the shop opens
        say(f"SP-API stand-in on {standin.url}: 400 Amazon orders placed over {day} (DE/FR/IT/ES)")
        caturactl("init")
        configure(standin)
        (DEMO / "products.csv").write_text(standin.catalogue_csv(), encoding="utf-8")
        caturactl("products", "import", "products.csv")

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

            say("jobs.toml: what runs unattended, and when")
            (DEMO / "jobs.toml").write_text(day_jobs(day), encoding="utf-8")
            caturactl("jobs", "list")
            say(f"The business day of {day}: the jobs daemon runs it, orders arrive over the day")
            business_day(standin, day, sftp, ftps, smtp, warehouse)
            after_the_day(standin, day)
    print(f"\nThe workspace stays in {DEMO}: cd demo && ../.venv/bin/caturactl report cockpit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
