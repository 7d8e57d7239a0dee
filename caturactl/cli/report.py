"""``caturactl report cockpit|sales|stock|finance|overdue``: the figures a merchant reads.

A report of several tables (sales, stock, finance, overdue) prints one table per section; with
``--json`` it is one array in which each object has a ``section`` key and that section's table
columns; ``--format csv`` has a ``section`` column and the columns of every section (empty where
a section has no such column).
"""

from __future__ import annotations

import click

from caturactl.cli.listing import Rows, Sections, limited, listing
from caturactl.cli.output import Column, Section
from caturactl.cli.params import DAYS, count
from caturactl.core import clock
from caturactl.views.reports import cockpit_rows, finance, overdue, sales, stock_report

TABLE_DEFAULT_LIMIT = 100
R = "right"

COCKPIT = [Column("order", "Order"), Column("date", "Date"), Column("buyer", "Buyer", max_width=24),
           Column("state", "State"), Column("hold_reason", "Hold reason", max_width=36),
           Column("location", "Location"), Column("carrier", "Carrier", max_width=16),
           Column("tracking", "Tracking", max_width=40), Column("invoice", "Invoice", max_width=28),
           Column("payment", "Payment")]


_MONEY = [Column("orders", "Orders", R), Column("units", "Units", R), Column("net", "Net", R),
          Column("gross", "Gross", R), Column("currency", "Cur")]
SALES = [Section("month", "Sales in {month}", [Column("month", "Month")] + _MONEY),
         Section("sku", "Sales by SKU", [Column("sku", "SKU"), Column("title", "Title", max_width=36)] + _MONEY),
         Section("marketplace", "Sales by marketplace", [Column("marketplace", "Marketplace")] + _MONEY),
         Section("top", "Top sellers", [Column("rank", "#", R), Column("sku", "SKU"),
                                        Column("title", "Title", max_width=36), Column("units", "Units", R),
                                        Column("gross", "Gross", R), Column("currency", "Cur"),
                                        Column("on_hand", "On hand", R)]),
         Section("slow", "Slow sellers (stock on hand, at most {slow} sold)",
                 [Column("sku", "SKU"), Column("title", "Title", max_width=36), Column("units", "Units", R),
                  Column("on_hand", "On hand", R)])]
_STOCK = [Column("on_hand", "On hand", R), Column("reserved", "Reserved", R), Column("available", "Available", R)]
STOCK = [Section("location", "Stock per location", [Column("location", "Location"), Column("sku", "SKU"),
                                                     Column("title", "Title", max_width=36)] + _STOCK),
         Section("sku", "Stock per SKU (waiting: on orders not yet routed; expected: available - waiting)",
                 [Column("sku", "SKU"), Column("title", "Title", max_width=36)] + _STOCK
                 + [Column("waiting", "Waiting", R), Column("expected", "Expected", R)])]
FINANCE = [Section("revenue", "Revenue in {month} by country and VAT rate (invoices less credit notes)",
                   [Column("country", "Country"), Column("category", "Cat"), Column("rate", "Rate %", R),
                    Column("invoices", "Invoices", R), Column("credit_notes", "Credit notes", R),
                    Column("net", "Net", R), Column("tax", "VAT", R), Column("gross", "Gross", R),
                    Column("currency", "Cur")]),
           Section("fees", "Amazon settlements deposited in {month}",
                   [Column("settlement", "Settlement"), Column("deposit", "Deposit"), Column("sales", "Sales", R),
                    Column("refunds", "Refunds", R), Column("fees", "Fees", R), Column("other", "Other", R),
                    Column("reserve", "Reserve", R), Column("payout", "Payout", R), Column("currency", "Cur")]),
           Section("receivables", "Open receivables now (unpaid invoices by age)",
                   [Column("age", "Age"), Column("invoices", "Invoices", R), Column("gross", "Gross", R),
                    Column("currency", "Cur"), Column("oldest", "Oldest")]),
           Section("differences", "Settlement differences open now",
                   [Column("settlement", "Settlement"), Column("deposit", "Deposit"), Column("kind", "Kind"),
                    Column("differences", "Count", R), Column("amount", "Amount", R), Column("currency", "Cur")])]
OVERDUE = [Section("hold", "Orders on hold", [Column("order", "Order"), Column("since", "Since"),
                                              Column("age", "Age", R), Column("hold_reason", "Reason", max_width=50),
                                              Column("ticket", "Ticket")]),
           Section("delivery", "Delivery notes past their deadline",
                   [Column("delivery", "Delivery"), Column("order", "Order"), Column("location", "Location"),
                    Column("state", "State"), Column("deadline", "Deadline"), Column("late_by", "Late by", R)]),
           Section("unpaid", "Invoices unpaid for more than {days} days",
                   [Column("invoice", "Invoice"), Column("order", "Order"), Column("date", "Date"),
                    Column("age_days", "Days", R), Column("gross", "Gross", R), Column("currency", "Cur"),
                    Column("delivery", "Delivery")]),
           Section("outbox", "Outbox messages failed or failing",
                   [Column("id", "Id", R), Column("kind", "Kind"), Column("target", "Target"),
                    Column("status", "Status"), Column("attempts", "Tries", R), Column("created", "Created"),
                    Column("last_error", "Last error", max_width=60)])]


@click.group()
def report() -> None:
    """Reports: open orders, sales, stock, finance, and what is overdue."""


@report.command("cockpit")
@listing(COCKPIT, "Open orders", empty="no open orders", screenful=TABLE_DEFAULT_LIMIT, first="oldest")
def report_cockpit(app, s, limit) -> Rows:
    """Every open order, oldest first.

    Open: not cancelled, and not shipped with every delivery note invoiced and every invoice
    paid. Shows state, hold reason, location, carrier, tracking, invoice and payment."""
    return limited(cockpit_rows, s, app.cfg.tz, limit=limit)


@report.command("sales")
@click.option("--month", help="The month (YYYY-MM); default: the current month in the configured time zone.")
@click.option("--top", type=count(), default=10, show_default=True,
              help="How many top and slow sellers.")
@click.option("--slow-max-units", type=count(0), default=0, show_default=True,
              help="A SKU with stock on hand that sold at most this many pieces is a slow seller.")
@listing()
def report_sales(app, s, month, top, slow_max_units) -> Sections:
    """A month's sales: SKUs, marketplaces, top and slow.

    What was invoiced in the month, less credit notes: per month, SKU and marketplace (orders,
    units, net, gross), the top sellers and the slow sellers."""
    r = sales(s, app.cfg.tz, clock.now(), month=month, top=top, slow_max_units=slow_max_units)
    return Sections(list(zip(SALES, (r.by_month, r.by_sku, r.by_marketplace, r.top, r.slow))),
                    {"month": r.month, "slow": slow_max_units})


@report.command("stock")
@listing()
def report_stock(app, s) -> Sections:
    """Stock per location and per SKU.

    On hand, reserved and available per location and SKU; per SKU also what orders not yet
    routed are waiting for, and what would be left."""
    per_location, per_sku = stock_report(s)
    return Sections([(STOCK[0], per_location), (STOCK[1], per_sku)])


@report.command("finance")
@click.option("--month", help="The month (YYYY-MM); default: the current month in the configured time zone.")
@listing()
def report_finance(app, s, month) -> Sections:
    """Revenue, Amazon fees, receivables, open differences.

    The month's revenue by country and VAT rate, Amazon's fees per settlement, and, as of now,
    the open receivables by age and the open settlement differences."""
    r = finance(s, app.cfg.tz, clock.now(), month=month)
    return Sections(list(zip(FINANCE, (r.revenue, r.fees, r.receivables, r.differences))), {"month": r.month})


@report.command("overdue")
@click.option("--unpaid-days", type=DAYS, default=30, show_default=True,
              help="List invoices unpaid for more than this many days.")
@listing()
def report_overdue(app, s, unpaid_days) -> Sections:
    """What is late: holds, deliveries, invoices, outbox.

    Orders on hold, delivery notes past their deadline, invoices unpaid too long, and outbox
    messages that failed or keep failing."""
    r = overdue(s, app.cfg.tz, clock.now(), unpaid_days=unpaid_days)
    return Sections(list(zip(OVERDUE, (r.holds, r.deliveries, r.unpaid, r.outbox))), {"days": unpaid_days})


COMMANDS = [report]
