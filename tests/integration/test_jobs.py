"""jobs.toml, slots, the runner and the daemon: real child processes, real databases.

Daemons run as real processes (``python -m caturactl jobs daemon``) with a compressed clock,
so that an hour of schedule passes in seconds; they are killed with real signals.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from caturactl.core import clock
from caturactl.core.errors import ConfigError
from caturactl.jobs.spec import Schedule, fill, parse
from tests.conftest import DB_KIND, IN_CI

ROOT = Path(__file__).resolve().parents[2]
BERLIN = ZoneInfo("Europe/Berlin")


# --- jobs.toml ---------------------------------------------------------------------------------

def _jobs(text: str, check=None):
    import tomllib
    return parse(tomllib.loads(textwrap.dedent(text)), Path("jobs.toml"), check)


@pytest.mark.parametrize("body, where, says", [
    ('[jobs.a]\ncommand = "route"\nschedule = "every 7 minutes"\ntimeout = "5m"', "jobs.toml: jobs.a.schedule",
     "does not divide"),
    ('[jobs.a]\ncommand = "route"\nschedule = "sometimes"\ntimeout = "5m"', "jobs.toml: jobs.a.schedule",
     "not a schedule"),
    ('[jobs.a]\ncommand = "route"\nschedule = "daily at 25:00"\ntimeout = "5m"', "jobs.toml: jobs.a.schedule",
     "no such time"),
    ('[jobs.a]\ncommand = "route"\nschedule = "every hour"\ntimeout = "soon"', "jobs.toml: jobs.a.timeout",
     "not a duration"),
    ('[jobs.a]\ncommand = "route"\nschedule = "every hour"', "jobs.toml: jobs.a.timeout", "missing"),
    ('[jobs.a]\ncommand = "route"\nschedule = "every hour"\ntimeout = "5m"\nretries = 3', "jobs.toml: jobs.a.retries",
     "unknown key"),
    ('[jobs.a]\ncommand = "route {tomorrow}"\nschedule = "every hour"\ntimeout = "5m"', "jobs.toml: jobs.a.command",
     "unknown placeholder {tomorrow}"),
    ('[jobs.a]\ncommand = "jobs daemon"\nschedule = "every hour"\ntimeout = "5m"', "jobs.toml: jobs.a.command",
     "cannot be a job"),
    ('[jobs.a]\ncommand = "route"\nschedule = "every hour"\ntimeout = "5m"\non_failure = ["email"]',
     "jobs.toml: jobs.a.on_failure", "alert_email is empty"),
    ('[jobs.A]\ncommand = "route"\nschedule = "every hour"\ntimeout = "5m"', "jobs.toml: jobs.A", "lower-case"),
    ('[settings]\nlease = "1s"\n', "jobs.toml: settings.lease", "under 3 seconds"),
    ('[settings]\nmax_parallel = 0\n', "jobs.toml: settings.max_parallel", "1 to 32"),
])
def test_a_bad_jobs_file_names_file_job_and_key(body, where, says):
    with pytest.raises(ConfigError) as e:
        _jobs(body)
    assert e.value.where == where and says in e.value.message


def test_commands_are_checked_against_the_real_cli():
    from caturactl.cli.jobs import check_command
    assert check_command(["import", "amazon", "--max-minutes", "12"]) is None
    assert "no such command: caturactl import ebay" in check_command(["import", "ebay"])
    assert "No such option" in check_command(["route", "--fast"])
    assert "needs a command" in check_command(["invoices"])
    with pytest.raises(ConfigError) as e:
        _jobs('[jobs.x]\ncommand = "ship exprot"\nschedule = "every hour"\ntimeout = "5m"', check_command)
    assert e.value.where == "jobs.toml: jobs.x.command" and "no such command: caturactl ship exprot" in e.value.message


def test_the_example_jobs_files_load_and_every_command_parses():
    from caturactl.cli.jobs import check_command
    from caturactl.jobs.spec import load
    for path in (ROOT / "jobs.toml", ROOT / "templates" / "config" / "jobs.toml"):
        spec = load(path, check_command)
        assert {"import-amazon", "route", "ship-export", "ship-collect", "outbox-send", "invoices-create"} <= set(spec.jobs)


def test_placeholders_come_from_the_slot_date():
    from datetime import date
    assert fill("--from={prev_month_start}", date(2026, 3, 15)) == "--from=2026-02-01"
    assert fill("{prev_month_end}", date(2026, 3, 1)) == "2026-02-28"
    assert fill("{yesterday}/{today}/{month_start}", date(2026, 1, 1)) == "2025-12-31/2026-01-01/2026-01-01"


@pytest.mark.parametrize("text, cron", [("every 15 minutes", "*/15 * * * *"), ("every minute", "* * * * *"),
                                        ("every hour", "0 * * * *"), ("every 2 hours", "0 */2 * * *"),
                                        ("daily at 02:00", "0 2 * * *"), ("weekdays at 6:30", "30 6 * * 1-5"),
                                        ("*/10 6-22 * * *", "*/10 6-22 * * *")])
def test_each_schedule_form_has_its_exact_cron(text, cron):
    assert Schedule.parse(text, "x").cron == cron


@pytest.mark.parametrize("text", ["every 15 minutes", "every hour", "every 2 hours", "daily at 02:00",
                                  "weekdays at 06:30"])
def test_the_schedule_library_wakes_at_the_slot_times(text):
    """The daemon is woken by the ``schedule`` library; the slots come from the cron form. Both must agree."""
    import schedule
    s = Schedule.parse(text, "x")
    for _ in range(3):  # a minute may turn between the two readings of the clock
        before = s.after(clock.now(), BERLIN)
        sch = schedule.Scheduler()
        assert s.register(sch, BERLIN, lambda: None) > 0
        first = min(j.next_run for j in sch.jobs)  # naive, the machine's local time
        after = s.after(clock.now(), BERLIN)
        if before == after:
            break
    assert first == before.astimezone().replace(tzinfo=None)


def test_latest_slot_counts_the_exact_minute_and_collapses_missed_ones():
    s = Schedule.parse("every 15 minutes", "x")
    at = datetime(2026, 11, 25, 10, 15, tzinfo=BERLIN)
    assert s.latest(at, BERLIN) == at
    assert s.latest(at + timedelta(hours=5, minutes=14), BERLIN) == at + timedelta(hours=5)
    assert s.between(at, at + timedelta(hours=1), BERLIN) == [at + timedelta(minutes=15 * i) for i in range(4)]


@pytest.mark.parametrize("text", ["every 15 minutes", "every 2 hours", "daily at 02:30", "weekdays at 06:30",
                                  "*/10 6-22 * * *", "5 8,17 * * 1-5", "0 3 1 * *"])
def test_systemd_calendar_gives_the_same_times_as_the_schedule(text):
    """``systemd-analyze calendar`` is systemd's own parser: our OnCalendar= must mean the same times,
    across the spring DST change in Berlin."""
    exe = shutil.which("systemd-analyze")
    if exe is None:
        if IN_CI:
            pytest.fail("systemd-analyze is missing: .ci/run installs systemd")
        pytest.skip("systemd-analyze is not installed here")
    s = Schedule.parse(text, "x")
    start = datetime(2027, 3, 27, 20, 0, tzinfo=timezone.utc)  # the night before summer time starts
    out = subprocess.run([exe, "calendar", "--iterations=12", f"--base-time=@{int(start.timestamp())}",
                          f"{s.on_calendar()} Europe/Berlin"], capture_output=True, text=True,
                         env={**os.environ, "TZ": "UTC"})
    assert out.returncode == 0, out.stderr
    got = [datetime.strptime(" ".join(line.split()[-3:-1]), "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
           for line in out.stdout.splitlines() if "Next elapse:" in line or "Iter. #" in line]
    want = [t.astimezone(timezone.utc) for t in s.between(start + timedelta(seconds=1), got[-1] + timedelta(seconds=1),
                                                              BERLIN)]
    # The one known difference: a local time the spring change skips (02:00-02:59 on 28 March)
    # croniter runs at 03:00, systemd not at all. Either way 'jobs run' takes the newest due slot.
    skipped = {datetime(2027, 3, 28, 1, m, tzinfo=timezone.utc) for m in range(60)}
    assert set(want) ^ set(got) <= skipped
    assert [t for t in want if t not in skipped] == [t for t in got if t not in skipped] and len(got) == 12


# --- jobs run, history, export --------------------------------------------------------------------

def _write_jobs(ws, body: str) -> None:
    (ws.path / "jobs.toml").write_text(textwrap.dedent(body), encoding="utf-8")


def _runs(ws):
    from caturactl.jobs.models import JobRun
    app = ws.app()
    try:
        with app.session() as s:
            return list(s.scalars(select(JobRun).order_by(JobRun.slot_at, JobRun.id)))
    finally:
        app.dispose()


def test_jobs_run_takes_the_due_slot_once_and_records_it(bare_workspace):
    ws = bare_workspace
    _write_jobs(ws, """
        [jobs.tickets]
        command = "tickets list --json"
        schedule = "every hour"
        timeout = "1m"
        """)
    r = ws.run("jobs", "run", "tickets")
    assert r.code == 0 and "job tickets: succeeded" in r.out and "[]" in r.out
    r = ws.run("jobs", "run", "tickets")
    assert r.code == 0 and "nothing to run (done" in r.out
    assert ws.run("jobs", "run", "tickets", "--force").code == 0
    runs = _runs(ws)
    assert [(x.trigger, x.state, x.exit_code, x.attempt) for x in runs] == [
        ("schedule", "succeeded", 0, 1), ("manual", "succeeded", 0, 1)]
    assert runs[0].slot_at == Schedule.parse("every hour", "x").latest(clock.now(), BERLIN)
    assert runs[0].summary == "[]" and runs[0].output == "[]"
    rows = json.loads(ws.ok("jobs", "history", "--json"))
    from caturactl.cli.jobs import HISTORY_COLUMNS, JOB_COLUMNS
    assert [list(r) for r in rows] == [[c.key for c in HISTORY_COLUMNS]] * 2
    listed = json.loads(ws.ok("jobs", "list", "--json"))
    assert [list(r) for r in listed] == [[c.key for c in JOB_COLUMNS]]
    assert listed[0]["last_result"] == "succeeded" and listed[0]["next_run"]
    shown = json.loads(ws.ok("jobs", "show", str(runs[0].id), "--json"))
    assert shown["command"] == "tickets list --json" and shown["host"] == socket.gethostname()[:100]


def test_jobs_run_dry_run_runs_the_command_dry_and_records_nothing(bare_workspace):
    ws = bare_workspace
    _write_jobs(ws, """
        [jobs.outbox]
        command = "outbox send"
        schedule = "every 15 minutes"
        timeout = "5m"
        [jobs.tickets]
        command = "tickets list"
        schedule = "every 15 minutes"
        timeout = "5m"
        """)
    r = ws.run("jobs", "run", "outbox", "--dry-run")
    assert r.code == 0 and "running: caturactl outbox send --dry-run" in r.out
    assert "outbox send: DRY RUN, nothing stored or sent: 0 message(s) due" in r.out
    r = ws.run("jobs", "run", "tickets", "--dry-run")
    assert r.code == 0 and "would run: caturactl tickets list" in r.out
    assert _runs(ws) == []


def test_a_failing_job_keeps_its_exit_code_opens_one_ticket_and_mails_and_success_closes_it(bare_workspace):
    from caturactl.outbox.models import OutboxMessage
    from caturactl.orders.tickets import Ticket
    ws = bare_workspace
    failing = """
        [settings]
        alert_email = ["ops@example.com"]
        [jobs.probe]
        command = "orders show 999-0000000-0000000"
        schedule = "every minute"
        timeout = "1m"
        on_failure = ["ticket", "email"]
        """
    _write_jobs(ws, failing)
    r = ws.run("jobs", "run", "probe")
    assert r.code == 66 and "no order '999-0000000-0000000'" in r.out and "job probe: failed" in r.err
    assert ws.run("jobs", "run", "probe", "--force").code == 66
    app = ws.app()
    with app.session() as s:
        tickets = s.scalars(select(Ticket).where(Ticket.kind == "job_failed")).all()
        mails = s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "email")).all()
    assert len(tickets) == 1 and tickets[0].status == "open" and tickets[0].external_ref == "probe"
    assert "no order" in tickets[0].text
    assert len(mails) == 2 and mails[0].payload["to"] == ["ops@example.com"]
    assert "job probe failed" in mails[0].payload["subject"] and "no order" in mails[0].payload["body"]
    _write_jobs(ws, failing.replace("orders show 999-0000000-0000000", "tickets list"))
    assert ws.run("jobs", "run", "probe", "--force").code == 0
    with app.session() as s:
        assert s.scalar(select(Ticket.status).where(Ticket.kind == "job_failed")) == "resolved"
    app.dispose()
    assert [r.state for r in _runs(ws)] == ["failed", "failed", "succeeded"]


class BlackHole:
    """A server that accepts connections and never answers: a remote side that hangs."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(50)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def close(self):
        self.sock.close()


def test_a_job_that_hangs_is_stopped_at_its_timeout_and_recorded_as_failed(bare_workspace):
    ws = bare_workspace
    hole = BlackHole()
    try:
        ws.write_config(amazon_extra="", extra="")
        text = ws.config.read_text().replace("http://127.0.0.1:9/auth", hole.url + "/auth") \
            .replace('endpoint = "http://127.0.0.1:9"', f'endpoint = "{hole.url}"') \
            .replace("timeout_seconds = 5", "timeout_seconds = 600")
        ws.config.write_text(text)
        _write_jobs(ws, """
            [jobs.import]
            command = "import amazon"
            schedule = "every hour"
            timeout = "2s"
            """)
        t0 = time.monotonic()
        r = ws.run("jobs", "run", "import")
        took = time.monotonic() - t0
    finally:
        hole.close()
    assert r.code != 0 and "timeout: stopped after 2s" in r.err
    assert took < 30  # it would otherwise wait for the 600 s socket timeout
    [run] = _runs(ws)
    assert run.state == "failed" and "timeout: stopped after 2s" in run.error and run.exit_code < 0
    with pytest.raises(ProcessLookupError):
        os.kill(run.pid, 0)  # the child is gone, not left running


def test_jobs_export_writes_units_and_crontab_that_call_jobs_run(bare_workspace):
    ws = bare_workspace
    _write_jobs(ws, """
        [jobs.route]
        command = "route"
        schedule = "every 15 minutes"
        timeout = "10m"
        [jobs.datev]
        command = "export bookings --from {prev_month_start} --to {prev_month_end} --format datev"
        schedule = "0 3 2 * *"
        timeout = "30m"
        [jobs.off]
        command = "route"
        schedule = "every hour"
        timeout = "10m"
        enabled = false
        """)
    ws.ok("jobs", "export", "--systemd", "units", "--user", "shop")
    files = sorted(p.name for p in (ws.path / "units").iterdir())
    assert files == ["caturactl-datev.service", "caturactl-datev.timer", "caturactl-route.service",
                     "caturactl-route.timer"]
    service = (ws.path / "units" / "caturactl-route.service").read_text()
    assert f"--config {ws.config} jobs run route" in service and "User=shop" in service
    assert "TimeoutStartSec=660" in service and "Type=oneshot" in service
    timer = (ws.path / "units" / "caturactl-datev.timer").read_text()
    assert "OnCalendar=*-*-02 03:00:00 Europe/Berlin" in timer and "Persistent=true" in timer
    cron = ws.ok("jobs", "export", "--cron")
    lines = [ln for ln in cron.splitlines() if not ln.startswith("#")]
    assert lines[0] == "CRON_TZ=Europe/Berlin"
    assert lines[1].startswith("*/15 * * * * cd ") and lines[1].split("  #")[0].endswith("jobs run route")
    assert lines[2].startswith("0 3 2 * * ") and len(lines) == 3
    assert ws.run("jobs", "export").code == 65


# --- the daemon ----------------------------------------------------------------------------------

def _daemon(ws, *args: str, host: str, at: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if at:
        env[clock.ENV] = at
    return subprocess.Popen([sys.executable, "-m", "caturactl", "--config", str(ws.config), "jobs", "daemon",
                             "--host", host, *args], cwd=ws.path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _clock(start: str, speed: float, epoch: float) -> str:
    """CATURACTL_CLOCK for a daemon: ``start`` in Berlin winter time, ``speed`` times fast from ``epoch``."""
    return f"{start}+01:00 x{speed:g} @{epoch!r}"


def _finish(p: subprocess.Popen, timeout: float = 120) -> str:
    out, _ = p.communicate(timeout=timeout)
    assert p.returncode == 0, out
    return out


@pytest.mark.slow
def test_the_daemon_runs_every_slot_once_and_missed_slots_once(bare_workspace):
    ws = bare_workspace
    _write_jobs(ws, """
        [jobs.a]
        command = "tickets list --json"
        schedule = "every minute"
        timeout = "1m"
        [jobs.b]
        command = "products list --json"
        schedule = "every 5 minutes"
        timeout = "1m"
        """)
    # The clock shows 06:00 six real seconds from now: a daemon that takes long to start on a
    # busy machine (three workers on two cores) still sees the 06:00 slot come due.
    epoch = time.time() + 6
    out = _finish(_daemon(ws, "--until", "2026-11-25T06:12", at=_clock("2026-11-25T06:00", 60, epoch), host="one"))
    assert "start  a [2026-11-25 06:00]" in out
    runs = _runs(ws)
    local = [(r.job, r.slot_at.astimezone(BERLIN).strftime("%H:%M")) for r in runs]
    assert sorted(x for x in local if x[0] == "a") == [("a", f"06:{m:02d}") for m in range(12)]
    assert sorted(x for x in local if x[0] == "b") == [("b", "06:00"), ("b", "06:05"), ("b", "06:10")]
    assert all(r.state == "succeeded" and r.attempt == 1 and r.host == "one" for r in runs)
    assert all(r.output == "[]" for r in runs)
    # Down from 06:12 to 09:00: the 168 missed slots of 'a' run once, as the 09:00 one.
    # At real speed and --once: however slow the machine, no later slot comes due meanwhile.
    _finish(_daemon(ws, "--once", at=_clock("2026-11-25T09:00", 1, time.time() + 1.5), host="two"))
    later = [r for r in _runs(ws) if r.host == "two"]
    assert sorted((r.job, r.slot_at.astimezone(BERLIN).strftime("%H:%M")) for r in later) == [
        ("a", "09:00"), ("b", "09:00")]


def _wait_for(predicate, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_a_killed_daemons_slot_is_taken_over_after_its_lease(workspace):
    """Daemon one hangs in the job (Amazon does not answer) and is killed with SIGKILL; its child
    dies with it. Daemon two takes the slot over (on PostgreSQL once the lease has run out, on
    SQLite as soon as the dead daemon's lock file is free) and finishes it."""
    ws = workspace
    hole = BlackHole()
    good = ws.config.read_text()
    ws.config.write_text(good.replace(f'endpoint = "{ws.standin.url}"', f'endpoint = "{hole.url}"')
                         .replace("timeout_seconds = 5", "timeout_seconds = 600"))
    _write_jobs(ws, """
        [settings]
        lease = "4s"
        [jobs.import]
        command = "import amazon"
        schedule = "daily at 02:00"
        timeout = "10m"
        """)
    at = _clock("2026-11-25T02:00:30", 1, time.time())  # both daemons see the same time
    one = _daemon(ws, at=at, host="one")
    try:
        run = _wait_for(lambda: next(iter(_runs(ws)), None), 60, "daemon one to claim the slot")
        child = _wait_for(lambda: next((r.pid for r in _runs(ws) if r.pid != one.pid), None), 30,
                          "the child's pid")
        killed_at = time.monotonic()
        one.kill()
        one.wait(10)
    finally:
        hole.close()
    _wait_for(lambda: not _alive(child), 10, "the orphaned child to die with its daemon")
    ws.config.write_text(good)  # Amazon answers again
    two = _daemon(ws, at=at, host="two")
    try:
        done = _wait_for(lambda: next((r for r in _runs(ws) if r.state != "running"), None), 90,
                         "daemon two to finish the slot")
        taken_after = time.monotonic() - killed_at
    finally:
        two.send_signal(signal.SIGTERM)
        out = _finish(two, 30)
    [row] = _runs(ws)
    assert row.id == run.id and row.slot_at == run.slot_at
    assert done.state == "succeeded" and row.attempt == 2 and row.host == "two"
    assert "attempt 1 on one" in row.error and "taken over" in row.error
    if DB_KIND == "postgres":
        assert taken_after >= 3  # not before the 4 s lease ran out (less the moments before the kill)
        # ...and when it ran out, not at daemon two's next sweep of every job, 30 s on.
        assert taken_after < 25, taken_after
    # On SQLite (one host) the killed daemon's lock file is released with it: taken over at once.
    assert "taken over" in out and row.summary.startswith("import amazon: 250 fetched"), row.output


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead too
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(DB_KIND != "postgres", reason="several hosts share one database only on PostgreSQL")
def test_four_daemons_on_postgresql_run_each_of_96_slots_exactly_once(bare_workspace):
    ws = bare_workspace
    n_jobs, minutes = 8, 12
    jobs = "".join(f"""
        [jobs.j{i:02d}]
        command = "tickets list --help"
        schedule = "every minute"
        timeout = "1m"
        """ for i in range(n_jobs))
    _write_jobs(ws, "[settings]\nmax_parallel = 4\n" + textwrap.dedent(jobs))
    epoch = time.time() + 12  # all four have started (imports take seconds on a busy machine) and wait for it
    # A minute of schedule every 2.5 s: room for 8 runs (a process start each) even on a 2-core
    # machine whose other core runs another test. A daemon that fell more than a minute behind
    # would skip slots (missed slots run once, as the newest). 8 jobs for 12 minutes: 96 slots,
    # each raced by four hosts (it was 240 slots; each run is a process start, and the suite's time
    # on 2 cores counts them).
    daemons = [_daemon(ws, "--until", f"2026-11-25T06:{minutes}", at=_clock("2026-11-25T06:00", 24, epoch),
                       host=f"host{n}") for n in range(4)]
    outs = [_finish(d, 300) for d in daemons]
    runs = _runs(ws)
    slots = sorted((r.job, r.slot_at) for r in runs)
    assert len(set(slots)) == len(slots)  # the unique key: a slot is one row
    expected = sorted((f"j{i:02d}", datetime(2026, 11, 25, 6, m, tzinfo=BERLIN))
                      for i in range(n_jobs) for m in range(minutes))
    missing = sorted(set(expected) - set(slots))
    assert not missing, f"{len(missing)} slots skipped: the daemons fell behind, e.g. {missing[:3]}"
    assert slots == expected
    assert all(r.state == "succeeded" and r.attempt == 1 and "Usage: caturactl tickets list" in r.output
               for r in runs)
    started = sum(o.count(" start ") for o in outs)
    assert started == n_jobs * minutes  # no daemon started a slot another one had
    hosts = {r.host for r in runs}
    assert len(hosts) >= 2, hosts  # they really raced


def test_a_new_daily_job_starts_with_its_next_slot_not_with_this_mornings(bare_workspace):
    ws = bare_workspace
    earlier = (clock.now().astimezone(BERLIN) - timedelta(hours=2)).strftime("%H:%M")
    _write_jobs(ws, f"""
        [jobs.daily]
        command = "tickets list"
        schedule = "daily at {earlier}"
        timeout = "1m"
        """)
    r = ws.run("jobs", "run", "daily")
    assert r.code == 0 and "not due: a new job starts with its next slot" in r.out and _runs(ws) == []
    assert ws.run("jobs", "run", "daily", "--force").code == 0
    assert [x.trigger for x in _runs(ws)] == ["manual"]


def test_alerts_name_a_failed_job_and_jobs_that_stopped_running(bare_workspace):
    ws = bare_workspace
    _write_jobs(ws, """
        [jobs.probe]
        command = "orders show 999-0000000-0000000"
        schedule = "every hour"
        timeout = "1m"
        [jobs.tickets]
        command = "tickets list"
        schedule = "every hour"
        timeout = "1m"
        """)
    assert json.loads(ws.ok("alerts", "check", "--json")) == []  # never ran: nothing to miss yet
    # Both ran once, on 20 November (a daemon on a clock set back), and never since.
    _finish(_daemon(ws, "--once", at=_clock("2026-11-20T06:00", 1, time.time()), host="old"))
    r = ws.run("alerts", "check", "--json")
    assert r.code == 3
    found = {(a["kind"], a["subject"]) for a in json.loads(r.out)}
    assert {("job_failed", "probe"), ("job_not_run", "probe"), ("job_not_run", "tickets")} <= found
    assert ("job_failed", "tickets") not in found


@pytest.mark.slow
def test_the_daemon_on_the_wall_clock_takes_the_current_slot(bare_workspace):
    """Without a compressed clock the schedule library times the simple forms; --once does one round."""
    ws = bare_workspace
    # Twelve hours from now: never the current slot, whenever the suite runs (at 03:10 a
    # "0 3 * * *" job is in its slot still).
    hour = (clock.now().astimezone(BERLIN).hour + 12) % 24
    _write_jobs(ws, f"""
        [jobs.tickets]
        command = "tickets list --json"
        schedule = "every minute"
        timeout = "1m"
        [jobs.nightly]
        command = "tickets list"
        schedule = "0 {hour} * * *"
        timeout = "1m"
        """)
    before = clock.now().replace(second=0, microsecond=0)
    out = _finish(_daemon(ws, "--once", host="wall"))
    after = clock.now().replace(second=0, microsecond=0)
    runs = _runs(ws)
    assert [r.job for r in runs] == ["tickets"] and runs[0].slot_at in (before, after), out
    assert runs[0].state == "succeeded" and runs[0].output == "[]"


@pytest.mark.slow
def test_once_runs_each_due_job_once_even_when_the_minute_turns_meanwhile(bare_workspace):
    """A run of the job takes minutes on this 600-times clock, so the minute turns while it runs:
    --once does not start it again for the new minute (CI saw that at 23:30:59 on the real clock)."""
    ws = bare_workspace
    _write_jobs(ws, """
        [jobs.tickets]
        command = "tickets list --json"
        schedule = "every minute"
        timeout = "1h"
        """)
    out = _finish(_daemon(ws, "--once", at=_clock("2026-11-25T06:00", 600, time.time()), host="once"))
    assert [r.job for r in _runs(ws)] == ["tickets"], out


@pytest.mark.slow
def test_jobs_run_stopped_by_sigterm_hands_its_slot_over(bare_workspace):
    ws = bare_workspace
    hole = BlackHole()
    try:
        ws.config.write_text(ws.config.read_text().replace('endpoint = "http://127.0.0.1:9"', f'endpoint = "{hole.url}"')
                             .replace("http://127.0.0.1:9/auth", hole.url + "/auth")
                             .replace("timeout_seconds = 5", "timeout_seconds = 600"))
        _write_jobs(ws, """
            [jobs.import]
            command = "import amazon"
            schedule = "every minute"
            timeout = "10m"
            """)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        p = subprocess.Popen([sys.executable, "-m", "caturactl", "--config", str(ws.config), "jobs", "run", "import"],
                             cwd=ws.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        _wait_for(lambda: next((r for r in _runs(ws) if r.pid != p.pid), None), 30, "the child to start")
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=30)
    finally:
        hole.close()
    assert p.returncode == 130 and "interrupted; its slot is free" in out
    [run] = _runs(ws)
    assert run.state == "running" and run.lease_until <= clock.now()
    assert "interrupted: 'jobs run' was stopped" in run.error


def test_history_older_than_keep_history_is_pruned(bare_workspace):
    from caturactl.jobs.scheduler import Slots
    ws = bare_workspace
    _write_jobs(ws, """
        [settings]
        keep_history = "30d"
        [jobs.tickets]
        command = "tickets list"
        schedule = "every minute"
        timeout = "1m"
        """)
    ws.ok("jobs", "run", "tickets")
    ws.ok("jobs", "run", "tickets", "--force")
    app = ws.app()
    try:
        slots = Slots(app, lease=timedelta(minutes=2))
        now = clock.now()
        assert slots.prune(now + timedelta(days=29), timedelta(days=30)) == 0
        assert slots.prune(now + timedelta(days=31), timedelta(days=30)) == 2
    finally:
        app.dispose()
    assert _runs(ws) == []
