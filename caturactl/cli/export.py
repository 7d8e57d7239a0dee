"""``caturactl export bookings``: the accountant's file, CSV or DATEV Buchungsstapel."""

from __future__ import annotations

from pathlib import Path

import click

from caturactl.cli.output import DRY, console, summary
from caturactl.core.errors import InputError
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
@click.option("--dry-run", is_flag=True, help="Count the bookings; write and record nothing.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def export_bookings(obj, date_from: str, date_to: str, fmt: str, output: Path | None, bom: bool, again: bool,
                    dry_run: bool, as_json: bool) -> None:
    """The bookings of a period: invoices and credit notes by issue date, settlements by deposit
    date, both as days of the business time zone (display.timezone). DATEV: EXTF Buchungsstapel
    (format 700, Windows-1252); CSV: UTF-8, one booking a line. A period is exported once; --again
    says you know it was exported before. Settlement fee lines that [accounts.fee_accounts] does
    not name are booked under § 13b on accounts.fee_default and listed."""
    from caturactl.fulfilment import exporting
    if bom and fmt != "csv":
        raise click.UsageError("--bom is for --format csv: DATEV reads Windows-1252 without one")
    d_from, d_to = parse_day(date_from, "--from"), parse_day(date_to, "--to")
    path = output or Path(f"EXTF_Buchungsstapel_{d_from:%Y%m%d}_{d_to:%Y%m%d}.csv" if fmt == "datev"
                          else f"buchungen_{d_from:%Y%m%d}_{d_to:%Y%m%d}.csv")
    app = obj.ready_app()
    with app.session() as s:
        r = exporting.export_bookings(s, app.cfg, fmt=fmt, date_from=d_from, date_to=d_to, path=path,
                                      write_datev=app.write_datev_bookings, again=again, dry_run=dry_run, bom=bom)
        s.rollback() if dry_run else s.commit()
    line = f"{r.rows} booking(s), {r.total} moved" + ("" if dry_run else f", written to {r.file}")
    if r.unmapped_fees:
        line += f"; {len(r.unmapped_fees)} fee line(s) not named in [accounts.fee_accounts]"
    summary("export bookings", r.as_dict(), as_json=as_json, line=(DRY if dry_run else "") + line,
            ok=not r.unmapped_fees)
    if r.unmapped_fees and not as_json:
        for u in r.unmapped_fees:
            console.print(f"  settlement {u['settlement']}: {u['description']} {u['amount']} booked under § 13b "
                          f"on {app.cfg.accounts.account(app.cfg.accounts.fee_default)}", highlight=False, markup=False)
        console.print("  name them in [accounts.fee_accounts] (account, reverse_charge) and export again with --again",
                      highlight=False, markup=False)


@export.command("customers")
@click.option("--format", "fmt", type=click.Choice(["datev"]), default="datev", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="File to write (default: EXTF_Debitoren_Kreditoren.csv in this folder).")
@click.option("--dry-run", is_flag=True, help="Count the debtors; write nothing.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def export_customers(obj, fmt: str, output: Path | None, dry_run: bool, as_json: bool) -> None:
    """Debtor master data (Debitoren) for DATEV: account 10000 + customer number, name, address,
    VAT id, e-mail."""
    from caturactl.fulfilment import exporting
    from caturactl.core.errors import ConfigError
    path = output or Path("EXTF_Debitoren_Kreditoren.csv")
    app = obj.ready_app()
    with app.session() as s:
        rows = exporting.debtors(s)
    if not dry_run:
        if not (app.cfg.accounts.datev_consultant and app.cfg.accounts.datev_client):
            raise ConfigError("DATEV needs the consultant and client numbers from the tax advisor",
                              where="caturactl.toml: accounts.datev_consultant / datev_client")
        tmp = path.with_name(path.name + ".part")
        try:
            with tmp.open("wb") as f:
                app.write_datev_debtors(app.cfg, rows, f)
            tmp.replace(path)
        except OSError as exc:
            raise InputError(f"cannot write: {exc.strerror}", where=str(path)) from None
        finally:
            if tmp.exists():
                tmp.unlink()
    summary("export customers", {"rows": len(rows), "file": str(path), "dry_run": dry_run}, as_json=as_json,
            line=(DRY if dry_run else "") + f"{len(rows)} debtor(s)" + ("" if dry_run else f" written to {path}"))


COMMANDS = [export]
