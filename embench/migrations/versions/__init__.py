"""One module per store schema version (Alembic revisions)."""
