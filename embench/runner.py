"""One device's queue: one job at a time, with offer checks, timeout, retries and cooldown."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .agents import Agent, host_result, make_agent
from .errors import DeviceUnreachable, TransportError
from .inventory import Device, RunPolicy
from .plan import Job
from .telemetry import external
from .telemetry.external import ExternalMeter, MeterError
from .transports import Transport, open_transport
from .zoo import Artifact

RETRYABLE = ("crashed", "timeout")
THERMAL_SOURCES = ("thermal", "apex", "pi_temp")


@dataclass
class Events:
    """Callbacks the runner reports through (progress bars, the store)."""

    started: Callable[[Job], None] = lambda job: None
    finished: Callable[[Job, dict[str, Any], dict[str, Any]], None] = lambda job, spec, result: None
    device_failed: Callable[[Device, str, int], None] = lambda device, message, not_run: None
    warning: Callable[[Device, str], None] = lambda device, message: None


@dataclass
class DeviceRunner:
    device: Device
    jobs: list[Job]
    artifacts: dict[tuple[str, str, str], Artifact]
    events: Events
    stop: threading.Event = field(default_factory=threading.Event)
    transport: Transport | None = None
    probe: dict[str, Any] = field(default_factory=dict)
    unavailable: dict[tuple[str, str, str], str] = field(default_factory=dict)
    meters: list[ExternalMeter] = field(default_factory=list)

    def run(self) -> None:
        """Probe the device, then run every job in order; stops between jobs once `stop` is set."""
        self.transport = self.transport or open_transport(self.device)
        agent = make_agent(self.device, self.transport)
        unplugged = False
        self.meters = self._start_meters()
        try:
            try:
                self.probe = agent.probe(self._libraries())
                if self.device.adb is not None and self.device.adb.battery_unplug:
                    unplugged = self._dumpsys_battery("unplug")
                thermal = [dataclasses.asdict(t) for t in self.device.telemetry if t.source in THERMAL_SOURCES]
                idle_c = agent.temperature(thermal) if thermal else None
            except TransportError as exc:
                self.events.device_failed(self.device, str(exc), len(self.jobs))
                return
            cooldown: dict[str, Any] | None = None
            for n, job in enumerate(self.jobs):
                if self.stop.is_set():
                    return
                if n:
                    cooldown = self.cool_down(agent, job.run, thermal, idle_c)
                self.events.started(job)
                spec = self.job_spec(job)
                try:
                    result = self.run_one(agent, job, spec)
                except TransportError as exc:
                    not_run = len(self.jobs) - n - 1
                    self.events.finished(job, spec, host_result(spec, "failed", str(exc), attempts=job.run.retries + 1))
                    self.events.device_failed(self.device, str(exc), not_run)
                    return
                if self.stop.is_set() and result["status"] in RETRYABLE:
                    return  # killed by the interrupt: not a result; --resume runs it again
                if cooldown is not None:
                    result["cooldown"] = cooldown
                self.events.finished(job, spec, result)
        finally:
            if unplugged:
                self._dumpsys_battery("reset")  # always: also after a failure or an interrupt
            for meter in self.meters:
                meter.stop()
            self.transport.close()

    def _start_meters(self) -> list[ExternalMeter]:
        """The device's external meters, reading on the host for its whole queue; one that cannot
        start is a warning, and the jobs run without it."""
        meters = []
        for source in self.device.meters():
            meter = ExternalMeter(self.device.name, source.options)
            try:
                meter.start()
            except MeterError as exc:
                self.events.warning(self.device, str(exc))
                continue
            meters.append(meter)
        return meters

    def _dumpsys_battery(self, what: str) -> bool:
        """`dumpsys battery unplug` (the phone runs on its battery although USB is attached) or `reset`."""
        assert self.transport is not None
        try:
            res = self.transport.run(["dumpsys", "battery", what], timeout=30)
        except TransportError as exc:
            self.events.warning(self.device, f"dumpsys battery {what} failed: {exc}")
            return False
        if res.returncode != 0:
            self.events.warning(
                self.device, f"dumpsys battery {what} exited with {res.returncode}: {res.stderr_tail(200)}"
            )
        return res.returncode == 0

    def cool_down(
        self, agent: Agent, run: RunPolicy, thermal: list[dict[str, Any]], idle_c: float | None
    ) -> dict[str, Any]:
        """Wait between jobs: until the device is back near its idle temperature (or under
        cooldown_below_c), at most cooldown_max_seconds; a fixed cooldown_seconds where no
        temperature is readable."""
        start = time.monotonic()
        first = agent.temperature(thermal) if thermal and idle_c is not None else None
        if first is None:
            if run.cooldown_seconds:
                self.stop.wait(run.cooldown_seconds)
            return {"gated_on": "fixed", "waited_s": time.monotonic() - start}
        assert idle_c is not None
        target = idle_c + run.cooldown_margin_c
        if run.cooldown_below_c is not None:
            target = max(target, run.cooldown_below_c)
        now_c = first
        while now_c > target and time.monotonic() - start < run.cooldown_max_seconds and not self.stop.is_set():
            self.stop.wait(1.0)
            now_c = agent.temperature(thermal) or now_c
        waited = time.monotonic() - start
        out = {"gated_on": "temperature", "waited_s": waited, "start_c": first, "end_c": now_c, "target_c": target}
        if now_c > target:
            out["capped"] = True  # still hot after cooldown_max_seconds: the next job starts warm
        return out

    def _libraries(self) -> dict[str, str]:
        """Delegate libraries the jobs will load, to check on the device first."""
        out = {}
        for job in self.jobs:
            library = self.device.delegate_library(job.delegate)
            if job.runtime == "litert" and job.delegate not in ("cpu", "xnnpack") and library:
                out[job.delegate] = library
        return out

    def cannot_run(self, job: Job) -> str | None:
        """Why this device cannot run the job (from the inventory and the probe), or None."""
        key = (job.model, job.format, job.precision)
        why_not = self.device.offers(job.runtime, job.delegate) or self.unavailable.get(key)
        if why_not:
            return why_not
        name = self.device.name
        runtime = self.probe.get("runtimes", {}).get(job.runtime, {})
        if runtime.get("error"):
            return f"device {name!r}: {runtime['error']}"
        if job.runtime == "litert" and job.delegate not in ("cpu", "xnnpack"):
            lib = self.probe.get("delegates", {}).get(job.delegate)
            if lib is None:
                return (
                    f"device {name!r}: delegate {job.delegate!r} has no library; set delegate_libraries.{job.delegate}"
                )
            if not lib.get("loadable"):
                return f"device {name!r}: delegate {job.delegate!r}: cannot load {lib['library']}: {lib.get('error')}"
        providers = runtime.get("providers")
        if job.runtime == "onnxruntime" and providers is not None and job.delegate not in providers:
            return f"device {name!r}: onnxruntime {runtime.get('version')} has no {job.delegate} (available: {', '.join(providers)})"
        return None

    def job_spec(self, job: Job) -> dict[str, Any]:
        """The Job JSON the agent reads (DESIGN.md contract), before the model path is known."""
        artifact = self.artifacts.get((job.model, job.format, job.precision))
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
                "sha256": artifact.sha256 if artifact else None,
                "size": artifact.size if artifact else None,
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
                "idle_seconds": run.idle_seconds,
                "op_profiling": run.op_profiling,
            },
            "telemetry": [dataclasses.asdict(t) for t in self.device.telemetry],
            "seed": job.seed,
        }

    def run_one(self, agent: Agent, job: Job, spec: dict[str, Any]) -> dict[str, Any]:
        """Run one job (with retries); raises TransportError once the device is lost for good."""
        why_not = self.cannot_run(job)
        if why_not:
            return host_result(spec, "unsupported", why_not + "; not attempted")
        assert self.transport is not None
        artifact = self.artifacts[(job.model, job.format, job.precision)]
        attempts = 0
        while True:
            attempts += 1
            before = self.transport.pushed_bytes
            try:
                spec["model"]["path"] = self.transport.ensure_file(artifact.path, artifact.sha256)
                host_start = time.time()
                result = agent.run(spec, timeout=job.run.timeout_seconds)
                if self.meters:
                    external.attach(result, self.meters, self.transport, host_start, time.time())
            except DeviceUnreachable:
                if attempts > job.run.retries or self.stop.is_set():
                    raise
                self.stop.wait(min(5.0, job.run.cooldown_seconds or 1.0))
                continue
            result["pushed_bytes"] = self.transport.pushed_bytes - before
            if result["status"] not in RETRYABLE or attempts > job.run.retries or self.stop.is_set():
                result["attempts"] = attempts
                return result
            self.stop.wait(min(5.0, job.run.cooldown_seconds or 1.0))
