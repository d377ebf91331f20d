"""The study (study.py) as tables a reader can quote: Markdown (study.md) and the cells of study.html."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from ..text import md_text
from .render import _md_table, run_facts
from .study import CONFIDENCE, Study
from .tables import ReportData

HEADLINE_NOTE = (
    "Per device and architecture: the fastest measured configuration (any precision), its median latency, its "
    f"speedup over the single-thread CPU baseline of the same precision with an interval of coverage ≥ {CONFIDENCE:.0%} (each "
    f"median's order-statistic interval at √{CONFIDENCE:.2f}; the ratio of their far ends), the delegates that ran the whole "
    "graph in some job, how many jobs were measured of those recorded, and the op classes that take most of the "
    "time in the fastest configuration with a per-op profile (run.op_profiling; ONNX Runtime and benchmark_model "
    "time each op, LiteRT's Python API gives placement only)."
)
CLASS_NOTE = (
    "Op classes: conv (standard and 1×1 convolutions, XNNPACK's GEMM/IGEMM convolutions), depthwise, fully-connected "
    "(MatMul, Gemm, FULLY_CONNECTED), activation, elementwise, pooling (and means), normalization, quantize "
    "((de)quantize, XNNPACK's Convert), reshape/transpose/other, and delegate partition (a delegate's whole "
    "subgraph as one row, where the tool times it as one). Share: of the configuration's profiled op time."
)
SCALING_NOTE = (
    "How each op class scales: its time in each delegate × threads configuration against the same class in the "
    "CPU run with the fewest threads (both from per-op profiles)."
)


def _num(value: Any, fmt: str) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, fmt)


def _speedup_cell(speedup: float, low: float, high: float) -> str:
    if speedup is None or math.isnan(speedup):
        return "—"
    if math.isnan(low) or math.isnan(high):
        return f"{speedup:.2f}×"
    return f"{speedup:.2f}× [{low:.2f}, {high:.2f}]"


def headline_display(study: Study) -> pd.DataFrame:
    h = study.headline
    return pd.DataFrame({
        "device": h["device"], "model": h["model"], "fastest": h["fastest"],
        "median ms": [_num(v, ".3g") for v in h["median_ms"]],
        "speedup × [≥95% interval]": [_speedup_cell(*v) for v in zip(h["speedup"], h["ci_low"], h["ci_high"])],
        "baseline": h["baseline"].replace("", "—"), "whole graph on": h["full_delegates"],
        "measured/recorded": h["measured"], "time goes to": h["dominant_op_class"],
        "profiled in": h["profiled_config"].replace("", "—"),
    })  # fmt: skip


def speedup_display(study: Study) -> pd.DataFrame:
    s = study.speedups
    if s.empty:
        return pd.DataFrame()
    return pd.DataFrame({
        "device": s["device"], "model": s["model"], "precision": s["precision"], "configuration": s["config"],
        "median ms": [_num(v, ".3g") for v in s["median_ms"]],
        "speedup × [≥95% interval]": [_speedup_cell(*v) for v in zip(s["speedup"], s["ci_low"], s["ci_high"])],
        "baseline": s["baseline"],
    })  # fmt: skip


def classes_display(study: Study) -> pd.DataFrame:
    """Configurations with per-op timings: each class's ms per inference and share."""
    c = study.classes.dropna(subset=["ms"]) if not study.classes.empty else study.classes
    if c.empty:
        return pd.DataFrame()
    wide = c.assign(cell=[f"{_num(ms, '.3g')} ms ({_num(share, '.0%')})" for ms, share in zip(c["ms"], c["share"])])
    table = wide.pivot_table(index=["device", "model", "precision", "runtime", "delegate", "threads"],
                             columns="op_class", values="cell", aggfunc="first", sort=True)  # fmt: skip
    return table.fillna("—").reset_index()


def placement_display(study: Study) -> pd.DataFrame:
    """Configurations that left ops on the CPU: how many of how many, which classes and op types."""
    return study.left_on_cpu


def scaling_display(study: Study) -> pd.DataFrame:
    s = study.scaling
    if s.empty:
        return pd.DataFrame()
    out = s.assign(configuration=s["delegate"] + " ×" + s["threads"].astype(str))
    out["cell"] = [f"{_num(ms, '.3g')} ms ({_num(x, '.2f')}×)" for ms, x in zip(out["ms"], out["speedup"])]
    table = out.pivot_table(index=["device", "model", "precision", "runtime", "op_class"], columns="configuration",
                            values="cell", aggfunc="first", sort=True)  # fmt: skip
    return table.fillna("—").reset_index()


def study_markdown(data: ReportData, study: Study) -> str:
    parts = ["# embench study\n", *(f"- **{k}**: {md_text(v)}" for k, v in run_facts(data)), "",
             "## Headline\n", _md_table(headline_display(study)), f"\n{HEADLINE_NOTE}\n"]  # fmt: skip
    if not study.compatibility.empty:
        parts += ["## Compatibility: architecture × runtime:delegate\n", _md_table(study.compatibility, index=True),
                  "\nEach cell counts the jobs by status over every device, precision and thread count; — : not swept.\n"]  # fmt: skip
    placement = placement_display(study)
    if not placement.empty:
        parts += ["## Ops left on the CPU by a delegate\n", _md_table(placement), ""]
    classes = classes_display(study)
    if not classes.empty:
        parts += ["## Where the time goes: op classes per configuration\n", _md_table(classes), f"\n{CLASS_NOTE}\n"]
    scaling = scaling_display(study)
    if not scaling.empty:
        parts += ["## How each op class scales\n", _md_table(scaling), f"\n{SCALING_NOTE}\n"]
    speedups = speedup_display(study)
    if not speedups.empty:
        parts += ["## Speedup of every configuration\n", _md_table(speedups), ""]
    return "\n".join(parts)
