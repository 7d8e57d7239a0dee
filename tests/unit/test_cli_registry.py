"""The top-level commands are imported on first use: the table that says where each one lives
must name every command of every module, and a command's start must not import the others."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

from caturactl import cli

CLI = Path(cli.__file__).parent


def test_the_lazy_table_names_every_command_of_every_cli_module_and_nothing_else():
    found = {}
    for path in sorted(CLI.glob("*.py")):
        module = importlib.import_module(f"caturactl.cli.{path.stem}")
        for command in getattr(module, "COMMANDS", ()):
            found[command.name] = path.stem
    assert found == cli.COMMAND_MODULES


def test_every_command_is_listed_in_the_help():
    out = subprocess.run([sys.executable, "-m", "caturactl", "--help"], capture_output=True, text=True, check=True).stdout
    listed = {line.split()[0] for line in out.split("Commands:")[1].splitlines() if line.strip()}
    assert listed == set(cli.COMMAND_MODULES)


def test_starting_one_command_imports_neither_the_others_nor_pdf_and_migration_libraries():
    probe = ("import sys\nfrom caturactl.cli import main\nmain(['tickets', 'list', '--help'])\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('fpdf', 'alembic', 'lxml', 'paramiko',"
             " 'starlette') or (m.startswith('caturactl.cli.') and m.split('.')[2] in ("
             "'orders', 'dropship', 'invoices', 'jobs', 'portal'))))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
