"""Expand an inventory's sweep into a deterministic list of jobs with stable ids."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from .inventory import Device, Inventory, RunPolicy
from .runtimes import runtime
from .store import JobFields, PlanEntry
from .zoo import Zoo, artifact_name

# RunPolicy fields newer than the first job ids, with their defaults
ADDED_RUN_FIELDS = {"repetitions": 1, "isolation": "process", "order": "interleaved"}


@dataclass(frozen=True)
class PlannedJob(JobFields):
    """One measurement the sweep asks for: model × precision × runtime × delegate × threads on one
    device, and how it is run. The runner turns it into the agent's Job (embench_agent.protocol) once
    its file is known."""

    run: RunPolicy
    seed: int

    @property
    def job_id(self) -> str:
        """Stable hash of everything that defines the job (not of when or where it ran). Run-policy fields
        added later count only when set away from their default: a job planned before they existed
        keeps its id, so `--resume` of an older run still finds what it finished."""
        fields = dataclasses.asdict(self)
        for name, default in ADDED_RUN_FIELDS.items():
            if fields["run"][name] == default:
                del fields["run"][name]
        payload = json.dumps(fields, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        return f"{self.device}/{self.model}/{self.precision}/{self.runtime}:{self.delegate}/t{self.threads}"

    def plan_entry(self) -> PlanEntry:
        """What the store keeps of the plan: the fields a report groups by, and the id."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(JobFields)}
        return PlanEntry(**fields, job_id=self.job_id)

    @property
    def artifact_key(self) -> tuple[str, str, str]:
        """(model, format, precision): which zoo file it runs."""
        return self.model, self.format, self.precision


@dataclass(frozen=True)
class Plan:
    jobs: list[PlannedJob]
    # what the sweep asks for that the zoo cannot provide, in words (`embench sweep --dry-run` shows it)
    left_out: list[str] = dataclasses.field(default_factory=list)


def make_plan(inventory: Inventory, zoo: Zoo) -> Plan:
    """All jobs of the sweep, in a fixed order; combinations the zoo cannot provide are left out."""
    sweep = inventory.sweep
    for i, model in enumerate(sweep.models):
        if model not in zoo.names:
            msg = f"unknown model {model!r}"
            fix = f"models in {zoo.manifest_path}: {', '.join(zoo.names)}"
            if inventory.where is not None:
                raise inventory.where.error(f"sweep.models[{i}]", msg, fix)
            raise KeyError(f"{msg}; {fix}")
    jobs: list[PlannedJob] = []
    left_out: dict[str, None] = {}
    for device in inventory.selected_devices():
        for model in sweep.models:
            available = set(zoo.artifacts_of(model))
            for precision in sweep.precisions:
                for name in sweep.runtimes:
                    for delegate in sweep.delegates[name]:
                        fmt = runtime(name).file_format(delegate)
                        if artifact_name(fmt, precision) in available:
                            jobs.extend(_jobs_for(device, model, precision, fmt, name, delegate, inventory))
                        else:
                            left_out[f"{model} {precision} {name}:{delegate}: the zoo has no"
                                     f" {artifact_name(fmt, precision)} file for {model} ({zoo.manifest_path})"] = None  # fmt: skip
    return Plan(jobs, list(left_out))


def _jobs_for(
    device: Device, model: str, precision: str, fmt: str, runtime_name: str, delegate: str, inv: Inventory
) -> list[PlannedJob]:
    sweep = inv.sweep
    return [
        PlannedJob(device.name, model, precision, fmt, runtime_name, delegate, t, sweep.run, sweep.seed)
        for t in sweep.threads
    ]
