"""``caturactl orders list|show``: the order cockpit."""

from __future__ import annotations

import click

from caturactl.cli.output import Column, console, emit, emit_record, format_options, pick_format
from caturactl.cli.params import count
from caturactl.views.cockpit import order_record, order_rows, parse_day, state_counts

TABLE_DEFAULT_LIMIT = 100
# The keys ``orders show`` has always printed for the channel's status of an order: Amazon's words
# are the command line's, not the view's.
SHOWN_AS = {"channel_status": "amazon_status", "updated_at_channel": "updated_at_amazon"}
COLUMNS = [Column("number", "Order"), Column("date", "Date"), Column("channel", "Channel"),
           Column("customer", "Customer", max_width=32), Column("state", "State"),
           Column("hold_reason", "Hold reason", max_width=40), Column("total", "Total", "right"),
           Column("carrier", "Carrier", max_width=16), Column("tracking", "Tracking", max_width=44),
           Column("invoice", "Invoice", max_width=28)]


@click.group()
def orders() -> None:
    """Orders: the cockpit and each order's whole story."""


@orders.command("list")
@click.option("--state", "states", multiple=True, help="Only these states (repeat or comma-separate).")
@click.option("--since", help="Only orders placed on or after this day (YYYY-MM-DD).")
@click.option("--month", help="Only orders placed in this month (YYYY-MM).")
@click.option("--customer", help="Customer name, number (K000012) or e-mail.")
@click.option("--search", help="Text in the order number, buyer, city, postal code or hold reason.")
@click.option("--limit", type=count(),
              help=f"At most this many rows, newest first (table default {TABLE_DEFAULT_LIMIT}; --json and csv: all).")
@format_options
@click.pass_obj
def orders_list(obj, states, since, month, customer, search, limit, fmt, as_json) -> None:
    """List orders, newest first."""
    since_d = parse_day(since, "--since") if since else None
    wanted = [s.strip() for v in states for s in v.split(",") if s.strip()]
    app = obj.ready_app()
    fmt = pick_format(fmt, as_json)
    table = fmt == "table"
    if table and limit is None:
        limit = TABLE_DEFAULT_LIMIT  # a screenful for people; scripts get everything
    counted: list[int] = []
    with app.session() as s:
        rows = order_rows(s, app.cfg.tz, states=wanted or None, since=since_d, month=month, customer=customer,
                          search=search, limit=limit, counted=counted if table else None)
        counts = state_counts(s) if table else {}
    title = f"Orders ({len(rows)} of {counted[0]})" if table and counted and counted[0] > len(rows) \
        else f"Orders ({len(rows)})"
    emit(rows, COLUMNS, fmt=fmt, title=title, empty="no orders match")
    if table and counts:
        console.print("  ".join(f"{k}: {v}" for k, v in sorted(counts.items())), style="dim", highlight=False)
    if table and counted and counted[0] > len(rows):
        console.print(f"showing the newest {len(rows)}; --limit N for more, --json or --format csv for all",
                      style="dim", highlight=False)


@orders.command("show")
@click.argument("order")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
def orders_show(obj, order: str, as_json: bool) -> None:
    """Show an order: lines, customer, tickets and every event (who, when, from, to, why)."""
    app = obj.ready_app()
    with app.session() as s:
        record = {SHOWN_AS.get(k, k): v for k, v in order_record(s, app.cfg.tz, order).items()}
    if as_json:
        emit_record(record, fmt="json")
        return
    emit_record(record, fmt="table", title=f"Order {record['number']}")
    emit(record["lines"], [Column("position", "#", "right"), Column("sku", "SKU"), Column("title", "Title", max_width=40),
                           Column("quantity", "Qty", "right"), Column("shipped", "Shipped", "right"),
                           Column("total", "Paid", "right"), Column("discount", "Discount", "right"),
                           Column("promotions", "Promotion", max_width=24),
                           Column("gift_message", "Gift message", max_width=30)],
         fmt="table", title="Lines")
    if record["tickets"]:
        emit(record["tickets"], [Column("ticket", "Ticket"), Column("status", "Status"),
                                 Column("resolution", "Resolution"), Column("text", "Why"), Column("note", "Note")],
             fmt="table", title="Tickets")
    if record["deliveries"]:
        emit(record["deliveries"], [Column("delivery", "Delivery"), Column("location", "Location"),
                                    Column("state", "State"), Column("carrier", "Carrier"), Column("service", "Service"),
                                    Column("tracking", "Tracking", max_width=44)],
             fmt="table", title="Delivery notes (caturactl deliveries show L...)")
    emit(record["events"], [Column("at", "When"), Column("actor", "Who"), Column("kind", "Event"),
                            Column("from", "From"), Column("to", "To"), Column("why", "Why", max_width=60)],
         fmt="table", title="History")


COMMANDS = [orders]
