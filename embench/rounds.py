"""A device's repetitions in rounds (`sweep.run.order: interleaved`, the default): repetition 0 of every
job of the device, then repetition 1 of every job, and so on, each repetition an agent run of its own.

Why (docs/nightly.md, measured by benchmarks/regression_calibration.py): what disturbs a device for a
few seconds (a neighbour on a shared host, a background update) lands on one repetition of several
series rather than on every repetition of one, and a series' median of repetitions then ignores it.

The queue is a list of Steps; both executors run it (executors/threads.py through DeviceRunner.run,
executors/dask.py one step per task). Each repetition's Result is stored as it arrives (the store's
`repetitions` table, so an interrupt or a lost device keeps it for `--resume`), and the job's one
Result is joined from them once its last repetition is in, the way the agent joins its own
(embench_agent.repeat.stitched). Computes only: no I/O here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from embench_agent.protocol import INTERLEAVED, Job, Result, SourceTrace, Telemetry
from embench_agent.repeat import stitched, stopped_by

from .plan import PlannedJob


@dataclass(frozen=True)
class Step:
    """One agent run of a device's queue: a whole job (with its repetitions, if any, back to back in
    that run), or one repetition of an interleaved job."""

    planned: PlannedJob
    repetition: int | None = None  # None: the whole job

    @property
    def timeout(self) -> float:
        """timeout_seconds is per repetition: a whole job of R repetitions may take R times it."""
        run = self.planned.run
        return run.timeout_seconds if self.repetition is not None else run.job_timeout_seconds

    @property
    def label(self) -> str:
        if self.repetition is None:
            return self.planned.label
        return f"{self.planned.label} (repetition {self.repetition + 1}/{self.planned.run.repetitions})"


def interleaved(planned: PlannedJob, agent_kind: str) -> bool:
    """Whether the job runs in rounds: it has repetitions, asks for it, and its device runs the Python
    agent (benchmark_model times a job in one process: a phone's job stays one step)."""
    return planned.run.order == INTERLEAVED and planned.run.repetitions > 1 and agent_kind == "python"


def steps(jobs: Sequence[PlannedJob], agent_kind: str, done: Mapping[str, Collection[int]] | None = None) -> list[Step]:
    """A device's queue in the order it runs: round by round, each round the jobs in plan order (a whole
    job in the first round); repetitions already stored (`done`: job id → their indices; a resumed
    run) are left out."""
    done = done or {}
    rounds = max((j.run.repetitions for j in jobs if interleaved(j, agent_kind)), default=1)
    out = []
    for r in range(rounds):
        for job in jobs:
            if not interleaved(job, agent_kind):
                if r == 0:
                    out.append(Step(job))
            elif r < job.run.repetitions and r not in done.get(job.job_id, ()):
                out.append(Step(job, r))
    return out


def jobs_left(queue: Iterable[Step], ended: Collection[str]) -> int:
    """How many jobs still have a step in `queue` (those in `ended` have their result already)."""
    return len({s.planned.job_id for s in queue} - set(ended))


def round_job(job: Job, index: int) -> Job:
    """What the agent is sent for repetition `index`: a job of one repetition. As in the agent's own
    repetitions, the fidelity and accuracy checks and the op-profiling pass run with the last only, and
    the idle power baseline (energy is the first repetition's) with the first only."""
    last, run = index == job.run.repetitions - 1, job.run
    one = dataclasses.replace(run, repetitions=1, op_profiling=run.op_profiling and last,
                              idle_seconds=run.idle_seconds if index == 0 else 0.0)  # fmt: skip
    checks = job.checks if last else dataclasses.replace(job.checks, fidelity_inputs=0, eval_path=None,
                                                         eval_sha256=None)  # fmt: skip
    return dataclasses.replace(job, run=one, checks=checks)


def ends_job(result: Result) -> bool:
    """A repetition that did not measure ends its job there, as in the agent's own repetitions."""
    return not result.measured


def complete(job: Job, repetitions: int, last: Result) -> bool:
    """Whether a job's `repetitions` so far, `last` the latest of them, make its whole Result."""
    return repetitions >= job.run.repetitions or ends_job(last)


def joined(job: Job, parts: Sequence[tuple[int, Result]]) -> Result:
    """The job's one Result from its repetitions (index, Result; in index order): every repetition's
    samples in order with its share (Result.repetitions), as the agent joins its own; the first
    repetition's device facts and energy window, telemetry traces over every repetition (throttling in
    any of them is seen), the checks' outputs from the last; a repetition that did not measure stops
    the job with its status, what was measured before it kept."""
    count = job.run.repetitions
    measured = [r for _, r in parts if not ends_job(r)]
    stop = next(((i, r) for i, r in parts if ends_job(r)), None)
    problem = stopped_by(stop[1], stop[0], count, first=not measured) if stop is not None else None
    fields = stitched(measured, [None] * len(measured), problem)
    first, last = parts[0][1], parts[-1][1]
    return dataclasses.replace(
        first, **fields, telemetry=_telemetry([r.telemetry for _, r in parts]), outputs=last.outputs,
        accuracy=last.accuracy, ended_unix=last.ended_unix, attempts=max(r.attempts for _, r in parts),
        command_seconds=_sum(r.command_seconds for _, r in parts),
        pushed_bytes=_sum(r.pushed_bytes for _, r in parts),
        stderr_tail=last.stderr_tail,
    )  # fmt: skip


Number = TypeVar("Number", int, float)


def _sum(values: Iterable[Number | None]) -> Number | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _telemetry(parts: Sequence[Telemetry | None]) -> Telemetry | None:
    """The first repetition's telemetry (its edges: the idle baseline and the energy window), each
    source's samples over every repetition (one device clock: CLOCK_MONOTONIC), its facts at the start
    of the first and the end of the last."""
    known = [t for t in parts if t is not None]
    if not known:
        return None
    first = known[0]

    def whole(trace: SourceTrace) -> SourceTrace:
        same = [s for t in known for s in t.sources if (s.source, s.label) == (trace.source, trace.label)]
        return dataclasses.replace(trace, facts=same[-1].facts, samples=tuple(p for s in same for p in s.samples))

    errors = tuple(dict.fromkeys(e for t in known for e in t.errors))
    cpu = _sum(t.sampler_cpu_seconds for t in known)
    return dataclasses.replace(first, sources=tuple(whole(s) for s in first.sources), errors=errors,
                               sampler_cpu_seconds=cpu)  # fmt: skip
