"""One device's queue: one job at a time, with offer checks, timeout, retries and cooldown."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .agents import PythonAgent, host_result
from .inventory import Device
from .plan import Job
from .transports import Transport, open_transport
from .zoo import Artifact

RETRYABLE = ("crashed", "timeout")


@dataclass
class Events:
    """Callbacks the runner reports through (progress bars, the store)."""

    started: Callable[[Job], None] = lambda job: None
    finished: Callable[[Job, dict[str, Any], dict[str, Any]], None] = lambda job, spec, result: None


@dataclass
class DeviceRunner:
    device: Device
    jobs: list[Job]
    artifacts: dict[tuple[str, str, str], Artifact]
    events: Events
    stop: threading.Event = field(default_factory=threading.Event)
    transport: Transport | None = None

    def run(self) -> None:
        """Run every job in order; stops between jobs once `stop` is set."""
        self.transport = self.transport or open_transport(self.device)
        agent = PythonAgent(self.transport, self.device.python or "python3")
        try:
            for n, job in enumerate(self.jobs):
                if self.stop.is_set():
                    return
                if n and job.run.cooldown_seconds:
                    self.stop.wait(job.run.cooldown_seconds)
                self.events.started(job)
                spec = self.job_spec(job)
                result = self.run_one(agent, job, spec)
                if self.stop.is_set() and result["status"] in RETRYABLE:
                    return  # killed by the interrupt: not a result; --resume runs it again
                self.events.finished(job, spec, result)
        finally:
            self.transport.close()

    def job_spec(self, job: Job) -> dict[str, Any]:
        """The Job JSON the agent reads (DESIGN.md contract), before the model path is known."""
        artifact = self.artifacts[(job.model, job.format, job.precision)]
        delegate: dict[str, Any] = {"name": job.delegate}
        if job.runtime == "litert" and job.delegate not in ("cpu", "xnnpack"):
            delegate["library"] = self.device.delegate_library(job.delegate)
        delegate["options"] = dict(self.device.delegate_options.get(job.delegate, {}))
        run = job.run
        return {
            "schema": 1,
            "job_id": job.job_id,
            "device": job.device,
            "model": {
                "name": job.model,
                "path": None,
                "sha256": artifact.sha256,
                "size": artifact.size,
                "format": job.format,
                "precision": job.precision,
            },
            "runtime": job.runtime,
            "delegate": delegate,
            "threads": job.threads,
            "run": {
                "warmup_runs": run.warmup_runs,
                "min_runs": run.min_runs,
                "min_seconds": run.min_seconds,
                "max_seconds": run.max_seconds,
            },
            "telemetry": list(self.device.telemetry),
            "seed": job.seed,
        }

    def run_one(self, agent: PythonAgent, job: Job, spec: dict[str, Any]) -> dict[str, Any]:
        why_not = self.device.offers(job.runtime, job.delegate)
        if why_not:
            return host_result(spec, "unsupported", why_not + "; not attempted")
        assert self.transport is not None
        artifact = self.artifacts[(job.model, job.format, job.precision)]
        attempts = 0
        while True:
            attempts += 1
            try:
                spec["model"]["path"] = self.transport.ensure_file(artifact.path, artifact.sha256)
                result = agent.run(spec, timeout=job.run.timeout_seconds)
            except (OSError, RuntimeError) as exc:
                result = host_result(spec, "failed", f"{self.device.name}: {exc}")
            if result["status"] not in RETRYABLE or attempts > job.run.retries or self.stop.is_set():
                result["attempts"] = attempts
                return result
            self.stop.wait(min(5.0, job.run.cooldown_seconds or 1.0))
