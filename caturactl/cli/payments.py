"""``caturactl payments import|list|show|unmatched|overdue|remind``: bank statements matched to what
buyers owe, and what is done when they do not pay."""

from __future__ import annotations

from pathlib import Path

import click

from caturactl import pipeline
from caturactl.cli.batch import batch
from caturactl.cli.listing import Part, listing, showing
from caturactl.cli.output import Column
from caturactl.payments import dunning
from caturactl.payments.models import PaymentStatus
from caturactl.views.payments import payment_rows, payments_record, unmatched_rows

COLUMNS = [Column("order", "Order"), Column("method", "Method"), Column("status", "Status"),
           Column("expected", "Expected", "right"), Column("paid", "Paid", "right"), Column("currency", "Cur"),
           Column("reference", "Reference", max_width=40), Column("due", "Due"), Column("paid_at", "Paid at")]
CREDIT_COLUMNS = [Column("statement", "Statement"), Column("entry", "Entry"), Column("booked", "Booked"),
                  Column("amount", "Amount", "right"), Column("currency", "Cur"), Column("debtor", "From", max_width=30),
                  Column("remittance", "Purpose", max_width=50), Column("outcome", "Outcome"),
                  Column("ticket", "Ticket"), Column("reason", "Why", max_width=60)]
OVERDUE_COLUMNS = [Column("order", "Order"), Column("method", "Method"), Column("status", "Status"),
                   Column("due", "Due"), Column("open", "Open", "right"), Column("currency", "Cur"),
                   Column("reference", "Reference", max_width=30), Column("remind_on", "Remind on"),
                   Column("cancel_on", "Cancel on"), Column("action", "Now"), Column("why", "Why", max_width=50)]


@click.group()
def payments() -> None:
    """What buyers owe and have paid; bank statements (CAMT.053, MT940) matched to it."""


@payments.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@batch("Read and match the statement; store and change nothing.")
@click.pass_obj
def payments_import(obj, file: Path, dry_run: bool, as_json: bool):
    """Import a bank statement file (CAMT.053 XML or MT940) and match its credits.

    Each credit pays the open payment whose order or invoice number it quotes, or, quoting
    none, the one of its exact amount and the payer's name. Anything else gets a ticket
    (kind payment). The whole file or nothing: a broken file is refused with file:line:field
    (exit 65); a statement imported before is not imported again.
    """
    return pipeline.import_payments(obj.ready_app(), file, dry_run=dry_run)


@payments.command("list")
@click.option("--status", "statuses", multiple=True, type=click.Choice([s.value for s in PaymentStatus]),
              help="Only payments in this state (repeatable).")
@listing(COLUMNS, "Payments", empty="no payments")
def payments_list(app, s, statuses: tuple[str, ...]) -> list[dict]:
    """List payments, newest first."""
    return payment_rows(s, app.cfg.tz, statuses=statuses)


@payments.command("show")
@click.argument("order")
@showing(lambda r: f"Payments of order {r['order']}", Part("payments", COLUMNS, "Payments"),
         Part("receipts", [Column("order", "Order"), Column("applied", "Applied", "right"),
                           Column("matched_by", "Matched by"), *CREDIT_COLUMNS[:6], Column("ticket", "Ticket")],
              "Received", empty="nothing received yet",
              rows=lambda r: [{"order": p["order"], **x} for p in r["payments"] for x in p["receipts"]]))
def payments_show(app, s, order: str) -> dict:
    """One order's payments, each with the bank credits applied to it."""
    return payments_record(s, app.cfg.tz, order)


@payments.command("unmatched")
@listing(CREDIT_COLUMNS, "Unmatched credits", empty="every credit is matched")
def payments_unmatched(app, s) -> list[dict]:
    """Bank credits that paid nothing: each has a ticket saying why (caturactl tickets list --kind
    payment)."""
    return unmatched_rows(s)


@payments.command("overdue")
@listing(OVERDUE_COLUMNS, "Overdue payments", empty="no payment is overdue")
def payments_overdue(app, s) -> list[dict]:
    """Open payments past their due date, with the days of their reminder and cancellation and
    what 'payments remind' does with each now (overdue, remind, cancel, ticket, wait)."""
    return [r.as_dict() for r in dunning.overdue(s, app.cfg)]


@payments.command("remind")
@batch("Decide each step and show it; move, cancel, queue and send nothing.")
@click.pass_obj
def payments_remind(obj, dry_run: bool, as_json: bool):
    """Take each overdue payment one step: mark it overdue, remind the buyer, or cancel the order.

    Per [payments] in caturactl.toml: the methods to remind are reminded reminder_after_days
    after the due date (the shop's payment moves to reminded; the buyer gets the amount open,
    the bank details and the reference to quote); the methods to cancel have their order
    cancelled cancel_after_days after it, here (stock released) and at the shop, and the buyer is
    told. An order with money received, or with parcels gone, gets a ticket instead.
    """
    return pipeline.remind_payments(obj.ready_app(), dry_run=dry_run)


COMMANDS = [payments]
