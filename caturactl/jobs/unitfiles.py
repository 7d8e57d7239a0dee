"""systemd units and crontab lines from jobs.toml, each calling ``caturactl jobs run NAME``.

``jobs run`` takes the slot in the database as the daemon would, so a timer that fires on two
hosts, or fires late after a reboot (``Persistent=true``), still runs each slot once.
"""

from __future__ import annotations

import shlex
from datetime import timedelta
from pathlib import Path

from caturactl.jobs.spec import JobsFile

KILL_MARGIN = timedelta(minutes=1)  # systemd stops the service only after our own timeout had its chance


def _run_line(exe: str, config: Path | None, name: str) -> str:
    cfg = f" --config {shlex.quote(str(config))}" if config else ""
    return f"{exe}{cfg} jobs run {shlex.quote(name)}"


def systemd_units(spec: JobsFile, *, exe: str, config: Path | None, workdir: Path, tz: str,
                  user: str | None = None) -> dict[str, str]:
    """{file name: content} for a caturactl-NAME.service and .timer per enabled job."""
    files: dict[str, str] = {}
    for name, job in spec.jobs.items():
        if not job.enabled:
            continue
        unit = f"caturactl-{name}"
        stop_after = int((job.timeout + KILL_MARGIN).total_seconds())
        files[f"{unit}.service"] = "\n".join([
            "# Written by 'caturactl jobs export --systemd' from jobs.toml; re-export after changing it.",
            "[Unit]",
            f"Description=caturactl job {name}: {job.command}",
            "Wants=network-online.target",
            "After=network-online.target",
            "",
            "[Service]",
            "Type=oneshot",
            *([f"User={user}"] if user else []),
            f"WorkingDirectory={workdir}",
            f"ExecStart={_run_line(exe, config, name)}",
            f"TimeoutStartSec={stop_after}",
            "",
        ])
        files[f"{unit}.timer"] = "\n".join([
            "# Written by 'caturactl jobs export --systemd' from jobs.toml; re-export after changing it.",
            "[Unit]",
            f"Description=caturactl job {name} ({job.schedule.text})",
            "",
            "[Timer]",
            f"OnCalendar={job.schedule.on_calendar()} {tz}",
            "Persistent=true",
            "AccuracySec=1s",
            "",
            "[Install]",
            "WantedBy=timers.target",
            "",
        ])
    return files


def crontab(spec: JobsFile, *, exe: str, config: Path | None, workdir: Path, tz: str) -> str:
    """crontab lines; CRON_TZ makes the times the business time zone's (cronie and Debian's cron)."""
    lines = ["# Written by 'caturactl jobs export --cron' from jobs.toml; re-export after changing it.",
             f"CRON_TZ={tz}"]
    for name, job in spec.jobs.items():
        if job.enabled:
            lines.append(f"{job.schedule.cron} cd {shlex.quote(str(workdir))} && {_run_line(exe, config, name)}"
                         f"  # {job.schedule.text}")
    return "\n".join(lines) + "\n"
