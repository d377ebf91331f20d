"""Turn ReportData into Markdown and CSV, and the cells the HTML pages share (pages.py)."""

from __future__ import annotations

import csv as csvlib
import datetime as dt
import io
import math
from collections import Counter
from typing import Any

import pandas as pd

from ..telemetry import NO_POWER
from ..text import md_cell, md_text
from .figures import FIGURES
from .tables import ReportData, config_label

SHOWN = [
    ("device", "device"), ("model", "model"), ("precision", "precision"), ("runtime", "runtime"),
    ("delegate", "delegate"), ("threads", "threads"), ("status", "status"), ("throttled_mark", "throttled"), ("n", "n"),
    ("median_ms", "median ms"), ("ci", "95% CI of median"), ("p90_ms", "p90 ms"), ("p99_ms", "p99 ms"),
    ("cv_pct", "CV %"), ("init_ms", "init ms"), ("first_inference_ms", "first ms"),
    ("peak_rss_mb", "peak RSS MB"), ("delegated", "delegated nodes"), ("speedup", "speedup ×"),
    ("fidelity", "fidelity vs fp32 CPU"), ("accuracy", "top-1 accuracy (95% CI)"),
    ("energy", "mJ / inference"), ("avg_w", "avg W"), ("temp_max_c", "max °C"),
    ("notes", "notes"),
]  # fmt: skip
# shown only where some row has one (a device without a power source has no energy to show)
OPTIONAL = {"fidelity", "accuracy", "energy", "avg_w", "temp_max_c", "delegated", "peak_rss_mb"}


def _pct(value: float) -> str:
    return f"{100 * value:.0f}%" if value in (0.0, 1.0) else f"{100 * value:.1f}%"


def fidelity_cell(row: Any) -> str:
    """cos (worst input) · SNR · top-1 agreement; `reference` on the reference itself; `LOW` first when flagged."""
    if row["fid_reference"] and math.isnan(row["fid_cosine"]):
        return "reference" if not row["fid_note"] else "—"
    if math.isnan(row["fid_cosine"]):
        return "—"
    snr = "exact" if math.isinf(row["fid_snr_db"]) and row["fid_snr_db"] > 0 else f"SNR {row['fid_snr_db']:.1f} dB"
    parts = [f"cos {row['fid_cosine']:.4f}", snr]
    if not math.isnan(row["fid_top1"]):
        parts.append(f"top-1 {_pct(row['fid_top1'])}")
    return ("LOW · " if row["fid_low"] else "") + " · ".join(parts)


def accuracy_cell(row: Any) -> str:
    if math.isnan(row["acc_top1"]):
        return "—"
    return f"{_pct(row['acc_top1'])} ({_pct(row['acc_ci_low'])}–{_pct(row['acc_ci_high'])}, n={row['acc_n']})"


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def display_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The main table with formatted cells, as strings."""
    out = pd.DataFrame()
    c = {k: frame[k].tolist() for k in frame.columns}  # plain lists: a lab's 10,000 rows format fast
    for col, title in SHOWN:
        if col in OPTIONAL and not _has(frame, col):
            continue
        if col == "fidelity":
            out[title] = [fidelity_cell(row) for _, row in frame.iterrows()]
        elif col == "accuracy":
            out[title] = [accuracy_cell(row) for _, row in frame.iterrows()]
        elif col == "status":
            out[title] = [f"{st} (low fidelity)" if low else st for st, low in zip(c["status"], c["fid_low"])]
        elif col == "speedup":
            out[title] = [f"{_fmt(x)} ✗" if low and not math.isnan(x) else _fmt(x)
                          for x, low in zip(c["speedup"], c["fid_low"])]  # fmt: skip
        elif col == "throttled_mark":
            out[title] = ["yes" if t else "" for t in c["throttled"]]
        elif col == "energy":
            # a reason where a power source gave none; "—" where there is no source (said once, not per row)
            out[title] = [note if note and note != NO_POWER else _fmt(mj)
                          for mj, note in zip(c["energy_mj"], c["energy_note"])]  # fmt: skip
        elif col == "ci":
            out[title] = [
                "—" if math.isnan(lo) else f"{_fmt(lo)}–{_fmt(hi)}" for lo, hi in zip(c["ci_low_ms"], c["ci_high_ms"])
            ]
        else:
            out[title] = [_fmt(v) for v in c[col]]
    return out


def _has(frame: pd.DataFrame, col: str) -> bool:
    if col == "fidelity":
        return bool(frame["fid_reference"].astype(bool).any())
    if col == "accuracy":
        return bool(frame["acc_top1"].notna().any())
    if col == "energy":  # a figure, or a power source's reason for none; not "no power source" in every row
        return bool(
            frame["energy_mj"].notna().any()
            or (frame["energy_note"].astype(bool) & (frame["energy_note"] != NO_POWER)).any()
        )
    if col == "delegated":
        return bool(frame["delegated"].astype(bool).any())
    return bool(frame[col].notna().any())


def precision_display(table: pd.DataFrame) -> pd.DataFrame:
    """Each precision against fp32 of the same configuration, one line each."""
    out = pd.DataFrame()
    if table.empty:
        return out
    out["device"], out["model"] = table["device"], table["model"]
    out["configuration"] = [config_label(row) for _, row in table.iterrows()]
    out["precision"] = table["precision"]
    out["median ms"] = [_fmt(v) for v in table["median_ms"]]
    out["× vs fp32"] = [_fmt(v) for v in table["speedup_vs_fp32"]]
    out["cosine (worst)"] = [_fmt(v) if math.isnan(v) else f"{v:.4f}" for v in table["cosine"]]
    out["SNR dB"] = ["exact" if math.isinf(v) and v > 0 else _fmt(v) for v in table["snr_db"]]
    out["top-1 agreement"] = ["—" if math.isnan(v) else _pct(v) for v in table["top1_agreement"]]
    out["verdict"] = ["LOW FIDELITY" if low else ("—" if math.isnan(c) else "ok")
                      for low, c in zip(table["low_fidelity"], table["cosine"])]  # fmt: skip
    return out


PRECISION_NOTE = (
    "Each precision against fp32 in the same configuration: × is the fp32 median ÷ this median; fidelity is "
    "this job's outputs against the reference's (the same model at fp32 on a CPU: the fidelity column of the results "
    "names it) on the same seeded inputs: the worst input's cosine similarity, the SNR over all of them, and how often "
    "the top-1 class agrees. LOW FIDELITY: under the sweep's thresholds (sweep.fidelity): fast but wrong."
)


def score_display(table: pd.DataFrame) -> pd.DataFrame:
    """Accuracy against latency and energy, one line per configuration with an accuracy."""
    out = pd.DataFrame()
    if table.empty:
        return out
    out["device"], out["model"], out["precision"] = table["device"], table["model"], table["precision"]
    out["configuration"] = [config_label(row) for _, row in table.iterrows()]
    out["top-1 (95% CI)"] = [f"{_pct(a)} ({_pct(lo)}–{_pct(hi)})"
                             for a, lo, hi in zip(table["acc_top1"], table["acc_ci_low"], table["acc_ci_high"])]  # fmt: skip
    out["median ms"] = [_fmt(v) for v in table["median_ms"]]
    out["mJ / inference"] = [_fmt(v) for v in table["energy_mj"]]
    out["top-1 per J"] = [_fmt(v) for v in table["acc_per_j"]]
    out["within budget"] = ["best" if best else ("yes" if ok else "no")
                            for ok, best in zip(table["within_budget"], table["best_within_budget"])]  # fmt: skip
    out["Pareto"] = ["★" if p else "" for p in table["pareto"]]
    out["fidelity"] = ["LOW" if low else "" for low in table["fid_low"]]
    return out


def score_note(data: ReportData) -> str:
    return (
        f"Accuracy against what it costs (as LPIRC scores it): top-1 per joule is the top-1 accuracy ÷ the energy of one "
        f"inference; `within budget`: the median latency is at most {data.latency_budget_ms:g} ms (`--latency-budget`), "
        "`best`: the most accurate such configuration of its device and evaluation set; ★: on the Pareto front of "
        "its device and evaluation set (no other configuration is as accurate, as fast and, where every one has a "
        "power source, as frugal, and better in one). Figure `pareto.png`."
    )


def _md_table(frame: pd.DataFrame, index: bool = False) -> str:
    if index:
        frame = frame.reset_index()
    header = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(md_cell(v) for v in row) + " |")
    return "\n".join(lines)


def heading(data: ReportData) -> str:
    """The run in one line."""
    started = dt.datetime.fromtimestamp(data.run.started_unix).strftime("%Y-%m-%d %H:%M:%S")
    return (
        f"run `{data.run.run_id}` · started {started} · {data.run.recorded}/{data.run.planned} jobs recorded"
        f" · state {data.run.state} · inventory `{data.run.inventory}`"
    )


def environment_rows(data: ReportData) -> list[str]:
    """One line of facts per device."""
    rows = []
    for device, f in data.environment.items():
        mem = f"{f.mem_total_kb / 1048576:.1f} GiB" if f.mem_total_kb else None
        parts = [
            " ".join(str(v) for v in (f.manufacturer, f.model) if v) or None,  # phones (getprop)
            f"SoC {f.soc}" if f.soc else (f"platform {f.platform}" if f.platform else None),
            f.cpu,
            f"{f.cores} cores" if f.cores else None,
            mem,
            f.os,
            f"kernel {f.kernel}" if f.kernel else None,
            f"Python {f.python}" if f.python else None,
        ]
        rows.append(f"{device}: " + " · ".join(str(p) for p in parts if p))
    return rows


def run_facts(data: ReportData, frame: pd.DataFrame | None = None) -> list[tuple[str, str]]:
    """Run, job counts, runtime versions and the run policy: what a reader needs to trust or reproduce it."""
    frame = data.results if frame is None else frame
    versions = Counter(
        f"{r} {v}" for r, v in zip(frame["runtime"], frame["runtime_version"]) if isinstance(v, str) and v
    )
    policies = Counter(p for p in frame["policy"] if p)
    counts = Counter(frame["status"])
    return [
        ("run", heading(data).replace("`", "")),
        ("jobs", ", ".join(f"{n} {s}" for s, n in counts.most_common())),
        ("runtimes", "; ".join(f"{v} ({n} jobs)" for v, n in versions.most_common()) or "—"),
        (
            "timed as",
            "; ".join(f"{p} ({n} jobs)" if len(policies) > 1 else p for p, n in policies.most_common()) or "—",
        ),
    ]


def markdown(data: ReportData) -> str:
    parts = ["# embench report\n", *(f"- **{k}**: {md_text(v)}" for k, v in run_facts(data)), ""]
    parts += [f"- {md_text(r)}" for r in environment_rows(data)]
    parts.append("\n## Results\n")
    parts.append(_md_table(display_table(data.results)))
    if energy_note(data.results):
        parts.append(f"\n{energy_note(data.results)}")
    if not data.precisions.empty:
        parts.append("\n## Precisions against fp32\n")
        parts.append(_md_table(precision_display(data.precisions)))
        parts.append(f"\n{PRECISION_NOTE}\n")
    if not data.scores.empty:
        parts.append("\n## Accuracy against latency and energy\n")
        parts.append(_md_table(score_display(data.scores)))
        parts.append(f"\n{score_note(data)}\n")
    if not data.compatibility.empty:
        parts.append("\n## Compatibility\n")
        parts.append(_md_table(data.compatibility, index=True))
    parts.append(f"\n{SPEEDUP_NOTE} Figures: " + ", ".join(f"`{f.name}.png`" for f in FIGURES) + " (where drawn).\n")
    return "\n".join(parts)


def energy_note(frame: pd.DataFrame) -> str:
    """Which devices have no power source, said once rather than in each of their rows."""
    if frame.empty:
        return ""
    if not _has(frame, "energy"):
        return f"Energy: {NO_POWER} on any device of this run, so no energy column (docs/inventory.md, telemetry)."
    measured = frame[frame["n"] > 0]
    without = sorted(set(measured["device"]) - set(measured.loc[measured["energy_note"] != NO_POWER, "device"]))
    if not without:
        return ""
    return f"Energy: {NO_POWER} on {', '.join(without)} (their rows show —; docs/inventory.md, telemetry)."


SPEEDUP_NOTE = (
    "Speedup is the baseline's median ÷ this median; the baseline is the single-thread CPU run of the same device, "
    "model and precision (LiteRT cpu, else XNNPACK, else ONNX Runtime CPU). Latency figures: boxes p25–p75, the median "
    "marked, whiskers p5–p95 of the raw samples. Compatibility: — means that configuration was not swept."
)


def csv(data: ReportData) -> str:
    return str(data.results.to_csv(index=False))


def samples_csv(data: ReportData) -> str:
    buf = io.StringIO()
    writer = csvlib.writer(buf, lineterminator="\n")
    writer.writerow(["job_id", "device", "model", "precision", "runtime", "delegate", "threads", "seq", "latency_ns"])
    for r in data.results.itertuples():
        key = [r.job_id, r.device, r.model, r.precision, r.runtime, r.delegate, r.threads]
        writer.writerows([*key, i, ns] for i, ns in enumerate(data.samples.get(r.job_id, [])))
    return buf.getvalue()
