"""Store schema 1: runs, results with their Job and Result JSON, raw samples, meta."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table("meta", sa.Column("key", sa.Text, primary_key=True), sa.Column("value", sa.Text, nullable=False))
    op.create_table(
        "runs",
        sa.Column("run_id", sa.Text, primary_key=True),
        sa.Column("started_unix", sa.Double, nullable=False),
        sa.Column("ended_unix", sa.Double),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("inventory", sa.Text, nullable=False),
        sa.Column("host", sa.Text, nullable=False),
        sa.Column("embench_version", sa.Text, nullable=False),
        sa.Column("planned", sa.Integer, nullable=False),
        sa.Column("plan_json", sa.Text, nullable=False),
    )
    op.create_table(
        "results",
        sa.Column("run_id", sa.Text, primary_key=True),
        sa.Column("job_id", sa.Text, primary_key=True),
        *(
            sa.Column(name, sa.Text, nullable=False)
            for name in ("device", "model", "precision", "format", "runtime", "delegate")
        ),
        sa.Column("threads", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("message", sa.Text),
        sa.Column("model_sha256", sa.Text),
        sa.Column("runtime_version", sa.Text),
        sa.Column("init_ms", sa.Double),
        sa.Column("first_inference_ms", sa.Double),
        sa.Column("peak_rss_kb", sa.BigInteger),
        sa.Column("window_ns", sa.BigInteger),
        sa.Column("n_samples", sa.Integer, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("started_unix", sa.Double),
        sa.Column("ended_unix", sa.Double),
        sa.Column("job_json", sa.Text, nullable=False),
        sa.Column("result_json", sa.Text, nullable=False),
    )
    op.create_table(
        "samples",
        sa.Column("run_id", sa.Text, primary_key=True),
        sa.Column("job_id", sa.Text, primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("latency_ns", sa.BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )
