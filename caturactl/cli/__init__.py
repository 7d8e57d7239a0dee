"""``caturactl NOUN VERB``: thin click commands over the services, rich output, exit codes.

Exit codes: 0 done; 1 internal error (a bug: please report); 2 wrong usage; 65 bad input;
66 not found; 69 a remote system or the database unavailable; 70 not allowed in the current
state; 75 throttled or interrupted by the remote side, run again later (nothing lost);
78 configuration; 130 interrupted; 3 'alerts check' found something that needs a person.
"""

from __future__ import annotations

import importlib
import os
import sys

import click
from rich.text import Text
from sqlalchemy.exc import DBAPIError, OperationalError

from caturactl.cli.output import err_console
from caturactl.core import clock
from caturactl.core.errors import CaturactlError


class Context:
    """Per-invocation state: where the configuration is, and the App built from it on demand."""

    def __init__(self, config_path: str | None):
        self.config_path = config_path
        self._app = None

    @property
    def app(self):
        if self._app is None:
            from caturactl.app import App
            self._app = App.from_config(self.config_path)
        return self._app

    def ready_app(self):
        """The App, after checking the database is reachable and migrated."""
        self.app.check_database()
        return self.app


# Which module of caturactl/cli defines each top-level command. A command's module is imported
# when that command runs, not all of them at every start: a job the daemon starts, a timer's
# command, a partner's file reader each pay for their own imports only (tests/unit/test_cli_registry.py
# checks this table against the modules' COMMANDS lists).
COMMAND_MODULES = {
    "init": "setup", "db": "setup", "import": "importing", "orders": "orders", "customers": "customers",
    "tickets": "tickets", "products": "products", "stock": "stock", "route": "routing",
    "carriers": "routing", "ship": "ship", "dropship": "dropship", "deliveries": "deliveries",
    "outbox": "outbox", "invoices": "invoices", "reviews": "reviews", "settlement": "settlement",
    "payments": "payments", "export": "export", "jobs": "jobs", "report": "report", "alerts": "alerts",
    "standins": "standins", "portal": "portal",
}


class LazyGroup(click.Group):
    """The top-level group: its commands are found in COMMAND_MODULES and imported on first use
    (the pattern of click's documentation, "Lazily Loading Subcommands")."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMAND_MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMAND_MODULES.get(cmd_name)
        if module is None:
            return None
        commands = importlib.import_module(f"caturactl.cli.{module}").COMMANDS
        return next(c for c in commands if c.name == cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), envvar="CATURACTL_CONFIG",
              help="caturactl.toml to use (default: ./caturactl.toml, or $CATURACTL_CONFIG).")
@click.version_option(package_name="caturactl")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """caturactl: Amazon order intake, fulfilment and books for online merchants.

    Run 'caturactl init' in an empty folder to start, then 'caturactl db upgrade'.
    """
    clock.current()  # a wrong CATURACTL_CLOCK stops here, with its message, before any work
    ctx.obj = Context(config_path)
    ctx.call_on_close(lambda: ctx.obj._app and ctx.obj._app.dispose())


def fail(exc: CaturactlError) -> int:
    """Print ``exc`` as one line (its text as text: it may quote a file name or a remote answer)."""
    err_console.print(Text.assemble(("caturactl:", "bold red"), " ", str(exc)), soft_wrap=True)
    return exc.exit_code


def _command_words(args: list[str]) -> list[str]:
    """'import amazon' out of '--config x import amazon --since ...', for the event log."""
    words, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a == "--config":
            skip = True
        elif not a.startswith("-"):
            words.append(a)
            if len(words) == 2:
                break
    return words


def main(argv: list[str] | None = None) -> int:
    """Console entry point: no traceback reaches a user unless CATURACTL_DEBUG is set."""
    from caturactl.core.events import actor
    job = os.environ.get("CATURACTL_JOB")  # set by the scheduler for the commands it runs
    token = actor.set(f"job:{job}" if job else "cli:" + " ".join(_command_words(sys.argv[1:] if argv is None else argv)))
    try:
        return _main(argv)
    finally:
        actor.reset(token)


def _main(argv: list[str] | None) -> int:
    try:
        # Without standalone mode click hands back an Exit's code instead of raising it.
        rv = cli.main(args=argv, prog_name="caturactl", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        err_console.print("caturactl: aborted")
        return 130
    except CaturactlError as exc:
        return fail(exc)
    except (OperationalError, DBAPIError) as exc:
        from caturactl.app import database_error  # loaded already: the command opened the database through it
        return fail(database_error(exc))
    except KeyboardInterrupt:
        err_console.print("caturactl: interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, not a traceback
        if os.environ.get("CATURACTL_DEBUG"):
            raise
        err_console.print(f"caturactl: internal error: {type(exc).__name__}: {exc} "
                          "(set CATURACTL_DEBUG=1 for the traceback)", highlight=False, markup=False)
        return 1


def entry() -> None:
    sys.exit(main())
