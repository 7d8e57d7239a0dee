"""The one shape of a batch command: ``--dry-run`` and ``--json``, one summary line (or one JSON
object for timers), a line per problem, and an exit code scripts can trust.

A command decorated with ``batch`` parses its own options, calls a stage of the service layer
(``caturactl/pipeline.py``) and returns its ``Outcome``; everything after that is here.
"""

from __future__ import annotations

import functools
from typing import Callable

import click

from caturactl.cli.output import DRY, console, err_console, exit_with, progress_bar, summary
from caturactl.pipeline import Outcome, Progress

SHOWN_PROBLEMS = 20


def batch(dry_run_help: str | None) -> Callable:
    """Give a command ``--dry-run`` (help: what a dry run still does) and ``--json``; the command
    receives both and returns an Outcome (or one per channel), printed and turned into the exit code
    here: the first non-zero one. ``dry_run_help`` None: a command that only asks and records what
    it is told, with no dry run to offer, gets ``--json`` alone."""
    def decorate(f: Callable[..., Outcome]) -> Callable:
        @functools.wraps(f)
        def command(*args, **kwargs):
            outcomes = f(*args, **kwargs)
            if isinstance(outcomes, Outcome):
                outcomes = [outcomes]
            for out in outcomes:
                report(out, as_json=kwargs["as_json"])
            exit_with(next((o.exit_code for o in outcomes if o.exit_code), 0))
        if dry_run_help is not None:
            command = click.option("--dry-run", is_flag=True, help=dry_run_help)(command)
        return click.option("--json", "as_json", is_flag=True, help="One JSON object instead of the summary line.")(
            command)
    return decorate


def report(out: Outcome, *, as_json: bool) -> None:
    """Print an outcome as a batch command does."""
    summary(out.command, out.data, as_json=as_json, line=(DRY if out.dry_run else "") + out.line, ok=out.fine)
    if not as_json:
        for p in out.problems[:SHOWN_PROBLEMS]:
            console.print(f"  {p}", highlight=False, markup=False)
        if len(out.problems) > SHOWN_PROBLEMS:
            console.print(f"  ... and {len(out.problems) - SHOWN_PROBLEMS} more", highlight=False)
    if out.stopped_by:
        err_console.print(f"caturactl: {out.command} stopped early: {out.stopped_by}", highlight=False, markup=False)


def bars(*, as_json: bool, dry_run: bool = False) -> Progress:
    """Progress bars on a terminal for a stage, none for --json or a dry run."""
    return lambda label, total: progress_bar(label, total, enabled=not (as_json or dry_run))
