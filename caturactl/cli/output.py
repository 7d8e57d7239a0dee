"""The one way the CLI prints: rich tables for people, ``--json`` arrays and ``--format csv``
for scripts, with the same snake_case keys as the table's columns.

Values come from outside (buyers' names, partners' file names, remote error messages) and are
printed as text: never read as Rich markup ("[link=...]", "[white on white]") or emoji codes.
Style is ours only and given beside the text (``rich.text.Text``); a string that holds data is
printed with ``markup=False``."""

from __future__ import annotations

import csv
import io
import json
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Callable, Iterator, Sequence
from zoneinfo import ZoneInfo

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from caturactl.core.spreadsheet import guard_formula

# Off a terminal (a pipe, a timer's mail, make) rich would assume 80 columns and wrap every cell.
console = Console(width=None if sys.stdout.isatty() else 200, emoji=False)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 200, emoji=False)


def for_log() -> None:
    """Output going to a job's log: one summary line stays one line, however long."""
    console.width = err_console.width = 1000



@dataclass(frozen=True)
class Column:
    key: str  # snake_case, also the JSON key and CSV header
    title: str
    justify: str = "left"
    max_width: int | None = None


def jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def local_time(value: datetime | None, tz: ZoneInfo, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return value.astimezone(tz).strftime(fmt) if value else ""


def emit(rows: Sequence[dict], columns: Sequence[Column], *, fmt: str, title: str | None = None,
         empty: str = "nothing to show") -> None:
    """Print ``rows`` as a table, a JSON array or CSV, always with exactly ``columns``' keys."""
    keys = [c.key for c in columns]
    if fmt == "json":
        click.echo(json.dumps([{k: jsonable(r.get(k)) for k in keys} for r in rows], ensure_ascii=False, indent=1))
        return
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(keys)
        for r in rows:
            w.writerow([guard_formula(str(jsonable(r.get(k)) if r.get(k) is not None else "")) for k in keys])
        click.echo(buf.getvalue(), nl=False)
        return
    if not rows:
        console.print(Text(empty, style="dim"))
        return
    table = Table(title=Text(title, style="table.title") if title else None, header_style="bold", show_lines=False)
    for c in columns:
        table.add_column(c.title, justify=c.justify, max_width=c.max_width, overflow="ellipsis",
                         no_wrap=True)
    for r in rows:
        table.add_row(*(Text("" if r.get(k) is None else str(jsonable(r.get(k)))) for k in keys))
    console.print(table)


@dataclass(frozen=True)
class Section:
    """One table of a report of several (``report sales``): its rows carry ``key`` as their
    ``section`` in JSON and CSV."""
    key: str
    title: str  # may name values given to emit_sections ("Sales in {month}")
    columns: list[Column]


def emit_sections(parts: Sequence[tuple[Section, Sequence[dict]]], *, fmt: str, **title_values) -> None:
    """Print each section as its own table, or all of them as one JSON array (each object with
    its ``section`` and that section's keys) or one CSV (a ``section`` column and the columns of
    every section, empty where a section has no such column)."""
    if fmt == "json":
        click.echo(json.dumps([{"section": sec.key, **{c.key: jsonable(r.get(c.key)) for c in sec.columns}}
                               for sec, rows in parts for r in rows], ensure_ascii=False, indent=1))
        return
    if fmt == "csv":
        union: dict[str, Column] = {"section": Column("section", "Section")}
        for sec, _ in parts:
            union.update({c.key: c for c in sec.columns if c.key not in union})
        emit([{**r, "section": sec.key} for sec, rows in parts for r in rows], list(union.values()), fmt="csv")
        return
    for sec, rows in parts:
        title = sec.title.format(**title_values)
        emit(rows, sec.columns, fmt="table", title=f"{title} ({len(rows)})", empty=f"{title}: none")


def emit_record(record: dict, *, fmt: str, title: str = "") -> None:
    """One object: JSON for scripts, key/value lines for people."""
    if fmt == "json":
        click.echo(json.dumps({k: jsonable(v) for k, v in record.items()}, ensure_ascii=False, indent=1))
        return
    if title:
        console.print(Text(title, style="bold"))
    width = max((len(k) for k in record), default=0)
    for k, v in record.items():
        if isinstance(v, (list, dict)):
            continue
        console.print(Text(f"  {k.replace('_', ' '):<{width}}  {'' if v is None else jsonable(v)}"))


def format_options(f):
    """``--json`` and ``--format table|json|csv`` on every listing."""
    f = click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
                     show_default=True, help="Output format.")(f)
    f = click.option("--json", "as_json", is_flag=True, help="Same as --format json.")(f)
    return f


def pick_format(fmt: str, as_json: bool) -> str:
    """The format asked for; a usage error for --json with --format csv (which one was meant?)."""
    if as_json and fmt == "csv":
        raise click.UsageError("--json and --format csv exclude each other: give one")
    return "json" if as_json else fmt


def is_terminal() -> bool:
    return sys.stderr.isatty()


@contextmanager
def progress_bar(label: str, total: int | None, *, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr when it is a terminal (never in a timer's log); yields advance(n)."""
    if not (enabled and is_terminal()) or not total:
        yield lambda n: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err_console, transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def summary(name: str, data: dict, *, as_json: bool, line: str, ok: bool = True) -> None:
    """The one summary line of a batch command, or its JSON object for timers."""
    if as_json:
        click.echo(json.dumps({k: jsonable(v) for k, v in data.items()}, ensure_ascii=False))
    else:
        console.print(Text.assemble((f"{name}: ", "green" if ok else "yellow"), line))


DRY = "DRY RUN, nothing stored or sent: "


def exit_with(code: int) -> None:
    """End the command with ``code`` (after its summary was printed); 0 returns."""
    if code:
        raise click.exceptions.Exit(code)
