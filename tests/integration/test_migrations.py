"""The Alembic revisions build exactly the schema the models describe (no forgotten migration)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from caturactl import migrations
from caturactl.migrations.apply import upgrade
from caturactl.model import Base  # the registry: every table on Base.metadata
from caturactl.core.db import make_engine


def test_migrations_at_head_match_the_models(database_url):
    engine = make_engine(database_url)
    upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_the_head_read_from_the_scripts_is_alembics_head():
    assert migrations.head() == ScriptDirectory(str(migrations.HERE)).get_current_head()
