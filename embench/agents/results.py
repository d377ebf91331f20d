"""Results made on the host, when no agent result exists (not run, timed out, crashed)."""

from __future__ import annotations

import time
from typing import Any

RESULT_SCHEMA = 1
STATUSES = ("ok", "fallback", "unsupported", "failed", "crashed", "timeout")
SUCCESS = ("ok", "fallback", "unsupported")


def host_result(job: dict[str, Any], status: str, message: str, **extra: Any) -> dict[str, Any]:
    now = time.time()
    return {
        "schema": RESULT_SCHEMA,
        "job_id": job["job_id"],
        "agent": "host",
        "status": status,
        "message": message,
        "samples_ns": [],
        "started_unix": now,
        "ended_unix": now,
        **extra,
    }
