"""The EmBench-style study of a run: which architecture suits which processor, what speedup each
delegate and thread count gives it (with intervals), and where each architecture's time goes on each
device (op classes from the per-op profiles). Computed here from ReportData; render.py and pages.py
write it (study.md, study.html). Pure: no I/O."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from embench_agent.protocol import CPU_PROCESSORS, MEASURED

from ..opstats import CONFIG, by_class, class_scaling, dominant
from ..stats import SPEEDUP_CONFIDENCE, SPEEDUP_SIDE, median_ci, speedup_interval
from .tables import GROUP, KEY, ReportData

CONFIDENCE = SPEEDUP_CONFIDENCE


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
    asked = ops[~ops["delegate"].isin(CPU_PROCESSORS)]
    left = asked[asked["on_cpu"]]
    if left.empty:
        return pd.DataFrame(columns=cols)
    sizes = asked.groupby(CONFIG).size().rename("of")
    counts = left.groupby(CONFIG).size().rename("ops on the CPU")
    classes = _counted(left, "op_class", 99).rename("classes")
    types = _counted(left, "type", 6).rename("op types")
    out = pd.concat([counts, sizes, classes, types], axis=1, join="inner").reset_index()
    return out[cols]


def _counted(rows: pd.DataFrame, column: str, limit: int) -> pd.Series:
    """Per configuration: "A ×3, B ×1" of a column's values, most frequent first (at most `limit`)."""
    counts = rows.groupby([*CONFIG, column]).size().rename("n").reset_index()
    counts = counts.sort_values([*CONFIG, "n", column], ascending=[True] * len(CONFIG) + [False, True], kind="stable")
    counts["_rank"] = counts.groupby(CONFIG).cumcount()
    kinds = counts.groupby(CONFIG)[column].size()
    shown = counts[counts["_rank"] < limit]
    text = (
        (shown[column].astype(str) + " ×" + shown["n"].astype(str)).groupby([shown[c] for c in CONFIG]).agg(", ".join)
    )
    more = (kinds - limit).clip(lower=0)
    return text + more.map(lambda m: f", and {m} more" if m else "")


def _side_intervals(job_ids: pd.Series, data: ReportData) -> dict[str, tuple[float, float]]:
    """Each job's median interval (ns) at SPEEDUP_SIDE, computed once per job (a baseline serves many)."""
    out = {}
    for job_id in job_ids:
        samples = data.samples.get(job_id) or ()
        if len(samples):
            out[job_id] = median_ci(np.sort(np.asarray(samples, dtype=np.float64)), SPEEDUP_SIDE)
    return out


def _speedups(frame: pd.DataFrame, data: ReportData) -> pd.DataFrame:
    """Speedup over the report's baseline (the same device, model and precision) with an interval of
    coverage ≥ 95% (stats.speedup_interval)."""
    cols = [*KEY, "job_id", "config", "median_ms", "baseline", "speedup", "ci_low", "ci_high"]
    rows = frame[frame["status"].isin(MEASURED) & frame["speedup"].notna()]
    if rows.empty:
        return pd.DataFrame(columns=cols)
    labels = _labels(frame)
    base_ids = {(*g, label): job for *g, label, job in zip(*(frame[c] for c in GROUP), labels, frame["job_id"])}
    intervals = _side_intervals(frame.loc[rows.index, "job_id"], data)
    needed = [base_ids.get((*g, b)) for *g, b in zip(*(rows[c] for c in GROUP), rows["baseline"])]
    intervals.update(_side_intervals(pd.Series([j for j in needed if j and j not in intervals]), data))
    out = rows[[*KEY, "job_id", "median_ms", "baseline", "speedup"]].copy()
    out.insert(len(KEY), "config", labels.loc[rows.index])
    unknown = (math.nan, math.nan)
    bounds = [speedup_interval(intervals.get(base_id, unknown) if base_id else unknown, intervals.get(job_id, unknown))
              for job_id, base_id in zip(rows["job_id"], needed)]  # fmt: skip
    out["ci_low"], out["ci_high"] = [b[0] for b in bounds], [b[1] for b in bounds]
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
    configuration of that device × model). Merges, not a loop: a lab has a thousand of these."""
    cols = ["device", "model", "fastest", "median_ms", "speedup", "ci_low", "ci_high", "baseline", "full_delegates",
            "measured", "dominant_op_class", "profiled_config"]  # fmt: skip
    if frame.empty:
        return pd.DataFrame(columns=cols)
    pair = ["device", "model"]
    measured = frame[frame["status"].isin(MEASURED) & frame["median_ms"].notna()]
    out = frame.groupby(pair, sort=True).size().rename("recorded").reset_index()
    out = out.merge(measured.groupby(pair).size().rename("n_measured").reset_index(), on=pair, how="left")
    fastest = measured.sort_values("median_ms", kind="stable").drop_duplicates(pair)
    fastest = fastest.assign(fastest=fastest["precision"] + " " + _labels(fastest))[[*pair, "job_id", "fastest",
                                                                                      "median_ms"]]  # fmt: skip
    out = out.merge(fastest, on=pair, how="left")
    out = out.merge(speedups[["job_id", "speedup", "ci_low", "ci_high", "baseline"]], on="job_id", how="left")
    whole = frame[(frame["status"] == "ok") & ~frame["delegate"].isin(CPU_PROCESSORS)]
    full = (whole.assign(where=whole["runtime"] + ":" + whole["delegate"]).groupby(pair)["where"]
            .agg(lambda w: ", ".join(sorted(set(w)))).rename("full_delegates").reset_index())  # fmt: skip
    out = out.merge(full, on=pair, how="left")
    out = out.merge(_dominant(top, measured, ops), on=pair, how="left")
    out["fastest"] = out["fastest"].fillna("—")
    out["baseline"] = out["baseline"].fillna("")
    out["full_delegates"] = out["full_delegates"].fillna("—")
    out["measured"] = out["n_measured"].fillna(0).astype(int).astype(str) + "/" + out["recorded"].astype(str)
    pairs = ops[pair].drop_duplicates() if not ops.empty else pd.DataFrame(columns=pair)
    placed = set(zip(pairs["device"], pairs["model"]))
    missing = out["dominant_op_class"].isna()
    out.loc[missing, "dominant_op_class"] = [
        "— (placement only: no runtime here timed its ops)" if key in placed else "— (no per-op records: run.op_profiling)"
        for key in zip(out.loc[missing, "device"], out.loc[missing, "model"])
    ]  # fmt: skip
    out["profiled_config"] = out["profiled_config"].fillna("")
    return out[cols]


def _labels(rows: pd.DataFrame) -> pd.Series:
    return rows["runtime"] + ":" + rows["delegate"] + " t" + rows["threads"].astype(str)


def _dominant(top: pd.DataFrame, measured: pd.DataFrame, ops: pd.DataFrame) -> pd.DataFrame:
    """Per device × model: the dominant classes of its fastest configuration with per-op timings."""
    cols = ["device", "model", "dominant_op_class", "profiled_config"]
    if top.empty:
        return pd.DataFrame(columns=cols)
    timed = top.merge(measured[[*KEY, "median_ms"]], on=KEY, how="left")
    timed["median_ms"] = timed["median_ms"].fillna(math.inf)
    best = timed.sort_values("median_ms", kind="stable").drop_duplicates(["device", "model"])
    text = [f"{a} {x:.0%}" + (f", {b} {y:.0%}" if isinstance(b, str) else "")
            for a, x, b, y in zip(best["first"], best["first_share"], best["second"], best["second_share"])]  # fmt: skip
    return pd.DataFrame({"device": best["device"], "model": best["model"], "dominant_op_class": text,
                         "profiled_config": best["precision"] + " " + _labels(best)})  # fmt: skip
