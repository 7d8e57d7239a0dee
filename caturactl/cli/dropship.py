"""``caturactl dropship list|show|documents|send|accept|reject|ship|read|overdue|availability``: purchase
orders to dropshippers, as the merchant sees them; the same actions the partner portal offers.
``dropship return|cancellation|invoices|purchases``: returns to the partners, our cancellation
requests, the partners' invoices and what we bought of them."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import click

from caturactl.cli.batch import batch
from caturactl.cli.invoices import parse_lines
from caturactl.cli.listing import Part, listing, showing
from caturactl.cli.output import Column, emit, format_options, local_time, pick_format
from caturactl.core import clock
from caturactl.core.errors import InputError
from caturactl.fulfilment.dropship import back_office, cancellations, purchases, returns, service, stages, terms
from caturactl.fulfilment.dropship.partner_stock import stock_rows
from caturactl.fulfilment.dropship.stages import partner_of
from caturactl.pipeline import Outcome

COLUMNS = [Column("number", "Purchase order"), Column("partner", "Partner"), Column("state", "State"),
           Column("created", "Created"), Column("respond_by", "Answer by"), Column("lines", "Lines", "right"),
           Column("open_lines", "Open", "right"), Column("to_ship", "To ship", "right"), Column("city", "City")]
SHOWN = (Part("lines", [Column("line", "Line", "right"), Column("sku", "SKU"), Column("description", "Description"),
                        Column("quantity", "Qty", "right"), Column("shipped", "Shipped", "right"),
                        Column("state", "State"), Column("reason", "Reason"),
                        Column("purchase_price", "Price", "right")], "Lines"),
         Part("parcels", [Column("carrier", "Carrier"), Column("tracking", "Tracking"), Column("shipped", "Shipped"),
                          Column("lines", "Lines")], "Parcels", empty="no parcels yet"))


def partner_file(dry_run_help: str) -> Callable:
    """A batch command (``batch``) that reads FILE a dropshipper (``--partner``) sent, all or nothing."""
    def decorate(f: Callable) -> Callable:
        command = batch(dry_run_help)(click.pass_obj(f))
        command = click.option("--partner", required=True, help="The dropshipper's location code.")(command)
        return click.argument("file", type=click.Path(dir_okay=False, path_type=Path))(command)
    return decorate


@click.group()
def dropship() -> None:
    """Purchase orders to dropshippers: what they answered, shipped and have in stock."""


@dropship.command("list")
@click.option("--partner", help="Only this dropshipper (its location code).")
@click.option("--view", type=click.Choice(["open", "to_ship", "shipped", "all"]), default="all", show_default=True,
              help="open: lines waiting for the partner's answer; to_ship: accepted lines not shipped yet; "
              "shipped: with a parcel; all: every one sent.")
@click.option("--limit", type=click.IntRange(1, 500), default=100, show_default=True)
@listing(COLUMNS, "Purchase orders", empty="no purchase orders")
def dropship_list(app, s, partner, view, limit) -> list[dict]:
    """List purchase orders sent to dropshippers, newest first."""
    tz = app.cfg.tz
    rows = [{"number": po.number, "partner": code, "state": po.state, "created": local_time(po.created_at, tz),
             "respond_by": local_time(po.respond_by, tz), "lines": po.lines, "open_lines": po.open_lines,
             "to_ship": po.to_ship, "city": po.city}
            for code in ([partner] if partner else terms.partners(app.cfg))
            for po in service.purchase_orders(s, code, view=view, limit=limit)]
    rows.sort(key=lambda r: r["number"], reverse=True)
    return rows[:limit]


@dropship.command("show")
@click.argument("number")
@showing(lambda r: f"Purchase order {r['number']}", *SHOWN)
def dropship_show(app, s, number: str) -> dict:
    """Show a purchase order: lines and their answers, parcels."""
    tz = app.cfg.tz
    partner = partner_of(s, number)
    d = service.purchase_order(s, partner, number)
    return {"number": d.number, "partner": partner, "state": d.state, "created": local_time(d.created_at, tz),
            "respond_by": local_time(d.respond_by, tz), "ship_date": d.ship_date.isoformat() if d.ship_date else "",
            "carrier": f"{d.carrier} {d.service}".strip(),
            "ship_to": ", ".join(x for x in (d.ship_to.name, d.ship_to.street, d.ship_to.postcode, d.ship_to.city,
                                             d.ship_to.country) if x),
            "lines": [{"line": ln.line_no, "sku": ln.sku, "description": ln.description, "quantity": ln.quantity,
                       "shipped": ln.shipped, "state": ln.state, "reason": ln.reason,
                       "purchase_price": str(ln.purchase_price) if ln.purchase_price is not None else ""}
                      for ln in d.lines],
            "parcels": [{"carrier": p.carrier, "tracking": p.tracking, "shipped": local_time(p.shipped_at, tz),
                         "lines": ", ".join(f"{n}×{q}" for n, q in p.lines)} for p in d.parcels]}


@dropship.command("documents")
@click.argument("number")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True,
              help="Folder to write the PDFs to (made if missing).")
@click.option("--kind", "kinds", type=click.Choice(["delivery_note", "label", "invoice"]), multiple=True,
              help="Only this paper (repeat); default: every one the purchase order has.")
@format_options
@click.pass_obj
def dropship_documents(obj, number: str, out: Path, kinds: tuple[str, ...], fmt, as_json) -> None:
    """Write a purchase order's papers for the parcel, in the merchant's design: delivery note,
    shipping label (NOT booked with the carrier) and, when issued and wanted, the invoice."""
    app = obj.ready_app()
    with app.session() as s:
        partner = partner_of(s, number)
        wanted = list(kinds) or [kind for kind, _ in service.purchase_order(s, partner, number).documents]
        papers = [(kind, *service.document(s, partner, number, kind)) for kind in wanted]
    written = _write(out, [(name, content) for _, name, content in papers])
    rows = [{"kind": kind, "file": str(path), "bytes": size} for (kind, _, _), (path, size) in zip(papers, written)]
    emit(rows, [Column("kind", "Paper"), Column("file", "File"), Column("bytes", "Bytes", "right")],
         fmt=pick_format(fmt, as_json), title=f"Papers of {number.upper()} ({partner})", empty="no papers")


def _write(out: Path, files: list[tuple[str, bytes]]) -> list[tuple[Path, int]]:
    """Write ``files`` (name, content) into ``out`` (made if missing): (path, bytes) of each; a
    folder that cannot be made or written is an InputError naming it."""
    written = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, content in files:
            (out / name).write_bytes(content)
            written.append((out / name, len(content)))
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror}", where=str(exc.filename or out)) from None
    return written


@dropship.command("send")
@batch("Render the purchase orders; queue and send nothing.")
@click.pass_obj
def dropship_send(obj, dry_run: bool, as_json: bool):
    """Hand every new purchase order to its dropshipper (openTRANS file, or the portal), and the
    files of announced returns and requested cancellations to the partners with a transport."""
    return back_office.send_all(obj.ready_app(), dry_run=dry_run)


@dropship.command("accept")
@click.argument("number")
@click.option("--line", "lines", type=click.IntRange(1), multiple=True, help="A line to accept (repeat); default all open.")
@batch("Check the answer; change nothing.")
@click.pass_obj
def dropship_accept(obj, number: str, lines: tuple[int, ...], dry_run: bool, as_json: bool):
    """Accept lines of a purchase order for the dropshipper (it answered by phone or mail)."""
    return stages.answer(obj.ready_app(), number, accept=list(lines) or None, dry_run=dry_run)


@dropship.command("reject")
@click.argument("number")
@click.option("--line", "line", type=click.IntRange(1), required=True, help="The line to reject.")
@click.option("--reason", type=click.Choice(["out_of_stock", "address", "discontinued", "other"]), required=True,
              help="Why the partner does not ship it.")
@click.option("--note", default="", help="The partner's words.")
@batch("Check the answer (the line is routed again, then rolled back); change nothing.")
@click.pass_obj
def dropship_reject(obj, number: str, line: int, reason: str, note: str, dry_run: bool, as_json: bool):
    """Reject a line for the dropshipper; it goes back to routing, or to a person."""
    return stages.answer(obj.ready_app(), number, reject=line, reason=reason, note=note, dry_run=dry_run)


@dropship.command("ship")
@click.argument("number")
@click.option("--carrier", required=True, help="The carrier, as configured (DHL, DPD, ...).")
@click.option("--tracking", required=True, help="The parcel's tracking number (checked by the carrier's rules).")
@click.option("--line", "lines", multiple=True, metavar="LINE=QTY", help="Pieces of a line in the parcel (repeat); "
              "default: everything still to ship.")
@batch("Check the parcel; store and send nothing.")
@click.pass_obj
def dropship_ship(obj, number: str, carrier: str, tracking: str, lines: tuple[str, ...], dry_run: bool,
                  as_json: bool):
    """Record a parcel a dropshipper shipped, with its tracking number."""
    pieces: dict[int, int] = {}
    for given in lines:
        line, sep, qty = given.partition("=")
        if not sep or not line.isdigit() or not qty.isdigit():
            raise click.BadParameter(f"{given!r}: write LINE=QTY, e.g. 1=2", param_hint="--line")
        pieces[int(line)] = int(qty)
    return stages.ship(obj.ready_app(), number, carrier=carrier, tracking=tracking, lines=pieces or None,
                       dry_run=dry_run)


@dropship.command("read")
@batch("Read and check the files; apply nothing, move nothing.")
@click.pass_obj
def dropship_read(obj, dry_run: bool, as_json: bool):
    """Read the dropshippers' return channels: answers, parcels, availability, return
    confirmations and answers to cancellation requests."""
    return stages.read_answers(obj.ready_app(), dry_run=dry_run)


@dropship.command("overdue")
@batch("Show which lines would go back to routing or to a person; keep nothing.")
@click.pass_obj
def dropship_overdue(obj, dry_run: bool, as_json: bool):
    """Lines not answered in time (the partner's business hours) go back to routing, or to a person."""
    return stages.overdue(obj.ready_app(), dry_run=dry_run)


@dropship.group("availability")
def availability() -> None:
    """What the dropshippers have, as their feeds say."""


@availability.command("import")
@partner_file("Check the file; change nothing.")
def availability_import(obj, file: Path, partner: str, dry_run: bool, as_json: bool):
    """Set a dropshipper's availability from a CSV (sku;quantity), all or nothing."""
    return stages.import_availability(obj.ready_app(), partner, file, dry_run=dry_run)


@availability.command("list")
@click.option("--partner", help="Only this dropshipper.")
@listing([Column("partner", "Partner"), Column("sku", "SKU"), Column("quantity", "Quantity", "right"),
          Column("as_of", "As of"), Column("fresh", "Fresh"), Column("counts", "Counts", "right"),
          Column("source", "Source", max_width=40)], "Dropshipper availability", empty="no figures")
def availability_list(app, s, partner) -> list[dict]:
    """Every figure with its date; a stale one counts as 0."""
    rows = stock_rows(s, app.cfg, clock.now(), partner)
    for r in rows:
        r["as_of"] = local_time(r["as_of"], app.cfg.tz)
    return rows


# --- returns, cancellations, money (issue 18 items 6 and 7) ----------------------------------------

RETURN_COLUMNS = [Column("return", "Return"), Column("partner", "Partner"), Column("purchase_order", "Purchase order"),
                  Column("order", "Order"), Column("state", "State"), Column("announced", "Announced"),
                  Column("pieces", "Pieces", "right"), Column("condition", "Condition"),
                  Column("credit_note", "Credit note"), Column("reason", "Reason", max_width=40)]
CONDITIONS = ("as_new", "opened", "damaged", "incomplete")  # partner_files.CONDITIONS


@dropship.group("return")
def return_group() -> None:
    """Returns of goods a dropshipper shipped: announced to it, confirmed by it, credited."""


@return_group.command("announce")
@click.argument("order")
@click.option("--lines", "lines_text", metavar="POS[:QTY],...", help="Order line positions and pieces, e.g. "
              "1:2,3 (3: all of it); default: everything a dropshipper shipped and nobody returned yet.")
@click.option("--reason", required=True, help="Why the buyer returns it (the partner is told).")
@click.option("--label", default="", help="The channel's reference of the buyer's return label (default: the "
              "return's number). No label is booked with a carrier.")
@batch("Check the return and write its notice; store and send nothing.")
@click.pass_obj
def return_announce(obj, order: str, lines_text: str | None, reason: str, label: str, dry_run: bool, as_json: bool):
    """Announce a return to the dropshipper(s) that shipped the pieces (a file, or the portal)."""
    wanted = parse_lines(lines_text)
    pieces = None if wanted is None else {pos: None if q is None else int(q) for pos, q in wanted.items()}
    return back_office.announce_return(obj.ready_app(), order, pieces, reason, label=label, dry_run=dry_run)


@return_group.command("label")
@click.argument("ref")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True,
              help="Folder to write the PDF to (made if missing).")
@format_options
@click.pass_obj
def return_label(obj, ref: str, out: Path, fmt, as_json) -> None:
    """Write a return's label (RT000012-return-label.pdf): from the buyer to the dropshipper, in the
    carrier's layout, NOT booked with the carrier. Send it to the buyer; a partner with a transport
    gets it with the return notice, one on the portal downloads it there."""
    app = obj.ready_app()
    with app.session() as s:
        partner = returns.find(s, None, ref).partner
        name, content = service.return_label(s, partner, ref)
    [(path, size)] = _write(out, [(name, content)])
    emit([{"return": ref.upper(), "partner": partner, "file": str(path), "bytes": size}],
         [Column("return", "Return"), Column("partner", "Partner"), Column("file", "File"),
          Column("bytes", "Bytes", "right")], fmt=pick_format(fmt, as_json), title="Return label", empty="")


@return_group.command("list")
@click.option("--partner", help="Only this dropshipper.")
@click.option("--view", type=click.Choice(["open", "received", "done", "all"]), default="all", show_default=True,
              help="open: announced, not confirmed yet; received: waiting for a credit or a person; "
              "done: credited or refused.")
@listing(RETURN_COLUMNS, "Returns", empty="no returns")
def return_list(app, s, partner, view) -> list[dict]:
    """Returns to dropshippers, newest first."""
    return [{"return": rt.number, "partner": rt.partner, "purchase_order": rt.purchase_order.number,
             "order": rt.order.external_id, "state": rt.state, "announced": local_time(rt.announced_at, app.cfg.tz),
             "pieces": sum(ln.quantity for ln in rt.lines), "condition": rt.condition,
             "credit_note": rt.credit_note, "reason": rt.reason} for rt in returns.listing(s, partner, view)]


@return_group.command("confirm")
@click.argument("ref", metavar="RETURN")
@click.option("--condition", type=click.Choice(CONDITIONS), required=True,
              help="How the goods came back; damaged and incomplete wait for a person before a credit.")
@click.option("--note", default="", help="The partner's words.")
@batch("Check the confirmation; change and send nothing.")
@click.pass_obj
def return_confirm(obj, ref: str, condition: str, note: str, dry_run: bool, as_json: bool):
    """Record the dropshipper's confirmation that a return arrived (it phoned, it mailed)."""
    return back_office.confirm_return(obj.ready_app(), ref, condition=condition, note=note, dry_run=dry_run)


@return_group.command("credit")
@click.argument("ref", metavar="[RETURN]", required=False)
@click.option("--note", default="", help="With RETURN: why a person credits it (e.g. after a damaged one).")
@batch("Build and check the credit notes; store and send nothing.")
@click.pass_obj
def return_credit(obj, ref: str | None, note: str, dry_run: bool, as_json: bool):
    """Credit received returns: the credit note (invoices credit), the partner's purchase credit.

    Without RETURN every received return in a condition that needs no person (as new, opened);
    with RETURN that one, whatever its condition, for the reason --note gives."""
    return back_office.credit_returns(obj.ready_app(), only=ref, note=note, dry_run=dry_run)


@return_group.command("refuse")
@click.argument("ref", metavar="RETURN")
@click.option("--reason", required=True, help="Why no money goes back (the buyer is told).")
@batch("Check it; change and send nothing.")
@click.pass_obj
def return_refuse(obj, ref: str, reason: str, dry_run: bool, as_json: bool):
    """Refuse to credit a received return."""
    return back_office.refuse_return(obj.ready_app(), ref, reason, dry_run=dry_run)


@dropship.group("cancellation")
def cancellation_group() -> None:
    """Our requests that a dropshipper not ship a purchase order of a cancelled order."""


@cancellation_group.command("list")
@click.option("--partner", help="Only this dropshipper.")
@click.option("--all", "everything", is_flag=True, help="Answered ones too.")
@listing([Column("purchase_order", "Purchase order"), Column("state", "State"), Column("requested", "Requested"),
          Column("answered", "Answered"), Column("reason", "Reason", max_width=40),
          Column("answer", "Answer", max_width=40)], "Cancellations", empty="no cancellations waiting")
def cancellation_list(app, s, partner, everything) -> list[dict]:
    """Cancellation requests waiting for the partner's answer (--all: every one), newest first."""
    tz = app.cfg.tz
    return [{"purchase_order": c.purchase_order, "state": c.state, "requested": local_time(c.requested_at, tz),
             "answered": local_time(c.answered_at, tz), "reason": c.reason, "answer": c.answer}
            for c in cancellations.pending(s, partner, answered=everything)]


def _answer(app, number: str, accept: bool, *, note: str, dry_run: bool):
    return back_office.answer_cancellation(app, number, accept=accept, note=note, dry_run=dry_run)


def _yes_and_no(group: click.Group, answer: Callable[..., Outcome], dry_run_help: str, options: Sequence[Callable],
                *commands: tuple[str, bool, str]) -> None:
    """Register on ``group`` a batch command per (name, yes, help) of ``commands``: NUMBER and
    ``options``, calling ``answer(app, NUMBER, yes, **options, dry_run=)``; the pair of answers
    a person gives for a partner (accept/refuse) or about one (approve/reject)."""
    def register(name: str, yes: bool, doc: str) -> None:
        def command(obj, number: str, dry_run: bool, as_json: bool, **given):
            return answer(obj.ready_app(), number, yes, dry_run=dry_run, **given)
        command = batch(dry_run_help)(click.pass_obj(command))
        for option in reversed(options):
            command = option(command)
        group.command(name, help=doc)(click.argument("number")(command))
    for name, yes, doc in commands:
        register(name, yes, doc)


_yes_and_no(cancellation_group, _answer, "Check the answer; change nothing.",
            [click.option("--note", default="", help="The partner's words (why it refuses: packed, shipped).")],
            ("accept", True, "The partner accepted: the purchase order is cancelled."),
            ("refuse", False, "The partner refused (it ships anyway): a ticket for a person."))


@dropship.group("invoices")
def invoices_group() -> None:
    """The dropshippers' invoices to us, matched against what they shipped."""


@invoices_group.command("import")
@partner_file("Read and match the invoice; store nothing, open no ticket.")
def invoices_import(obj, file: Path, partner: str, dry_run: bool, as_json: bool):
    """Import a partner's invoice (CSV, ZUGFeRD PDF, XRechnung / CII XML), all or nothing.

    It is matched against what the partner shipped: every line at the agreed price and no more
    pieces than shipped and not billed before. A difference (price, quantity, a purchase order
    that is not the partner's) makes it disputed, with a ticket, until approved or rejected."""
    return back_office.import_invoice(obj.ready_app(), partner, file, dry_run=dry_run)


@invoices_group.command("list")
@click.option("--partner", help="Only this dropshipper.")
@click.option("--state", type=click.Choice(["matched", "disputed", "approved", "rejected"]),
              help="Only invoices in this state.")
@listing([Column("partner", "Partner"), Column("invoice", "Invoice"), Column("date", "Date"),
          Column("state", "State"), Column("net", "Net", "right"), Column("gross", "Gross", "right"),
          Column("currency", "Cur"), Column("lines", "Lines", "right"),
          Column("differences", "Differences", "right"), Column("file", "File", max_width=30)],
         "Partner invoices", empty="no partner invoices")
def invoices_list(app, s, partner, state) -> list[dict]:
    """The partners' invoices, newest first."""
    return [{"partner": inv.partner, "invoice": inv.number, "date": inv.issue_date.isoformat(), "state": inv.state,
             "net": f"{inv.net_total:.2f}", "gross": f"{inv.gross_total:.2f}", "currency": inv.currency,
             "lines": len(inv.lines), "differences": sum(bool(ln.difference) for ln in inv.lines),
             "file": inv.file_name} for inv in purchases.invoices(s, partner, state)]


def _decide(app, number: str, approve: bool, *, partner: str, note: str, dry_run: bool):
    return back_office.decide_invoice(app, partner, number, approve=approve, note=note, dry_run=dry_run)


_yes_and_no(invoices_group, _decide, "Check it; change nothing.",
            [click.option("--partner", required=True, help="The dropshipper's location code."),
             click.option("--note", required=True, help="Why (kept): the differences are right, or tell the partner.")],
            ("approve", True, "Approve a disputed invoice: it is booked as billed."),
            ("reject", False, "Reject a disputed invoice: not booked, its pieces count as not billed."))


@dropship.command("purchases")
@click.option("--partner", help="Only this dropshipper.")
@click.option("--unbilled", is_flag=True, help="Only lines with pieces the partner has not billed yet.")
@listing([Column("partner", "Partner"), Column("purchase_order", "Purchase order"),
          Column("line", "Line", "right"), Column("sku", "SKU"), Column("shipped", "Shipped", "right"),
          Column("price", "Price", "right"), Column("amount", "Amount", "right"), Column("currency", "Cur"),
          Column("billed", "Billed", "right")], "Purchases", empty="no purchases")
def dropship_purchases(app, s, partner, unbilled) -> list[dict]:
    """What we bought: every purchase order line shipped, at the agreed price, and what was billed."""
    return purchases.shipped(s, partner, unbilled=unbilled)


COMMANDS = [dropship]
