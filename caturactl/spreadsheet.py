"""Files people open in a spreadsheet: a cell that starts with = + - @ (or a tab or carriage
return) is run as a formula there, so such text is written with a leading apostrophe. The one
rule for every CSV caturactl writes (listings, DHL files, booking exports). No imports beyond
the standard library, so renderers can use it without loading the CLI."""

from __future__ import annotations

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def guard_formula(value: str) -> str:
    """``value`` with a leading apostrophe when a spreadsheet would run it as a formula."""
    return "'" + value if value.startswith(FORMULA_START) else value
