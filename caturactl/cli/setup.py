"""``caturactl init`` and ``caturactl db upgrade``."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import click

from caturactl.cli.output import console
from caturactl.errors import ConfigError, InputError


def _template(name: str) -> str:
    return resources.files("caturactl").joinpath("templates", name).read_text(encoding="utf-8")


@click.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Folder to set up.")
@click.option("--database-url", help="Database URL to write instead of the SQLite default.")
@click.option("--force", is_flag=True, help="Overwrite existing caturactl.toml and jobs.toml.")
@click.option("--no-db", is_flag=True, help="Only write the files; do not create the database.")
def init(directory: str, database_url: str | None, force: bool, no_db: bool) -> None:
    """Write a commented caturactl.toml and jobs.toml, and create the database."""
    from caturactl import config as config_mod
    from caturactl.app import App
    from caturactl.migrations import upgrade

    folder = Path(directory)
    try:
        written = _write_files(folder, database_url, force)
    except OSError as exc:
        raise InputError(f"cannot write there: {exc.strerror}", where=str(exc.filename or folder)) from None
    for w in written:
        console.print(f"wrote {w}", markup=False)
    if no_db:
        return
    app = App(config_mod.load(folder / "caturactl.toml"))
    try:
        before, after = upgrade(app.engine)
    finally:
        app.dispose()
    console.print(f"database ready (schema {after})" if before != after else f"database already at schema {after}")
    console.print("next: set amazon.client_id and the secrets, import your catalogue with "
                  "'caturactl products import FILE.csv', then 'caturactl import amazon'")


def _write_files(folder: Path, database_url: str | None, force: bool) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in ("caturactl.toml", "jobs.toml"):
        target = folder / name
        if target.exists() and not force:
            console.print(f"kept existing {target} (use --force to overwrite)", markup=False)
            continue
        text = _template(name)
        if name == "caturactl.toml" and database_url:
            if '"' in database_url:
                raise InputError("a database URL cannot contain '\"'", where="--database-url")
            text = text.replace('url = "sqlite:///caturactl.db"', f'url = "{database_url}"')
        if name == "caturactl.toml":
            _write_owner_only(target, text)
        else:
            target.write_text(text, encoding="utf-8")
        written.append(str(target))
    return written


def _write_owner_only(target: Path, text: str) -> None:
    """Write ``target`` readable by its owner alone (0600): caturactl.toml names the database
    (with its password, if the URL has one), and the database itself is the owner's alone."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(fd, 0o600)  # an existing file (--force) keeps its old mode otherwise
        f.write(text)


@click.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@click.pass_obj
def db_upgrade(obj, revision: str) -> None:
    """Migrate the database to the newest schema; works on SQLite and PostgreSQL."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    from alembic.util.exc import CommandError

    from caturactl.app import database_error
    from caturactl.migrations import upgrade
    try:
        before, after = upgrade(obj.app.engine, revision)
    except (OperationalError, DBAPIError) as exc:
        raise database_error(exc, "cannot migrate the database") from None
    except CommandError as exc:  # e.g. an unknown revision
        raise ConfigError(str(exc), where="--revision") from None
    console.print(f"schema {before or 'empty'} -> {after}" if before != after else f"schema already at {after}")


@db.command("current")
@click.pass_obj
def db_current(obj) -> None:
    """Show the schema revision of the database and the newest one."""
    from caturactl.migrations import current, head
    with obj.app.engine.connect() as conn:
        console.print(f"database: {current(conn) or 'empty'}; newest: {head()}")


COMMANDS = [init, db]
