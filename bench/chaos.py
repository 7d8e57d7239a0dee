"""Kill the business day at random points and check that nothing was lost or done twice.

    python bench/chaos.py [--kills 50] [--orders 300] [--seed 7] [--db sqlite|postgres] [--keep DIR]

Figures go to stdout as ``name: value`` lines, nothing else; notes go to stderr (one line per
kill). Exits 1 when an invariant fails (a finding: rerun with the same ``--seed`` to reproduce
it; kill points follow the work done, not the clock, so a seed gives much the same kills on
another machine), 2 when PostgreSQL was asked for and is not installed.

First the day of ``bench/businessday.py`` runs once uninterrupted (same seed, its own stand-ins
and database), which records for each command its wall time and when its committed progress
grew (rows in the events table, which every stage writes in the transaction that does the
work). Then the same day runs again, and each command is started and SIGKILLed, with its whole
process group (``invoices create --jobs`` workers too), once its committed progress has reached
a point drawn from a seeded generator and a further share of the time its next unit of work
took uninterrupted has passed: so kills land inside import pages, routing batches, renders,
uploads, outbox sends, confirmations and invoice batches rather than while Python starts
(``run_with_kills``; a command that commits no events is killed after a drawn delay instead).
The ``--kills`` are shared among the commands in proportion to their commits, at least one each
(exactly one for a command that commits no events); a command that finishes before its kill is
done, and the kills it did not use are shared among the watched commands to come. After its
kills a command is rerun until it exits with a code that counts as done, then the day goes on.
When the day is over, ``outbox send`` runs until nothing is left pending (waiting out backoffs
and the claims killed senders left), and the invariants are checked:

- ``orders_imported_once``: the orders table holds every order id the stand-in generated, once;
- ``files_uploaded_once``: every name in the warehouse folder and on the fulfiller's SFTP
  server (inbox, and the done/error folders the locations move read files to, where a second
  copy gets a ``.1`` suffix) exists once, the locations never read an order for a delivery they
  already had, and every upload the outbox marked done is there;
- ``emails_sent_once``: the SMTP stand-in received each Message-ID and each subject once;
- ``shipments_confirmed_once``: the Amazon stand-in holds each (order, package reference) and
  each (order, tracking number) once;
- ``invoices_uploaded_once``: the Amazon stand-in received each (order, invoice number) once;
- ``invoice_numbers_gap_free``: per series and year the numbers are 1..n, each once, and the
  counter row says n;
- ``books_balance``: the bookings ``caturactl.exporting.entries`` computes for the period (the
  accountant's export uses the same function) each move a positive amount between two different
  accounts; every account's debits and credits add up to a zero balance over the ledger; each
  invoice's bookings add up to its gross total; the period was exported once, with every booking;
- ``review_requests_recorded``: every order Amazon sent a review request for is recorded as sent;
- ``every_stage_completes``: each command got to a done exit code after its kills, and the
  outbox emptied.

A kill after a send's point of no return leaves the message in doubt (caturactl.outbox). The
sender looks up what the remote side can tell (``already_there_not_sent_again`` counts the sends
it found there and did not repeat); what it cannot (an e-mail) becomes a ticket, which
``settle_doubts`` answers as a person would, after the drain: it looks in the mailbox, the
location's folders and Amazon's invoice list, marks what arrived with ``outbox done`` and sends
the rest again with ``outbox retry --resend`` (``in_doubt_found_arrived``,
``in_doubt_sent_again``).

``outcome_vs_uninterrupted`` compares orders and delivery notes per state, invoices, parcels,
uploads and review requests at Amazon, settlements and bookings with the uninterrupted day. It
is information, not an invariant: the day runs in compressed time, so a message that a killed
sender left waiting (its claim or backoff) goes out after the locations' last round and its
delivery ships on a later day that this run does not play.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sqlalchemy import func, select  # noqa: E402

from bench.businessday import BusinessDay, Stage, create_database, fresh_root  # noqa: E402
from caturactl import exporting, invoicing, shipping  # noqa: E402
from caturactl import outbox as outbox_module  # noqa: E402
from caturactl.app import App  # noqa: E402
from caturactl.config import load  # noqa: E402
from caturactl.model import (DeliveryNote, Event, ExportBatch, Invoice, InvoiceCounter, Order,  # noqa: E402
                             OutboxMessage, ReviewRequest, Settlement)
from tests.pg import PostgresServer  # noqa: E402

RERUNS = 8  # a command that still does not finish after this many plain runs is a finding
# A kill can land after a command's last commit, while it prints or exits. For most commands the
# rerun then has nothing to do and exits 0; export bookings refuses to export the period again
# (exit 70, "overlaps an export"), which says the killed run finished: books_balance checks that
# the period was recorded once and that the file holds every booking.
DONE_WHEN_RERUN_SAYS = {"bookings": 70}
POLL_SECONDS = 0.01
DRAIN_SECONDS = getattr(outbox_module, "CLAIM_SECONDS", 0) + 300  # how long the end waits for the outbox
_SECOND_COPY = re.compile(r"\.\d+$")  # standins/fulfiller.py _move: "NAME.1" when NAME was there


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

    def mark(self) -> int:
        with self._app.engine.connect() as c:
            return c.scalar(select(func.coalesce(func.max(Event.id), 0)))

    def close(self) -> None:
        self._app.dispose()


@dataclass
class Profile:
    """How a command went uninterrupted: its wall time and, as (seconds since start, events
    committed so far), each moment its committed progress grew."""

    seconds: float
    steps: list[tuple[float, int]]

    @property
    def events(self) -> int:
        return self.steps[-1][1] if self.steps else 0

    def reached(self, events: int) -> float:
        """When the uninterrupted run had committed ``events`` (0: its start)."""
        return next((t for t, n in self.steps if n >= events), self.seconds) if events else 0.0

    def at(self, t: float) -> tuple[int, float]:
        """(events committed, when the last of them was) at ``t`` seconds of the uninterrupted run."""
        done, since = 0, 0.0
        for when, n in self.steps:
            if when > t:
                break
            done, since = n, when
        return done, since


def watch(day: BusinessDay, stage: Stage, progress: Progress) -> tuple[int, Profile]:
    """Run ``stage`` to the end, sampling its committed progress; (exit code, profile)."""
    day.prepare(stage)
    first = progress.mark()
    steps: list[tuple[float, int]] = []
    t0 = time.perf_counter()
    proc = day.popen(stage)
    while proc.poll() is None:
        grown = progress.mark() - first
        if grown and (not steps or grown > steps[-1][1]):
            steps.append((time.perf_counter() - t0, grown))
        time.sleep(POLL_SECONDS)
    took = time.perf_counter() - t0
    grown = progress.mark() - first
    if grown and (not steps or grown > steps[-1][1]):
        steps.append((took, grown))
    return proc.returncode, Profile(took, steps)


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
            note(f"uninterrupted: {stage.name} {profile.seconds:.1f}s, {profile.events} events "
                 f"in {len(profile.steps)} commits")
    finally:
        progress.close()
    return profiles


# --- the day with kills ---------------------------------------------------------------------------


@dataclass
class KillLog:
    kills: int = 0
    after_progress: int = 0  # kills after the run had committed some of its work
    by_time: int = 0  # kills before the run's first commit, after a delay
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


def aim(profile: Profile, committed: int, startup: float, rng: random.Random) -> tuple[bool, int, float, float]:
    """Where the next kill of a watched command goes (see ``run_with_kills``): (after a commit
    of the run?, the run's events to wait for, seconds to wait after them, or else seconds from
    the start)."""
    since = profile.reached(committed)
    # Not while Python starts: a command imports more than the start-up probe does.
    start = since if committed else min(1.25 * startup, profile.seconds)
    point = start + rng.random() ** 2 * max(profile.seconds - start, 0.05)
    events, last = profile.at(point)
    if events > committed:  # after a commit of this run: wait for it, then for the rest of the way
        return True, events - committed, point - last, 0.0
    # before this run's first commit: start-up, then the way from there
    return False, 0, 0.0, max(point - since, 0.0) + (startup if since else 0.0)


def run_with_kills(day: BusinessDay, stage: Stage, kills: int, profile: Profile, startup: float,
                   rng: random.Random, log: KillLog, progress: Progress) -> int:
    """Start ``stage`` and kill it up to ``kills`` times, then run it until it is done. Returns
    the kills not used (the command finished first).

    Each kill aims at a point of the uninterrupted run, drawn (a squared uniform: mostly early, so
    the rerun has the work again and the next kill lands inside it too) from the part of it that
    earlier runs of this stage did not commit. When that run had committed more events by then,
    the kill waits until this run has committed as many, then as long as the uninterrupted run
    went on from its last commit to the point: so it lands inside the same unit of work (an import
    page, a render, an upload, an outbox send, an invoice batch) whatever the machine's speed.
    Before the first of those commits (start-up, building invoices, a command that commits no
    events) the kill comes after the same time instead."""
    committed = 0  # events the killed runs of this stage committed
    done = False
    while kills > 0 and not done:
        if profile.events < 2:
            # Nothing to watch (settlement fetch, export bookings, an empty outbox send): a kill
            # between start-up and the end of the uninterrupted run's time, which reruns need too.
            by_progress = False
            delay = rng.uniform(0.9 * startup, max(0.9 * startup, 0.9 * profile.seconds))
        else:
            by_progress, target, linger, delay = aim(profile, committed, startup, rng)
        first = progress.mark()
        t0 = time.perf_counter()
        proc = day.popen(stage)
        reached = None
        while proc.poll() is None:
            now = time.perf_counter()
            if by_progress:
                if reached is None and progress.mark() - first >= target:
                    reached = now
                if reached is not None and now - reached >= linger:
                    break
            elif now - t0 >= delay:
                break
            time.sleep(POLL_SECONDS)
        if proc.poll() is not None:
            log.finished_before_kill += 1
            done = proc.returncode in stage.ok
            committed += progress.mark() - first
            continue
        kill_group(proc)
        made = progress.mark() - first
        committed += made
        kills -= 1
        log.kills += 1
        log.by_stage[stage.name] += 1
        if by_progress:
            log.after_progress += 1
        else:
            log.by_time += 1
        note(f"chaos: killed {stage.name} after {time.perf_counter() - t0:.2f}s, "
             f"{made} event(s) committed by this run" + ("" if by_progress else " (before its first commit)"))
    if not done:
        for attempt in range(RERUNS):
            log.reruns += 1
            code = day.popen(stage).wait()
            if code in stage.ok or (log.by_stage[stage.name] and DONE_WHEN_RERUN_SAYS.get(stage.name) == code):
                done = True
                break
            time.sleep(1.5)  # a message in backoff is due after a second or two
        if not done:
            log.not_completed.append(f"{stage.name} (exit {code})")
    return kills


def run_with_chaos(day: BusinessDay, total: int, profiles: dict[str, Profile], startup: float,
                   rng: random.Random) -> KillLog:
    """The day with ``total`` kills shared among its commands by their units of work; kills a
    command did not use (it finished first) are shared among the commands still to come, the
    watched ones while there are any."""
    log = KillLog()
    work = {name: max(p.seconds - startup, 0.05) for name, p in profiles.items()}
    # Commands that commit (almost) no events can only be killed by the clock: one kill each.
    # The rest go to the commands whose progress can be watched, by their number of commits:
    # a kill costs a rerun about one unit of work, so those with many units take many kills.
    watched = {name: float(len(p.steps)) for name, p in profiles.items() if p.events >= 2}
    plan = {name: 1 for name in work if name not in watched}
    plan.update(share_kills(total - len(plan), watched))
    progress = Progress(day)
    try:
        for stage in day.stages():
            day.prepare(stage)
            if not stage.is_command:
                continue
            unused = run_with_kills(day, stage, plan.pop(stage.name), profiles[stage.name], startup, rng, log,
                                    progress)
            if unused and plan:
                ahead = {n: watched[n] for n in plan if n in watched} or {n: work[n] for n in plan}
                extra = share_kills(unused, ahead, at_least=0)
                plan = {n: plan[n] + extra.get(n, 0) for n in plan}
            elif unused:
                log.unused = unused
            note(f"chaos: {stage.name}: {log.by_stage[stage.name]} kill(s)")
    finally:
        progress.close()
    return log


def drain_outbox(day: BusinessDay) -> int:
    """Run ``outbox send`` whenever the next pending message is due, until nothing is pending
    or DRAIN_SECONDS have passed (a killed sender's claim runs out only after
    caturactl.outbox.CLAIM_SECONDS, where the sender claims messages); the pending left."""
    app = App(load(day.root / "caturactl.toml"))
    give_up = time.monotonic() + DRAIN_SECONDS
    try:
        while True:
            with app.session() as s:
                pending = s.scalar(select(func.count()).where(OutboxMessage.status == "pending"))
                due = s.scalar(select(func.min(OutboxMessage.next_attempt_at)).where(OutboxMessage.status == "pending"))
            if not pending or time.monotonic() > give_up:
                return pending
            wait = (due - datetime.now(timezone.utc)).total_seconds() if due else 0
            if wait > 5:
                note(f"chaos: {pending} outbox message(s) pending, the first due in {wait:.0f}s")
            time.sleep(min(max(wait, 0) + 0.1, max(give_up - time.monotonic(), 0)))
            day.command("outbox", "send")
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
            folders = {target: files_at(root)[0] for target, root in (("warehouse", day.warehouse),
                                                                       ("fulfiller", day.sftp.root))}
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


def bookings_period(day: BusinessDay) -> tuple:
    stage = next(s for s in day.stages() if s.name == "bookings")
    args = list(stage.args)
    return (datetime.fromisoformat(args[args.index("--from") + 1]).date(),
            datetime.fromisoformat(args[args.index("--to") + 1]).date())


def outcome(day: BusinessDay) -> dict[str, object]:
    """The day's result in counts, for comparing two days."""
    app = App(load(day.root / "caturactl.toml"))
    try:
        with app.session() as s:
            date_from, date_to = bookings_period(day)
            return {
                "orders": dict(s.execute(select(Order._state, func.count()).group_by(Order._state)).all()),
                "deliveries": dict(s.execute(select(DeliveryNote._state, func.count())
                                             .group_by(DeliveryNote._state)).all()),
                "invoices": s.scalar(select(func.count()).select_from(Invoice)),
                "parcels_at_amazon": len(day.standin.shipments()),
                "uploads_at_amazon": len({(i["order_id"], i["invoice_number"]) for i in day.standin.invoices()}),
                "review_requests_at_amazon": len(day.standin.solicitations()),
                "settlements": s.scalar(select(func.count()).select_from(Settlement)),
                "bookings": len(exporting.entries(s, app.cfg, date_from, date_to)),
            }
    finally:
        app.dispose()


def files_at(root: Path) -> tuple[Counter, int]:
    """Names of the files that reached a location's inbox (read ones included), and how many
    temporary upload names were left behind."""
    names: Counter = Counter()
    temps = 0
    inbox = root / "in"
    for folder in (inbox, inbox / "done", inbox / "error"):
        if not folder.is_dir():
            continue
        for f in folder.iterdir():
            if not f.is_file():
                continue
            if f.name.startswith(".") or f.name.endswith((".part", ".tmp", ".filepart")):
                temps += f.name.endswith((".part", ".tmp", ".filepart"))
                continue
            names[f.name if folder == inbox else _SECOND_COPY.sub("", f.name)] += 1
    return names, temps


def twice(counter: Counter) -> list:
    return sorted(k for k, n in counter.items() if n > 1)


def verdict(problems: list[str]) -> str:
    return "ok" if not problems else "FAILED (" + "; ".join(problems) + ")"


def invariants(day: BusinessDay, expected: dict[str, object], log: KillLog) -> dict[str, str]:
    checks: dict[str, str] = {}
    standin = day.standin
    app = App(load(day.root / "caturactl.toml"))
    try:
        with app.session() as s:
            # Every Amazon order imported once.
            rows = s.execute(select(Order.external_id, func.count()).where(Order.channel == "amazon")
                             .group_by(Order.external_id)).all()
            ours, want = {e for e, _ in rows}, set(standin.order_ids())
            problems = []
            if dup := sorted(e for e, n in rows if n > 1):
                problems.append(f"{len(dup)} imported more than once, e.g. {dup[:3]}")
            if missing := sorted(want - ours):
                problems.append(f"{len(missing)} missing, e.g. {missing[:3]}")
            if extra := sorted(ours - want):
                problems.append(f"{len(extra)} unknown to Amazon, e.g. {extra[:3]}")
            checks["orders_imported_once"] = verdict(problems)

            # No file uploaded twice (and none lost).
            problems = []
            targets = {"warehouse": day.warehouse, "fulfiller": day.sftp.root}
            temps = 0
            for target, root in targets.items():
                names, left = files_at(root)
                temps += left
                if dup := twice(names):
                    problems.append(f"{target}: {len(dup)} file(s) arrived twice, e.g. {dup[:3]}")
                done = [shipping.file_from_payload(m.payload).name for m in s.scalars(
                    select(OutboxMessage).where(OutboxMessage.kind == shipping.UPLOAD, OutboxMessage.target == target,
                                                OutboxMessage.status == "done"))]
                if lost := sorted(set(done) - set(names)):
                    problems.append(f"{target}: {len(lost)} upload(s) marked done but not there, e.g. {lost[:3]}")
            if day.fulfilled.duplicates:
                problems.append(f"the locations read {day.fulfilled.duplicates} order(s) for a delivery they had")
            checks["files_uploaded_once"] = verdict(problems)
            checks["_temp_files_left"] = str(temps)

            # No e-mail sent twice.
            problems = []
            ids = Counter(str(m["Message-ID"]) for m in day.smtp.messages)
            subjects = Counter(str(m["Subject"]) for m in day.smtp.messages)
            if dup := twice(ids):
                problems.append(f"{len(dup)} Message-ID(s) received more than once, e.g. "
                                f"{[(d, ids[d]) for d in dup[:3]]}")
            if dup := twice(subjects):
                problems.append(f"{len(dup)} subject(s) received more than once, e.g. {dup[:3]}")
            checks["emails_sent_once"] = verdict(problems)

            # No shipment confirmation sent twice at Amazon.
            problems = []
            parcels = standin.shipments()
            if dup := twice(Counter((p["orderId"], p["packageReferenceId"]) for p in parcels)):
                problems.append(f"{len(dup)} package reference(s) confirmed twice, e.g. {dup[:3]}")
            if dup := twice(Counter((p["orderId"], p["trackingNumber"]) for p in parcels)):
                problems.append(f"{len(dup)} tracking number(s) confirmed twice, e.g. {dup[:3]}")
            checks["shipments_confirmed_once"] = verdict(problems)

            # No invoice uploaded twice.
            statuses: dict[tuple[str, str], list[str]] = {}
            for u in standin.invoices():
                statuses.setdefault((u["order_id"], u["invoice_number"]), []).append(u["status"])
            dup = [(k, v) for k, v in statuses.items() if len(v) > 1]
            checks["invoices_uploaded_once"] = verdict(
                [f"{len(dup)} invoice(s) uploaded more than once (order, number, Amazon's status of each upload), "
                 f"e.g. {[(*k, v) for k, v in dup[:3]]}"] if dup else [])

            # Invoice numbers gap-free.
            problems = []
            series: dict[tuple[str, int], list[int]] = {}
            for kind, prefix, year, seq in s.execute(select(Invoice.kind, Invoice.series, Invoice.year, Invoice.seq)):
                series.setdefault((prefix, year), []).append(seq)
            for (prefix, year), seqs in sorted(series.items()):
                if sorted(seqs) != list(range(1, len(seqs) + 1)):
                    gaps = sorted(set(range(1, max(seqs) + 1)) - set(seqs))
                    problems.append(f"{prefix}{year}: {len(seqs)} numbers up to {max(seqs)}, missing {gaps[:5]}, "
                                    f"twice {twice(Counter(seqs))[:5]}")
                last = s.scalar(select(InvoiceCounter.last).where(InvoiceCounter.series == prefix,
                                                                  InvoiceCounter.year == year))
                if last != max(seqs):
                    problems.append(f"{prefix}{year}: counter at {last}, highest number {max(seqs)}")
            numbers = Counter(s.scalars(select(Invoice.number)))
            if dup := twice(numbers):
                problems.append(f"numbers used twice: {dup[:3]}")
            checks["invoice_numbers_gap_free"] = verdict(problems)

            # The books balance.
            problems = []
            date_from, date_to = bookings_period(day)
            entries = exporting.entries(s, app.cfg, date_from, date_to)
            balance: Counter = Counter()
            for e in entries:
                if not (e.amount > 0 and e.debit and e.credit and e.debit != e.credit):
                    problems.append(f"booking {e.document} moves {e.amount} from {e.credit!r} to {e.debit!r}")
                balance[e.debit] += e.amount
                balance[e.credit] -= e.amount
            if sum(balance.values(), Decimal(0)) != 0:
                problems.append(f"debits and credits differ by {sum(balance.values(), Decimal(0))}")
            booked: Counter = Counter()
            for e in entries:
                booked[e.document] += e.amount
            for number, gross in s.execute(select(Invoice.number, Invoice.gross_total)
                                           .where(Invoice.issue_date >= date_from, Invoice.issue_date <= date_to)):
                if booked[number] != abs(gross):
                    problems.append(f"invoice {number}: gross {gross}, booked {booked[number]}")
            batches = s.scalars(select(ExportBatch).where(ExportBatch.kind == "bookings")).all()
            if len(batches) != 1:
                problems.append(f"{len(batches)} bookings exports recorded, expected 1")
            for b in batches:
                total = sum((e.amount for e in entries), Decimal(0))
                if b.rows != len(entries) or b.total != total:
                    problems.append(f"export {b.file_name}: {b.rows} rows / {b.total}, the books say "
                                    f"{len(entries)} / {total}")
                lines = (day.root / b.file_name).read_bytes().split(b"\r\n")
                written = len([ln for ln in lines if ln.strip()]) - 2  # the two DATEV header lines
                if written != len(entries):
                    problems.append(f"{b.file_name} holds {written} bookings, the books {len(entries)}")
            checks["books_balance"] = verdict(problems)

            # Review requests Amazon sent are recorded as sent.
            problems = []
            asked = Counter(r["order_id"] for r in standin.solicitations())
            if dup := twice(asked):
                problems.append(f"{len(dup)} order(s) asked twice, e.g. {dup[:3]}")
            status = dict(s.execute(select(Order.external_id, ReviewRequest.status)
                                    .join(ReviewRequest, ReviewRequest.order_id == Order.id)).all())
            wrong = sorted(o for o in asked if status.get(o) != "sent")
            if wrong:
                problems.append(f"{len(wrong)} sent by Amazon but recorded as "
                                f"{sorted(Counter(status.get(o, 'missing') for o in wrong).items())}, "
                                f"e.g. {wrong[:3]}")
            checks["review_requests_recorded"] = verdict(problems)
    finally:
        app.dispose()

    got = outcome(day)
    diff = [f"{k}: {got[k]} against {expected[k]}" for k in expected if got[k] != expected[k]]
    checks["_outcome"] = "same" if not diff else "differs (" + "; ".join(diff) + ")"
    checks["every_stage_completes"] = verdict([f"not done: {', '.join(log.not_completed)}"]
                                              if log.not_completed else [])
    return checks


# --- main -----------------------------------------------------------------------------------------


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kills", type=int, default=50)
    p.add_argument("--orders", type=int, default=300)
    p.add_argument("--seed", type=int, default=7, help="the kill delays' generator (the orders use --day-seed)")
    p.add_argument("--day-seed", type=int, default=1)
    p.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--rate-scale", type=float, default=50_000.0)
    p.add_argument("--keep", type=Path, help="keep both workspaces in this folder (default: a temporary one)")
    args = p.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="caturactl-chaos-"))
    base.mkdir(parents=True, exist_ok=True)

    server = None
    urls: dict[str, str | None] = {"uninterrupted": None, "chaos": None}
    if args.db == "postgres":
        server = PostgresServer()
        if not server.available:
            out("postgres", "not installed (initdb not found)")
            return 2
        server.start()
        urls = {name: create_database(server.url(), f"chaos_{name}") for name in urls}
    try:
        common = dict(orders=args.orders, seed=args.day_seed, rate_scale=args.rate_scale)
        note(f"uninterrupted day: {args.orders} orders")
        with BusinessDay(fresh_root(base, "uninterrupted"), database_url=urls["uninterrupted"], **common) as day:
            startup = startup_seconds(day)
            profiles = run_uninterrupted(day)
            expected = outcome(day)
        seconds = {name: p.seconds for name, p in profiles.items()}
        note(f"start-up {startup:.2f}s; the day's commands {sum(seconds.values()):.1f}s; now with {args.kills} kills")
        rng = random.Random(args.seed)
        with BusinessDay(fresh_root(base, "chaos"), database_url=urls["chaos"], **common) as day:
            t0 = time.perf_counter()
            log = run_with_chaos(day, args.kills, profiles, startup, rng)
            pending = drain_outbox(day)
            doubts = settle_doubts(day)
            if doubts[1]:
                pending = drain_outbox(day)
            found = found_by_asking(day)
            took = time.perf_counter() - t0
            checks = invariants(day, expected, log)
            if pending:
                checks["every_stage_completes"] = verdict(
                    ([checks["every_stage_completes"]] if checks["every_stage_completes"] != "ok" else [])
                    + [f"{pending} outbox message(s) still pending after {DRAIN_SECONDS}s of outbox send"])
    finally:
        if server is not None:
            server.stop()

    temps = checks.pop("_temp_files_left")
    same = checks.pop("_outcome")
    out("orders", args.orders)
    out("db", args.db)
    out("seed", args.seed)
    out("kills_planned", args.kills)
    out("kills", log.kills)
    out("kills_after_a_commit_of_the_run", log.after_progress)
    out("kills_before_its_first_commit", log.by_time)
    out("stages_killed_mid_run", sum(1 for n in log.by_stage.values() if n))
    out("command_stages", len(seconds))
    out("kills_by_stage", " ".join(f"{name}={log.by_stage[name]}" for name in seconds))
    out("finished_before_kill", log.finished_before_kill)
    out("reruns_after_kills", log.reruns)
    out("startup_seconds", f"{startup:.2f}")
    out("uninterrupted_seconds", f"{sum(seconds.values()):.1f}")
    out("chaos_seconds", f"{took:.1f}")
    out("temp_upload_files_left", temps)
    out("already_there_not_sent_again", found)
    out("in_doubt_found_arrived", doubts[0])
    out("in_doubt_sent_again", doubts[1])
    out("outcome_vs_uninterrupted", same)
    for name, result in checks.items():
        out(f"invariant_{name}", result)
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return 1 if any(v != "ok" for v in checks.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
