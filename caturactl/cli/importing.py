"""``caturactl import orders [--channel NAME]`` (``import amazon``: the same for Amazon)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import click
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from caturactl.cli.output import console, err_console, is_terminal
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
        click.option("--dry-run", is_flag=True, help="Fetch and check everything, store nothing."),
        click.option("--max-minutes", type=MINUTES, help="Stop after the page that passes this many minutes "
                     "(at Amazon's rate a backlog can take hours); the next run resumes there."),
        click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON (for timers)."),
    ]):
        f = option(f)
    return f


@import_.command("orders")
@click.option("--channel", "channel_names", multiple=True, metavar="NAME",
              help="Only this sales channel (repeatable; default: every channel that imports orders).")
@_options
@click.pass_obj
def import_orders(obj, channel_names: tuple[str, ...], since: str | None, dry_run: bool, max_minutes: float | None,
                  as_json: bool) -> None:
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
    exit_code = 0
    for name in channel_names or sorted(channels.REGISTERED):
        exit_code = _import(obj, name, since, dry_run, max_minutes, as_json) or exit_code
    if exit_code:
        raise click.exceptions.Exit(exit_code)


@import_.command("amazon")
@_options
@click.pass_obj
def import_amazon(obj, since: str | None, dry_run: bool, max_minutes: float | None, as_json: bool) -> None:
    """Import new and changed Amazon orders: ``import orders --channel amazon``, kept by its old name."""
    exit_code = _import(obj, "amazon", since, dry_run, max_minutes, as_json)
    if exit_code:
        raise click.exceptions.Exit(exit_code)


def _import(obj, channel: str, since: str | None, dry_run: bool, max_minutes: float | None, as_json: bool) -> int:
    """One channel's import; its exit code (0, 69, 75)."""
    from caturactl.orders.importing import Importer
    since_t = _since(since)
    budget = None if max_minutes is None else max_minutes * 60
    app = obj.ready_app()
    with app.session() as s:
        mp, scope = app.order_source(s, channel)
        importer = Importer(s, app.cfg, mp)
        label = f"importing {channel} orders"
        try:
            if is_terminal() and not as_json:
                with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                              console=err_console, transient=True) as bar:
                    task = bar.add_task(f"{label}: page 1", total=None)
                    result = importer.run(scope, since=since_t, dry_run=dry_run, max_seconds=budget,
                                          progress=lambda r: bar.update(task, description=(
                                              f"{label}: {r.pages} pages, {r.fetched} orders, "
                                              f"{r.new} new, {r.failed} failed")))
            else:
                result = importer.run(scope, since=since_t, dry_run=dry_run, max_seconds=budget)
        finally:
            mp.close()
    if as_json:
        click.echo(json.dumps(result.as_dict(), ensure_ascii=False))
    else:
        console.print(Text.assemble((f"import {channel}: ", "yellow" if result.stopped_by or result.failed else "green"),
                                    result.line()))
        for f in result.failures[:20]:
            console.print(f"  failed: {f}", highlight=False, markup=False)
        if result.failed:
            console.print("  each failed order has a ticket: caturactl tickets list", highlight=False)
    if result.exit_code:
        err_console.print(f"caturactl: import {channel} stopped early: {result.stopped_by}", highlight=False,
                          markup=False)
    return result.exit_code


COMMANDS = [import_]
