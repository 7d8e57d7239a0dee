"""``caturactl orders list|show``: the order cockpit; ``orders create|repeat|note|bulk``: at the terminal."""

from __future__ import annotations

from pathlib import Path

import click

from caturactl import pipeline
from caturactl.cli.batch import batch
from caturactl.cli.listing import Part, Rows, limited, listing, showing
from caturactl.cli.output import Column
from caturactl.core.address import Address
from caturactl.orders.desk import ACTIONS, PAYMENT_CHOICES, Buyer, Terms, parse_shipping, wanted_line
from caturactl.views.cockpit import order_record, order_rows, parse_day, state_counts

TABLE_DEFAULT_LIMIT = 100
# The keys ``orders show`` prints for the channel's status of an order name its channel
# ("amazon_status", as they always have for Amazon; "shop_status" for the shop), not the view's word.
CHANNEL_KEYS = ("channel_status", "updated_at_channel")
COLUMNS = [Column("number", "Order"), Column("date", "Date"), Column("channel", "Channel"),
           Column("customer", "Customer", max_width=32), Column("state", "State"),
           Column("hold_reason", "Hold reason", max_width=40), Column("total", "Total", "right"),
           Column("carrier", "Carrier", max_width=16), Column("tracking", "Tracking", max_width=44),
           Column("invoice", "Invoice", max_width=28)]


@click.group()
def orders() -> None:
    """Orders: the cockpit and each order's whole story."""


SHOWN = (Part("lines", [Column("position", "#", "right"), Column("sku", "SKU"), Column("title", "Title", max_width=40),
                        Column("quantity", "Qty", "right"), Column("shipped", "Shipped", "right"),
                        Column("total", "Paid", "right"), Column("discount", "Discount", "right"),
                        Column("promotions", "Promotion", max_width=24),
                        Column("gift_message", "Gift message", max_width=30)], "Lines"),
         Part("tickets", [Column("ticket", "Ticket"), Column("status", "Status"), Column("resolution", "Resolution"),
                          Column("text", "Why"), Column("note", "Note")], "Tickets", only_if_any=True),
         Part("deliveries", [Column("delivery", "Delivery"), Column("location", "Location"), Column("state", "State"),
                             Column("carrier", "Carrier"), Column("service", "Service"),
                             Column("tracking", "Tracking", max_width=44)],
              "Delivery notes (caturactl deliveries show L...)", only_if_any=True),
         Part("events", [Column("at", "When"), Column("actor", "Who"), Column("kind", "Event"), Column("from", "From"),
                         Column("to", "To"), Column("why", "Why", max_width=60)], "History"))


@orders.command("list")
@click.option("--state", "states", multiple=True, help="Only these states (repeat or comma-separate).")
@click.option("--since", help="Only orders placed on or after this day (YYYY-MM-DD).")
@click.option("--month", help="Only orders placed in this month (YYYY-MM).")
@click.option("--customer", help="Customer name, number (K000012) or e-mail.")
@click.option("--search", help="Text in the order number, buyer, city, postal code or hold reason.")
@listing(COLUMNS, "Orders", empty="no orders match", screenful=TABLE_DEFAULT_LIMIT)
def orders_list(app, s, states, since, month, customer, search, limit) -> Rows:
    """List orders, newest first."""
    wanted = [x.strip() for v in states for x in v.split(",") if x.strip()]
    found = limited(order_rows, s, app.cfg.tz, limit=limit, states=wanted or None,
                    since=parse_day(since, "--since") if since else None, month=month, customer=customer,
                    search=search)
    counts = state_counts(s)
    found.notes = ["  ".join(f"{k}: {v}" for k, v in sorted(counts.items()))] if counts else ()
    return found


@orders.command("show")
@click.argument("order")
@showing(lambda r: f"Order {r['number']}", *SHOWN)
def orders_show(app, s, order: str) -> dict:
    """Show an order: lines, customer, tickets and every event (who, when, from, to, why)."""
    record = order_record(s, app.cfg.tz, order)
    channel = record.pop("channel_name")
    return {(k.replace("channel", channel) if k in CHANNEL_KEYS else k): v for k, v in record.items()}


# --- at the terminal: orders taken by phone, notes, one action on many orders -------------------


def _terms(payment: str | None, reference: str | None, shipping: str | None, note: str | None,
           allow_backorder: bool) -> Terms:
    return Terms(payment=payment or "", reference=reference or "", shipping=parse_shipping(shipping),
                 note=note or "", allow_backorder=allow_backorder)


def _order_options(f):
    for option in reversed([
        click.option("--shipping", metavar="AMOUNT", help="Shipping charged, gross (4.90 or 4,90; default 0)."),
        click.option("--note", help="A note for the order's history (who and when are kept)."),
        click.option("--allow-backorder", is_flag=True,
                     help="Take the order even when the stock (on hand less reserved, every location) is short."),
    ]):
        f = option(f)
    return f


@orders.command("create")
@click.option("--customer", help="A known customer: number (K000012) or e-mail.")
@click.option("--name", default="", help="A new customer's name.")
@click.option("--company", default="", help="A new customer's company.")
@click.option("--street", default="", help="Street and house number.")
@click.option("--zip", "postal_code", default="", help="Postal code.")
@click.option("--city", default="")
@click.option("--country", default="", help="Two letters (ISO 3166; default DE).")
@click.option("--email", default="", help="E-mail (invoices and shipping notices go there).")
@click.option("--phone", default="")
@click.option("--line", "lines", multiple=True, required=True, metavar="SKU:QTY",
              help="A line: SKU and pieces, priced from the catalogue (repeat for more lines).")
@click.option("--payment", type=click.Choice(PAYMENT_CHOICES), required=True,
              help="How the buyer pays; paid: paid already (needs --reference).")
@click.option("--reference", help="The payment's reference when it is paid already (receipt, transaction id).")
@_order_options
@batch("Check, price, number and triage the order; store nothing (the number is given back).")
@click.pass_obj
def orders_create(obj, customer, name, company, street, postal_code, city, country, email, phone, lines, payment,
                  reference, shipping, note, allow_backorder, dry_run, as_json):
    """Take an order at the terminal (phone, e-mail, counter) for a known or a new customer.

    It gets a number of its own (TEL-2026-00001), today's catalogue prices and, like an imported
    order, its customer, triage (released, or held with a ticket) and its expected payment.
    Refused (exit 70) when the stock does not cover it, unless --allow-backorder.

    \b
    caturactl orders create --customer K000012 --line TOOL-1:2 --payment invoice
    caturactl orders create --name "Eva Muster" --street "Hauptstr. 5" --zip 10115 --city Berlin \\
        --email eva@example.de --line TOOL-1:1 --payment paid --reference "EC 4711" --shipping 4,90
    """
    wanted = [wanted_line(text, f"--line {i}") for i, text in enumerate(lines, 1)]
    buyer = Buyer(Address(name=name, company=company, line1=street, postal_code=postal_code, city=city,
                          country=country, phone=phone), email=email)
    return pipeline.take_order(obj.ready_app(), wanted, _terms(payment, reference, shipping, note, allow_backorder),
                               customer=customer, buyer=buyer, dry_run=dry_run)


@orders.command("repeat")
@click.argument("order")
@click.option("--payment", type=click.Choice(PAYMENT_CHOICES),
              help="How the buyer pays (default: as the order was paid, when that is one of these).")
@click.option("--reference", help="The payment's reference when it is paid already.")
@_order_options
@batch("Check, price, number and triage the new order; store nothing.")
@click.pass_obj
def orders_repeat(obj, order, payment, reference, shipping, note, allow_backorder, dry_run, as_json):
    """Place ORDER's lines again for the same customer and address: a new number, today's prices,
    the stock checked (shipping as charged then, unless --shipping)."""
    return pipeline.repeat_order(obj.ready_app(), order, payment=payment or "", reference=reference or "",
                                 shipping=None if shipping is None else parse_shipping(shipping), note=note or "",
                                 allow_backorder=allow_backorder, dry_run=dry_run)


@orders.command("note")
@click.argument("order")
@click.argument("text")
@batch("Check that the order exists; store nothing.")
@click.pass_obj
def orders_note(obj, order, text, dry_run, as_json):
    """Keep a note in ORDER's history (shown by 'orders show', with who and when)."""
    return pipeline.note_order(obj.ready_app(), order, text, dry_run=dry_run)


@orders.command("bulk")
@click.argument("action", type=click.Choice(ACTIONS))
@click.option("--file", "file", type=click.Path(dir_okay=False, path_type=Path),
              help="A CSV file with an 'order' column (and 'reference' for mark-paid): one order a row.")
@click.option("--state", "states", multiple=True, help="Orders in these states (repeat or comma-separate).")
@click.option("--channel", help="Orders of this sales channel (amazon, shop, phone).")
@click.option("--since", help="Orders placed on or after this day (YYYY-MM-DD).")
@click.option("--customer", help="Orders of this customer (number or e-mail).")
@click.option("--reference", default="", help="mark-paid: the payment's reference (a file's column wins).")
@click.option("--reason", default="", help="Why (kept in each order's history); required to release or cancel.")
@batch("Apply the action to each order and report; store nothing.")
@click.pass_obj
def orders_bulk(obj, action, file, states, channel, since, customer, reference, reason, dry_run, as_json):
    """Apply ACTION to each order named by the filters or the file: mark-paid (its open payment
    received), release (from on hold, its ticket closed), cancel (stock released, payment no longer
    owed). Each order is done whole or not at all; one that fails never stops the rest. Prints done,
    skipped (already so, with why) and failed (with why); exits 65 when some failed.

    \b
    caturactl orders bulk mark-paid --file paid.csv          # columns: order,reference
    caturactl orders bulk release --state on_hold --channel phone --reason "address checked"
    caturactl orders bulk cancel --file cancel.csv --reason "customer called" --dry-run
    """
    wanted = [x.strip() for v in states for x in v.split(",") if x.strip()]
    if file is not None and (wanted or channel or since or customer):
        raise click.UsageError("either --file or the filters (--state, --channel, --since, --customer)")
    return pipeline.bulk_orders(obj.ready_app(), action, file=file, states=wanted, channel=channel,
                                since=parse_day(since, "--since") if since else None, customer=customer,
                                reason=reason, reference=reference, dry_run=dry_run)


COMMANDS = [orders]
