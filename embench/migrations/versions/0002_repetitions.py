"""Store schema 2: each sample's repetition (sweep.run.repetitions), and a run's label (nightly)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.add_column("samples", sa.Column("repetition", sa.Integer, nullable=False, server_default="0"))
    op.add_column("runs", sa.Column("label", sa.Text))
