"""Run a sweep: plan it, make sure its models exist, run every device's queue, store each result."""

from __future__ import annotations

import shutil
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from embench_agent.protocol import SUCCESS, Job, Result

from . import __version__
from .errors import ZooError
from .events import SweepListener
from .executors import EXECUTORS
from .inventory import Inventory
from .plan import Plan, PlannedJob, make_plan
from .runner import ArtifactKey, DeviceRunner
from .store import Store
from .zoo import EDGETPU_COMPILER, Artifact, Zoo
from .zoo_build import edgetpu_missing


@dataclass
class SweepOutcome:
    run_id: str
    planned: int
    skipped_done: int
    counts: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    interrupted: bool = False
    not_run: int = 0
    pushed_bytes: int = 0

    @property
    def all_succeeded(self) -> bool:
        return not self.interrupted and not self.not_run and all(status in SUCCESS for status in self.counts)


def ensure_artifacts(
    zoo: Zoo, plan: Plan, build: bool, on_step: Callable[[str, int, int], None]
) -> tuple[dict[ArtifactKey, Artifact], dict[ArtifactKey, str]]:
    """Every model file the plan needs, building missing ones first (or saying how to).

    Returns the files, and for files that cannot be had here (an Edge TPU model with no compiler
    and none supplied) the reason, so those jobs are recorded `unsupported` rather than stopping the sweep.
    """
    wanted = sorted({j.artifact_key for j in plan.jobs})
    unavailable: dict[ArtifactKey, str] = {}
    if not shutil.which(EDGETPU_COMPILER):
        for key in zoo.missing([w for w in wanted if w[1] == "tflite_edgetpu"]):
            unavailable[key] = edgetpu_missing(zoo, key[0])
    wanted = [w for w in wanted if w not in unavailable]
    missing = zoo.missing(wanted)
    if missing and not build:
        models = " ".join(sorted({m for m, _, _ in missing}))
        raise ZooError(f"{len(missing)} model file(s) are not built yet; run `embench models build {models}`")
    if missing:
        _build_missing(zoo, missing, on_step)
    artifacts = {}
    for key in wanted:
        artifact = zoo.artifact(*key)
        if artifact is None:
            raise ZooError(
                f"{key[0]} {key[1]}-{key[2]} is still missing after the build; run `embench models build {key[0]}`"
            )
        artifacts[key] = artifact
    return artifacts, unavailable


def _build_missing(zoo: Zoo, missing: list[ArtifactKey], on_step: Callable[[str, int, int], None]) -> None:
    from .zoo_build import build_model  # noqa: PLC0415 - imports TensorFlow

    done = 0

    def step(label: str) -> None:
        nonlocal done
        on_step(label, done, len(missing))
        done += 1

    for model in sorted({m for m, _, _ in missing}):
        build_model(zoo, model, [(f, p) for m, f, p in missing if m == model], step)
    on_step("done", len(missing), len(missing))


def problem_line(job: PlannedJob, result: Result) -> str:
    """One line per job that did not succeed, with what to do about it."""
    line = f"{job.label}: {result.status}: {result.message}"
    if result.error == "model_load":
        line += f"; check the file, or rebuild it with `embench models build --force {job.model}`"
    elif result.status == "timeout":
        line += "; raise sweep.run.timeout_seconds or lower max_seconds"
    return line


class Recorder(SweepListener):
    """Stores each result the moment it arrives and keeps the outcome's counts, then tells `display`."""

    def __init__(self, store: Store, outcome: SweepOutcome, display: SweepListener) -> None:
        self.store, self.outcome, self.display = store, outcome, display
        self._lock = threading.Lock()

    def started(self, planned: PlannedJob) -> None:
        self.display.started(planned)

    def finished(self, planned: PlannedJob, job: Job, result: Result) -> None:
        self.store.add_result(self.outcome.run_id, job, result)
        with self._lock:
            self.outcome.counts[result.status] += 1
            if not result.succeeded:
                self.outcome.problems.append(problem_line(planned, result))
        self.display.finished(planned, job, result)

    def device_failed(self, device: str, message: str, not_run: int) -> None:
        with self._lock:
            self.outcome.not_run += not_run
            tail = f"; {not_run} of its jobs not run: fix it, then `embench sweep --resume`" if not_run else ""
            self.outcome.problems.append(f"{message}{tail}")  # transport messages start with "device NAME:"
        self.display.device_failed(device, message, not_run)

    def warning(self, device: str, message: str) -> None:
        with self._lock:
            self.outcome.problems.append(f"device {device}: warning: {message}")
        self.display.warning(device, message)


def _open_run(inventory: Inventory, store: Store, plan: Plan, resume: str | None) -> tuple[str, set[str]]:
    """A new run, or the one to resume and the ids of the jobs it already holds."""
    rows = [job.plan_row() for job in plan.jobs]
    if resume is None:
        return store.begin_run(str(inventory.path), rows, __version__), set()
    run_id = store.find_run(resume or None).run_id
    done = store.done_job_ids(run_id)
    store.resume_run(run_id, len(plan.jobs), rows)
    return run_id, done


def run_sweep(
    inventory: Inventory,
    zoo: Zoo,
    store: Store,
    display: SweepListener,
    resume: str | None = None,
    build: bool = True,
    executor: str = "threads",
) -> SweepOutcome:
    """Plan, build, run and record; KeyboardInterrupt leaves every finished result stored."""
    plan = make_plan(inventory, zoo)
    artifacts, unavailable = ensure_artifacts(zoo, plan, build, display.building)
    run_id, done = _open_run(inventory, store, plan, resume)
    todo = [j for j in plan.jobs if j.job_id not in done]
    outcome = SweepOutcome(run_id, len(plan.jobs), len(plan.jobs) - len(todo))
    display.planned(len(plan.jobs), outcome.skipped_done)
    recorder = Recorder(store, outcome, display)
    stop = threading.Event()
    by_device: dict[str, list[PlannedJob]] = {}
    for job in todo:
        by_device.setdefault(job.device, []).append(job)
    runners = [
        DeviceRunner(inventory.device(name), jobs, artifacts, recorder, stop, unavailable=unavailable)
        for name, jobs in by_device.items()
    ]
    try:
        EXECUTORS[executor]().run(runners, stop)
    except KeyboardInterrupt:
        store.end_run(run_id, "interrupted")
        outcome.interrupted = True
        return outcome
    finally:
        outcome.pushed_bytes = sum(r.transport.pushed_bytes for r in runners if r.transport is not None)
    store.end_run(run_id, "finished")
    return outcome
