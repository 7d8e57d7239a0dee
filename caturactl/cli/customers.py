"""``caturactl customers list|show|merge``."""

from __future__ import annotations

import click

from caturactl import pipeline
from caturactl.cli.batch import batch
from caturactl.cli.output import Column, console, emit, emit_record, format_options, local_time, pick_format
from caturactl.cli.params import count, row_ref

COLUMNS = [Column("number", "Customer"), Column("name", "Name"), Column("company", "Company"),
           Column("email", "E-mail", max_width=40), Column("orders", "Orders", "right"),
           Column("last_order", "Last order"), Column("city", "City")]


@click.group()
def customers() -> None:
    """Customers found or created by matching imported buyers."""


@customers.command("list")
@click.option("--search", help="Text in the name, company or e-mail.")
@click.option("--limit", type=count())
@format_options
@click.pass_obj
def customers_list(obj, search, limit, fmt, as_json) -> None:
    """List customers (merged ones are shown under the customer they were merged into)."""
    from caturactl.views.cockpit import customer_rows
    app = obj.ready_app()
    with app.session() as s:
        rows = customer_rows(s, search=search, limit=limit)
    emit(rows, COLUMNS, fmt=pick_format(fmt, as_json), title=f"Customers ({len(rows)})", empty="no customers")


@customers.command("show")
@click.argument("customer")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def customers_show(obj, customer: str, as_json: bool) -> None:
    """Show a customer (number K000012, id or e-mail): e-mails, addresses, orders, history."""
    from sqlalchemy import select

    from caturactl.customers.matching import customer_history, find_customer
    from caturactl.orders.models import Order
    app = obj.ready_app()
    tz = app.cfg.tz
    with app.session() as s:
        c = find_customer(s, row_ref(customer, "customer", "K"))
        orders = s.scalars(select(Order).where(Order.customer_id == c.id).order_by(Order.created_at)).all()
        record = {
            "number": c.number, "name": c.name, "company": c.company,
            "merged_into": f"K{c.merged_into_id:06d}" if c.merged_into_id else "",
            "created": local_time(c.created_at, tz),
            "emails": [e.email for e in c.emails],
            "addresses": [", ".join(x for x in (a.name, a.line1, a.line2, f"{a.postal_code} {a.city}", a.country) if x)
                          for a in c.addresses],
            "orders": [{"number": o.external_id, "date": local_time(o.created_at, tz), "state": o.state,
                        "match_reason": o.match_reason} for o in orders],
            "history": [{"at": local_time(e.at, tz), "actor": e.actor, "why": e.why} for e in customer_history(s, c)],
        }
    if as_json:
        emit_record(record, fmt="json")
        return
    emit_record(record, fmt="table", title=f"Customer {c.number}")
    for e in record["emails"]:
        console.print(f"  e-mail   {e}", highlight=False, markup=False)
    for a in record["addresses"]:
        console.print(f"  address  {a}", highlight=False, markup=False)
    emit(record["orders"], [Column("number", "Order"), Column("date", "Date"), Column("state", "State"),
                            Column("match_reason", "Matched by")], fmt="table", title="Orders")
    if record["history"]:
        emit(record["history"], [Column("at", "When"), Column("actor", "Who"), Column("why", "What")],
             fmt="table", title="History")


@customers.command("merge")
@click.argument("keep")
@click.argument("other")
@batch("Show what would move; change nothing.")
@click.pass_obj
def customers_merge(obj, keep: str, other: str, dry_run: bool, as_json: bool):
    """Merge customer OTHER into KEEP: orders, e-mails and addresses move; OTHER stays as a pointer."""
    return pipeline.merge_customers(obj.ready_app(), row_ref(keep, "customer", "K"), row_ref(other, "customer", "K"),
                                    other, dry_run=dry_run)


COMMANDS = [customers]
