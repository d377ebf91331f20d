"""Where the time goes: each job's per-op records (Result.ops) as one table, op types sorted into
classes every runtime shares, time by class per configuration, the class that dominates each
device × model, and how each class scales with threads and delegates. Pure: no I/O.

Op types differ by runtime (LiteRT CONV_2D, ONNX Runtime Conv / FusedConv / QLinearConv, XNNPACK's
"Convolution (NHWC, QC8) GEMM" inside benchmark_model's profile); `op_class` maps them all onto
OP_CLASSES, so a device running LiteRT and one running ONNX Runtime can be read side by side."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

import pandas as pd

from embench_agent.protocol import CPU

from .store import StoredResult

CONFIG = ["device", "model", "precision", "runtime", "delegate", "threads"]
COLUMNS = [*CONFIG, "job_id", "source", "index", "name", "type", "op_class", "processor", "on_cpu", "ms", "share",
           "calls", "reason"]  # fmt: skip
DERIVED = ("op_class", "on_cpu")
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
CPU_PROCESSORS = (CPU, "CPUExecutionProvider")
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
    job's profiled op time, times called, and where the records came from (source). Built from the
    profiles' columns: a lab's run has millions of ops."""
    parts: dict[str, list[Any]] = {c: [] for c in COLUMNS}
    for item in stored:
        ops, job = item.result.ops, item.job
        if ops is None or not ops.index:
            continue
        n = len(ops.index)
        config = (job.device, job.model.name, job.model.precision, job.runtime, job.delegate.name, job.threads)
        for column, value in zip(CONFIG, config):
            parts[column].append([value] * n)
        parts["job_id"].append([job.job_id] * n)
        parts["source"].append([ops.source] * n)
        for column in ("index", "name", "type", "processor"):
            parts[column].append(getattr(ops, column))
        ms = list(ops.ms) if ops.ms else [math.nan] * n
        total = sum(ms) if ops.ms else math.nan
        parts["ms"].append(ms)
        parts["share"].append([m / total if total > 0 else math.nan for m in ms])
        parts["calls"].append(list(ops.calls) if ops.calls else [None] * n)
        parts["reason"].append([r or None for r in ops.reason] if ops.reason else [None] * n)
    frame = pd.DataFrame({c: [v for chunk in parts[c] for v in chunk] for c in COLUMNS if c not in DERIVED})
    types = frame["type"].astype(str)
    classes = {t: op_class(t) for t in types.unique()}
    frame.insert(COLUMNS.index("op_class"), "op_class", types.map(classes).astype(object))
    frame.insert(COLUMNS.index("on_cpu"), "on_cpu", frame["processor"].isin(CPU_PROCESSORS).astype(bool))
    return frame[COLUMNS]


def by_class(ops: pd.DataFrame) -> pd.DataFrame:
    """Per configuration and op class: ops, ops left on the CPU, ms per inference and share of the
    configuration's profiled time (NaN where the configuration has no timings)."""
    if ops.empty:
        return pd.DataFrame(columns=[*CONFIG, "op_class", "ops", "on_cpu", "ms", "share"])
    grouped = ops.groupby([*CONFIG, "op_class"], sort=True, dropna=False)
    out = grouped.agg(ops=("index", "size"), on_cpu=("on_cpu", "sum"), ms=("ms", lambda s: s.sum(min_count=1)))
    out = out.reset_index()
    totals = out.groupby(CONFIG, dropna=False)["ms"].transform(lambda s: s.sum(min_count=1))
    out["share"] = out["ms"] / totals
    return out


def dominant(classes: pd.DataFrame) -> pd.DataFrame:
    """Per device × model × configuration with timings: the op class with the largest share, its
    share, and the second one."""
    timed = classes.dropna(subset=["ms"])
    if timed.empty:
        return pd.DataFrame(columns=[*CONFIG, "first", "first_share", "second", "second_share"])
    rows = []
    for config, group in timed.groupby(CONFIG, sort=True):
        ranked = group.sort_values("share", ascending=False)
        first = ranked.iloc[0]
        second = ranked.iloc[1] if len(ranked) > 1 else None
        rows.append((*config, first["op_class"], first["share"],
                     second["op_class"] if second is not None else None,
                     second["share"] if second is not None else float("nan")))  # fmt: skip
    return pd.DataFrame.from_records(rows, columns=[*CONFIG, "first", "first_share", "second", "second_share"])


def class_scaling(classes: pd.DataFrame) -> pd.DataFrame:
    """How each op class scales: per device × model × precision × runtime × class, its ms in every
    delegate × threads configuration against the same class on the slowest-configured CPU run of
    that series (the CPU delegate with the fewest threads, where it was profiled)."""
    timed = classes.dropna(subset=["ms"])
    cols = ["device", "model", "precision", "runtime", "op_class", "delegate", "threads", "ms", "base", "speedup"]
    if timed.empty:
        return pd.DataFrame(columns=cols)
    series = ["device", "model", "precision", "runtime", "op_class"]
    rows = []
    for key, group in timed.groupby(series, sort=True):
        cpu = group[group["delegate"].isin(["cpu", "CPUExecutionProvider"])].sort_values("threads")
        if cpu.empty:
            continue
        base = cpu.iloc[0]
        for _, row in group.sort_values(["delegate", "threads"]).iterrows():
            base_label = f"{base['delegate']}×{base['threads']}"
            speedup = base["ms"] / row["ms"] if row["ms"] > 0 else float("nan")
            rows.append((*key, row["delegate"], row["threads"], row["ms"], base_label, speedup))
    return pd.DataFrame.from_records(rows, columns=cols)
