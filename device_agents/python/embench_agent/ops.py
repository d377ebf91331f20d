"""Per-op placement and time, normalised into OpRecords: which node ran where (LiteRT's DELEGATE
partitions, ONNX Runtime's per-node provider) and, where the runtime has a profiler, how long.

LiteRT's Python API has no per-op profiler (`_get_ops_details()` carries no timings): its profile is
placement only, and says how to get timings (benchmark_model --enable_op_profiling on that device).
ONNX Runtime's profiler (SessionOptions.enable_profiling) writes a Chrome trace whose `cat: "Node"`
events carry `op_name` and `provider`; it runs in a session of its own after the timed window."""

from __future__ import annotations

import json
import os
import tempfile
import time
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence

from .protocol import CPU, CPU_PROCESSORS, OpProfile, OpRecord

PROFILE_RUNS = 20  # inferences in a profiled pass, after one warm-up ...
PROFILE_SECONDS = 5.0  # ... or fewer, once this much time has gone (at least MIN_PROFILE_RUNS)
MIN_PROFILE_RUNS = 3
LITERT_NOTE = (
    "LiteRT's Python API has no per-op profiler: placement only. For per-op times run TFLite's"
    " benchmark_model --enable_op_profiling=true on this device (embench's benchmark_model agent does)"
)


def delegate_partitions(ops: Sequence[Mapping[str, Any]]) -> Dict[int, int]:
    """{original node index: the DELEGATE node that took it}, walking each partition backwards from
    its outputs to its inputs through the nodes that produce them."""
    originals = [op for op in ops if op.get("op_name") != "DELEGATE"]
    producer = {}
    for op in originals:
        for tensor in op.get("outputs", []):
            producer[int(tensor)] = int(op["index"])
    by_index = dict((int(op["index"]), op) for op in originals)
    taken: Dict[int, int] = {}
    for node in ops:
        if node.get("op_name") != "DELEGATE":
            continue
        boundary = set(int(t) for t in node.get("inputs", []))
        stack = [int(t) for t in node.get("outputs", [])]
        seen = set()
        while stack:
            tensor = stack.pop()
            if tensor in seen or tensor in boundary:
                continue
            seen.add(tensor)
            index = producer.get(tensor)
            if index is None or index in taken:
                continue
            taken[index] = int(node["index"])
            stack.extend(int(t) for t in by_index[index].get("inputs", []) if int(t) >= 0)
    return taken


def litert_placement(
    ops: Sequence[Mapping[str, Any]], delegate: str, tensor_names: Optional[Mapping[int, str]] = None
) -> OpProfile:
    """Every original node of a LiteRT interpreter, on the CPU or in the delegate's partition. A node
    is named by its first output tensor's name (what Model Explorer keys node data by)."""
    taken = delegate_partitions(ops)
    records = []
    for op in ops:
        if op.get("op_name") == "DELEGATE":
            continue
        index = int(op["index"])
        partition = taken.get(index)
        records.append(
            OpRecord(
                index=index, name=_litert_name(op, tensor_names or {}), type=str(op.get("op_name", "")),
                processor=delegate if partition is not None else CPU, partition=partition,
                reason=None if partition is not None or delegate == CPU else _left_on_cpu(op, delegate),
            )
        )  # fmt: skip
    return OpProfile.of("litert-delegation", tuple(records), note=LITERT_NOTE)


def _litert_name(op: Mapping[str, Any], tensor_names: Mapping[int, str]) -> str:
    outputs = [int(t) for t in op.get("outputs", [])]
    if outputs and outputs[0] in tensor_names:
        return tensor_names[outputs[0]]
    return "{}:{}".format(op.get("op_name", "op"), outputs[0] if outputs else op.get("index"))


def _left_on_cpu(op: Mapping[str, Any], delegate: str) -> str:
    """What LiteRT tells about a node its delegate did not take: its operand types. LiteRT does not say
    why (a delegate takes a node when it has a kernel for that op with those types, among others)."""
    types = [getattr(t, "__name__", str(t)) for t in op.get("operand_types", [])]
    kinds = ", ".join(sorted(set(types))) or "unknown"
    return f"{delegate} did not take it (operand types {kinds}); LiteRT gives no reason"


# ---------------------------------------------------------------------------- ONNX Runtime


def ort_profile(events: Iterable[Mapping[str, Any]], skip_runs: int = 1) -> OpProfile:
    """An ORT Chrome trace → per-node mean time over the runs after the first `skip_runs` (warm-up).

    Each `model_run` Session event bounds one inference; the `cat: "Node"` events named
    `<node>_kernel_time` inside it are that node's kernels (fences and others are ignored)."""
    events = list(events)
    runs = sorted(
        (float(e["ts"]), float(e["ts"]) + float(e["dur"]))
        for e in events
        if e.get("cat") == "Session" and e.get("name") == "model_run"
    )[skip_runs:]
    if not runs:
        return OpProfile(source="onnxruntime-profiler", note="the profile holds no run after the warm-up")
    starts = [start for start, _ in runs]
    order: List[str] = []
    total: Dict[str, float] = {}
    calls: Dict[str, int] = {}
    first: Dict[str, Mapping[str, Any]] = {}
    for e in events:
        name = str(e.get("name", ""))
        if e.get("cat") != "Node" or not name.endswith("_kernel_time"):
            continue
        ts = float(e["ts"])
        i = _run_at(starts, ts)
        if i < 0 or ts > runs[i][1]:
            continue  # a warm-up run's
        node = name[: -len("_kernel_time")]
        if node not in total:
            order.append(node)
            total[node], calls[node], first[node] = 0.0, 0, e.get("args") or {}
        total[node] += float(e["dur"])
        calls[node] += 1
    n = len(runs)
    records = tuple(
        OpRecord(
            index=i, name=node, type=_ort_type(first[node]),
            processor=str(first[node].get("provider", CPU)), ms=total[node] / n / 1000.0,
            calls=max(1, round(calls[node] / n)),
        )
        for i, node in enumerate(order)
    )  # fmt: skip
    mean_run = sum(end - start for start, end in runs) / n
    return OpProfile.of("onnxruntime-profiler", records, runs=n, profiled_ms=mean_run / 1000.0)


def _ort_type(args: Mapping[str, Any]) -> str:
    """The node's op_name; a convolution with one input channel per group (a weight of shape
    [C > 1, 1, kh, kw], kh × kw > 1) is marked "(depthwise)": ORT's op type alone does not say."""
    name = str(args.get("op_name", ""))
    if "conv" not in name.lower():
        return name
    for item in list(args.get("input_type_shape") or [])[1:]:
        shape = next(iter(item.values()), None) if isinstance(item, dict) else None
        if isinstance(shape, list) and len(shape) == 4 and shape[0] > 1 and shape[1] == 1 and shape[2] * shape[3] > 1:
            return name + " (depthwise)"
    return name


def _run_at(starts: List[float], ts: float) -> int:
    """Index of the last run that started at or before ts (-1: none)."""
    lo, hi = 0, len(starts)
    while lo < hi:
        mid = (lo + hi) // 2
        if starts[mid] <= ts:
            lo = mid + 1
        else:
            hi = mid
    return lo - 1


def ort_profiled_pass(make_session: Callable[[Any], Any], ort: Any, run: Callable[[Any], Any]) -> OpProfile:
    """A session of its own with the profiler on: one warm-up and up to PROFILE_RUNS inferences, its
    trace parsed and deleted. `make_session(options)` builds the session the timed pass used."""
    folder = tempfile.mkdtemp(prefix="embench-ortprof-")
    try:
        options = ort.SessionOptions()
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(folder, "profile")
        session = make_session(options)
        run(session)  # the warm-up: skipped in the parse
        deadline = time.perf_counter() + PROFILE_SECONDS
        for done in range(PROFILE_RUNS):
            if done >= MIN_PROFILE_RUNS and time.perf_counter() > deadline:
                break
            run(session)
        path = session.end_profiling()
        with open(path) as f:
            return ort_profile(json.load(f), skip_runs=1)
    finally:
        for name in os.listdir(folder):
            os.unlink(os.path.join(folder, name))
        os.rmdir(folder)


def left_on_cpu(profile: OpProfile, limit: int = 6) -> str:
    """The op types a delegate left on the CPU, most frequent first: "SHAPE ×1, PACK ×1"."""
    counts: Dict[str, int] = {}
    for op in profile.ops:
        if op.processor in CPU_PROCESSORS:
            counts[op.type] = counts.get(op.type, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    text = ", ".join(f"{name} ×{n}" for name, n in ranked[:limit])
    return text + (f", and {len(ranked) - limit} more types" if len(ranked) > limit else "")
