"""``caturactl init`` and ``caturactl db upgrade``."""

from __future__ import annotations

import json
import os
import re
import sys
from importlib import resources
from pathlib import Path

import click

from caturactl.cli.output import console
from caturactl.config import CAPITAL_COMPANY_FORMS, LEGAL_FORMS, REGISTERED_FORMS, legal_form
from caturactl.core.errors import ConfigError, InputError


def _template(name: str) -> str:
    return resources.files("templates.config").joinpath(name).read_text(encoding="utf-8")


def _email(value: str) -> str:
    # XRechnung's BR-DE-28: one @ with something on each side and a dot in the domain.
    if value and not re.fullmatch(r"[^@\s]+@([^@.\s]+\.)+[^@.\s]+", value.strip()):
        raise click.BadParameter(f"not an e-mail address: {value!r}")
    return value.strip()


def _phone(value: str) -> str:
    # XRechnung's BR-DE-27: at least three digits.
    if value and sum(c.isdigit() for c in value) < 3:
        raise click.BadParameter(f"not a phone number: {value!r}")
    return value.strip()


def _legal_form(value: str) -> str:
    try:
        return legal_form(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _check(parse):
    """An option callback from a prompt's value check."""
    return lambda ctx, param, value: parse(value) if value else value


@click.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Folder to set up.")
@click.option("--database-url", help="Database URL to write instead of the SQLite default.")
@click.option("--force", is_flag=True, help="Overwrite existing caturactl.toml and jobs.toml.")
@click.option("--no-db", is_flag=True, help="Only write the files; do not create the database.")
@click.option("--contact", help="Seller contact person for invoice questions (XRechnung BT-41).")
@click.option("--phone", callback=_check(_phone), help="The contact's phone number (BT-42).")
@click.option("--email", callback=_check(_email), help="The contact's e-mail address (BT-43).")
@click.option("--legal-form", callback=_check(_legal_form),
              help=f"The company's legal form (Rechtsform): {', '.join(f for f in LEGAL_FORMS if f)}.")
@click.option("--register-court", help="Registergericht, e.g. 'Amtsgericht Köln' (registered merchants).")
@click.option("--register-number", help="Register number, e.g. 'HRB 12345'.")
@click.option("--managing-directors", help="Every managing director (GmbH, UG, AG: Vorstand), comma-separated.")
@click.option("--oss/--no-oss", default=None,
              help="EU distance sales to private buyers over EUR 10,000 a year: destination VAT (One-Stop-Shop).")
@click.option("--no-input", is_flag=True, help="Ask nothing; what no option gives stays empty in caturactl.toml.")
def init(directory: str, database_url: str | None, force: bool, no_db: bool, contact: str | None,
         phone: str | None, email: str | None, legal_form: str | None, register_court: str | None,
         register_number: str | None, managing_directors: str | None, oss: bool | None, no_input: bool) -> None:
    """Write a commented caturactl.toml and jobs.toml, and create the database.

    On a terminal it asks what invoices need and the template cannot know: the seller contact
    (name, phone, e-mail: an XRechnung requires them), the legal form and, for registered
    companies, register court, number and managing directors (the invoice footer, § 35a GmbHG),
    and whether EU distance sales pass the OSS threshold. Options answer without asking;
    without a terminal (or with --no-input) nothing is asked.
    """
    from caturactl import config as config_mod
    from caturactl.app import App
    from caturactl.migrations.apply import upgrade

    folder = Path(directory)
    given = {"contact": contact, "phone": phone, "email": email, "legal_form": legal_form,
             "register_court": register_court, "register_number": register_number,
             "managing_directors": managing_directors, "oss": oss}
    try:
        answers = {}
        if force or not (folder / "caturactl.toml").exists():
            answers = _answers(given, ask=not no_input and sys.stdin.isatty())
        written = _write_files(folder, database_url, force, answers)
    except OSError as exc:
        raise InputError(f"cannot write there: {exc.strerror}", where=str(exc.filename or folder)) from None
    for w in written:
        console.print(f"wrote {w}", markup=False)
    form = answers.get("legal_form", "")
    missing = [k for k in ("register_court", "register_number") if form in REGISTERED_FORMS and not answers.get(k)]
    missing += ["managing_directors"] if form in CAPITAL_COMPANY_FORMS and not answers.get("managing_directors") else []
    if missing:
        console.print(f"note: invoices of a {form} must name its {', '.join(missing)} (§ 35a GmbHG, § 37a HGB): "
                      f"set them in [company] of caturactl.toml", markup=False, highlight=False)
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


def _answers(given: dict, *, ask: bool) -> dict:
    """The values init writes into caturactl.toml: the options given, and on a terminal the
    answers to what they left open. Register data is asked only of forms that carry it."""
    def question(key: str, text: str, check=None) -> None:
        if given.get(key) is None and ask:
            given[key] = click.prompt(text, default="", show_default=False, value_proc=check)

    question("contact", "Seller contact for invoice questions (name; an XRechnung requires it)")
    question("phone", "Their phone number", _phone)
    question("email", "Their e-mail address", _email)
    if given.get("legal_form") is None and ask:
        given["legal_form"] = click.prompt(f"Legal form ({', '.join(f for f in LEGAL_FORMS if f)})",
                                           value_proc=_legal_form)
    form = given.get("legal_form") or ""
    if form in REGISTERED_FORMS:
        question("register_court", "Register court (Registergericht), e.g. Amtsgericht Köln")
        question("register_number", "Register number, e.g. HRB 12345")
    if form in CAPITAL_COMPANY_FORMS:
        question("managing_directors", "Managing directors (all of them, comma-separated)"
                 if form != "AG" else "Members of the Vorstand (all of them, comma-separated)")
    if given.get("oss") is None and ask:
        given["oss"] = click.confirm("Do your distance sales to private buyers in other EU countries pass "
                                     "EUR 10,000 a year (One-Stop-Shop: their VAT rates apply)?", default=False)
    return {k: v for k, v in given.items() if v not in (None, "")}


def _with_answers(text: str, answers: dict) -> str:
    """The template ``text`` with the answered keys set ([company] and [tax] oss)."""
    for key, value in answers.items():
        section = "tax" if key == "oss" else "company"
        literal = ("true" if value else "false") if isinstance(value, bool) else json.dumps(value, ensure_ascii=False)
        text = _set_key(text, section, key, literal)
    return text


def _set_key(text: str, section: str, key: str, literal: str) -> str:
    """``key = literal`` in ``[section]`` of the TOML ``text``, keeping the line's comment."""
    lines = text.split("\n")
    inside = False
    for i, line in enumerate(lines):
        if line.startswith("["):
            inside = line.split("#")[0].strip() == f"[{section}]"
            continue
        match = re.match(rf"{re.escape(key)}\s*=\s*(\"\"|true|false)(\s*#.*)?$", line)
        if inside and match:
            lines[i] = f"{key} = {literal}" + (f"  {match[2].strip()}" if match[2] else "")
            return "\n".join(lines)
    raise ConfigError(f"the caturactl.toml template has no {key} in [{section}]", where="templates/config")


def _write_files(folder: Path, database_url: str | None, force: bool, answers: dict | None = None) -> list[str]:
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
            _write_owner_only(target, _with_answers(text, answers or {}))
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
    from caturactl.migrations.apply import upgrade
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
