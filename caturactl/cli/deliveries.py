"""``caturactl deliveries list|show``: per delivery its location, carrier, file, tracking and state."""

from __future__ import annotations

import click

from carriers import tracking
from caturactl.cli.listing import Part, Rows, limited, listing, showing
from caturactl.cli.output import Column, local_time
from caturactl.views.cockpit import delivery_events, delivery_rows, find_delivery

TABLE_DEFAULT_LIMIT = 100
DELIVERY_COLUMNS = [Column("delivery", "Delivery"), Column("order", "Order"), Column("location", "Location"),
                    Column("state", "State"), Column("carrier", "Carrier"), Column("service", "Service"),
                    Column("parcels", "Parcels", "right"), Column("tracking", "Tracking", max_width=44),
                    Column("file", "File", max_width=36), Column("exported", "Exported"),
                    Column("deadline", "Deadline")]
SHOWN = (Part("lines", [Column("sku", "SKU"), Column("quantity", "Qty", "right"),
                        Column("shipped", "Shipped", "right")], "Lines"),
         Part("parcels", [Column("package", "#", "right"), Column("carrier", "Carrier"), Column("tracking", "Tracking"),
                          Column("weight_g", "g", "right"), Column("shipped_at", "Shipped"),
                          Column("at_channel", "At Amazon"), Column("url", "Track", max_width=80)],
              "Parcels", empty="no parcels reported yet"),
         Part("events", [Column("at", "When"), Column("actor", "Who"), Column("kind", "Event"), Column("from", "From"),
                         Column("to", "To"), Column("why", "Why", max_width=70)], "History"))


@click.group()
def deliveries() -> None:
    """Delivery notes: per delivery its location, carrier, file sent, tracking and state."""


@deliveries.command("list")
@click.option("--state", "states", multiple=True, help="Only these states (repeatable).")
@click.option("--location", help="Only this location.")
@click.option("--order", help="Only the notes of this order.")
@listing(DELIVERY_COLUMNS, "Delivery notes", empty="no delivery notes", screenful=TABLE_DEFAULT_LIMIT)
def deliveries_list(app, s, states, location, order, limit) -> Rows:
    """List delivery notes, newest first."""
    return limited(delivery_rows, s, app.cfg.tz, limit=limit, states=list(states), location=location, order=order)


@deliveries.command("show")
@click.argument("delivery")
@showing(lambda r: f"Delivery note {r['delivery']}", *SHOWN)
def deliveries_show(app, s, delivery: str) -> dict:
    """Show a delivery note: lines, parcels with tracking links, the carrier choice and its history."""
    tz = app.cfg.tz
    n = find_delivery(s, delivery)
    return {
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


COMMANDS = [deliveries]
