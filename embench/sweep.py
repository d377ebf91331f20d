"""Run a sweep: plan it, make sure its models exist, run every device's queue, store each result."""

from __future__ import annotations

import dataclasses
import shutil
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import __version__
from .agents import SUCCESS
from .errors import ZooError
from .executors import ThreadExecutor
from .inventory import Device, Inventory
from .plan import Job, Plan, make_plan
from .runner import DeviceRunner, Events
from .store import Store
from .zoo import EDGETPU_COMPILER, Artifact, Zoo
from .zoo_build import edgetpu_missing


@dataclass
class SweepOutcome:
    run_id: str
    planned: int
    skipped_done: int
    counts: Counter[str]
    problems: list[str]
    interrupted: bool = False
    not_run: int = 0
    pushed_bytes: int = 0

    @property
    def all_succeeded(self) -> bool:
        return not self.interrupted and not self.not_run and all(status in SUCCESS for status in self.counts)


class Reporter:
    """What a sweep tells the user while it runs (the CLI plugs a progress bar in here)."""

    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, *exc: object) -> None: ...

    def planned(self, total: int, already_done: int) -> None: ...
    def started(self, job: Job) -> None: ...
    def finished(self, job: Job, result: dict[str, Any]) -> None: ...
    def building(self, step: str, done: int, total: int) -> None: ...
    def device_failed(self, device: str, message: str) -> None: ...


def ensure_artifacts(
    zoo: Zoo, plan: Plan, build: bool, on_step: Callable[[str, int, int], None]
) -> tuple[dict[tuple[str, str, str], Artifact], dict[tuple[str, str, str], str]]:
    """Every model file the plan needs, building missing ones first (or saying how to).

    Returns the files, and for files that cannot be had here (an Edge TPU model with no compiler
    and none supplied) the reason, so those jobs are recorded `unsupported` rather than stopping the sweep.
    """
    wanted = sorted({(j.model, j.format, j.precision) for j in plan.jobs})
    unavailable: dict[tuple[str, str, str], str] = {}
    if not shutil.which(EDGETPU_COMPILER):
        for key in zoo.missing([w for w in wanted if w[1] == "tflite_edgetpu"]):
            unavailable[key] = edgetpu_missing(zoo, key[0])
    wanted = [w for w in wanted if w not in unavailable]
    missing = zoo.missing(wanted)
    if missing and not build:
        models = " ".join(sorted({m for m, _, _ in missing}))
        raise ZooError(f"{len(missing)} model file(s) are not built yet; run `embench models build {models}`")
    if missing:
        from .zoo_build import build_model  # noqa: PLC0415 - imports TensorFlow

        done = 0
        for model in sorted({m for m, _, _ in missing}):
            parts = [(f, p) for m, f, p in missing if m == model]

            def step(label: str) -> None:
                nonlocal done
                on_step(label, done, len(missing))
                done += 1

            build_model(zoo, model, parts, step)
        on_step("done", len(missing), len(missing))
    artifacts = {}
    for key in wanted:
        artifact = zoo.artifact(*key)
        if artifact is None:
            raise ZooError(
                f"{key[0]} {key[1]}-{key[2]} is still missing after the build; run `embench models build {key[0]}`"
            )
        artifacts[key] = artifact
    return artifacts, unavailable


def problem_line(job: Job, result: dict[str, Any]) -> str:
    """One line per job that did not succeed, with what to do about it."""
    line = f"{job.label}: {result['status']}: {result.get('message')}"
    if result.get("error") == "model_load":
        line += f"; check the file, or rebuild it with `embench models build --force {job.model}`"
    elif result["status"] == "timeout":
        line += "; raise sweep.run.timeout_seconds or lower max_seconds"
    return line


def run_sweep(
    inventory: Inventory,
    zoo: Zoo,
    store: Store,
    reporter: Reporter,
    resume: str | None = None,
    build: bool = True,
) -> SweepOutcome:
    """Plan, build, run and record; KeyboardInterrupt leaves every finished result stored."""
    plan = make_plan(inventory, zoo)
    artifacts, unavailable = ensure_artifacts(zoo, plan, build, reporter.building)
    plan_rows = [dict(job.key(), job_id=job.job_id) for job in plan.jobs]
    if resume is not None:
        run_id = store.find_run(resume or None).run_id
        done = store.done_job_ids(run_id)
        store.resume_run(run_id, len(plan.jobs), plan_rows)
    else:
        run_id = store.begin_run(str(inventory.path), plan_rows, __version__)
        done = set()
    todo = [j for j in plan.jobs if j.job_id not in done]
    outcome = SweepOutcome(run_id, len(plan.jobs), len(plan.jobs) - len(todo), Counter(), [])
    reporter.planned(len(plan.jobs), outcome.skipped_done)
    lock = threading.Lock()

    def finished(job: Job, spec: dict[str, Any], result: dict[str, Any]) -> None:
        store.add_result(run_id, spec, result)
        with lock:
            outcome.counts[result["status"]] += 1
            if result["status"] not in SUCCESS:
                outcome.problems.append(problem_line(job, result))
        reporter.finished(job, result)

    def device_failed(device: Device, message: str, not_run: int) -> None:
        with lock:
            outcome.not_run += not_run
            tail = f"; {not_run} of its jobs not run: fix it, then `embench sweep --resume`" if not_run else ""
            outcome.problems.append(f"{message}{tail}")  # transport messages start with "device NAME:"
        reporter.device_failed(device.name, message)

    def warning(device: Device, message: str) -> None:
        with lock:
            outcome.problems.append(f"device {device.name}: warning: {message}")

    events = Events(started=reporter.started, finished=finished, device_failed=device_failed, warning=warning)
    stop = threading.Event()
    by_device: dict[str, list[Job]] = {}
    for job in todo:
        by_device.setdefault(job.device, []).append(job)
    runners = [
        DeviceRunner(inventory.device(name), jobs, artifacts, events, stop, unavailable=unavailable)
        for name, jobs in by_device.items()
    ]
    try:
        ThreadExecutor().run(runners, stop)
    except KeyboardInterrupt:
        store.end_run(run_id, "interrupted")
        return dataclasses.replace(outcome, interrupted=True)
    finally:
        outcome.pushed_bytes = sum(r.transport.pushed_bytes for r in runners if r.transport is not None)
    store.end_run(run_id, "finished")
    return outcome
