"""``caturactl invoices create|list|show|pdf|resend|credit``: invoices with gap-free numbers,
PDF/A-3 with the EN 16931 e-invoice inside, delivered to Amazon or by e-mail."""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal
from pathlib import Path

import click

from caturactl import pipeline
from caturactl.cli.batch import bars, batch
from caturactl.billing.invoicing import find, from_json, invoice_record, invoice_rows
from caturactl.cli.listing import Part, listing, showing
from caturactl.cli.output import Column, console, err_console
from caturactl.cli.params import count
from caturactl.core.errors import ConfigError, InputError

COLUMNS = [Column("number", "Number"), Column("kind", "Kind"), Column("date", "Date"), Column("order", "Order"),
           Column("customer", "Customer", max_width=28), Column("net", "Net", "right"), Column("tax", "VAT", "right"),
           Column("gross", "Gross", "right"), Column("currency", "Cur"), Column("corrects", "Corrects"),
           Column("delivery", "Delivery"), Column("sent", "Sent"), Column("paid", "Paid")]


_PIECES = re.compile(r"[0-9]{1,6}")  # a position or a number of pieces: ASCII digits, no sign or point


def parse_lines(text: str | None) -> dict[int, Decimal | None] | None:
    """"1:2,3" -> {1: 2, 3: None}: positions and whole numbers of pieces; a position without a
    quantity means all of it not yet credited (None). None without --lines; raises InputError."""
    if text is None:
        return None
    out: dict[int, Decimal | None] = {}
    for part in text.split(","):
        pos, colon, qty = (x.strip() for x in part.partition(":"))
        if not _PIECES.fullmatch(pos) or int(pos) == 0:
            raise InputError(f"not POSITION[:QUANTITY]: {part.strip()!r} (positions are 1, 2, ...)", where="--lines")
        if colon and (not _PIECES.fullmatch(qty) or int(qty) == 0):
            raise InputError(f"position {int(pos)}: {qty!r} is not a number of pieces (a whole number from 1)",
                             where="--lines")
        if int(pos) in out:
            raise InputError(f"position {int(pos)} is named twice", where="--lines")
        out[int(pos)] = Decimal(int(qty)) if colon else None
    return out


@click.group()
def invoices() -> None:
    """Invoices and credit notes (Rechnungen, Rechnungskorrekturen)."""


@invoices.command("create")
@click.option("--limit", type=count(), help="At most this many invoices.")
@click.option("--jobs", type=click.IntRange(min=1, max=32), default=1, show_default=True,
              help="Render in this many processes (large runs).")
@batch("Build and check every due invoice; number, store and send nothing.")
@click.pass_obj
def invoices_create(obj, limit: int | None, jobs: int, dry_run: bool, as_json: bool):
    """Shipped deliveries -> invoices (one per order or per delivery, [invoices] per), then deliver them.

    Every due invoice is built and checked first: missing company data stops the run with one
    line and nothing written; an order that cannot be invoiced (no price on a line, no VAT rate
    for its destination) gets a ticket and the others are invoiced (exit 65).
    """
    return pipeline.create_invoices(obj.ready_app(), dry_run=dry_run, limit=limit, jobs=jobs,
                                    progress=bars(as_json=as_json, dry_run=dry_run))


@invoices.command("list")
@click.option("--unpaid", is_flag=True, help="Only invoices not yet settled.")
@click.option("--month", help="Issued in this month (YYYY-MM).")
@click.option("--kind", type=click.Choice(["invoice", "credit_note"]))
@listing(COLUMNS, "Invoices", empty="no invoices")
def invoices_list(app, s, unpaid: bool, month: str | None, kind: str | None) -> list[dict]:
    """List invoices and credit notes in number order."""
    return invoice_rows(s, app.cfg.tz, unpaid=unpaid, month=month, kind=kind)


@invoices.command("show")
@click.argument("number")
@showing(lambda r: f"{'Credit note' if r['kind'] == 'credit_note' else 'Invoice'} {r['number']}",
         Part("items", [Column("position", "#", "right"), Column("sku", "SKU"),
                        Column("description", "Description", max_width=40), Column("quantity", "Qty", "right"),
                        Column("unit_net", "Unit net", "right"), Column("tax_rate", "VAT %", "right"),
                        Column("net", "Net", "right")], "Items"),
         Part("taxes", [Column("category", "Cat"), Column("rate", "Rate %", "right"), Column("net", "Net", "right"),
                        Column("tax", "VAT", "right"), Column("exemption_reason", "Note", max_width=60)], "VAT"),
         lines=lambda r: [f"  {n}" for n in r["notes"]])
def invoices_show(app, s, number: str) -> dict:
    """Show an invoice: parties, items, VAT per rate, totals, delivery."""
    return invoice_record(s, number)


@invoices.command("pdf")
@click.argument("number")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="File to write "
              "(default NUMBER.pdf / NUMBER.xml in this folder).")
@click.option("--xml", "as_xml", is_flag=True, help="The embedded EN 16931 CII XML instead of the PDF.")
@click.option("--xrechnung", is_flag=True, help="An XRechnung 3.0 (CII) XML for B2B customers who ask for one, "
              "made now from the stored invoice; a seller contact (name, phone, e-mail) the invoice lacks is "
              "taken from caturactl.toml [company].")
@click.option("--buyer-email", metavar="ADDRESS", help="With --xrechnung: the buyer's electronic address "
              "(BT-49, e.g. where the buyer wants it), for an invoice that has none (FBA orders carry no "
              "buyer e-mail); an address the invoice has is kept.")
@click.pass_obj
def invoices_pdf(obj, number: str, output: Path | None, as_xml: bool, xrechnung: bool,
                 buyer_email: str | None) -> None:
    """Write the stored invoice PDF (or its XML) to a file; nothing is rendered again.

    --xrechnung is the exception: the XRechnung is a second rendition of the issued invoice,
    made now, and XRechnung requires a seller contact (BR-DE-5/6/7). An invoice issued before
    the contact was configured gets the contact fields it lacks from today's [company] contact,
    phone and email, in that XML only; the issued invoice, its PDF and its XML stay as issued,
    and stderr says which fields were added.
    """
    from connectors.einvoice.cii import with_seller_contact
    if as_xml and xrechnung:
        raise click.UsageError("--xml and --xrechnung exclude each other: give one")
    if buyer_email is not None and not xrechnung:
        raise click.UsageError("--buyer-email goes with --xrechnung")
    if buyer_email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", buyer_email.strip()):
        raise click.BadParameter(f"not an e-mail address: {buyer_email!r}", param_hint="--buyer-email")
    app = obj.ready_app()
    with app.session() as s:
        inv = find(s, number)
        if xrechnung:
            company = app.cfg.company
            doc, filled = with_seller_contact(from_json(inv.document), company.contact, company.phone,
                                              company.email)
            if not doc.buyer.email.strip():
                if not buyer_email:
                    raise InputError(f"an XRechnung needs the buyer's electronic address (BT-49, PEPPOL-EN16931-"
                                     f"R010) and {inv.number} has none (Amazon gives none for FBA orders): give "
                                     f"--buyer-email ADDRESS", where=inv.number)
                doc = dataclasses.replace(doc, buyer=dataclasses.replace(doc.buyer, email=buyer_email.strip()))
                err_console.print(f"{inv.number}: the buyer's electronic address is {buyer_email.strip()} "
                                  "(from --buyer-email)", highlight=False, markup=False)
            if missing := [f for f in ("contact", "phone", "email") if not getattr(doc.seller, f).strip()]:
                raise ConfigError(f"an XRechnung needs the seller contact (BR-DE-5/6/7); {inv.number} has none "
                                  f"and caturactl.toml does not say it: set {', '.join(missing)}",
                                  where="caturactl.toml: company")
            content, suffix = app.invoice_renderer().xml(doc, "xrechnung").content, "-xrechnung.xml"
            if filled:
                err_console.print(f"{inv.number}: the issued invoice has no seller {', '.join(filled)}; the "
                                  f"XRechnung takes {'it' if len(filled) == 1 else 'them'} from caturactl.toml "
                                  f"[company] (the stored invoice and its PDF are unchanged)",
                                  highlight=False, markup=False)
        elif as_xml:
            content, suffix = inv.xml, ".xml"
        else:
            content, suffix = inv.pdf, ".pdf"
    target = output or Path(f"{inv.number}{suffix}")
    try:
        target.write_bytes(content)
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror}", where=str(target)) from None
    console.print(f"wrote {target} ({len(content)} bytes)", highlight=False, markup=False)


@invoices.command("resend")
@click.argument("number")
@batch("Check it can be resent; queue nothing.")
@click.pass_obj
def invoices_resend(obj, number: str, dry_run: bool, as_json: bool):
    """Deliver the same invoice again (same number, same file): never a second invoice."""
    return pipeline.resend_invoice(obj.ready_app(), number, dry_run=dry_run)


@invoices.command("credit")
@click.argument("number")
@click.option("--lines", "lines_text", help="Positions to credit, POSITION[:QUANTITY] comma-separated, "
              "QUANTITY a number of pieces; a position alone: all of it not yet credited (default: everything "
              "not yet credited).")
@click.option("--reason", required=True, help="Why (printed on the credit note and kept).")
@batch("Build and check the credit note; store nothing.")
@click.pass_obj
def invoices_credit(obj, number: str, lines_text: str | None, reason: str, dry_run: bool, as_json: bool):
    """A correction invoice (Rechnungskorrektur, type 381) for a refund or cancellation."""
    return pipeline.credit_invoice(obj.ready_app(), number, parse_lines(lines_text), reason, dry_run=dry_run)


@invoices.command("feeds")
@batch(None)
@click.pass_obj
def invoices_feeds(obj, as_json: bool):
    """Ask Amazon whether the uploaded invoices were accepted; a refused one becomes a ticket."""
    return pipeline.check_invoice_uploads(obj.ready_app(), "invoices feeds")


COMMANDS = [invoices]
