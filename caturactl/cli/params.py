"""What an operator types, checked at the door, before a session opens: counts and limits the
database can hold, hours that are finite numbers, and references whose digits are ASCII digits.

An option out of its range is click's usage error (exit 2); a reference that cannot name a row
is NotFoundError (66), as when the row is missing."""

from __future__ import annotations

import math

import click

from caturactl.core.errors import NotFoundError
from caturactl.views.cockpit import MAX_ID, record_id

MAX_COUNT = MAX_ID  # a --limit or --top beyond the databases' INTEGER means nothing here
CENTURY_DAYS = 36525  # how far back or ahead a number of days or hours may reach


def count(minimum: int = 1) -> click.IntRange:
    """A whole number from ``minimum`` to MAX_COUNT: a --limit, --top, a number of units."""
    return click.IntRange(min=minimum, max=MAX_COUNT)


class FiniteRange(click.FloatRange):
    """A FloatRange that also refuses nan, which passes every bound because it compares false."""

    name = "float range"

    def convert(self, value, param, ctx):
        rv = super().convert(value, param, ctx)
        if not math.isfinite(rv):
            self.fail(f"{value!r} is not a number.", param, ctx)
        return rv


HOURS = FiniteRange(min=0, max=24 * CENTURY_DAYS)
MINUTES = FiniteRange(min=0, max=24 * 60 * CENTURY_DAYS)
DAYS = click.IntRange(min=0, max=CENTURY_DAYS)


def row_ref(ref: str, what: str, prefix: str = "") -> str:
    """``ref`` as typed, when it may name a row by its id (with or without ``prefix``) or by a
    key; NotFoundError("no WHAT 'REF'") when it is a number no row can have: digits that are not
    ASCII ('²³', which str.isdigit() takes and int() refuses), or more than any id."""
    text = ref.strip().upper()
    body = text.removeprefix(prefix) if prefix else text
    if body.isdigit() and record_id(text, prefix) is None:
        raise NotFoundError(f"no {what} {ref!r}")
    return ref
