"""``caturactl reviews request|list``: Amazon review requests inside Amazon's window, once per order."""

from __future__ import annotations

import click
from sqlalchemy import select

from caturactl.cli.output import DRY, Column, emit, exit_with, format_options, local_time, pick_format, summary


@click.group()
def reviews() -> None:
    """Review requests through Amazon's Solicitations API (Amazon writes the e-mail)."""


@reviews.command("request")
@click.option("--dry-run", is_flag=True, help="List the orders that are due; ask Amazon nothing.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def reviews_request(obj, dry_run: bool, as_json: bool) -> None:
    """Ask for a review for every shipped Amazon order inside its window (5 days after the
    earliest delivery date to 30 days after the latest), never twice."""
    from caturactl.orders import reviews as service
    app = obj.ready_app()
    with app.session() as s:
        r = service.queue_due(s, dry_run=dry_run)
        sent = None
        if not dry_run and r.queued:
            sender = app.sender(s)
            try:
                sent = sender.run(kinds={service.KIND})
            finally:
                sender.close()
    line = f"{len(r.queued)} due, {r.not_yet} shipped but not yet in their window"
    if sent:
        line += f"; asked Amazon {sent.sent}, to retry {sent.retry_later}, failed {sent.failed}"
    summary("reviews request", {**r.as_dict(), **({"amazon": sent.as_dict()} if sent else {})}, as_json=as_json,
            line=(DRY if dry_run else "") + line, ok=not (sent and sent.exit_code))
    exit_with(sent.exit_code if sent else 0)


@reviews.command("list")
@format_options
@click.pass_obj
def reviews_list(obj, fmt, as_json) -> None:
    """Every review request: order, status (sent / not_offered / queued), when."""
    from caturactl.billing.models import ReviewRequest
    app = obj.ready_app()
    with app.session() as s:
        rows = [{"order": r.order.external_id, "status": r.status, "at": local_time(r.at, app.cfg.tz)}
                for r in s.scalars(select(ReviewRequest).order_by(ReviewRequest.at))]
    emit(rows, [Column("order", "Order"), Column("status", "Status"), Column("at", "When")],
         fmt=pick_format(fmt, as_json), title=f"Review requests ({len(rows)})", empty="no review requests")


COMMANDS = [reviews]
