"""What every host-side agent driver offers, and the Results the host makes itself."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from embench_agent.protocol import Job, Probe, Result, SourceSpec


class Agent(Protocol):
    """Drives one kind of on-device agent over a device's transport."""

    NAME: str

    def probe(self, libraries: Mapping[str, str], timeout: float = 60.0, roots: Sequence[str] = ()) -> Probe:
        """Device facts, runtimes, whether each delegate library loads, and the telemetry sources found
        under / and each of `roots`; TransportError when the device cannot be used."""
        ...

    def temperature(self, sources: Sequence[SourceSpec], timeout: float = 30.0) -> float | None:
        """The device's hottest temperature source now, or None when none is readable."""
        ...

    def run(self, job: Job, timeout: float, model_file: Path | None = None) -> Result:
        """Run one job; always a Result (a timeout, a crash or garbage output included). `model_file`
        is the job's model on the host (benchmark_model reads its tensors there for the checks)."""
        ...


def host_result(job: Job, status: str, message: str, **extra: Any) -> Result:
    """A Result made on the host, where no agent result exists (not run, timed out, crashed, garbage)."""
    now = time.time()
    return Result(job_id=job.job_id, agent="host", status=status, message=message, started_unix=now,
                  ended_unix=now, **extra)  # fmt: skip
