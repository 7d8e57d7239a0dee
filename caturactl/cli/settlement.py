"""``caturactl settlement import|list|show|differences``: Amazon's payouts reconciled to the cent."""

from __future__ import annotations

from pathlib import Path

import click

from caturactl import pipeline
from caturactl.cli.batch import batch
from caturactl.cli.listing import Part, Rows, listing, showing
from caturactl.cli.output import Column
from caturactl.views.settlements import difference_rows, settlement_record, settlement_rows

COLUMNS = [Column("settlement", "Settlement"), Column("start", "From"), Column("end", "To"),
           Column("deposit", "Deposit"), Column("total", "Payout", "right"), Column("sales", "Sales", "right"),
           Column("refunds", "Refunds", "right"), Column("fees", "Fees", "right"), Column("reserve", "Reserve", "right"),
           Column("other", "Other", "right"), Column("differences", "Differences", "right"), Column("currency", "Cur")]
FEE_COLUMNS = [Column("type", "Transaction / amount type / description"), Column("amount", "Amount", "right"),
               Column("account", "Account"), Column("tax_key", "BU"), Column("reverse_charge", "§ 13b"),
               Column("named_by", "Named by")]
DIFF_COLUMNS = [Column("settlement", "Settlement"), Column("order", "Order"), Column("kind", "Kind"),
                Column("amount", "Amount", "right"), Column("settled", "Settled", "right"),
                Column("expected", "Expected", "right"), Column("reason", "Reason", max_width=70)]


@click.group()
def settlement() -> None:
    """Amazon settlements: payouts matched to invoices, differences listed with reasons."""


@settlement.command("fetch")
@click.option("--days", type=click.IntRange(min=1, max=90), default=30, show_default=True,
              help="Look for reports created in the last N days.")
@batch("List what would be fetched; download, write and store nothing.")
@click.pass_obj
def settlement_fetch(obj, days: int, dry_run: bool, as_json: bool):
    """List and download new settlement reports (Reports API), keep the files, import them.

    Amazon produces settlement reports on its own schedule (about every 14 days); they can only
    be listed and downloaded. The files are kept under settlements/ beside caturactl.toml.
    """
    return pipeline.fetch_settlements(obj.ready_app(), days=days, dry_run=dry_run)


@settlement.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@batch("Check and reconcile; store and mark nothing.")
@click.pass_obj
def settlement_import(obj, file: Path, dry_run: bool, as_json: bool):
    """Import a settlement flat file (V2, DE or EN form) downloaded from Seller Central.

    The whole file is checked first: one bad line (or lines that do not add up to the total)
    rejects it with file:line:column, and nothing is stored. A settlement already imported is
    recognised and stored once.
    """
    return pipeline.import_settlement(obj.ready_app(), file, dry_run=dry_run)


@settlement.command("list")
@listing(COLUMNS, "Settlements", empty="no settlements")
def settlement_list(app, s) -> list[dict]:
    """List imported settlements with their totals per kind of money."""
    return settlement_rows(s, app.cfg.tz)


@settlement.command("show")
@click.argument("settlement_id")
@showing(lambda r: f"Settlement {r['settlement']}",
         Part("by_type", [Column("type", "Transaction / amount type / description"), Column("amount", "Amount", "right")],
              "Amounts per type", rows=lambda r: [{"type": k, "amount": v} for k, v in r["by_type"].items()]),
         Part("fee_lines", FEE_COLUMNS, "Fees and other lines: where they are booked", empty="no fee lines",
              rows=lambda r: [{**f, "reverse_charge": "§ 13b" if f["reverse_charge"] else ""} for f in r["fee_lines"]]),
         Part("differences_list", DIFF_COLUMNS, "Differences", empty="no differences"))
def settlement_show(app, s, settlement_id: str) -> dict:
    """One settlement: totals, amounts per type, its fee lines with the account each is booked on,
    and its differences."""
    return settlement_record(s, app.cfg.tz, app.cfg.accounts, settlement_id)


@settlement.command("differences")
@click.option("--settlement", "settlement_id", help="Only this settlement.")
@listing(DIFF_COLUMNS, "Differences", empty="no differences")
def settlement_differences(app, s, settlement_id: str | None) -> Rows:
    """Every amount that did not match our books, with its reason."""
    rows = difference_rows(s, settlement_id=settlement_id)
    return Rows(rows, notes=["each one needs a look: a missing invoice, a missing credit note, or an order sold "
                             "outside caturactl"] if rows else ())


COMMANDS = [settlement]
