"""``caturactl customers list|show|merge``."""

from __future__ import annotations

import click

from caturactl import pipeline
from caturactl.cli.batch import batch
from caturactl.cli.listing import Part, listing, showing
from caturactl.cli.output import Column
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
@listing(COLUMNS, "Customers", empty="no customers")
def customers_list(app, s, search, limit) -> list[dict]:
    """List customers (merged ones are shown under the customer they were merged into)."""
    return customer_rows(s, search=search, limit=limit)


@customers.command("show")
@click.argument("customer")
@showing(lambda r: f"Customer {r['number']}",
         Part("orders", [Column("number", "Order"), Column("date", "Date"), Column("state", "State"),
                         Column("match_reason", "Matched by")], "Orders"),
         Part("history", [Column("at", "When"), Column("actor", "Who"), Column("why", "What")], "History",
              only_if_any=True),
         lines=lambda r: [*(f"  e-mail   {e}" for e in r["emails"]), *(f"  address  {a}" for a in r["addresses"])])
def customers_show(app, s, customer: str) -> dict:
    """Show a customer (number K000012, id or e-mail): e-mails, addresses, orders, history."""
    return customer_record(s, app.cfg.tz, row_ref(customer, "customer", "K"))


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
