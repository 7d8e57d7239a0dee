"""``caturactl alerts check``: what needs a person now, for a timer that mails the output.

Exit code 0 when nothing needs a person, ``NEEDS_A_PERSON`` (3) when something does, so that a
systemd ``OnFailure=`` unit or cron's ``|| mail`` reacts; the usual codes for real errors.
"""

from __future__ import annotations

import click

from caturactl.cli.jobs import jobs_path, load_jobs
from caturactl.cli.listing import Rows, listing
from caturactl.cli.output import Column, local_time
from caturactl.cli.params import HOURS
from caturactl.core import clock
from caturactl.views.alerts import CHECKS, check, job_checks

NEEDS_A_PERSON = 3
COLUMNS = [Column("kind", "Kind"), Column("subject", "About"), Column("since", "Since"),
           Column("detail", "Detail", max_width=90)]


@click.group()
def alerts() -> None:
    """Alerts: what needs a person now."""


@alerts.command("check")
@click.option("--ticket-hours", type=HOURS, default=24, show_default=True,
              help="An open ticket older than this many hours needs a person.")
@listing(COLUMNS, "Needs a person", empty="nothing needs a person")
def alerts_check(app, s, ticket_hours: float) -> Rows:
    """What needs a person now; exit 3 if anything does.

    Aged open tickets, outbox messages given up, delivery deadlines passed, open settlement
    differences, and jobs (from jobs.toml) that failed, lost their runner or missed a slot. Exits 3 when there is any (so a timer can mail the output), 0 when there is none."""
    # The jobs' checks when there is a jobs.toml (an error in it is reported, not skipped).
    checks = [*CHECKS, job_checks(load_jobs(app, None))] if jobs_path(app, None).exists() else CHECKS
    found = check(s, app.cfg, clock.now(), ticket_hours=ticket_hours, checks=checks)
    rows = [{"kind": a.kind, "subject": a.subject, "since": local_time(a.since, app.cfg.tz), "detail": a.detail}
            for a in found]
    hint = "caturactl tickets list | outbox list | deliveries list --state overdue | settlement differences"
    return Rows(rows, notes=[hint] if rows else (), exit_code=NEEDS_A_PERSON if rows else 0)


COMMANDS = [alerts]
