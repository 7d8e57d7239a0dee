"""Parallel runners on one PostgreSQL never do a thing twice (issue 13).

Two ways to make work overlap, each checked afterwards with the invariants bench/chaos.py checks
(bench/invariants.py), in the database and at the stand-ins:

- three ``caturactl jobs daemon`` processes share the database and run every job of a jobs.toml
  like the demo's over a business day on a compressed clock, while the Amazon stand-in follows
  that clock (orders arrive as it moves) and two locations answer their files every half hour;
- in rounds over a day on a clock that stands still, every command that claims work (import,
  route, export, send, collect, invoice) runs twice, both processes let go at the same instant.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bench.businessday import JobsDay
from bench.invariants import ConfirmCalls, World, check_all
from caturactl.jobs.models import JobRun
from caturactl.billing.models import Invoice
from caturactl.orders.models import Order
from standins.amazon import AmazonStandin
from standins.demo import DAY_SPEED, at
from standins.fulfiller import FulfillerStandin, WorkReport
from tests import fulfilment
from tests.conftest import DB_KIND, Workspace

pytestmark = [
    pytest.mark.postgres, pytest.mark.slow,
    pytest.mark.skipif(DB_KIND != "postgres", reason="SQLite runs one job at a time by design (one writer; the "
                                                     "daemon's max_parallel counts on PostgreSQL only): parallel "
                                                     "runners need PostgreSQL (TEST_DB=postgres)"),
]

ROOT = Path(__file__).resolve().parents[2]
DAY = date(2026, 11, 24)  # a Tuesday: the locations work
RUNNERS = 3
SPEED = DAY_SPEED  # the demo's: the eight hours in 29 s

# The demo's jobs (standins/demo.py DAY_JOBS), closer together so that the short day runs each often.
DAY_JOBS = [("import-amazon", "import amazon", "every 15 minutes"), ("route", "route", "every 15 minutes"),
            ("ship-export", "ship export", "every 15 minutes"), ("ship-collect", "ship collect", "every 15 minutes"),
            ("outbox-send", "outbox send", "every 10 minutes"), ("ship-overdue", "ship overdue", "every hour"),
            ("invoices-create", "invoices create", "every 30 minutes"),
            ("invoices-feeds", "invoices feeds", "every hour"), ("reviews-request", "reviews request", "every 2 hours"),
            ("settlement-fetch", "settlement fetch", "every 2 hours")]

# A command let go by the test: imported and ready first, so that two of them start their work
# at the same instant (a line on stdin), not whenever their interpreters happen to be ready.
LAUNCHER = textwrap.dedent("""\
    import sys
    from caturactl.cli import main
    import caturactl.app, caturactl.orders.importing, caturactl.billing.invoicing, caturactl.outbox.service, caturactl.fulfilment.routing
    import caturactl.fulfilment.shipping
    print("ready", flush=True)
    sys.stdin.readline()
    sys.exit(main(sys.argv[1:]))
    """)


class Locations:
    """The own warehouse (DHL CSV answers) and the fulfiller (XML, some deliveries in two goes and
    several parcels), each behind a folder transport without read_dirs, so that a file sent again
    after the location moved the first aside arrives again instead of being refused."""

    def __init__(self, base: Path) -> None:
        self.folders = {"wh": base / "wh", "ful": base / "ful"}
        for folder in self.folders.values():
            folder.mkdir()
        self.players = [FulfillerStandin(self.folders["wh"], seed=3, reply="csv", carrier="DHL", late_rate=0.1),
                        FulfillerStandin(self.folders["ful"], seed=4, reply="xml", carrier="DPD", partial_rate=0.2,
                                         multi_parcel_rate=0.25, late_rate=0.1)]
        self.reports: list[WorkReport] = []

    def config(self) -> str:
        return (fulfilment.carrier_section() + fulfilment.locations()
                + fulfilment.folder_transport("wh", self.folders["wh"])
                + fulfilment.folder_transport("ful", self.folders["ful"]))

    def work(self, now: datetime) -> None:
        self.reports += [p.work(now) for p in self.players]

    @property
    def read_twice(self) -> int:
        return sum(r.duplicates for r in self.reports)


def merchant(tmp_path: Path, database_url: str, standin: AmazonStandin, capsys, monkeypatch,
             stock: dict[str, int]) -> tuple[Workspace, Locations]:
    """A workspace on ``database_url`` with the company, both locations, the catalogue and stock
    (``stock``: pieces per SKU at WH, which has every other SKU, and at FUL, which has all)."""
    locations = Locations(tmp_path)
    ws = Workspace(tmp_path, database_url, standin, capsys, monkeypatch)
    ws.write_config(extra=locations.config(), company=fulfilment.COMPANY)
    ws.ok("db", "upgrade")
    ws.load_catalogue()
    skus = [p["sku"] for p in standin.catalogue()]
    ws.ok("stock", "import", "WH", str(fulfilment.stock_csv(tmp_path / "wh.csv", {s: stock["WH"] for s in skus[::2]})))
    ws.ok("stock", "import", "FUL", str(fulfilment.stock_csv(tmp_path / "ful.csv", {s: stock["FUL"] for s in skus})))
    return ws, locations


def command_env() -> dict[str, str]:
    """The test's environment (the stand-in's credentials, the app's clock) for caturactl processes."""
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def invariants(ws: Workspace, locations: Locations, calls: ConfirmCalls, *,
               day_over: bool = True) -> dict[str, list[str]]:
    app = ws.app()
    try:
        with app.session() as s:
            world = World(ws.standin, folders=locations.folders, read_twice=locations.read_twice,
                          confirm_calls=calls)
            return check_all(s, app.cfg, world, day_over=day_over)
    finally:
        app.dispose()


def broken(checks: dict[str, list[str]]) -> str:
    return "\n".join(f"{name}: {'; '.join(problems)}" for name, problems in checks.items() if problems)


def figures(ws: Workspace) -> dict[str, object]:
    app = ws.app()
    try:
        with app.session() as s:
            return {"orders": dict(s.execute(select(Order._state, func.count()).group_by(Order._state)).all()),
                    "invoices": s.scalar(select(func.count()).select_from(Invoice)),
                    "parcels_at_amazon": len(ws.standin.shipments()),
                    "uploads_at_amazon": len(ws.standin.invoices()),
                    "job_runs": dict(s.execute(select(JobRun.state, func.count()).group_by(JobRun.state)).all()),
                    "runs_per_runner": dict(s.execute(select(JobRun.host, func.count()).group_by(JobRun.host)).all()),
                    "taken_over": s.scalar(select(func.count()).where(JobRun.attempt > 1)),
                    "failed_runs": [f"{job}: exit {code}: {(error or summary)[:120]}" for job, code, error, summary in
                                    s.execute(select(JobRun.job, JobRun.exit_code, JobRun.error, JobRun.summary)
                                              .where(JobRun.state == "failed"))]}
    finally:
        app.dispose()


# --- three daemons, one day ------------------------------------------------------------------------


def test_three_daemons_running_a_days_jobs_in_parallel_never_do_a_thing_twice(tmp_path, database_url, capsys,
                                                                             monkeypatch):
    standin = AmazonStandin(orders=160, seed=5, day=DAY, rate_scale=2000.0, start=at(DAY, "05:30")).start()
    try:
        calls = ConfirmCalls(standin)
        ws, locations = merchant(tmp_path, database_url, standin, capsys, monkeypatch, {"WH": 25, "FUL": 12})
        (tmp_path / "jobs.toml").write_text(
            '[settings]\nlease = "10m"\nmax_parallel = 3\n'
            + "".join(f'\n[jobs.{name}]\ncommand = "{command}"\nschedule = "{schedule}"\ntimeout = "12h"\n'
                      for name, command, schedule in DAY_JOBS), encoding="utf-8")
        day = JobsDay(tmp_path, standin, start=at(DAY, "06:00"), until=at(DAY, "14:00"), speed=SPEED, runners=RUNNERS,
                      work=locations.work, env=command_env, lead_seconds=4.0,
                      events=((at(DAY, "11:30"), lambda: standin.close_settlement(locale="DE")),))
        with day:
            codes = day.wait(timeout=day.real_seconds() + 120)
        logs = {n: (tmp_path / f"runner{n}.log").read_text(encoding="utf-8")[-3000:] for n in range(RUNNERS)}
        assert codes == [0] * RUNNERS, f"the daemons exited {codes}: {logs}"
        # The evening: every order of the day is there; what Amazon changed meanwhile comes in too.
        standin.advance(at(DAY + timedelta(days=1), "03:00") - standin.now())
        ws.ok("import", "amazon")

        checks = invariants(ws, locations, calls)
        seen = figures(ws)
        print(f"\nthree daemons: {seen}; fulfilled by the locations: "
              f"{sum(r.orders_read for r in locations.reports)} deliveries read; confirmShipment calls "
              f"{sum(calls.calls.values())} for {len(calls.calls)} packages")
        assert not broken(checks), f"{broken(checks)}\nthe day: {seen}"
        # The day did the work it checks: invoices, parcels at Amazon, and runs on every runner.
        assert seen["invoices"] and seen["parcels_at_amazon"] and len(seen["runs_per_runner"]) == RUNNERS, seen
    finally:
        standin.stop()


# --- every claiming command twice, at the same instant -------------------------------------------------


class Together:
    """Runs caturactl commands side by side, let go at the same instant, and keeps what they said."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.said: list[tuple[str, int, dict | str, float]] = []  # command, exit code, answer, seconds

    def run(self, *commands: tuple[str, ...], ok: frozenset[int] = frozenset({0})) -> list[dict | str]:
        procs = [subprocess.Popen([sys.executable, "-c", LAUNCHER, "--config", str(self.ws.config), *args, "--json"],
                                  cwd=self.ws.path, env=command_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, start_new_session=True) for args in commands]
        try:
            for p, args in zip(procs, commands):
                if p.stdout.readline().strip() != "ready":
                    p.kill()
                    pytest.fail(f"caturactl {' '.join(args)} did not start: {p.communicate()[0][-2000:]}")
            t0 = time.monotonic()
            for p in procs:  # all now, as close together as a few writes go
                p.stdin.write("go\n")
                p.stdin.flush()
            outs, took = [], []
            for p in procs:
                outs.append(p.communicate(timeout=300)[0])
                took.append(time.monotonic() - t0)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
        answers = []
        for p, args, out, seconds in zip(procs, commands, outs, took):
            try:
                answer = json.loads(out[out.index("{"):])
            except ValueError:
                answer = out.strip()[-2000:]
            self.said.append((" ".join(args), p.returncode, answer, seconds))
            answers.append(answer)
            assert p.returncode in ok, f"caturactl {' '.join(args)} exited {p.returncode}: {answer}"
        return answers

    def work_split(self) -> list[str]:
        """Per run of two: what each did (routed, exported, parcels, invoices created/skipped), in
        the order they ran, with their seconds from the common start (the last ends, not speed)."""
        keys = {"route": ("routed",), "ship export": ("exported",), "ship collect": ("parcels",),
                "invoices create": ("created", "skipped"), "import amazon": ("fetched",)}
        out = []
        for i in range(0, len(self.said) - 1, 2):
            pair = self.said[i:i + 2]
            parts = []
            for args, _, answer, seconds in pair:
                got = [answer.get(k) for k in keys.get(args, ())] if isinstance(answer, dict) else ["?"]
                got = [len(g) if isinstance(g, list) else g for g in got]
                parts.append(f"{args}={'/'.join(str(g) for g in got)} ({seconds:.1f}s)")
            out.append(" | ".join(parts))
        return out


IMPORT, ROUTE, EXPORT, SEND = ("import", "amazon"), ("route",), ("ship", "export"), ("outbox", "send")
COLLECT, INVOICE = ("ship", "collect"), ("invoices", "create")
SENT = frozenset({0, 69})  # 69: something to retry later (a throttled call), which the next send does


def test_claiming_commands_run_side_by_side_at_the_same_instant_do_each_thing_once(tmp_path, database_url, capsys,
                                                                                   monkeypatch):
    """Stock is short, so that two routers compete for the same pieces; the locations answer
    right away, so that each round leaves orders for two invoicers. Export, collect and invoices
    create send what they queued themselves, so two of them also compete for the outbox. The
    import runs beside a router (as the import and route jobs do): orders Amazon cancelled
    meanwhile are cancelled while the router may hold them."""
    standin = AmazonStandin(orders=160, seed=6, day=DAY, rate_scale=2000.0, start=at(DAY, "05:30")).start()
    try:
        calls = ConfirmCalls(standin)
        ws, locations = merchant(tmp_path, database_url, standin, capsys, monkeypatch, {"WH": 6, "FUL": 6})
        for player in locations.players:
            player.late_rate = 0.0
        together = Together(ws)
        for n in range(1, 3):  # two rounds: the second meets what the first left
            standin.advance(timedelta(hours=9))  # the app's clock too: it is the stand-in's
            together.run(IMPORT, ROUTE)
            together.run(ROUTE, ROUTE)
            together.run(EXPORT, EXPORT, ok=SENT)
            standin.advance(timedelta(hours=1))
            locations.work(standin.now())
            together.run(COLLECT, COLLECT, ok=SENT)
            together.run(INVOICE, INVOICE, ok=SENT)
            checks = invariants(ws, locations, calls, day_over=False)
            assert not broken(checks), f"after round {n}:\n{broken(checks)}"
        # The next morning: every order of the day is there, and what Amazon changed meanwhile.
        standin.advance(at(DAY + timedelta(days=1), "03:00") - standin.now())
        together.run(IMPORT, ROUTE)
        checks = invariants(ws, locations, calls)
        assert not broken(checks), f"the next morning:\n{broken(checks)}"
        seen = figures(ws)
        print(f"\nside by side: {seen}; what each did: {together.work_split()}; exit codes "
              f"{sorted(Counter((a, c) for a, c, *_ in together.said).items())}")
        assert seen["invoices"] and seen["parcels_at_amazon"], seen
    finally:
        standin.stop()
