"""A series over the nights: each run's median of repetition levels (regression.repetition_level)
with its CI, and the change points in that history (ruptures' PELT on the log medians), so that slow
drift and steps that no single night-to-night comparison calls are found too. Computes only."""

from __future__ import annotations

import fnmatch
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .compare import SeriesKey, repetition_levels, series_key, series_label
from .stats import median_ci
from .store import RunInfo, Store

MIN_STEP = 0.03  # a change point whose step is under 3% of the level is noise, not a change


@dataclass(frozen=True)
class Point:
    run_id: str
    started_unix: float
    median_ms: float
    low_ms: float
    high_ms: float
    repetitions: int


@dataclass(frozen=True)
class Step:
    """Where a new level starts in a history, and the ratio of the new level to the old."""

    index: int
    run_id: str
    ratio: float


def matches(key: SeriesKey, pattern: str) -> bool:
    """A glob on the series label (device/model/precision/runtime:delegate/tN) or on any run of its whole
    parts ('chain20/*/t1' matches host/chain20/fp32/onnxruntime:CPUExecutionProvider/t1, not …/t12);
    no wildcard: a substring."""
    label = series_label(key)
    if not any(c in pattern for c in "*?["):
        return pattern in label
    parts = label.split("/")
    return any(
        fnmatch.fnmatchcase("/".join(parts[i:j]), pattern)
        for i in range(len(parts))
        for j in range(i + 1, len(parts) + 1)
    )


def nightly_runs(store: Store, before: str | None = None, label: str | None = "nightly") -> list[RunInfo]:
    """The finished runs with this label (None: every run), oldest first, up to (not with) `before`."""
    out = []
    for run in store.runs():
        if run.run_id == before:
            break
        if (label is None or run.label == label) and run.state == "finished":
            out.append(run)
    return out


def point(run: RunInfo, levels: Sequence[float]) -> Point:
    x = np.sort(np.asarray(levels, np.float64))
    low, high = median_ci(x) if len(x) >= 6 else (float(x[0]), float(x[-1]))
    return Point(run.run_id, run.started_unix, float(np.median(x)), low, high, len(x))


def histories(store: Store, pattern: str, runs: Sequence[RunInfo]) -> dict[SeriesKey, list[Point]]:
    out: dict[SeriesKey, list[Point]] = {}
    for run in runs:
        for stored in store.results(run.run_id):
            key = series_key(stored.job)
            if not matches(key, pattern) or not stored.result.measured:
                continue
            levels = repetition_levels(stored.result)
            if levels:
                out.setdefault(key, []).append(point(run, levels))
    return dict(sorted(out.items(), key=lambda kv: series_label(kv[0])))


def change_points(points: Sequence[Point], min_step: float = MIN_STEP) -> list[Step]:
    """PELT (ruptures, least squares) on the log medians, with a BIC-like penalty from the noise that
    successive nights show; steps smaller than `min_step` dropped."""
    import ruptures  # noqa: PLC0415 - only `history` and `nightly` need it

    y = np.log([p.median_ms for p in points])
    if len(y) < 4:
        return []
    noise = float(np.median(np.abs(np.diff(y)))) / 0.6745 / math.sqrt(2)  # MAD of differences → one night's SD
    noise = max(noise, 1e-4)
    penalty = 2 * noise**2 * math.log(len(y)) * 2
    ends = ruptures.Pelt(model="l2", min_size=2, jump=1).fit(y.reshape(-1, 1)).predict(pen=penalty)
    steps, start = [], 0
    for end, after in itertools.pairwise(ends):
        ratio = float(math.exp(np.mean(y[end:after]) - np.mean(y[start:end])))
        if abs(ratio - 1) >= min_step:
            steps.append(Step(end, points[end].run_id, ratio))
        start = end
    return steps
