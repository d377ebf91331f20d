"""Build the report's tables from stored results. Numbers come from embench.stats; nothing renders here."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from embench_agent.protocol import MEASURED, Aggregate, DeviceFacts, Result

from ..runtimes import baseline_order
from ..stats import CV_WARN, Summary, speedup, summarize, summarize_aggregate
from ..store import RunInfo, Store, StoredResult
from ..telemetry import TelemetrySummary, summarize_telemetry, throttle_flags

KEY = ["device", "model", "precision", "runtime", "delegate", "threads"]
GROUP = ["device", "model", "precision"]


@dataclass
class ReportData:
    """Everything a renderer needs, already computed."""

    run: RunInfo
    results: pd.DataFrame  # one row per job, with summary statistics and speedup
    samples: Mapping[str, Sequence[int]]  # job_id -> raw latency samples (ns), as the store read them
    compatibility: pd.DataFrame  # GROUP rows × configuration columns -> status
    environment: dict[str, DeviceFacts]


def config_label(row: Any) -> str:
    return f"{row['runtime']}:{row['delegate']} t{row['threads']}"


def _latency(result: Result) -> Summary | None:
    """From the raw samples; from the tool's aggregate where there are none (benchmark_model)."""
    summary = summarize(result.samples_ns)
    if summary is None and result.aggregate is not None:
        summary = summarize_aggregate(result.aggregate)
    return summary


def _stats_columns(summary: Summary | None) -> dict[str, float]:
    if summary is None:
        return {"n": 0, **{c: math.nan for c in ("median_ms", "ci_low_ms", "ci_high_ms", "p90_ms", "p95_ms", "p99_ms",
                                                 "min_ms", "mean_ms", "sd_ms", "cv_pct")}}  # fmt: skip
    return {
        "n": summary.n, "median_ms": summary.median, "ci_low_ms": summary.ci_low, "ci_high_ms": summary.ci_high,
        "p90_ms": summary.p90, "p95_ms": summary.p95, "p99_ms": summary.p99, "min_ms": summary.min,
        "mean_ms": summary.mean, "sd_ms": summary.sd, "cv_pct": 100 * summary.cv,
    }  # fmt: skip


def _telemetry_columns(tel: TelemetrySummary) -> dict[str, Any]:
    return {
        "energy_mj": 1e3 * tel.joules_per_inference, "energy_basis": tel.per_inference_basis,
        "avg_w": tel.watts, "idle_w": tel.idle_watts, "temp_max_c": tel.temp_max_c,
        "energy_note": tel.energy_note, "power_source": tel.power_source,
    }  # fmt: skip


def _record(stored: StoredResult) -> dict[str, Any]:
    job, result = stored.job, stored.result
    summary = _latency(result)
    tel = (
        summarize_telemetry(result, summary.n if summary else 0)
        if result.measured
        else TelemetrySummary(energy_note="")
    )
    return {
        "device": job.device, "model": job.model.name, "precision": job.model.precision, "runtime": job.runtime,
        "delegate": job.delegate.name, "threads": job.threads, "job_id": job.job_id, "status": result.status,
        "message": result.message or "", "runtime_version": result.runtime.version if result.runtime else None,
        **_stats_columns(summary),
        "init_ms": result.init_ms, "first_inference_ms": result.first_inference_ms,
        "peak_rss_mb": result.peak_rss_kb / 1024 if result.peak_rss_kb else math.nan,
        "delegated": _delegated(result),
        **_telemetry_columns(tel),
        "throttled": "; ".join(throttle_flags(result, result.samples_ns)),
        "basis": _basis(result.aggregate) if result.aggregate is not None and not result.samples_ns else "",
    }  # fmt: skip


def build_report_data(store: Store, run_id: str | None) -> ReportData:
    run = store.find_run(run_id)
    stored = store.results(run.run_id)
    environment: dict[str, DeviceFacts] = {}
    for item in stored:
        if item.result.device_facts != DeviceFacts():
            environment.setdefault(item.job.device, item.result.device_facts)
    frame = pd.DataFrame.from_records([_record(item) for item in stored], columns=_columns())
    if not frame.empty:
        frame = frame.sort_values(KEY, kind="stable").reset_index(drop=True)
        _add_speedups(frame)
        frame["notes"] = frame.apply(_notes, axis=1)
    else:
        frame["speedup"] = pd.Series(dtype=float)
        frame["baseline"] = pd.Series(dtype=str)
        frame["notes"] = pd.Series(dtype=str)
    samples = {item.job.job_id: item.result.samples_ns for item in stored}  # no copy: a lab run holds millions
    return ReportData(run, frame, samples, _compatibility(frame), environment)


def _columns() -> list[str]:
    return [*KEY, "job_id", "status", "message", "runtime_version", "n", "median_ms", "ci_low_ms", "ci_high_ms",
            "p90_ms", "p95_ms", "p99_ms", "min_ms", "mean_ms", "sd_ms", "cv_pct", "init_ms",
            "first_inference_ms", "peak_rss_mb", "delegated", "energy_mj", "energy_basis", "avg_w", "idle_w",
            "temp_max_c", "energy_note", "power_source", "throttled", "basis"]  # fmt: skip


def _delegated(result: Result) -> str:
    d = result.delegation
    if d is None:
        return ""
    if d.delegated_nodes is not None and d.total_nodes:
        return f"{d.delegated_nodes}/{d.total_nodes}"
    return d.actual or ""


def _add_speedups(frame: pd.DataFrame) -> None:
    frame["speedup"] = math.nan
    frame["baseline"] = ""
    measured = frame["status"].isin(MEASURED) & frame["median_ms"].notna()
    for _, idx in frame.groupby(GROUP, sort=False).groups.items():
        group = frame.loc[idx]
        base = None
        for runtime, delegate in baseline_order():
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


def _basis(aggregate: Aggregate) -> str:
    where = "median printed by benchmark_model" if aggregate.median is not None else "median column holds the MEAN"
    return f"benchmark_model aggregate of {int(aggregate.count)} runs ({where}; no per-run samples, no CI)"


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
