"""Alembic's entry point for the store's schema. The store runs it on a connection it has
already opened, inside its own write transaction (see razzle.server.schema_version), so
upgrades are atomic and two processes starting at once do not both apply them."""

from alembic import context

from razzle.server.store import Base

context.configure(connection=context.config.attributes["connection"], target_metadata=Base.metadata)
with context.begin_transaction():
    context.run_migrations()
