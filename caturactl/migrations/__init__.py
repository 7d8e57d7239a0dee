"""Alembic migrations shipped inside the package, so ``caturactl db upgrade`` works anywhere.

This module answers "is the schema current?" without importing Alembic (about 0.2 s of every
command's start, and every job the daemon runs is a command); ``caturactl.migrations.apply``
migrates, with Alembic.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

HERE = Path(__file__).parent
_DECLARED = re.compile(r"^(down_revision|revision)\s*=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)


@cache
def head() -> str:
    """The newest revision: the one no script names as its ``down_revision``. The scripts form
    one line (tests/integration/test_migrations.py holds this equal to Alembic's own answer)."""
    revisions, parents = set(), set()
    for script in (HERE / "versions").glob("*.py"):
        for field, value in _DECLARED.findall(script.read_text(encoding="utf-8")):
            (revisions if field == "revision" else parents).add(value)
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"the migration scripts have {len(heads)} heads: {sorted(heads)}")
    return heads.pop()


def current(connection: Connection) -> str | None:
    """The revision the database is at (None for an empty one), as Alembic recorded it."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
