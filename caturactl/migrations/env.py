"""Alembic environment: always run with a connection handed in by caturactl.migrations."""

from alembic import context

from caturactl.model import Base  # the registry: every table on Base.metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
with context.begin_transaction():
    context.run_migrations()
