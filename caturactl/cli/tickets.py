"""``caturactl tickets list|show|resolve``: the queue of orders waiting for a person."""

from __future__ import annotations

import click

from caturactl import pipeline
from caturactl.cli.batch import batch
from caturactl.cli.listing import listing, showing
from caturactl.cli.output import Column, local_time
from caturactl.orders.tickets import KINDS
from caturactl.orders.triage import find_ticket
from caturactl.views.cockpit import ticket_rows

COLUMNS = [Column("ticket", "Ticket"), Column("created", "Created"), Column("order", "Order"),
           Column("kind", "Kind"), Column("reasons", "Reasons", max_width=30), Column("status", "Status"),
           Column("summary", "Summary", max_width=60)]


@click.group()
def tickets() -> None:
    """Tickets: orders on hold and imports that failed, waiting for a person."""


@tickets.command("list")
@click.option("--status", type=click.Choice(["open", "resolved", "all"]), default="open", show_default=True)
@click.option("--kind", type=click.Choice(KINDS))
@listing(COLUMNS, "Tickets", empty="no tickets")
def tickets_list(app, s, status, kind) -> list[dict]:
    """List tickets (open ones by default)."""
    return ticket_rows(s, app.cfg.tz, status=status, kind=kind)


@tickets.command("show")
@click.argument("ticket")
@showing(lambda r: f"Ticket {r['ticket']}", hide=("text",), lines=lambda r: [r["text"]])
def tickets_show(app, s, ticket: str) -> dict:
    """Show a ticket with its reasons and the order it holds."""
    tz = app.cfg.tz
    t = find_ticket(s, ticket)
    return {"ticket": t.number, "kind": t.kind, "status": t.status, "order": t.order.external_id
            if t.order else t.external_ref, "order_state": t.order.state if t.order else "",
            "reasons": t.reasons, "created": local_time(t.created_at, tz), "created_by": t.created_by,
            "resolved": local_time(t.resolved_at, tz), "resolved_by": t.resolved_by,
            "resolution": t.resolution, "note": t.note, "text": t.text}


@tickets.command("resolve")
@click.argument("ticket")
@click.option("--release", is_flag=True, help="Put the order back into the automatic flow.")
@click.option("--cancel", is_flag=True, help="Cancel the order.")
@click.option("--close", is_flag=True, help="Close a ticket whose order is not on hold (overdue, failed upload, ...).")
@click.option("--note", required=True, help="What was checked or decided (kept in the history).")
@batch("Check that the resolution is allowed; change nothing.")
@click.pass_obj
def tickets_resolve(obj, ticket: str, release: bool, cancel: bool, close: bool, note: str, dry_run: bool,
                    as_json: bool):
    """Resolve a ticket: --release or --cancel its order (or --close it), with a note."""
    actions = [a for a, given in (("release", release), ("cancel", cancel), ("close", close)) if given]
    if len(actions) > 1:
        # The opposite answers at once: never guess which one was meant (cancelling is final).
        raise click.UsageError(f"--{' and --'.join(actions)} exclude each other: give one")
    if not actions:
        raise click.UsageError("say what to do: --release, --cancel or --close")
    return pipeline.resolve_ticket(obj.ready_app(), ticket, actions[0], note, dry_run=dry_run)


COMMANDS = [tickets]
