"""Read benchmark_model's `--enable_op_profiling=true` tables into an OpProfile.

The section "Operator-wise Profiling Info for Regular Benchmark Runs:" holds a "Run Order" table, one
row per node (or per XNNPACK operator inside a delegate), in either of the layouts TFLite's
stat_summarizer has printed: tab-separated with a `[start]` column (older builds), or space-aligned
without it (newer). Node types may hold spaces ("Convolution (NHWC, QC8) GEMM"), so a row is read from
its numbers outwards. `[avg ms]` is per call; a row's time per inference is avg × times called.

Where each row ran: a name `Delegate/...` is an operator inside the delegate (XNNPACK's per-op
profile); a node type that is a delegate's kernel (TfLiteNnapiDelegate, ...) is a whole delegate
partition; anything else is a node on TFLite's own CPU kernels. Checked against real captured
outputs (tests/fixtures/benchmark_model/README.md). Pure: no I/O."""

from __future__ import annotations

import re

from embench_agent.protocol import CPU, OpProfile, OpRecord

from .bm_parse import clean_lines

SECTION = "Operator-wise Profiling Info for Regular Benchmark Runs:"
_N = r"\d+(?:\.\d+)?"
# node type, [start] (older builds only), [first], [avg ms], [%], [cdf%], [mem KB], [times called], [Name]
_ROW = re.compile(
    rf"^(?P<type>\S.*?)\s+(?:(?P<start>{_N})\s+)??(?P<first>{_N})\s+(?P<avg>{_N})\s+(?P<pct>{_N})%\s+"
    rf"(?P<cdf>{_N})%\s+(?P<mem>-?{_N})\s+(?P<calls>\d+)\s+(?P<name>.+)$"
)
_TIMINGS = re.compile(r"^Timings \(microseconds\): count=(\d+)(.*)$")
_AVG = re.compile(r"\bavg=([\d.eE+-]+)")
# The kernel names a delegate partition's node has in the table, by embench's delegate name.
PARTITION_KERNELS = {
    "TfLiteXNNPackDelegate": "xnnpack",
    "TfLiteNnapiDelegate": "nnapi",
    "TfLiteGpuDelegateV2": "gpu",
    "TfLiteGpuDelegate": "gpu",
    "TfLiteHexagonDelegate": "hexagon",
}


def parse_op_profile(text: str, delegate: str) -> OpProfile | None:
    """The regular runs' per-op profile, or None when the output has none. `delegate` names the
    delegate (embench's name) that `Delegate/...` rows belong to."""
    lines = clean_lines(text)
    try:
        start = lines.index(SECTION)
    except ValueError:
        return None
    records: list[OpRecord] = []
    runs, mean_us = None, None
    in_run_order = False
    for line in lines[start + 1 :]:
        if line.startswith("=====") and "Run Order" in line:
            in_run_order = True
            continue
        if in_run_order:
            if not line:
                in_run_order = False
                continue
            row = _ROW.match(line)
            if row is not None:
                records.append(_record(len(records), row, delegate))
            continue
        if m := _TIMINGS.match(line):
            runs = int(m.group(1))
            avg = _AVG.search(m.group(2))
            mean_us = float(avg.group(1)) if avg else None
            break
    if not records:
        return None
    return OpProfile.of("benchmark_model", tuple(records), runs=runs,
                        profiled_ms=mean_us / 1000.0 if mean_us is not None else None)  # fmt: skip


def _record(index: int, row: re.Match[str], delegate: str) -> OpRecord:
    op_type, name = row["type"].strip(), row["name"].strip()
    calls = int(row["calls"])
    if name.startswith("Delegate/"):
        processor = delegate if delegate != CPU else "xnnpack"  # benchmark_model's default delegate
    else:
        processor = PARTITION_KERNELS.get(op_type, CPU)
    return OpRecord(index=index, name=name, type=op_type, processor=processor, ms=float(row["avg"]) * calls,
                    calls=calls)  # fmt: skip
