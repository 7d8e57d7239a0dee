"""``caturactl ship export|collect|overdue``: hand delivery notes to their locations, read back what shipped."""

from __future__ import annotations

import click

from caturactl import pipeline
from caturactl.cli.batch import bars, batch
from caturactl.cli.params import count


@click.group()
def ship() -> None:
    """Hand delivery notes to their locations and read back what they shipped."""


@ship.command("export")
@click.option("--limit", type=count(), help="Export at most this many delivery notes.")
@batch("Render every file and list it; queue and send nothing.")
@click.pass_obj
def ship_export(obj, limit: int | None, dry_run: bool, as_json: bool):
    """Render each new delivery note in its location's format and send it over its transport.

    The files are queued in the outbox with the state change, then sent; a transport that is
    down leaves them queued for the next run (exit 69), nothing is lost or sent twice.
    """
    return pipeline.export_deliveries(obj.ready_app(), dry_run=dry_run, limit=limit, progress=bars(as_json=as_json))


@ship.command("collect")
@batch("Read and check every confirmation file; store, move and send nothing.")
@click.pass_obj
def ship_collect(obj, dry_run: bool, as_json: bool):
    """Read confirmations on the return channels: tracking numbers in, shipments confirmed at the channel.

    A file with one bad line is rejected whole (moved to the error folder, with a ticket naming
    file:line:field); the database stays as it was. Exit 65 when a file was rejected, 69 when a
    return channel or the sales channel could not be reached.
    """
    return pipeline.collect_confirmations(obj.ready_app(), dry_run=dry_run)


@ship.command("overdue")
@batch("List what is overdue; open no tickets.")
@click.pass_obj
def ship_overdue(obj, dry_run: bool, as_json: bool):
    """Delivery notes past their confirmation deadline (business hours) -> overdue, with a ticket."""
    return pipeline.mark_overdue(obj.ready_app(), dry_run=dry_run)


COMMANDS = [ship]
