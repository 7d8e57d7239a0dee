"""``caturactl reviews request|list``: Amazon review requests inside Amazon's window, once per order."""

from __future__ import annotations

import click

from caturactl import pipeline
from caturactl.cli.batch import batch
from caturactl.cli.listing import listing
from caturactl.cli.output import Column
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
@listing([Column("order", "Order"), Column("status", "Status"), Column("at", "When")], "Review requests",
         empty="no review requests")
def reviews_list(app, s) -> list[dict]:
    """Every review request: order, status (sent / not_offered / queued), when."""
    return request_rows(s, app.cfg.tz)


COMMANDS = [reviews]
