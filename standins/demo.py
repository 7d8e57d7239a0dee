"""``make demo``: a day of Amazon orders and of the merchant's own Shopware shop side by side,
from import to tracking numbers confirmed and invoices paid, in a fresh workspace under ./demo.

Starts the outside world in this process (no root, nothing but pip packages): the SP-API
stand-in, the Shopware Admin API stand-in on the same clock, an SFTP server for the fulfiller
(asyncssh), an FTPS server and an SMTP server for a small dropship partner, and a folder the own
warehouse's software reads. Then it runs the real ``caturactl`` commands a merchant would,
echoing each one, and plays the warehouse, the fulfiller and the partner in between
(``standins/fulfiller.py``), a phone order at the desk and the bank, whose CAMT.053 statements
(``standins/bank.py``) pay most of the shop's prepayment and invoice orders; two and three weeks
on, what stays unpaid is reminded and then cancelled. Two dropshippers take part
(``standins/dropship_day.py``): one by openTRANS over SFTP, one on the partner portal. Afterwards
the workspace stays for exploring: ``cd demo && ../.venv/bin/caturactl deliveries list``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from caturactl.core import clock
from caturactl.core.clock import RunningClock

from standins.amazon import AmazonStandin
from standins.bank import Movement, iban_de
from standins.bank import statement as bank_statement
from standins.dropship_day import DropshipDay
from standins.fulfiller import FulfillerStandin
from standins.servers import FtpStandin, SftpStandin, SmtpStandin
from standins.shopware import ShopwareStandin

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
        # [amazon] only ([shop] has a client_id too); the merchant token the Listings Items API needs.
        'client_id = ""            # LWA': f'seller_id = "{standin.seller_id}"\n'
                                            f'client_id = "{standin.client_id}"  # LWA',
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
    cfg.write_text(replaced(text, changes), encoding="utf-8")
    secrets = folder / "secrets.toml"
    secrets.write_text(f'[amazon]\nclient_secret = "{standin.client_secret}"\n'
                       f'refresh_token = "{standin.refresh_token}"\n', encoding="utf-8")
    secrets.chmod(0o600)


def replaced(text: str, changes: dict[str, str]) -> str:
    """``text`` (caturactl.toml as 'caturactl init' wrote it) with each key of ``changes`` replaced;
    SystemExit when the template no longer has one."""
    for old, new in changes.items():
        if old not in text:
            raise SystemExit(f"demo: the caturactl.toml template no longer has {old!r}")
        text = text.replace(old, new)
    return text


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


def toml_tables(tables: dict[str, dict[str, object]]) -> str:
    """``tables`` ({"locations.WH": {"name": ...}}) as TOML: strings, whole numbers, booleans and
    lists of strings (JSON writes a string or a list of strings the way TOML reads it)."""
    out = []
    for name, values in tables.items():
        out.append(f"\n[{name}]")
        out += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
    return "\n".join(out) + "\n"


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, int) else json.dumps(value, ensure_ascii=False)


def configure_fulfilment(sftp: SftpStandin, ftps: FtpStandin, smtp: SmtpStandin, warehouse: Path,
                         folder: Path = DEMO) -> None:
    """Locations, transports and mail for the demo (and the benches that play its day); carriers
    come from the template as written."""
    cfg = folder / "caturactl.toml"
    text = with_billing_numbers(cfg.read_text(encoding="utf-8"))
    text = text.replace("outbox_backoff_seconds = 60.0", "outbox_backoff_seconds = 1.0")
    reports = {"kind": "fulfiller", "stock": "report"}
    text += "\n# --- written by make demo: the three places that ship, and how they are reached ---" + toml_tables({
        "accounts": {"chart": "SKR03", "datev_consultant": 1001, "datev_client": 1},  # from the tax advisor
        "mail": {"host": "127.0.0.1", "port": smtp.port, "security": "none",
                 "from_address": "orders@gartenfreude.example"},
        "locations.WH": {"name": "Lager Köln", "kind": "own", "street": "Lagerweg 7", "postal_code": "50667",
                         "city": "Köln", "priority": 10,
                         "carriers": ["dhl_paket", "dhl_kleinpaket", "dhl_international"], "format": "dhl_csv",
                         "documents": ["delivery_note_pdf"], "transport": "warehouse",
                         "confirmation_format": "confirmation_csv", "deadline_hours": 8, "holidays": "DE-NW"},
        "locations.FUL": {"name": "Fulfiller Nord", **reports, "priority": 20,
                          "carriers": ["dpd_classic", "gls_business", "ups_express"], "format": "fulfiller_xml",
                          "transport": "fulfiller", "confirmation_format": "confirmation_xml", "deadline_hours": 24},
        "locations.PARTNER": {"name": "Gartenmöbel Partner", **reports, "priority": 30,
                              "carriers": ["gls_business", "dpd_classic"], "format": "fulfiller_xml",
                              "documents": ["text"], "transport": "partner_mail", "return_transport": "partner_ftps",
                              "confirmation_format": "confirmation_csv", "deadline_hours": 16},
        "transports.warehouse": {"kind": "folder", "path": str(warehouse), "read_dirs": ["done", "error"]},
        "transports.fulfiller": {"kind": "sftp", "host": "127.0.0.1", "port": sftp.port, "user": "merchant",
                                 "key_file": str(sftp.client_key_file), "host_key": sftp.host_key_line,
                                 "read_dirs": ["done", "error"], "timeout_seconds": 5},
        "transports.partner_mail": {"kind": "email", "to": ["auftraege@partner.example"]},
        "transports.partner_ftps": {"kind": "ftps", "host": "127.0.0.1", "port": ftps.port, "user": "demo",
                                    "password_env": PARTNER_PASSWORD_ENV, "ca_file": str(ftps.ca_file)},
    })
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
# With the shop beside Amazon the day holds a third more orders, and on SQLite the daemon runs one
# job at a time: the day gets a fifth more real time, so that Amazon's orders get about as far.
SHOP_DAY_SPEED = 850.0


# The demo's jobs: the example's, at a pace a compressed day can show (name, command, schedule).
DAY_JOBS = [("import-amazon", "import amazon", "every 15 minutes"), ("route", "route", "every 15 minutes"),
            ("ship-export", "ship export", "every 30 minutes"), ("ship-collect", "ship collect", "every 30 minutes"),
            ("outbox-send", "outbox send", "every 10 minutes"), ("ship-overdue", "ship overdue", "daily at 09:00"),
            ("invoices-create", "invoices create", "every hour"), ("invoices-feeds", "invoices feeds", "every 2 hours"),
            ("reviews-request", "reviews request", "daily at 10:00"),
            ("settlement-fetch", "settlement fetch", "daily at 21:00")]


# With the shop: one job imports every channel switched on, stock goes to both channels every
# three hours (on SQLite the daemon runs one job at a time: the compressed day has room for so
# many), the payment queue's reminders run each morning, and the bank's statement of the day is
# imported in the afternoon (``day_jobs``).
SHOP_JOBS = [("import-orders", "import orders", "every 15 minutes"), ("stock-push", "stock push", "every 3 hours"),
             ("payments-remind", "payments remind", "daily at 08:00")]


def day_jobs(today: date, *, shop: bool = False) -> str:
    """The demo's jobs.toml (``shop``: with the shop's jobs). Timeouts are on the compressed clock:
    12 h is 43 s of real time."""
    month = today.replace(day=1)
    statement = ("bank-statement", f"payments import {STATEMENT}", "daily at 15:30")
    jobs = [*(SHOP_JOBS[:1] + DAY_JOBS[1:] + SHOP_JOBS[1:] + [statement] if shop else DAY_JOBS),
            ("datev-export", f"export bookings --from {month.isoformat()} --to "
                             f"{month.replace(month=12, day=31).isoformat()} --format datev", "daily at 22:00")]
    return ("# Written by make demo for its compressed business day (the example is ../jobs.toml).\n"
            '[settings]\nlease = "10m"   # on the compressed clock: 0.6 s of real time\nmax_parallel = 3\n'
            + "".join(f'\n[jobs.{name}]\ncommand = "{command}"\nschedule = "{schedule}"\ntimeout = "12h"\n'
                      for name, command, schedule in jobs))


def at(day: date, hhmm: str) -> datetime:
    """``hhmm`` on ``day`` in Berlin, as a UTC instant."""
    return datetime.combine(day, datetime.strptime(hhmm, "%H:%M").time(), BERLIN).astimezone(timezone.utc)


def business_day(standin: AmazonStandin, day, sftp: SftpStandin, ftps: FtpStandin, smtp: SmtpStandin,
                 warehouse: Path, shop: ShopDay | None = None) -> None:
    """The day runs through jobs.toml: 'caturactl jobs daemon' on a compressed clock, while this
    process plays Amazon's buyers (orders appear as the stand-in's clock passes them), the three
    locations answering their files every half hour, an SFTP outage in the morning and Amazon
    closing a settlement in the evening; with ``shop``, its buyers on the same clock and what
    happens at the merchant's desk (``ShopDay.desk``: a phone order, the bank's statement)."""

    start = at(day, DAY_START).astimezone(BERLIN)
    # The app's clock for this process and, through CATURACTL_CLOCK, for the daemon and its jobs.
    speed = DAY_SPEED if shop is None else SHOP_DAY_SPEED
    day_clock = RunningClock(start, speed=speed, epoch=time.time() + 2.0)
    clock.install(day_clock)
    players = [FulfillerStandin(warehouse, seed=1, reply="csv", carrier="DHL", late_rate=0.05),
               FulfillerStandin(sftp.root, seed=2, reply="xml", carrier="DPD", partial_rate=0.15,
                                multi_parcel_rate=0.25, late_rate=0.2, broken_rate=0.03),
               FulfillerStandin(ftps.root, seed=3, reply="csv", carrier="GLS", late_rate=0.3)]
    stop = threading.Event()
    notes: list[str] = []

    desk = sorted((at(day, hhmm), what, act) for hhmm, what, act in (shop.desk() if shop else []))

    def at_the_desk(when: datetime, what: str, act) -> None:
        lines = act()
        notes.extend([f"{when.astimezone(BERLIN):%H:%M} {what}", *(f"  {ln}" for ln in lines)])

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
            while desk and now >= desk[0][0]:
                threading.Thread(target=at_the_desk, args=desk.pop(0), name="demo-desk", daemon=True).start()
            if now >= next_note:
                notes.append(f"{now.astimezone(BERLIN):%H:%M} {len(standin.shipments())} parcels confirmed at Amazon, "
                             f"{len(standin.invoices())} invoices uploaded" + (f"; {shop.progress()}" if shop else ""))
                next_note += timedelta(hours=2)
            time.sleep(0.05)

    player = threading.Thread(target=play, name="demo-players", daemon=True)
    log = DEMO / "day.log"
    print(f"$ caturactl jobs daemon --until {day}T{DAY_END}   (on a clock {speed:g}x fast from "
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
        for errand in threading.enumerate():  # one still under way at the desk
            if errand.name == "demo-desk":
                errand.join()
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


def after_the_day(standin: AmazonStandin, day: date, shop: ShopDay | None = None,
                  smtp: SmtpStandin | None = None) -> None:
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
    amazon_ids = {o.order_id for o in standin.marketplace.generated()}
    rows = [r for r in json.loads(output("invoices", "list", "--json")) if r["order"] in amazon_ids]
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

    if shop is not None:
        shop.after_the_day(smtp)
    say("What needs a person now (a timer would mail this; the exit code says whether to)")
    caturactl("alerts", "check", check=False)
    say("The cockpit: every open order with state, location, carrier, tracking, invoice and payment")
    caturactl("report", "cockpit", "--limit", "25")
    say("The finance report of the month")
    caturactl("report", "finance")
    say("Nine days later: review requests through Amazon's Solicitations API, inside its window, once")
    later(standin, timedelta(days=9))
    caturactl("reviews", "request")
    caturactl("reviews", "list")


def later(standin: AmazonStandin, delta: timedelta) -> None:
    """Move the app's clock (the stand-ins' and every command's: they are one) on by ``delta``."""
    standin.advance(delta)
    print(f"(the clock now shows {standin.now().astimezone(BERLIN):%Y-%m-%d %H:%M})", flush=True)


# --- the merchant's own shop beside Amazon: its orders, the desk, the bank --------------------------

SHOP_PORT = int(os.environ.get("DEMO_SHOP_PORT", "8610"))
# Where the merchant's EBICS client saves the bank's newest statement (order type C53, CAMT.053).
STATEMENT = "bank/C53.xml"
SHOP_ORDERS = 120
OPENING_BALANCE = Decimal("8412.37")  # the account before the day
CENT = Decimal("0.01")
# The shop stand-in's ways to pay, as a person names them (standins/shopware/shop.py PAYMENT_METHODS).
WAYS = {"prepayment": "prepayment (Vorkasse)", "invoice": "invoice (Kauf auf Rechnung)", "paypal": "PayPal",
        "credit_card": "card", "cash_on_delivery": "cash on delivery (Nachnahme)"}
# How buyers word the purpose of a transfer (Verwendungszweck).
PURPOSES = ["Bestellung {n}", "Vorkasse Bestellnr. {n}", "{n} {name}", "Auftrag {n}, danke", "Bestellnummer: {n}"]


def configure_shop(shop: ShopwareStandin, folder: Path = DEMO) -> None:
    """Switch the shop on in the caturactl.toml of ``folder``, its integration's secret in the
    secrets file beside Amazon's. SystemExit when the template no longer has a line this replaces."""
    cfg = folder / "caturactl.toml"
    cfg.write_text(replaced(cfg.read_text(encoding="utf-8"), {
        '[shop]\nenabled = false\nurl = ""': f'[shop]\nenabled = true\nurl = "{shop.url}"',
        'client_id = ""             # the integration': f'secrets_file = "secrets.toml"\n'
                                                        f'client_id = "{shop.client_id}"  # the integration',
    }), encoding="utf-8")
    secrets = folder / "secrets.toml"
    secrets.write_text(secrets.read_text(encoding="utf-8") + f'[shop]\nclient_secret = "{shop.client_secret}"\n',
                       encoding="utf-8")


def errand(*args: str) -> list[str]:
    """``caturactl ARGS`` run at the desk while the jobs run: the command and what it printed. On
    SQLite the daemon runs one job at a time and a command beside it may find the database locked
    (exit 69, "run this again"): the person at the desk does so, a moment later."""
    locked = 0
    for _ in range(20):
        done = subprocess.run([CATURACTL, *args], cwd=DEMO, capture_output=True, text=True, env=child_env())
        if done.returncode != 69 or "database is locked" not in done.stderr:
            break
        locked += 1
        time.sleep(0.5)
    return [f"$ caturactl {' '.join(args)}",
            *([f"(a job had the database locked: run again {locked} time(s), as it says)"] if locked else []),
            *(ln for ln in (done.stdout + done.stderr).splitlines() if ln.strip()),
            *([f"(exit {done.returncode})"] if done.returncode else [])]


@dataclass(frozen=True)
class ShopSale:
    """An order of the shop stand-in as its buyer (and so the buyer's bank) knows it."""
    number: str
    way: str  # the stand-in's payment method, a key of WAYS
    placed: datetime
    total: Decimal
    name: str
    email: str
    cancelled: bool
    shop_paid: bool  # the shop shows the payment paid: its buyer's transfer went out, or we told it so

    def transfer(self, booked: date, text: str, *, amount: Decimal | None = None, as_bank_writes: bool = False,
                 ) -> Movement:
        """The buyer's credit transfer for this order (its total unless ``amount``), ``text`` its
        purpose; ``as_bank_writes``: the name as banks print it ("MUELLER, ANNA")."""
        first, _, last = self.name.partition(" ")
        name = f"{last}, {first}".upper().replace("Ü", "UE").replace("Ö", "OE").replace("Ä", "AE") \
            if as_bank_writes else self.name
        return Movement(booked, amount or self.total, name, iban_de("50010517", int(self.number)), text)


class ShopDay:
    """The merchant's Shopware shop beside Amazon through the demo's day and the weeks after: its
    orders and what each owes, a phone order at the desk, the bank's statements (CAMT.053 from
    ``standins/bank.py``, read by the real ``payments import``), then the reminder and the
    cancellation of what stays unpaid. Whoever orders by prepayment before noon has paid by the
    afternoon; of the later ones, those whose payment the shop stand-in turns paid within the day
    (its buyers' transfers) pay, and those it leaves open (the buyer never came back) do not."""

    def __init__(self, shop: ShopwareStandin, day: date, skus: list[str]):
        self.shop, self.day, self.skus = shop, day, skus
        self.balance = OPENING_BALANCE
        self.statements: list[str] = []  # the ids of the statements the bank sent
        self.phone = ""  # the phone order's number, once taken
        self.by_name = ""  # the prepayment the afternoon's statement paid by amount and name alone

    def sales(self) -> list[ShopSale]:
        """Every order placed in the shop by now, oldest first."""
        out = []
        for o in self.shop.visible_orders():
            c = o["orderCustomer"]
            out.append(ShopSale(o["orderNumber"], self.shop.shop.payment_of(o["id"]),
                                datetime.fromisoformat(o["orderDateTime"]),
                                Decimal(str(o["amountTotal"])).quantize(CENT),
                                f"{c['firstName']} {c['lastName']}", c["email"],
                                o["stateMachineState"]["technicalName"] == "cancelled",
                                o["transactions"][0]["stateMachineState"]["technicalName"] == "paid"))
        return sorted(out, key=lambda s: s.number)

    @staticmethod
    def prepaid(sales: list[ShopSale], after: datetime, until: datetime) -> list[ShopSale]:
        """The prepayment orders placed in (``after``, ``until``] and not cancelled."""
        return [s for s in sales if s.way == "prepayment" and not s.cancelled and after < s.placed <= until]

    def statement(self, created: datetime, movements: list[Movement]) -> Path:
        """The bank's next statement of ``movements``, saved where the EBICS client keeps the newest
        one (``STATEMENT``); the balance carries on from the last."""
        sid = f"{created.astimezone(BERLIN):%Y%m%d}-{len(self.statements) + 1}"
        data, self.balance = bank_statement(msg_id=f"CAMT053-{sid}", statement_id=sid, created=created,
                                            iban="DE02120300000000202051", owner="Gartenfreude Demo GmbH",
                                            opening=self.balance, movements=movements)
        path = DEMO / STATEMENT
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        self.statements.append(sid)
        return path

    def introduce(self) -> None:
        """The shop stand-in's heading: how many orders it will take over the day, by way of paying."""
        ways = Counter(self.shop.shop.payment_of(i) for i in self.shop.shop.order_ids())
        say(f"Shopware 6 stand-in on {self.shop.url}: {sum(ways.values())} orders in the merchant's own shop over "
            f"{self.day}, beside Amazon's")
        print("  paid by " + ", ".join(f"{WAYS[w]} {n}" for w, n in ways.most_common()), flush=True)

    def yesterdays_statement(self) -> None:
        """Before the day the EBICS client holds yesterday's statement (nothing for the shop on it,
        imported yesterday); the afternoon's replaces it."""
        self.statement(at(self.day - timedelta(days=1), "20:00"), [])

    def push_stock(self, standin: AmazonStandin) -> None:
        """What may be sold of one SKU, then ``stock push`` to both channels, and what each now offers."""
        sku = self.skus[0]
        say("What the channels may sell: on hand everywhere, less reserved, less 2 kept back; pushed to the shop "
            "and to Amazon")
        caturactl("stock", "available", "--sku", sku)
        caturactl("stock", "push")
        print(f"  {sku}: the shop now offers {self.shop.product_stock()[sku]}, Amazon's listing "
              f"{standin.listing_quantities().get(sku)}", flush=True)

    # --- during the day --------------------------------------------------------------------------

    def progress(self) -> str:
        """The shop's part of a note during the day."""
        sent = Counter(t["transition"] for t in self.shop.transitions("order_transaction"))
        return f"the shop: {len(self.shop.tracking_patches())} parcels, {sent['paid']} payments marked paid"

    def desk(self) -> list[tuple[str, str, Callable[[], list[str]]]]:
        """What happens at the merchant's desk during the day: (when, what, the errand)."""
        return [("11:00", "a shop customer phones in another order, to pay on invoice:", self.take_phone_order),
                ("15:00", "the bank's statement of the day so far arrives (CAMT.053):", self.afternoon_statement)]

    def take_phone_order(self) -> list[str]:
        """11:00: the shop's first buyer orders again by phone, on invoice (``orders create``)."""
        first = self.sales()[0]
        said = errand("orders", "create", "--customer", first.email, "--line", f"{self.skus[0]}:1",
                      "--line", f"{self.skus[2]}:2", "--payment", "invoice", "--note", "ordered by phone")
        self.phone = next((m.group(1) for ln in said if (m := re.search(r"order (\S+) \(", ln))), "")
        return said

    def afternoon_statement(self) -> list[str]:
        """The transfers booked by 13:00: the prepayment orders placed before noon, one quoting
        nothing (found by amount and name), one with a digit missing, one paying two orders at
        once; a credit that is nobody's order, and the bank's charges."""
        payers = self.prepaid(self.sales(), datetime.min.replace(tzinfo=timezone.utc), at(self.day, "12:00"))
        moves: list[Movement] = []
        for i, s in enumerate(payers):
            if i == 0:
                moves.append(s.transfer(self.day, "Vielen Dank und Gruss", as_bank_writes=True))
                self.by_name = s.number
            elif i == 1:
                moves.append(s.transfer(self.day, f"Bestellung {s.number[:2]}{s.number[3:]}", as_bank_writes=True))
            elif i == 2 and len(payers) > 3:
                moves.append(s.transfer(self.day, f"Bestellungen {s.number} und {payers[3].number}",
                                        amount=s.total + payers[3].total))
            elif i != 3 or len(payers) <= 3:
                moves.append(s.transfer(self.day, PURPOSES[i % len(PURPOSES)].format(n=s.number, name=s.name)))
        moves += [Movement(self.day, Decimal("23.40"), "Gartenbedarf Nord GmbH", iban_de("37040044", 5321),
                           "Gutschrift Retoure Lieferschein 2026-4471"),
                  Movement(self.day, Decimal("-12.90"), text="Kontofuehrung November")]
        path = self.statement(at(self.day, "14:55"), moves)
        return [f"{path.relative_to(DEMO)}: {len(moves) - 1} credits and the bank's charges; the bank-statement "
                f"job imports it at 15:30"]

    # --- after the day ---------------------------------------------------------------------------

    def after_the_day(self, smtp: SmtpStandin) -> None:
        """The shop's part after the day: each payment by method, what the afternoon's statement did,
        and the phone order's payment falling due with its invoice (and what the buyer's mail says)."""
        rows = json.loads(output("payments", "list", "--json"))
        say(f"The shop beside Amazon: {len(rows)} orders owe the merchant a payment, each by how its buyer pays")
        for method, n in Counter(r["method"] for r in rows).most_common():
            states = Counter(r["status"] for r in rows if r["method"] == method)
            print(f"  {method:<11} {n:>3}: " + ", ".join(f"{k} {v}" for k, v in states.most_common()), flush=True)
        say("The afternoon's statement, imported by its job: prepayments matched, then routed; what is not sure "
            "waits for a person")
        caturactl("jobs", "history", "bank-statement")
        caturactl("payments", "unmatched")
        if self.by_name:
            caturactl("orders", "show", self.by_name)
        if self.phone:
            number = next((w for r in rows if r["order"] == self.phone for w in r["reference"].split()
                           if w.startswith("RE")), "")
            say(f"The phone order {self.phone}, on invoice: " + (
                f"shipped and invoiced ({number}); it is due when its invoice says" if number else
                "not invoiced yet, so nothing is due: the invoice will name the day"))
            caturactl("payments", "show", self.phone)
            for msg in smtp.messages if number else []:
                if number in msg["Subject"]:
                    body = msg.get_body(preferencelist=("plain",)).get_content()
                    print(f"  what the buyer reads in the mail of {number}: "
                          + next((ln.strip() for ln in body.splitlines() if "bis zum" in ln or " by " in ln), "?"),
                          flush=True)

    def weeks_after(self, standin: AmazonStandin) -> None:
        """Nine days on (the clock is there already): the bank's next statement, imported twice; six
        days later the reminders; a week after them the cancellations."""
        say("The bank's statement of the nine days: later prepayments, invoices paid quoting their number, and "
            "the carriers' cash on delivery")
        self.later_statement()
        caturactl("payments", "import", STATEMENT, check=False)
        caturactl("payments", "import", STATEMENT, check=False)  # the same file again changes nothing
        say("Two weeks after the orders: the prepayments still unpaid are reminded, by mail and in the shop")
        later(standin, timedelta(days=6))
        caturactl("payments", "overdue")
        caturactl("payments", "remind", check=False)
        say("A week after the reminder: still unpaid, so cancelled here and at the shop, and the buyer told")
        later(standin, timedelta(days=7, hours=1))
        caturactl("payments", "remind", check=False)
        cancelled = [r["order"] for r in json.loads(output("payments", "list", "--status", "cancelled", "--json"))]
        if cancelled:
            caturactl("orders", "show", cancelled[-1])

    def later_statement(self) -> Path:
        """The transfers of the nine days after: the prepayments placed from noon on whose buyers
        paid (the shop shows them paid), two of three invoice purchases quoting the invoice's
        number, and each carrier's cash on delivery for the parcels it delivered, in one transfer
        naming every order."""
        payments = {r["order"]: r for r in json.loads(output("payments", "list", "--json"))}
        orders = {r["number"]: r for r in json.loads(output("orders", "list", "--json"))}
        buyers = {s.number: s.name for s in self.sales()}
        payers = self.prepaid(self.sales(), at(self.day, "12:00"), at(self.day, DAY_END))
        moves = [s.transfer(self.day + timedelta(days=1 + i % 3), PURPOSES[i % len(PURPOSES)].format(n=s.number,
                                                                                                     name=s.name))
                 for i, s in enumerate(payers)
                 if s.shop_paid and payments.get(s.number, {}).get("status") in ("expected", "overdue")]
        # An invoiced purchase on account quotes its invoice's number (the payment's reference names it).
        on_invoice = [(p, ref) for _, p in sorted(payments.items())
                      if p["method"] == "invoice" and p["status"] != "paid" for ref in p["reference"].split()[1:2]]
        for i, (p, number) in enumerate(on_invoice):
            if i % 3 == 2:
                continue  # not paid: reminded later
            moves.append(Movement(self.day + timedelta(days=4 + i % 4), Decimal(p["expected"]) - Decimal(p["paid"]),
                                  buyers.get(p["order"], ""), iban_de("76026000", 1000 + i),
                                  f"Rechnung {number}" if i % 2 else f"{number.replace('-', '')} Kundennr"))
        by_carrier: dict[str, list[dict]] = defaultdict(list)
        for n, p in sorted(payments.items()):
            if p["method"] == "cod" and p["status"] == "expected" and orders.get(n, {}).get("state") == "shipped":
                by_carrier[orders[n]["carrier"]].append(p)
        for k, (carrier, owed) in enumerate(sorted(by_carrier.items())):
            moves.append(Movement(self.day + timedelta(days=6), sum((Decimal(p["expected"]) for p in owed), Decimal(0)),
                                  f"{carrier} Nachnahme-Inkasso", iban_de("10070000", 9000 + k),
                                  "Nachnahme " + " ".join(p["order"] for p in owed)))
        return self.statement(at(self.day + timedelta(days=9), "07:00"), moves)

    def summary(self, standin: AmazonStandin) -> None:
        """What the shop stand-in, Amazon's listings and the bank hold at the end."""
        moves = Counter(t["transition"] for t in self.shop.transitions("order_transaction"))
        cancelled = sum(1 for t in self.shop.transitions("order") if t["to"] == "cancelled")
        print(f"The Shopware stand-in holds {len(self.shop.tracking_patches())} tracking codes, payment moves "
              f"({', '.join(f'{k} {v}' for k, v in moves.most_common())}), {cancelled} orders we cancelled and "
              f"{len(self.shop.products.writes)} stock writes; Amazon {len(standin.listing_quantities())} listing "
              f"quantities; the bank sent {len(self.statements)} statements.", flush=True)


def main() -> int:
    # The day the demo plays, on the app's clock (CATURACTL_CLOCK for every command it runs):
    # whatever the real date, every date a person sees belongs to this day.
    day = date.fromisoformat(os.environ.get("DEMO_DAY", DEMO_DAY))
    if DEMO.exists():
        shutil.rmtree(DEMO)
    DEMO.mkdir()
    with AmazonStandin(orders=400, seed=1, day=day, port=PORT, rate_scale=SPEED,
                       start=at(day, "05:30")) as standin, \
            ShopwareStandin(orders=SHOP_ORDERS, seed=1, day=day, port=SHOP_PORT, clock=standin.clock) as shopware:
        clock.install(standin.clock)  # setting up, before the shop opens; the shop's clock is Amazon's
        say(f"SP-API stand-in on {standin.url}: 400 Amazon orders placed over {day} (DE/FR/IT/ES)")
        skus = [p["sku"] for p in standin.catalogue()]
        shop = ShopDay(shopware, day, skus)
        shop.introduce()
        caturactl("init")
        configure(standin)
        configure_shop(shopware)
        (DEMO / "products.csv").write_text(standin.catalogue_csv(), encoding="utf-8")
        caturactl("products", "import", "products.csv")

        servers = DEMO / "servers"
        warehouse = servers / "warehouse"
        warehouse.mkdir(parents=True)
        os.environ[PARTNER_PASSWORD_ENV] = "demo"
        with SftpStandin(servers / "fulfiller-sftp") as sftp, FtpStandin(servers / "partner-ftps", tls=True) as ftps, \
                SmtpStandin() as smtp, DropshipDay(servers, DEMO, run=caturactl, advance=standin.advance) as dropship:
            configure_fulfilment(sftp, ftps, smtp, warehouse)
            dropship.configure()
            write_stock(skus)
            say("Stock: the own warehouse counts its own, the fulfiller and the partner report theirs")
            for code in ("WH", "FUL", "PARTNER"):
                caturactl("stock", "import", code, f"stock-{code}.csv")
            dropship.before_the_day()
            shop.push_stock(standin)
            shop.yesterdays_statement()

            say("jobs.toml: what runs unattended, and when")
            (DEMO / "jobs.toml").write_text(day_jobs(day, shop=True), encoding="utf-8")
            caturactl("jobs", "list")
            say(f"The business day of {day}: the jobs daemon runs it, orders arrive over the day in both channels")
            business_day(standin, day, sftp, ftps, smtp, warehouse, shop)
            dropship.next_day()  # the evening and the partners' next morning
            after_the_day(standin, day, shop, smtp)
            shop.weeks_after(standin)
            dropship.weeks_after()
    print(f"\nThe Amazon stand-in holds {len(standin.shipments())} confirmed parcels, {len(standin.invoices())} "
          f"uploaded invoices and {len(standin.solicitations())} review requests.", flush=True)
    shop.summary(standin)
    print(f"\nThe workspace stays in {DEMO}: cd demo && ../.venv/bin/caturactl report cockpit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
