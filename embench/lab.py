"""A lab of many hosts: what runs inside each lab host's Dask worker (`embench worker`).

The sweeping host (executors/dask.py) submits one task per step of a device's queue (a job, or one
repetition of an interleaved job: rounds.py) with that device's resource, a device's next step once
the one before it is back: a device runs one step at a time, in its queue's order, on
whichever worker offers it. Each worker keeps one open session per device and sweep
(connection, probe, external meters, idle temperature), opened by the first job that lands there and
closed after the device's last job, when the device is lost, or when the sweep is stopped. A task
returns its Job and Result; the sweeping host stores them (exactly once: store.add_results).
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path

from embench_agent.protocol import CheckSpec, Job, Result

from .agents import host_result
from .evalsets import EvalSet
from .events import SweepListener
from .inventory import Device
from .plan import PlannedJob
from .rounds import Step
from .runner import ArtifactKey, DeviceRunner
from .text import printable
from .zoo import Artifact

RESOURCE_PREFIX = "embench-device:"


def device_resource(device: str) -> str:
    """The Dask worker resource that stands for one device (a worker offers 1 of it)."""
    return RESOURCE_PREFIX + device


@dataclass(frozen=True)
class LabTask:
    """One step of a device's queue (a job, or one repetition of it), with everything a worker needs to run it."""

    sweep: str  # the sweep's own id (one per `embench sweep` process): a worker's sessions belong to one sweep
    device: Device  # as the sweeping host's inventory defines it
    planned: PlannedJob
    n: int  # its place in the device's queue (0: the first; every later one waits for its cooldown)
    last: bool  # the device's last step of this sweep: the session closes after it
    libraries: dict[str, str]  # the delegate libraries the device's jobs load (checked at the probe)
    artifacts: dict[ArtifactKey, Artifact] = field(default_factory=dict)
    unavailable: dict[ArtifactKey, str] = field(default_factory=dict)
    checks: dict[str, CheckSpec] = field(default_factory=dict)
    eval_sets: dict[str, EvalSet] = field(default_factory=dict)
    repetition: int | None = None  # the repetition of an interleaved job this step runs (None: the whole job)

    @property
    def step(self) -> Step:
        return Step(self.planned, self.repetition)


@dataclass(frozen=True)
class LabOutcome:
    """What a task gives back: the job's result, or why the device could not be used."""

    worker: str  # the lab worker's name (its host's name unless `embench worker --name` said otherwise)
    job: Job | None = None
    result: Result | None = None
    lost: str | None = None  # the device failed or was lost: the queue stops here (left for --resume)
    warnings: tuple[str, ...] = ()
    repetition: int | None = None  # `result` is this repetition's alone (an interleaved job: rounds.py)


class _Collected(SweepListener):
    """A worker's listener: what the runner says about one task, handed back to the sweeping host."""

    def __init__(self) -> None:
        self.job: Job | None = None
        self.result: Result | None = None
        self.lost: str | None = None
        self.warnings: list[str] = []

    def finished(self, planned: PlannedJob, job: Job, result: Result, measured_on: str | None = None) -> None:
        self.job, self.result = job, result

    def repetition_finished(self, planned: PlannedJob, job: Job, result: Result, repetition: int,
                            measured_on: str | None = None) -> None:  # fmt: skip
        self.job, self.result = job, result

    def device_failed(self, device: str, message: str, not_run: int) -> None:
        self.lost = message

    def warning(self, device: str, message: str) -> None:
        self.warnings.append(message)


# This worker's devices as its own inventory defines them (host-specific paths: keys, adb), set by
# `embench worker`; and its open sessions, by (sweep, device).
LOCAL_DEVICES: dict[str, Device] = {}
_SESSIONS: dict[tuple[str, str], DeviceRunner] = {}
_RUNNING: set[tuple[str, str]] = set()  # sessions with a job running now (that task closes its own)
_LOCK = threading.Lock()


def _worker_name() -> str:
    try:
        from distributed import get_worker  # noqa: PLC0415

        return str(get_worker().name)
    except (ImportError, ValueError):
        return socket.gethostname()


def run_task(task: LabTask) -> LabOutcome:
    """Run one job on this worker's session of its device (the Dask task)."""
    name = _worker_name()
    missing = _unreadable_model(task, name)
    if missing is not None:
        return missing
    key = (task.sweep, task.device.name)
    with _LOCK:
        runner = _SESSIONS.get(key)
        stale = [k for k in _SESSIONS if k[1] == task.device.name and k != key]
        old = [_SESSIONS.pop(k) for k in stale]
    for r in old:  # the device's session of an earlier sweep (stopped without closing it)
        r.close()
    collected = _Collected()
    if runner is None:
        device = LOCAL_DEVICES.get(task.device.name, task.device)
        runner = DeviceRunner(device, [task.planned], task.artifacts, collected, libraries=task.libraries)
        if not runner.open(1):
            runner.close()
            return LabOutcome(name, lost=collected.lost, warnings=tuple(collected.warnings))
        with _LOCK:
            _SESSIONS[key] = runner
    runner.events = collected
    runner.jobs = [task.planned]
    runner.artifacts, runner.unavailable = task.artifacts, task.unavailable
    runner.checks, runner.eval_sets = task.checks, task.eval_sets
    if task.n == 0:
        runner.warn_repetitions()
    with _LOCK:
        _RUNNING.add(key)
    _log(f"embench worker {name}: {task.step.label}: started")
    try:
        kept = runner.step(task.n, task.step, not_run=0)
    finally:
        with _LOCK:
            _RUNNING.discard(key)
    status = collected.result.status if collected.result is not None else "not run"
    _log(f"embench worker {name}: {task.step.label}: {status}" + (f"; {collected.lost}" if collected.lost else ""))
    if not kept or task.last or runner.stop.is_set():
        close_session(task.sweep, task.device.name)
    return LabOutcome(name, collected.job, collected.result, collected.lost, tuple(collected.warnings),
                      task.repetition)  # fmt: skip


def close_session(sweep: str, device: str) -> None:
    """Close this worker's session of a device for a sweep (after its last step)."""
    with _LOCK:
        runner = _SESSIONS.pop((sweep, device), None)
    if runner is not None:
        runner.close()


def end_sweep(sweep: str) -> int:
    """Close this worker's sessions of a finished sweep that are still open (a queue whose last steps
    were left out: an interleaved job a repetition ended). Runs in the worker through `Client.run`; how many."""
    with _LOCK:
        idle = [k for k in _SESSIONS if k[0] == sweep and k not in _RUNNING]
    for key in idle:
        close_session(*key)
    return len(idle)


def _unreadable_model(task: LabTask, worker: str) -> LabOutcome | None:
    """The job `failed`, said in one line, when this lab host cannot read its model file."""
    artifact = task.artifacts.get(task.planned.artifact_key)
    if artifact is None or Path(artifact.path).is_file():
        return None
    job = DeviceRunner(task.device, [task.planned], task.artifacts, SweepListener()).job_spec(task.planned)
    message = (f"lab worker {worker} cannot read the model file {artifact.path}: share the zoo's build folder at"
               " the same path on every lab host (docs/lab.md)")  # fmt: skip
    _log(f"embench worker {worker}: {task.step.label}: failed; {message}")
    return LabOutcome(worker, job, host_result(job, "failed", message), repetition=task.repetition)


def _log(line: str) -> None:
    """One line per job on the worker's stdout (its journal under systemd)."""
    print(printable(line), flush=True)


def stop_sweep(sweep: str) -> int:
    """Stop this worker's part of a sweep (its host was interrupted): every running agent is killed, and
    idle sessions are closed in the background. Runs in the worker through `Client.run`; how many sessions."""
    with _LOCK:
        mine = {k: r for k, r in _SESSIONS.items() if k[0] == sweep}
    for runner in mine.values():
        runner.stop.set()
        if runner.transport is not None:
            runner.transport.cancel()

    def close_idle() -> None:
        for key in mine:
            with _LOCK:
                runner = None if key in _RUNNING else _SESSIONS.pop(key, None)
            if runner is not None:
                runner.close()

    threading.Thread(target=close_idle, name=f"embench-stop-{sweep}", daemon=True).start()
    return len(mine)
