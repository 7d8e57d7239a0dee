"""``caturactl stock list|import|available|push``: on hand, reserved and available per location;
what the channels may sell, and telling them."""

from __future__ import annotations

from pathlib import Path

import click

from caturactl import pipeline
from caturactl.cli.batch import batch
from caturactl.catalogue.availability import available
from caturactl.catalogue.stock import stock_rows
from caturactl.cli.listing import Rows, listing
from caturactl.cli.output import Column


@click.group()
def stock() -> None:
    """Stock per location: on hand, reserved for delivery notes, available."""


@stock.command("list")
@click.option("--location", help="Only this location.")
@listing([Column("location", "Location"), Column("sku", "SKU"), Column("on_hand", "On hand", "right"),
          Column("reserved", "Reserved", "right"), Column("available", "Available", "right")], "Stock",
         empty="no stock recorded")
def stock_list(app, s, location) -> list[dict]:
    """List stock per location and SKU."""
    return stock_rows(s, location)


@stock.command("import")
@click.argument("location")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@batch("Check the file; change nothing.")
@click.pass_obj
def stock_import(obj, location: str, file: Path, dry_run: bool, as_json: bool):
    """Set on-hand stock of LOCATION from a CSV (sku;on_hand), all or nothing."""
    return pipeline.import_stock(obj.ready_app(), location, file, dry_run=dry_run)


@stock.command("available")
@click.option("--sku", help="Only this SKU.")
@listing([Column("sku", "SKU"), Column("on_hand", "On hand", "right"), Column("reserved", "Reserved", "right"),
          Column("safety", "Safety", "right"), Column("quantity", "To sell", "right")], "Available to sell",
         empty="no active products")
def stock_available(app, s, sku) -> Rows:
    """What the channels may sell per SKU: on hand at every location, less reserved, less the
    safety stock ([stock] safety), never below 0."""
    return Rows([a.as_dict() for a in available(s, app.cfg.stock, sku)], empty=f"no active product {sku}" if sku else "")


@stock.command("push")
@batch("List what would be pushed; store and send nothing.")
@click.pass_obj
def stock_push(obj, dry_run: bool, as_json: bool):
    """Tell every channel that takes stock what it may sell, where that changed since the last push."""
    return pipeline.push_stock(obj.ready_app(), dry_run=dry_run)


COMMANDS = [stock]
