"""embench.stats against scipy and numpy on the same data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from embench.stats import median_ci, speedup, summarize


@pytest.mark.parametrize("n", [6, 7, 10, 31, 100, 1000])
@pytest.mark.parametrize("confidence", [0.95, 0.99])
def test_median_ci_matches_scipy_quantile_test(n: int, confidence: float) -> None:
    rng = np.random.default_rng(n)
    x = np.sort(rng.lognormal(0.0, 0.5, size=n))
    ours = median_ci(x, confidence)
    ref = sps.quantile_test(x, q=float(np.median(x)), p=0.5).confidence_interval(confidence)
    # scipy's exact two-sided interval for the 0.5 quantile uses the same order statistics
    if math.isnan(ref.low) or math.isnan(ref.high):
        assert math.isnan(ours[0]) and math.isnan(ours[1])  # too few samples for this coverage, in both
    else:
        assert ours == (pytest.approx(ref.low), pytest.approx(ref.high))


def test_median_ci_coverage_is_at_least_nominal() -> None:
    rng = np.random.default_rng(1)
    hits = 0
    trials = 2000
    for _ in range(trials):
        x = np.sort(rng.exponential(1.0, size=25))
        lo, hi = median_ci(x, 0.95)
        hits += lo <= math.log(2) <= hi
    assert hits / trials >= 0.94


def test_median_ci_too_few_samples() -> None:
    lo, hi = median_ci(np.arange(5.0), 0.95)
    assert math.isnan(lo) and math.isnan(hi)


def test_summary_figures_match_numpy() -> None:
    rng = np.random.default_rng(3)
    ns = rng.integers(1_000_000, 3_000_000, size=500)
    s = summarize(ns)
    assert s is not None
    ms = ns / 1e6
    assert s.n == 500
    assert s.median == pytest.approx(np.median(ms))
    assert s.p90 == pytest.approx(np.percentile(ms, 90))
    assert s.p99 == pytest.approx(np.percentile(ms, 99))
    assert s.mean == pytest.approx(ms.mean())
    assert s.sd == pytest.approx(ms.std(ddof=1))
    assert s.cv == pytest.approx(ms.std(ddof=1) / ms.mean())
    assert s.min == ms.min() and s.max == ms.max()
    assert s.ci_low <= s.median <= s.ci_high


def test_unstable_flag_and_empty() -> None:
    steady = summarize([1_000_000] * 20 + [1_010_000] * 20)
    noisy = summarize([1_000_000] * 20 + [2_000_000] * 20)
    assert steady is not None and not steady.unstable
    assert noisy is not None and noisy.unstable
    assert summarize([]) is None


def test_speedup() -> None:
    assert speedup(10.0, 2.5) == 4.0
    assert math.isnan(speedup(10.0, 0.0))
