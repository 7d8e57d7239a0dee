"""Running jobs unattended: slots claimed in the database, leases, child processes, the daemon.

A *slot* is one due run of a job: (job, scheduled time). Claiming a slot inserts its row in
``job_runs``; the unique key (job, slot_at) decides between daemons, so on PostgreSQL any number
of daemons on any number of hosts run each slot once. The claim itself is serialised per job
(a transaction-scoped advisory lock on PostgreSQL, a file lock next to the database on SQLite)
so that two runners never both decide "nothing of this job is running, the 10:15 slot is due".

A claim holds for ``lease`` and is renewed while the job runs. When a runner dies its lease
runs out and the next runner takes the slot over (``attempt`` + 1) if it is still the newest
due one; an older abandoned slot is recorded as failed, because missed slots run once, not once
per missed slot: after downtime only the newest due slot runs.

Each run is a forked child process running the caturactl command, in its own process group, so
a job that hangs is stopped at its timeout (SIGTERM, then SIGKILL) and recorded as failed, and
dies with its daemon (PR_SET_PDEATHSIG) instead of running on unsupervised.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import re
import secrets
import signal
import socket
import sys
import tempfile
import time
import traceback
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable, Iterator

from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from caturactl.core import clock as clock_mod
from caturactl.core.clock import Clock
from caturactl.core.errors import ConflictError
from caturactl.core.lifecycle import move
from caturactl.jobs.spec import Job, JobsFile
from caturactl.jobs.models import FAILED, RUNNING, SUCCEEDED, JobRun

OUTPUT_TAIL = 8000
KILL_GRACE = 5.0  # real seconds between SIGTERM and SIGKILL
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


@dataclass
class Claim:
    id: int
    job: str
    slot_at: datetime
    attempt: int
    runner: str
    took_over: bool = False
    lock: object = None  # SQLite: the job's lock file, held while it runs

    def let_go(self) -> None:
        if self.lock is not None:
            self.lock.close()
            self.lock = None


@dataclass
class Outcome:
    state: str
    exit_code: int | None
    summary: str = ""
    output: str = ""
    error: str = ""


def runner_id(host: str) -> str:
    return f"{host}:{os.getpid()}:{secrets.token_hex(3)}"


class HeldElsewhere(str):
    """Why a slot was not claimed: another runner holds it, its lease good ``until``. The daemon
    looks again then, not only at its next sweep: a runner that died is taken over as soon as
    its lease runs out."""

    until: datetime

    def __new__(cls, text_: str, until: datetime) -> "HeldElsewhere":
        self = super().__new__(cls, text_)
        self.until = until
        return self


class Slots:
    """The database side of scheduling: claim, renew, finish, release, prune."""

    def __init__(self, app, *, lease: timedelta, host: str | None = None):
        self.app = app
        self.tz = app.cfg.tz
        self.lease = lease
        self.host = (host or socket.gethostname())[:100]
        self.runner = runner_id(self.host)
        self.postgres = app.engine.dialect.name == "postgresql"
        self.lock_path = None if self.postgres else _sqlite_lock_path(app.cfg.database.url)

    @contextmanager
    def _serialised(self, session: Session, job: str) -> Iterator[None]:
        """Only one claim decision per job at a time, across processes (and hosts on PostgreSQL)."""
        if self.postgres:
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_key(job)})
            yield
            return
        with open(self.lock_path, "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def claim(self, job: Job, now: datetime, *, manual: bool = False, command: str = "") -> tuple[Claim | None, str]:
        """Take the job's newest due slot (or, ``manual``, a slot at ``now``); returns the claim, or
        None and why not ("busy" / "done" / "not due")."""
        due = now if manual else job.schedule.latest(now, self.tz)
        lock = None
        if not self.postgres:
            lock = self._job_lock(job.name)
            if lock is None:
                return None, "busy: it runs on this host right now"
        claim, why = self._claim(job, now, due, manual, command, lock)
        if claim is None and lock is not None:
            lock.close()
        return claim, why

    def _job_lock(self, job: str):
        """SQLite (one host): the job's lock file, held by whoever runs the job and released by the
        system when that process ends, however it ends; None when someone holds it."""
        fh = open(f"{self.lock_path}.{job}", "a+b")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            return None
        return fh

    def _claim(self, job: Job, now: datetime, due: datetime, manual: bool, command: str,
               lock) -> tuple[Claim | None, str]:
        with self.app.session() as s, self._serialised(s, job.name):
            running = s.scalars(select(JobRun).where(JobRun.job == job.name, JobRun.state == RUNNING)
                                .order_by(JobRun.slot_at.desc())).all()
            # PostgreSQL: a runner is alive while it renews its lease. SQLite: while it holds the
            # job's lock file, which we now hold, so every run still marked running has ended.
            live = [r for r in running if r.lease_until > now] if lock is None else []
            if live:
                s.rollback()
                r = live[0]
                return None, HeldElsewhere(f"busy: the {self._local(r.slot_at)} run holds it on {r.host} "
                                           f"(pid {r.pid})", r.lease_until)
            gone = "stopped renewing its lease" if lock is None else "ended without finishing"
            taken = None
            for r in running:  # runners that died: their leases ran out
                if r.slot_at == due and not manual and taken is None:
                    taken = r
                    continue
                lost = f"lost: the runner on {r.host} (pid {r.pid}) {gone}; a newer slot runs instead"
                r.finished_at, r.error = now, _append(r.error, lost)
                move(s, r, FAILED, f"job {job.name}: {lost}")
            if taken is not None:
                taken.error = _append(taken.error, f"attempt {taken.attempt} on {taken.host} (pid {taken.pid}) "
                                                   f"{gone}; taken over")
                taken.attempt += 1
                taken.runner, taken.host, taken.pid = self.runner, self.host, os.getpid()
                taken.lease_until, taken.started_at = now + self._hold(job), now
                s.commit()
                return Claim(taken.id, job.name, taken.slot_at, taken.attempt, self.runner, True, lock), "taken over"
            if not manual:
                newest = s.scalar(select(JobRun.slot_at).where(JobRun.job == job.name)
                                  .order_by(JobRun.slot_at.desc()).limit(1))
                if newest is not None and newest >= due:
                    s.commit()  # keeps the 'lost' marks above
                    return None, f"done: the {self._local(due)} slot has run"
                if newest is None and now - due > first_run_grace(job, now, self.tz):
                    s.commit()  # a job never run before starts with its next slot, not yesterday's
                    return None, (f"not due: a new job starts with its next slot "
                                  f"({self._local(job.schedule.after(now, self.tz))}); --force runs it now")
            row = JobRun(job=job.name, slot_at=due, trigger="manual" if manual else "schedule", state=RUNNING,
                         attempt=1, runner=self.runner, host=self.host, pid=os.getpid(),
                         command=command or job.command, lease_until=now + self._hold(job), started_at=now)
            s.add(row)
            s.commit()
            return Claim(row.id, job.name, due, 1, self.runner, lock=lock), "claimed"

    def _hold(self, job: Job) -> timedelta:
        """How long a new claim holds: the lease, renewed while running (PostgreSQL); on SQLite,
        where the lock file tells who is alive and nothing is renewed, as long as the job may run."""
        return self.lease if self.postgres else job.timeout + self.lease

    def set_pid(self, claim: Claim, pid: int) -> None:
        with self.app.session() as s:
            s.execute(update(JobRun).where(JobRun.id == claim.id, JobRun.runner == claim.runner).values(pid=pid))
            s.commit()

    def renew(self, claim: Claim, now: datetime) -> bool:
        """Extend the lease; False when the slot is no longer ours (taken over). On SQLite nothing
        is written while a job runs: a write between a job's read and its write would fail the
        job's transaction ("database is locked"); the lock file says the runner is alive."""
        if not self.postgres:
            return True
        with self.app.session() as s:
            n = s.execute(update(JobRun).where(JobRun.id == claim.id, JobRun.runner == claim.runner,
                                               JobRun.state == RUNNING)
                          .values(lease_until=now + self.lease)).rowcount
            s.commit()
            return n == 1

    def finish(self, claim: Claim, job: Job, now: datetime, outcome: Outcome, *,
               alert_email: tuple[str, ...] = ()) -> bool:
        """Record the outcome; on failure open the job's ticket and/or queue its e-mail, on success
        close the ticket, all in one transaction. False when the slot was taken over meanwhile."""
        from caturactl.outbox.service import enqueue
        from caturactl.orders.triage import Hold, close_tickets_about, open_ticket
        from caturactl.orders.tickets import Ticket

        with self.app.session() as s:
            row = s.get(JobRun, claim.id)
            if row is None or row.runner != claim.runner or row.state != RUNNING:
                s.rollback()
                return False
            row.exit_code, row.finished_at = outcome.exit_code, now
            row.summary, row.output = outcome.summary[:300], outcome.output
            if outcome.error:
                row.error = _append(row.error, outcome.error)
            try:  # only while the slot is still ours: a runner may take it over after the read above
                move(s, row, outcome.state, f"job {job.name} {outcome.state}"
                     + ("" if outcome.state == SUCCEEDED else f": {outcome.error or f'exit code {outcome.exit_code}'}"),
                     also=(JobRun.runner == claim.runner,), exit_code=outcome.exit_code)
            except ConflictError:
                s.rollback()
                return False
            if outcome.state == SUCCEEDED:
                close_tickets_about(s, "job_failed", job.name, f"job {job.name} succeeded at {self._local(now)}")
            else:
                why = outcome.error or f"exit code {outcome.exit_code}"
                text_ = (f"job {job.name} failed ({why}) in the {self._local(claim.slot_at)} run: "
                         f"{outcome.summary or 'no output'}")
                if "ticket" in job.on_failure:
                    already = s.scalar(select(Ticket.id).where(Ticket.kind == "job_failed", Ticket.status == "open",
                                                               Ticket.external_ref == job.name[:100]))
                    if already is None:
                        open_ticket(s, "job_failed", [Hold("job_failed", text_)], external_ref=job.name)
                if "email" in job.on_failure and alert_email:
                    from caturactl.fulfilment.shipping import EMAIL
                    enqueue(s, f"{EMAIL}:job:{job.name}:{claim.slot_at.isoformat()}", EMAIL, "alert", {
                        "to": list(alert_email), "subject": f"caturactl: job {job.name} failed on {self.host}",
                        "body": f"{text_}\n\nLast output:\n{outcome.output[-2000:]}\n"})
            s.commit()
            return True

    def release(self, claim: Claim, now: datetime, why: str) -> None:
        """Give the slot up for another runner to take over at once (the daemon is stopping)."""
        with self.app.session() as s:
            row = s.get(JobRun, claim.id)
            if row is not None and row.runner == claim.runner and row.state == RUNNING:
                row.lease_until, row.error = now, _append(row.error, why)
            s.commit()
        claim.let_go()

    def prune(self, now: datetime, keep: timedelta) -> int:
        with self.app.session() as s:
            n = s.execute(delete(JobRun).where(JobRun.state != RUNNING,
                                               JobRun.finished_at < now - keep)).rowcount
            s.commit()
            return n

    def _local(self, t: datetime) -> str:
        return t.astimezone(self.tz).strftime("%Y-%m-%d %H:%M")


def first_run_grace(job: Job, now: datetime, tz) -> timedelta:
    """How late a job that has never run may still take its newest slot: the gap to the slot
    before it, at most an hour (so a new daily 02:00 job does not run at once when installed at noon, while an
    every-15-minutes job starts at once)."""
    due = job.schedule.latest(now, tz)
    return min(due - job.schedule.before(due, tz), timedelta(hours=1))


def _append(old: str, new: str) -> str:
    return f"{old}\n{new}" if old else new


def _lock_key(job: str) -> int:
    return zlib.crc32(("caturactl.jobs:" + job).encode())


def _sqlite_lock_path(url: str) -> Path:
    path = url.split("///", 1)[1] if "///" in url else ""
    if not path or ":memory:" in path:
        return Path(tempfile.gettempdir()) / f"caturactl-jobs-{os.getuid()}.lock"
    return Path(path + ".jobs.lock")


# --- child processes -------------------------------------------------------------------------

@dataclass
class Child:
    job: Job
    claim: Claim
    pid: int
    out: object  # the temporary file the child writes to
    deadline: datetime
    next_renew: float  # real time
    term_sent: float | None = None
    timed_out: bool = False
    lost: bool = False


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: killed when the daemon dies
    except (OSError, AttributeError):
        pass


def spawn(argv: list[str], env: dict[str, str], entry: Callable[[list[str]], int],
          after_fork: Callable[[], None] | None = None) -> tuple[int, object, int]:
    """Fork a child that runs ``entry(argv)`` with its output in a temporary file; returns (pid,
    file, go): the child waits until ``go`` (a pipe) gets one byte from ``start_child``."""
    out = tempfile.TemporaryFile()
    parent = os.getpid()
    go_r, go_w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        os.close(go_r)
        return pid, out, go_w
    code = 1
    try:  # the child: never returns into the daemon's code
        os.close(go_w)
        os.setsid()
        _die_with_parent()
        # Wait until the parent has recorded who we are; a parent gone before that means: do nothing.
        if os.read(go_r, 1) != b"1" or os.getppid() != parent:
            os._exit(1)
        os.close(go_r)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
        # Whatever sys.stdout was (a terminal, a test's capture), the command writes to the file.
        sys.stdout = open(1, "w", encoding="utf-8", errors="replace", buffering=1, closefd=False)
        sys.stderr = open(2, "w", encoding="utf-8", errors="replace", buffering=1, closefd=False)
        if after_fork:
            after_fork()
        os.environ.update(env)
        code = entry(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - reported in the run's output, not raised into the daemon
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code if isinstance(code, int) else 1)


def start_child(go: int) -> None:
    os.write(go, b"1")
    os.close(go)


def read_tail(out) -> tuple[str, str]:
    """(summary: the last line printed, output: the tail) of a child's output file."""
    out.seek(0, os.SEEK_END)
    size = out.tell()
    out.seek(max(0, size - OUTPUT_TAIL))
    raw = _ANSI.sub("", out.read().decode("utf-8", "replace")).replace("\r", "\n")
    lines = [ln.strip() for ln in raw.splitlines() if ln.strip()]
    return (lines[-1] if lines else ""), raw.strip()


# --- the loop --------------------------------------------------------------------------------

@dataclass
class Started:
    run_id: int
    job: str
    slot_at: datetime
    attempt: int
    took_over: bool


@dataclass
class Finished:
    run_id: int
    job: str
    slot_at: datetime
    state: str
    exit_code: int | None
    summary: str
    error: str


@dataclass
class Trouble:
    text: str


@dataclass
class Runner:
    """Claims due slots and supervises the children running them. ``tick`` does one round;
    ``Daemon`` calls it in a loop, ``jobs run`` once."""

    app: object
    jobs: JobsFile
    entry: Callable[[list[str]], int]
    clock: Clock = field(default_factory=clock_mod.current)
    host: str | None = None
    max_parallel: int | None = None
    config_path: str | None = None
    on_event: Callable[[object], None] = lambda e: None
    child_setup: Callable[[], None] | None = None  # run in each child before the command

    def __post_init__(self):
        self.slots = Slots(self.app, lease=self.jobs.settings.lease, host=self.host)
        self.children: dict[int, Child] = {}
        self.parallel = self.max_parallel or self.jobs.settings.max_parallel
        if not self.slots.postgres:
            self.parallel = 1  # SQLite has one writer at a time: jobs in parallel would fail each other
        self.stop_requested = ""  # why, when a signal asked to stop

    def running_jobs(self) -> set[str]:
        return {c.job.name for c in self.children.values()}

    def try_start(self, job: Job, *, manual: bool = False, now: datetime | None = None) -> str:
        """Claim and start the job's due slot (as of ``now``) if it is free; returns what happened."""
        if job.name in self.running_jobs():
            return "busy: running here"
        if len(self.children) >= self.parallel:
            return "busy: max_parallel reached"
        now = now or self.clock.now()
        claim, why = self.slots.claim(job, now, manual=manual)
        if claim is None:
            return why
        self._start(job, claim, now)
        return why

    def _start(self, job: Job, claim: Claim, now: datetime) -> None:
        slot_local = claim.slot_at.astimezone(self.slots.tz)
        argv = job.argv(slot_local.date())
        if self.config_path:
            argv = ["--config", self.config_path, *argv]
        env = {"CATURACTL_JOB": job.name, "CATURACTL_JOB_SLOT": slot_local.isoformat(timespec="minutes")}
        pid, out, go = spawn(argv, env, self.entry, after_fork=self._in_child)
        try:
            self.slots.set_pid(claim, pid)  # before the child starts: no write of ours crosses its work
        finally:
            start_child(go)
        self.children[pid] = Child(job, claim, pid, out, deadline=now + job.timeout,
                                   next_renew=time.monotonic())
        self.on_event(Started(claim.id, job.name, claim.slot_at, claim.attempt, claim.took_over))

    def _in_child(self) -> None:
        self.app.engine.dispose(close=False)  # the daemon's connections are not the child's to use
        if self.child_setup:
            self.child_setup()

    def supervise(self) -> None:
        """Reap finished children, renew leases, stop children past their timeout."""
        now = self.clock.now()
        for pid, child in list(self.children.items()):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                self._reaped(child, os.waitstatus_to_exitcode(status))
                continue
            if not child.timed_out and now >= child.deadline:
                child.timed_out = True
                self._signal(child, signal.SIGTERM)
            elif child.term_sent and time.monotonic() - child.term_sent > KILL_GRACE:
                self._signal(child, signal.SIGKILL)
            if time.monotonic() >= child.next_renew and not child.lost:
                lease_real = self.clock.real_seconds(self.slots.lease.total_seconds())
                child.next_renew = time.monotonic() + max(0.05, lease_real / 3)
                if not self.slots.renew(child.claim, now):
                    child.lost = True  # another runner took the slot over: stop ours
                    self._signal(child, signal.SIGTERM)

    def _signal(self, child: Child, sig: int) -> None:
        if sig == signal.SIGTERM and child.term_sent is None:
            child.term_sent = time.monotonic()
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            pass

    def _reaped(self, child: Child, code: int) -> None:
        del self.children[child.pid]
        summary, output = read_tail(child.out)
        child.out.close()
        now = self.clock.now()
        if child.lost:
            child.claim.let_go()
            self.on_event(Finished(child.claim.id, child.job.name, child.claim.slot_at, "lost", code, summary,
                                   "another runner took the slot over"))
            return
        if child.timed_out:
            from caturactl.jobs.spec import format_duration
            outcome = Outcome(FAILED, code, summary, output, f"timeout: stopped after {format_duration(child.job.timeout)}")
        elif code == 0:
            outcome = Outcome(SUCCEEDED, 0, summary, output)
        elif code < 0:
            outcome = Outcome(FAILED, code, summary, output, f"killed by signal {-code}")
        else:
            outcome = Outcome(FAILED, code, summary, output)
        recorded = self.slots.finish(child.claim, child.job, now, outcome, alert_email=self.jobs.settings.alert_email)
        child.claim.let_go()  # only now: until the outcome is stored, nobody may take the slot over
        self.on_event(Finished(child.claim.id, child.job.name, child.claim.slot_at, outcome.state if recorded else "lost",
                               code, summary, outcome.error if recorded else "another runner took the slot over"))

    def stop_children(self, why: str, wait: float = 10.0) -> None:
        """SIGTERM every child, wait up to ``wait`` real seconds, then give their slots up."""
        for child in self.children.values():
            self._signal(child, signal.SIGTERM)
        end = time.monotonic() + wait
        while self.children and time.monotonic() < end:
            for pid, child in list(self.children.items()):
                done, _ = os.waitpid(pid, os.WNOHANG)
                if done:
                    del self.children[pid]
                    child.out.close()
                    self.slots.release(child.claim, self.clock.now(), why)
            time.sleep(0.05)
        for pid, child in list(self.children.items()):
            self._signal(child, signal.SIGKILL)
            os.waitpid(pid, 0)
            del self.children[pid]
            child.out.close()
            self.slots.release(child.claim, self.clock.now(), why)

    def wait_all(self, poll: float = 0.05) -> None:
        """Supervise until every child is done, or until ``stop_requested`` is set (by a signal
        handler: handlers only set it, the loop does the stopping)."""
        while self.children:
            if self.stop_requested:
                self.stop_children(self.stop_requested)
                return
            self.supervise()
            if self.children:
                time.sleep(poll)


class Daemon:
    """The scheduler loop. The ``schedule`` library wakes it for the simple schedule forms (on
    the wall clock); cron expressions, and every job under a compressed clock, are timed with
    croniter. A slot another runner holds is looked at again when that runner's lease runs out.
    Every ``sweep`` all jobs are looked at anyway: slots missed while down, a slot that came due
    while the job was still running."""

    def __init__(self, runner: Runner, *, sweep: timedelta = timedelta(seconds=30),
                 prune_every: timedelta = timedelta(hours=1)):
        import schedule

        self.runner = runner
        self.clock = runner.clock
        self.tz = runner.slots.tz
        self.sweep = sweep
        self.prune_every = prune_every
        self.jobs = {n: j for n, j in runner.jobs.jobs.items() if j.enabled}
        self.stopping = False
        self._wanted: set[str] = set(self.jobs)  # the first round looks at every job
        self.scheduler = schedule.Scheduler()
        self._cron_next: dict[str, datetime] = {}
        self._held_until: dict[str, datetime] = {}  # slots another runner holds: look again then
        self._only: set[str] | None = None  # --once after its first round: the jobs still to start
        self._last_start: dict[str, float] = {}
        now = self.clock.now()
        for name, job in self.jobs.items():
            if not (self.clock.real and job.schedule.register(self.scheduler, self.tz,
                                                              lambda n=name: self._wanted.add(n))):
                self._cron_next[name] = job.schedule.after(now, self.tz)
        self._next_sweep = now + sweep
        self._next_prune = now

    def request_stop(self, *_args) -> None:
        self.stopping = True

    def run(self, *, until: datetime | None = None, once: bool = False) -> None:
        """Loop until asked to stop (SIGTERM/SIGINT), ``until`` on the clock, or after one round."""
        while not self.stopping:
            now = self.clock.now()
            if until is not None and now >= until:
                break
            self.round(now)
            if once:  # every due job once, one after another where only one may run at a time
                while (self._wanted or self.runner.children) and not self.stopping:
                    # Only what the first round found due and could not start yet: a job that
                    # ended as the minute turned is not started again for the new minute.
                    self._only = set(self._wanted)
                    time.sleep(0.05)
                    self.round(self.clock.now())
                break
            self._sleep()
        if self.stopping:
            self.runner.stop_children("interrupted: the daemon was stopped; another runner may take the slot over")
        else:
            self.runner.wait_all()

    def round(self, now: datetime) -> None:
        try:
            self._round(now)
        except (OperationalError, DBAPIError) as exc:  # the database is away: keep the children, try again
            first = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
            self.runner.on_event(Trouble(f"database error, trying again: {first}"))

    def _round(self, now: datetime) -> None:
        before = self.runner.running_jobs()
        self.runner.supervise()
        self._wanted |= before - self.runner.running_jobs()  # finished: a slot may have come due meanwhile
        if self.clock.real:
            self.scheduler.run_pending()
        for name, at in self._cron_next.items():
            if now >= at:
                self._wanted.add(name)
                self._cron_next[name] = self.jobs[name].schedule.after(now, self.tz)
        for name, until in list(self._held_until.items()):
            if now >= until:
                self._wanted.add(name)
                del self._held_until[name]
        if now >= self._next_sweep:
            self._wanted |= set(self.jobs)
            self._next_sweep = now + self.sweep
        # On SQLite the scheduler writes nothing while a job runs (the job holds the write lock).
        if now >= self._next_prune and (self.runner.slots.postgres or not self.runner.children):
            self.runner.slots.prune(now, self.runner.jobs.settings.keep_history)
            self._next_prune = now + self.prune_every
        if self._only is not None:
            self._wanted &= self._only
        # Longest-waiting first: a job slower than its interval must not starve the others.
        for name in sorted(self._wanted, key=lambda n: (self._last_start.get(n, 0.0), n)):
            why = self.runner.try_start(self.jobs[name], now=now)
            if isinstance(why, HeldElsewhere):
                self._held_until[name] = max(why.until, now + timedelta(seconds=1))
            if why != "busy: max_parallel reached":
                self._wanted.discard(name)
            if name in self.runner.running_jobs():
                self._last_start[name] = time.monotonic()

    def _sleep(self) -> None:
        now = self.clock.now()
        waits = [(self._next_sweep - now).total_seconds()]
        waits += [(t - now).total_seconds() for t in [*self._cron_next.values(), *self._held_until.values()]]
        if self.clock.real and self.scheduler.jobs:
            waits.append(self.scheduler.idle_seconds or 0)
        real = self.clock.real_seconds(max(0.0, min(waits)))
        if self.runner.children or self._wanted:
            real = min(real, 0.1)
        end = time.monotonic() + min(real, 1.0)
        while not self.stopping and time.monotonic() < end:
            time.sleep(min(0.05, max(0.0, end - time.monotonic())))
