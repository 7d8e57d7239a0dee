"""``caturactl standins amazon``: run the local SP-API stand-in from a source checkout."""

from __future__ import annotations

import click

from caturactl.core.errors import InputError


@click.group()
def standins() -> None:
    """Local servers that play the outside world (from a source checkout; not installed)."""


@standins.command("amazon", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def standins_amazon(args) -> None:
    """Run the SP-API stand-in: --port P --orders N --seed S [--day D] [--rate-scale X]."""
    import sys
    from pathlib import Path

    # The stand-ins are not installed: find the source checkout this folder is in.
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "standins" / "amazon" / "__init__.py").exists():
            sys.path.insert(0, str(folder))
            break
    try:
        from standins.amazon.__main__ import main
    except ImportError:
        raise click.UsageError("the stand-ins live in the source checkout: run this from the repository "
                               "folder, or 'python -m standins.amazon' there") from None
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse refused an argument and said why on stderr
        code = exc.code if isinstance(exc.code, int) else 2
    except (OSError, OverflowError, ValueError) as exc:  # a port taken or out of range, a bad number
        raise InputError(f"cannot start the stand-in: {exc}") from None
    raise click.exceptions.Exit(code)


COMMANDS = [standins]
