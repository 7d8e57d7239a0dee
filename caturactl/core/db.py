"""Declarative base, column types shared by every table, and engine/session creation."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, Numeric, String, create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import DeclarativeBase, sessionmaker
from sqlalchemy.types import TypeDecorator

from caturactl.core import clock
from caturactl.core.errors import ConfigError, InputError


class Amount(TypeDecorator):
    """A Decimal kept exactly: NUMERIC on PostgreSQL, text on SQLite (which has no decimal type
    and would round through a float)."""

    impl = String(40)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(20, 6))
        return dialect.type_descriptor(String(40))

    def process_bind_param(self, value: Any, dialect):
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"amounts are Decimal, not {type(value).__name__}")
        return value if dialect.name == "postgresql" else str(value)

    def process_result_value(self, value: Any, dialect):
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(value)


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in, aware UTC datetimes out, whatever the database keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; caturactl stores UTC only")
        value = value.astimezone(timezone.utc)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    pass


INT64 = (-2**63, 2**63 - 1)
AMOUNT_LIMIT = Decimal(10) ** 14  # NUMERIC(20, 6): 14 digits before the point


def check_fits(row: Base, where: str) -> None:
    """Raises InputError naming ``where.field`` when a value of ``row`` would not fit its column:
    a string longer than its length, an integer beyond 64 bits, an amount beyond NUMERIC(20, 6)
    or not finite. Checked before the INSERT, so that SQLite (which stores anything) and
    PostgreSQL (which refuses with a database error) treat one bad record alike."""
    for attr in row.__mapper__.column_attrs:
        key, column = attr.key, attr.columns[0]
        value = getattr(row, key, None)
        if value is None:
            continue
        kind = column.type
        name = f"{where}.{key.lstrip('_')}"
        if isinstance(value, str) and isinstance(kind, String) and kind.length and len(value) > kind.length:
            raise InputError(f"{len(value)} characters, at most {kind.length} fit: {value[:40]!r}", where=name)
        if isinstance(value, int) and not isinstance(value, bool) and not INT64[0] <= value <= INT64[1]:
            raise InputError(f"{value} does not fit a 64-bit number", where=name)
        if isinstance(value, Decimal) and (not value.is_finite() or abs(value) >= AMOUNT_LIMIT):
            raise InputError(f"{value} is not an amount that fits", where=name)


def utcnow() -> datetime:
    """Now on the app's clock (the column default of every timestamp)."""
    return clock.now()


# How long a writer waits for another one's lock (a job, a second terminal) before SQLite says
# "database is locked"; the URL's own ``?timeout=SECONDS`` (pysqlite's parameter) overrides it.
BUSY_TIMEOUT_SECONDS = 30.0


def _sqlite_pragmas(busy_timeout: float):
    def pragmas(dbapi_conn, _record) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        cur.close()
    return pragmas


def _create_owner_only(database: str | None) -> None:
    """Create a missing SQLite file with mode 0600 before SQLite opens it: it holds customers'
    names and addresses, and SQLite would create it readable by everyone (0644 under the usual
    umask). SQLite gives the -wal and -shm files the database file's mode."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    try:
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError:
        pass  # there already, or a folder that is missing or not ours: SQLite's own open says so


def make_engine(url: str) -> Engine:
    """An engine for ``url`` (sqlite:/// or postgresql+psycopg://); raises ConfigError."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    try:
        if url.startswith("sqlite"):
            parsed = make_url(url)
            busy_timeout = float(parsed.query.get("timeout", BUSY_TIMEOUT_SECONDS))
            if not 0 <= busy_timeout <= 3600:  # also refuses nan
                raise ValueError(f"timeout={busy_timeout} is not a number of seconds from 0 to 3600")
            engine = create_engine(url)
            _create_owner_only(parsed.database)
            event.listen(engine, "connect", _sqlite_pragmas(busy_timeout))
            # pysqlite's own transaction handling defers BEGIN; let SQLAlchemy emit it so that
            # SAVEPOINTs (one per imported order) work as documented.
            event.listen(engine, "connect", lambda c, r: setattr(c, "isolation_level", None))
            event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
        else:
            engine = create_engine(url, pool_pre_ping=True)
    except (ArgumentError, ImportError, ValueError, TypeError) as exc:
        raise ConfigError(f"cannot use database URL: {exc}", where="database.url") from None
    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker:
    # Every domain's tables on Base.metadata before the first session configures the mappers
    # (relationships name each other by string across the domain packages).
    import caturactl.model  # noqa: F401
    return sessionmaker(engine, expire_on_commit=False)
