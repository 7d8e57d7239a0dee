"""``caturactl alerts check``: what needs a person now, for a timer that mails the output.

Exit code 0 when nothing needs a person, ``NEEDS_A_PERSON`` (3) when something does, so that a
systemd ``OnFailure=`` unit or cron's ``|| mail`` reacts; the usual codes for real errors.
"""

from __future__ import annotations

import click

from caturactl.cli.output import Column, console, emit, exit_with, format_options, local_time, pick_format
from caturactl.cli.params import HOURS
from caturactl.core import clock

NEEDS_A_PERSON = 3
COLUMNS = [Column("kind", "Kind"), Column("subject", "About"), Column("since", "Since"),
           Column("detail", "Detail", max_width=90)]


@click.group()
def alerts() -> None:
    """Alerts: what needs a person now."""


@alerts.command("check")
@click.option("--ticket-hours", type=HOURS, default=24, show_default=True,
              help="An open ticket older than this many hours needs a person.")
@format_options
@click.pass_obj
def alerts_check(obj, ticket_hours: float, fmt, as_json) -> None:
    """What needs a person now; exit 3 if anything does.

    Aged open tickets, outbox messages given up, delivery deadlines passed, open settlement
    differences, and jobs (from jobs.toml) that failed, lost their runner or missed a slot. Exits 3 when there is any (so a timer can mail the output), 0 when there is none."""
    from caturactl.views.alerts import CHECKS, check, job_checks
    from caturactl.cli.jobs import jobs_path, load_jobs
    app = obj.ready_app()
    # The jobs' checks when there is a jobs.toml (an error in it is reported, not skipped).
    checks = [*CHECKS, job_checks(load_jobs(obj, None))] if jobs_path(obj, None).exists() else CHECKS
    tz = app.cfg.tz
    with app.session() as s:
        found = check(s, app.cfg, clock.now(), ticket_hours=ticket_hours, checks=checks)
    rows = [{"kind": a.kind, "subject": a.subject, "since": local_time(a.since, tz), "detail": a.detail}
            for a in found]
    fmt = pick_format(fmt, as_json)
    emit(rows, COLUMNS, fmt=fmt, title=f"Needs a person ({len(rows)})", empty="nothing needs a person")
    if rows and fmt == "table":
        console.print("caturactl tickets list | outbox list | deliveries list --state overdue | "
                      "settlement differences", style="dim", highlight=False)
    exit_with(NEEDS_A_PERSON if rows else 0)


COMMANDS = [alerts]
