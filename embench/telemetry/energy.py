"""Energy maths: power samples and counters → joules over the timed window. No I/O here."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

# A power trace must cover this share of the window, with no gap longer than this share of it,
# to be used at all; otherwise the energy is reported as too sparse, never silently.
MIN_COVERAGE = 0.9
MAX_GAP_SHARE = 0.25


@dataclass(frozen=True)
class Energy:
    """Energy of one timed window, from one power source."""

    joules: float  # gross: everything the rail delivered during the window
    seconds: float
    samples_in_window: int
    coverage: float  # share of the window spanned by samples (edges interpolated)
    max_gap_s: float
    sparse: bool

    @property
    def watts(self) -> float:
        return self.joules / self.seconds if self.seconds > 0 else math.nan

    def as_dict(self) -> dict[str, float | int | bool]:
        return {**asdict(self), "watts": self.watts}


def _interp(t: float, a: tuple[float, float], b: tuple[float, float]) -> float:
    (ta, pa), (tb, pb) = a, b
    return pa if tb == ta else pa + (pb - pa) * (t - ta) / (tb - ta)


def integrate(samples: Sequence[tuple[float, float]], t0: float, t1: float) -> Energy:
    """Trapezoid integral of (time s, power W) samples over [t0, t1], interpolated at the edges.

    Where samples do not reach an edge, that part of the window is not integrated and the
    coverage drops; the result is flagged `sparse` when coverage or the largest gap is poor.
    """
    seconds = t1 - t0
    pts = sorted(samples)
    if seconds <= 0 or len(pts) < 2:
        return Energy(math.nan, seconds, len(pts), 0.0, seconds, True)
    clipped: list[tuple[float, float]] = []
    for i, (t, p) in enumerate(pts):
        if i and pts[i - 1][0] < t0 < t:
            clipped.append((t0, _interp(t0, pts[i - 1], (t, p))))
        if t0 <= t <= t1:
            clipped.append((t, p))
        if i and pts[i - 1][0] < t1 < t:
            clipped.append((t1, _interp(t1, pts[i - 1], (t, p))))
    inside = sum(1 for t, _ in pts if t0 <= t <= t1)
    if len(clipped) < 2:
        return Energy(math.nan, seconds, inside, 0.0, seconds, True)
    joules = sum((tb - ta) * (pa + pb) / 2 for (ta, pa), (tb, pb) in itertools.pairwise(clipped))
    covered = clipped[-1][0] - clipped[0][0]
    edges = [t0, *(t for t, _ in clipped), t1]
    max_gap = max(b - a for a, b in itertools.pairwise(edges))
    coverage = covered / seconds
    sparse = coverage < MIN_COVERAGE or max_gap > MAX_GAP_SHARE * seconds
    # Scale to the whole window only when nearly all of it is covered; else report what was seen.
    return Energy(joules / coverage if not sparse else joules, seconds, inside, coverage, max_gap, sparse)


def counter_delta(start: int, end: int, max_range: int | None) -> int:
    """Difference of a monotonically increasing counter that wraps at max_range (RAPL energy_uj)."""
    if end >= start:
        return end - start
    if not max_range:
        raise ValueError(f"counter went backwards ({start} → {end}) and its range is unknown")
    return end + max_range - start


def mean_power(samples: Sequence[tuple[float, float]]) -> float:
    """Time-weighted mean power of a trace (the idle baseline)."""
    pts = sorted(samples)
    if len(pts) < 2:
        return pts[0][1] if pts else math.nan
    span = pts[-1][0] - pts[0][0]
    if span <= 0:
        return sum(p for _, p in pts) / len(pts)
    return sum((tb - ta) * (pa + pb) / 2 for (ta, pa), (tb, pb) in itertools.pairwise(pts)) / span


def net_joules(gross: float, idle_watts: float, seconds: float) -> float:
    """Energy above the idle baseline: what running the model cost."""
    return gross - idle_watts * seconds


def per_inference(joules: float, inferences: int) -> float:
    return joules / inferences if inferences > 0 else math.nan
