"""Alembic migrations of the results store: `embench store upgrade` runs them (a SQLite store is also
upgraded by the first sweep that opens it). Revision ids are the store schema versions, zero-padded."""
