"""``caturactl stock list|import``: on hand, reserved and available per location."""

from __future__ import annotations

from pathlib import Path

import click

from caturactl.cli.output import DRY, Column, emit, format_options, pick_format, summary
from caturactl.core.errors import InputError


@click.group()
def stock() -> None:
    """Stock per location: on hand, reserved for delivery notes, available."""


@stock.command("list")
@click.option("--location", help="Only this location.")
@format_options
@click.pass_obj
def stock_list(obj, location, fmt, as_json) -> None:
    """List stock per location and SKU."""
    from caturactl.catalogue.stock import stock_rows
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
    from caturactl.core.csvfile import decode
    from caturactl.catalogue.stock import read_stock, set_stock
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", where=str(file)) from None
    rows = read_stock(str(file), decode(data, str(file)))
    app = obj.ready_app()
    with app.session() as s:
        r = set_stock(s, location, rows, app.cfg.locations)
        s.rollback() if dry_run else s.commit()
    line = f"{location}: {r.rows} row(s), {r.new} new, {r.changed} changed"
    if r.unknown_skus:
        line += f"; {len(r.unknown_skus)} SKU(s) not in the catalogue: {', '.join(r.unknown_skus[:5])}"
    summary("stock import", r.as_dict(), as_json=as_json, line=(DRY if dry_run else "") + line,
            ok=not r.unknown_skus)


COMMANDS = [stock]
