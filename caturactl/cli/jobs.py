"""``caturactl jobs list|run|daemon|history|show|export``: running the commands unattended."""

from __future__ import annotations

import os
import shlex
import signal
import sys
import time
from pathlib import Path

import click
from rich.markup import escape
from rich.text import Text

from caturactl.cli.listing import listing, showing
from caturactl.cli.output import DRY, Column, console, err_console, exit_with, for_log, local_time
from caturactl.cli.params import count
from caturactl.core import clock
from caturactl.core.errors import InputError
from caturactl.jobs.history import find_run, history_rows, job_rows, run_output

JOB_COLUMNS = [Column("job", "Job"), Column("schedule", "Schedule"), Column("command", "Command", max_width=48),
               Column("timeout", "Timeout", "right"), Column("last_run", "Last run"),
               Column("last_result", "Last result", max_width=40), Column("next_run", "Next run")]
HISTORY_COLUMNS = [Column("id", "#", "right"), Column("job", "Job"), Column("slot", "Slot"),
                   Column("state", "State"), Column("attempt", "Try", "right"), Column("host", "Host"),
                   Column("started", "Started"), Column("seconds", "Seconds", "right"),
                   Column("exit_code", "Exit", "right"), Column("summary", "Summary", max_width=60),
                   Column("error", "Error", max_width=50)]


def check_command(words: list[str]) -> str | None:
    """What is wrong with ``caturactl WORDS`` as a command line (None if nothing): the command
    exists, and its options and arguments parse."""
    from caturactl.cli import cli
    ctx = click.Context(cli, info_name="caturactl")
    cmd: click.Command = cli
    rest, path = list(words), []
    while isinstance(cmd, click.Group):
        if not rest or rest[0].startswith("-"):
            return f"'caturactl {' '.join(path)}' needs a command after it" if path else "no command given"
        sub = cmd.get_command(ctx, rest[0])
        if sub is None:
            return f"no such command: caturactl {' '.join([*path, rest[0]])}"
        path.append(rest.pop(0))
        ctx = click.Context(sub, info_name=path[-1], parent=ctx)
        cmd = sub
    try:
        with cmd.make_context(" ".join(path), rest, parent=ctx.parent):
            pass
    except click.exceptions.Exit:
        return None
    except click.UsageError as exc:
        return f"caturactl {' '.join(path)}: {exc.format_message()}"
    return None


def jobs_path(app, explicit: str | None) -> Path:
    """The jobs.toml to use: ``explicit``, else $CATURACTL_JOBS, else the one beside caturactl.toml."""
    if explicit:
        return Path(explicit)
    if os.environ.get("CATURACTL_JOBS"):
        return Path(os.environ["CATURACTL_JOBS"])
    return app.cfg.base_dir / "jobs.toml"


def load_jobs(app, explicit: str | None):
    """The jobs of ``jobs_path``, each command checked; raises InputError naming the file."""
    from caturactl.jobs.spec import load
    return load(jobs_path(app, explicit), check_command)


jobs_file_option = click.option("--jobs-file", "jobs_file", type=click.Path(dir_okay=False),
                                help="jobs.toml to use (default: next to caturactl.toml, or $CATURACTL_JOBS).")


@click.group()
def jobs() -> None:
    """Run the commands unattended: jobs.toml, the scheduler daemon, run history, systemd/cron.

    Each due run of a job is a slot, claimed in the database, so however many daemons (or
    systemd timers on several hosts) share one PostgreSQL database, each slot runs once.
    """


@jobs.command("list")
@jobs_file_option
@listing(JOB_COLUMNS, "Jobs", empty="jobs.toml has no jobs")
def jobs_list(app, s, jobs_file) -> list[dict]:
    """Each job: schedule, command, timeout, last run and its result, next run."""
    return job_rows(s, load_jobs(app, jobs_file), app.cfg.tz, clock.now())


@jobs.command("run")
@click.argument("name")
@click.option("--dry-run", is_flag=True, help="Say which slot would be taken and run the command with --dry-run "
                                              "if it has one; nothing is recorded.")
@click.option("--force", is_flag=True, help="Run now even if the due slot has run (recorded as a manual run).")
@jobs_file_option
@click.pass_obj
def jobs_run(obj, name: str, dry_run: bool, force: bool, jobs_file) -> None:
    """Run one job now, taking its due slot as the daemon would (for systemd timers and cron).

    If the slot has already run, or runs elsewhere right now, nothing happens and the exit
    code is 0. Otherwise the exit code is the command's: a timer sees the failure.
    """
    from caturactl.cli import main
    from caturactl.jobs.scheduler import Finished, Runner, Started, read_tail, spawn, start_child
    spec = load_jobs(obj.app, jobs_file)
    job = spec.get(name)
    app = obj.ready_app()
    now = clock.now()
    if dry_run:
        slot = job.schedule.latest(now, app.cfg.tz)
        argv = job.argv(slot.date())
        has_dry = _has_option(argv, "--dry-run")
        console.print(f"{DRY}job {name}: slot {local_time(slot, app.cfg.tz)}, "
                      f"{'running' if has_dry else 'would run'}: caturactl {shlex.join(argv)}"
                      + (" --dry-run" if has_dry else ""), highlight=False)
        if has_dry:
            pid, out, go = spawn([*_config_args(obj), *argv, "--dry-run"], {"CATURACTL_JOB": name}, main,
                                 after_fork=lambda: (app.engine.dispose(close=False), for_log()))
            start_child(go)
            code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
            click.echo(read_tail(out)[1])
            exit_with(code)
        return
    events: list = []
    runner = Runner(app, spec, main, host=None, max_parallel=1, config_path=_config_path(obj), on_event=events.append,
                    child_setup=for_log)
    # Before the child starts: a SIGTERM between its start and the handler would kill this
    # process outright and leave the slot to its lease instead of handing it over.
    _stop_on_signals(lambda *_: setattr(runner, "stop_requested", "interrupted: 'jobs run' was stopped"))
    why = runner.try_start(job, manual=force)
    if not any(isinstance(e, Started) for e in events):
        console.print(f"job {name}: nothing to run ({why})", highlight=False)
        return
    runner.wait_all()
    fin = events[-1]
    if not isinstance(fin, Finished):  # stopped by SIGTERM/Ctrl-C: the slot was handed over
        err_console.print(f"job {name}: interrupted; its slot is free for the next runner", highlight=False)
        exit_with(130)
    with app.session() as s:
        output = run_output(s, fin.run_id)
    if output:
        click.echo(output)
    line = f"job {name}: {fin.state}" + (f" ({fin.error})" if fin.error else "")
    (console if fin.state == "succeeded" else err_console).print(line, highlight=False)
    exit_with(0 if fin.state == "succeeded" else (fin.exit_code if fin.exit_code and fin.exit_code > 0 else 1))


def _has_option(argv: list[str], option: str) -> bool:
    return check_command([*argv, option]) is None


def _config_path(obj) -> str | None:
    return str(obj.app.cfg.path) if obj.app.cfg.path else None


def _config_args(obj) -> list[str]:
    p = _config_path(obj)
    return ["--config", p] if p else []


def _stop_on_signals(handler) -> None:
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


@jobs.command("daemon")
@click.option("--once", is_flag=True, help="Run whatever is due once, wait for it, and exit.")
@click.option("--max-parallel", type=click.IntRange(1, 32), help="Jobs run at the same time (default: jobs.toml).")
@click.option("--host", "host", help="Name this runner reports (default: the host name).")
@click.option("--until", "until", type=click.DateTime(["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]),
              help="Stop at this local time (on the clock) after the running jobs finish.")
@jobs_file_option
@click.pass_obj
def jobs_daemon(obj, once, max_parallel, host, until, jobs_file) -> None:
    """The scheduler loop, in the foreground (for systemd or a terminal). SIGTERM or Ctrl-C stops
    it: running jobs are stopped and their slots given up for another runner to take over."""
    from caturactl.cli import main
    from caturactl.jobs.scheduler import Daemon, Finished, Runner, Started, Trouble
    spec = load_jobs(obj.app, jobs_file)
    app = obj.ready_app()
    tz = app.cfg.tz
    app_clock = clock.current()

    def report(e) -> None:
        t = clock.now().astimezone(tz).strftime("%H:%M:%S")
        slot = local_time(getattr(e, "slot_at", None), tz)
        if isinstance(e, Started):
            how = f" (attempt {e.attempt}, taken over)" if e.took_over else ""
            console.print(escape(f"{t} start  {e.job} [{slot}]{how}"), highlight=False)
        elif isinstance(e, Finished):
            style = "green" if e.state == "succeeded" else "red"
            tail = escape(f"{e.job} [{slot}] exit {e.exit_code}: {e.error or e.summary}")  # a job's words are text
            console.print(f"{t} [{style}]{e.state:<9}[/] {tail}",
                          highlight=False)
        elif isinstance(e, Trouble):
            err_console.print(escape(f"{t} {e.text}"), highlight=False)

    runner = Runner(app, spec, main, clock=app_clock, host=host, max_parallel=max_parallel,
                    config_path=_config_path(obj), on_event=report, child_setup=for_log)
    epoch = getattr(app_clock, "epoch", None)
    if epoch and epoch > time.time():
        time.sleep(epoch - time.time())  # several daemons given one epoch start together
    daemon = Daemon(runner)
    _stop_on_signals(daemon.request_stop)
    enabled = [n for n, j in spec.jobs.items() if j.enabled]
    console.print(f"caturactl jobs daemon: {len(enabled)} job(s) from {spec.path}, runner {runner.slots.runner}, "
                  f"up to {runner.parallel} at a time", highlight=False)
    daemon.run(until=until.replace(tzinfo=tz) if until else None, once=once)
    console.print("caturactl jobs daemon: stopped", highlight=False)


@jobs.command("history")
@click.argument("name", required=False)
@click.option("--state", type=click.Choice(["running", "succeeded", "failed"]))
@click.option("--limit", type=count(), default=50, show_default=True)
@listing(HISTORY_COLUMNS, "Job runs", empty="no job has run yet")
def jobs_history(app, s, name, state, limit) -> list[dict]:
    """Past runs, newest first: slot, host, how long, exit code, summary, error."""
    return history_rows(s, app.cfg.tz, job=name, state=state, limit=limit)


def _run_text(record: dict) -> list:
    """A run's error and output under their headings, as they were printed."""
    return [line for key in ("error", "output") if record[key]
            for line in (Text(key.capitalize(), style="bold"), record[key])]


@jobs.command("show")
@click.argument("run_id", type=count())
@showing(lambda r: f"Job run {r['id']}", lines=_run_text)
def jobs_show(app, s, run_id: int) -> dict:
    """One run with everything it printed (the tail) and its error."""
    return find_run(s, run_id, app.cfg.tz)


@jobs.command("export")
@click.option("--systemd", "systemd_dir", type=click.Path(file_okay=False),
              help="Write caturactl-NAME.service and .timer files into this folder.")
@click.option("--cron", "cron", is_flag=True, help="Print crontab lines.")
@click.option("--user", "user", help="User= in the service units (default: none, for --user units).")
@jobs_file_option
@click.pass_obj
def jobs_export(obj, systemd_dir, cron, user, jobs_file) -> None:
    """systemd service + timer units, or crontab lines, that call 'caturactl jobs run NAME'.

    For merchants who prefer their init system to 'caturactl jobs daemon'. Use one or the
    other: both would still run each slot once, but the daemon's other jobs would compete.
    """
    from caturactl.jobs.unitfiles import crontab, systemd_units
    if bool(systemd_dir) == bool(cron):
        raise InputError("give either --systemd DIR or --cron", where="jobs export")
    spec = load_jobs(obj.app, jobs_file)
    cfg = obj.app.cfg
    exe = _caturactl_exe()
    if cron:
        click.echo(crontab(spec, exe=exe, config=cfg.path, workdir=cfg.base_dir, tz=cfg.display.timezone), nl=False)
        return
    out = Path(systemd_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        files = systemd_units(spec, exe=exe, config=cfg.path, workdir=cfg.base_dir, tz=cfg.display.timezone,
                              user=user)
        for fname, content in files.items():
            tmp = out / (fname + ".tmp")
            tmp.write_text(content, encoding="utf-8")
            tmp.replace(out / fname)
    except OSError as exc:
        raise InputError(f"cannot write there: {exc.strerror}", where=str(out)) from None
    console.print(f"{len(files)} unit file(s) written to {out}; then: systemctl daemon-reload && "
                  f"systemctl enable --now {' '.join(f for f in files if f.endswith('.timer'))}", highlight=False)


def _caturactl_exe() -> str:
    here = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    if here and here.name == "caturactl" and here.exists():
        return str(here)
    candidate = Path(sys.executable).with_name("caturactl")
    return str(candidate) if candidate.exists() else f"{sys.executable} -m caturactl"


COMMANDS = [jobs]
