"""``caturactl orders list|show``: the order cockpit."""

from __future__ import annotations

import click

from caturactl.cli.output import Column, console, emit, emit_record, format_options, local_time, pick_format
from caturactl.cli.params import count

TABLE_DEFAULT_LIMIT = 100
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
    from caturactl.views.cockpit import order_rows, parse_day, state_counts
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
    from caturactl.views.cockpit import delivery_rows, find_order, order_events, order_tickets
    app = obj.ready_app()
    tz = app.cfg.tz
    with app.session() as s:
        o = find_order(s, order)
        a = o.address
        record = {
            "number": o.external_id, "channel": o.marketplace_name or o.channel, "state": o.state,
            "amazon_status": o.remote_status, "fulfilled_by": o.fulfilled_by, "programs": o.programs,
            "placed": local_time(o.created_at, tz), "updated_at_amazon": local_time(o.remote_updated_at, tz),
            "ship_by": local_time(o.ship_by, tz), "customer": f"{o.customer.display_name} ({o.customer.number})"
            if o.customer else "", "match_reason": o.match_reason, "buyer_email": o.buyer_email,
            "buyer_tax_id": o.buyer_tax_id, "ship_to": ", ".join(x for x in (a.name, a.company, *a.lines,
                                                                          f"{a.postal_code} {a.city}".strip(), a.country) if x),
            "delivery_instructions": o.delivery_instructions, "hold_reason": o.hold_reason,
            "total": str(o.total) if o.total else "",
            "lines": [{"position": ln.position, "sku": ln.sku, "title": ln.title, "quantity": ln.quantity,
                       "shipped": ln.quantity_shipped, "total": str(ln.total_amount) if ln.total_amount is not None else "",
                       "shipping": _amount(ln.shipping_amount), "gift_wrap": _amount(ln.gift_wrap_amount),
                       "cod_fee": _amount(ln.cod_fee_amount),
                       "discount": _amount((ln.item_discount or 0) + (ln.shipping_discount or 0)),
                       "promotions": ln.promotion_ids, "gift_message": ln.gift_message} for ln in o.lines],
            "tickets": [{"ticket": t.number, "status": t.status, "resolution": t.resolution, "text": t.text,
                         "note": t.note} for t in order_tickets(s, o)],
            "deliveries": delivery_rows(s, tz, order=o.external_id),
            "events": [{"at": local_time(e.at, tz, "%Y-%m-%d %H:%M:%S"), "actor": e.actor, "kind": e.kind,
                        "from": e.from_state, "to": e.to_state, "why": e.why} for e in order_events(s, o)],
        }
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


def _amount(value) -> str:
    """An amount for a listing: "" when none or zero."""
    return f"{value:.2f}" if value else ""
