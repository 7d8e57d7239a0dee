"""``caturactl route`` and ``carriers choose``: delivery notes per location, and the carrier matrix's choice."""

from __future__ import annotations

import click
from rich.text import Text

from caturactl import pipeline
from caturactl.cli.batch import bars, batch
from caturactl.cli.output import Column, console, emit, emit_record
from caturactl.cli.params import count


@click.command("route")
@click.option("--limit", type=count(), help="Route at most this many orders (oldest first).")
@batch("Plan everything, store nothing.")
@click.pass_obj
def route(obj, limit: int | None, dry_run: bool, as_json: bool):
    """Released orders -> delivery notes per fulfilment location, stock reserved, carrier chosen.

    One location with everything wins; else the fewest locations. Orders no location can ship
    wait for stock; orders no carrier can take go on hold with a ticket.
    """
    return pipeline.route_orders(obj.ready_app(), dry_run=dry_run, limit=limit, progress=bars(as_json=as_json))


@click.group()
def carriers() -> None:
    """The carrier matrix: which carrier takes a delivery, and why."""


@carriers.command("choose")
@click.argument("order")
@click.option("--explain", is_flag=True, help="Show every carrier, eligible or not and why, and the ranking.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def carriers_choose(obj, order: str, explain: bool, as_json: bool) -> None:
    """The carrier choice for ORDER: the stored one per delivery note once routed, else what
    routing would choose now (nothing is stored)."""
    from caturactl.fulfilment.routing import choices_for_order
    app = obj.ready_app()
    with app.session() as s:
        parts = choices_for_order(s, app.cfg, order)
    if as_json:
        emit_record({"order": order, "parts": parts}, fmt="json")
        return
    for part in parts:
        chosen = part["choice"]["chosen"]
        console.print(Text.assemble(f"{part['delivery'] or 'not routed yet'} from {part['location']}: ",
                                    (chosen, "bold") if chosen else ("no eligible carrier", "red")))
        ranking = [{"rank": i, **o} for i, o in enumerate(part["choice"]["ranking"], 1)]
        if explain or not chosen:
            emit(ranking, [Column("rank", "#", "right"), Column("key", "Product"), Column("carrier", "Carrier"),
                           Column("service", "Service"), Column("price", "Price EUR", "right"),
                           Column("parcels", "Parcels", "right"), Column("weight_g", "Weight g", "right"),
                           Column("zone", "Zone"), Column("transit_days", "Days", "right"),
                           Column("ship_date", "Ships"), Column("delivery_date", "Arrives")],
                 fmt="table", title="Eligible, best first", empty="no eligible carrier")
            rejected = [{"key": x["key"], "reasons": "; ".join(x["reasons"])} for x in part["choice"]["rejected"]]
            emit(rejected, [Column("key", "Product"), Column("reasons", "Why not", max_width=120)],
                 fmt="table", title="Not eligible", empty="every carrier is eligible")
        elif ranking:
            o = ranking[0]
            console.print(f"  {o['carrier']} {o['service']}, {o['price']} EUR, {o['parcels']} parcel(s), "
                          f"arrives {o['delivery_date']}  (--explain for all carriers)", highlight=False, markup=False)


COMMANDS = [route, carriers]
