"""Store schema 4 (interleaved repetitions): each repetition of a job whose repetitions run in rounds,
kept as it arrives until the job's result is recorded from them."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "repetitions",
        sa.Column("run_id", sa.Text, primary_key=True),
        sa.Column("job_id", sa.Text, primary_key=True),
        sa.Column("repetition", sa.Integer, primary_key=True),
        sa.Column("result_json", sa.Text, nullable=False),
        sa.Column("measured_on", sa.Text),
    )
