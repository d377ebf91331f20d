"""A synthetic lab run written through the real Store: many devices × models × configurations, each job
with raw samples, repetitions on some, telemetry on the boards that have a power counter, and the
statuses a lab really sees (fallback, unsupported, failed). For tests of the report at scale and for
benchmarks/report_scale.py; the numbers are made up, the files and classes are the real ones."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from embench.store import PlanEntry, Store
from embench_agent.protocol import (
    CheckSpec,
    DelegateSpec,
    Delegation,
    DeviceFacts,
    Edge,
    Job,
    ModelRef,
    OpProfile,
    OpRecord,
    Repetition,
    Result,
    RunSpec,
    RuntimeInfo,
    SourceSpec,
    SourceTrace,
    Telemetry,
)

# (precision, runtime, delegate, threads): ten configurations per device and model
CONFIGS = (
    ("fp32", "litert", "cpu", 1), ("fp32", "litert", "xnnpack", 1), ("fp32", "litert", "xnnpack", 4),
    ("fp16", "litert", "xnnpack", 4), ("int8", "litert", "cpu", 1), ("int8", "litert", "xnnpack", 1),
    ("int8", "litert", "xnnpack", 4), ("fp32", "litert", "gpu", 1), ("fp32", "onnxruntime", "CPUExecutionProvider", 1),
    ("int8", "onnxruntime", "CPUExecutionProvider", 4),
)  # fmt: skip
KINDS = ("pixel7", "pi5", "jetson-orin", "coral-devboard", "galaxy-s23")


def lab_shape(jobs: int) -> tuple[int, int]:
    """(devices, models) for about `jobs` jobs of ten configurations each, devices ≈ models / 1.6."""
    pairs = max(1, jobs // len(CONFIGS))
    devices = max(1, round((pairs / 1.6) ** 0.5))
    return devices, max(1, pairs // devices)


def write_lab_run(path: Path, jobs: int, samples: int = 100, seed: int = 0, repetitions: int = 1,
                  names: list[str] | None = None, model_names: list[str] | None = None, ops: bool = True) -> str:  # fmt: skip
    """A finished run of about `jobs` jobs with `samples` samples each into the store at `path` (devices and
    models named `names` and `model_names` where given; with per-op records unless `ops` is false); its run id."""
    rng = np.random.default_rng(seed)
    devices, models = lab_shape(jobs)
    if names is not None:
        devices = len(names)
    if model_names is not None:
        models = len(model_names)
    names = names or [f"{KINDS[d % len(KINDS)]}-{d:02d}" for d in range(devices)]
    store = Store(path)
    plan: list[PlanEntry] = []
    items: list[tuple[Job, Result]] = []
    base = 10 ** rng.uniform(0, 2.3, size=models)  # ms of fp32 CPU t1 per model on a mid device
    speed = 10 ** rng.uniform(-0.5, 0.5, size=devices)
    for d, device in enumerate(names):
        has_gpu = KINDS[d % len(KINDS)] in ("pixel7", "jetson-orin", "galaxy-s23")
        power = d % 3 == 0
        facts = DeviceFacts(hostname=device, machine="aarch64", cpu="Cortex-A76", cores=4 + 4 * (d % 2),
                            mem_total_kb=8 << 20, os="Linux", kernel="6.1.0", python="3.11.2")  # fmt: skip
        for m in range(models):
            model = model_names[m] if model_names else f"net{m:03d}"
            for precision, runtime, delegate, threads in CONFIGS:
                job_id = hashlib.sha256(
                    f"{device}/{model}/{precision}/{runtime}/{delegate}/{threads}".encode()
                ).hexdigest()[:16]
                ext = "onnx" if runtime == "onnxruntime" else "tflite"
                job = Job(job_id, device, ModelRef(model, ext, precision, f"/data/{model}.{ext}", "ab" * 32, 4_000_000),
                          runtime, DelegateSpec(delegate), threads, RunSpec(repetitions=repetitions),
                          (SourceSpec("rapl"),) if power else (), 0, CheckSpec())  # fmt: skip
                plan.append(PlanEntry.of(job))
                factor = {"fp32": 1.0, "fp16": 0.8, "int8": 0.45}[precision] / (1 + 0.7 * (threads - 1))
                factor *= {"cpu": 1.25, "xnnpack": 1.0, "gpu": 0.3, "CPUExecutionProvider": 1.1}[delegate]
                items.append(
                    (
                        job,
                        _result(
                            rng, job, base[m] * speed[d] * factor, samples, facts, has_gpu, power, repetitions, ops
                        ),
                    )
                )
    run_id = store.begin_run("lab.yaml", plan, "lab-test")
    store.add_results(run_id, items)
    store.end_run(run_id, "finished")
    store.close()
    return run_id


def _result(rng: np.random.Generator, job: Job, median_ms: float, samples: int, facts: DeviceFacts, has_gpu: bool,
            power: bool, repetitions: int, ops: bool = True) -> Result:  # fmt: skip
    runtime = RuntimeInfo(job.runtime, "ai_edge_litert" if job.runtime == "litert" else "onnxruntime", "1.4.0")
    if job.delegate.name == "gpu" and not has_gpu:
        return Result(job.job_id, "unsupported", "no OpenCL or Vulkan driver on this board", runtime=runtime,
                      device_facts=facts, error="delegate_unavailable")  # fmt: skip
    if rng.random() < 0.01:
        return Result(job.job_id, "failed", "model_load: Didn't find op for builtin opcode 'GELU' version '1'",
                      runtime=runtime, device_facts=facts, error="model_load")  # fmt: skip
    status = "fallback" if job.delegate.name == "gpu" and rng.random() < 0.3 else "ok"
    ns = np.maximum(1, rng.lognormal(np.log(median_ms * 1e6), 0.04, size=samples)).astype(np.int64)
    ns[rng.random(samples) < 0.02] *= 3  # a tail
    total = 60 if job.runtime == "litert" else 80
    delegated = (total - int(rng.integers(1, 8))) if status == "fallback" else total
    window = int(ns.sum())
    per = samples // repetitions
    reps = tuple(Repetition(i, per if i < repetitions - 1 else samples - per * (repetitions - 1), 50.0, 2 * median_ms)
                 for i in range(repetitions)) if repetitions > 1 else ()  # fmt: skip
    telemetry = None
    if power:
        watts = 2.0 + rng.random()
        uj = 1e6 * watts * window / 1e9  # a RAPL-like energy counter (µJ) read at the window's edges
        telemetry = Telemetry(edges={"window_start": Edge(1.0, 1.7e9, {"rapl": 5e6}),
                                     "window_end": Edge(1.0 + window / 1e9, None, {"rapl": 5e6 + round(uj)})},
                              sources=(SourceTrace("rapl", "package-0", "counter", "uJ"),))  # fmt: skip
    return Result(
        job.job_id, status, f"{total - delegated} of {total} nodes stayed on the CPU" if status == "fallback" else None,
        agent_version="0.4.0", runtime=runtime,
        delegation=Delegation(job.delegate.name, job.delegate.name, delegated if job.delegate.name != "cpu" else None, total),
        init_ms=40 + 10 * rng.random(), first_inference_ms=2 * median_ms, samples_ns=tuple(int(x) for x in ns),
        window_ns=window, peak_rss_kb=int(50_000 + 100_000 * rng.random()), device_facts=facts, telemetry=telemetry,
        started_unix=1.7e9, ended_unix=1.7e9 + window / 1e9, repetitions=reps, other_cpu=0.01,
        ops=_ops(rng, job, total, delegated, median_ms) if ops else None,
    )  # fmt: skip


OP_MIX = ("CONV_2D", "CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "HARD_SWISH", "MEAN", "RESHAPE", "FULLY_CONNECTED")


def _ops(rng: np.random.Generator, job: Job, total: int, delegated: int, median_ms: float) -> OpProfile:
    """Per-op records as a lab's agents write them: ONNX Runtime profiled (each op timed, summing to a
    little under the median), LiteRT placement only (the ops a delegate left on the CPU last)."""
    types = tuple(OP_MIX[i % len(OP_MIX)] for i in range(total))
    names = tuple(f"{job.model.name}/block{i // 4}/{t.lower()}_{i}" for i, t in enumerate(types))
    if job.runtime == "onnxruntime":
        share = rng.dirichlet(np.ones(total))
        records = tuple(OpRecord(i, n, t.title().replace("_", ""), "CPUExecutionProvider", ms=float(median_ms * 0.95 * x))
                        for i, (n, t, x) in enumerate(zip(names, types, share)))  # fmt: skip
        return OpProfile.of("onnxruntime-profiler", records, runs=20, profiled_ms=median_ms * 1.05)
    where = [job.delegate.name if job.delegate.name != "cpu" and i < delegated else "cpu" for i in range(total)]
    records = tuple(OpRecord(i, n, t, w, partition=total if w != "cpu" else None) for i, (n, t, w) in
                    enumerate(zip(names, types, where)))  # fmt: skip
    return OpProfile.of("litert-delegation", records, note="placement only")
