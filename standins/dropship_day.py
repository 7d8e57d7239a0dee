"""The dropshippers' part of ``make demo``: two partners that ship from their own stock on our
purchase orders, in our name.

- DS1, Gartenwelt Direkt, has an ERP: our purchase orders reach it as openTRANS 2.1 ORDER files
  (with the delivery note and label in our design) on its SFTP server, and its system answers
  there: an availability CSV, ORDERRESPONSE, DISPATCHNOTIFICATION (``standins/ds_partner.py``).
- DS2, Küchen-Kontor Schmidt, has none: its clerk works on the partner portal. Her actions are
  played through the very service calls the portal's forms make
  (``caturactl/fulfilment/dropship/service.py``, ``caturactl/portal/auth.py``), as her user.

Before the day the fulfiller reports two products sold out that the own warehouse never
stocked, and both partners say what they have of them, so routing sends those lines of the
day's orders to the partners. After the day (``next_day``) the purchase orders go out; the next
morning DS1's system accepts all but one line (out of stock: it goes back to routing and on to
DS2), DS2 refreshes its figures in the portal while DS1's go stale, both ship, and the one
purchase order DS2 leaves unanswered passes its deadline and goes to a person. Weeks later
(``weeks_after``) a buyer returns what DS2 shipped: DS2 confirms it in the portal, the credit
note and DS2's purchase credit follow, and the demo prints the portal's address and a login.

Every merchant's step is a real ``caturactl`` command (``run``: the demo's); the partners' steps
happen in this process, on the app's one clock, which ``advance`` moves.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from carriers.tracking import make_number
from caturactl import config
from caturactl.app import App
from caturactl.billing.models import INVOICE, Invoice
from caturactl.catalogue import stock
from caturactl.core import clock
from caturactl.fulfilment.dropship import returns, service
from caturactl.fulfilment.dropship.models import PurchaseOrder
from caturactl.fulfilment.dropship.purchases import PurchaseCredit
from caturactl.orders.models import Order
from caturactl.portal import auth

from standins.ds_partner import OpenTransPartner, ReceivedOrder
from standins.servers import SftpStandin

BERLIN = ZoneInfo("Europe/Berlin")
DS1, DS2 = "DS1", "DS2"
NAMES = {DS1: "Gartenwelt Direkt", DS2: "Küchen-Kontor Schmidt"}
# What each partner has: products the own warehouse never stocked and the fulfiller sells out of.
# DS2 also has a few of DS1's planters: where a line DS1 rejects goes next.
STOCK = {DS1: {"HG-1004": 40}, DS2: {"HH-2002": 30, "HG-1004": 6}}
SKUS = sorted({sku for have in STOCK.values() for sku in have})
RECOUNT = {"HH-2002": 22, "HG-1004": 6}  # DS2's count the next morning
ANSWER_HOURS = 4  # both partners answer within 4 of their business hours (answer_within_hours)
REJECTED_SKU = "HG-1004"  # DS1 finds one planter short
DS1_PRICES = "sku;price\nHG-1004;14.20\n"  # net each, as agreed; a file beside caturactl.toml
CLERK = "lena@kuechen-kontor.example"  # DS2's portal user
# The demo's portal login, printed at the end: a demo has nothing to protect.
CLERK_PASSWORD = "Kontor-Demo-2026"
ACTOR = f"portal:{CLERK}"  # how the portal names her in every event
DS2_SERIAL = 6_000_001  # DS2's tracking numbers, apart from the fulfillers' and DS1's ranges

CATURACTL = Path(sys.executable).parent / "caturactl"  # the command this Python installed
Run = Callable[..., int]  # the demo's caturactl(*args, check=True): echoes and runs a command


def say(text: str) -> None:
    """A heading of the demo's output, as the demo prints its own."""
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def tell(text: str) -> None:
    """A line of what happened, indented under its heading."""
    print(f"  {text}", flush=True)


def config_text(sftp: SftpStandin) -> str:
    """The caturactl.toml sections of the two dropshippers and DS1's SFTP server."""
    return f"""
# --- written by make demo: two dropshippers (caturactl dropship ..., the partner portal) ---
[locations.DS1]
name = "Gartenwelt Direkt GmbH"
kind = "dropshipper"
street = "Gärtnerweg 12"             # where returns to it go (the return label's receiver)
postal_code = "47533"
city = "Kleve"
priority = 50
carriers = ["dhl_paket", "dhl_international", "ups_express"]
transport = "ds1_sftp"
purchase_prices = "prices/ds1.csv"
lead_time_days = 1
answer_within_hours = {ANSWER_HOURS}
business_hours = "08:00-17:00"
holidays = "DE-NW"
availability_max_age_hours = 24
creditor_account = "70001"

[locations.DS2]
name = "Küchen-Kontor Schmidt KG"
kind = "dropshipper"
street = "Hansaring 40"
postal_code = "50670"
city = "Köln"
priority = 60
carriers = ["dpd_classic", "dhl_paket", "ups_express"]
purchase_prices = {{ "HH-2002" = "24.90", "HG-1004" = "14.90" }}
answer_within_hours = {ANSWER_HOURS}
business_hours = "08:00-17:00"
holidays = "DE-NW"
availability_max_age_hours = 24
creditor_account = "70002"

[transports.ds1_sftp]
kind = "sftp"
host = "127.0.0.1"
port = {sftp.port}
user = "gartenfreude"
key_file = "{sftp.client_key_file}"
host_key = "{sftp.host_key_line}"
outbound_dir = "orders"
inbound_dir = "answers"
read_dirs = ["done"]
timeout_seconds = 5
"""


class DropshipDay:
    """The two dropshippers through the demo (see the module docstring). A context manager: it
    runs DS1's SFTP server on ``servers``/ds1-sftp while open. ``folder`` is the workspace;
    ``advance`` moves the app's clock (the demo's stand-ins follow it)."""

    def __init__(self, servers: Path, folder: Path, *, run: Run, advance: Callable[[timedelta], object]) -> None:
        self.folder, self.run, self.advance = folder, run, advance
        self.sftp = SftpStandin(servers / "ds1-sftp")
        self.ds1 = OpenTransPartner(self.sftp.root)
        self.serial = DS2_SERIAL
        self.rejected = ""  # "PO000123 line 2 (HG-1004)"
        self.rerouted: list[str] = []  # DS2's purchase orders made from DS1's rejection
        self.left: str = ""  # the purchase order DS2 leaves unanswered

    def __enter__(self) -> "DropshipDay":
        self.sftp.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sftp.stop()

    # --- before the day ----------------------------------------------------------------------

    def configure(self) -> None:
        """The partners' sections in the workspace's caturactl.toml, DS1's price file beside it."""
        cfg = self.folder / "caturactl.toml"
        cfg.write_text(cfg.read_text(encoding="utf-8") + config_text(self.sftp), encoding="utf-8")
        (self.folder / "prices").mkdir(exist_ok=True)
        (self.folder / "prices" / "ds1.csv").write_text(DS1_PRICES, encoding="utf-8")

    def before_the_day(self) -> None:
        """Our own stock of the partners' products runs out; both partners say what they have:
        DS1's system by a file on its server, DS2's clerk in the portal (her login made first)."""
        say(f"Dropshippers: {NAMES[DS1]} (DS1, openTRANS over SFTP) and {NAMES[DS2]} (DS2, on the partner "
            f"portal) carry {', '.join(SKUS)}, which we have run out of")
        self.sell_out()
        name = self.ds1.stock_file(STOCK[DS1], clock.now())
        tell(f"DS1's system puts its stock count on its server: answers/{name}")
        self.run("dropship", "read")
        with self.database() as s:
            token = auth.invite(s, s.info["config"], DS2, CLERK)
            auth.accept_invitation(s, token, CLERK_PASSWORD)
            service.set_availability(s, DS2, STOCK[DS2], actor=ACTOR)
        tell(f"DS2's clerk ({CLERK}) accepts her portal invitation and enters what Küchen-Kontor has: "
             + ", ".join(f"{sku} {n}" for sku, n in STOCK[DS2].items()) + "; both counts are good for 24 hours")

    def sell_out(self) -> None:
        """Each own location that still has a partner's product reports none left (a stock file)."""
        with self.database() as s:
            rows = stock.stock_rows(s)
        for location in sorted({r["location"] for r in rows if r["sku"] in SKUS and r["on_hand"] > 0}):
            name = f"stock-{location}-sold-out.csv"
            (self.folder / name).write_text("sku;on_hand\n" + "".join(f"{sku};0\n" for sku in SKUS), encoding="utf-8")
            self.run("stock", "import", location, name)

    # --- the evening and the next day -----------------------------------------------------------

    def next_day(self) -> None:
        """After the day's jobs: the purchase orders go out; the next morning the partners
        answer and ship, a rejected line is routed again, DS1's figures go stale, an unanswered
        purchase order passes its deadline."""
        with self.database() as s:
            routed = Counter(dict(s.execute(select(PurchaseOrder.partner, func.count(PurchaseOrder.id))
                                            .group_by(PurchaseOrder.partner)).all()))
        say(f"The day's orders with {', '.join(SKUS)}: routing made {routed.total()} purchase orders "
            f"({', '.join(f'{p} {n}' for p, n in sorted(routed.items()))}); in the evening they go out")
        if not routed:
            tell("no order needed the partners' products")
            return
        self.run("dropship", "send")
        orders = self.ds1.take_orders()
        tell(f"DS1's system picks up {len(orders)} ORDER files and their {sum(len(o.papers) for o in orders)} "
             "papers (delivery note and label in our design) from its server")
        deadline = self.first_deadline()
        morning = deadline - timedelta(hours=ANSWER_HOURS)
        self.until(morning - timedelta(hours=1))
        self.ds1_answers(orders)
        self.until(morning + timedelta(minutes=15))
        self.ds2_answers()
        self.until(morning + timedelta(minutes=30))
        self.read_and_reroute()
        self.until(morning + timedelta(hours=2))
        self.ship(orders)
        self.until(deadline + timedelta(minutes=30))
        say(f"Past the answer deadline ({deadline.astimezone(BERLIN):%H:%M}): lines left unanswered "
            f"({self.left or 'none'}) go back to routing, or to a person when nobody else has them fresh")
        self.run("dropship", "overdue")
        say("Availability: DS2 counted again this morning; DS1's file is a day old, so its figures count as 0 "
            "(we never sell what may be gone)")
        self.run("dropship", "availability", "list")
        say("The orders the partners completed are invoiced (the hourly job's work), in our name")
        self.run("invoices", "create", check=False)  # 65: another order's invoice waits on a ticket
        self.figures(routed)

    def first_deadline(self) -> datetime:
        """The earliest answer deadline of the purchase orders just sent (the partners' next
        business morning plus ANSWER_HOURS)."""
        with self.database() as s:
            return min(po.respond_by for code in (DS1, DS2) for po in service.purchase_orders(s, code, limit=500))

    def until(self, when: datetime) -> None:
        """The app's clock moved on to ``when`` (never back)."""
        if when > clock.now():
            self.advance(when - clock.now())
        print(f"(the clock now shows {clock.now().astimezone(BERLIN):%Y-%m-%d %H:%M})", flush=True)

    def ds1_answers(self, orders: list[ReceivedOrder]) -> None:
        """DS1's system answers each order: all accepted, but one planter short."""
        short = next((o for o in orders for n, sku, _ in o.lines if sku == REJECTED_SKU), None)
        for o in orders:
            rejected = {n: "out_of_stock" for n, sku, _ in o.lines if sku == REJECTED_SKU} if o is short else {}
            self.ds1.answer(o, clock.now(), rejected)
            if rejected:
                self.rejected = f"{o.number} line {min(rejected)} ({REJECTED_SKU})"
        tell(f"DS1's system answers all {len(orders)} purchase orders (ORDERRESPONSE files): every line accepted "
             f"but {self.rejected or 'none'}, rejected: out of stock")

    def ds2_answers(self) -> None:
        """DS2's clerk logs in, counts again and accepts every purchase order but the newest."""
        with self.database() as s:
            service.set_availability(s, DS2, RECOUNT, actor=ACTOR)
            waiting = service.purchase_orders(s, DS2, view="open", limit=500)
            self.left = waiting[0].number if waiting else ""
            for po in waiting[1:]:
                service.accept_lines(s, DS2, po.number, None, actor=ACTOR)
        tell(f"DS2's clerk logs in to the portal: enters today's count and accepts {max(0, len(waiting) - 1)} "
             f"purchase order(s); {self.left or 'none'} she leaves for later")

    def read_and_reroute(self) -> None:
        """DS1's answers are read; its rejected line goes back to routing and on to DS2."""
        with self.database() as s:
            before = {po.number for po in service.purchase_orders(s, DS2, view="all", limit=500)}
        say(f"DS1's answers are read: {self.rejected or 'no line'} rejected, back to routing; a new purchase "
            "order goes out at once")
        self.run("dropship", "read")
        self.run("dropship", "send")
        with self.database() as s:
            self.rerouted = sorted({po.number for po in service.purchase_orders(s, DS2, view="all", limit=500)}
                                   - before)
            now_on = [f"{n} line {ln.line_no} ({ln.quantity} × {ln.sku})" for n in self.rerouted
                      for ln in service.purchase_order(s, DS2, n).lines]
        tell(f"{self.rejected} is now " + (", ".join(now_on) + " at DS2, on its portal" if now_on
                                            else "with no partner: a ticket"))

    def ship(self, orders: list[ReceivedOrder]) -> None:
        """DS1's system reports a parcel per purchase order; DS2's clerk enters hers in the
        portal, tracking numbers checked; the channels are told."""
        sent = [d for o in orders if (d := self.ds1.dispatch(o, clock.now()))]
        say(f"The partners ship: DS1's system writes {len(sent)} DISPATCHNOTIFICATION files, DS2's clerk enters "
            "her parcels in the portal; the channels are told")
        with self.database() as s:
            for number in self.rerouted:
                service.accept_lines(s, DS2, number, None, actor=ACTOR)
            parcels = [self.ds2_parcel(s, po.number) for po in service.purchase_orders(s, DS2, view="to_ship",
                                                                                        limit=500)]
        tell(f"DS2: {len(parcels)} parcel(s) entered, e.g. " + ", ".join(parcels[:3])
             + "; each queued its channel's shipping confirmation, sent with DS1's")
        self.run("dropship", "read")

    def ds2_parcel(self, s: Session, number: str) -> str:
        """One parcel of DS2's with everything left to ship, with the carrier we asked for."""
        carrier = service.purchase_order(s, DS2, number).carrier
        tracking = make_number(carrier, self.serial)
        self.serial += 1
        service.add_parcel(s, DS2, number, carrier=carrier, tracking=tracking, lines=None, actor=ACTOR)
        return f"{number} {carrier} {tracking}"

    def figures(self, routed: Counter) -> None:
        """The partners' figures after the next day: purchase orders (``routed``: as routing made
        them, per partner), their lines by state, the rejection and where it went, parcels."""
        with self.database() as s:
            details = [service.purchase_order(s, code, po.number) for code in (DS1, DS2)
                       for po in service.purchase_orders(s, code, view="all", limit=500)]
        lines = Counter(ln.state for d in details for ln in d.lines)
        parcels = Counter(p.carrier for d in details for p in d.parcels)
        tell(f"purchase orders sent: {len(details)} ({', '.join(f'{p} {n}' for p, n in sorted(routed.items()))} "
             f"before the re-routing); lines {', '.join(f'{k} {v}' for k, v in lines.most_common())}")
        tell(f"rejected and routed again: {self.rejected} -> {', '.join(self.rerouted) or 'nowhere'}; "
             f"left unanswered until the deadline: {self.left or 'none'}")
        tell(f"parcels the partners shipped: {sum(parcels.values())} "
             f"({', '.join(f'{c} {n}' for c, n in parcels.most_common())})")

    # --- weeks later --------------------------------------------------------------------------

    def weeks_after(self) -> None:
        """A buyer returns what DS2 shipped: announced, confirmed by DS2 in the portal, credited;
        then the portal's address and the demo login."""
        order = self.returned_order()
        say("Weeks later a buyer sends back what DS2 shipped: the return goes to DS2, which confirms it in the "
            "portal; our credit note and DS2's purchase credit follow")
        if order is None:
            tell("no order shipped by DS2 is invoiced yet: nothing to return")
        else:
            self.run("dropship", "return", "announce", order, "--reason", "passt nicht in den Schrank")
            with self.database() as s:
                numbers = [rt.number for rt in service.returns(s, DS2, view="open")]
            for number in numbers:  # the label the buyer sticks on (DS2 downloads it in the portal too)
                self.run("dropship", "return", "label", number, "--out", "papers")
            with self.database() as s:
                for rt in service.returns(s, DS2, view="open"):
                    service.confirm_return(s, DS2, rt.id, condition="as_new", note="originalverpackt, unbenutzt",
                                           actor=ACTOR)
            tell("DS2's clerk confirms in the portal: received, as new")
            self.run("dropship", "return", "credit")
            with self.database() as s:
                done = [(rt.number, rt.state, rt.credit_note) for rt in returns.listing(s, DS2, "all")]
                # Summed here, not by the database: SQLite's SUM of a decimal column is a float.
                owed = sum(s.scalars(select(PurchaseCredit.gross).where(PurchaseCredit.partner == DS2)), Decimal(0))
            for number, state, note in done:
                tell(f"return {number}: {state}, our credit note {note or '(none)'} to the buyer")
            tell(f"DS2 owes us {owed} EUR back for it (purchase credit, at the agreed price, with VAT)")
        self.portal_login()

    def returned_order(self) -> str | None:
        """The order the buyer returns: the oldest DS2 shipped whole and we invoiced."""
        with self.database() as s:
            return s.scalar(select(Order.external_id).join(PurchaseOrder, PurchaseOrder.order_id == Order.id)
                            .where(PurchaseOrder.partner == DS2, PurchaseOrder._state.in_(("shipped", "closed")),
                                   exists().where(Invoice.order_id == Order.id, Invoice.kind == INVOICE))
                            .order_by(PurchaseOrder.id).limit(1))

    def portal_login(self) -> None:
        """Where the portal runs, how to start it, and DS2's clerk's login."""
        cfg = config.load(self.folder / "caturactl.toml", environ={})
        address = cfg.portal.public_url.rstrip("/") or f"http://{cfg.portal.host}:{cfg.portal.port}"
        say("The partner portal: have a look as DS2's clerk")
        tell(f"start it:  {os.path.relpath(CATURACTL)} --config {os.path.relpath(cfg.path)} portal serve")
        tell(f"open:      {address}/login")
        tell(f"log in:    {CLERK}  /  {CLERK_PASSWORD}")

    # --- the partners' side of the database ----------------------------------------------------

    @contextmanager
    def database(self) -> Iterator[Session]:
        """A unit of work on the workspace's database, as the portal opens one per request."""
        app = App(config.load(self.folder / "caturactl.toml", environ={}))
        try:
            with app.work() as s:
                yield s
        finally:
            app.dispose()


__all__ = ["DropshipDay", "config_text"]
