"""Build the report's tables from stored results. Numbers come from embench.stats; nothing renders here."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from embench_agent.protocol import MEASURED, Aggregate, DeviceFacts, Job, Result

from .. import fidelity
from ..compare import CONTENTION, repetition_medians
from ..opstats import op_frame
from ..runtimes import baseline_order
from ..scores import DEFAULT_LATENCY_BUDGET_MS, accuracy_per_joule, pareto_front
from ..stats import CV_WARN, Summary, summarize, summarize_aggregate
from ..store import RunInfo, Store, StoredResult
from ..telemetry import TelemetrySummary, drift_note, summarize_telemetry, throttle_flags
from ..zoo import PRECISIONS

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
    precisions: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)  # each precision against fp32
    scores: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)  # accuracy against latency and energy
    latency_budget_ms: float = DEFAULT_LATENCY_BUDGET_MS
    ops: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)  # every profiled op (opstats.op_frame)


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
                                                 "min_ms", "mean_ms", "sd_ms", "cv_pct", "p5_ms", "p25_ms",
                                                 "p75_ms")}}  # fmt: skip
    return {
        "n": summary.n, "median_ms": summary.median, "ci_low_ms": summary.ci_low, "ci_high_ms": summary.ci_high,
        "p90_ms": summary.p90, "p95_ms": summary.p95, "p99_ms": summary.p99, "min_ms": summary.min,
        "mean_ms": summary.mean, "sd_ms": summary.sd, "cv_pct": 100 * summary.cv, "p5_ms": summary.p5,
        "p25_ms": summary.p25, "p75_ms": summary.p75,
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
        summarize_telemetry(result, _window_inferences(result, summary))
        if result.measured
        else TelemetrySummary(energy_note="")
    )
    return {
        "device": job.device, "model": job.model.name, "precision": job.model.precision, "runtime": job.runtime,
        "delegate": job.delegate.name, "threads": job.threads, "job_id": job.job_id, "status": result.status,
        "message": result.message or "", "runtime_version": result.runtime.version if result.runtime else None,
        "policy": _policy(job),
        **_stats_columns(summary),
        "init_ms": result.init_ms, "first_inference_ms": result.first_inference_ms,
        "peak_rss_mb": result.peak_rss_kb / 1024 if result.peak_rss_kb else math.nan,
        "delegated": _delegated(result),
        **_telemetry_columns(tel),
        "throttled": "; ".join(throttle_flags(result)), "drift": drift_note(result, result.samples_ns),
        "other_cpu_pct": 100 * result.other_cpu if result.other_cpu is not None else math.nan,
        **_repetition_columns(result),
        "basis": _basis(result.aggregate) if result.aggregate is not None and not result.samples_ns else "",
        **_accuracy_columns(result),
    }  # fmt: skip


def _policy(job: Job) -> str:
    """How the job was timed, in one phrase (the report's header lists each distinct one)."""
    r = job.run
    reps = f"; {r.repetitions} repetitions ({r.order}, {r.isolation})" if r.repetitions > 1 else ""
    return (f"{r.warmup_runs} warm-up runs, then ≥ {r.min_runs} runs and ≥ {r.min_seconds:g} s (≤ {r.max_seconds:g} s),"
            f" {r.idle_seconds:g} s idle before{reps}")  # fmt: skip


def _window_inferences(result: Result, summary: Summary | None) -> int:
    """The inferences inside the window the telemetry edges mark: the first repetition's, with repetitions."""
    if result.repetitions:
        return result.repetitions[0].samples
    return summary.n if summary else 0


def _repetition_columns(result: Result) -> dict[str, Any]:
    """Between-repetition spread (the CV of the repetition medians) beside the within (median CV of each)."""
    medians = repetition_medians(result) if result.measured else []
    if len(medians) < 2:
        return {"repetitions": len(medians), "between_cv_pct": math.nan, "within_cv_pct": math.nan}
    segments, start = [], 0
    for rep in result.repetitions:
        segments.append(np.asarray(result.samples_ns[start : start + rep.samples], np.float64))
        start += rep.samples
    within = [float(np.std(x, ddof=1) / np.mean(x)) for x in segments if len(x) > 1]
    return {"repetitions": len(medians), "between_cv_pct": 100 * float(np.std(medians, ddof=1) / np.mean(medians)),
            "within_cv_pct": 100 * float(np.median(within)) if within else math.nan}  # fmt: skip


def _accuracy_columns(result: Result) -> dict[str, Any]:
    acc = fidelity.accuracy(result.accuracy) if result.accuracy is not None and result.measured else None
    if acc is None:
        note = result.accuracy.error if result.accuracy is not None and result.accuracy.error else ""
        return {"acc_n": 0, "acc_top1": math.nan, "acc_ci_low": math.nan, "acc_ci_high": math.nan,
                "acc_top5": math.nan, "acc_note": note, "acc_data": ""}  # fmt: skip
    data = (result.accuracy.eval_sha256 or "")[:12] if result.accuracy is not None else ""
    return {"acc_n": acc.samples, "acc_top1": acc.top1, "acc_ci_low": acc.ci_low, "acc_ci_high": acc.ci_high,
            "acc_top5": math.nan if acc.top5 is None else acc.top5, "acc_note": "", "acc_data": data}  # fmt: skip


def build_report_data(
    store: Store, run_id: str | None, latency_budget_ms: float = DEFAULT_LATENCY_BUDGET_MS
) -> ReportData:
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
        _add_fidelity(frame, {item.job.job_id: item for item in stored})
        frame["notes"] = frame.apply(_notes, axis=1)
    else:
        for col, dtype in (("speedup", float), ("baseline", str), ("notes", str), *FIDELITY_COLUMNS):
            frame[col] = pd.Series(dtype=dtype)
    samples = {item.job.job_id: item.result.samples_ns for item in stored}  # no copy: a lab run holds millions
    return ReportData(run, frame, samples, _compatibility(frame), environment, precision_table(frame),
                      score_table(frame, latency_budget_ms), latency_budget_ms, op_frame(stored))  # fmt: skip


def _columns() -> list[str]:
    return [*KEY, "job_id", "status", "message", "runtime_version", "policy", "n", "median_ms", "ci_low_ms", "ci_high_ms",
            "p90_ms", "p95_ms", "p99_ms", "min_ms", "mean_ms", "sd_ms", "cv_pct", "p5_ms", "p25_ms", "p75_ms", "init_ms",
            "first_inference_ms", "peak_rss_mb", "delegated", "energy_mj", "energy_basis", "avg_w", "idle_w",
            "temp_max_c", "energy_note", "power_source", "throttled", "drift", "other_cpu_pct", "repetitions", "between_cv_pct",
            "within_cv_pct", "basis", "acc_n", "acc_top1", "acc_ci_low",
            "acc_ci_high", "acc_top5", "acc_note", "acc_data"]  # fmt: skip


FIDELITY_COLUMNS = (
    ("fid_reference", str), ("fid_cosine", float), ("fid_cosine_mean", float), ("fid_snr_db", float),
    ("fid_max_abs", float), ("fid_top1", float), ("fid_top5", float), ("fid_low", bool), ("fid_note", str),
)  # fmt: skip


def _fidelity_reference(frame: pd.DataFrame, by_id: Mapping[str, StoredResult], device: str, model: str) -> Any:
    """The row whose outputs are the reference for this device and model: fp32 on a CPU baseline
    (in baseline_order), fewest threads, with outputs kept; None when there is none."""
    rows = frame[(frame.device == device) & (frame.model == model) & (frame.precision == "fp32")
                 & frame.status.isin(MEASURED)]  # fmt: skip
    for runtime_name, delegate in baseline_order():
        hit = rows[(rows.runtime == runtime_name) & (rows.delegate == delegate)].sort_values("threads")
        for _, row in hit.iterrows():
            out = by_id[row["job_id"]].result.outputs
            if out is not None and out.error is None and out.tensors:
                return row
    return None


def _add_fidelity(frame: pd.DataFrame, by_id: Mapping[str, StoredResult]) -> None:
    """Each measured job's outputs against its reference's (fidelity.py); below the job's thresholds → fid_low."""
    for col, dtype in FIDELITY_COLUMNS:
        frame[col] = pd.Series([False if dtype is bool else ("" if dtype is str else math.nan)] * len(frame),
                               dtype=object if dtype is str else dtype)  # fmt: skip
    references: dict[tuple[str, str], Any] = {}
    for i, job_id in zip(frame.index, frame["job_id"]):
        stored = by_id[job_id]
        out, checks = stored.result.outputs, stored.job.checks
        if not stored.result.measured or out is None:
            continue
        row = frame.loc[i]
        if out.error:
            frame.at[i, "fid_note"] = f"no outputs kept: {out.error}"
            continue
        device = checks.reference_device or row["device"]
        key = (device, row["model"])
        if key not in references:
            references[key] = _fidelity_reference(frame, by_id, device, row["model"])
        ref = references[key]
        if ref is None:
            frame.at[i, "fid_note"] = f"no fp32 CPU run of {row['model']} on {device} with outputs to compare with"
            continue
        label = f"{device} {ref['runtime']}:{ref['delegate']} t{ref['threads']} fp32"
        frame.at[i, "fid_reference"] = label
        if ref["job_id"] == row["job_id"]:
            continue
        why = fidelity.comparable(by_id[ref["job_id"]].result.outputs, out)  # type: ignore[arg-type]
        if why:
            frame.at[i, "fid_note"] = f"not comparable with {label}: {why}"
            continue
        f = fidelity.compare(by_id[ref["job_id"]].result.outputs, out)  # type: ignore[arg-type]
        frame.at[i, "fid_cosine"], frame.at[i, "fid_cosine_mean"] = f.cosine_min, f.cosine_mean
        frame.at[i, "fid_snr_db"], frame.at[i, "fid_max_abs"] = f.snr_db, f.max_abs_error
        frame.at[i, "fid_top1"] = math.nan if f.top1_agreement is None else f.top1_agreement
        frame.at[i, "fid_top5"] = math.nan if f.top5_agreement is None else f.top5_agreement
        low = fidelity.below(f, checks.min_cosine, checks.min_snr_db, checks.min_top1_agreement)
        if low:
            frame.at[i, "fid_low"] = True
            frame.at[i, "fid_note"] = f"LOW FIDELITY against {label}: {'; '.join(low)}"


def precision_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Each precision against fp32 in the same configuration (device, model, runtime, delegate,
    threads): the speed it buys and what it costs in fidelity. One merge: it scales to a lab's run."""
    if frame.empty:
        return pd.DataFrame()
    config = ["device", "model", "runtime", "delegate", "threads"]
    measured = frame[frame.status.isin(MEASURED) & frame.median_ms.notna()]
    fp32 = measured[measured.precision == "fp32"].drop_duplicates(config)[[*config, "median_ms"]]
    others = measured[measured.precision != "fp32"]
    table = others.merge(fp32.rename(columns={"median_ms": "fp32_median_ms"}), on=config, how="inner", sort=False)
    if table.empty:
        return pd.DataFrame()
    table = pd.DataFrame({
        **{c: table[c] for c in config}, "precision": table["precision"], "median_ms": table["median_ms"],
        "fp32_median_ms": table["fp32_median_ms"], "speedup_vs_fp32": _ratio(table["fp32_median_ms"], table["median_ms"]),
        "cosine": table["fid_cosine"], "snr_db": table["fid_snr_db"], "top1_agreement": table["fid_top1"],
        "top5_agreement": table["fid_top5"], "low_fidelity": table["fid_low"].astype(bool),
        "reference": table["fid_reference"],
    })  # fmt: skip
    order = {p: i for i, p in enumerate(PRECISIONS)}
    table["_order"] = [order.get(p, len(order)) for p in table["precision"]]
    first = measured.drop_duplicates(config)[config].reset_index(drop=True).reset_index(names="_config")
    table = table.merge(first, on=config, how="left", sort=False)  # configurations in the results' order
    return (
        table.sort_values(["_config", "_order"], kind="stable")
        .drop(columns=["_order", "_config"])
        .reset_index(drop=True)
    )


def _ratio(baseline: pd.Series, median: pd.Series) -> pd.Series:
    """stats.speedup over columns: baseline ÷ median, NaN where either is not positive."""
    ok = (baseline > 0) & (median > 0)
    return (baseline / median).where(ok)


def _delegated(result: Result) -> str:
    d = result.delegation
    if d is None:
        return ""
    if d.delegated_nodes is not None and d.total_nodes:
        return f"{d.delegated_nodes}/{d.total_nodes}"
    return d.actual or ""


def _add_speedups(frame: pd.DataFrame) -> None:
    """Each measured job's speedup over its group's baseline: the first of baseline_order() measured at one
    thread for the same device, model and precision. Merges, not a loop: it scales to a lab's run."""
    measured = frame["status"].isin(MEASURED) & frame["median_ms"].notna()
    rank = {pair: i for i, pair in enumerate(baseline_order())}
    order = pd.Series([rank.get(pair, -1) for pair in zip(frame["runtime"], frame["delegate"])], index=frame.index)
    candidates = frame[measured & (frame["threads"] == 1) & (order >= 0)].assign(_rank=order)
    base = candidates.sort_values("_rank", kind="stable").drop_duplicates(GROUP)
    base = pd.DataFrame({**{c: base[c] for c in GROUP}, "_base_ms": base["median_ms"],
                         "baseline": base["runtime"] + ":" + base["delegate"] + " t1"})  # fmt: skip
    joined = frame[GROUP].merge(base, on=GROUP, how="left", sort=False)
    joined.index = frame.index
    frame["speedup"] = _ratio(joined["_base_ms"], frame["median_ms"]).where(measured)
    frame["baseline"] = joined["baseline"].where(measured & joined["_base_ms"].notna(), "").astype(object)


def _basis(aggregate: Aggregate) -> str:
    where = "median printed by benchmark_model" if aggregate.median is not None else "median column holds the MEAN"
    return f"benchmark_model aggregate of {int(aggregate.count)} runs ({where}; no per-run samples, no CI)"


def score_table(frame: pd.DataFrame, budget_ms: float) -> pd.DataFrame:
    """Every measured job with an accuracy: accuracy per joule, whether its median latency is within the
    budget, the best within it, and whether it is on the Pareto front of its device and evaluation set
    (higher accuracy, lower latency, and lower energy where every point of the group has one)."""
    rows = frame[frame.status.isin(MEASURED) & frame.acc_top1.notna() & frame.median_ms.notna()]
    if rows.empty:
        return pd.DataFrame()
    table = rows[[*KEY, "acc_top1", "acc_ci_low", "acc_ci_high", "acc_n", "acc_data", "median_ms", "energy_mj",
                  "fid_low"]].copy()  # fmt: skip
    table["acc_per_j"] = [accuracy_per_joule(a, e) for a, e in zip(table.acc_top1, table.energy_mj)]
    table["within_budget"] = table.median_ms <= budget_ms
    table["pareto"] = False
    table["best_within_budget"] = False
    for _, idx in table.groupby(["device", "acc_data"], sort=False).groups.items():
        group = table.loc[idx]
        with_energy = bool(group.energy_mj.notna().all())
        cols = ["acc_top1", "median_ms", *(["energy_mj"] if with_energy else [])]
        front = pareto_front(group[cols].to_numpy().tolist(), [True, False, *([False] if with_energy else [])])
        table.loc[idx, "pareto"] = front
        fast = group[group.within_budget]
        if not fast.empty:  # the most accurate within the budget; of equally accurate ones, the fastest
            best = fast.sort_values(["acc_top1", "median_ms"], ascending=[False, True], kind="stable").index[0]
            table.at[best, "best_within_budget"] = True
    return table.sort_values(["device", "acc_data", "acc_top1", "median_ms"], ascending=[True, True, False, True],
                             kind="stable").reset_index(drop=True)  # fmt: skip


def _notes(row: pd.Series) -> str:
    notes = [f"THROTTLED: {row['throttled']}"] if row["throttled"] else []
    if row["drift"]:
        notes.append(str(row["drift"]))
    if row["other_cpu_pct"] >= 100 * CONTENTION:
        notes.append(f"contended: other processes used {row['other_cpu_pct']:.0f}% of the CPUs during the window")
    if row["repetitions"] > 1:
        notes.append(f"{row['repetitions']} repetitions: between-repetition CV {row['between_cv_pct']:.1f}%,"
                     f" within {row['within_cv_pct']:.1f}%")  # fmt: skip
    if row["fid_note"]:
        notes.append(str(row["fid_note"]))
    if row["acc_note"]:
        notes.append(str(row["acc_note"]))
    if row["basis"]:
        notes.append(str(row["basis"]))
    if row["status"] not in ("ok",) and row["message"]:
        notes.append(str(row["message"]))
    advice = _spread_advice(row)
    if advice:
        notes.append(advice)
    return "; ".join(notes)


def robust_cv(row: pd.Series) -> float:
    """The spread of the bulk of the samples: the IQR as a normal SD (÷ 1.349), over the median."""
    median = row["median_ms"]
    return (row["p75_ms"] - row["p25_ms"]) / 1.349 / median if median > 0 else math.nan


def _spread_advice(row: pd.Series) -> str:
    """What a high CV means here. When the bulk of the samples is tight (robust CV under CV_WARN) the CV
    comes from a tail of slow outliers: the median is steady, and more time or a cooldown fixes nothing."""
    cv = row["cv_pct"]
    if not (isinstance(cv, float) and cv >= 100 * CV_WARN):
        return ""
    bulk = robust_cv(row)
    if bulk < CV_WARN:
        median, low, high = row["median_ms"], row["ci_low_ms"], row["ci_high_ms"]
        ci = f", 95% CI of the median ±{50 * (high - low) / median:.1f}%" if not math.isnan(low) else ""
        tail = f"p99 {row['p99_ms'] / median:.1f}× the median" if not math.isnan(row["p99_ms"]) else "a long tail"
        return (f"CV {cv:.0f}% from an outlier tail ({tail}) while the bulk is tight (IQR-based CV {100 * bulk:.1f}%{ci}):"
                " trust the median; p99 shows the tail (interrupts, other processes, GC or page faults)")  # fmt: skip
    return (f"CV {cv:.0f}% ≥ {100 * CV_WARN:.0f}% and the bulk of the samples spreads too (IQR-based CV"
            f" {100 * bulk:.0f}%): unstable; raise min_seconds or add cooldown")  # fmt: skip


def _compatibility(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return pd.DataFrame()
    marked = frame["status"].where(frame["throttled"] == "", frame["status"] + " (throttled)")
    marked = marked.where(~frame["fid_low"].astype(bool), marked + " (low fidelity)")
    table = frame.assign(config=frame.apply(config_label, axis=1), status=marked)
    wide = table.pivot_table(index=GROUP, columns="config", values="status", aggfunc="first", sort=False)
    return wide.fillna("—")
