"""A job's per-op records as Google Model Explorer node data (its `GraphNodeData` JSON, as the
`ai-edge-model-explorer` package's node_data_builder writes it), to overlay on the model's graph:
time per inference (a gradient from the fastest to the slowest op) and placement (delegate or CPU).

Model Explorer keys a TFLite node by any of its output tensors' names. LiteRT's records carry the
first output tensor's name; benchmark_model's rows carry the node's output names in brackets
(`[a, b]:71`). Operators inside an XNNPACK delegate (`Delegate/...` rows) are not graph nodes and are
left out, as are nodes with no tensor name. Only TFLite models: Model Explorer has no built-in ONNX
adapter. A delegate partition's row (TfLiteNnapiDelegate, ...) times its whole subgraph and is left
out of the time overlay. Load a file with `model-explorer MODEL.tflite --node_data_paths=FILE`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

from embench_agent.protocol import CPU_PROCESSORS, OpProfile, OpRecord

from ..opstats import op_class
from .pages import file_slugs
from .tables import ReportData

PLACEMENT_COLOURS = {"cpu": "#f4a6a6", "delegate": "#a8d5a2"}  # light red: left on the CPU; light green
GRADIENT = [{"stop": 0, "bgColor": "#ffffff"}, {"stop": 1, "bgColor": "#d62728"}]
_BRACKETED = re.compile(r"^\[(.*)\]:\d+$")
_FALLBACK_NAME = re.compile(r"^[A-Z0-9_]+:\d+$")  # LiteRT's "OP:tensor" when a tensor had no name


def node_key(name: str) -> str | None:
    """The output tensor name Model Explorer matches a node by, or None (not a graph node)."""
    if name.startswith("Delegate/") or _FALLBACK_NAME.match(name):
        return None
    m = _BRACKETED.match(name)
    if m:
        return m.group(1).split(", ")[0] or None
    return name or None


def time_node_data(profile: OpProfile, label: str) -> dict[str, Any] | None:
    """Each node's time per inference (ms); None when the profile has no timings or no graph nodes."""
    results: dict[str, dict[str, Any]] = {}
    for op in profile.ops:
        key = node_key(op.name)
        if key is None or op.ms is None or op_class(op.type) == "delegate partition":
            continue  # a partition's time is its whole subgraph's, not the node its output names
        results[key] = {"value": round(op.ms, 6)}
    if not results:
        return None
    return {"name": f"{label}: ms per inference", "results": results, "gradient": GRADIENT}


def placement_node_data(profile: OpProfile, label: str) -> dict[str, Any] | None:
    """Each node's placement: 1 on the delegate, 0 left on the CPU, coloured so; None when no node
    is on a delegate and none was asked to be (all-CPU runs have nothing to show)."""
    results: dict[str, dict[str, Any]] = {}
    for op in profile.ops:
        key = node_key(op.name)
        if key is None:
            continue
        on_cpu = op.processor in CPU_PROCESSORS
        results[key] = {"value": 0 if on_cpu else 1, "bgColor": PLACEMENT_COLOURS["cpu" if on_cpu else "delegate"]}
    if not results or all(r["value"] == 0 for r in results.values()):
        return None
    return {"name": f"{label}: on the delegate (1) or the CPU (0)", "results": results}


def write_node_data(data: ReportData, folder: Path) -> list[Path]:
    """For every LiteRT job with per-op records: `<device>/<model>.<precision>.<delegate>.t<N>.time.json`
    (where timed) and `.placement.json` (where a delegate was asked for). Returns the files written."""
    ops = data.ops
    if ops.empty:
        return []
    written = []
    tflite = ops[ops["runtime"] == "litert"]
    slugs = file_slugs(sorted(str(d) for d in tflite["device"].unique()))
    for (device, model, precision, delegate, threads), group in tflite.groupby(
        ["device", "model", "precision", "delegate", "threads"], sort=True
    ):
        records = tuple(
            OpRecord(index=int(i), name=str(n), type=str(t), processor=str(p), ms=None if pd.isna(m) else float(m))
            for i, n, t, p, m in zip(group["index"], group["name"], group["type"], group["processor"], group["ms"])
        )
        profile = OpProfile.of(str(group["source"].iloc[0]), records)
        label = f"{device} {model} {precision} {delegate} t{threads}"
        stem = _safe(f"{model}.{precision}.{delegate}.t{threads}")
        for kind, made in (
            ("time", time_node_data(profile, label)),
            ("placement", placement_node_data(profile, label)),
        ):
            if made is None:
                continue
            path = folder / slugs[str(device)] / f"{stem}.{kind}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(made, indent=1), encoding="utf-8")
            written.append(path)
    return written


def _safe(name: str) -> str:
    """A file name from a device or model name a lab wrote (no separators, no leading dot)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).lstrip(".") or "_"
