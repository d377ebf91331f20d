"""embench's Python API: a run's results, raw samples and the store's runs as pandas DataFrames.

    import embench
    df = embench.results("results/embench.sqlite")          # the latest run, one row per job
    s = embench.samples("results/embench.sqlite", run="2026")  # every raw sample, long format
    embench.runs("results/embench.sqlite")                     # the runs in the store

A store is a path (str or Path) or None for the default (`$EMBENCH_STORE`, else results/embench.sqlite).
Nothing here creates a database or writes into one. The report (`embench report`) is built on
`report_data`, whose `results` is the frame `results()` returns. Columns: docs/python-api.md.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from .scores import DEFAULT_LATENCY_BUDGET_MS
from .store import Store, resolve_store_path

if TYPE_CHECKING:
    from .report.tables import ReportData

StoreLike = str | Path | Store | None

__all__ = ["ops", "report_data", "results", "runs", "samples"]


@contextlib.contextmanager
def _opened(store: StoreLike) -> Iterator[Store]:
    if isinstance(store, Store):
        yield store
        return
    opened = Store(resolve_store_path(str(store) if store is not None else None), create=False)
    try:
        yield opened
    finally:
        opened.close()


def report_data(
    store: StoreLike = None, run: str | None = None, latency_budget_ms: float = DEFAULT_LATENCY_BUDGET_MS
) -> ReportData:
    """Everything the report shows of a run (the latest, or a run id or unique prefix), computed:
    a `ReportData` (embench.report.tables) with `results`, `precisions`, `scores`, `compatibility`."""
    from .report.tables import build_report_data  # noqa: PLC0415 - scipy and the statistics load only here

    with _opened(store) as opened:
        return build_report_data(opened, run, latency_budget_ms)


def results(store: StoreLike = None, run: str | None = None) -> pd.DataFrame:
    """One row per job of the run: its configuration, status, latency statistics (ms), speedup, energy,
    fidelity, accuracy and notes (docs/python-api.md lists the columns)."""
    return report_data(store, run).results.copy()


def samples(store: StoreLike = None, run: str | None = None) -> pd.DataFrame:
    """Every raw latency sample of the run, long format: job_id, device, model, precision, runtime,
    delegate, threads, repetition, seq (the sample's place in its job), latency_ms."""
    with _opened(store) as opened:
        info = opened.find_run(run)
        frame = opened.sample_frame(info.run_id)
    frame["latency_ms"] = frame.pop("latency_ns") / 1e6
    return frame


def ops(store: StoreLike = None, run: str | None = None) -> pd.DataFrame:
    """Every op of every job with per-op records (Result.ops), one row each: the configuration, job_id,
    source (onnxruntime-profiler, benchmark_model, litert-delegation), index, name, type, op_class,
    processor, on_cpu, ms per inference (NaN where not profiled), share of the job's op time, calls,
    reason (why it is on the CPU, where known)."""
    from .opstats import op_frame  # noqa: PLC0415

    with _opened(store) as opened:
        info = opened.find_run(run)
        return op_frame(opened.results(info.run_id))


def runs(store: StoreLike = None) -> pd.DataFrame:
    """The runs in the store, oldest first: run_id, started, ended (datetimes, local time), state,
    inventory, planned and recorded jobs, label ("nightly" for `embench nightly` runs)."""
    with _opened(store) as opened:
        rows = opened.runs()
    frame = pd.DataFrame.from_records(
        [r.__dict__ for r in rows],
        columns=["run_id", "started_unix", "ended_unix", "state", "inventory", "planned", "recorded", "label"],
    )
    frame.insert(1, "started", [_time(x) for x in frame.pop("started_unix")])
    frame.insert(2, "ended", [_time(x) for x in frame.pop("ended_unix")])
    return frame


def _time(unix: float | None) -> dt.datetime | pd.NaT:  # type: ignore[valid-type]
    return pd.NaT if unix is None or math.isnan(unix) else dt.datetime.fromtimestamp(unix)
