"""``caturactl ship export|collect|overdue``: hand delivery notes to their locations, read back what shipped."""

from __future__ import annotations

import click
from sqlalchemy import func, select

from caturactl.cli.output import DRY, console, exit_with, progress_bar, summary
from caturactl.cli.params import count


@click.group()
def ship() -> None:
    """Hand delivery notes to their locations and read back what they shipped."""


@ship.command("export")
@click.option("--dry-run", is_flag=True, help="Render every file and list it; queue and send nothing.")
@click.option("--limit", type=count(), help="Export at most this many delivery notes.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def ship_export(obj, dry_run: bool, limit: int | None, as_json: bool) -> None:
    """Render each new delivery note in its location's format and send it over its transport.

    The files are queued in the outbox with the state change, then sent; a transport that is
    down leaves them queued for the next run (exit 69), nothing is lost or sent twice.
    """
    from caturactl.fulfilment import shipping
    from caturactl.fulfilment.models import DeliveryNote
    app = obj.ready_app()
    with app.session() as s:
        total = s.scalar(select(func.count()).where(DeliveryNote._state == "created"))
        with progress_bar("rendering", min(total, limit or total), enabled=not as_json) as advance:
            r = shipping.export(s, app.cfg, app.formats(), dry_run=dry_run, limit=limit, progress=advance)
        sent = None
        if not dry_run:
            sender = app.sender(s)
            try:
                sent = sender.run(kinds={shipping.UPLOAD})
            finally:
                sender.close()
    data = {**r.as_dict(), **({"upload": sent.as_dict()} if sent else {})}
    line = f"{r.exported} delivery note(s), {len(r.files)} file(s)"
    if dry_run:
        line = DRY + line + (": " + ", ".join(r.files[:10]) + (" ..." if len(r.files) > 10 else "") if r.files else "")
    elif sent:
        line += f"; uploaded {sent.sent}, waiting to retry {sent.retry_later}, failed {sent.failed}"
    summary("ship export", data, as_json=as_json, line=line, ok=not r.failed and not (sent and sent.exit_code))
    if not as_json:
        for f in r.failed[:20] + (sent.errors[:20] if sent else []):
            console.print(f"  {f}", highlight=False, markup=False)
    exit_with(65 if r.failed else (sent.exit_code if sent else 0))


@ship.command("collect")
@click.option("--dry-run", is_flag=True, help="Read and check every confirmation file; store, move and send nothing.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def ship_collect(obj, dry_run: bool, as_json: bool) -> None:
    """Read confirmations on the return channels: tracking numbers in, shipment confirmed at Amazon.

    A file with one bad line is rejected whole (moved to the error folder, with a ticket naming
    file:line:field); the database stays as it was. Exit 65 when a file was rejected, 69 when a
    return channel or Amazon could not be reached.
    """
    from caturactl import channels
    from caturactl.fulfilment import shipping
    app = obj.ready_app()
    with app.session() as s:
        r = shipping.Collector(s, app.cfg, app.transport, app.readers()).run(dry_run=dry_run)
        sent = None
        if not dry_run:
            sender = app.sender(s)
            try:
                sent = sender.run(kinds={*channels.message_kinds("confirmation"), shipping.EMAIL})
            finally:
                sender.close()
    data = {**r.as_dict(), **({"channel": sent.as_dict()} if sent else {})}
    line = (f"{r.files} file(s), {r.confirmations} confirmation(s), {r.parcels} new parcel(s), "
            f"{len(r.rejected)} rejected")
    if sent:
        line += f"; confirmed at Amazon {sent.sent}, to retry {sent.retry_later}, failed {sent.failed}"
    ok = not (r.exit_code or (sent and sent.exit_code))
    summary("ship collect", data, as_json=as_json, line=(DRY if dry_run else "") + line, ok=ok)
    if not as_json:
        for f in r.rejected[:20] + r.unreachable + (sent.errors[:20] if sent else []):
            console.print(f"  {f}", highlight=False, markup=False)
    exit_with(r.exit_code or (sent.exit_code if sent else 0))


@ship.command("overdue")
@click.option("--dry-run", is_flag=True, help="List what is overdue; open no tickets.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def ship_overdue(obj, dry_run: bool, as_json: bool) -> None:
    """Delivery notes past their confirmation deadline (business hours) -> overdue, with a ticket."""
    from caturactl.fulfilment import shipping
    app = obj.ready_app()
    with app.session() as s:
        r = shipping.overdue(s, app.cfg, dry_run=dry_run)
    line = f"{len(r.overdue)} delivery note(s) overdue" + (f": {', '.join(r.overdue[:10])}" if r.overdue else "")
    summary("ship overdue", r.as_dict(), as_json=as_json, line=(DRY if dry_run else "") + line, ok=not r.overdue)


COMMANDS = [ship]
