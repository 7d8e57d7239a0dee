"""``caturactl payments import|list|show|unmatched|overdue|remind``: bank statements matched to what
buyers owe, and what is done when they do not pay."""

from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy import select

from caturactl import pipeline
from caturactl.cli.batch import batch
from caturactl.cli.output import (
    Column,
    emit,
    emit_record,
    format_options,
    local_time,
    pick_format,
)
from caturactl.orders.models import Order
from caturactl.payments import dunning
from caturactl.payments.models import BankCredit, BankStatement, Payment, PaymentStatus
from caturactl.payments.service import find_for_order
from caturactl.views.reports import tidy

COLUMNS = [Column("order", "Order"), Column("method", "Method"), Column("status", "Status"),
           Column("expected", "Expected", "right"), Column("paid", "Paid", "right"), Column("currency", "Cur"),
           Column("reference", "Reference", max_width=40), Column("due", "Due"), Column("paid_at", "Paid at")]
CREDIT_COLUMNS = [Column("statement", "Statement"), Column("entry", "Entry"), Column("booked", "Booked"),
                  Column("amount", "Amount", "right"), Column("currency", "Cur"), Column("debtor", "From", max_width=30),
                  Column("remittance", "Purpose", max_width=50), Column("outcome", "Outcome"),
                  Column("ticket", "Ticket"), Column("reason", "Why", max_width=60)]


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
@format_options
@click.pass_obj
def payments_list(obj, statuses: tuple[str, ...], fmt: str, as_json: bool) -> None:
    """List payments, newest first."""
    app = obj.ready_app()
    with app.session() as s:
        q = select(Payment).join(Order).order_by(Payment.id.desc())
        if statuses:
            q = q.where(Payment.status.in_(statuses))
        rows = [_row(p, app.cfg.tz) for p in s.scalars(q)]
    emit(rows, COLUMNS, fmt=pick_format(fmt, as_json), title=f"Payments ({len(rows)})", empty="no payments")


def _row(p: Payment, tz) -> dict:
    return {"order": p.order.external_id, "method": p.method, "status": p.status, "expected": str(tidy(p.amount_expected)),
            "paid": str(tidy(p.amount_paid)), "currency": p.currency, "reference": p.reference,
            "due": local_time(p.due_at, tz, "%Y-%m-%d"), "paid_at": local_time(p.paid_at, tz)}


def _credit(c: BankCredit) -> dict:
    return {"statement": c.statement.statement_id, "entry": c.entry_ref, "booked": c.booking_date.isoformat(),
            "amount": str(tidy(c.amount)), "currency": c.currency, "debtor": c.debtor_name, "remittance": c.remittance,
            "outcome": c.outcome, "ticket": f"T{c.ticket_id}" if c.ticket_id else "", "reason": c.reason}


@payments.command("show")
@click.argument("order")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def payments_show(obj, order: str, as_json: bool) -> None:
    """One order's payments, each with the bank credits applied to it."""
    app = obj.ready_app()
    with app.session() as s:
        records = [{**_row(p, app.cfg.tz), "receipts": [{**_credit(r.credit), "applied": str(tidy(r.amount)),
                                                         "matched_by": r.matched_by} for r in p.receipts]}
                   for p in find_for_order(s, order)]
    if as_json:
        emit_record({"order": order, "payments": records}, fmt="json")
        return
    for rec in records:
        emit_record(rec, fmt="table", title=f"Payment of order {order}")
        emit(rec["receipts"], [Column("applied", "Applied", "right"), Column("matched_by", "Matched by"),
                               *CREDIT_COLUMNS[:6], Column("ticket", "Ticket")],
             fmt="table", title="Received", empty="nothing received yet")


@payments.command("unmatched")
@format_options
@click.pass_obj
def payments_unmatched(obj, fmt: str, as_json: bool) -> None:
    """Bank credits that paid nothing: each has a ticket saying why (caturactl tickets list --kind
    payment)."""
    app = obj.ready_app()
    with app.session() as s:
        q = (select(BankCredit).join(BankStatement).where(BankCredit.outcome == "ticket")
             .order_by(BankCredit.booking_date, BankCredit.id))
        rows = [_credit(c) for c in s.scalars(q)]
    emit(rows, CREDIT_COLUMNS, fmt=pick_format(fmt, as_json), title=f"Unmatched credits ({len(rows)})",
         empty="every credit is matched")


OVERDUE_COLUMNS = [Column("order", "Order"), Column("method", "Method"), Column("status", "Status"),
                   Column("due", "Due"), Column("open", "Open", "right"), Column("currency", "Cur"),
                   Column("reference", "Reference", max_width=30), Column("remind_on", "Remind on"),
                   Column("cancel_on", "Cancel on"), Column("action", "Now"), Column("why", "Why", max_width=50)]


@payments.command("overdue")
@format_options
@click.pass_obj
def payments_overdue(obj, fmt: str, as_json: bool) -> None:
    """Open payments past their due date, with the days of their reminder and cancellation and
    what 'payments remind' does with each now (overdue, remind, cancel, ticket, wait)."""
    app = obj.ready_app()
    with app.session() as s:
        rows = [r.as_dict() for r in dunning.overdue(s, app.cfg)]
    emit(rows, OVERDUE_COLUMNS, fmt=pick_format(fmt, as_json), title=f"Overdue payments ({len(rows)})",
         empty="no payment is overdue")


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
