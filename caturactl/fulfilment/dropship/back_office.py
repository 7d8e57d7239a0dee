"""The stages of the dropship back office the CLI (and the job runner) call: returns announced,
confirmed, credited or refused; the partners' return notices and cancellation requests sent;
their answers to cancellations recorded; their invoices imported and decided. Each runs in its
unit of work (``App.work``), sends what it queued, and returns one ``caturactl.pipeline.Outcome``;
a dry run is a rolled-back transaction that sends nothing.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Mapping

from caturactl.billing import invoicing
from caturactl.core import clock
from caturactl.core.errors import InputError
from caturactl.core.events import actor
from caturactl.fulfilment import shipping
from caturactl.fulfilment.dropship import (cancellations, partner_notices, purchases, return_credit, returns,
                                           service, stages)
from caturactl.fulfilment.dropship.partner_files import CancellationAnswer
# One way to fold what the sender did into an outcome: the pipeline's.
from caturactl.pipeline import DATAERR, Outcome, _with_sent, send
from caturactl.views.cockpit import find_order

MAX_INVOICE_BYTES = 20 * 1024 * 1024


def send_notices(app, *, dry_run: bool) -> Outcome:
    """The files of announced returns and requested cancellations to the partners with a
    transport, queued and uploaded."""
    with app.work(dry_run) as s:
        files = partner_notices.send_pending(s, app.cfg, app.partner_interface())
        sent = None if dry_run or not files else send(app, s, {shipping.UPLOAD})
    out = Outcome("dropship send notices", {"files": files, "dry_run": dry_run},
                  f"{len(files)} return notice(s) and cancellation request(s)", 0, [], dry_run)
    return _with_sent(out, sent, "sent", "uploaded")


def send_all(app, *, dry_run: bool) -> Outcome:
    """``dropship send``: the purchase orders (``stages.send_orders``), then the return notices and
    cancellation requests (``send_notices``), as one outcome (its ``notices`` the second's)."""
    out = stages.send_orders(app, dry_run=dry_run)
    notices = send_notices(app, dry_run=dry_run)
    out.data["notices"] = notices.data
    out.line += f"; {notices.line}"
    out.problems += notices.problems
    out.exit_code = out.exit_code or notices.exit_code
    return out


def announce_return(app, order_ref: str, wanted: Mapping[int, int | None] | None, reason: str, *, label: str = "",
                    dry_run: bool) -> Outcome:
    """``dropship return announce``: a return of dropshipped pieces of an order, one per
    purchase order; a partner with a transport gets its notice file at once."""
    with app.work(dry_run) as s:
        order = find_order(s, order_ref)
        made = returns.announce(s, app.cfg, order, wanted, reason, source=actor.get(), label=label, now=clock.now())
        files = partner_notices.send_pending(s, app.cfg, app.partner_interface())
        rows = [{"return": rt.number, "partner": rt.partner, "purchase_order": rt.purchase_order.number,
                 "label_reference": rt.label_reference, "pieces": sum(ln.quantity for ln in rt.lines)} for rt in made]
        sent = None if dry_run or not files else send(app, s, {shipping.UPLOAD})
    out = Outcome("dropship return announce", {"order": order_ref, "returns": rows, "files": files,
                                               "dry_run": dry_run},
                  f"order {order_ref}: " + ", ".join(f"{r['return']} to {r['partner']} ({r['pieces']} piece(s))"
                                                     for r in rows) + f"; {len(files)} notice file(s)",
                  0, [], dry_run)
    return _with_sent(out, sent, "sent", "uploaded")


def confirm_return(app, ref: str, *, condition: str, note: str, dry_run: bool) -> Outcome:
    """``dropship return confirm``: the partner's confirmation recorded for it (it phoned, it
    mailed); the buyer is told where the channel allows."""
    with app.work(dry_run) as s:
        rt = returns.find(s, None, ref)
        service.confirm_return(s, rt.partner, rt.id, condition=condition, note=note, actor=actor.get())
        data = {"return": rt.number, "partner": rt.partner, "state": rt.state, "condition": rt.condition,
                "dry_run": dry_run}
        sent = None if dry_run else send(app, s, {shipping.EMAIL})
    out = Outcome("dropship return confirm", data, f"{data['return']} ({data['partner']}): received "
                                                   f"{data['condition']}", 0, [], dry_run)
    return _with_sent(out, sent, "sent", "buyer notices sent")


def credit_returns(app, *, only: str | None = None, note: str = "", dry_run: bool) -> Outcome:
    """``dropship return credit``: every received return whose condition needs no person (or the
    one named, decided by a person) credited: credit note, purchase credit; then delivered."""
    with app.work(dry_run) as s:
        r = return_credit.credit_received(s, app.cfg, app.invoice_renderer(), dry_run=dry_run, only=only,
                                          decision=note)
        sent = None if dry_run or not r.credited else send(app, s, {invoicing.UPLOAD, invoicing.EMAIL})
    line = (f"{len(r.credited)} return(s) credited, {len(r.waiting)} waiting for a person, {len(r.failed)} "
            f"with a ticket")
    out = Outcome("dropship return credit", r.as_dict(), line, DATAERR if r.failed else 0,
                  [*r.failed, *(f"{w}: decide by hand" for w in r.waiting)], dry_run, ok=not (r.failed or r.waiting))
    return _with_sent(out, sent, "sent", "credit notes delivered")


def refuse_return(app, ref: str, reason: str, *, dry_run: bool) -> Outcome:
    """``dropship return refuse``: a person refuses to credit a received return; the buyer is told."""
    with app.work(dry_run) as s:
        rt = returns.find(s, None, ref, lock=True)
        returns.refuse(s, app.cfg, rt, reason, clock.now())
        data = {"return": rt.number, "partner": rt.partner, "state": rt.state, "dry_run": dry_run}
        sent = None if dry_run else send(app, s, {shipping.EMAIL})
    out = Outcome("dropship return refuse", data, f"{data['return']} refused", 0, [], dry_run)
    return _with_sent(out, sent, "sent", "buyer notices sent")


def answer_cancellation(app, number: str, *, accept: bool, note: str, dry_run: bool) -> Outcome:
    """``dropship cancellation accept|refuse``: the partner's answer to our cancellation request,
    recorded for it."""
    with app.work(dry_run) as s:
        po = cancellations.find_po(s, None, number)
        changed = cancellations.answer(s, po, CancellationAnswer(po.number, accept, note, where="cli"), clock.now())
        data = {"purchase_order": po.number, "partner": po.partner, "state": po.state, "changed": changed,
                "dry_run": dry_run}
    what = "accepted" if accept else "refused"
    return Outcome(f"dropship cancellation {'accept' if accept else 'refuse'}", data,
                   f"{data['purchase_order']} ({data['partner']}): cancellation {what}"
                   + ("" if changed else " already") + f"; the purchase order is {data['state']}", 0, [], dry_run)


def import_invoice(app, partner: str, file: Path, *, dry_run: bool) -> Outcome:
    """``dropship invoices import``: a partner's invoice file matched against what it shipped,
    all or nothing; differences make it disputed, with a ticket."""
    try:
        with file.open("rb") as f:
            content = f.read(MAX_INVOICE_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", where=str(file)) from None
    if len(content) > MAX_INVOICE_BYTES:
        raise InputError(f"larger than {MAX_INVOICE_BYTES // (1024 * 1024)} MB", where=file.name)
    doc = app.partner_interface().read_invoice(file.name, content)
    with app.work(dry_run) as s:
        r = purchases.import_invoice(s, app.cfg, partner, doc, file_name=file.name,
                                     digest=hashlib.sha256(content).hexdigest())
    line = f"{partner} invoice {r.number}: {r.lines} line(s), {r.gross} {r.currency} gross, {r.state}"
    if r.differences:
        line += f" ({len(r.differences)} difference(s), see the ticket)"
    return Outcome("dropship invoices import", {**r.as_dict(), "dry_run": dry_run}, line, 0, list(r.differences),
                   dry_run, ok=not r.differences)


def decide_invoice(app, partner: str, number: str, *, approve: bool, note: str, dry_run: bool) -> Outcome:
    """``dropship invoices approve|reject``: a person decides a disputed invoice."""
    with app.work(dry_run) as s:
        inv = purchases.decide(s, partner, number, approve=approve, note=note, now=clock.now())
        data = {"partner": partner, "invoice": inv.number, "state": inv.state, "dry_run": dry_run}
    return Outcome(f"dropship invoices {'approve' if approve else 'reject'}", data,
                   f"{partner} invoice {data['invoice']}: {data['state']}", 0, [], dry_run)


__all__ = ["announce_return", "answer_cancellation", "confirm_return", "credit_returns", "decide_invoice",
           "import_invoice", "refuse_return", "send_all", "send_notices"]
