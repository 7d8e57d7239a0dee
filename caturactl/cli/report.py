"""``caturactl report cockpit|sales|stock|finance|overdue``: the figures a merchant reads.

A report of several tables (sales, stock, finance, overdue) prints one table per section; with
``--json`` it is one array in which each object has a ``section`` key and that section's table
columns; ``--format csv`` has a ``section`` column and the columns of every section (empty where
a section has no such column).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import click

from caturactl.cli.output import Column, console, emit, format_options, jsonable, pick_format
from caturactl.cli.params import DAYS, count
from caturactl.core import clock

TABLE_DEFAULT_LIMIT = 100
R = "right"

COCKPIT = [Column("order", "Order"), Column("date", "Date"), Column("buyer", "Buyer", max_width=24),
           Column("state", "State"), Column("hold_reason", "Hold reason", max_width=36),
           Column("location", "Location"), Column("carrier", "Carrier", max_width=16),
           Column("tracking", "Tracking", max_width=40), Column("invoice", "Invoice", max_width=28),
           Column("payment", "Payment")]


@dataclass(frozen=True)
class Section:
    key: str  # the ``section`` value in JSON and CSV
    title: str
    columns: list[Column]


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


def emit_sections(parts: list[tuple[Section, list[dict]]], *, fmt: str, **title_values) -> None:
    """Print each section as its own table, or all of them as one JSON array / one CSV."""
    if fmt == "json":
        click.echo(json.dumps([{"section": sec.key, **{c.key: jsonable(r.get(c.key)) for c in sec.columns}}
                               for sec, rows in parts for r in rows], ensure_ascii=False, indent=1))
        return
    if fmt == "csv":
        union: dict[str, Column] = {"section": Column("section", "Section")}
        for sec, _ in parts:
            union.update({c.key: c for c in sec.columns if c.key not in union})
        emit([{**r, "section": sec.key} for sec, rows in parts for r in rows], list(union.values()), fmt="csv")
        return
    for sec, rows in parts:
        title = sec.title.format(**title_values)
        emit(rows, sec.columns, fmt="table", title=f"{title} ({len(rows)})", empty=f"{title}: none")


def _now() -> datetime:
    return clock.now()


@click.group()
def report() -> None:
    """Reports: open orders, sales, stock, finance, and what is overdue."""


@report.command("cockpit")
@click.option("--limit", type=count(),
              help=f"At most this many orders, oldest first (table default {TABLE_DEFAULT_LIMIT}; "
                   "--json and csv: all).")
@format_options
@click.pass_obj
def report_cockpit(obj, limit, fmt, as_json) -> None:
    """Every open order, oldest first.

    Open: not cancelled, and not shipped with every delivery note invoiced and every invoice
    paid. Shows state, hold reason, location, carrier, tracking, invoice and payment."""
    from caturactl.views.reports import cockpit_rows
    app = obj.ready_app()
    fmt = pick_format(fmt, as_json)
    if fmt == "table" and limit is None:
        limit = TABLE_DEFAULT_LIMIT
    counted: list[int] = []
    with app.session() as s:
        rows = cockpit_rows(s, app.cfg.tz, limit=limit, counted=counted if fmt == "table" else None)
    more = bool(counted) and counted[0] > len(rows)
    emit(rows, COCKPIT, fmt=fmt, title=f"Open orders ({len(rows)} of {counted[0]})" if more else
         f"Open orders ({len(rows)})", empty="no open orders")
    if more:
        console.print(f"showing the oldest {len(rows)}; --limit N for more, --json or --format csv for all",
                      style="dim", highlight=False)


@report.command("sales")
@click.option("--month", help="The month (YYYY-MM); default: the current month in the configured time zone.")
@click.option("--top", type=count(), default=10, show_default=True,
              help="How many top and slow sellers.")
@click.option("--slow-max-units", type=count(0), default=0, show_default=True,
              help="A SKU with stock on hand that sold at most this many pieces is a slow seller.")
@format_options
@click.pass_obj
def report_sales(obj, month, top, slow_max_units, fmt, as_json) -> None:
    """A month's sales: SKUs, marketplaces, top and slow.

    What was invoiced in the month, less credit notes: per month, SKU and marketplace (orders,
    units, net, gross), the top sellers and the slow sellers."""
    from caturactl.views.reports import sales
    app = obj.ready_app()
    with app.session() as s:
        r = sales(s, app.cfg.tz, _now(), month=month, top=top, slow_max_units=slow_max_units)
    emit_sections(list(zip(SALES, (r.by_month, r.by_sku, r.by_marketplace, r.top, r.slow))),
                  fmt=pick_format(fmt, as_json), month=r.month, slow=slow_max_units)


@report.command("stock")
@format_options
@click.pass_obj
def report_stock(obj, fmt, as_json) -> None:
    """Stock per location and per SKU.

    On hand, reserved and available per location and SKU; per SKU also what orders not yet
    routed are waiting for, and what would be left."""
    from caturactl.views.reports import stock_report
    app = obj.ready_app()
    with app.session() as s:
        per_location, per_sku = stock_report(s)
    emit_sections([(STOCK[0], per_location), (STOCK[1], per_sku)], fmt=pick_format(fmt, as_json))


@report.command("finance")
@click.option("--month", help="The month (YYYY-MM); default: the current month in the configured time zone.")
@format_options
@click.pass_obj
def report_finance(obj, month, fmt, as_json) -> None:
    """Revenue, Amazon fees, receivables, open differences.

    The month's revenue by country and VAT rate, Amazon's fees per settlement, and, as of now,
    the open receivables by age and the open settlement differences."""
    from caturactl.views.reports import finance
    app = obj.ready_app()
    with app.session() as s:
        r = finance(s, app.cfg.tz, _now(), month=month)
    emit_sections(list(zip(FINANCE, (r.revenue, r.fees, r.receivables, r.differences))),
                  fmt=pick_format(fmt, as_json), month=r.month)


@report.command("overdue")
@click.option("--unpaid-days", type=DAYS, default=30, show_default=True,
              help="List invoices unpaid for more than this many days.")
@format_options
@click.pass_obj
def report_overdue(obj, unpaid_days, fmt, as_json) -> None:
    """What is late: holds, deliveries, invoices, outbox.

    Orders on hold, delivery notes past their deadline, invoices unpaid too long, and outbox
    messages that failed or keep failing."""
    from caturactl.views.reports import overdue
    app = obj.ready_app()
    with app.session() as s:
        r = overdue(s, app.cfg.tz, _now(), unpaid_days=unpaid_days)
    emit_sections(list(zip(OVERDUE, (r.holds, r.deliveries, r.unpaid, r.outbox))), fmt=pick_format(fmt, as_json),
                  days=unpaid_days)


COMMANDS = [report]
