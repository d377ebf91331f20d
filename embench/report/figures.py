"""Matplotlib figures of a report, returned as PNG bytes. They draw numbers; they compute none."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib import ticker

from .tables import ReportData, config_label

BOX_FILL = "#c6dbef"
BAR_FILL = "#4878a8"
ENERGY_FILL = "#d9822b"


def _png(fig: plt.Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _literal(text: str) -> str:
    """A name as matplotlib should draw it: `$` starts math there, so it is escaped."""
    return text.replace("$", r"\$")


def _panels(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    measured = frame[frame["n"] > 0]
    return [(_literal(f"{d} · {m}"), g) for (d, m), g in measured.groupby(["device", "model"], sort=False)]


def _axes(panels: list[tuple[str, pd.DataFrame]], row_inches: float) -> tuple[plt.Figure, list[plt.Axes]]:
    """One stacked panel per (device, model), tall enough for its configurations."""
    height = sum(max(1.5, row_inches * len(g)) for _, g in panels) + 0.6 * len(panels)
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, height), squeeze=False)
    return fig, list(axes[:, 0])


def _labels(group: pd.DataFrame) -> list[str]:
    """Each configuration's label; `✗ low fidelity` on one whose outputs fell under the thresholds."""
    return [_literal(f"{r.precision} {config_label(r._asdict())}" + (" ✗ low fidelity" if r.fid_low else ""))
            for r in group.itertuples()]  # fmt: skip


def latency_figure(data: ReportData) -> bytes | None:
    """Box plots of every configuration's raw latency samples (whiskers at p5/p95), one panel per model."""
    panels = _panels(data.results)
    if not panels:
        return None
    fig, axes = _axes(panels, 0.32)
    for ax, (title, group) in zip(axes, panels):
        labels = _labels(group)
        values = [[ns / 1e6 for ns in data.samples.get(r.job_id, [])] for r in group.itertuples()]
        ax.boxplot(values, vert=False, whis=(5, 95), showfliers=False, widths=0.6, patch_artist=True,
                   boxprops={"facecolor": BOX_FILL}, medianprops={"color": "#b2182b", "linewidth": 2})  # fmt: skip
        medians = group["median_ms"].dropna()
        if not medians.empty and medians.max() > 20 * medians.min():
            ax.set_xscale("log")  # one slow configuration must not flatten all the others
            ax.xaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(ticker.ScalarFormatter())
            ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_yticks(range(1, len(labels) + 1), labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(title, fontsize=10, loc="left")
        ax.set_xlabel("latency per inference (ms): box p25–p75, red line the median, whiskers p5–p95")
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def _bar_figure(
    data: ReportData,
    column: str,
    color: str,
    xlabel: str,
    subtitle: Callable[[pd.DataFrame], str],
    reference: float | None = None,
) -> bytes | None:
    """Horizontal bars of one computed column, one panel per (device, model); None when nothing to draw."""
    panels = [(t, g[g[column].notna()]) for t, g in _panels(data.results)]
    panels = [(t, g) for t, g in panels if not g.empty]
    if not panels:
        return None
    fig, axes = _axes(panels, 0.3)
    for ax, (title, group) in zip(axes, panels):
        ax.barh(range(len(group)), group[column], color=color)
        if reference is not None:
            ax.axvline(reference, color="black", lw=0.8)
        ax.set_yticks(range(len(group)), _labels(group), fontsize=8)
        ax.invert_yaxis()
        ax.set_title(f"{title} ({subtitle(group)})", fontsize=10, loc="left")
        ax.set_xlabel(xlabel)
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def speedup_figure(data: ReportData) -> bytes | None:
    """Speedup of each configuration over its single-thread CPU baseline, one panel per model."""
    return _bar_figure(data, "speedup", BAR_FILL, "speedup over the baseline (×)",
                       lambda g: _literal(f"baseline: {g['baseline'].iloc[0]}"), reference=1.0)  # fmt: skip


def energy_figure(data: ReportData) -> bytes | None:
    """Energy per inference (mJ) of each configuration that had a power source, one panel per model."""
    return _bar_figure(data, "energy_mj", ENERGY_FILL, "energy per inference (mJ)",
                       lambda g: _literal(", ".join(sorted(set(g["energy_basis"]) - {""}))))  # fmt: skip


def pareto_figure(data: ReportData) -> bytes | None:
    """Top-1 accuracy (with its 95% CI) against median latency, one panel per device and evaluation set;
    colour: energy per inference where known; the Pareto front joined; the latency budget dashed."""
    table = data.scores
    if table.empty:
        return None
    groups = list(table.groupby(["device", "acc_data"], sort=False))
    fig, axes = plt.subplots(len(groups), 1, figsize=(9, 4.2 * len(groups)), squeeze=False)
    for ax, ((device, _), group) in zip(axes[:, 0], groups):
        acc, lat = 100 * group["acc_top1"], group["median_ms"]
        err = [100 * (group["acc_top1"] - group["acc_ci_low"]), 100 * (group["acc_ci_high"] - group["acc_top1"])]
        ax.errorbar(lat, acc, yerr=err, fmt="none", ecolor="#999999", elinewidth=1, capsize=2, zorder=1)
        energy = group["energy_mj"]
        if energy.notna().all():
            points = ax.scatter(lat, acc, c=energy, cmap="viridis", s=40, zorder=2)
            fig.colorbar(points, ax=ax, label="energy per inference (mJ)")
        else:
            ax.scatter(lat, acc, color=BAR_FILL, s=40, zorder=2)
        front = group[group["pareto"]].sort_values("median_ms")
        ax.step(front["median_ms"], 100 * front["acc_top1"], where="post", color="#b2182b", lw=1.2, zorder=3,
                label="Pareto front")  # fmt: skip
        ax.axvline(
            data.latency_budget_ms, color="black", ls="--", lw=0.8, label=f"budget {data.latency_budget_ms:g} ms"
        )
        for r in group.itertuples():
            ax.annotate(_literal(f"{r.model} {r.precision} {r.runtime}:{r.delegate} t{r.threads}"),
                        (r.median_ms, 100 * r.acc_top1), fontsize=7, xytext=(4, 3), textcoords="offset points")  # fmt: skip
        if lat.max() > 20 * lat.min():
            ax.set_xscale("log")
        ax.set_xlabel("median latency per inference (ms)")
        ax.set_ylabel("top-1 accuracy (%)")
        ax.set_title(_literal(f"{device} (bars: exact 95% CI of top-1)"), fontsize=10, loc="left")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return _png(fig)


@dataclass(frozen=True)
class Figure:
    """One figure of the report: its file name (`NAME.png`), its title, and how it is drawn."""

    name: str
    title: str
    draw: Callable[[ReportData], bytes | None]


# Every figure the report draws, in page order; a new one is a function above and a line here.
FIGURES = (
    Figure("latency", "Latency", latency_figure),
    Figure("speedup", "Speedup over the single-thread CPU baseline", speedup_figure),
    Figure("energy", "Energy per inference", energy_figure),
    Figure("pareto", "Accuracy against latency (and energy): the Pareto front", pareto_figure),
)
