"""Alembic's environment for the store: always run from embench (store.upgrade), on the connection it
hands over in `config.attributes["connection"]`, inside that connection's transaction."""

from __future__ import annotations

from alembic import context

from embench.store_schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
