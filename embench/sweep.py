"""Run a sweep: plan it, make sure its models exist, run every device's queue, store each result."""

from __future__ import annotations

import contextlib
import shlex
import shutil
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from embench_agent.protocol import MODEL_LOAD, RUNTIME_MISSING, SUCCESS, Job, Result

from . import __version__
from .entry import exit_code
from .errors import StoreError, ZooError
from .evalsets import load_eval_sets
from .events import SweepListener
from .executors import EXECUTORS, Executor
from .inventory import Inventory
from .plan import Plan, PlannedJob, make_plan
from .rounds import complete, joined
from .runner import ArtifactKey, DeviceRunner
from .store import Store
from .zoo import EDGETPU_COMPILER, Artifact, Zoo, artifact_name
from .zoo_build import edgetpu_missing


@dataclass
class SweepOutcome:
    run_id: str
    planned: int
    skipped_done: int
    counts: Counter[str] = field(default_factory=Counter)  # this sweep's results by status
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # worth saying, not a failure
    interrupted: int = 0  # the exit code of the interrupt (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP); 0: none
    not_run: int = 0
    pushed_bytes: int = 0
    run_counts: Counter[str] = field(default_factory=Counter)  # the whole run's stored results by status
    by_device: dict[str, Counter[str]] = field(default_factory=dict)  # this sweep's results by device: error or status

    @property
    def all_succeeded(self) -> bool:
        stored = self.run_counts or self.counts
        return not (self.interrupted or self.not_run or self.idle_devices()) and all(s in SUCCESS for s in stored)

    def idle_devices(self) -> list[str]:
        """Devices on which nothing could be measured because no runtime of the sweep imports there
        (a device's Python without them, e.g. a cron job's system python3): a setup error, not a result."""
        return [d for d, c in self.by_device.items() if c and set(c) == {RUNTIME_MISSING}]


def ensure_artifacts(
    zoo: Zoo, plan: Plan, build: bool, on_step: Callable[[str, int, int], None]
) -> tuple[dict[ArtifactKey, Artifact], dict[ArtifactKey, str]]:
    """Every model file the plan needs, building missing ones first (or saying how to).

    Returns the files, and for files that cannot be had here (an Edge TPU model with no compiler
    and none supplied; a precision the converter refuses for this architecture) the reason, so those jobs are recorded `unsupported` rather than stopping the sweep.
    """
    wanted = sorted({j.artifact_key for j in plan.jobs})
    unavailable: dict[ArtifactKey, str] = {}
    if not shutil.which(EDGETPU_COMPILER):
        for key in zoo.missing([w for w in wanted if w[1] == "tflite_edgetpu"]):
            unavailable[key] = edgetpu_missing(zoo, key[0])
    wanted = [w for w in wanted if w not in unavailable]
    missing = zoo.missing(wanted)
    if missing and not build:
        command = zoo.build_command(sorted({m for m, _, _ in missing}))
        raise ZooError(f"{len(missing)} model file(s) are not built yet; run `{command}`")
    if missing:
        _build_missing(zoo, missing, on_step)
    artifacts = {}
    for key in wanted:
        failed = zoo.failure(*key)
        if failed is not None:  # the converter cannot make it: those jobs are unsupported, with its reason
            unavailable[key] = f"{key[0]} {artifact_name(key[1], key[2])} cannot be built: {failed}"
            continue
        artifact = zoo.artifact(*key)
        if artifact is None:
            raise ZooError(
                f"{key[0]} {key[1]}-{key[2]} is still missing after the build; run `{zoo.build_command([key[0]])}`"
            )
        artifacts[key] = artifact
    return artifacts, unavailable


def unavailable_artifacts(zoo: Zoo, plan: Plan) -> tuple[dict[ArtifactKey, str], list[ArtifactKey]]:
    """(the files the plan needs that cannot be had here, with why; the files a sweep would build first)."""
    wanted = sorted({j.artifact_key for j in plan.jobs})
    unavailable: dict[ArtifactKey, str] = {}
    if not shutil.which(EDGETPU_COMPILER):
        for key in zoo.missing([w for w in wanted if w[1] == "tflite_edgetpu"]):
            unavailable[key] = edgetpu_missing(zoo, key[0])
    for key in wanted:
        failed = zoo.failure(*key)
        if failed is not None and key not in unavailable:
            unavailable[key] = f"{key[0]} {artifact_name(key[1], key[2])} cannot be built: {failed}"
    return unavailable, zoo.missing([w for w in wanted if w not in unavailable])


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


def problem_line(job: PlannedJob, result: Result, zoo: Zoo) -> str:
    """One line per job that did not succeed, with what to do about it (a command that works as pasted)."""
    line = f"{job.label}: {result.status}: {result.message}"
    if result.error == MODEL_LOAD:
        supplied = zoo.supplied(*job.artifact_key)
        if supplied is not None:
            line += f"; replace {supplied} (models.{job.model}.files in {zoo.manifest_path}) with a model that loads"
        else:
            line += f"; the file may be damaged: rebuild it with `{zoo.build_command([job.model], force=True)}`"
    elif result.status == "timeout":
        line += "; raise sweep.run.timeout_seconds or lower max_seconds"
    return line


class Recorder(SweepListener):
    """Stores each result the moment it arrives and keeps the outcome's counts, then tells `display`."""

    def __init__(self, store: Store, zoo: Zoo, outcome: SweepOutcome, display: SweepListener, resume: str) -> None:
        self.store, self.zoo, self.outcome, self.display, self.resume = store, zoo, outcome, display, resume
        self.first_unsupported: dict[str, str] = {}
        self._lock = threading.Lock()

    def started(self, planned: PlannedJob, repetition: int | None = None) -> None:
        self.display.started(planned, repetition)

    def repetition_finished(self, planned: PlannedJob, job: Job, result: Result, repetition: int,
                            measured_on: str | None = None) -> None:  # fmt: skip
        """Keep the repetition; with the job's last (or one that ended it), record the job's one Result
        instead, in the transaction that deletes the kept ones (store.add_results): a job is never left
        with all its repetitions kept and no result. A lost device's repetition ends the job as lost,
        its kept repetitions stay, and --resume runs the rest."""
        run = self.outcome.run_id
        earlier = [i for i in self.store.kept_repetitions(run, job.job_id) if i < repetition]
        if complete(job, len(earlier) + 1, result):  # only then are the kept ones read, samples and all
            parts = [p for p in self.store.repetitions_of(run, job.job_id) if p[0] < repetition]
            self.finished(planned, job, joined(job, [*parts, (repetition, result)]), measured_on)
        elif self.store.add_repetition(run, job.job_id, repetition, result, measured_on):
            self.display.repetition_finished(planned, job, result, repetition, measured_on)

    def finished(self, planned: PlannedJob, job: Job, result: Result, measured_on: str | None = None) -> None:
        if not self.store.add_result(self.outcome.run_id, job, result, measured_on):
            return  # the run holds this job's result already (a lab task run twice): recorded once, counted once
        with self._lock:
            self.outcome.counts[result.status] += 1
            self.outcome.by_device.setdefault(planned.device, Counter())[result.error or result.status] += 1
            if result.status == "unsupported" and planned.device not in self.first_unsupported:
                self.first_unsupported[planned.device] = result.message or ""
            if not result.succeeded:
                self.outcome.problems.append(problem_line(planned, result, self.zoo))
        self.display.finished(planned, job, result)

    def device_failed(self, device: str, message: str, not_run: int) -> None:
        with self._lock:
            self.outcome.not_run += not_run
            tail = f"; {not_run} of its jobs not run: fix it, then `{self.resume}`" if not_run else ""
            self.outcome.problems.append(f"{message}{tail}")  # transport messages start with "device NAME:"
        self.display.device_failed(device, message, not_run)

    def warning(self, device: str, message: str) -> None:
        with self._lock:
            self.outcome.problems.append(f"device {device}: warning: {message}")
        self.display.warning(device, message)


def _open_run(inventory: Inventory, store: Store, plan: Plan, resume: str | None,
              label: str | None = None) -> tuple[str, set[str], int]:  # fmt: skip
    """A new run, or the one to resume: its id, the jobs it already holds, and how many of its jobs
    are measured again because their device was lost. The run is held by this process from here."""
    rows = [job.plan_entry() for job in plan.jobs]
    if resume is None:
        run_id = store.begin_run(str(inventory.path), rows, __version__, label)
        store.hold_run(run_id)
        return run_id, set(), 0
    run_id = store.find_run(resume or None).run_id
    store.hold_run(run_id)  # before reading what is done: another sweep of it may be writing
    lost = store.forget_lost(run_id)
    done = store.done_job_ids(run_id)
    store.resume_run(run_id, len(plan.jobs), rows)
    return run_id, done, lost


def run_sweep(
    inventory: Inventory,
    zoo: Zoo,
    store: Store,
    display: SweepListener,
    resume: str | None = None,
    build: bool = True,
    executor: str | Executor = "threads",
    resume_command: str = "embench sweep INVENTORY --resume {run}",
    label: str | None = None,
    executor_options: dict[str, Any] | None = None,
) -> SweepOutcome:
    """Plan, build, run and record; an interrupt (Ctrl-C, SIGTERM) leaves every finished result stored.
    `executor` (one, or a key of executors.EXECUTORS made with `executor_options`) runs the device queues."""
    plan = make_plan(inventory, zoo)
    eval_sets = load_eval_sets(inventory)  # a bad one stops the sweep before a run is opened
    artifacts, unavailable = ensure_artifacts(zoo, plan, build, display.building)
    runs_queues = EXECUTORS[executor](**(executor_options or {})) if isinstance(executor, str) else executor
    run_id, done, lost = _open_run(inventory, store, plan, resume, label)
    kept = store.pending_repetitions(run_id) if resume is not None else {}
    todo = [j for j in plan.jobs if j.job_id not in done]
    outcome = SweepOutcome(run_id, len(plan.jobs), len(plan.jobs) - len(todo))
    if lost:
        outcome.notes.append(f"measuring again {lost} job(s) that failed because their device was unreachable")
    if kept:
        outcome.notes.append(f"{len(kept)} interleaved job(s) go on from the {sum(map(len, kept.values()))}"
                             " repetition(s) kept of them")  # fmt: skip
    display.planned(len(plan.jobs), outcome.skipped_done)
    recorder = Recorder(store, zoo, outcome, display, resume_command.format(run=run_id))
    stop = threading.Event()
    by_device: dict[str, list[PlannedJob]] = {}
    for job in todo:
        by_device.setdefault(job.device, []).append(job)
    fid = inventory.sweep.fidelity
    checks = {model: fid.spec(zoo.entry(model).input_range) for model in inventory.sweep.models}
    runners = [
        DeviceRunner(inventory.device(name), jobs, artifacts, recorder, stop, unavailable=unavailable,
                     checks=checks, eval_sets=eval_sets, done_repetitions=kept)
        for name, jobs in by_device.items()
    ]  # fmt: skip
    try:
        runs_queues.run(runners, stop)
    except KeyboardInterrupt as exc:
        store.end_run(run_id, "interrupted")
        pending = store.pending_repetitions(run_id)
        store.release_run(run_id)
        outcome.interrupted = exit_code(exc)
        if pending:  # unfinished interleaved jobs: what they measured is stored too, not only finished jobs
            outcome.notes.append(f"{sum(map(len, pending.values()))} repetition(s) of {len(pending)} unfinished"
                                 " interleaved job(s) are stored too: --resume goes on from them")  # fmt: skip
        return outcome
    except StoreError as exc:
        with contextlib.suppress(StoreError):  # a full disk may refuse this too; --resume works either way
            store.end_run(run_id, "interrupted")
        raise type(exc)(f"{exc}; what was stored is intact: continue with `{recorder.resume}`") from None
    finally:
        outcome.pushed_bytes = sum(r.transport.pushed_bytes for r in runners if r.transport is not None)
    store.end_run(run_id, "finished")
    store.release_run(run_id)  # swept: what reads it next (a nightly's verdict, a `compare`) sees it so
    _judge(outcome, store, recorder)
    return outcome


def _judge(outcome: SweepOutcome, store: Store, recorder: Recorder) -> None:
    """What the whole run holds now (a resume judges every job, not only its own), and devices on which
    nothing could be measured, said loudly."""
    outcome.run_counts = Counter(store.status_counts(outcome.run_id))
    earlier = sum(n for s, n in outcome.run_counts.items() if s not in SUCCESS) - sum(
        n for s, n in outcome.counts.items() if s not in SUCCESS
    )
    if earlier > 0:
        report = shlex.join(["embench", "report", "--run", outcome.run_id, "--store", store.where])
        outcome.problems.append(f"{earlier} job(s) of run {outcome.run_id} still failed from an earlier sweep"
                                f" (`{report}` lists them)")  # fmt: skip
    for device in outcome.idle_devices():
        outcome.problems.append(
            f"device {device}: NOTHING MEASURED: no runtime of the sweep imports there, e.g. {recorder.first_unsupported[device]};"
            " install the runtime there, or point the device's python: at an interpreter that has it"
        )
