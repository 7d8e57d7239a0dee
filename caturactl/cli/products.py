"""``caturactl products list|import``."""

from __future__ import annotations

from pathlib import Path

import click

from caturactl import pipeline
from caturactl.cli.batch import batch
from caturactl.cli.listing import listing
from caturactl.cli.output import Column
from caturactl.views.cockpit import product_rows

COLUMNS = [Column("sku", "SKU"), Column("title", "Title", max_width=50), Column("listing_id", "Listing"),
           Column("weight_g", "Weight g", "right"), Column("price", "Price", "right"), Column("active", "Active")]


@click.group()
def products() -> None:
    """The catalogue of SKUs caturactl knows (an unknown SKU puts an order on hold)."""


@products.command("list")
@listing(COLUMNS, "Products", empty="no products yet")
def products_list(app, s) -> list[dict]:
    """List the products."""
    return product_rows(s)


@products.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@batch("Check the file and show what would change; store nothing.")
@click.pass_obj
def products_import(obj, file: Path, dry_run: bool, as_json: bool):
    """Add or update products from a CSV file (sku,title,listing_id (or asin),price,weight_g,
    length_mm,width_mm,height_mm,tax_class)."""
    return pipeline.import_products(obj.ready_app(), file, dry_run=dry_run)


COMMANDS = [products]
