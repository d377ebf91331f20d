"""Run one job: idle baseline, the runtime's measurement, telemetry around it; always a Result."""

from __future__ import annotations

import dataclasses
import time
import traceback
from typing import Any, Callable, Dict, Optional

from . import AGENT_VERSION
from .errors import JobProblem, Unsupported
from .facts import device_facts, peak_rss_kb
from .protocol import Job, Result
from .runtimes import RUNTIMES, Measurement
from .telemetry.sampler import Sampler


def _measure(job: Job, sampler: Optional[Sampler]) -> Measurement:
    runtime = RUNTIMES.get(job.runtime)
    if runtime is None:
        raise Unsupported(
            "runtime {!r} is not known to this agent ({})".format(job.runtime, ", ".join(sorted(RUNTIMES)))
        )
    if sampler is not None:
        sampler.start()
        sampler.edge("idle_start")  # idle baseline: before the model is even loaded
        time.sleep(job.run.idle_seconds)
        sampler.edge("idle_end")
    return runtime.run(job, sampler.edge if sampler is not None else None)


def _measured(m: Measurement) -> Dict[str, Any]:
    t = m.timing
    return dict(
        status=m.status, message=m.message, runtime=m.runtime, delegation=m.delegation, init_ms=m.init_ms,
        runtime_log=m.runtime_log, first_inference_ms=t.first_inference_ms, samples_ns=t.samples_ns,
        window_ns=t.window_ns, window_start_unix=t.window_start_unix, window_end_unix=t.window_end_unix,
    )  # fmt: skip


def run_job(job: Job, emit: Optional[Callable[[Result], None]] = None) -> Result:
    """Run one job and return its Result; never raises for a job-level problem. With checks to run
    (fidelity inputs, an evaluation set), the Result without them goes to `emit` first: if the checks
    kill the process (a delegate crashing on another input, the job's timeout), the timing stands."""
    started = time.time()
    facts = device_facts()
    sampler = Sampler(job.telemetry) if job.telemetry else None
    fields: Dict[str, Any]
    checks = None
    try:
        measurement = _measure(job, sampler)
        fields, checks = _measured(measurement), measurement.checks
    except JobProblem as exc:
        fields = dict(status=exc.status, message=str(exc), error=exc.error, runtime=exc.runtime,
                      delegation=exc.delegation)  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - every job-level error becomes a `failed` result
        fields = dict(status="failed", message=f"{type(exc).__name__}: {exc}",
                      traceback=traceback.format_exc()[-4000:])  # fmt: skip
    telemetry = sampler.stop() if sampler is not None else None
    result = Result(
        job_id=job.job_id, agent="python", agent_version=AGENT_VERSION, started_unix=started, device_facts=facts,
        telemetry=telemetry, peak_rss_kb=peak_rss_kb(), ended_unix=time.time(), **fields,
    )  # fmt: skip
    if checks is None or not (job.checks.fidelity_inputs or job.checks.eval_path):
        return result
    if emit is not None:
        emit(result)
    outputs, accuracy = checks()
    return dataclasses.replace(result, outputs=outputs, accuracy=accuracy, ended_unix=time.time())
