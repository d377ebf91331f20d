"""The report's overview: device × model grids that stay readable at any scale, computed from the
results table (one row per job). Each grid is a DataFrame, models down and devices across; nothing
renders here."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from embench_agent.protocol import MEASURED

from ..runtimes import baseline_order

CELL = ["model", "device"]


@dataclass(frozen=True)
class Grid:
    """One overview grid: `values` drive the colour, `text` is what each cell says, `title` what it is."""

    name: str
    title: str
    caption: str
    values: pd.DataFrame  # model × device, float (NaN: nothing to show)
    text: pd.DataFrame  # model × device, str
    scale: str  # "log-low-good" | "ratio" | "share"


def _measured(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["status"].isin(MEASURED) & frame["median_ms"].notna()]


def _wide(long: pd.Series, fmt: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    values = long.unstack("device")
    text = values.map(lambda v: "" if np.isnan(v) else format(v, fmt))
    return values, text


def latency_grid(frame: pd.DataFrame) -> Grid | None:
    """The fastest measured configuration's median, per device and model."""
    measured = _measured(frame)
    if measured.empty:
        return None
    values, text = _wide(measured.groupby(CELL, sort=True)["median_ms"].min(), ".3g")
    return Grid("latency", "Fastest median latency (ms)",
                "each cell: the median latency per inference of the fastest configuration measured for that device"
                " and model (any precision, runtime, delegate and thread count); colour on a log scale, green fast",
                values, text, "log-low-good")  # fmt: skip


def speedup_grid(frame: pd.DataFrame) -> Grid | None:
    """The best speedup over the single-thread CPU baseline, per device and model."""
    measured = _measured(frame)
    measured = measured[measured["speedup"].notna()]
    if measured.empty:
        return None
    values, text = _wide(measured.groupby(CELL, sort=True)["speedup"].max(), ".2f")
    return Grid("speedup", "Best speedup over the single-thread CPU baseline (×)",
                "each cell: the largest baseline median ÷ configuration median for that device and model; the baseline"
                " is the single-thread CPU run of the same device, model and precision (LiteRT cpu, else XNNPACK, else"
                " ONNX Runtime CPU); 1 = no gain",
                values, text, "ratio")  # fmt: skip


def status_grid(frame: pd.DataFrame) -> Grid | None:
    """How many of each device × model's configurations ran (ok), of how many planned and recorded."""
    if frame.empty:
        return None
    ok = frame.assign(_ok=frame["status"].eq("ok")).groupby(CELL, sort=True)["_ok"].agg(["sum", "count"])
    values = (ok["sum"] / ok["count"]).unstack("device")
    text = (ok["sum"].astype(int).astype(str) + "/" + ok["count"].astype(str)).unstack("device").fillna("")
    return Grid("status", "Configurations that ran as asked (ok / recorded)",
                "each cell: how many of the device × model's recorded configurations have status ok (the rest fell"
                " back, are unsupported, failed, crashed or timed out: the results table says which and why); empty:"
                " not in this run",
                values, text, "share")  # fmt: skip


def quantization_grid(frame: pd.DataFrame) -> Grid | None:
    """int8 against fp32 in the same configuration (runtime, delegate, threads): the median of the gains."""
    measured = _measured(frame)
    config = ["device", "model", "runtime", "delegate", "threads"]
    fp32 = measured[measured["precision"] == "fp32"].drop_duplicates(config)[[*config, "median_ms"]]
    int8 = measured[measured["precision"] == "int8"].drop_duplicates(config)[[*config, "median_ms"]]
    pairs = int8.merge(fp32, on=config, suffixes=("", "_fp32"))
    if pairs.empty:
        return None
    pairs["gain"] = pairs["median_ms_fp32"] / pairs["median_ms"]
    values, text = _wide(pairs.groupby(CELL, sort=True)["gain"].median(), ".2f")
    return Grid("quantization", "Gain from int8 over fp32 (×)",
                "each cell: fp32 median ÷ int8 median in the same runtime, delegate and thread count, the median over"
                " the configurations measured at both precisions; below 1: int8 is slower there (kernels without"
                " int8 support, quantize/dequantize around delegated ops). Fidelity of each precision: the"
                " 'Precisions against fp32' table",
                values, text, "ratio")  # fmt: skip


def delegate_grid(frame: pd.DataFrame) -> Grid | None:
    """The best accelerator delegate (anything not a CPU baseline delegate) against the best CPU run of the
    same device, model and precision; the best over precisions."""
    measured = _measured(frame)
    cpu_pairs = set(baseline_order())
    on_cpu = pd.Series([p in cpu_pairs for p in zip(measured["runtime"], measured["delegate"])], index=measured.index)
    if on_cpu.all() or not on_cpu.any():
        return None
    group = ["device", "model", "precision"]
    cpu = measured[on_cpu].groupby(group)["median_ms"].min().rename("cpu_ms")
    accel = measured[~on_cpu].groupby(group)["median_ms"].min().rename("accel_ms")
    both = pd.concat([cpu, accel], axis=1, join="inner")
    if both.empty:
        return None
    gains = (both["cpu_ms"] / both["accel_ms"]).groupby(CELL, sort=True).max()
    values, text = _wide(gains, ".2f")
    return Grid("delegate", "Gain from an accelerator delegate over the best CPU run (×)",
                "each cell: the fastest CPU run (LiteRT cpu or XNNPACK, ONNX Runtime CPU; any threads) ÷ the fastest"
                " run on any other delegate or provider (GPU, NNAPI, Hexagon, Edge TPU, …) at the same precision, the"
                " best over precisions; below 1: the accelerator is slower than the CPU there",
                values, text, "ratio")  # fmt: skip


def grids(frame: pd.DataFrame) -> list[Grid]:
    """Every overview grid this run has data for, in page order."""
    made = (latency_grid(frame), speedup_grid(frame), quantization_grid(frame), delegate_grid(frame),
            status_grid(frame))  # fmt: skip
    return [g for g in made if g is not None]


def status_counts(frame: pd.DataFrame) -> dict[str, int]:
    return {str(k): int(v) for k, v in frame["status"].value_counts().items()}
