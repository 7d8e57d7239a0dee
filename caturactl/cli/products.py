"""``caturactl products list|import``."""

from __future__ import annotations

from pathlib import Path

import click

from caturactl.cli.output import Column, console, emit, format_options, pick_format

COLUMNS = [Column("sku", "SKU"), Column("title", "Title", max_width=50), Column("asin", "ASIN"),
           Column("weight_g", "Weight g", "right"), Column("price", "Price", "right"), Column("active", "Active")]


@click.group()
def products() -> None:
    """The catalogue of SKUs caturactl knows (an unknown SKU puts an order on hold)."""


@products.command("list")
@format_options
@click.pass_obj
def products_list(obj, fmt: str, as_json: bool) -> None:
    """List the products."""
    from caturactl.views.cockpit import product_rows
    app = obj.ready_app()
    with app.session() as s:
        emit(product_rows(s), COLUMNS, fmt=pick_format(fmt, as_json), title="Products", empty="no products yet")


@products.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check the file and show what would change; store nothing.")
@click.pass_obj
def products_import(obj, file: Path, dry_run: bool) -> None:
    """Add or update products from a CSV file (sku,title,asin,price,weight_g,length_mm,width_mm,height_mm)."""
    from caturactl.catalogue.products import import_products
    app = obj.ready_app()
    with app.session() as s:
        r = import_products(s, file)
        s.rollback() if dry_run else s.commit()
    prefix = "DRY RUN, nothing stored: " if dry_run else ""
    console.print(f"{prefix}{r.new} new, {r.updated} updated, {r.unchanged} unchanged")


COMMANDS = [products]
