"""``caturactl init`` and ``caturactl db upgrade``."""

from __future__ import annotations

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
        console.print(f"wrote {w}")
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
            console.print(f"kept existing {target} (use --force to overwrite)")
            continue
        text = _template(name)
        if name == "caturactl.toml" and database_url:
            if '"' in database_url:
                raise InputError("a database URL cannot contain '\"'", where="--database-url")
            text = text.replace('url = "sqlite:///caturactl.db"', f'url = "{database_url}"')
        target.write_text(text, encoding="utf-8")
        written.append(str(target))
    return written


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

    from caturactl.errors import RemoteError
    from caturactl.migrations import upgrade
    try:
        before, after = upgrade(obj.app.engine, revision)
    except (OperationalError, DBAPIError) as exc:
        raise RemoteError(f"cannot migrate the database: {str(exc.orig).strip().splitlines()[0]}") from None
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
