"""jobs.toml: what runs unattended, and when.

Each job is a caturactl command with a schedule, a timeout and what to do when it fails::

    [settings]
    lease = "2m"              # a runner's claim on a slot holds this long without a heartbeat
    keep_history = "90d"      # job runs older than this are pruned
    max_parallel = 2          # jobs one daemon runs at the same time
    alert_email = ["ops@example.com"]   # where on_failure = ["email"] writes

    [jobs.import-amazon]
    command = "import amazon --max-minutes 12"
    schedule = "every 15 minutes"       # or "daily at 02:00", "weekdays at 06:30", "*/5 * * * *"
    timeout = "30m"
    on_failure = ["ticket"]             # ticket and/or email

Every schedule has an exact list of due times (its *slots*), the same on every host, so that
several daemons can agree on which run is which. The simple forms are registered with the
``schedule`` library, which wakes the daemon when they are due; cron expressions go through
croniter. Both give the same times: each simple form has its cron equivalent here.

Placeholders in a command are filled from the slot's local date: ``{today}``, ``{yesterday}``,
``{month_start}``, ``{prev_month_start}``, ``{prev_month_end}`` (all YYYY-MM-DD).
"""

from __future__ import annotations

import re
import shlex
import string
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

from croniter import croniter

from caturactl.core.errors import ConfigError

JOBS_NAME = "jobs.toml"
ON_FAILURE = ("ticket", "email")
PLACEHOLDERS = ("today", "yesterday", "month_start", "prev_month_start", "prev_month_end")
# Commands that would run the scheduler from inside itself.
NOT_A_JOB = {("jobs", "daemon"), ("jobs", "run")}
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday")


def parse_duration(text: str | int, where: str) -> timedelta:
    """'30m', '2h', '90s', '90d' (or a number of seconds) -> timedelta; raises ConfigError."""
    if isinstance(text, int) and not isinstance(text, bool) and text > 0:
        return timedelta(seconds=text)
    m = _DURATION.match(text) if isinstance(text, str) else None
    if not m or int(m.group(1)) == 0:
        raise ConfigError(f"not a duration: {text!r} (write e.g. '90s', '30m', '2h', '7d')", where=where)
    return timedelta(seconds=int(m.group(1)) * _UNIT_SECONDS[m.group(2)])


def format_duration(td: timedelta) -> str:
    s = int(td.total_seconds())
    for unit in ("d", "h", "m"):
        if s % _UNIT_SECONDS[unit] == 0:
            return f"{s // _UNIT_SECONDS[unit]}{unit}"
    return f"{s}s"


@dataclass(frozen=True)
class Schedule:
    """A job's schedule: the text as written, its cron equivalent, and the simple form the
    ``schedule`` library understands (None for a cron expression)."""

    text: str
    cron: str
    simple: tuple[str, int | str] | None = None  # ("minutes", 15) | ("hours", 2) | ("daily", "02:00") | ("weekdays", "06:30")

    @classmethod
    def parse(cls, text: str, where: str) -> "Schedule":
        t = " ".join(str(text).lower().split())
        m = re.fullmatch(r"every (\d+ )?(minute|minutes|hour|hours)", t)
        if m:
            n = int(m.group(1) or 1)
            unit = "minutes" if m.group(2).startswith("minute") else "hours"
            whole = 60 if unit == "minutes" else 24
            if n < 1 or whole % n:
                raise ConfigError(f"'every {n} {unit}' does not divide the {'hour' if unit == 'minutes' else 'day'} "
                                  f"evenly; use a divisor of {whole} or a cron expression", where=where)
            cron = f"*/{n} * * * *" if unit == "minutes" else f"0 */{n} * * *"
            return cls(text, cron.replace("*/1 ", "* "), (unit, n))
        m = re.fullmatch(r"(daily|weekdays) at (\d{1,2}):(\d{2})", t)
        if m:
            hh, mm = int(m.group(2)), int(m.group(3))
            if hh > 23 or mm > 59:
                raise ConfigError(f"no such time of day: {m.group(2)}:{m.group(3)}", where=where)
            dow = "*" if m.group(1) == "daily" else "1-5"
            return cls(text, f"{mm} {hh} * * {dow}", (m.group(1), f"{hh:02d}:{mm:02d}"))
        if len(t.split()) == 5 and croniter.is_valid(t):
            return cls(text, t)
        raise ConfigError(f"not a schedule: {text!r} (write 'every 15 minutes', 'every hour', 'daily at 02:00', "
                          "'weekdays at 06:30', or a five-field cron expression such as '*/10 6-22 * * *')",
                          where=where)

    def latest(self, now: datetime, tz: ZoneInfo) -> datetime:
        """The newest due time at or before ``now`` (aware), in ``tz``."""
        start = now.astimezone(tz).replace(second=0, microsecond=0) + timedelta(minutes=1)
        return croniter(self.cron, start).get_prev(datetime)

    def after(self, moment: datetime, tz: ZoneInfo) -> datetime:
        """The first due time strictly after ``moment``."""
        return croniter(self.cron, moment.astimezone(tz)).get_next(datetime)

    def between(self, start: datetime, end: datetime, tz: ZoneInfo) -> list[datetime]:
        """Every due time in [start, end)."""
        it = croniter(self.cron, start.astimezone(tz) - timedelta(seconds=1))
        out = []
        while (t := it.get_next(datetime)) < end:
            out.append(t)
        return out

    def register(self, scheduler, tz: ZoneInfo, wake: Callable[[], None]) -> int:
        """Register the simple form with a ``schedule.Scheduler``; returns how many entries it took
        (0 for a cron expression, which the daemon times with croniter instead)."""
        if self.simple is None:
            return 0
        kind, value = self.simple
        entries = []
        if kind == "minutes":
            entries = [scheduler.every().hour.at(f":{m:02d}", tz.key) for m in range(0, 60, value)]
        elif kind == "hours":
            entries = [scheduler.every().day.at(f"{h:02d}:00", tz.key) for h in range(0, 24, value)]
        elif kind == "daily":
            entries = [scheduler.every().day.at(value, tz.key)]
        elif kind == "weekdays":
            entries = [getattr(scheduler.every(), day).at(value, tz.key) for day in _DAY_NAMES]
        for entry in entries:
            entry.do(wake)
        return len(entries)

    def on_calendar(self) -> str:
        """The systemd OnCalendar= expression with the same times."""
        return cron_to_on_calendar(self.cron)

    def before(self, moment: datetime, tz: ZoneInfo) -> datetime:
        """The last due time strictly before ``moment``."""
        return croniter(self.cron, moment.astimezone(tz)).get_prev(datetime)


_DOW = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _cron_field(value: str, lo: int, names: tuple[str, ...] | None = None) -> str:
    """One cron field in systemd's calendar syntax: '*/15' -> '00/15', '1-5' -> 'Mon..Fri'."""
    out = []
    for part in value.split(","):
        step = ""
        if "/" in part:
            part, step = part.split("/")
        if part == "*":
            base = f"{lo:02d}" if step else "*"
        elif "-" in part:
            a, b = part.split("-")
            base = f"{names[int(a)]}..{names[int(b)]}" if names else f"{int(a):02d}..{int(b):02d}"
        else:
            base = names[int(part)] if names else f"{int(part):02d}"
        if step:
            if names or "-" in part:
                raise ConfigError(f"cron step '{part}/{step}' has no systemd calendar form; "
                                  "list the values instead", where="schedule")
            base = f"{base}/{int(step)}"
        out.append(base)
    return ",".join(out)


def cron_to_on_calendar(cron: str) -> str:
    minute, hour, dom, month, dow = cron.split()
    days = "" if dow == "*" else _cron_field(dow, 0, _DOW) + " "
    return (f"{days}*-{_cron_field(month, 1)}-{_cron_field(dom, 1)} "
            f"{_cron_field(hour, 0)}:{_cron_field(minute, 0)}:00")


@dataclass(frozen=True)
class Job:
    name: str
    command: str
    schedule: Schedule
    timeout: timedelta
    on_failure: tuple[str, ...] = ("ticket",)
    enabled: bool = True

    def argv(self, slot_local: date) -> list[str]:
        """The command's words with the placeholders filled from the slot's local date."""
        return [fill(word, slot_local) for word in shlex.split(self.command)]


@dataclass(frozen=True)
class Settings:
    lease: timedelta = timedelta(minutes=2)
    keep_history: timedelta = timedelta(days=90)
    max_parallel: int = 2
    alert_email: tuple[str, ...] = ()


@dataclass(frozen=True)
class JobsFile:
    path: Path | None
    settings: Settings
    jobs: dict[str, Job] = field(default_factory=dict)

    def get(self, name: str) -> Job:
        from caturactl.core.errors import NotFoundError
        job = self.jobs.get(name)
        if job is None:
            known = ", ".join(self.jobs) or "none"
            raise NotFoundError(f"no job {name!r} in {self.path.name if self.path else JOBS_NAME} (jobs: {known})")
        return job


def fill(word: str, d: date) -> str:
    if "{" not in word:
        return word
    month_start = d.replace(day=1)
    prev_end = month_start - timedelta(days=1)
    values = {"today": d, "yesterday": d - timedelta(days=1), "month_start": month_start,
              "prev_month_start": prev_end.replace(day=1), "prev_month_end": prev_end}
    return word.format(**{k: v.isoformat() for k, v in values.items()})


def _check_placeholders(command: str, where: str) -> None:
    try:
        names = [f for _, f, _, _ in string.Formatter().parse(command) if f is not None]
    except ValueError as exc:
        raise ConfigError(f"broken placeholder: {exc}", where=where) from None
    for n in names:
        if n not in PLACEHOLDERS:
            raise ConfigError(f"unknown placeholder {{{n}}} (known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)})",
                              where=where)


def load(path: Path, check_command: Callable[[list[str]], str | None] | None = None) -> JobsFile:
    """Read and check jobs.toml; errors name the file, the job and the key. ``check_command`` gets a
    job's words and returns what is wrong with them (None if nothing)."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no jobs file at {path} (run 'caturactl init' to write an example)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", where=path.name) from None
    return parse(raw, path, check_command)


def parse(raw: dict, path: Path | None, check_command: Callable[[list[str]], str | None] | None = None) -> JobsFile:
    fname = path.name if path else JOBS_NAME
    unknown = set(raw) - {"settings", "jobs"}
    if unknown:
        raise ConfigError(f"unknown section {sorted(unknown)[0]!r} (sections: settings, jobs)", where=fname)
    s = raw.get("settings", {})
    if not isinstance(s, dict):
        raise ConfigError("must be a table", where=f"{fname}: settings")
    known = {"lease", "keep_history", "max_parallel", "alert_email"}
    for key in s:
        if key not in known:
            raise ConfigError(f"unknown key (keys: {', '.join(sorted(known))})", where=f"{fname}: settings.{key}")
    mp = s.get("max_parallel", 2)
    if not isinstance(mp, int) or isinstance(mp, bool) or not 1 <= mp <= 32:
        raise ConfigError(f"must be a whole number from 1 to 32, not {mp!r}", where=f"{fname}: settings.max_parallel")
    emails = s.get("alert_email", [])
    if isinstance(emails, str):
        emails = [emails]
    if not isinstance(emails, list) or not all(isinstance(e, str) and "@" in e for e in emails):
        raise ConfigError("must be a list of e-mail addresses", where=f"{fname}: settings.alert_email")
    settings = Settings(lease=parse_duration(s.get("lease", "2m"), f"{fname}: settings.lease"),
                        keep_history=parse_duration(s.get("keep_history", "90d"), f"{fname}: settings.keep_history"),
                        max_parallel=mp, alert_email=tuple(emails))
    if settings.lease < timedelta(seconds=3):
        raise ConfigError("a lease under 3 seconds would expire between heartbeats", where=f"{fname}: settings.lease")
    jobs_raw = raw.get("jobs", {})
    if not isinstance(jobs_raw, dict):
        raise ConfigError("must be a table of [jobs.NAME] sections", where=f"{fname}: jobs")
    jobs: dict[str, Job] = {}
    for name, j in jobs_raw.items():
        where = f"{fname}: jobs.{name}"
        if not _NAME.match(name):
            raise ConfigError("a job name is lower-case letters, digits, '-' and '_'", where=where)
        if not isinstance(j, dict):
            raise ConfigError("must be a table", where=where)
        for key in j:
            if key not in ("command", "schedule", "timeout", "on_failure", "enabled"):
                raise ConfigError("unknown key (keys: command, schedule, timeout, on_failure, enabled)",
                                  where=f"{where}.{key}")
        for key in ("command", "schedule", "timeout"):
            if not isinstance(j.get(key), (str, int)) or j.get(key) in ("", None):
                raise ConfigError("missing", where=f"{where}.{key}")
        command = str(j["command"]).strip()
        if command.startswith("caturactl "):
            command = command[len("caturactl "):]
        _check_placeholders(command, f"{where}.command")
        try:
            words = shlex.split(command)
        except ValueError as exc:
            raise ConfigError(f"cannot split the command: {exc}", where=f"{where}.command") from None
        if tuple(w for w in words[:2]) in NOT_A_JOB:
            raise ConfigError(f"'{' '.join(words[:2])}' cannot be a job", where=f"{where}.command")
        if check_command is not None:
            problem = check_command([fill(w, date(2000, 1, 15)) for w in words])
            if problem:
                raise ConfigError(problem, where=f"{where}.command")
        on_failure = j.get("on_failure", ["ticket"])
        if isinstance(on_failure, str):
            on_failure = [on_failure]
        if not isinstance(on_failure, list) or any(x not in ON_FAILURE for x in on_failure):
            raise ConfigError(f"must be a list of {' and '.join(ON_FAILURE)}", where=f"{where}.on_failure")
        if "email" in on_failure and not settings.alert_email:
            raise ConfigError("on_failure has 'email' but [settings] alert_email is empty", where=f"{where}.on_failure")
        enabled = j.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ConfigError("must be true or false", where=f"{where}.enabled")
        jobs[name] = Job(name=name, command=command, schedule=Schedule.parse(j["schedule"], f"{where}.schedule"),
                         timeout=parse_duration(j["timeout"], f"{where}.timeout"), on_failure=tuple(on_failure),
                         enabled=enabled)
    return JobsFile(path=path, settings=settings, jobs=jobs)
