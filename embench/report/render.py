"""Turn ReportData into Markdown, CSV and a self-contained HTML page."""

from __future__ import annotations

import base64
import csv as csvlib
import datetime as dt
import html
import io
import math
from typing import Any

import pandas as pd

from embench_agent.protocol import STATUSES

from ..text import printable
from .figures import FIGURES
from .tables import ReportData

SHOWN = [
    ("device", "device"), ("model", "model"), ("precision", "precision"), ("runtime", "runtime"),
    ("delegate", "delegate"), ("threads", "threads"), ("status", "status"), ("throttled_mark", "throttled"), ("n", "n"),
    ("median_ms", "median ms"), ("ci", "95% CI of median"), ("p90_ms", "p90 ms"), ("p99_ms", "p99 ms"),
    ("cv_pct", "CV %"), ("init_ms", "init ms"), ("first_inference_ms", "first ms"),
    ("peak_rss_mb", "peak RSS MB"), ("delegated", "delegated nodes"), ("speedup", "speedup ×"),
    ("energy", "mJ / inference"), ("avg_w", "avg W"), ("temp_max_c", "max °C"),
    ("notes", "notes"),
]  # fmt: skip


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def display_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The main table with formatted cells, as strings."""
    out = pd.DataFrame()
    for col, title in SHOWN:
        if col == "throttled_mark":
            out[title] = ["yes" if t else "" for t in frame["throttled"]]
        elif col == "energy":
            out[title] = [note if note else _fmt(mj) for mj, note in zip(frame["energy_mj"], frame["energy_note"])]
        elif col == "ci":
            out[title] = [
                "—" if math.isnan(lo) else f"{_fmt(lo)}–{_fmt(hi)}"
                for lo, hi in zip(frame["ci_low_ms"], frame["ci_high_ms"])
            ]
        else:
            out[title] = [_fmt(v) for v in frame[col]]
    return out


def _md_cell(value: Any) -> str:
    """One Markdown table cell: a pipe or a line break in a name would end the cell or the row."""
    text = printable(str(value))
    return " ".join(text.replace("|", "\\|").splitlines())


def _md_table(frame: pd.DataFrame, index: bool = False) -> str:
    if index:
        frame = frame.reset_index()
    header = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_md_cell(v) for v in row) + " |")
    return "\n".join(lines)


def _heading(data: ReportData) -> str:
    started = dt.datetime.fromtimestamp(data.run.started_unix).strftime("%Y-%m-%d %H:%M:%S")
    return (
        f"run `{data.run.run_id}` · started {started} · {data.run.recorded}/{data.run.planned} jobs recorded"
        f" · state {data.run.state} · inventory `{data.run.inventory}`"
    )


def _environment_rows(data: ReportData) -> list[str]:
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


def markdown(data: ReportData) -> str:
    parts = [f"# embench report\n\n{_heading(data)}\n"]
    parts += [f"- {r}" for r in _environment_rows(data)]
    parts.append("\n## Results\n")
    parts.append(_md_table(display_table(data.results)))
    if not data.compatibility.empty:
        parts.append("\n## Compatibility\n")
        parts.append(_md_table(data.compatibility, index=True))
    parts.append("\nSpeedup is the baseline's median ÷ this median; the baseline is the single-thread CPU run of the same "
                 "device, model and precision (LiteRT cpu, else XNNPACK, else ONNX Runtime CPU). Figures: "
                 + ", ".join(f"`{f.name}.png`" for f in FIGURES) + ".\n")  # fmt: skip
    return "\n".join(parts)


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


_CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;font-size:12px;margin:8px 0 24px}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:left}
th{background:#f2f2f2} td.ok{background:#dff0d8} td.fallback{background:#fcf8e3}
td.unsupported{background:#eee} td.failed,td.crashed,td.timeout{background:#f2dede}
img{max-width:100%}
"""


def _html_table(frame: pd.DataFrame, status_cols: list[str] | None = None) -> str:
    cols = list(frame.columns)
    status_cols = status_cols if status_cols is not None else cols
    out = ["<table><thead><tr>" + "".join(f"<th>{html.escape(str(c))}</th>" for c in cols) + "</tr></thead><tbody>"]
    for row in frame.itertuples(index=False):
        cells = []
        for col, value in zip(cols, row):
            key = str(value).split(" ")[0]
            cls = f' class="{html.escape(key)}"' if col in status_cols and key in STATUSES else ""
            cells.append(f"<td{cls}>{html.escape(str(value))}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def html_page(data: ReportData, figures: dict[str, bytes | None]) -> str:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>embench report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>embench report</h1>",
        f"<p>{html.escape(_heading(data)).replace('`', '')}</p><ul>",
        *(f"<li>{html.escape(r)}</li>" for r in _environment_rows(data)),
        "</ul><h2>Results</h2>",
        _html_table(display_table(data.results), ["status"]),
    ]
    if not data.compatibility.empty:
        parts += ["<h2>Compatibility</h2>", _html_table(data.compatibility.reset_index())]
    for figure in FIGURES:
        png = figures.get(figure.name)
        if png:
            b64 = base64.b64encode(png).decode()
            parts.append(f"<h2>{figure.title}</h2><img id='{figure.name}' alt='{figure.title}'"
                         f" src='data:image/png;base64,{b64}'>")  # fmt: skip
    parts.append("</body></html>")
    return "\n".join(parts)
