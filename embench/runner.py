"""One device's queue: one job at a time, with offer checks, timeout, retries and cooldown."""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass, field

from embench_agent.protocol import (
    DEVICE_LOST,
    RETRYABLE,
    RUNTIME_MISSING,
    CheckSpec,
    Cooldown,
    DelegateSpec,
    Job,
    ModelRef,
    Probe,
    Result,
    SourceSpec,
)

from .agents import Agent, host_result, make_agent
from .errors import DeviceUnreachable, TransportError
from .evalsets import EvalSet
from .events import SweepListener
from .inventory import Device, RunPolicy
from .plan import PlannedJob
from .rounds import Step, ends_job, jobs_left, round_job, steps
from .runtimes import runtime
from .telemetry import external
from .telemetry.external import ExternalMeter, MeterError
from .transports import Transport, open_transport
from .zoo import Artifact

THERMAL_SOURCES = ("thermal", "apex", "pi_temp")
ArtifactKey = tuple[str, str, str]


@dataclass
class DeviceRunner:
    device: Device
    jobs: list[PlannedJob]
    artifacts: dict[ArtifactKey, Artifact]
    events: SweepListener
    stop: threading.Event = field(default_factory=threading.Event)
    transport: Transport | None = None
    probe: Probe = field(default_factory=lambda: Probe(agent_version="?"))
    unavailable: dict[ArtifactKey, str] = field(default_factory=dict)
    meters: list[ExternalMeter] = field(default_factory=list)
    checks: dict[str, CheckSpec] = field(default_factory=dict)  # model → its fidelity inputs and thresholds
    eval_sets: dict[str, EvalSet] = field(default_factory=dict)  # model → its labelled evaluation set
    agent: Agent | None = None
    libraries: dict[str, str] | None = None  # the delegate libraries to check at the probe (None: from `jobs`)
    done_repetitions: dict[str, set[int]] = field(default_factory=dict)  # job id → repetitions stored (--resume)
    ended: set[str] = field(default_factory=set)  # interleaved jobs a repetition ended (rounds.ends_job)
    _unplugged: bool = False
    _thermal: list[SourceSpec] = field(default_factory=list)
    _idle_c: float | None = None

    def steps(self) -> list[Step]:
        """The device's queue: its jobs, an interleaved job's repetitions in rounds (rounds.py)."""
        return steps(self.jobs, self.device.agent_kind, self.done_repetitions)

    def run(self) -> None:
        """Probe the device, then run every step of its queue in order; stops between steps once `stop` is set."""
        try:
            if not self.open(len(self.jobs)):
                return
            self.warn_repetitions()
            queue = self.steps()
            for n, step in enumerate(queue):
                if step.planned.job_id in self.ended:
                    continue
                not_run = jobs_left(queue[n + 1 :], self.ended | {step.planned.job_id})
                if self.stop.is_set() or not self.step(n, step, not_run=not_run):
                    return
        finally:
            self.close()

    def open(self, jobs: int) -> bool:
        """Connect, start the external meters, probe the device, unplug its battery, read its idle
        temperature; False (the device failed: said to `events` with its `jobs` not run) when it cannot be used."""
        self.transport = self.transport or open_transport(self.device)
        self.agent = make_agent(self.device, self.transport)
        self.meters = self._start_meters()
        try:
            self.probe = self.agent.probe(self.delegate_libraries())
            if self.device.adb is not None and self.device.adb.battery_unplug:
                self._unplugged = self._dumpsys_battery("unplug")
            self._thermal = [t for t in self.device.telemetry if t.source in THERMAL_SOURCES]
            self._idle_c = self.agent.temperature(self._thermal) if self._thermal else None
        except TransportError as exc:
            self.events.device_failed(self.device.name, str(exc), jobs)
            return False
        return True

    def close(self) -> None:
        """Battery reset, meters stopped, connection closed: always, also after a failure or an interrupt."""
        if self._unplugged:
            self._unplugged = False
            self._dumpsys_battery("reset")
        for meter in self.meters:
            meter.stop()
        self.meters = []
        if self.transport is not None:
            self.transport.close()

    def warn_repetitions(self) -> None:
        if self.device.agent_kind != "python" and any(job.run.repetitions > 1 for job in self.jobs):
            self.events.warning(self.device.name, "benchmark_model times each job in one process: sweep.run.repetitions"
                                " applies to devices with the Python agent (adb.agent: python), and a nightly verdict"
                                " on this device's series stays inconclusive")  # fmt: skip

    def step(self, n: int, step: Step, not_run: int) -> bool:
        """Run one step of the opened device's queue (after a cooldown unless it is the queue's first,
        n = 0) and hand its result to `events`; False when the device was lost (said, with `not_run`
        jobs left)."""
        assert self.agent is not None
        planned = step.planned
        cooldown: Cooldown | None = None
        if n:
            cooldown = self.cool_down(self.agent, planned.run, self._thermal, self._idle_c)
        self.events.started(planned, step.repetition)
        job = self.job_spec(planned)
        try:
            job, result = self.run_one(self.agent, step, job)
        except TransportError as exc:
            lost = host_result(job, "failed", str(exc), attempts=planned.run.retries + 1, error=DEVICE_LOST)
            self.deliver(step, job, lost)
            self.events.device_failed(self.device.name, str(exc), not_run)
            return False
        if self.stop.is_set() and result.status in RETRYABLE:
            return True  # killed by the interrupt: not a result; --resume runs it again
        self.deliver(step, job, dataclasses.replace(result, cooldown=cooldown))
        return True

    def deliver(self, step: Step, job: Job, result: Result, measured_on: str | None = None) -> None:
        """A step's result to `events`: a whole job's, or one repetition's (which may end its job)."""
        if step.repetition is None:
            self.events.finished(step.planned, job, result, measured_on)
            return
        if ends_job(result):
            self.ended.add(step.planned.job_id)
        self.events.repetition_finished(step.planned, job, result, step.repetition, measured_on)

    def _start_meters(self) -> list[ExternalMeter]:
        """The device's external meters, reading on the host for its whole queue; one that cannot
        start is a warning, and the jobs run without it."""
        meters = []
        for source in self.device.meters():
            meter = ExternalMeter(self.device.name, source.options)
            try:
                meter.start()
            except MeterError as exc:
                self.events.warning(self.device.name, str(exc))
                continue
            meters.append(meter)
        return meters

    def _dumpsys_battery(self, what: str) -> bool:
        """`dumpsys battery unplug` (the phone runs on its battery although USB is attached) or `reset`."""
        assert self.transport is not None
        try:
            res = self.transport.run(["dumpsys", "battery", what], timeout=30)
        except TransportError as exc:
            self.events.warning(self.device.name, f"dumpsys battery {what} failed: {exc}")
            return False
        if res.returncode != 0:
            self.events.warning(
                self.device.name, f"dumpsys battery {what} exited with {res.returncode}: {res.stderr_tail(200)}"
            )
        return res.returncode == 0

    def cool_down(self, agent: Agent, run: RunPolicy, thermal: list[SourceSpec], idle_c: float | None) -> Cooldown:
        """Wait between jobs: until the device is back near its idle temperature (or under
        cooldown_below_c), at most cooldown_max_seconds; a fixed cooldown_seconds where no
        temperature is readable."""
        start = time.monotonic()
        first = agent.temperature(thermal) if thermal and idle_c is not None else None
        if first is None or idle_c is None:
            if run.cooldown_seconds:
                self.stop.wait(run.cooldown_seconds)
            return Cooldown(gated_on="fixed", waited_s=time.monotonic() - start)
        target = idle_c + run.cooldown_margin_c
        if run.cooldown_below_c is not None:
            target = max(target, run.cooldown_below_c)
        now_c = first
        while now_c > target and time.monotonic() - start < run.cooldown_max_seconds and not self.stop.is_set():
            self.stop.wait(1.0)
            now_c = agent.temperature(thermal) or now_c
        # Still hot after cooldown_max_seconds: `capped`, and the next job starts warm.
        return Cooldown(gated_on="temperature", waited_s=time.monotonic() - start, start_c=first, end_c=now_c,
                        target_c=target, capped=now_c > target)  # fmt: skip

    def delegate_libraries(self) -> dict[str, str]:
        """Delegate libraries the jobs will load, to check on the device first."""
        if self.libraries is not None:
            return self.libraries
        out = {}
        for job in self.jobs:
            library = self.device.delegate_library(job.runtime, job.delegate)
            if library:
                out[job.delegate] = library
        return out

    def cannot_run(self, job: PlannedJob) -> str | None:
        """Why this device cannot run the job (from the inventory and the probe), or None (see `missing_runtime`)."""
        why_not = self.device.offers(job.runtime, job.delegate) or self.unavailable.get(job.artifact_key)
        if why_not:
            return why_not
        probed = self.probe.runtimes.get(job.runtime)
        if probed is None:
            return f"device {self.device.name!r}: the agent knows no runtime {job.runtime!r}"
        return runtime(job.runtime).cannot_run(self.device.name, job.delegate, probed, self.probe.delegates)

    def job_spec(self, job: PlannedJob) -> Job:
        """The Job the agent reads (embench_agent.protocol), before the model's path on the device is known."""
        artifact = self.artifacts.get(job.artifact_key)
        return Job(
            job_id=job.job_id,
            device=job.device,
            model=ModelRef(name=job.model, format=job.format, precision=job.precision,
                           sha256=artifact.sha256 if artifact else None, size=artifact.size if artifact else None),
            runtime=job.runtime,
            delegate=DelegateSpec(name=job.delegate, library=self.device.delegate_library(job.runtime, job.delegate),
                                  options=dict(self.device.delegate_options.get(job.delegate, {}))),
            threads=job.threads,
            run=job.run.spec(),
            telemetry=tuple(self.device.telemetry),
            seed=job.seed,
            checks=self.checks.get(job.model, CheckSpec()),
        )  # fmt: skip

    def _place_eval_set(self, job: Job) -> Job:
        """The job with its model's evaluation set on the device (the benchmark_model agent has no use for one)."""
        eval_set = self.eval_sets.get(job.model.name)
        if eval_set is None or self.device.agent_kind != "python":
            return job
        assert self.transport is not None
        path = self.transport.ensure_file(eval_set.path, eval_set.sha256)
        return dataclasses.replace(job, checks=dataclasses.replace(job.checks, eval_path=path,
                                                                   eval_sha256=eval_set.sha256))  # fmt: skip

    def run_one(self, agent: Agent, step: Step, job: Job) -> tuple[Job, Result]:
        """Run one step (with retries): the job (its model placed on the device) and the step's Result (one
        repetition's, for a step of one); raises TransportError once the device is lost for good."""
        planned = step.planned
        why_not = self.cannot_run(planned)
        if why_not:
            probed = self.probe.runtimes.get(planned.runtime)
            missing = RUNTIME_MISSING if probed is not None and probed.error else None
            return job, host_result(job, "unsupported", why_not + "; not attempted", error=missing)
        assert self.transport is not None
        artifact = self.artifacts[planned.artifact_key]
        attempts, policy = 0, planned.run
        while True:
            attempts += 1
            before = self.transport.pushed_bytes
            try:
                path = self.transport.ensure_file(artifact.path, artifact.sha256)
                placed = dataclasses.replace(job, model=dataclasses.replace(job.model, path=path))
                placed = self._place_eval_set(placed)
                sent = placed if step.repetition is None else round_job(placed, step.repetition)
                host_start = time.time()
                result = agent.run(sent, timeout=step.timeout, model_file=artifact.path)
                if self.meters:
                    result = external.attach(result, self.meters, self.transport, host_start, time.time())
            except DeviceUnreachable:
                if attempts > policy.retries or self.stop.is_set():
                    raise
                self.stop.wait(min(5.0, policy.cooldown_seconds or 1.0))
                continue
            if result.status not in RETRYABLE or attempts > policy.retries or self.stop.is_set():
                pushed = self.transport.pushed_bytes - before
                return placed, dataclasses.replace(result, attempts=attempts, pushed_bytes=pushed)
            self.stop.wait(min(5.0, policy.cooldown_seconds or 1.0))
