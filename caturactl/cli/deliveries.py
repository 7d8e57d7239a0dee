"""``caturactl deliveries list|show``: per delivery its location, carrier, file, tracking and state."""

from __future__ import annotations

import click

from caturactl.cli.output import Column, emit, emit_record, format_options, local_time, pick_format
from caturactl.cli.params import count


DELIVERY_COLUMNS = [Column("delivery", "Delivery"), Column("order", "Order"), Column("location", "Location"),
                    Column("state", "State"), Column("carrier", "Carrier"), Column("service", "Service"),
                    Column("parcels", "Parcels", "right"), Column("tracking", "Tracking", max_width=44),
                    Column("file", "File", max_width=36), Column("exported", "Exported"),
                    Column("deadline", "Deadline")]


@click.group()
def deliveries() -> None:
    """Delivery notes: per delivery its location, carrier, file sent, tracking and state."""


@deliveries.command("list")
@click.option("--state", "states", multiple=True, help="Only these states (repeatable).")
@click.option("--location", help="Only this location.")
@click.option("--order", help="Only the notes of this order.")
@click.option("--limit", type=count(0), default=100, show_default=True,
              help="Newest N in the table (0 = all); --json/--format csv always list all.")
@format_options
@click.pass_obj
def deliveries_list(obj, states, location, order, limit, fmt, as_json) -> None:
    """List delivery notes, newest first."""
    from caturactl.views.cockpit import delivery_rows
    fmt = pick_format(fmt, as_json)
    app = obj.ready_app()
    counted: list[int] = []
    with app.session() as s:
        rows = delivery_rows(s, app.cfg.tz, states=list(states), location=location, order=order,
                             limit=limit if fmt == "table" and limit else None, counted=counted)
    title = f"Delivery notes ({len(rows)} of {counted[0]})" if counted and counted[0] > len(rows) else \
        f"Delivery notes ({len(rows)})"
    emit(rows, DELIVERY_COLUMNS, fmt=fmt, title=title, empty="no delivery notes")


@deliveries.command("show")
@click.argument("delivery")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def deliveries_show(obj, delivery: str, as_json: bool) -> None:
    """Show a delivery note: lines, parcels with tracking links, the carrier choice and its history."""
    from carriers import tracking
    from caturactl.views.cockpit import delivery_events, find_delivery
    app = obj.ready_app()
    tz = app.cfg.tz
    with app.session() as s:
        n = find_delivery(s, delivery)
        record = {
            "delivery": n.number, "order": n.order.external_id, "location": n.location, "state": n.state,
            "carrier": n.carrier, "service": n.service, "price": n.price, "ship_date": n.ship_date,
            "expected_delivery": n.delivery_date, "file": n.file_name, "created": local_time(n.created_at, tz),
            "exported": local_time(n.exported_at, tz), "deadline": local_time(n.deadline_at, tz),
            "confirmed": local_time(n.confirmed_at, tz), "shipped": local_time(n.shipped_at, tz),
            "lines": [{"sku": ln.sku, "quantity": ln.quantity, "shipped": ln.shipped} for ln in n.lines],
            "parcels": [{"package": p.package_reference, "carrier": p.carrier, "tracking": p.tracking_number,
                         "weight_g": p.weight_g, "shipped_at": local_time(p.shipped_at, tz),
                         "at_channel": local_time(p.channel_confirmed_at, tz),
                         "url": tracking.tracking_url(p.carrier, p.tracking_number) or ""} for p in n.parcels],
            "choice": n.choice,
            "events": [{"at": local_time(e.at, tz, "%Y-%m-%d %H:%M:%S"), "actor": e.actor, "kind": e.kind,
                        "from": e.from_state, "to": e.to_state, "why": e.why} for e in delivery_events(s, n)],
        }
    if as_json:
        emit_record(record, fmt="json")
        return
    emit_record(record, fmt="table", title=f"Delivery note {record['delivery']}")
    emit(record["lines"], [Column("sku", "SKU"), Column("quantity", "Qty", "right"), Column("shipped", "Shipped", "right")],
         fmt="table", title="Lines")
    emit(record["parcels"], [Column("package", "#", "right"), Column("carrier", "Carrier"), Column("tracking", "Tracking"),
                             Column("weight_g", "g", "right"), Column("shipped_at", "Shipped"),
                             Column("at_channel", "At Amazon"), Column("url", "Track", max_width=80)],
         fmt="table", title="Parcels", empty="no parcels reported yet")
    emit(record["events"], [Column("at", "When"), Column("actor", "Who"), Column("kind", "Event"),
                            Column("from", "From"), Column("to", "To"), Column("why", "Why", max_width=70)],
         fmt="table", title="History")


COMMANDS = [deliveries]
