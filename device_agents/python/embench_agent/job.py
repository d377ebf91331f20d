"""Run one job: idle baseline, the runtime's measurement (or its repetitions), telemetry around it;
always a Result."""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Dict, Optional

from . import AGENT_VERSION
from .facts import device_facts, peak_rss_kb
from .protocol import Job, Result
from .repeat import measured_fields, problem_fields, run_repetitions, runtime_for
from .telemetry.sampler import Sampler


def _idle(job: Job, sampler: Optional[Sampler]) -> None:
    if sampler is not None:
        sampler.start()
        sampler.edge("idle_start")  # idle baseline: before the model is even loaded
        time.sleep(job.run.idle_seconds)
        sampler.edge("idle_end")


def run_job(job: Job, emit: Optional[Callable[[Result], None]] = None) -> Result:
    """Run one job and return its Result; never raises for a job-level problem. With checks to run
    (fidelity inputs, an evaluation set), the Result without them goes to `emit` first: if the checks
    kill the process (a delegate crashing on another input, the job's timeout), the timing stands."""
    started = time.time()
    facts = device_facts()
    sampler = Sampler(job.telemetry) if job.telemetry else None
    fields: Dict[str, Any]
    checks: Optional[Callable[[], Any]] = None
    checks_line: Optional[Result] = None
    try:
        runtime = runtime_for(job)
        _idle(job, sampler)
        if job.run.repetitions > 1:
            fields, checks_line = run_repetitions(job, sampler)
        else:
            measurement = runtime.run(job, sampler.edge if sampler is not None else None)
            fields, checks = measured_fields(measurement), measurement.checks
    except Exception as exc:  # noqa: BLE001 - every job-level error becomes a result
        fields = problem_fields(exc)
    telemetry = sampler.stop() if sampler is not None else None
    peak = fields.pop("peak_rss_kb", None) or peak_rss_kb()  # repetitions: the biggest child's
    result = Result(
        job_id=job.job_id, agent="python", agent_version=AGENT_VERSION, started_unix=started, device_facts=facts,
        telemetry=telemetry, peak_rss_kb=peak, ended_unix=time.time(), **fields,
    )  # fmt: skip
    if checks_line is not None:  # the last repetition ran them, in its own process
        note = checks_line.message
        message = f"{result.message}; {note}" if note and result.message else (note or result.message)
        return dataclasses.replace(result, outputs=checks_line.outputs, accuracy=checks_line.accuracy, message=message)
    if checks is None or not (job.checks.fidelity_inputs or job.checks.eval_path):
        return result
    if emit is not None:
        emit(result)
    outputs, accuracy = checks()
    return dataclasses.replace(result, outputs=outputs, accuracy=accuracy, ended_unix=time.time())
