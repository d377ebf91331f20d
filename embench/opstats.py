"""Where the time goes: each job's per-op records (Result.ops) as one table, op types sorted into
classes every runtime shares, time by class per configuration, the class that dominates each
device × model, and how each class scales with threads and delegates. Pure: no I/O.

Op types differ by runtime (LiteRT CONV_2D, ONNX Runtime Conv / FusedConv / QLinearConv, XNNPACK's
"Convolution (NHWC, QC8) GEMM" inside benchmark_model's profile); `op_class` maps them all onto
OP_CLASSES, so a device running LiteRT and one running ONNX Runtime can be read side by side."""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd

from embench_agent.protocol import CPU, CPU_PROCESSORS

from .store import StoredResult

CONFIG = ["device", "model", "precision", "runtime", "delegate", "threads"]
COLUMNS = [*CONFIG, "job_id", "source", "index", "name", "type", "op_class", "processor", "on_cpu", "ms", "share",
           "calls", "reason"]  # fmt: skip
OP_CLASSES = (
    "conv",
    "depthwise",
    "fully-connected",
    "activation",
    "elementwise",
    "pooling",
    "normalization",
    "quantize",
    "reshape/transpose/other",
    "delegate partition",
)
_PARTITIONS = re.compile(r"^(delegate|tflite\w*delegate\w*)$", re.I)
# (class, pattern on the lower-cased type); the first that matches wins: depthwise before conv, and
# conv before fully-connected (XNNPACK runs 1×1 convolutions as "Convolution (NHWC, F32) GEMM").
_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        ("depthwise", r"depthwise|dwconv"),
        ("conv", r"conv(?!ert)"),
        ("fully-connected", r"fully.?connected|matmul|gemm|einsum|^dense"),
        ("pooling", r"pool|^mean$|^reduce"),
        ("normalization", r"norm"),
        ("quantize", r"quantiz|^convert\b|^cast$"),
        ("activation", r"relu|sigmoid|logistic|tanh|swish|softmax|gelu|elu$|clamp|clip|^hard|^exp$|^erf$"),
        (
            "elementwise",
            r"^(add|mul|sub|div|pow|sqrt|rsqrt|maximum|minimum|max|min|squared_difference|abs|neg|square"
            r"|multiply|subtract|divide|sum)\b",
        ),
    )
)


def op_class(op_type: str) -> str:
    """The class an op type belongs to (OP_CLASSES), for any runtime's naming."""
    if _PARTITIONS.match(op_type.strip()):
        return "delegate partition"
    low = op_type.strip().lower()
    for name, pattern in _RULES:
        if pattern.search(low):
            return name
    return "reshape/transpose/other"


def op_frame(stored: Iterable[StoredResult]) -> pd.DataFrame:
    """Every op of every job that has per-op records: the configuration, the op (index, name, type,
    class, processor, on_cpu), its time per inference (ms; NaN where not profiled), its share of the
    job's profiled op time, times called, and where the records came from (source). Built column by
    column from the profiles' own columns: a lab's run has millions of ops."""
    jobs = [(item.job, item.result.ops) for item in stored if item.result.ops is not None and item.result.ops.index]
    if not jobs:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
    counts = np.fromiter((len(ops.index) for _, ops in jobs), dtype=np.int64, count=len(jobs))

    def per_job(values: Iterable[Any]) -> np.ndarray:
        return np.repeat(np.asarray(list(values), dtype=object), counts)

    def chained(column: str, missing: Any) -> list[Any]:
        return list(chain.from_iterable(getattr(ops, column) or (missing,) * n for (_, ops), n in zip(jobs, counts)))

    ms = np.concatenate([np.asarray(ops.ms, dtype=np.float64) if ops.ms else np.full(n, np.nan)
                         for (_, ops), n in zip(jobs, counts)])  # fmt: skip
    totals = np.repeat(np.asarray([sum(ops.ms) if ops.ms else np.nan for _, ops in jobs], dtype=np.float64), counts)
    types = pd.Series(chained("type", ""), dtype=object)
    processors = pd.Series(chained("processor", CPU), dtype=object)
    classes = {t: op_class(t) for t in types.unique()}
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(totals > 0, ms / totals, np.nan)
    frame = pd.DataFrame({
        "device": per_job(j.device for j, _ in jobs), "model": per_job(j.model.name for j, _ in jobs),
        "precision": per_job(j.model.precision for j, _ in jobs), "runtime": per_job(j.runtime for j, _ in jobs),
        "delegate": per_job(j.delegate.name for j, _ in jobs),
        "threads": np.repeat(np.asarray([j.threads for j, _ in jobs], dtype=np.int64), counts),
        "job_id": per_job(j.job_id for j, _ in jobs), "source": per_job(ops.source for _, ops in jobs),
        "index": np.asarray(chained("index", 0), dtype=np.int64), "name": chained("name", ""), "type": types,
        "op_class": types.map(classes), "processor": processors, "on_cpu": processors.isin(CPU_PROCESSORS),
        "ms": ms, "share": share, "calls": chained("calls", None),
        "reason": [r or None for r in chained("reason", None)],
    })  # fmt: skip
    return frame[COLUMNS]


def by_class(ops: pd.DataFrame) -> pd.DataFrame:
    """Per configuration and op class: ops, ops left on the CPU, ms per inference and share of the
    configuration's profiled time (NaN where the configuration has no timings)."""
    if ops.empty:
        return pd.DataFrame(columns=[*CONFIG, "op_class", "ops", "on_cpu", "ms", "share"])
    grouped = ops.groupby([*CONFIG, "op_class"], sort=True, dropna=False)
    out = pd.DataFrame({"ops": grouped.size(), "on_cpu": grouped["on_cpu"].sum(), "ms": grouped["ms"].sum(min_count=1)})
    out = out.reset_index()
    totals = out.groupby(CONFIG, dropna=False)["ms"].transform("sum")
    out["share"] = (out["ms"] / totals).where(out["ms"].notna())
    return out


def dominant(classes: pd.DataFrame) -> pd.DataFrame:
    """Per configuration with timings: the op class with the largest share, its share, and the second."""
    cols = [*CONFIG, "first", "first_share", "second", "second_share"]
    timed = classes.dropna(subset=["ms"])
    if timed.empty:
        return pd.DataFrame(columns=cols)
    ranked = timed.sort_values([*CONFIG, "share"], ascending=[True] * len(CONFIG) + [False], kind="stable")
    ranked = ranked.assign(_rank=ranked.groupby(CONFIG).cumcount())
    first = ranked[ranked["_rank"] == 0][[*CONFIG, "op_class", "share"]]
    second = ranked[ranked["_rank"] == 1][[*CONFIG, "op_class", "share"]]
    out = first.rename(columns={"op_class": "first", "share": "first_share"}).merge(
        second.rename(columns={"op_class": "second", "share": "second_share"}), on=CONFIG, how="left"
    )
    return out[cols].reset_index(drop=True)


def class_scaling(classes: pd.DataFrame) -> pd.DataFrame:
    """How each op class scales: per device × model × precision × runtime × class, its ms in every
    delegate × threads configuration against the same class in that series' CPU run with the fewest
    threads (where it was profiled)."""
    cols = ["device", "model", "precision", "runtime", "op_class", "delegate", "threads", "ms", "base", "speedup"]
    timed = classes.dropna(subset=["ms"])
    if timed.empty:
        return pd.DataFrame(columns=cols)
    series = ["device", "model", "precision", "runtime", "op_class"]
    cpu = timed[timed["delegate"].isin(CPU_PROCESSORS)]
    base = cpu.sort_values([*series, "threads"], kind="stable").drop_duplicates(series)
    base = base.assign(base=base["delegate"] + "×" + base["threads"].astype(str), _base_ms=base["ms"])
    out = timed.merge(base[[*series, "base", "_base_ms"]], on=series, how="inner")
    out["speedup"] = (out["_base_ms"] / out["ms"]).where(out["ms"] > 0)
    return out.sort_values([*series, "delegate", "threads"], kind="stable")[cols].reset_index(drop=True)
