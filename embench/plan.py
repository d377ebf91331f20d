"""Expand an inventory's sweep into a deterministic list of jobs with stable ids."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from .inventory import Device, Inventory, RunPolicy
from .zoo import Zoo, artifact_name, model_format

JOB_SCHEMA = 1


@dataclass(frozen=True)
class Job:
    """One measurement: model × precision × runtime × delegate × threads on one device."""

    device: str
    model: str
    precision: str
    format: str
    runtime: str
    delegate: str
    threads: int
    run: RunPolicy
    seed: int

    @property
    def job_id(self) -> str:
        """Stable hash of everything that defines the job (not of when or where it ran)."""
        payload = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        return f"{self.device}/{self.model}/{self.precision}/{self.runtime}:{self.delegate}/t{self.threads}"

    def key(self) -> dict[str, Any]:
        """The fields a report groups by."""
        return {
            k: getattr(self, k) for k in ("device", "model", "precision", "format", "runtime", "delegate", "threads")
        }


@dataclass(frozen=True)
class Plan:
    jobs: list[Job]
    skipped: list[str]


def make_plan(inventory: Inventory, zoo: Zoo) -> Plan:
    """All jobs of the sweep, in a fixed order; combinations the zoo cannot provide are listed as skipped."""
    sweep = inventory.sweep
    where = inventory.where
    for i, model in enumerate(sweep.models):
        if model not in zoo.names:
            msg = f"unknown model {model!r}"
            fix = f"models in {zoo.manifest_path}: {', '.join(zoo.names)}"
            if where is not None:
                raise where.error(f"sweep.models[{i}]", msg, fix)
            raise KeyError(f"{msg}; {fix}")
    jobs: list[Job] = []
    skipped: list[str] = []
    for device in inventory.selected_devices():
        for model in sweep.models:
            available = set(zoo.artifacts_of(model))
            for precision in sweep.precisions:
                for runtime in sweep.runtimes:
                    for delegate in sweep.delegates[runtime]:
                        fmt = model_format(runtime, delegate)
                        if artifact_name(fmt, precision) not in available:
                            note = (
                                f"{model} has no {fmt} {precision} file: {runtime}:{delegate} × {precision} not planned"
                            )
                            if note not in skipped:
                                skipped.append(note)
                            continue
                        jobs.extend(_jobs_for(device, model, precision, fmt, runtime, delegate, inventory))
    return Plan(jobs, skipped)


def _jobs_for(
    device: Device, model: str, precision: str, fmt: str, runtime: str, delegate: str, inv: Inventory
) -> list[Job]:
    sweep = inv.sweep
    return [Job(device.name, model, precision, fmt, runtime, delegate, t, sweep.run, sweep.seed) for t in sweep.threads]
