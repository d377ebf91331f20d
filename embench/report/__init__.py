"""Reports: compute tables (tables.py), draw figures (figures.py), render files (render.py)."""

from __future__ import annotations

import shlex
from pathlib import Path

from ..api import report_data
from ..errors import EmbenchError
from ..scores import DEFAULT_LATENCY_BUDGET_MS
from ..store import Store
from ..text import save
from . import figures, pages, render
from .node_data import write_node_data
from .study import build_study
from .study_render import study_markdown
from .tables import ReportData, build_report_data

__all__ = ["ReportData", "build_report_data", "write_report"]


def write_report(
    store: Store,
    run_id: str | None,
    out_root: Path,
    latency_budget_ms: float = DEFAULT_LATENCY_BUDGET_MS,
    op_files: bool = False,
) -> dict[str, Path]:
    """Write HTML, Markdown, CSV and PNG files for a run under out_root/<run_id>/; return their paths.
    The per-op files (ops.csv, Model Explorer node data) are written for a run of up to MAX_PANELS
    device × model pairs, or at any size with op_files."""
    data = report_data(store, run_id, latency_budget_ms)  # the Python API's computation, rendered
    if data.results.empty:
        run = data.run
        resume = shlex.join(["embench", "sweep", run.inventory, "--resume", run.run_id, "--store", store.where])
        raise EmbenchError(f"run {run.run_id} in {store.where} holds no results ({run.planned} job(s) planned,"
                           f" none measured): nothing to report; measure them with `{resume}`")  # fmt: skip
    out = out_root / data.run.run_id
    try:
        out.mkdir(parents=True, exist_ok=True)
        return _write(data, out, op_files)
    except (NotADirectoryError, FileExistsError):
        raise EmbenchError(f"--out {out_root}: a file is in the way of {out}; pass --out a folder") from None
    except OSError as exc:
        raise EmbenchError(
            f"cannot write the report under {out}: {exc.strerror or exc}; pass --out a writable folder with free space"
        ) from None


MAX_PANELS = 24  # per-configuration figures (one panel per device × model) are drawn up to this many panels


def _write(data: ReportData, out: Path, op_files: bool = False) -> dict[str, Path]:
    frame = data.results
    panels = len(frame[frame["n"] > 0].groupby(["device", "model"]))
    skipped = ""
    if panels <= MAX_PANELS:
        pngs = {figure.name: figure.draw(data) for figure in figures.FIGURES}
    else:  # at lab scale: the overview grids, and each device's page with a box plot in every row
        pngs = {f.name: f.draw(data) for f in figures.FIGURES if f.name == "pareto"} if len(data.scores) <= 200 else {}
        skipped = (f"Per-configuration figures are drawn for up to {MAX_PANELS} device × model panels; this run has"
                   f" {panels}: each results row has its distribution instead, and each device's page its grid.")  # fmt: skip
    paths = {
        "html": out / "report.html",
        "markdown": out / "report.md",
        "csv": out / "results.csv",
        "samples": out / "samples.csv",
    }
    slugs = pages.file_slugs(sorted(frame["device"].unique()))
    titles = {f.name: f.title for f in figures.FIGURES}
    save(paths["html"], pages.overview_page(data, pngs, titles, slugs, skipped))
    (out / "devices").mkdir(exist_ok=True)
    for device, rows in frame.groupby("device", sort=True):
        save(out / "devices" / f"{slugs[str(device)]}.html", pages.device_page(data, str(device), rows))
    paths["devices"] = out / "devices"
    study = build_study(data)
    with_op_files = not data.ops.empty and (op_files or panels <= MAX_PANELS)
    op_note = "" if with_op_files or data.ops.empty else (
        f"This run holds {len(data.ops):,} per-op records over {panels} device × model pairs: `embench report"
        " --op-files` writes them as ops.csv and Model Explorer node data (embench.ops() gives them in Python)."
    )  # fmt: skip
    paths["study"] = out / "study.html"
    save(paths["study"], pages.study_page(data, study, op_note))
    save(out / "study.md", study_markdown(data, study) + (f"\n{op_note}\n" if op_note else ""))
    if with_op_files:
        paths["ops"] = out / "ops.csv"
        save(paths["ops"], str(data.ops.to_csv(index=False)))
        if write_node_data(data, out / "model-explorer"):
            paths["model_explorer"] = out / "model-explorer"
    save(paths["markdown"], render.markdown(data))
    save(paths["csv"], render.csv(data))
    save(paths["samples"], render.samples_csv(data))
    for name, png in pngs.items():
        if png:
            paths[name] = out / f"{name}.png"
            paths[name].write_bytes(png)
    return paths
