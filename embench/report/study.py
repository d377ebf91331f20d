"""The EmBench-style study of a run: which architecture suits which processor, what speedup each
delegate and thread count gives it (with intervals), and where each architecture's time goes on each
device (op classes from the per-op profiles). Computed here from ReportData; render.py and pages.py
write it (study.md, study.html). Pure: no I/O."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from embench_agent.protocol import MEASURED

from ..opstats import CONFIG, by_class, class_scaling, dominant
from ..stats import median_ci
from .tables import GROUP, KEY, ReportData, config_label

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Study:
    headline: pd.DataFrame  # per device × model: the fastest configuration, its speedup [CI], the dominant op class
    compatibility: pd.DataFrame  # model × runtime:delegate: statuses over devices, precisions and threads
    speedups: pd.DataFrame  # every measured job against its baseline: speedup with a ≥95% interval
    classes: pd.DataFrame  # per configuration × op class: ops, on the CPU, ms, share (opstats.by_class)
    dominant: pd.DataFrame  # per configuration: the op classes with the largest shares
    scaling: pd.DataFrame  # per op class: ms in each delegate × threads against the CPU run
    left_on_cpu: pd.DataFrame  # per configuration with a delegate: the ops it left on the CPU, by class and type


def build_study(data: ReportData) -> Study:
    frame = data.results
    classes = by_class(data.ops)
    top = dominant(classes)
    speedups = _speedups(frame, data)
    return Study(_headline(frame, speedups, top, data.ops), _compatibility(frame), speedups, classes, top,
                 class_scaling(classes), _left_on_cpu(data.ops))  # fmt: skip


def _left_on_cpu(ops: pd.DataFrame) -> pd.DataFrame:
    """Configurations that asked for a delegate or provider and left ops on the CPU: how many, by
    class, and the op types (most frequent first)."""
    cols = [*CONFIG, "ops on the CPU", "of", "classes", "op types"]
    if ops.empty:
        return pd.DataFrame(columns=cols)
    asked = ops[~ops["delegate"].isin(["cpu", "CPUExecutionProvider"])]
    rows = []
    for key, group in asked.groupby(CONFIG, sort=True):
        left = group[group["on_cpu"]]
        if left.empty:
            continue
        classes = left["op_class"].value_counts()
        types = left["type"].value_counts()
        shown = ", ".join(f"{t} ×{n}" for t, n in types.head(6).items()) + (
            f", and {len(types) - 6} more" if len(types) > 6 else "")  # fmt: skip
        rows.append((*key, len(left), len(group), ", ".join(f"{c} ×{n}" for c, n in classes.items()), shown))
    return pd.DataFrame.from_records(rows, columns=cols)


def _side_intervals(job_ids: pd.Series, data: ReportData) -> dict[str, tuple[float, float]]:
    """Each job's median interval (ms) at √CONFIDENCE: two such intervals bound a ratio at CONFIDENCE."""
    side = math.sqrt(CONFIDENCE)
    out = {}
    for job_id in job_ids:
        samples = data.samples.get(job_id) or ()
        if len(samples):
            low, high = median_ci(np.sort(np.asarray(samples, dtype=np.float64)), side)
            out[job_id] = (low / 1e6, high / 1e6)
    return out


def _speedups(frame: pd.DataFrame, data: ReportData) -> pd.DataFrame:
    """Speedup over the report's baseline (the same device, model and precision) with an interval of
    coverage ≥ 95%: the ratio of the two medians' far interval ends (stats.speedup_ci)."""
    cols = [*KEY, "job_id", "config", "median_ms", "baseline", "speedup", "ci_low", "ci_high"]
    rows = frame[frame["status"].isin(MEASURED) & frame["speedup"].notna()]
    if rows.empty:
        return pd.DataFrame(columns=cols)
    labels = frame["runtime"] + ":" + frame["delegate"] + " t" + frame["threads"].astype(str)
    base_ids = {(*g, label): job for *g, label, job in zip(*(frame[c] for c in GROUP), labels, frame["job_id"])}
    intervals = _side_intervals(frame.loc[rows.index, "job_id"], data)
    needed = [base_ids.get((*g, b)) for *g, b in zip(*(rows[c] for c in GROUP), rows["baseline"])]
    intervals.update(_side_intervals(pd.Series([j for j in needed if j and j not in intervals]), data))
    out = rows[[*KEY, "job_id", "median_ms", "baseline", "speedup"]].copy()
    out.insert(len(KEY), "config", labels.loc[rows.index])
    lows, highs = [], []
    for job_id, base_id in zip(rows["job_id"], needed):
        new, base = intervals.get(job_id), intervals.get(base_id) if base_id else None
        if new is None or base is None or any(math.isnan(v) for v in (*new, *base)) or new[0] <= 0:
            lows.append(math.nan)
            highs.append(math.nan)
        else:
            lows.append(base[0] / new[1])
            highs.append(base[1] / new[0])
    out["ci_low"], out["ci_high"] = lows, highs
    return out.reset_index(drop=True)[cols]


def _compatibility(frame: pd.DataFrame) -> pd.DataFrame:
    """Per architecture and runtime:delegate: how its jobs ended, over every device, precision and
    thread count ("4 ok · 2 fallback")."""
    if frame.empty:
        return pd.DataFrame()
    table = frame.assign(where=frame["runtime"] + ":" + frame["delegate"])
    counts = table.groupby(["model", "where", "status"], sort=True).size()
    cells: dict[tuple[str, str], str] = {}
    for (model, where), group in counts.groupby(level=[0, 1], sort=True):
        parts = [f"{n} {status}" for (_, _, status), n in group.items()]
        cells[(str(model), str(where))] = " · ".join(parts)
    wide = pd.Series(cells).unstack(fill_value="—")
    wide.index.name = "model"
    return wide


def _headline(frame: pd.DataFrame, speedups: pd.DataFrame, top: pd.DataFrame, ops: pd.DataFrame) -> pd.DataFrame:
    """Per device × model: the fastest measured configuration, its median, its speedup over the
    baseline [interval], which delegates ran the whole graph, how many jobs ran (ok or fallback) of
    those recorded, and the op class that dominates its time (from the fastest profiled
    configuration of that device × model)."""
    cols = ["device", "model", "fastest", "median_ms", "speedup", "ci_low", "ci_high", "baseline", "full_delegates",
            "measured", "dominant_op_class", "profiled_config"]  # fmt: skip
    rows = []
    for (device, model), group in frame.groupby(["device", "model"], sort=True):
        measured = group[group["status"].isin(MEASURED) & group["median_ms"].notna()]
        fastest = measured.sort_values("median_ms", kind="stable").iloc[0] if not measured.empty else None
        full = sorted({f"{r.runtime}:{r.delegate}" for r in group.itertuples()
                       if r.status == "ok" and r.delegate not in ("cpu", "CPUExecutionProvider")})  # fmt: skip
        speed = speedups[speedups["job_id"] == fastest["job_id"]] if fastest is not None else speedups.iloc[:0]
        dom, profiled = _dominant_of(top, device, model, measured, ops)
        rows.append((
            device, model,
            f"{fastest['precision']} {config_label(fastest)}" if fastest is not None else "—",
            fastest["median_ms"] if fastest is not None else math.nan,
            speed["speedup"].iloc[0] if not speed.empty else math.nan,
            speed["ci_low"].iloc[0] if not speed.empty else math.nan,
            speed["ci_high"].iloc[0] if not speed.empty else math.nan,
            speed["baseline"].iloc[0] if not speed.empty else "",
            ", ".join(full) or "—", f"{len(measured)}/{len(group)}", dom, profiled,
        ))  # fmt: skip
    return pd.DataFrame.from_records(rows, columns=cols)


def _dominant_of(top: pd.DataFrame, device: str, model: str, measured: pd.DataFrame,
                 ops: pd.DataFrame) -> tuple[str, str]:  # fmt: skip
    mine = top[(top["device"] == device) & (top["model"] == model)]
    if mine.empty:
        placed = not ops.empty and bool(((ops["device"] == device) & (ops["model"] == model)).any())
        return ("— (placement only: no runtime here timed its ops)" if placed
                else "— (no per-op records: run.op_profiling)"), ""  # fmt: skip
    speed = measured.set_index(KEY)["median_ms"] if not measured.empty else pd.Series(dtype=float)
    mine = mine.assign(_ms=[speed.get(tuple(r), math.inf) for r in mine[KEY].itertuples(index=False)])
    best = mine.sort_values("_ms", kind="stable").iloc[0]
    text = f"{best['first']} {best['first_share']:.0%}"
    if isinstance(best["second"], str):
        text += f", {best['second']} {best['second_share']:.0%}"
    return text, f"{best['precision']} {config_label(best)}"
