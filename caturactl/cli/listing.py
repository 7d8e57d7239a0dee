"""The two shapes of a command that reads, so that every one behaves alike: a listing (``orders
list``: rows as a rich table, a ``--json`` array or ``--format csv``, with the table's keys) and
a record (``orders show``: key/value lines with its parts as tables, or one ``--json`` object).

A command decorated with ``listing`` or ``showing`` parses its own options and returns what a
view (``caturactl/views/``, a domain's ``*_rows`` or ``*_record``) found in the one session it is
given; opening the app and the session, and printing (``caturactl/cli/output.py``), are here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import click
from rich.text import Text

from caturactl.cli.output import (Column, Section, console, emit, emit_record, emit_sections, exit_with,
                                  format_options, pick_format)
from caturactl.cli.params import count


@dataclass
class Rows:
    """What a listing's view found, when a list of rows does not say it all."""
    rows: list[dict]
    total: int | None = None  # how many rows there are, when the view was asked for fewer (--limit)
    notes: Sequence[str] = ()  # dim lines under the table, for people only
    exit_code: int = 0
    empty: str = ""  # what an empty table says instead of the listing's words


@dataclass
class Sections:
    """A report of several tables: each section with its rows, and the values its titles name."""
    parts: list[tuple[Section, list[dict]]]
    title_values: dict = field(default_factory=dict)


def listing(columns: Sequence[Column] = (), title: str = "", *, empty: str = "nothing to show",
            screenful: int | None = None, first: str = "newest") -> Callable:
    """Make ``view(app, session, **options)`` a listing command with ``--json`` and ``--format
    table|json|csv``: the app is opened (its database checked), the view asked in one session,
    and what it found (a list of rows, ``Rows``, or ``Sections``) printed with exactly
    ``columns``' keys under "TITLE (N)". With ``screenful`` the command gets ``--limit`` too: the
    table shows that many rows unless told otherwise, JSON and CSV all; the view receives
    ``limit`` (None: all) and gives ``Rows.total`` when it found more, which the table then says
    (``first``: which rows it shows). The exit code is the view's ``Rows.exit_code``."""
    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def command(obj, fmt: str, as_json: bool, **options):
            fmt = pick_format(fmt, as_json)
            if screenful is not None and options["limit"] is None and fmt == "table":
                options["limit"] = screenful  # a screenful for people; scripts get everything
            app = obj.ready_app()
            with app.session() as s:
                found = view(app, s, **options)
            if isinstance(found, Sections):
                emit_sections(found.parts, fmt=fmt, **found.title_values)
                return
            shown = found if isinstance(found, Rows) else Rows(found)
            _print(shown, columns, title, shown.empty or empty, fmt=fmt, first=first)
            exit_with(shown.exit_code)
        command = click.pass_obj(format_options(command))
        if screenful is not None:
            command = click.option("--limit", type=count(), help=f"At most this many rows, {first} first (table "
                                   f"default {screenful}; --json and csv: all).")(command)
        return command
    return decorate


def _print(shown: Rows, columns: Sequence[Column], title: str, empty: str, *, fmt: str, first: str) -> None:
    n = len(shown.rows)
    more = shown.total is not None and shown.total > n
    emit(shown.rows, columns, fmt=fmt, title=f"{title} ({n} of {shown.total})" if more else f"{title} ({n})",
         empty=empty)
    if fmt != "table":
        return
    for note in shown.notes:
        console.print(note, style="dim", highlight=False, markup=False)
    if more:
        console.print(f"showing the {first} {n}; --limit N for more, --json or --format csv for all",
                      style="dim", highlight=False)


@dataclass(frozen=True)
class Part:
    """A list in a shown record, printed as a table after its key/value lines: the record's
    ``key``, or what ``rows`` makes of the record."""
    key: str
    columns: Sequence[Column]
    title: str
    empty: str = "nothing to show"
    only_if_any: bool = False  # no table at all when the list is empty
    rows: Callable[[dict], list[dict]] | None = None


def showing(title: Callable[[dict], str], *parts: Part, hide: Sequence[str] = (),
            lines: Callable[[dict], Iterable[str | Text]] | None = None) -> Callable:
    """Make ``view(app, session, **arguments) -> dict`` a command that shows one record, with
    ``--json``: the record as one JSON object; for people ``title(record)``, its key/value lines
    (but lists, objects and ``hide``), the text ``lines(record)`` gives, and each of ``parts``
    as a table."""
    def decorate(view: Callable[..., dict]) -> Callable:
        @functools.wraps(view)
        def command(obj, as_json: bool, **arguments):
            app = obj.ready_app()
            with app.session() as s:
                record = view(app, s, **arguments)
            if as_json:
                emit_record(record, fmt="json")
                return
            emit_record({k: v for k, v in record.items() if k not in hide}, fmt="table", title=title(record))
            for line in lines(record) if lines else ():
                console.print(line, highlight=False, markup=False)
            for part in parts:
                rows = part.rows(record) if part.rows else record[part.key]
                if rows or not part.only_if_any:
                    emit(rows, part.columns, fmt="table", title=part.title, empty=part.empty)
        return click.pass_obj(click.option("--json", "as_json", is_flag=True, help="Print as JSON.")(command))
    return decorate


def limited(view: Callable[..., list[dict]], *args, limit: int | None, **options) -> Rows:
    """The rows of a view that can count what matches beyond its ``limit`` (its ``counted``
    list), with that count as their total."""
    counted: list[int] = []
    rows = view(*args, limit=limit, counted=counted if limit else None, **options)
    return Rows(rows, total=counted[0] if counted else None)
