"""``caturactl route``, ``carriers choose``, ``ship export|collect|overdue``, ``deliveries``,
``outbox`` and ``stock``: the fulfilment commands."""

from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy import func, select

from caturactl.cli.output import (Column, console, emit, emit_record, err_console, format_options, local_time,
                                  pick_format, progress_bar, summary)
from caturactl.errors import InputError

DRY = "DRY RUN, nothing stored or sent: "


def _exit(code: int) -> None:
    if code:
        raise click.exceptions.Exit(code)


# --- route -----------------------------------------------------------------------------------------

@click.command("route")
@click.option("--dry-run", is_flag=True, help="Plan everything, store nothing.")
@click.option("--limit", type=click.IntRange(min=1), help="Route at most this many orders (oldest first).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON (for timers).")
@click.pass_obj
def route(obj, dry_run: bool, limit: int | None, as_json: bool) -> None:
    """Released orders -> delivery notes per fulfilment location, stock reserved, carrier chosen.

    One location with everything wins; else the fewest locations. Orders no location can ship
    wait for stock; orders no carrier can take go on hold with a ticket.
    """
    from caturactl.model import Order
    from caturactl.model.states import OrderState
    from caturactl.routing import Router
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


# --- carriers ----------------------------------------------------------------------------------------

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
    from caturactl.routing import choices_for_order
    app = obj.ready_app()
    with app.session() as s:
        parts = choices_for_order(s, app.cfg, order)
    if as_json:
        emit_record({"order": order, "parts": parts}, fmt="json")
        return
    for part in parts:
        chosen = part["choice"]["chosen"]
        head = f"{part['delivery'] or 'not routed yet'} from {part['location']}: " + (
            f"[bold]{chosen}[/bold]" if chosen else "[red]no eligible carrier[/red]")
        console.print(head, highlight=False)
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
                          f"arrives {o['delivery_date']}  (--explain for all carriers)", highlight=False)


# --- ship --------------------------------------------------------------------------------------------

@click.group()
def ship() -> None:
    """Hand delivery notes to their locations and read back what they shipped."""


@ship.command("export")
@click.option("--dry-run", is_flag=True, help="Render every file and list it; queue and send nothing.")
@click.option("--limit", type=click.IntRange(min=1), help="Export at most this many delivery notes.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def ship_export(obj, dry_run: bool, limit: int | None, as_json: bool) -> None:
    """Render each new delivery note in its location's format and send it over its transport.

    The files are queued in the outbox with the state change, then sent; a transport that is
    down leaves them queued for the next run (exit 69), nothing is lost or sent twice.
    """
    from caturactl import shipping
    from caturactl.model import DeliveryNote
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
    _exit(65 if r.failed else (sent.exit_code if sent else 0))


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
    from caturactl import shipping
    app = obj.ready_app()
    with app.session() as s:
        r = shipping.Collector(s, app.cfg, app.transport, app.readers()).run(dry_run=dry_run)
        sent = None
        if not dry_run:
            sender = app.sender(s)
            try:
                sent = sender.run(kinds={shipping.AMAZON_CONFIRM, shipping.EMAIL})
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
    _exit(r.exit_code or (sent.exit_code if sent else 0))


@ship.command("overdue")
@click.option("--dry-run", is_flag=True, help="List what is overdue; open no tickets.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def ship_overdue(obj, dry_run: bool, as_json: bool) -> None:
    """Delivery notes past their confirmation deadline (business hours) -> overdue, with a ticket."""
    from caturactl import shipping
    app = obj.ready_app()
    with app.session() as s:
        r = shipping.overdue(s, app.cfg, dry_run=dry_run)
    line = f"{len(r.overdue)} delivery note(s) overdue" + (f": {', '.join(r.overdue[:10])}" if r.overdue else "")
    summary("ship overdue", r.as_dict(), as_json=as_json, line=(DRY if dry_run else "") + line, ok=not r.overdue)


# --- deliveries ----------------------------------------------------------------------------------------

DELIVERY_COLUMNS = [Column("delivery", "Delivery"), Column("order", "Order"), Column("location", "Location"),
                    Column("state", "State"), Column("carrier", "Carrier"), Column("service", "Service"),
                    Column("parcels", "Parcels", "right"), Column("tracking", "Tracking", max_width=44),
                    Column("file", "File", max_width=36), Column("exported", "Exported"),
                    Column("deadline", "Deadline")]


@click.group()
def deliveries() -> None:
    """Delivery notes: per delivery its location, carrier, file sent, tracking and state."""


@deliveries.command("list")
@click.option("--state", "states", multiple=True, help="Only these states (repeatable).")
@click.option("--location", help="Only this location.")
@click.option("--order", help="Only the notes of this order.")
@click.option("--limit", type=click.IntRange(min=0), default=100, show_default=True,
              help="Newest N in the table (0 = all); --json/--format csv always list all.")
@format_options
@click.pass_obj
def deliveries_list(obj, states, location, order, limit, fmt, as_json) -> None:
    """List delivery notes, newest first."""
    from caturactl.reports import delivery_rows
    fmt = pick_format(fmt, as_json)
    app = obj.ready_app()
    counted: list[int] = []
    with app.session() as s:
        rows = delivery_rows(s, app.cfg.tz, states=list(states), location=location, order=order,
                             limit=limit if fmt == "table" and limit else None, counted=counted)
    title = f"Delivery notes ({len(rows)} of {counted[0]})" if counted and counted[0] > len(rows) else \
        f"Delivery notes ({len(rows)})"
    emit(rows, DELIVERY_COLUMNS, fmt=fmt, title=title, empty="no delivery notes")


@deliveries.command("show")
@click.argument("delivery")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def deliveries_show(obj, delivery: str, as_json: bool) -> None:
    """Show a delivery note: lines, parcels with tracking links, the carrier choice and its history."""
    from carriers import tracking
    from caturactl.reports import delivery_events, find_delivery
    app = obj.ready_app()
    tz = app.cfg.tz
    with app.session() as s:
        n = find_delivery(s, delivery)
        record = {
            "delivery": n.number, "order": n.order.external_id, "location": n.location, "state": n.state,
            "carrier": n.carrier, "service": n.service, "price": n.price, "ship_date": n.ship_date,
            "expected_delivery": n.delivery_date, "file": n.file_name, "created": local_time(n.created_at, tz),
            "exported": local_time(n.exported_at, tz), "deadline": local_time(n.deadline_at, tz),
            "confirmed": local_time(n.confirmed_at, tz), "shipped": local_time(n.shipped_at, tz),
            "lines": [{"sku": ln.sku, "quantity": ln.quantity, "shipped": ln.shipped} for ln in n.lines],
            "parcels": [{"package": p.package_reference, "carrier": p.carrier, "tracking": p.tracking_number,
                         "weight_g": p.weight_g, "shipped_at": local_time(p.shipped_at, tz),
                         "at_channel": local_time(p.channel_confirmed_at, tz),
                         "url": tracking.tracking_url(p.carrier, p.tracking_number) or ""} for p in n.parcels],
            "choice": n.choice,
            "events": [{"at": local_time(e.at, tz, "%Y-%m-%d %H:%M:%S"), "actor": e.actor, "kind": e.kind,
                        "from": e.from_state, "to": e.to_state, "why": e.why} for e in delivery_events(s, n)],
        }
    if as_json:
        emit_record(record, fmt="json")
        return
    emit_record(record, fmt="table", title=f"Delivery note {record['delivery']}")
    emit(record["lines"], [Column("sku", "SKU"), Column("quantity", "Qty", "right"), Column("shipped", "Shipped", "right")],
         fmt="table", title="Lines")
    emit(record["parcels"], [Column("package", "#", "right"), Column("carrier", "Carrier"), Column("tracking", "Tracking"),
                             Column("weight_g", "g", "right"), Column("shipped_at", "Shipped"),
                             Column("at_channel", "At Amazon"), Column("url", "Track", max_width=80)],
         fmt="table", title="Parcels", empty="no parcels reported yet")
    emit(record["events"], [Column("at", "When"), Column("actor", "Who"), Column("kind", "Event"),
                            Column("from", "From"), Column("to", "To"), Column("why", "Why", max_width=70)],
         fmt="table", title="History")


# --- outbox ------------------------------------------------------------------------------------------

OUTBOX_COLUMNS = [Column("id", "#", "right"), Column("kind", "Kind"), Column("target", "Target"),
                  Column("key", "Key", max_width=50), Column("status", "Status"), Column("attempts", "Tries", "right"),
                  Column("next_attempt", "Next try"), Column("done", "Done"),
                  Column("last_error", "Last error", max_width=60)]


@click.group()
def outbox() -> None:
    """What waits to be sent (files, e-mails, Amazon confirmations), what failed and why."""


@outbox.command("list")
@click.option("--status", type=click.Choice(["open", "pending", "failed", "done", "all"]), default="open",
              show_default=True, help="open = pending and failed.")
@click.option("--kind", type=click.Choice(["upload", "email", "amazon_confirm_shipment"]))
@click.option("--limit", type=click.IntRange(min=1), default=200, show_default=True)
@format_options
@click.pass_obj
def outbox_list(obj, status, kind, limit, fmt, as_json) -> None:
    """List outbox messages, newest first."""
    from caturactl.reports import outbox_rows
    app = obj.ready_app()
    with app.session() as s:
        rows = outbox_rows(s, app.cfg.tz, status=status, kind=kind, limit=limit)
    emit(rows, OUTBOX_COLUMNS, fmt=pick_format(fmt, as_json), title=f"Outbox ({len(rows)})", empty="the outbox is empty")


@outbox.command("show")
@click.argument("message")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def outbox_show(obj, message: str, as_json: bool) -> None:
    """Show one message (by number or key) with its payload (file contents left out)."""
    from caturactl.outbox import find
    app = obj.ready_app()
    tz = app.cfg.tz
    with app.session() as s:
        m = find(s, message)
        payload = {k: (f"<{len(v) * 3 // 4} bytes>" if k == "content_b64" else v) for k, v in (m.payload or {}).items()}
        record = {"id": m.id, "key": m.key, "kind": m.kind, "target": m.target, "status": m.status,
                  "attempts": m.attempts, "created": local_time(m.created_at, tz),
                  "next_attempt": local_time(m.next_attempt_at, tz), "done": local_time(m.done_at, tz),
                  "last_error": m.last_error, "payload": payload}
    if as_json:
        emit_record(record, fmt="json")
        return
    emit_record(record, fmt="table", title=f"Outbox message {m.id}")
    for k, v in payload.items():
        console.print(f"    {k}: {v}", highlight=False, markup=False)


@outbox.command("retry")
@click.argument("messages", nargs=-1)
@click.option("--all-failed", is_flag=True, help="Every failed message.")
@click.option("--dry-run", is_flag=True, help="Say what would be queued again; change nothing.")
@click.pass_obj
def outbox_retry(obj, messages: tuple[str, ...], all_failed: bool, dry_run: bool) -> None:
    """Queue failed messages again (by number or key) and send them now."""
    from caturactl.model import OutboxMessage
    from caturactl.outbox import retry
    if not messages and not all_failed:
        raise InputError("name the messages to retry, or pass --all-failed")
    app = obj.ready_app()
    with app.session() as s:
        refs = list(messages) + ([str(i) for i in s.scalars(select(OutboxMessage.id)
                                                             .where(OutboxMessage.status == "failed"))]
                                 if all_failed else [])
        ids = [retry(s, ref).id for ref in refs]
        if dry_run:
            s.rollback()
            console.print(DRY + f"{len(ids)} message(s) would be sent again", highlight=False)
            return
        s.commit()
        sender = app.sender(s)
        try:
            r = sender.run()
        finally:
            sender.close()
    console.print(f"outbox retry: {len(ids)} queued again; sent {r.sent}, to retry {r.retry_later}, "
                  f"failed {r.failed}", highlight=False)
    for e in r.errors[:20]:
        console.print(f"  {e}", highlight=False, markup=False)
    _exit(r.exit_code)


@outbox.command("send")
@click.option("--dry-run", is_flag=True, help="Count what is due; send nothing.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def outbox_send(obj, dry_run: bool, as_json: bool) -> None:
    """Send every due message (the job runner calls this between the other steps)."""
    app = obj.ready_app()
    with app.session() as s:
        sender = app.sender(s)
        try:
            r = sender.run(dry_run=dry_run)
        finally:
            sender.close()
    line = (DRY + f"{r.skipped} message(s) due") if dry_run else \
        f"sent {r.sent}, to retry {r.retry_later}, failed {r.failed}"
    summary("outbox send", r.as_dict(), as_json=as_json, line=line, ok=not r.exit_code)
    if not as_json:
        for e in r.errors[:20]:
            console.print(f"  {e}", highlight=False, markup=False)
    _exit(r.exit_code)


# --- stock --------------------------------------------------------------------------------------------

@click.group()
def stock() -> None:
    """Stock per location: on hand, reserved for delivery notes, available."""


@stock.command("list")
@click.option("--location", help="Only this location.")
@format_options
@click.pass_obj
def stock_list(obj, location, fmt, as_json) -> None:
    """List stock per location and SKU."""
    from caturactl.stock import stock_rows
    app = obj.ready_app()
    with app.session() as s:
        rows = stock_rows(s, location)
    emit(rows, [Column("location", "Location"), Column("sku", "SKU"), Column("on_hand", "On hand", "right"),
                Column("reserved", "Reserved", "right"), Column("available", "Available", "right")],
         fmt=pick_format(fmt, as_json), title=f"Stock ({len(rows)})", empty="no stock recorded")


@stock.command("import")
@click.argument("location")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check the file; change nothing.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def stock_import(obj, location: str, file: Path, dry_run: bool, as_json: bool) -> None:
    """Set on-hand stock of LOCATION from a CSV (sku;on_hand), all or nothing."""
    from caturactl.stock import read_stock, set_stock
    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {exc}", where=str(file)) from None
    rows = read_stock(str(file), text)
    app = obj.ready_app()
    with app.session() as s:
        r = set_stock(s, location, rows, app.cfg.locations)
        s.rollback() if dry_run else s.commit()
    line = f"{location}: {r.rows} row(s), {r.new} new, {r.changed} changed"
    if r.unknown_skus:
        line += f"; {len(r.unknown_skus)} SKU(s) not in the catalogue: {', '.join(r.unknown_skus[:5])}"
    summary("stock import", r.as_dict(), as_json=as_json, line=(DRY if dry_run else "") + line,
            ok=not r.unknown_skus)


COMMANDS = [route, carriers, ship, deliveries, outbox, stock]
