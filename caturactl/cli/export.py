"""``caturactl export bookings``: the accountant's file, CSV or DATEV Buchungsstapel."""

from __future__ import annotations

from pathlib import Path

import click

from caturactl import pipeline
from caturactl.cli.batch import batch
from caturactl.views.cockpit import parse_day


@click.group("export")
def export() -> None:
    """Files for the accountant (Steuerberater)."""


@export.command("bookings")
@click.option("--from", "date_from", required=True, help="First day (YYYY-MM-DD).")
@click.option("--to", "date_to", required=True, help="Last day (YYYY-MM-DD).")
@click.option("--format", "fmt", type=click.Choice(["csv", "datev"]), default="datev", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="File to write (default: a name with the period, in this folder).")
@click.option("--bom", is_flag=True, help="CSV: write a UTF-8 byte-order mark (for Excel).")
@click.option("--again", is_flag=True, help="Export a period that was exported before.")
@batch("Count the bookings; write and record nothing.")
@click.pass_obj
def export_bookings(obj, date_from: str, date_to: str, fmt: str, output: Path | None, bom: bool, again: bool,
                    dry_run: bool, as_json: bool):
    """The bookings of a period: invoices and credit notes by issue date, settlements by deposit
    date, both as days of the business time zone (display.timezone). DATEV: EXTF Buchungsstapel
    (format 700, Windows-1252); CSV: UTF-8, one booking a line. A period is exported once; --again
    says you know it was exported before. Settlement fee lines that [accounts.fee_accounts] does
    not name are booked under § 13b on accounts.fee_default and listed."""
    if bom and fmt != "csv":
        raise click.UsageError("--bom is for --format csv: DATEV reads Windows-1252 without one")
    d_from, d_to = parse_day(date_from, "--from"), parse_day(date_to, "--to")
    path = output or Path(f"EXTF_Buchungsstapel_{d_from:%Y%m%d}_{d_to:%Y%m%d}.csv" if fmt == "datev"
                          else f"buchungen_{d_from:%Y%m%d}_{d_to:%Y%m%d}.csv")
    return pipeline.export_bookings(obj.ready_app(), fmt=fmt, date_from=d_from, date_to=d_to, path=path, again=again,
                                    bom=bom, dry_run=dry_run)


@export.command("customers")
@click.option("--format", "fmt", type=click.Choice(["datev"]), default="datev", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="File to write (default: EXTF_Debitoren_Kreditoren.csv in this folder).")
@batch("Count the debtors; write nothing.")
@click.pass_obj
def export_customers(obj, fmt: str, output: Path | None, dry_run: bool, as_json: bool):
    """Debtor master data (Debitoren) for DATEV: account 10000 + customer number, name, address,
    VAT id, e-mail."""
    return pipeline.export_debtors(obj.ready_app(), path=output or Path("EXTF_Debitoren_Kreditoren.csv"),
                                   dry_run=dry_run)


COMMANDS = [export]
