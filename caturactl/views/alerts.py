"""What needs a person now: tickets waiting too long, outbox messages given up, delivery deadlines
passed, settlement differences still open. Read only; a timer runs ``caturactl alerts check`` and
mails its output when the exit code says something needs a person.

Each check is a function ``(session, cfg, now, limits) -> iterable of Alert``; ``CHECKS`` lists
them in the order they are reported. A new check (e.g. "a job failed" or "a job has not run since
...") is one more function appended to ``CHECKS`` by the module that knows about it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from caturactl.config import Config
from caturactl.outbox.models import OutboxMessage
from caturactl.orders.models import Order
from caturactl.orders.tickets import Ticket
from caturactl.orders.tickets import OPEN
from caturactl.outbox.service import FAILED
from caturactl.views.reports import late_deliveries, open_differences


@dataclass(frozen=True)
class Alert:
    kind: str  # ticket | outbox_failed | deadline_passed | settlement_difference | ...
    subject: str  # what it is about: "T12", "outbox 7", "L000031", a settlement id
    detail: str
    since: datetime | None  # UTC: since when it needs a person


@dataclass(frozen=True)
class Limits:
    ticket_hours: float = 24  # an open ticket younger than this is still in someone's normal day


Check = Callable[[Session, Config, datetime, Limits], Iterable[Alert]]


def aged_tickets(session: Session, cfg: Config, now: datetime, limits: Limits) -> Iterable[Alert]:
    """Open tickets older than ``limits.ticket_hours``."""
    q = (select(Ticket.id, Ticket.kind, Ticket.text, Ticket.external_ref, Ticket.created_at, Order.external_id)
         .outerjoin(Order, Order.id == Ticket.order_id)
         .where(Ticket.status == OPEN, Ticket.created_at <= now - timedelta(hours=limits.ticket_hours))
         .order_by(Ticket.created_at, Ticket.id))
    for tid, kind, text, ref, created, order in session.execute(q):
        first = text.splitlines()[0].removeprefix("- ") if text else ""
        yield Alert("ticket", f"T{tid}", f"{kind} ({order or ref}): {first}"[:300], created)


def failed_outbox(session: Session, cfg: Config, now: datetime, limits: Limits) -> Iterable[Alert]:
    """Outbox messages the sender gave up on (they wait for 'caturactl outbox retry')."""
    q = (select(OutboxMessage.id, OutboxMessage.kind, OutboxMessage.target, OutboxMessage.last_error,
                OutboxMessage.created_at)
         .where(OutboxMessage.status == FAILED).order_by(OutboxMessage.id))
    for mid, kind, target, error, created in session.execute(q):
        yield Alert("outbox_failed", f"outbox {mid}", f"{kind} to {target}: {error}"[:300], created)


def passed_deadlines(session: Session, cfg: Config, now: datetime, limits: Limits) -> Iterable[Alert]:
    """Delivery notes past their deadline without a complete confirmation (whether or not
    'ship overdue' has run yet)."""
    for number, order, location, state, deadline in late_deliveries(session, now):
        yield Alert("deadline_passed", number, f"order {order} at {location}: {state}, no complete confirmation",
                    deadline)


def settlement_differences(session: Session, cfg: Config, now: datetime, limits: Limits) -> Iterable[Alert]:
    """One alert per settlement with differences the books do not explain yet."""
    per: dict[str, list] = {}
    for d in open_differences(session):
        per.setdefault(d.settlement, []).append(d)
    for sid, ds in per.items():
        kinds = ", ".join(sorted({d.kind for d in ds}))
        total = sum(d.amount for d in ds)
        yield Alert("settlement_difference", sid, f"{len(ds)} open difference(s), {total} {ds[0].currency} "
                    f"({kinds}); 'caturactl settlement differences --settlement {sid}'", ds[0].deposit_date)


CHECKS: list[Check] = [aged_tickets, failed_outbox, passed_deadlines, settlement_differences]


def check(session: Session, cfg: Config, now: datetime, *, ticket_hours: float = 24,
          checks: Iterable[Check] | None = None) -> list[Alert]:
    """Every alert of every check (``CHECKS`` unless given), in check order; empty when nothing
    needs a person."""
    limits = Limits(ticket_hours=ticket_hours)
    return [a for c in (CHECKS if checks is None else checks) for a in c(session, cfg, now, limits)]


def job_checks(spec) -> Check:
    """A check for the jobs of ``spec`` (a loaded jobs.toml): a job whose newest run failed, a
    run whose runner stopped renewing its lease, and a job that has run before but missed a slot
    it should have finished by now (the daemon or its timers are not running)."""
    from caturactl.jobs.history import last_runs

    def jobs(session: Session, cfg: Config, now: datetime, limits: Limits) -> Iterable[Alert]:
        tz = cfg.tz
        last = last_runs(session)
        for name, job in spec.jobs.items():
            r = last.get(name)
            if not job.enabled or r is None:
                continue  # never ran: not set up yet, nothing to miss
            if r.state == "failed":
                why = r.error.splitlines()[-1] if r.error else f"exit code {r.exit_code}"
                yield Alert("job_failed", name, f"the {r.slot_at.astimezone(tz):%Y-%m-%d %H:%M} run failed ({why}): "
                                              f"{r.summary}; 'caturactl jobs history {name}'", r.finished_at)
            elif r.state == "running" and r.lease_until < now:
                yield Alert("job_lost", name, f"the {r.slot_at.astimezone(tz):%Y-%m-%d %H:%M} run on {r.host} stopped "
                                            f"renewing its lease; no runner has taken it over", r.lease_until)
            expected = job.schedule.latest(now - job.timeout - timedelta(minutes=5), tz)
            if r.slot_at < expected:
                yield Alert("job_not_run", name, f"the {expected:%Y-%m-%d %H:%M} slot has not run (last run: "
                                               f"{r.slot_at.astimezone(tz):%Y-%m-%d %H:%M}); is 'caturactl jobs "
                                               f"daemon' or its timer running?", expected)
    return jobs
