"""``caturactl reviews request|list``: Amazon review requests inside Amazon's window, once per order."""

from __future__ import annotations

import click

from caturactl import pipeline
from caturactl.cli.batch import batch
from caturactl.cli.output import Column, emit, format_options, pick_format
from caturactl.orders.reviews import request_rows


@click.group()
def reviews() -> None:
    """Review requests through Amazon's Solicitations API (Amazon writes the e-mail)."""


@reviews.command("request")
@batch("List the orders that are due; ask the channel nothing.")
@click.pass_obj
def reviews_request(obj, dry_run: bool, as_json: bool):
    """Ask for a review for every shipped order inside its channel's window (Amazon: 5 days after
    the earliest delivery date to 30 days after the latest), never twice."""
    return pipeline.request_reviews(obj.ready_app(), dry_run=dry_run)


@reviews.command("list")
@format_options
@click.pass_obj
def reviews_list(obj, fmt, as_json) -> None:
    """Every review request: order, status (sent / not_offered / queued), when."""
    app = obj.ready_app()
    with app.session() as s:
        rows = request_rows(s, app.cfg.tz)
    emit(rows, [Column("order", "Order"), Column("status", "Status"), Column("at", "When")],
         fmt=pick_format(fmt, as_json), title=f"Review requests ({len(rows)})", empty="no review requests")


COMMANDS = [reviews]
