"""The store's tables as they are now (store schema 4), for SQLite and PostgreSQL alike.

How a store of an older schema reaches these tables is in `migrations/` (Alembic); a test checks that
the migrations, run from nothing, give exactly these tables."""

from __future__ import annotations

import sqlalchemy as sa

STORE_SCHEMA_VERSION = 4  # the tables; the Job/Result JSON has its own (embench_agent.protocol)
# The Alembic revision of each schema version (revision ids are the versions, zero-padded).
REVISIONS = {v: f"{v:04d}" for v in range(1, STORE_SCHEMA_VERSION + 1)}

metadata = sa.MetaData()

meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.Text, primary_key=True),
    sa.Column("started_unix", sa.Double, nullable=False),
    sa.Column("ended_unix", sa.Double),
    sa.Column("state", sa.Text, nullable=False),  # running | finished | interrupted
    sa.Column("inventory", sa.Text, nullable=False),
    sa.Column("host", sa.Text, nullable=False),
    sa.Column("embench_version", sa.Text, nullable=False),
    sa.Column("planned", sa.Integer, nullable=False),
    sa.Column("plan_json", sa.Text, nullable=False),
    sa.Column("label", sa.Text),  # "nightly" for `embench nightly` runs (schema 2)
)

results = sa.Table(
    "results",
    metadata,
    sa.Column("run_id", sa.Text, primary_key=True),
    sa.Column("job_id", sa.Text, primary_key=True),
    sa.Column("device", sa.Text, nullable=False),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("precision", sa.Text, nullable=False),
    sa.Column("format", sa.Text, nullable=False),
    sa.Column("runtime", sa.Text, nullable=False),
    sa.Column("delegate", sa.Text, nullable=False),
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
    sa.Column("error", sa.Text),  # Result.error, e.g. device_lost (schema 3)
    sa.Column("measured_on", sa.Text),  # the host whose embench drove the device: a lab worker or this one (schema 3)
)

samples = sa.Table(
    "samples",
    metadata,
    sa.Column("run_id", sa.Text, primary_key=True),
    sa.Column("job_id", sa.Text, primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("latency_ns", sa.BigInteger, nullable=False),
    # which fresh process timed it (sweep.run.repetitions; schema 2)
    sa.Column("repetition", sa.Integer, nullable=False, server_default="0"),
    sqlite_with_rowid=False,
)

# Each repetition of an interleaved job (sweep.run.order, embench/rounds.py) as it arrives, until the
# job's one result is recorded from them (then they are deleted in the same transaction; a result of a
# lost device keeps them for --resume). Schema 4.
repetitions = sa.Table(
    "repetitions",
    metadata,
    sa.Column("run_id", sa.Text, primary_key=True),
    sa.Column("job_id", sa.Text, primary_key=True),
    sa.Column("repetition", sa.Integer, primary_key=True),
    sa.Column("result_json", sa.Text, nullable=False),  # that repetition's Result, its samples with it
    sa.Column("measured_on", sa.Text),
)
