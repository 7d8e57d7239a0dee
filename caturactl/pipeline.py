"""The pipeline's stages as services: each one opens its transaction, runs, sends the outbox
messages it queued, and returns one ``Outcome`` (what ``--json`` prints, the summary line, the
problems worth a line each, the exit code). The CLI's batch commands and the job runner only
call these and print what comes back (``caturactl/cli/batch.py``).

A dry run is the same everywhere: the stage runs in a transaction that is rolled back, and
nothing is sent.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, Collection

from caturactl import channels

# (label, total) -> a context manager yielding advance(n); the CLI passes a progress bar.
Progress = Callable[[str, "int | None"], AbstractContextManager[Callable[[int], None]]]
# Exit codes scripts can trust (sysexits.h): input refused, a remote side unreachable.
DATAERR, UNAVAILABLE = 65, 69


def no_progress(label: str, total: int | None) -> AbstractContextManager[Callable[[int], None]]:
    return nullcontext(lambda n: None)


@dataclass
class Outcome:
    """What one stage did."""
    command: str
    data: dict[str, Any]
    line: str
    exit_code: int = 0
    problems: list[str] = field(default_factory=list)
    dry_run: bool = False
    ok: bool | None = None  # None: ok when the exit code is 0
    stopped_by: str = ""  # why the stage stopped before it was done (said on stderr)

    @property
    def fine(self) -> bool:
        return (self.exit_code == 0) if self.ok is None else self.ok


def send(app, session, kinds: Collection[str]):
    """Send the due messages of ``kinds`` through the app's sender; its SendResult."""
    sender = app.sender(session)
    try:
        return sender.run(kinds=set(kinds))
    finally:
        sender.close()


def _with_sent(outcome: Outcome, sent, key: str, verb: str) -> Outcome:
    """Fold what the sender did into the stage's outcome: its figures under ``key``, a clause on
    the summary line, its errors among the problems, its exit code when the stage had none."""
    if sent is None:
        return outcome
    outcome.data[key] = sent.as_dict()
    outcome.line += f"; {verb} {sent.sent}, to retry {sent.retry_later}, failed {sent.failed}"
    outcome.problems += sent.errors
    outcome.exit_code = outcome.exit_code or sent.exit_code
    if outcome.ok is not None:
        outcome.ok = outcome.ok and not sent.exit_code
    return outcome


def export_deliveries(app, *, dry_run: bool, limit: int | None = None, progress: Progress = no_progress) -> Outcome:
    """``ship export``: render each new delivery note, queue its files, send them."""
    from caturactl.fulfilment import shipping
    with app.work(dry_run) as s:
        total = shipping.count_to_export(s, app.cfg, limit)
        with progress("rendering", total) as advance:
            r = shipping.export(s, app.cfg, app.formats(), dry_run=dry_run, limit=limit, progress=advance)
        sent = None if dry_run else send(app, s, {shipping.UPLOAD})
    line = f"{r.exported} delivery note(s), {len(r.files)} file(s)"
    if dry_run and r.files:
        line += ": " + ", ".join(r.files[:10]) + (" ..." if len(r.files) > 10 else "")
    out = Outcome("ship export", r.as_dict(), line, DATAERR if r.failed else 0, list(r.failed), dry_run,
                  ok=not r.failed)
    code = out.exit_code
    _with_sent(out, sent, "upload", "uploaded")
    out.exit_code = code or (sent.exit_code if sent else 0)  # a refused note outranks a transport that is down
    return out


def collect_confirmations(app, *, dry_run: bool) -> Outcome:
    """``ship collect``: read the return channels, store the parcels, tell the channels."""
    from caturactl.fulfilment import shipping
    with app.work(dry_run) as s:
        r = shipping.Collector(s, app.cfg, app.transport, app.readers()).run(dry_run=dry_run)
        sent = None if dry_run else send(app, s, {*channels.message_kinds("confirmation"), shipping.EMAIL})
    line = (f"{r.files} file(s), {r.confirmations} confirmation(s), {r.parcels} new parcel(s), "
            f"{len(r.rejected)} rejected")
    out = Outcome("ship collect", r.as_dict(), line, r.exit_code, [*r.rejected, *r.unreachable], dry_run)
    return _with_sent(out, sent, "channel", "confirmed at the channel")


def mark_overdue(app, *, dry_run: bool) -> Outcome:
    """``ship overdue``: delivery notes past their deadline, each with a ticket."""
    from caturactl.fulfilment import shipping
    with app.work(dry_run) as s:
        r = shipping.overdue(s, app.cfg, dry_run=dry_run)
    line = f"{len(r.overdue)} delivery note(s) overdue" + (f": {', '.join(r.overdue[:10])}" if r.overdue else "")
    return Outcome("ship overdue", r.as_dict(), line, 0, [], dry_run, ok=not r.overdue)


def create_invoices(app, *, dry_run: bool, limit: int | None = None, jobs: int = 1,
                    progress: Progress = no_progress) -> Outcome:
    """``invoices create``: invoice every shipped delivery that is due, then deliver the documents."""
    from caturactl.billing import invoicing
    pool = app.invoice_render_pool(jobs) if jobs > 1 and not dry_run else None
    try:
        with app.work(dry_run) as s:
            inv = invoicing.Invoicer(s, app.cfg, None if dry_run else app.invoice_renderer(), render_many=pool)
            with progress("invoicing", len(inv.due(limit))) as advance:
                r = inv.run(dry_run=dry_run, limit=limit, batch=50 * jobs, progress=advance)
            sent = send(app, s, {invoicing.UPLOAD, invoicing.EMAIL}) if not dry_run and r.queued else None
    finally:
        if pool is not None:
            pool.close()
    line = f"{r.planned} invoice(s) due, {r.gross} gross" if dry_run else \
        f"{len(r.created)} invoice(s) created" + (f" ({r.created[0]} .. {r.created[-1]})" if r.created else "")
    out = Outcome("invoices create", r.as_dict(), line, 0, list(r.failed), dry_run, ok=not r.failed)
    _with_sent(out, sent, "delivery", "delivered")
    if r.failed:
        out.line += f"; {len(r.failed)} order(s) cannot be invoiced" + ("" if dry_run else ", each has a ticket")
        out.exit_code = out.exit_code or DATAERR
    if r.waiting:
        out.line += f"; {r.waiting} order(s) wait for their invoice_failed ticket to be resolved"
    return out


def request_reviews(app, *, dry_run: bool) -> Outcome:
    """``reviews request``: a review request for every shipped order inside its channel's window."""
    from caturactl.orders import reviews
    with app.work(dry_run) as s:
        r = reviews.queue_due(s, dry_run=dry_run)
        sent = send(app, s, channels.message_kinds("review")) if not dry_run and r.queued else None
    out = Outcome("reviews request", r.as_dict(), f"{len(r.queued)} due, {r.not_yet} shipped but not yet in "
                  "their window", 0, [], dry_run)
    return _with_sent(out, sent, "channel", "asked the channel")


def send_outbox(app, *, dry_run: bool) -> Outcome:
    """``outbox send``: every due message."""
    with app.work(dry_run) as s:
        sender = app.sender(s)
        try:
            r = sender.run(dry_run=dry_run)
        finally:
            sender.close()
    line = f"{r.skipped} message(s) due" if dry_run else f"sent {r.sent}, to retry {r.retry_later}, failed {r.failed}"
    return Outcome("outbox send", r.as_dict(), line, r.exit_code, list(r.errors), dry_run)


def import_products(app, file, *, dry_run: bool) -> Outcome:
    """``products import``: add or update products from a CSV file, all or nothing."""
    from caturactl.catalogue.products import import_products as load
    with app.work(dry_run) as s:
        r = load(s, file)
    return Outcome("products import", {"new": r.new, "updated": r.updated, "unchanged": r.unchanged,
                                       "dry_run": dry_run},
                   f"{r.new} new, {r.updated} updated, {r.unchanged} unchanged", 0, [], dry_run)


def import_stock(app, location: str, file, *, dry_run: bool) -> Outcome:
    """``stock import``: set a location's on-hand stock from a CSV file, all or nothing."""
    from caturactl.catalogue.stock import read_stock, set_stock
    from caturactl.core.csvfile import decode
    from caturactl.core.errors import InputError
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", where=str(file)) from None
    rows = read_stock(str(file), decode(data, str(file)))
    with app.work(dry_run) as s:
        r = set_stock(s, location, rows, app.cfg.locations)
    line = f"{location}: {r.rows} row(s), {r.new} new, {r.changed} changed"
    if r.unknown_skus:
        line += f"; {len(r.unknown_skus)} SKU(s) not in the catalogue: {', '.join(r.unknown_skus[:5])}"
    return Outcome("stock import", r.as_dict(), line, 0, [], dry_run, ok=not r.unknown_skus)


def export_bookings(app, *, fmt: str, date_from, date_to, path, again: bool, bom: bool, dry_run: bool) -> Outcome:
    """``export bookings``: a period's bookings as a DATEV or CSV file, once per period."""
    from caturactl.accounting import exporting
    with app.work(dry_run) as s:
        r = exporting.export_bookings(s, app.cfg, fmt=fmt, date_from=date_from, date_to=date_to, path=path,
                                      write_datev=app.write_datev_bookings, again=again, dry_run=dry_run, bom=bom)
    line = f"{r.rows} booking(s), {r.total} moved" + ("" if dry_run else f", written to {r.file}")
    problems = []
    if r.unmapped_fees:
        line += f"; {len(r.unmapped_fees)} fee line(s) not named in [accounts.fee_accounts]"
        fallback = app.cfg.accounts.account(app.cfg.accounts.fee_default)
        problems = [f"settlement {u['settlement']}: {u['description']} {u['amount']} booked under § 13b on {fallback}"
                    for u in r.unmapped_fees]
        problems.append("name them in [accounts.fee_accounts] (account, reverse_charge) and export again with --again")
    return Outcome("export bookings", r.as_dict(), line, 0, problems, dry_run, ok=not r.unmapped_fees)


def export_debtors(app, *, path, dry_run: bool) -> Outcome:
    """``export customers``: debtor master data for DATEV, written whole or not at all."""
    from caturactl.accounting import exporting
    with app.work(dry_run) as s:
        rows = exporting.debtors(s)
    if not dry_run:
        exporting.need_datev_numbers(app.cfg)
        exporting.write_whole(path, lambda f: app.write_datev_debtors(app.cfg, rows, f))
    return Outcome("export customers", {"rows": len(rows), "file": str(path), "dry_run": dry_run},
                   f"{len(rows)} debtor(s)" + ("" if dry_run else f" written to {path}"), 0, [], dry_run)


def resolve_ticket(app, ticket: str, action: str, note: str, *, dry_run: bool) -> Outcome:
    """``tickets resolve``: release or cancel a ticket's order, or close the ticket, with a note."""
    from caturactl.orders.cancelling import cancel_order
    from caturactl.orders.triage import resolve
    refunds: list[str] = []
    with app.work(dry_run) as s:
        t = resolve(s, ticket, action, note,
                    cancel=lambda order, why: refunds.extend(cancel_order(s, app.cfg, order, why).refunds))
        data = {"ticket": t.number, "resolution": t.resolution, "order": t.order.external_id if t.order else None,
                "order_state": str(t.order.state) if t.order else None, "refunds": refunds, "dry_run": dry_run}
    line = f"{data['ticket']} {data['resolution']}" + (
        f": order {data['order']} is now {data['order_state']}" if data["order"] else "") + \
        "".join(f"; {r}" for r in refunds)
    return Outcome("tickets resolve", data, line, 0, [], dry_run)


def merge_customers(app, keep: str, other: str, other_ref: str, *, dry_run: bool) -> Outcome:
    """``customers merge``: OTHER's orders, e-mails and addresses move to KEEP."""
    from caturactl.customers.matching import merge
    with app.work(dry_run) as s:
        number = merge(s, keep, other).number
    return Outcome("customers merge", {"kept": number, "merged": other_ref, "dry_run": dry_run},
                   f"merged {other_ref} into {number}", 0, [], dry_run)


def import_orders(app, channel: str, *, since=None, dry_run: bool, max_seconds: float | None = None,
                  on_page: Callable[[Any], None] | None = None) -> Outcome:
    """``import orders``: one channel's new and changed orders, page by page with its cursor
    (resumable); ``on_page`` sees the running result after each page."""
    from caturactl.orders.importing import Importer
    with app.work(dry_run) as s:
        source, scope = app.order_source(s, channel)
        try:
            r = Importer(s, app.cfg, source).run(scope, since=since, dry_run=dry_run, max_seconds=max_seconds,
                                                 **({"progress": on_page} if on_page else {}))
        finally:
            source.close()
    problems = [f"failed: {f}" for f in r.failures]
    if r.failed:
        problems.append("each failed order has a ticket: caturactl tickets list")
    return Outcome(f"import {channel}", r.as_dict(), r.line(), r.exit_code, problems, False,
                   ok=not (r.stopped_by or r.failed), stopped_by=r.stopped_by or "" if r.exit_code else "")


def _send_now(app, kinds: Collection[str] | None = None):
    """Send what the committed unit of work queued, in a session of its own."""
    with app.session() as s:
        sender = app.sender(s)
        try:
            return sender.run(kinds=set(kinds)) if kinds is not None else sender.run()
        finally:
            sender.close()


def retry_messages(app, refs: list[str], *, all_failed: bool, resend: bool, dry_run: bool) -> Outcome:
    """``outbox retry``: queue failed messages again and send them now."""
    from sqlalchemy import select

    from caturactl.outbox.models import OutboxMessage
    from caturactl.outbox.service import retry
    with app.work(dry_run) as s:
        if all_failed:
            refs = list(refs) + [str(i) for i in s.scalars(select(OutboxMessage.id)
                                                            .where(OutboxMessage.status == "failed"))]
        ids = [retry(s, ref, resend=resend).id for ref in refs]
    if dry_run:
        return Outcome("outbox retry", {"queued": len(ids), "dry_run": True},
                       f"{len(ids)} message(s) would be sent again", 0, [], True)
    out = Outcome("outbox retry", {"queued": len(ids), "dry_run": False}, f"{len(ids)} queued again", 0, [])
    return _with_sent(out, _send_now(app), "sent", "sent")


def mark_arrived(app, refs: list[str], reason: str, *, force: bool, dry_run: bool) -> Outcome:
    """``outbox done``: messages a person found at the other side count as sent."""
    from caturactl.outbox.service import find
    with app.work(dry_run) as s:
        sender = app.sender(s)
        try:
            msgs = [find(s, ref) for ref in refs]
            for m in msgs:
                sender.mark_done(m, reason, force=force)
        finally:
            sender.close()
    line = f"{len(msgs)} message(s) " + ("would be marked" if dry_run else "marked") + " as arrived"
    return Outcome("outbox done", {"marked": len(msgs), "dry_run": dry_run}, line, 0, [], dry_run)


def resend_invoice(app, number: str, *, dry_run: bool) -> Outcome:
    """``invoices resend``: the same invoice (same number, same file) delivered again."""
    from caturactl.billing import invoicing
    with app.work(dry_run) as s:
        inv = invoicing.resend(s, number)
        number, delivery = inv.number, inv.delivery
    if dry_run:
        return Outcome("invoices resend", {"invoice": number, "delivery": delivery, "dry_run": True},
                       f"{number} would be delivered again ({delivery})", 0, [], True)
    out = Outcome("invoices resend", {"invoice": number, "delivery": delivery, "dry_run": False}, number, 0, [])
    return _with_sent(out, _send_now(app, {invoicing.UPLOAD, invoicing.EMAIL}), "sent", "delivered")


def credit_invoice(app, number: str, wanted, reason: str, *, dry_run: bool) -> Outcome:
    """``invoices credit``: a correction invoice for a refund or cancellation, then delivered."""
    from caturactl.billing import invoicing
    with app.work(dry_run) as s:
        credit = invoicing.Invoicer(s, app.cfg, app.invoice_renderer()).credit(number, wanted, reason)
        data = {"credit_note": credit.number, "corrects": number, "gross": str(credit.gross_total),
                "currency": credit.currency, "positions": len(credit.document["items"]), "dry_run": dry_run}
    line = (f"{data['credit_note']} corrects {number}: {data['gross']} {data['currency']} gross"
            f" ({data['positions']} position(s))")
    out = Outcome("invoices credit", data, line, 0, [], dry_run)
    return out if dry_run else _with_sent(out, _send_now(app, {invoicing.UPLOAD, invoicing.EMAIL}), "sent",
                                          "delivered")


def route_orders(app, *, dry_run: bool, limit: int | None = None, progress: Progress = no_progress) -> Outcome:
    """``route``: released orders into delivery notes per location, stock reserved, carrier chosen
    (committed per batch of orders)."""
    from caturactl.fulfilment import routing
    with app.work(dry_run) as s:
        router = routing.Router(s, app.cfg)
        with progress("routing", routing.count_to_route(s, limit)) as advance:
            r = router.run(dry_run=dry_run, limit=limit, progress=advance)
    line = (f"{r.orders} released, {r.routed} routed into {r.deliveries} delivery note(s), "
            f"{len(r.waiting)} waiting for stock, {len(r.held)} on hold (no carrier)")
    problems = ["held orders have a ticket: caturactl tickets list --kind no_carrier"] if r.held else []
    return Outcome("route", r.as_dict(), line, 0, problems, dry_run, ok=not r.held)


def fetch_settlements(app, *, days: int, dry_run: bool) -> Outcome:
    """``settlement fetch``: the settling channel's reports of the last ``days`` days downloaded,
    kept and imported, each settlement committed on its own; a dry run only lists them."""
    from datetime import timedelta

    from caturactl.accounting import settlement
    from caturactl.core import clock
    with app.work(dry_run) as s:
        source = app.settlement_reports(s)
        try:
            r = settlement.fetch(s, source, app.cfg.base_dir / "settlements",
                                 invoiced_by_channel=channels.settling().issues_invoices(app.cfg),
                                 since=clock.now() - timedelta(days=days), dry_run=dry_run)
        finally:
            source.close()
    if dry_run:
        line = (f"{r.reports} report(s), {len(r.to_download)} to download"
                + (f" ({', '.join(r.to_download)})" if r.to_download else ""))
    else:
        line = (f"{r.reports} report(s): {len(r.imported)} settlement(s) imported"
                + (f" ({', '.join(r.imported)})" if r.imported else "") + f", {r.duplicates} seen before")
    return Outcome("settlement fetch", r.as_dict(), line, 0, [], dry_run)


def import_settlement(app, file, *, dry_run: bool) -> Outcome:
    """``settlement import``: one settlement file checked, reconciled and stored, all or nothing;
    fee lines no [accounts.fee_accounts] pattern names are listed as problems."""
    from caturactl.accounting.bookings import unmapped_fees
    from caturactl.accounting.settlement import import_file
    with app.work(dry_run) as s:
        r = import_file(s, file, dry_run=dry_run, invoiced_by_channel=channels.settling().issues_invoices(app.cfg))
    unmapped = unmapped_fees(r.fee_totals, app.cfg.accounts)
    if r.duplicate:
        line = f"settlement {r.settlement_id} was imported before; nothing changed"
    else:
        line = (f"settlement {r.settlement_id}: {r.lines} line(s), payout {r.total}; {r.paid} order(s) paid, "
                f"{r.differences} difference(s) totalling {r.differences_total}")
        if unmapped:
            line += f"; {len(unmapped)} fee line(s) not named in [accounts.fee_accounts]"
    data = {**r.as_dict(), "unmapped_fees": [{"description": d, "amount": str(a)} for d, a in unmapped]}
    problems = []
    if unmapped:
        fallback = app.cfg.accounts.account(app.cfg.accounts.fee_default)
        problems = [f"{description} {amount}: will be booked under § 13b on {fallback}"
                    for description, amount in unmapped]
    return Outcome("settlement import", data, line, 0, problems, dry_run, ok=not (r.differences or unmapped))


def check_invoice_uploads(app, command: str) -> Outcome:
    """The channels' verdicts on the invoices uploaded and not judged yet; a refused one gets a
    ticket. ``command`` is the name the outcome is printed under: the command line says it in the
    channel's words, which this module does not use (tests/test_channels.py)."""
    from caturactl.billing import invoicing
    with app.work() as s:
        counts = invoicing.check_uploads(app, s)
    line = (f"{counts['checked']} upload(s) checked: {counts['accepted']} accepted, {counts['rejected']} refused "
            f"(each has a ticket), {counts['waiting']} still processing")
    return Outcome(command, counts, line, 0, [], ok=not counts["rejected"])


def import_payments(app, file, *, dry_run: bool) -> Outcome:
    """``payments import``: a bank statement file (CAMT.053 or MT940) read whole, each new
    statement stored once and its credits matched to open payments or given a ticket, all or
    nothing; a file that does not read raises InputError (exit 65) and changes nothing."""
    from caturactl.core.errors import InputError
    from caturactl.payments.statements import import_file
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", where=str(file)) from None
    from caturactl.payments.announcements import kinds
    with app.work(dry_run) as s:
        r = import_file(s, file.name, data, app.statement_reader(), cfg=app.cfg)
        sent = send(app, s, kinds()) if r.queued and not dry_run else None
    if not r.statements:
        line = f"statement {', '.join(r.seen_before)} was imported before; nothing changed"
    else:
        line = (f"statement {', '.join(r.statements)}: {r.credits} credits, matched {r.matched}, partly {r.partly}, "
                f"tickets {len(r.tickets)}")
        if r.returned:
            line += f"; {r.returned} returned direct debit(s) taken back"
        if r.seen_before:
            line += f"; {', '.join(r.seen_before)} imported before"
    problems = [f"tickets {', '.join(r.tickets[:10])}{' ...' if len(r.tickets) > 10 else ''}: "
                "caturactl tickets list --kind payment"] if r.tickets else []
    out = Outcome("payments import", {**r.as_dict(), "dry_run": dry_run}, line, 0, problems, dry_run,
                  ok=not r.tickets)
    return _with_sent(out, sent, "announced", "announced")


def push_stock(app, *, dry_run: bool) -> Outcome:
    """``stock push``: what each channel that takes stock may sell, only where it changed since the
    last push, queued and sent; a dry run lists the changes and stores and sends nothing."""
    from caturactl.catalogue import availability
    with app.work(dry_run) as s:
        r = availability.push(s, app.cfg)
        sent = send(app, s, channels.message_kinds("stock")) if not dry_run and r.queued else None
    per_channel = {name: sum(1 for c in r.changes if c.channel == name) for name in r.channels}
    line = f"{len(r.changes)} change(s) {'to push' if dry_run else 'queued'}: " \
        + ", ".join(f"{name} {n}" for name, n in per_channel.items())
    if not r.channels:
        line = "no enabled channel takes stock"
    if dry_run and r.changes:
        line += "; " + ", ".join(f"{c.channel} {c.sku}: {'none' if c.before is None else c.before} -> {c.quantity}"
                                 for c in r.changes[:10]) + (" ..." if len(r.changes) > 10 else "")
    out = Outcome("stock push", {**r.as_dict(), "dry_run": dry_run}, line, 0, [], dry_run)
    return _with_sent(out, sent, "sent", "sent")


def take_order(app, lines, terms, *, customer: str | None, buyer, dry_run: bool) -> Outcome:
    """``orders create``: an order taken at the terminal, priced from the catalogue, the stock
    checked, triaged and its payment expected (``caturactl/orders/desk.py``)."""
    from caturactl.orders import desk
    with app.work(dry_run) as s:
        placed = desk.create(s, app.cfg, lines, terms, customer_ref=customer, buyer=buyer)
    return _placed_outcome("orders create", placed, dry_run)


def repeat_order(app, ref: str, *, dry_run: bool, **terms) -> Outcome:
    """``orders repeat``: an order's lines placed again for the same customer and address
    (``terms``: ``desk.repeat``'s payment, reference, shipping, note, allow_backorder)."""
    from caturactl.orders import desk
    with app.work(dry_run) as s:
        placed = desk.repeat(s, app.cfg, ref, **terms)
    return _placed_outcome("orders repeat", placed, dry_run)


def _placed_outcome(command: str, placed, dry_run: bool) -> Outcome:
    line = (f"order {placed.number} ({placed.customer or 'no customer'}): {placed.total}, {placed.payment}, "
            f"{placed.state}" + (f" ({placed.ticket}: {placed.hold_reason})" if placed.ticket else ""))
    if placed.repeats:
        line = f"{placed.repeats} placed again as " + line
    problems = [f"taken on backorder: {b}" for b in placed.backorder]
    return Outcome(command, {**placed.as_dict(), "dry_run": dry_run}, line, 0, problems, dry_run)


def note_order(app, ref: str, text: str, *, dry_run: bool) -> Outcome:
    """``orders note``: a person's note kept in the order's history."""
    from caturactl.orders import desk
    with app.work(dry_run) as s:
        number = desk.note(s, ref, text).external_id
    return Outcome("orders note", {"order": number, "note": text.strip(), "dry_run": dry_run},
                   f"note added to order {number}", 0, [], dry_run)


def bulk_orders(app, action: str, *, file=None, states=None, channel=None, since=None, customer=None,
                reason: str = "", reference: str = "", dry_run: bool) -> Outcome:
    """``orders bulk``: one action on each order of a filter or a CSV file, each order whole or not
    at all; what failed is listed (exit 65), what was already done is skipped with why."""
    from caturactl.orders import desk
    targets = desk.read_targets(file) if file is not None else None
    with app.work(dry_run) as s:
        if targets is None:
            targets = desk.select_orders(s, app.cfg.tz, states=states, channel=channel, since=since, customer=customer)
        r = desk.apply_to_each(s, app.cfg, action, targets, reason=reason, reference=reference)
    r.dry_run = dry_run
    line = f"{action}: done {len(r.done)}, skipped {len(r.skipped)}, failed {len(r.failed)}"
    problems = ([f"failed {f['order']}" + (f" ({f['where']})" if f["where"] else "") + f": {f['why']}"
                 for f in r.failed] + [f"skipped {x['order']}: {x['why']}" for x in r.skipped] + r.remarks)
    return Outcome("orders bulk", r.as_dict(), line, DATAERR if r.failed else 0, problems, dry_run,
                   ok=not r.failed)


def remind_payments(app, *, dry_run: bool) -> Outcome:
    """``payments remind``: each open payment past its due date one step on (overdue, reminded,
    its order cancelled, or a ticket; ``caturactl.payments.dunning``), then the channel and the
    buyers told."""
    from caturactl.payments import dunning
    from caturactl.payments.announcements import kinds
    with app.work(dry_run) as s:
        r = dunning.remind(s, app.cfg, dry_run=dry_run)
        sent = send(app, s, kinds()) if r.queued and not dry_run else None
    line = (f"{len(r.overdue)} newly overdue, {len(r.reminded)} reminded, {len(r.cancelled)} cancelled, "
            f"{len(r.tickets)} ticket(s)")
    problems = [f"cancelled {', '.join(r.cancelled[:10])}{' ...' if len(r.cancelled) > 10 else ''}"] if r.cancelled else []
    if r.tickets:
        problems.append(f"tickets {', '.join(r.tickets[:10])}: caturactl tickets list --kind payment")
    if r.skipped:
        problems.append(f"moved by another run meanwhile, looked at again next time: {', '.join(r.skipped[:10])}")
    out = Outcome("payments remind", r.as_dict(), line, 0, problems, dry_run, ok=not r.tickets)
    return _with_sent(out, sent, "announced", "announced")
