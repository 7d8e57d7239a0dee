"""``python -m caturactl``: the same as the console script."""

from caturactl.cli import entry

entry()
