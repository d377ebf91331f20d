"""Build the report's tables from stored results. Numbers come from embench.stats; nothing renders here."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..stats import CV_WARN, speedup, summarize, summarize_aggregate
from ..store import RunInfo, Store
from ..telemetry import summarize_telemetry, throttle_flags

KEY = ["device", "model", "precision", "runtime", "delegate", "threads"]
GROUP = ["device", "model", "precision"]
# The single-thread CPU baseline of a device × model × precision, in order of preference.
BASELINE_ORDER = [("litert", "cpu"), ("litert", "xnnpack"), ("onnxruntime", "CPUExecutionProvider")]
STATUS_ORDER = ["ok", "fallback", "unsupported", "failed", "crashed", "timeout"]


@dataclass
class ReportData:
    """Everything a renderer needs, already computed."""

    run: RunInfo
    results: pd.DataFrame  # one row per job, with summary statistics and speedup
    samples: dict[str, list[int]]  # job_id -> raw latency samples (ns)
    compatibility: pd.DataFrame  # GROUP rows × configuration columns -> status
    environment: dict[str, Any]


def config_label(row: Any) -> str:
    return f"{row['runtime']}:{row['delegate']} t{row['threads']}"


def build_report_data(store: Store, run_id: str | None) -> ReportData:
    run = store.find_run(run_id)
    rows = store.results(run.run_id)
    samples = store.samples(run.run_id)
    records = []
    environment: dict[str, Any] = {}
    for row in rows:
        result = json.loads(row["result_json"])
        facts = result.get("device_facts") or {}
        if facts and row["device"] not in environment:
            environment[row["device"]] = facts
        summary = summarize(samples.get(row["job_id"], []))
        aggregate = result.get("aggregate") or {}
        if summary is None and aggregate:
            summary = summarize_aggregate(aggregate)  # benchmark_model: no per-run samples
        stats = summary.as_dict() if summary else {}
        tel = summarize_telemetry(result, summary.n if summary else 0) if row["status"] in ("ok", "fallback") else {}
        records.append(
            {
                **{k: row[k] for k in KEY},
                "job_id": row["job_id"],
                "status": row["status"],
                "message": row["message"] or "",
                "runtime_version": row["runtime_version"],
                "n": stats.get("n", 0),
                "median_ms": stats.get("median", math.nan),
                "ci_low_ms": stats.get("ci_low", math.nan),
                "ci_high_ms": stats.get("ci_high", math.nan),
                "p90_ms": stats.get("p90", math.nan),
                "p95_ms": stats.get("p95", math.nan),
                "p99_ms": stats.get("p99", math.nan),
                "min_ms": stats.get("min", math.nan),
                "mean_ms": stats.get("mean", math.nan),
                "sd_ms": stats.get("sd", math.nan),
                "cv_pct": 100 * stats["cv"] if "cv" in stats else math.nan,
                "init_ms": row["init_ms"],
                "first_inference_ms": row["first_inference_ms"],
                "peak_rss_mb": row["peak_rss_kb"] / 1024 if row["peak_rss_kb"] else math.nan,
                "delegated": _delegated(result),
                "energy_mj": 1e3 * tel.get("joules_per_inference", math.nan),
                "energy_basis": tel.get("per_inference_basis", ""),
                "avg_w": tel.get("watts", math.nan),
                "idle_w": tel.get("idle_watts", math.nan),
                "temp_max_c": max((v for k, v in tel.items() if k.endswith("_max_c")), default=math.nan),
                "energy_note": tel.get("energy_note", ""),
                "power_source": tel.get("power_source", ""),
                "throttled": "; ".join(throttle_flags(result, samples.get(row["job_id"], []))),
                "basis": _basis(aggregate) if aggregate and not samples.get(row["job_id"]) else "",
            }
        )
    frame = pd.DataFrame.from_records(records, columns=_columns())
    if not frame.empty:
        frame = frame.sort_values(KEY, kind="stable").reset_index(drop=True)
        _add_speedups(frame)
        frame["notes"] = frame.apply(_notes, axis=1)
    else:
        frame["speedup"] = pd.Series(dtype=float)
        frame["baseline"] = pd.Series(dtype=str)
        frame["notes"] = pd.Series(dtype=str)
    return ReportData(run, frame, samples, _compatibility(frame), environment)


def _columns() -> list[str]:
    return [*KEY, "job_id", "status", "message", "runtime_version", "n", "median_ms", "ci_low_ms", "ci_high_ms",
            "p90_ms", "p95_ms", "p99_ms", "min_ms", "mean_ms", "sd_ms", "cv_pct", "init_ms",
            "first_inference_ms", "peak_rss_mb", "delegated", "energy_mj", "energy_basis", "avg_w", "idle_w",
            "temp_max_c", "energy_note", "power_source", "throttled", "basis"]  # fmt: skip


def _delegated(result: dict[str, Any]) -> str:
    d = result.get("delegation") or {}
    if d.get("delegated_nodes") is not None and d.get("total_nodes"):
        return f"{d['delegated_nodes']}/{d['total_nodes']}"
    return str(d.get("actual") or "")


def _add_speedups(frame: pd.DataFrame) -> None:
    frame["speedup"] = math.nan
    frame["baseline"] = ""
    measured = frame["status"].isin(["ok", "fallback"]) & frame["median_ms"].notna()
    for _, idx in frame.groupby(GROUP, sort=False).groups.items():
        group = frame.loc[idx]
        base = None
        for runtime, delegate in BASELINE_ORDER:
            hit = group[
                (group.runtime == runtime) & (group.delegate == delegate) & (group.threads == 1) & measured[idx]
            ]
            if not hit.empty:
                base = hit.iloc[0]
                break
        if base is None:
            continue
        label = f"{base['runtime']}:{base['delegate']} t1"
        for i in idx:
            if measured[i]:
                frame.at[i, "speedup"] = speedup(float(base["median_ms"]), float(frame.at[i, "median_ms"]))
                frame.at[i, "baseline"] = label


def _basis(aggregate: dict[str, Any]) -> str:
    where = "median printed by benchmark_model" if "median" in aggregate else "median column holds the MEAN"
    return f"benchmark_model aggregate of {int(aggregate.get('count', 0))} runs ({where}; no per-run samples, no CI)"


def _notes(row: pd.Series) -> str:
    notes = [f"THROTTLED: {row['throttled']}"] if row["throttled"] else []
    if row["basis"]:
        notes.append(str(row["basis"]))
    if row["status"] not in ("ok",) and row["message"]:
        notes.append(str(row["message"]))
    if isinstance(row["cv_pct"], float) and row["cv_pct"] >= 100 * CV_WARN:
        notes.append(f"CV {row['cv_pct']:.0f}% ≥ {100 * CV_WARN:.0f}%: unstable; raise min_seconds or add cooldown")
    return "; ".join(notes)


def _compatibility(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return pd.DataFrame()
    marked = frame["status"].where(frame["throttled"] == "", frame["status"] + " (throttled)")
    table = frame.assign(config=frame.apply(config_label, axis=1), status=marked)
    wide = table.pivot_table(index=GROUP, columns="config", values="status", aggfunc="first", sort=False)
    return wide.fillna("—")
