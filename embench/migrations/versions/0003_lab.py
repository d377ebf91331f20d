"""Store schema 3 (a lab of many hosts): which host measured each result, and the result's error kind as
a column (a resume finds the jobs whose device was lost without reading every result's JSON)."""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.add_column("results", sa.Column("error", sa.Text))
    op.add_column("results", sa.Column("measured_on", sa.Text))
    results = sa.table("results", sa.column("run_id"), sa.column("job_id"), sa.column("result_json"),
                       sa.column("error"), sa.column("status"), sa.column("measured_on"))  # fmt: skip
    runs = sa.table("runs", sa.column("run_id"), sa.column("host"))
    bind = op.get_bind()
    # Before schema 3 every result was measured by the host that ran the sweep.
    bind.execute(results.update().values(
        measured_on=sa.select(runs.c.host).where(runs.c.run_id == results.c.run_id).scalar_subquery()))  # fmt: skip
    failed = bind.execute(
        sa.select(results.c.run_id, results.c.job_id, results.c.result_json).where(results.c.status != "ok")
    ).all()
    for run_id, job_id, body in failed:
        error = json.loads(str(body)).get("error")
        if error:
            bind.execute(results.update().where(results.c.run_id == run_id, results.c.job_id == job_id)
                         .values(error=error))  # fmt: skip
