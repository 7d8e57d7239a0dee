"""``caturactl route`` and ``carriers choose``: delivery notes per location, and the carrier matrix's choice."""

from __future__ import annotations

import click
from rich.text import Text
from sqlalchemy import func, select

from caturactl.cli.output import DRY, Column, console, emit, emit_record, progress_bar, summary
from caturactl.cli.params import count


@click.command("route")
@click.option("--dry-run", is_flag=True, help="Plan everything, store nothing.")
@click.option("--limit", type=count(), help="Route at most this many orders (oldest first).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON (for timers).")
@click.pass_obj
def route(obj, dry_run: bool, limit: int | None, as_json: bool) -> None:
    """Released orders -> delivery notes per fulfilment location, stock reserved, carrier chosen.

    One location with everything wins; else the fewest locations. Orders no location can ship
    wait for stock; orders no carrier can take go on hold with a ticket.
    """
    from caturactl.orders.models import Order
    from caturactl.core.lifecycle import OrderState
    from caturactl.fulfilment.routing import Router
    app = obj.ready_app()
    with app.session() as s:
        router = Router(s, app.cfg)
        total = s.scalar(select(func.count()).where(Order._state == OrderState.RELEASED.value))
        with progress_bar("routing", min(total, limit or total), enabled=not as_json) as advance:
            r = router.run(dry_run=dry_run, limit=limit, progress=advance)
    line = (f"{r.orders} released, {r.routed} routed into {r.deliveries} delivery note(s), "
            f"{len(r.waiting)} waiting for stock, {len(r.held)} on hold (no carrier)")
    summary("route", r.as_dict(), as_json=as_json, line=(DRY if dry_run else "") + line, ok=not r.held)
    if not as_json and r.held:
        console.print("  held orders have a ticket: caturactl tickets list --kind no_carrier", highlight=False)
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
