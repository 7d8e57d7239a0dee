"""Kill the business day at random points and check that nothing was lost or done twice.

    python bench/chaos.py [--kills 50] [--orders 300] [--seed 7] [--db sqlite|postgres] [--keep DIR]
    python bench/chaos.py --db postgres --runners 3 [--kills 50] [--orders 300] [--speed 250] [--seed 7]

Figures go to stdout as ``name: value`` lines, nothing else; notes go to stderr (one line per
kill). Exits 1 when an invariant fails (a finding: rerun with the same ``--seed`` to reproduce
it; kill points follow the work done, not the clock, so a seed gives much the same kills on
another machine), 2 when PostgreSQL was asked for and is not installed.

**One command at a time** (the default). First the day of ``bench/businessday.py`` runs once
uninterrupted (same seed, its own stand-ins and database), which records for each command its
wall time, when it had opened the database (its start-up done) and when its committed progress
grew (rows in the events table, which every stage writes in the transaction that does the
work). Then the same day runs again, and each command is started and SIGKILLed, with its whole
process group (``invoices create --jobs`` workers too), where its work happens
(``run_with_kills``):

- a command that commits its work in steps (import pages, routing and export batches, parcels,
  outbox sends, invoice batches) is killed after this run has committed a drawn number of events
  (mostly few, at most half of what is left of the uninterrupted run's), then after a drawn share
  of that run's time per commit: so the kill lands inside the next unit of work, after a commit,
  whatever the machine's speed;
- a command that commits once, at its end (route, settlement fetch, export bookings), is killed
  after this run has opened the database, at a drawn share of the time the uninterrupted run
  worked from there to its end: inside the routing, the download, the import, the file written
  before the commit, never while Python starts.

The ``--kills`` are shared among the stepwise commands in proportion to their commits, with one
each for the others; a command that finishes before its kill is done, and the kills it did not
use are shared among the stepwise commands to come (when none is left, up to MAX_ONCE_KILLS each
for the others; the rest are reported as ``kills_unused``). The figures say where the kills landed, as seen when
they landed: after a commit of the killed run, in its work before its first commit, or (a kill
that found no sign of work) during start-up. After its kills a command is rerun until it exits
with a code that counts as done, then the day goes on. Every command runs on Amazon's clock
(``CATURACTL_CLOCK``); when the day is over, ``outbox send`` runs until nothing is left pending,
the clock moving on to each next due message (backoffs, and the claims killed senders left).

**Several runners** (``--runners N``, PostgreSQL only). N ``caturactl jobs daemon`` processes share
one database and run the demo's jobs.toml (standins/demo.py ``day_jobs``, without its datev-export:
the accountant's export runs once, after the evening, so that it holds every booking) over the demo's day,
06:00 to 22:30 on a clock ``--speed`` times fast, while the stand-ins of ``bench/businessday.py``
play Amazon and the three locations (``businessday.JobsDay``; Amazon closes a settlement at 20:30).
The ``--kills`` are spread over the day at seeded random moments. At each, the bench waits for a
job that one of the runners runs and that has committed some of its work (events written by the
job's actor, ``job:NAME``, since its run started), waits a moment more, and SIGKILLs that
runner with the jobs it runs, as a host that dies; then starts it again. Its slot is taken over
by a runner once its lease has run out (``jobs.toml`` lease). A kill for which no job committed
within a few seconds hits a runner in the middle of a job that has not committed yet, or an idle
one. The evening after: the clock moves to the next morning, one ``jobs daemon --once`` runs
every job once more (the rest of the day's orders, slots left behind), the outbox is drained,
nine days later the review requests go out, and the month's bookings are exported.

Then the invariants (bench/invariants.py, shared with tests/e2e/test_parallel_jobs.py) are checked:
orders imported once, routed once, notes exported once, stock reserved as the open notes say,
outbox messages completed once, files, e-mails, confirmations and invoice uploads sent once,
each order invoiced once, invoice numbers gap-free, review requests recorded, the books balance;
and ``every_stage_completes`` (one command at a time: each got to a done exit code after its
kills; runners: no slot left running) with the outbox emptied.

A kill after a send's point of no return leaves the message in doubt (caturactl.outbox.service). The
sender looks up what the remote side can tell (``already_there_not_sent_again`` counts the sends
it found there and did not repeat); what it cannot (an e-mail) becomes a ticket, which
``settle_doubts`` answers as a person would, after the drain: it looks in the mailbox, the
location's folders and Amazon's invoice list, marks what arrived with ``outbox done`` and sends
the rest again with ``outbox retry --resend`` (``in_doubt_found_arrived``, ``in_doubt_sent_again``).

``outcome_vs_uninterrupted`` (one command at a time) compares orders and delivery notes per
state, invoices, parcels, uploads and review requests at Amazon, settlements and bookings with
the uninterrupted day. It is information, not an invariant: a message that a killed sender left
waiting (its claim or backoff) goes out after the locations' last round and its delivery ships
on a later day that this run does not play.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sqlalchemy import func, select  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench.businessday import BusinessDay, JobsDay, Stage, create_database, fresh_root  # noqa: E402
from bench.invariants import ConfirmCalls, World, check_all, files_at, verdict  # noqa: E402
from caturactl.billing import invoicing  # noqa: E402
from caturactl.accounting import exporting
from caturactl.fulfilment import shipping
from caturactl.app import App  # noqa: E402
from caturactl.config import load  # noqa: E402
from caturactl.jobs.models import JobRun  # noqa: E402
from caturactl.outbox.models import OutboxMessage
from caturactl.accounting.models import Settlement
from caturactl.billing.models import Invoice
from caturactl.fulfilment.models import DeliveryNote
from caturactl.orders.models import Order
from caturactl.core.events import Event
from caturactl.jobs.models import RUNNING  # noqa: E402
from standins.demo import DEMO_DAY, at, day_jobs  # noqa: E402
from tests.pg import PostgresServer  # noqa: E402

RERUNS = 8  # a command that still does not finish after this many plain runs is a finding
# A kill can land after a command's last commit, while it prints or exits. For most commands the
# rerun then has nothing to do and exits 0; export bookings refuses to export the period again
# (exit 70, "overlaps an export"), which says the killed run finished: books_balance checks that
# the period was recorded once and that the file holds every booking.
DONE_WHEN_RERUN_SAYS = {"bookings": 70}
POLL_SECONDS = 0.01
RERUN_STEP = timedelta(minutes=1)  # Amazon's clock (the app's) between reruns: backoffs come due
DRAIN_ROUNDS = 60  # outbox sends the end tries before it gives up on what is pending
MAX_ONCE_KILLS = 4  # kills for a command that commits once, leftovers included
AIM_SECONDS = 8.0  # runners: how long a kill waits for a job that has committed something
DAY_START, DAY_END, SETTLEMENT_AT = "06:00", "22:30", "20:30"  # the demo's day (standins/demo.py)


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def out(name: str, value) -> None:
    print(f"{name}: {value}", flush=True)


# --- watching a command's progress ------------------------------------------------------------


class Progress:
    """The newest row of the workspace's events table. Every stage writes its events (an order
    imported, a note routed or exported, a parcel, an invoice, an outbox message sent) in the
    transaction that does the work, so a growing count is committed progress of the command."""

    def __init__(self, day: BusinessDay) -> None:
        self._app = App(load(day.root / "caturactl.toml"))
        self.url = self._app.cfg.database.url

    def mark(self) -> int:
        with self._app.engine.connect() as c:
            return c.scalar(select(func.coalesce(func.max(Event.id), 0)))

    def committed_by(self, actor: str, since: int) -> int:
        """Events written by ``actor`` (``job:NAME``) after event ``since``."""
        with self._app.engine.connect() as c:
            return c.scalar(select(func.count()).where(Event.actor == actor, Event.id > since))

    def close(self) -> None:
        self._app.dispose()


def opened_database(pid: int, url: str) -> bool:
    """Whether process ``pid`` holds the database open: its SQLite file, or a TCP connection to
    the PostgreSQL server's port. That is where a caturactl command's start-up ends."""
    try:
        links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    except OSError:
        return False
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        db = str(Path(u.database).resolve())
        return any(link == db for link in links)
    sockets = {link[8:-1] for link in links if link.startswith("socket:[")}
    port = f"{u.port or 5432:04X}"
    for table in ("tcp", "tcp6"):
        try:
            rows = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if cols[2].endswith(":" + port) and cols[9] in sockets:
                return True
    return False


@dataclass
class Profile:
    """How a command went uninterrupted: its wall time, when it had opened the database, and,
    as (seconds since start, events committed so far), each moment its committed progress grew."""

    seconds: float
    opened: float
    steps: list[tuple[float, int]]

    @property
    def events(self) -> int:
        return self.steps[-1][1] if self.steps else 0

    @property
    def stepwise(self) -> bool:
        """It commits its work in steps that can be watched (two or more commits)."""
        return len(self.steps) >= 2


def watch(day: BusinessDay, stage: Stage, progress: Progress) -> tuple[int, Profile]:
    """Run ``stage`` to the end, sampling its committed progress; (exit code, profile)."""
    day.prepare(stage)
    first = progress.mark()
    steps: list[tuple[float, int]] = []
    opened = None
    t0 = time.perf_counter()
    proc = day.popen(stage)
    while proc.poll() is None:
        now = time.perf_counter() - t0
        if opened is None and opened_database(proc.pid, progress.url):
            opened = now
        grown = progress.mark() - first
        if grown and (not steps or grown > steps[-1][1]):
            steps.append((now, grown))
        time.sleep(POLL_SECONDS)
    took = time.perf_counter() - t0
    grown = progress.mark() - first
    if grown and (not steps or grown > steps[-1][1]):
        steps.append((took, grown))
    return proc.returncode, Profile(took, took if opened is None else opened, steps)


# --- the uninterrupted day ------------------------------------------------------------------------


def startup_seconds(day: BusinessDay) -> float:
    """Wall time of a command that only opens the configuration and the database."""
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        day.command("outbox", "list", "--limit", "1")
        best = min(best, time.perf_counter() - t0)
    return best


def run_uninterrupted(day: BusinessDay) -> dict[str, Profile]:
    """Each command stage's profile; SystemExit when one does not finish."""
    profiles = {}
    progress = Progress(day)
    try:
        for stage in day.stages():
            if not stage.is_command:
                day.prepare(stage)
                continue
            code, profile = watch(day, stage, progress)
            if code not in stage.ok:
                raise SystemExit(f"chaos: uninterrupted day: caturactl {' '.join(stage.args)} exited {code} "
                                 f"(see {day.log})")
            profiles[stage.name] = profile
            note(f"uninterrupted: {stage.name} {profile.seconds:.1f}s, database open after {profile.opened:.2f}s, "
                 f"{profile.events} events in {len(profile.steps)} commits")
    finally:
        progress.close()
    return profiles


# --- the day with kills ---------------------------------------------------------------------------


@dataclass
class KillLog:
    kills: int = 0
    after_commit: int = 0  # the killed run had committed some of its work
    in_work: int = 0  # it had opened the database but committed nothing yet
    at_startup: int = 0  # no sign of work yet (a command that finished its start-up slower than aimed)
    finished_before_kill: int = 0
    reruns: int = 0
    unused: int = 0  # kills left when the last command finished before them
    by_stage: Counter = field(default_factory=Counter)
    not_completed: list[str] = field(default_factory=list)


def share_kills(total: int, work: dict[str, float], *, at_least: int = 1) -> dict[str, int]:
    """``total`` kills over the stages in proportion to ``work``, ``at_least`` each (largest
    remainders get the odd ones)."""
    names = list(work)
    share = {n: at_least for n in names}
    left = total - at_least * len(names)
    if left > 0:
        whole = sum(work.values()) or 1.0
        exact = {n: left * work[n] / whole for n in names}
        for n in names:
            share[n] += int(exact[n])
        rest = total - sum(share.values())
        for n in sorted(names, key=lambda n: exact[n] - int(exact[n]), reverse=True)[:rest]:
            share[n] += 1
    return share


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the command and its workers (its own process group, started by us)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


@dataclass
class Aim:
    """Where a kill goes: once this run has committed ``events`` (0: once it has opened the
    database), ``linger`` seconds later."""

    events: int
    linger: float


def aim(profile: Profile, committed: int, rng: random.Random) -> Aim:
    """The next kill of a command whose killed runs committed ``committed`` events so far (see
    ``run_with_kills``)."""
    if profile.stepwise:
        # Mostly early (a squared uniform) and at most half of what is left: a rerun often has
        # less to do than the uninterrupted run had (a killed sender's messages wait for their
        # claim), and a kill the run does not reach is a kill not made.
        left = max(profile.events - committed, 1)
        unit = (profile.seconds - profile.opened) / max(len(profile.steps), 1)  # one unit of work
        return Aim(1 + int(rng.random() ** 2 * left / 2), rng.random() * max(unit, POLL_SECONDS))
    # Commits once: inside its work, after start-up.
    return Aim(0, rng.random() * max(profile.seconds - profile.opened, POLL_SECONDS))


def run_with_kills(day: BusinessDay, stage: Stage, kills: int, profile: Profile, rng: random.Random,
                   log: KillLog, progress: Progress) -> int:
    """Start ``stage`` and kill it up to ``kills`` times, then run it until it is done. Returns
    the kills not used (the command finished first).

    A stepwise command is killed once this run has committed a drawn number of events (mostly
    few, at most half of what the uninterrupted run committed beyond what earlier killed runs of
    it did), then after a drawn share of the uninterrupted run's time per commit: inside the next
    unit of work (an import page, a routing or export batch, an upload, an outbox send, an
    invoice batch). A command that commits once is killed once it has opened the database, after
    a drawn share of the time the uninterrupted run worked from there to its end."""
    committed = 0  # events the killed runs of this stage committed
    done = False
    while kills > 0 and not done:
        target = aim(profile, committed, rng)
        first = progress.mark()
        t0 = time.perf_counter()
        proc = day.popen(stage)
        reached = None
        while proc.poll() is None:
            now = time.perf_counter()
            if reached is None:
                if target.events:
                    if progress.mark() - first >= target.events:
                        reached = now
                elif opened_database(proc.pid, progress.url):
                    reached = now
            if reached is not None and now - reached >= target.linger:
                break
            time.sleep(POLL_SECONDS)
        if proc.poll() is not None:
            log.finished_before_kill += 1
            done = proc.returncode in stage.ok
            committed += progress.mark() - first
            continue
        working = reached is not None or opened_database(proc.pid, progress.url)
        kill_group(proc)
        made = progress.mark() - first
        committed += made
        kills -= 1
        log.kills += 1
        log.by_stage[stage.name] += 1
        if made:
            log.after_commit += 1
            where = f"{made} event(s) committed by this run"
        elif working:
            log.in_work += 1
            where = "in its work, before its first commit"
        else:
            log.at_startup += 1
            where = "during start-up"
        note(f"chaos: killed {stage.name} after {time.perf_counter() - t0:.2f}s, {where}")
    if not done:
        for _ in range(RERUNS):
            log.reruns += 1
            code = day.popen(stage).wait()
            if code in stage.ok or (log.by_stage[stage.name] and DONE_WHEN_RERUN_SAYS.get(stage.name) == code):
                done = True
                break
            day.standin.advance(RERUN_STEP)  # a message in backoff comes due
        if not done:
            log.not_completed.append(f"{stage.name} (exit {code})")
    return kills


def run_with_chaos(day: BusinessDay, total: int, profiles: dict[str, Profile], rng: random.Random) -> KillLog:
    """The day with ``total`` kills shared among its commands by their units of work; kills a
    command did not use (it finished first) are shared among the stepwise commands still to
    come, or, when none is left, among the others up to MAX_ONCE_KILLS each (the rest are
    reported unused)."""
    log = KillLog()
    work = {name: max(p.seconds - p.opened, 0.05) for name, p in profiles.items()}
    # A command that commits once gets one kill; the rest go to the stepwise commands by their
    # number of commits: a kill costs a rerun about one unit of work.
    stepwise = {name: float(len(p.steps)) for name, p in profiles.items() if p.stepwise}
    plan = {name: 1 for name in work if name not in stepwise}
    plan.update(share_kills(total - len(plan), stepwise))
    progress = Progress(day)
    try:
        for stage in day.stages():
            day.prepare(stage)
            if not stage.is_command:
                continue
            unused = run_with_kills(day, stage, plan.pop(stage.name), profiles[stage.name], rng, log, progress)
            ahead = {n: stepwise[n] for n in plan if n in stepwise}
            if unused and not ahead:
                # Only commands that commit once are left: a few more kills each, not all of them,
                # which would make the day's end the bench's main target.
                room = {n: MAX_ONCE_KILLS - plan[n] for n in plan if plan[n] < MAX_ONCE_KILLS}
                ahead = {n: float(r) for n, r in room.items()}
                extra = share_kills(min(unused, sum(room.values())), ahead, at_least=0)
                log.unused += unused - sum(extra.values())
                plan = {n: plan[n] + extra.get(n, 0) for n in plan}
            elif unused:
                extra = share_kills(unused, ahead, at_least=0)
                plan = {n: plan[n] + extra.get(n, 0) for n in plan}
            note(f"chaos: {stage.name}: {log.by_stage[stage.name]} kill(s)")
    finally:
        progress.close()
    return log


# --- the evening: what is left to send, and the in-doubt tickets -----------------------------------


def drain_outbox(day: BusinessDay) -> int:
    """Run ``outbox send`` until nothing is pending, Amazon's clock (the app's) moving on to the
    next message due (a backoff, a claim a killed sender left: caturactl.outbox.service.CLAIM_SECONDS);
    the pending left after DRAIN_ROUNDS sends."""
    app = App(load(day.root / "caturactl.toml"))
    try:
        for _ in range(DRAIN_ROUNDS):
            with app.session() as s:
                pending = s.scalar(select(func.count()).where(OutboxMessage.status == "pending"))
                due = s.scalar(select(func.min(OutboxMessage.next_attempt_at)).where(OutboxMessage.status == "pending"))
            if not pending:
                return 0
            if due is not None and due > day.standin.now():
                note(f"chaos: {pending} outbox message(s) pending, the first due at {due:%H:%M:%S} (clock moves on)")
                day.standin.advance(due - day.standin.now() + timedelta(seconds=1))
            day.command("outbox", "send")
        with app.session() as s:
            return s.scalar(select(func.count()).where(OutboxMessage.status == "pending"))
    finally:
        app.dispose()


def found_by_asking(day: BusinessDay) -> int:
    """Sends the sender did not repeat because the remote side already had them (a file in the
    location's folders, a package on Amazon's order, an invoice feed, a review request no longer
    offered): the outbox events that say so."""
    app = App(load(day.root / "caturactl.toml"))
    try:
        with app.session() as s:
            return sum(1 for d in s.scalars(select(Event.data).where(Event.kind == "outbox_sent"))
                       if (d or {}).get("found"))
    finally:
        app.dispose()


def settle_doubts(day: BusinessDay) -> tuple[int, int]:
    """Play the person who answers the in-doubt tickets: a send a kill cut off after its point
    of no return, which the remote side cannot be asked about (an e-mail). Look where a person
    would (the mailbox, the location's folders, Seller Central's invoice list), then
    ``outbox done`` what arrived and ``outbox retry --resend`` what did not. Returns (arrived,
    sent again)."""
    app = App(load(day.root / "caturactl.toml"))
    arrived, resent = [], []
    try:
        with app.session() as s:
            doubts = s.scalars(select(OutboxMessage).where(OutboxMessage.status == "failed",
                                                           OutboxMessage.sending_at.is_not(None))).all()
            subjects = {str(m["Subject"]) for m in day.smtp.messages}
            ids = {str(m["Message-ID"]) for m in day.smtp.messages}
            invoices = {(u["order_id"], u["invoice_number"]) for u in day.standin.invoices()}
            folders = {target: files_at(root)[0] for target, root in folders_of(day).items()}
            for m in doubts:
                p = m.payload
                if m.kind == shipping.EMAIL:
                    there = f"<outbox-{m.id}@caturactl>" in ids
                elif m.kind == shipping.UPLOAD:
                    name = shipping.file_from_payload(p).name
                    there = name in folders[m.target] if m.target in folders else f"Lieferauftrag {name}" in subjects
                elif m.kind == invoicing.UPLOAD:
                    there = (p["order_id"], p["metadata"]["InvoiceNumber"]) in invoices
                else:
                    raise SystemExit(f"chaos: no way to look up an in-doubt {m.kind} message")
                (arrived if there else resent).append(str(m.id))
    finally:
        app.dispose()
    if arrived:
        day.command("outbox", "done", *arrived, "--reason", "chaos: found at the other side")
    if resent:
        day.command("outbox", "retry", "--resend", *resent)
    return len(arrived), len(resent)


# --- what the day left behind ---------------------------------------------------------------------


def folders_of(day: BusinessDay) -> dict[str, Path]:
    """The locations whose files arrive in a folder we can look into: transport -> its root."""
    return {"warehouse": day.warehouse, "fulfiller": day.sftp.root}


def bookings_period(day: BusinessDay) -> tuple[date, date]:
    stage = next(s for s in day.stages() if s.name == "bookings")
    args = list(stage.args)
    return (datetime.fromisoformat(args[args.index("--from") + 1]).date(),
            datetime.fromisoformat(args[args.index("--to") + 1]).date())


def outcome(day: BusinessDay, period: tuple[date, date]) -> dict[str, object]:
    """The day's result in counts, for comparing two days."""
    app = App(load(day.root / "caturactl.toml"))
    try:
        with app.session() as s:
            return {
                "orders": dict(s.execute(select(Order._state, func.count()).group_by(Order._state)).all()),
                "deliveries": dict(s.execute(select(DeliveryNote._state, func.count())
                                             .group_by(DeliveryNote._state)).all()),
                "invoices": s.scalar(select(func.count()).select_from(Invoice)),
                "parcels_at_amazon": len(day.standin.shipments()),
                "uploads_at_amazon": len({(i["order_id"], i["invoice_number"]) for i in day.standin.invoices()}),
                "review_requests_at_amazon": len(day.standin.solicitations()),
                "settlements": s.scalar(select(func.count()).select_from(Settlement)),
                "bookings": len(exporting.entries(s, app.cfg, *period)),
            }
    finally:
        app.dispose()


def invariants(day: BusinessDay, period: tuple[date, date], calls: ConfirmCalls,
               not_completed: list[str]) -> dict[str, str]:
    app = App(load(day.root / "caturactl.toml"))
    try:
        with app.session() as s:
            world = World(day.standin, folders=folders_of(day), mails=day.smtp.messages,
                          read_twice=day.fulfilled.duplicates, confirm_calls=calls)
            checks = check_all(s, app.cfg, world, bookings=(*period, day.root))
    finally:
        app.dispose()
    checks["every_stage_completes"] = [f"not done: {', '.join(not_completed)}"] if not_completed else []
    return {name: verdict(problems) for name, problems in checks.items()}


def temp_files_left(day: BusinessDay) -> int:
    return sum(files_at(root)[1] for root in folders_of(day).values())


def evening(day: BusinessDay) -> tuple[int, tuple[int, int], int]:
    """Drain the outbox, answer the in-doubt tickets, drain again: (pending left, (found arrived,
    sent again), sends not repeated because the other side had them)."""
    pending = drain_outbox(day)
    doubts = settle_doubts(day)
    if doubts[1]:
        pending = drain_outbox(day)
    return pending, doubts, found_by_asking(day)


# --- one command at a time ------------------------------------------------------------------------


def one_at_a_time(args, base: Path, urls: dict[str, str | None]) -> tuple[dict[str, str], list[tuple[str, object]]]:
    common = dict(orders=args.orders, seed=args.day_seed, rate_scale=args.rate_scale)
    note(f"uninterrupted day: {args.orders} orders")
    with BusinessDay(fresh_root(base, "uninterrupted"), database_url=urls["uninterrupted"], **common) as day:
        startup = startup_seconds(day)
        profiles = run_uninterrupted(day)
        period = bookings_period(day)
        expected = outcome(day, period)
    seconds = {name: p.seconds for name, p in profiles.items()}
    note(f"start-up {startup:.2f}s; the day's commands {sum(seconds.values()):.1f}s; now with {args.kills} kills")
    rng = random.Random(args.seed)
    with BusinessDay(fresh_root(base, "chaos"), database_url=urls["chaos"], **common) as day:
        calls = ConfirmCalls(day.standin)
        t0 = time.perf_counter()
        log = run_with_chaos(day, args.kills, profiles, rng)
        pending, doubts, found = evening(day)
        took = time.perf_counter() - t0
        not_completed = log.not_completed + ([f"{pending} outbox message(s) still pending after {DRAIN_ROUNDS} sends"]
                                             if pending else [])
        checks = invariants(day, period, calls, not_completed)
        got = outcome(day, period)
        temps = temp_files_left(day)
    diff = [f"{k}: {got[k]} against {expected[k]}" for k in expected if got[k] != expected[k]]
    figures = [
        ("kills_planned", args.kills), ("kills", log.kills),
        ("kills_after_a_commit_of_the_run", log.after_commit),
        ("kills_in_work_before_its_first_commit", log.in_work),
        ("kills_during_startup", log.at_startup),
        ("stages_killed_mid_run", sum(1 for n in log.by_stage.values() if n)),
        ("command_stages", len(seconds)),
        ("kills_by_stage", " ".join(f"{name}={log.by_stage[name]}" for name in seconds)),
        ("finished_before_kill", log.finished_before_kill), ("kills_unused", log.unused),
        ("reruns_after_kills", log.reruns),
        ("startup_seconds", f"{startup:.2f}"), ("uninterrupted_seconds", f"{sum(seconds.values()):.1f}"),
        ("chaos_seconds", f"{took:.1f}"), ("temp_upload_files_left", temps),
        ("already_there_not_sent_again", found), ("in_doubt_found_arrived", doubts[0]),
        ("in_doubt_sent_again", doubts[1]),
        ("outcome_vs_uninterrupted", "same" if not diff else "differs (" + "; ".join(diff) + ")"),
    ]
    return checks, figures


# --- several runners ------------------------------------------------------------------------------


@dataclass
class RunnerKills:
    kills: int = 0
    after_commit: int = 0  # the runner ran a job that had committed some of its work
    before_commit: int = 0  # it ran a job that had committed nothing yet (none committed in AIM_SECONDS)
    idle: int = 0  # its job had ended (or none ran) when the kill landed
    jobs_killed: int = 0  # job processes killed with their runners
    unused: int = 0  # the day was over before these
    by_job: Counter = field(default_factory=Counter)


class Runs:
    """The jobs the runners run right now, each with the newest event when it was first seen
    running: events after that one written by its actor are its committed work."""

    def __init__(self, jobs: JobsDay, progress: Progress, app: App) -> None:
        self.jobs, self.progress, self.app = jobs, progress, app
        self.marks: dict[tuple[int, int], int] = {}

    def running(self) -> list[tuple[int, JobRun, int]]:
        """(runner number, run, events it committed) for each job a live runner runs."""
        mark = self.progress.mark()
        with self.app.session() as s:
            rows = s.scalars(select(JobRun).where(JobRun.state == RUNNING)).all()
            s.expunge_all()
        out = []
        for run in rows:
            self.marks.setdefault((run.id, run.attempt), mark)
            if not run.host.startswith("runner"):
                continue
            n = int(run.host[len("runner"):])
            if run.pid in self.jobs.jobs_of(n):
                since = self.marks[(run.id, run.attempt)]
                out.append((n, run, self.progress.committed_by(f"job:{run.job}", since)))
        return out


def kill_runners(jobs: JobsDay, day: BusinessDay, kills: int, rng: random.Random) -> RunnerKills:
    """``kills`` kills at seeded random moments of the day, each aimed at a runner whose job has
    committed some of its work (see the module docstring); the runner starts again at once."""
    log = RunnerKills()
    progress = Progress(day)
    app = App(load(day.root / "caturactl.toml"))
    runs = Runs(jobs, progress, app)
    t0 = time.monotonic()
    moments = sorted(rng.uniform(jobs.lead_seconds + 1.0, 0.97 * jobs.real_seconds()) for _ in range(kills))
    try:
        for k, moment in enumerate(moments):
            while time.monotonic() - t0 < moment:
                runs.running()  # the start marks of new runs, seen as they start
                time.sleep(0.05)
            if not any(jobs.pid(n) for n in range(len(jobs.daemons))):
                log.unused = kills - k
                break
            need = rng.choice((1, 1, 2, 3))  # events a job must have committed
            linger = rng.uniform(0.0, 0.3)
            give_up = time.monotonic() + AIM_SECONDS
            chosen = None
            while chosen is None and time.monotonic() < give_up:
                ready = [(n, run) for n, run, made in runs.running() if made >= need]
                if ready:
                    chosen = rng.choice(ready)
                else:
                    time.sleep(0.02)
            if chosen is None:  # nothing committed meanwhile: a runner in the middle of a job, else any
                busy = [(n, run) for n, run, _ in runs.running()]
                alive = [n for n in range(len(jobs.daemons)) if jobs.pid(n)]
                if not alive:
                    log.unused = kills - k
                    break
                n, run = rng.choice(busy) if busy else (rng.choice(alive), None)
            else:
                n, run = chosen
                time.sleep(linger)
            made = progress.committed_by(f"job:{run.job}", runs.marks[(run.id, run.attempt)]) if run else 0
            children = jobs.kill(n)
            log.kills += 1
            log.jobs_killed += len(children)
            landed = run is not None and run.pid in children
            if landed and made:
                log.after_commit += 1
                log.by_job[run.job] += 1
                where = f"{run.job} after {made} event(s) it committed"
            elif landed:
                log.before_commit += 1
                log.by_job[run.job] += 1
                where = f"{run.job} before its first commit"
            else:
                log.idle += 1
                where = "idle (its job had ended)"
            note(f"chaos: killed runner{n} at {jobs.clock.now().astimezone(jobs.tz):%H:%M}, {where}; "
                 f"{len(children)} job(s) died with it")
            jobs.restart(n)
    finally:
        app.dispose()
        progress.close()
    return log


def runners_jobs(day: date) -> str:
    """The demo's jobs.toml without its datev-export job: the accountant's export runs once the
    evening is over, so that it holds every booking of the period (``books_balance``)."""
    text = day_jobs(day)
    if "\n[jobs.datev-export]" not in text:
        raise SystemExit("chaos: the demo's jobs.toml no longer ends with [jobs.datev-export]")
    return text.split("\n[jobs.datev-export]")[0]


def runners_day(args, base: Path, url: str) -> tuple[dict[str, str], list[tuple[str, object]]]:
    rng = random.Random(args.seed)
    the_day = date.fromisoformat(DEMO_DAY)
    with BusinessDay(fresh_root(base, "runners"), database_url=url, orders=args.orders, seed=args.day_seed,
                     rate_scale=args.rate_scale, day=the_day, start=at(the_day, "05:30")) as day:
        calls = ConfirmCalls(day.standin)
        (day.root / "jobs.toml").write_text(runners_jobs(day.day), encoding="utf-8")
        month = day.day.replace(day=1)
        period = (month, month.replace(month=12, day=31))  # what the demo's datev-export job exports
        jobs = JobsDay(day.root, day.standin, start=at(day.day, DAY_START), until=at(day.day, DAY_END),
                       speed=args.speed, runners=args.runners, work=day.locations_work, env=day.env, lead_seconds=4.0,
                       events=((at(day.day, SETTLEMENT_AT), lambda: day.standin.close_settlement(locale="DE")),))
        note(f"chaos: {args.runners} runners, {args.orders} orders, the day {DAY_START}-{DAY_END} in "
             f"{jobs.real_seconds():.0f}s, {args.kills} kills")
        t0 = time.perf_counter()
        with jobs:
            log = kill_runners(jobs, day, args.kills, rng)
            codes = jobs.wait(timeout=jobs.real_seconds() + 600)
        day_seconds = time.perf_counter() - t0
        # The evening and the next morning: every order of the day is there; one round of every
        # job finishes what the day left (slots of killed runners included).
        day.standin.advance(at(day.day + timedelta(days=1), "03:00") - day.standin.now())
        once = day.command("jobs", "daemon", "--once", "--host", "morning", timeout=1800)
        pending, doubts, found = evening(day)
        day.into_review_window()
        reviews = day.command("reviews", "request")
        bookings = day.command("export", "bookings", "--format", "datev", "--from", period[0].isoformat(),
                               "--to", period[1].isoformat())
        took = time.perf_counter() - t0
        app = App(load(day.root / "caturactl.toml"))
        try:
            with app.session() as s:
                left_running = s.scalars(select(JobRun.job).where(JobRun.state == RUNNING)).all()
                states = dict(s.execute(select(JobRun.state, func.count()).group_by(JobRun.state)).all())
                taken_over = s.scalar(select(func.count()).where(JobRun.attempt > 1))
                lost = s.scalar(select(func.count()).where(JobRun.error.like("%a newer slot runs instead%")))
                per_runner = dict(s.execute(select(JobRun.host, func.count()).group_by(JobRun.host)).all())
        finally:
            app.dispose()
        not_completed = []
        if codes != [0] * args.runners:
            not_completed.append(f"runners exited {codes}")
        if once.returncode != 0:
            not_completed.append(f"the morning's jobs daemon --once exited {once.returncode}")
        if reviews.returncode != 0:
            not_completed.append(f"reviews request exited {reviews.returncode}")
        if bookings.returncode != 0:
            not_completed.append(f"export bookings exited {bookings.returncode}")
        if left_running:
            not_completed.append(f"slots left running: {sorted(left_running)}")
        if pending:
            not_completed.append(f"{pending} outbox message(s) still pending after {DRAIN_ROUNDS} sends")
        checks = invariants(day, period, calls, not_completed)
        got = outcome(day, period)
        temps = temp_files_left(day)
    figures = [
        ("runners", args.runners), ("speed", f"{args.speed:g}"),
        ("kills_planned", args.kills), ("kills", log.kills),
        ("kills_after_a_commit_of_the_run", log.after_commit),
        ("kills_in_a_job_before_its_first_commit", log.before_commit),
        ("kills_of_an_idle_runner", log.idle), ("kills_unused", log.unused),
        ("jobs_killed_with_their_runner", log.jobs_killed),
        ("kills_by_job", " ".join(f"{name}={n}" for name, n in sorted(log.by_job.items()))),
        ("runner_restarts", jobs.restarts),
        ("job_runs", " ".join(f"{k}={v}" for k, v in sorted(states.items()))),
        ("job_runs_by_runner", " ".join(f"{k}={v}" for k, v in sorted(per_runner.items()))),
        ("slots_taken_over", taken_over), ("slots_lost_to_a_newer_one", lost),
        ("day_seconds", f"{day_seconds:.1f}"), ("chaos_seconds", f"{took:.1f}"),
        ("temp_upload_files_left", temps), ("already_there_not_sent_again", found),
        ("in_doubt_found_arrived", doubts[0]), ("in_doubt_sent_again", doubts[1]),
        ("outcome", "; ".join(f"{k}: {v}" for k, v in got.items())),
    ]
    return checks, figures


# --- main -----------------------------------------------------------------------------------------


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kills", type=int, default=50)
    p.add_argument("--orders", type=int, default=300)
    p.add_argument("--seed", type=int, default=7, help="the kills' generator (the orders use --day-seed)")
    p.add_argument("--day-seed", type=int, default=1)
    p.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--runners", type=int, default=0,
                   help="N jobs daemons sharing the database, killed at random (PostgreSQL only)")
    p.add_argument("--speed", type=float, default=250.0, help="with --runners: how fast the day's clock runs")
    p.add_argument("--rate-scale", type=float, default=50_000.0)
    p.add_argument("--keep", type=Path, help="keep the workspaces in this folder (default: a temporary one)")
    args = p.parse_args()
    if args.runners and args.db != "postgres":
        p.error("--runners needs --db postgres: on SQLite a runner runs one job at a time, and runners on "
                "other hosts cannot share the file")
    base = args.keep or Path(tempfile.mkdtemp(prefix="caturactl-chaos-"))
    base.mkdir(parents=True, exist_ok=True)

    server = None
    names = ["runners"] if args.runners else ["uninterrupted", "chaos"]
    urls: dict[str, str | None] = {name: None for name in names}
    if args.db == "postgres":
        server = PostgresServer()
        if not server.available:
            out("postgres", "not installed (initdb not found)")
            return 2
        server.start()
        urls = {name: create_database(server.url(), f"chaos_{name}") for name in names}
    try:
        if args.runners:
            checks, figures = runners_day(args, base, urls["runners"])
        else:
            checks, figures = one_at_a_time(args, base, urls)
    finally:
        if server is not None:
            server.stop()

    out("orders", args.orders)
    out("db", args.db)
    out("seed", args.seed)
    for name, value in figures:
        out(name, value)
    for name, result in checks.items():
        out(f"invariant_{name}", result)
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return 1 if any(v != "ok" for v in checks.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
