"""Files people open in a spreadsheet: a cell that starts with = + - @ (or a tab or carriage
return) is run as a formula there, so such text is written with a leading apostrophe. The one
rule for every CSV caturactl writes (listings, DHL files, booking exports, DATEV files). A
negative number ("-12.50", "-3") is only a number to a spreadsheet and stays as it is. No
imports beyond the standard library, so renderers can use it without loading the CLI."""

from __future__ import annotations

import re

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# A minus and ASCII digits with one decimal point or comma: read as a negative number, never a
# formula. Anything more ("-1+2", "-2-A1", "-5E+2") may compute, so it keeps the guard.
NEGATIVE_NUMBER = re.compile(r"-[0-9]+(?:[.,][0-9]+)?")


def guard_formula(value: str) -> str:
    """``value`` with a leading apostrophe when a spreadsheet would run it as a formula."""
    if value.startswith(FORMULA_START) and not NEGATIVE_NUMBER.fullmatch(value):
        return "'" + value
    return value
