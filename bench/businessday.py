"""A merchant's business day as a harness for benchmarks: a fresh workspace, the outside world
in this process, and the day as a list of stages, each a ``caturactl`` command line.

    with BusinessDay(Path("/tmp/day"), orders=300, database_url=None) as day:
        for stage in day.stages():
            code, seconds = day.run(stage)

``BusinessDay`` starts what ``make demo`` starts (standins/demo.py): the SP-API stand-in with
``orders`` Amazon orders placed over one day, an SFTP server for the fulfiller, FTPS and SMTP for
the dropship partner (order files go out by e-mail, confirmations come back over FTPS) and a
folder for the own warehouse. It writes ``caturactl.toml`` for them (``caturactl init``, then
the demo's settings with the database URL given, the rate scale and a short outbox backoff),
loads the catalogue and stock, and leaves the day to ``stages()``:

    import amazon, route, ship export, then ``rounds`` times (the clock moves 6 h, the three
    locations work, ship collect), outbox send, invoices create, (1 h later) invoices feeds,
    (inside the review window) reviews request, (Amazon closes a settlement) settlement fetch,
    export bookings --format datev.

A stage may start with a step of the outside world (``Stage.before``: the clock, the fulfillers,
Amazon closing a settlement), which ``prepare`` runs once however often the command is run; a
stage without a command is only such a step. Commands run as subprocesses in their own process
group (``popen``), so a benchmark can time them and a chaos test can kill them with their
worker processes.

One clock: the stand-in's clock is installed as the app's clock (``caturactl.core.clock``), so
every command runs with ``CATURACTL_CLOCK`` set to Amazon's now and every date it writes belongs
to the day played (the demo's Tuesday, 2026-11-24, unless ``day`` says otherwise), whatever the
real date is.

``JobsDay`` plays the day the other way, as ``make demo`` does: ``caturactl jobs daemon``
processes (several, sharing one PostgreSQL database, if asked) run a ``jobs.toml`` on a clock
that runs fast, while a thread of this process moves Amazon's clock after the app's and lets the
locations work every half hour. bench/chaos.py ``--runners`` kills those daemons;
tests/e2e/test_parallel_jobs.py checks what they leave.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, TextIO

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # ``standins`` lives in the source checkout, not in the package

from caturactl.core import clock  # noqa: E402
from caturactl.core.clock import RunningClock  # noqa: E402
from standins.amazon import AmazonStandin  # noqa: E402
from standins.demo import (DEMO_DAY, PARTNER_PASSWORD_ENV, configure, configure_fulfilment,  # noqa: E402
                           partner_reads_mail, write_stock)
from standins.fulfiller import FulfillerStandin, WorkReport  # noqa: E402
from standins.servers import FtpStandin, SftpStandin, SmtpStandin  # noqa: E402

PARTNER_PASSWORD = "bench"
ROUND_HOURS = 6
LOOK_BACK_DAYS = 15  # [amazon] first_import_days: the first import reaches the order day
REVIEW_DAY = 9  # days after the order day: inside every order's review window


def caturactl_command() -> list[str]:
    """The caturactl of this interpreter's environment (``.venv/bin/caturactl``), else ``-m``."""
    script = Path(sys.executable).parent / "caturactl"
    return [str(script)] if script.exists() else [sys.executable, "-m", "caturactl"]


@dataclass
class Stage:
    """One step of the day: a caturactl command line (``args``), preceded by what the outside
    world does first (``before``); exit codes in ``ok`` count as done."""

    name: str  # unique within the day: "import", "collect_2"
    group: str  # what a benchmark adds up: "collect"
    args: tuple[str, ...] = ()
    before: Callable[[], None] | None = None
    ok: frozenset[int] = frozenset({0})

    @property
    def is_command(self) -> bool:
        return bool(self.args)


@dataclass
class Fulfilled:
    """What the three locations did over the day (the fulfiller stand-ins' own record)."""

    reports: list[WorkReport] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        """Order files for a delivery the location already had: a file that arrived twice."""
        return sum(r.duplicates for r in self.reports)


class BusinessDay:
    """A workspace in ``root`` (created; must not exist or be empty) and the day's stand-ins."""

    def __init__(self, root: Path, *, orders: int = 10_000, database_url: str | None = None, seed: int = 1,
                 rate_scale: float = 50_000.0, rounds: int = 4, jobs: int = 2, day: date | None = None,
                 start: datetime | None = None, log_name: str = "day.log") -> None:
        """``start``: where Amazon's clock (and so the app's) starts; by default three hours after
        the day, when every order of the day is there (``JobsDay`` starts it in the morning)."""
        self.root = Path(root)
        self.orders, self.seed, self.rate_scale, self.rounds, self.jobs = orders, seed, rate_scale, rounds, jobs
        self.day = day or date.fromisoformat(DEMO_DAY)
        self.start_at = start
        self.database_url = database_url or f"sqlite:///{self.root / 'caturactl.db'}"
        self.log = self.root / log_name
        self.servers = self.root / "servers"
        self.warehouse = self.servers / "warehouse"
        self.fulfilled = Fulfilled()
        self.standin: AmazonStandin | None = None
        self.sftp: SftpStandin | None = None
        self.ftps: FtpStandin | None = None
        self.smtp: SmtpStandin | None = None
        self._prepared: set[str] = set()
        self._mails_seen: set[str] = set()
        self._players: list[FulfillerStandin] = []

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> "BusinessDay":
        """Start the stand-ins, write the configuration, create the database, load catalogue and stock."""
        if self.root.exists() and any(self.root.iterdir()):
            raise SystemExit(f"businessday: {self.root} is not empty")
        self.warehouse.mkdir(parents=True)
        self.standin = AmazonStandin(orders=self.orders, seed=self.seed, day=self.day,
                                     rate_scale=self.rate_scale, start=self.start_at).start()
        clock.install(self.standin.clock)  # one clock: the commands get it as CATURACTL_CLOCK
        self.sftp = SftpStandin(self.servers / "fulfiller-sftp").start()
        self.ftps = FtpStandin(self.servers / "partner-ftps", tls=True, password=PARTNER_PASSWORD).start()
        self.smtp = SmtpStandin().start()
        self._players = [
            FulfillerStandin(self.warehouse, seed=1, reply="csv", carrier="DHL", late_rate=0.05),
            FulfillerStandin(self.sftp.root, seed=2, reply="xml", carrier="DPD", partial_rate=0.15,
                             multi_parcel_rate=0.25, late_rate=0.2, broken_rate=0.03),
            FulfillerStandin(self.ftps.root, seed=3, reply="csv", carrier="GLS", late_rate=0.3)]
        self.setup_command("init", "--database-url", self.database_url)
        self.configure()
        (self.root / "products.csv").write_text(self.standin.catalogue_csv(), encoding="utf-8")
        self.setup_command("products", "import", "products.csv")
        self.write_stock()
        for code in ("WH", "FUL", "PARTNER"):
            self.setup_command("stock", "import", code, f"stock-{code}.csv")
        return self

    def stop(self) -> None:
        for server in (self.smtp, self.ftps, self.sftp, self.standin):
            if server is not None:
                server.stop()
        if self.standin is not None and clock.current() is self.standin.clock:
            clock.install(None)

    def __enter__(self) -> "BusinessDay":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the workspace ---------------------------------------------------------------------------

    def configure(self) -> None:
        """The demo's caturactl.toml (standins/demo.py configure + configure_fulfilment), written
        into this workspace, with this day's rate scale and a look-back that reaches the order day."""
        configure(self.standin, self.root, company="Gartenfreude Bench GmbH", rate_scale=self.rate_scale,
                  first_import_days=LOOK_BACK_DAYS)
        # The locations, transports and mail exactly as the demo has them.
        configure_fulfilment(self.sftp, self.ftps, self.smtp, self.warehouse, folder=self.root)

    def write_stock(self) -> None:
        """Stock files like the demo's, scaled so that the day's orders can all be routed."""
        skus = [p["sku"] for p in self.standin.catalogue()]
        write_stock(skus, self.root, extra=4 * self.orders // max(len(skus), 1))

    def env(self) -> dict[str, str]:
        """The commands' environment: no CATURACTL_* from outside but the app's clock (Amazon's,
        or a ``JobsDay``'s running one), and the partner's FTPS password."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("CATURACTL_") and k != "SP_API_DEFAULT_MARKETPLACE"}
        spec = getattr(clock.current(), "spec", lambda: None)()
        if spec:
            env[clock.ENV] = spec
        env[PARTNER_PASSWORD_ENV] = PARTNER_PASSWORD
        return env

    def setup_command(self, *args: str) -> None:
        """Run a set-up command to the end; SystemExit when it fails."""
        with self.log.open("a", encoding="utf-8") as log:
            log.write(f"\n$ caturactl {' '.join(args)}\n")
            log.flush()
            code = subprocess.run(caturactl_command() + list(args), cwd=self.root, env=self.env(),
                                  stdout=log, stderr=subprocess.STDOUT).returncode
        if code != 0:
            raise SystemExit(f"businessday: caturactl {' '.join(args)} exited {code} (see {self.log})")

    # --- the day ---------------------------------------------------------------------------------

    def stages(self) -> list[Stage]:
        """The day in order; see the module docstring."""
        out = [Stage("import", "import", ("import", "amazon")),
               Stage("route", "route", ("route",)),
               Stage("export", "export", ("ship", "export"))]
        for n in range(1, self.rounds + 1):
            out.append(Stage(f"fulfil_{n}", "fulfil", before=self.fulfil))
            # 65: a location's broken file was rejected whole (the fulfiller resends it next round)
            out.append(Stage(f"collect_{n}", "collect", ("ship", "collect"), ok=frozenset({0, 65})))
        out += [Stage("outbox", "outbox", ("outbox", "send")),
                Stage("invoices", "invoices", ("invoices", "create", "--jobs", str(self.jobs))),
                Stage("feeds", "feeds", ("invoices", "feeds"), before=lambda: self.standin.advance(timedelta(hours=1))),
                Stage("reviews", "reviews", ("reviews", "request"), before=self.into_review_window),
                Stage("settlement", "settlement", ("settlement", "fetch"),
                      before=lambda: self.standin.close_settlement(locale="DE")),
                Stage("bookings", "bookings", ("export", "bookings", "--format", "datev",
                                               "--from", (self.day - timedelta(days=1)).isoformat(),
                                               "--to", (self.day + timedelta(days=REVIEW_DAY + 14)).isoformat()))]
        return out

    def fulfil(self) -> None:
        """Six hours pass; the partner saves the new e-mails' order files; the locations work."""
        self.standin.advance(timedelta(hours=ROUND_HOURS))
        self.locations_work(self.standin.now())

    def locations_work(self, now: datetime) -> None:
        """The partner saves the new e-mails' order files; the three locations work at ``now``."""
        partner_reads_mail(self.smtp, self.ftps.root, self._mails_seen)
        self.fulfilled.reports += [p.work(now) for p in self._players]

    def into_review_window(self) -> None:
        """Amazon's clock moves to REVIEW_DAY days after the order day (never backwards)."""
        target = datetime.combine(self.day + timedelta(days=REVIEW_DAY), datetime.min.time(), timezone.utc)
        if target > self.standin.now():
            self.standin.advance(target - self.standin.now())

    def prepare(self, stage: Stage) -> None:
        """The outside world's step before ``stage``, once."""
        if stage.before is not None and stage.name not in self._prepared:
            self._prepared.add(stage.name)
            stage.before()

    def popen(self, stage: Stage) -> subprocess.Popen:
        """Start the stage's command in its own process group, output appended to the log."""
        with self.log.open("a", encoding="utf-8") as log:
            log.write(f"\n$ caturactl {' '.join(stage.args)}   # {stage.name}\n")
            log.flush()
            return subprocess.Popen(caturactl_command() + list(stage.args), cwd=self.root, env=self.env(),
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def run(self, stage: Stage) -> tuple[int, float]:
        """Prepare ``stage`` and run its command to the end: (exit code, wall seconds of the command)."""
        self.prepare(stage)
        if not stage.is_command:
            return 0, 0.0
        t0 = time.perf_counter()
        code = self.popen(stage).wait()
        return code, time.perf_counter() - t0

    def command(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        """Any other caturactl command in the workspace, output captured (for checks)."""
        return subprocess.run(caturactl_command() + list(args), cwd=self.root, env=self.env(),
                              capture_output=True, text=True, timeout=timeout)


class JobsDay:
    """``runners`` ``caturactl jobs daemon`` processes in ``root`` (its caturactl.toml and
    jobs.toml), sharing its database, on one clock that runs ``speed`` times fast from ``start``
    (all daemons wait for the same real instant, ``lead_seconds`` after ``start()``), each stopping
    at ``until``. Meanwhile a thread of this process plays the outside world: Amazon's clock
    follows the app's, ``work(now)`` runs every ``every`` of clock time (the locations answer their
    files), and each of ``events`` (clock time, step) once its time has come (Amazon closes a
    settlement). The running clock is the app's clock in this process while the day runs, and
    the stand-in's afterwards.

    Each daemon runs in its own process group, its output appended to ``root/runnerN.log``;
    ``kill(n)`` SIGKILLs daemon n and the jobs it runs (as a host that dies), ``restart(n)``
    starts it again on the same timeline."""

    def __init__(self, root: Path, standin: AmazonStandin, *, start: datetime, until: datetime, speed: float,
                 runners: int, work: Callable[[datetime], None], env: Callable[[], dict[str, str]],
                 every: timedelta = timedelta(minutes=30),
                 events: tuple[tuple[datetime, Callable[[], None]], ...] = (), tz=None,
                 lead_seconds: float = 3.0) -> None:
        from zoneinfo import ZoneInfo
        self.root, self.standin, self.work, self.base_env = Path(root), standin, work, env
        self.start_at, self.until, self.speed, self.every = start, until, speed, every
        self.tz = tz or ZoneInfo("Europe/Berlin")
        self.events = sorted(events, key=lambda e: e[0])
        self.lead_seconds = lead_seconds
        self.daemons: list[subprocess.Popen | None] = [None] * runners
        self.clock: RunningClock | None = None
        self.errors: list[BaseException] = []  # what the outside world's thread raised
        self.restarts = 0
        self._logs: list[TextIO | None] = [None] * runners
        self._stop = threading.Event()
        self._player: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> "JobsDay":
        """Install the running clock, start the daemons and the outside world's thread."""
        self.clock = RunningClock(self.start_at, speed=self.speed, epoch=time.time() + self.lead_seconds)
        clock.install(self.clock)
        for n in range(len(self.daemons)):
            self._spawn(n)
        self._player = threading.Thread(target=self._play, name="jobs-day-world", daemon=True)
        self._player.start()
        return self

    def real_seconds(self) -> float:
        """Real seconds the day takes from ``start()`` (the lead included)."""
        return self.lead_seconds + (self.until - self.start_at).total_seconds() / self.speed

    def wait(self, timeout: float) -> list[int | None]:
        """Wait until every daemon has stopped at ``until`` (or ``timeout`` real seconds have
        passed); their exit codes (None: still running). Raises what the world's thread raised."""
        end = time.monotonic() + timeout
        while time.monotonic() < end and any(d is not None and d.poll() is None for d in self.daemons):
            if self.errors:
                break
            time.sleep(0.1)
        if self.errors:
            raise self.errors[0]
        return [d.poll() if d is not None else None for d in self.daemons]

    def stop(self) -> None:
        """Stop what still runs (SIGTERM, then SIGKILL), the world's thread, and give the app's
        clock back to the stand-in, which stands where the running clock had taken it."""
        for n, d in enumerate(self.daemons):
            if d is not None and d.poll() is None:
                d.terminate()
                try:
                    d.wait(15)
                except subprocess.TimeoutExpired:
                    self.kill(n)
        self._stop.set()
        if self._player is not None:
            self._player.join(10)
        for log in self._logs:
            if log is not None:
                log.close()
        if self.clock is not None and clock.current() is self.clock:
            clock.install(self.standin.clock)

    def __enter__(self) -> "JobsDay":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the runners -----------------------------------------------------------------------------

    def pid(self, n: int) -> int | None:
        d = self.daemons[n]
        return d.pid if d is not None and d.poll() is None else None

    def jobs_of(self, n: int) -> list[int]:
        """The pids of the jobs daemon ``n`` runs right now (its child processes)."""
        pid = self.pid(n)
        if pid is None:
            return []
        try:
            return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:
            return []

    def kill(self, n: int) -> list[int]:
        """SIGKILL daemon ``n`` and every job it runs, at once; the jobs' pids."""
        d = self.daemons[n]
        if d is None:
            return []
        children = self.jobs_of(n)
        for group in [d.pid, *children]:  # each child leads its own process group
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass
        d.wait()
        return children

    def restart(self, n: int) -> None:
        """Start daemon ``n`` again (after ``kill``), on the same timeline."""
        if self.pid(n) is not None:
            raise RuntimeError(f"runner{n} still runs")
        self.restarts += 1
        self._spawn(n)

    def _spawn(self, n: int) -> None:
        if self._logs[n] is None:
            self._logs[n] = (self.root / f"runner{n}.log").open("a", encoding="utf-8")
        env = self.base_env()
        env[clock.ENV] = self.clock.spec()
        until = self.until.astimezone(self.tz).strftime("%Y-%m-%dT%H:%M:%S")
        self.daemons[n] = subprocess.Popen(caturactl_command() + ["jobs", "daemon", "--host", f"runner{n}",
                                                                  "--until", until],
                                           cwd=self.root, env=env, stdout=self._logs[n], stderr=subprocess.STDOUT,
                                           start_new_session=True)

    # --- the outside world -----------------------------------------------------------------------

    def _play(self) -> None:
        next_work = self.start_at + self.every
        events = list(self.events)
        try:
            while not self._stop.is_set():
                now = self.clock.now()
                if now > self.standin.now():  # Amazon follows the app's clock
                    self.standin.advance(now - self.standin.now())
                while events and now >= events[0][0]:
                    events.pop(0)[1]()
                if now >= next_work:
                    self.work(self.standin.now())
                    next_work += self.every
                time.sleep(0.05)  # not self._stop.wait(0.05): under libfaketime a timed wait overruns
        except BaseException as exc:  # surfaced by wait()
            self.errors.append(exc)


def create_database(server_url: str, name: str) -> str:
    """A new, empty PostgreSQL database ``name`` on the server of ``server_url``; its URL."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    url = make_url(server_url)
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            c.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def fresh_root(base: Path, name: str) -> Path:
    """``base/name``, emptied."""
    root = base / name
    if root.exists():
        shutil.rmtree(root)
    return root
