"""The dropship stages the CLI (and the job runner) call, each in its unit of work
(``App.work``), sending what it queued, returning one ``caturactl.pipeline.Outcome``; a dry run
is a rolled-back transaction that sends nothing, as everywhere."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from caturactl import channels
from caturactl.core import clock
from caturactl.core.errors import InputError, NotFoundError
from caturactl.core.events import actor
from caturactl.fulfilment import shipping
from caturactl.fulfilment.dropship import inbox, outgoing, rerouting, service
from caturactl.fulfilment.dropship.models import PurchaseOrder
from caturactl.pipeline import DATAERR, Outcome, send


def partner_of(session, number: str) -> str:
    """The partner of purchase order ``number``; NotFoundError when there is none."""
    partner = session.scalar(select(PurchaseOrder.partner).where(PurchaseOrder.number == number.strip().upper()))
    if partner is None:
        raise NotFoundError(f"no purchase order {number!r}")
    return partner


def send_orders(app, *, dry_run: bool) -> Outcome:
    """``dropship send``: hand every created purchase order to its partner and upload the files."""
    with app.work(dry_run) as s:
        r = outgoing.send(s, app.cfg, app.partner_interface(), now=clock.now(), dry_run=dry_run)
        sent = None if dry_run or not r.files else send(app, s, {shipping.UPLOAD})
    line = (f"{len(r.sent)} purchase order(s): {len(r.files)} file(s) with {len(r.papers)} paper(s) for the parcel, "
            f"{len(r.portal)} on the portal")
    out = Outcome("dropship send", r.as_dict(), line, DATAERR if r.failed else 0, list(r.failed), dry_run,
                  ok=not r.failed)
    if sent is not None:
        out.data["upload"] = sent.as_dict()
        out.line += f"; uploaded {sent.sent}, to retry {sent.retry_later}, failed {sent.failed}"
        out.problems += sent.errors
        out.exit_code = out.exit_code or sent.exit_code
    return out


def read_answers(app, *, dry_run: bool) -> Outcome:
    """``dropship read``: read the partners' return channels (answers, parcels, availability)
    and tell the channels about the parcels."""
    with app.work(dry_run) as s:
        r = inbox.Reader(s, app.cfg, app.transport, app.partner_interface(), now=clock.now()).run(dry_run=dry_run)
        sent = None if dry_run else send(app, s, {*channels.message_kinds("confirmation"), shipping.EMAIL})
    line = (f"{r.files} file(s): {r.answers} line(s) answered, {r.parcels} new parcel(s), "
            f"{r.availability} availability figure(s), {r.returns} return(s) received, "
            f"{r.cancellations} cancellation(s) answered, {len(r.rejected)} rejected")
    out = Outcome("dropship read", r.as_dict(), line, r.exit_code, [*r.rejected, *r.unreachable], dry_run)
    if sent is not None:
        out.data["channel"] = sent.as_dict()
        out.line += f"; confirmed at the channel {sent.sent}"
        out.problems += sent.errors
    return out


def overdue(app, *, dry_run: bool) -> Outcome:
    """``dropship overdue``: lines not answered by their purchase order's respond_by go back to
    routing, or to a person; accepted lines past their ship_by go to a person (one ticket per
    purchase order). A dry run shows where they would go and keeps nothing."""
    with app.work(dry_run) as s:
        r = rerouting.overdue(s, app.cfg, now=clock.now(), dry_run=dry_run)
    line = (f"{len(r.expired)} line(s) past their answer deadline: {r.rerouted} routed again, {r.tickets} to a "
            f"person" + (f" ({', '.join(r.expired[:10])})" if r.expired else "") +
            f"; {len(r.late)} accepted line(s) past their ship-by, {r.late_tickets} new ticket(s)" +
            (f" ({', '.join(r.late[:10])})" if r.late else ""))
    return Outcome("dropship overdue", r.as_dict(), line, 0, [], dry_run, ok=not r.expired and not r.late_tickets)


def answer(app, number: str, *, accept: list[int] | None = None, reject: int | None = None, reason: str = "",
           note: str = "", dry_run: bool) -> Outcome:
    """``dropship accept|reject``: answer lines for a partner (it phoned, it mailed)."""
    with app.work(dry_run) as s:
        partner = partner_of(s, number)
        if reject is None:
            service.accept_lines(s, partner, number, accept, actor=actor.get())
            what = f"accepted line(s) {', '.join(map(str, accept))}" if accept else "accepted every open line"
        else:
            service.reject_line(s, partner, number, reject, reason, note=note, actor=actor.get())
            what = f"rejected line {reject} ({reason})"
        state = service.purchase_order(s, partner, number).state
    return Outcome(f"dropship {'reject' if reject is not None else 'accept'}",
                   {"purchase_order": number.upper(), "partner": partner, "state": state, "dry_run": dry_run},
                   f"{number.upper()} ({partner}): {what}; now {state}", 0, [], dry_run)


def ship(app, number: str, *, carrier: str, tracking: str, lines: dict[int, int] | None, dry_run: bool) -> Outcome:
    """``dropship ship``: record a parcel for a partner and tell the channel."""
    with app.work(dry_run) as s:
        partner = partner_of(s, number)
        service.add_parcel(s, partner, number, carrier=carrier, tracking=tracking, lines=lines, actor=actor.get())
        state = service.purchase_order(s, partner, number).state
        sent = None if dry_run else send(app, s, {*channels.message_kinds("confirmation"), shipping.EMAIL})
    out = Outcome("dropship ship", {"purchase_order": number.upper(), "partner": partner, "state": state,
                                    "dry_run": dry_run},
                  f"{number.upper()} ({partner}): parcel {carrier} {tracking}; now {state}", 0, [], dry_run)
    if sent is not None:
        out.problems += sent.errors
    return out


def import_availability(app, partner: str, file: Path, *, dry_run: bool) -> Outcome:
    """``dropship availability import``: a partner's availability CSV, all or nothing."""
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", where=str(file)) from None
    with app.work(dry_run) as s:
        changed = service.import_availability_csv(s, partner, data, actor=actor.get(), filename=file.name)
    return Outcome("dropship availability import", {"partner": partner, "changed": changed, "dry_run": dry_run},
                   f"{partner}: {changed} figure(s) changed from {file.name}", 0, [], dry_run)
