"""``caturactl import orders [--channel NAME]`` (``import amazon``: the same for Amazon)."""

from __future__ import annotations

import functools
from datetime import datetime, timezone

import click
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from caturactl import pipeline
from caturactl.cli.batch import batch
from caturactl.cli.output import err_console, is_terminal
from caturactl.cli.params import MINUTES
from caturactl.core.errors import InputError
from caturactl.views.cockpit import FIRST_DAY, LAST_DAY


def _since(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"not an ISO 8601 date or time: {value!r}", where="--since") from None
    if not FIRST_DAY <= t.date() <= LAST_DAY:  # before any order, and clear of the calendar's edges
        raise InputError(f"{value!r} is not a time in the years {FIRST_DAY.year} to {LAST_DAY.year}",
                         where="--since")
    return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


@click.group("import")
def import_() -> None:
    """Import orders from sales channels."""


def _options(f):
    for option in reversed([
        click.option("--since", help="Re-read orders updated since this ISO time (default: since the last run)."),
        click.option("--max-minutes", type=MINUTES, help="Stop after the page that passes this many minutes "
                     "(at Amazon's rate a backlog can take hours); the next run resumes there."),
        batch("Fetch and check everything, store nothing."),
    ]):
        f = option(f)
    return f


@import_.command("orders")
@click.option("--channel", "channel_names", multiple=True, metavar="NAME",
              help="Only this sales channel (repeatable; default: every channel switched on in caturactl.toml).")
@_options
@click.pass_obj
def import_orders(obj, channel_names: tuple[str, ...], since: str | None, max_minutes: float | None, dry_run: bool,
                  as_json: bool):
    """Import new and changed orders from the sales channels (Amazon: Orders API 2026-01-01).

    Safe to run at any time and to interrupt: each page is stored with its cursor, re-imports are
    no-ops, changed orders are updated with the reason. Exits 75 when a channel kept refusing
    (nothing lost; run again later) and 69 when it could not be reached.
    """
    from caturactl import channels
    for name in channel_names:
        if name not in channels.REGISTERED:
            raise click.BadParameter(f"no sales channel {name!r} (known: {', '.join(sorted(channels.REGISTERED))})",
                                     param_hint="--channel")
    # Without --channel, every channel the configuration switches on; a named one is imported even
    # when it is off, and says so.
    return [_import(obj, name, since, max_minutes, dry_run, as_json)
            for name in channel_names or channels.enabled(obj.app.cfg)]


@import_.command("amazon")
@_options
@click.pass_obj
def import_amazon(obj, since: str | None, max_minutes: float | None, dry_run: bool, as_json: bool):
    """Import new and changed Amazon orders: ``import orders --channel amazon``, kept by its old name."""
    return _import(obj, "amazon", since, max_minutes, dry_run, as_json)


def _import(obj, channel: str, since: str | None, max_minutes: float | None, dry_run: bool, as_json: bool):
    """One channel's import, with a spinner on a terminal."""
    app = obj.ready_app()
    run = functools.partial(pipeline.import_orders, app, channel, since=_since(since), dry_run=dry_run,
                            max_seconds=None if max_minutes is None else max_minutes * 60)
    if not is_terminal() or as_json:
        return run()
    label = f"importing {channel} orders"
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err_console,
                  transient=True) as bar:
        task = bar.add_task(f"{label}: page 1", total=None)
        return run(on_page=lambda r: bar.update(task, description=(
            f"{label}: {r.pages} pages, {r.fetched} orders, {r.new} new, {r.failed} failed")))


COMMANDS = [import_]
