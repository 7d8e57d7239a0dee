"""Numbers without gaps or doubles: a counter row per series (its primary key, e.g. prefix and
year) whose ``last`` is the last number given.

The next number is claimed by one upsert in the caller's transaction: the first of a series is
the row's INSERT, every later one the conflict's UPDATE, and either holds the row until commit
(PostgreSQL; SQLite has one writer anyway). Two runs never get the same number, and a rolled-back
(dry) run gives its number back.
"""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from caturactl.core.db import Base


def claim_next(session: Session, counter: type[Base], **series) -> int:
    """The next number of the ``counter`` row that ``series`` (its primary key's values) names,
    1 for a series not seen yet."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    last = counter.__table__.c.last
    stmt = (insert(counter).values(**series, last=1)
            .on_conflict_do_update(index_elements=list(series), set_={"last": last + 1})
            .returning(last))
    return int(session.execute(stmt).scalar_one())
