"""``caturactl customers list|show|merge``."""

from __future__ import annotations

import click

from caturactl import pipeline
from caturactl.cli.batch import batch
from caturactl.cli.output import Column, console, emit, emit_record, format_options, pick_format
from caturactl.cli.params import count, row_ref
from caturactl.views.cockpit import customer_record, customer_rows

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
    app = obj.ready_app()
    with app.session() as s:
        record = customer_record(s, app.cfg.tz, row_ref(customer, "customer", "K"))
    if as_json:
        emit_record(record, fmt="json")
        return
    emit_record(record, fmt="table", title=f"Customer {record['number']}")
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
