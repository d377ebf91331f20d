"""Latency statistics: summaries with a distribution-free CI of the median. No I/O here."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from embench_agent.protocol import Aggregate

CV_WARN = 0.10


@dataclass(frozen=True)
class Summary:
    """One job's latency figures, in milliseconds (cv as a fraction)."""

    n: int
    median: float
    ci_low: float
    ci_high: float
    p90: float
    p95: float
    p99: float
    min: float
    max: float
    mean: float
    sd: float
    cv: float
    p5: float = math.nan  # the box of a box plot: p25–p75, whiskers p5–p95
    p25: float = math.nan
    p75: float = math.nan

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    @property
    def unstable(self) -> bool:
        return self.cv >= CV_WARN


def median_ci(sorted_values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Order-statistic CI of the median: [x_(k), x_(n-k+1)] with binomial coverage ≥ confidence.

    NaN when n is too small for the requested coverage (n < 6 at 95%).
    """
    n = len(sorted_values)
    k = _order_statistic(n, confidence)
    if k < 1:
        return math.nan, math.nan
    return float(sorted_values[k - 1]), float(sorted_values[n - k])


@functools.lru_cache(maxsize=4096)
def _order_statistic(n: int, confidence: float) -> int:
    """The largest k with P(Bin(n, 1/2) ≤ k-1) ≤ (1 - confidence)/2 (a lab's jobs share a few n)."""
    from scipy import stats as sps  # noqa: PLC0415 - on first use: 0.6 s of every CLI start-up otherwise

    alpha = 1.0 - confidence
    k = int(sps.binom.ppf(alpha / 2, n, 0.5))
    if sps.binom.cdf(k, n, 0.5) <= alpha / 2:
        k += 1
    return k


def summarize(samples_ns: Sequence[int] | np.ndarray, confidence: float = 0.95) -> Summary | None:
    """Summary of raw latency samples (ns); None when there are none."""
    if len(samples_ns) == 0:
        return None
    ms = np.sort(np.asarray(samples_ns, dtype=np.float64)) / 1e6
    low, high = median_ci(ms, confidence)
    mean = float(ms.mean())
    sd = float(ms.std(ddof=1)) if len(ms) > 1 else 0.0
    p5, p25, median, p75, p90, p95, p99 = (float(v) for v in np.percentile(ms, [5, 25, 50, 75, 90, 95, 99]))
    return Summary(
        n=len(ms),
        median=median,
        ci_low=low,
        ci_high=high,
        p90=p90,
        p95=p95,
        p99=p99,
        min=float(ms[0]),
        max=float(ms[-1]),
        mean=mean,
        sd=sd,
        cv=sd / mean if mean > 0 else math.nan,
        p5=p5,
        p25=p25,
        p75=p75,
    )


DRIFT_WARN = 0.10


def drift(samples_ns: Sequence[int] | np.ndarray, share: float = 0.1) -> float:
    """Relative change of the median from the first to the last `share` of the timed window."""
    k = int(len(samples_ns) * share)
    if k < 5:
        return math.nan
    x = np.asarray(samples_ns, dtype=np.float64)
    first, last = float(np.median(x[:k])), float(np.median(x[-k:]))
    return (last - first) / first if first > 0 else math.nan


DRIFT_ALPHA = 0.001


def slowdown_within(samples_ns: Sequence[int] | np.ndarray, share: float = 0.1) -> float | None:
    """The rise of the median from the first to the last `share` of a window when it is both over
    DRIFT_WARN and significant (one-sided Mann-Whitney, p < DRIFT_ALPHA); None otherwise."""
    d = drift(samples_ns, share)
    if math.isnan(d) or d <= DRIFT_WARN:
        return None
    from scipy import stats as sps  # noqa: PLC0415 - on first use (above): most windows never get here

    k = int(len(samples_ns) * share)
    x = np.asarray(samples_ns, dtype=np.float64)
    p = float(sps.mannwhitneyu(x[-k:], x[:k], alternative="greater").pvalue)
    return d if p < DRIFT_ALPHA else None


def speedup(baseline_median: float, median: float) -> float:
    """How many times faster than the baseline (baseline ÷ this)."""
    if not (median > 0 and baseline_median > 0):
        return math.nan
    return baseline_median / median


def summarize_aggregate(aggregate: Aggregate) -> Summary | None:
    """Summary of a tool's own aggregate (benchmark_model: count, min, max, avg, std in µs; newer
    builds add p5 / median / p95). Without per-run samples there is no CI; where the tool prints no
    median the mean stands in for it (the report says so)."""
    if not aggregate.count or aggregate.avg is None:
        return None

    def ms(value: float | None) -> float:
        return value / 1e3 if value is not None else math.nan

    mean, sd = ms(aggregate.avg), ms(aggregate.std)
    return Summary(
        n=int(aggregate.count),
        median=ms(aggregate.median) if aggregate.median is not None else mean,
        ci_low=math.nan,
        ci_high=math.nan,
        p90=math.nan,
        p95=ms(aggregate.p95),
        p99=math.nan,
        min=ms(aggregate.min),
        max=ms(aggregate.max),
        mean=mean,
        sd=sd,
        cv=sd / mean if mean else math.nan,
    )


SPEEDUP_CONFIDENCE = 0.95
SPEEDUP_SIDE = math.sqrt(SPEEDUP_CONFIDENCE)  # each median's interval: both hold with probability ≥ 0.95


def speedup_interval(base: tuple[float, float], new: tuple[float, float]) -> tuple[float, float]:
    """An interval for median(base) ÷ median(new) (a speedup) with coverage ≥ SPEEDUP_CONFIDENCE, from
    each median's order-statistic interval at SPEEDUP_SIDE (independent runs): the ratio of their far
    ends. Distribution-free and cheap (a sort per job, so it scales to a lab's run); conservative.
    NaNs where either interval is unknown."""
    if any(math.isnan(v) for v in (*base, *new)) or new[0] <= 0:
        return math.nan, math.nan
    return base[0] / new[1], base[1] / new[0]
