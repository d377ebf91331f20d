"""Regression statistics on repetition levels: one-sided rank tests, Benjamini-Hochberg across the
series of a night, a distribution-free ratio CI, bimodality, and the minimum detectable effect.
Numbers only: no I/O, no rendering (docs/nightly.md explains each rule).

A repetition is a fresh model load in a fresh process, so its level (`repetition_level`: the fast end
of its invokes) is one independent sample of what a night measures; the invokes inside one process are
not (they share its memory layout, delegate set-up and thread placement).

scipy.stats is imported where a statistic is computed, not with this module: it is 0.6 s, and every
CLI start-up would pay it (`embench --help`, a verb that only reads the store)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

ALPHA = 0.01  # each series' one-sided rank test
FDR_Q = 0.05  # Benjamini-Hochberg across every series of the night
THRESHOLD = 1.03  # a slowdown smaller than this is not called, however significant (docs/nightly.md)
CONFIDENCE = 0.95
POWER = 0.80  # the minimum detectable effect is the slowdown found this often
MIN_REPETITIONS = 5  # below this a rank test cannot reach ALPHA: 1/C(2R, R) > 0.01 for R = 4
EARLY_NOISE = 0.03  # the night-to-night SD (log) assumed while fewer than MIN_NIGHTS earlier nights are known
NOISE_FLOOR = 0.005  # the least night-to-night SD (log) a verdict assumes, and all it assumes before MIN_NIGHTS
MIN_NIGHTS = 3  # earlier nights a series needs before its own night-to-night noise is used
HISTORY_NIGHTS = 10  # the nights a series' night-to-night noise is measured over
VOUCHED = 4  # past this many times a night's R, what more repetitions buy is extrapolated, not measured: no R
# is named beyond it (checked to 4× by simulation, tests/test_regression.py; to 3× on real nights, docs/nightly.md)
# A night's level: this quantile of its repetition levels; 0, the fastest repetition (docs/nightly.md).
# What disturbs a device from outside (a neighbour, a background job) only ever slows a repetition, and
# on a shared machine it slows a few of a night's repetitions by 30-80%, sometimes half of them: the
# median moves with them, the fast end does not. A real slowdown moves every repetition, the fastest too.
# Measured (benchmarks/regression_calibration.py, 16 nights, on repetition medians): quantile 0.5 (the
# median) 3.8% of injected 5% slowdowns found, 0.1 16%, 0 18%, with 0, 2 and 0 false alarms in 130 A/A
# series-nights.
NIGHT_QUANTILE = 0.0
# A repetition's level: this quantile of its invokes (docs/nightly.md). The same one-sided interference
# slows some invokes inside a repetition (a neighbour's burst lasts milliseconds to seconds); the fast end
# of a repetition's invokes is what its process measured undisturbed, and a real slowdown moves it too.
# Measured (benchmarks/regression_calibration.py, the same 16 nights, each night's fastest repetition):
# the repetition's median found 31.5% of injected 5% slowdowns, its 25th percentile 48%, its 10th 64%
# (and the real ×1.05 model 58%, 73%, 96%), with no false alarm in 130 A/A series-nights for any.
REPETITION_QUANTILE = 0.1
# A night's level from repetition levels each divided by its round's device shift (compare: the device's
# other series measured in the same round, minutes apart): their median. What slows a whole round (a
# neighbour's burst, the host's memory system for a while) is divided out with the round, so the fast
# end no longer has to dodge it, and the median of paired levels wanders less than their fastest. What
# slows most of one job's repetitions moves the median, so compare's verdict on it stands only where the
# night's shift alone corroborates it; so judged, three kept calibrations found 208 of 530 injected 5%
# slowdowns against 164 on the fastest repetition, with 3 false alarms either way (docs/nightly.md).
PAIRED_QUANTILE = 0.5


def over(ratio: float) -> str:
    """A ratio as the percentage it is above 1, to three significant digits: 1.05 → "5%", 1.0001 → "0.01%"."""
    return f"{(ratio - 1) * 100:.3g}%"


VERDICTS = ("slower", "environment", "faster", "same", "inconclusive", "bimodal", "throttled", "fallback",
            "not comparable")  # fmt: skip


def rank_p(before: Sequence[float], after: Sequence[float], alternative: str) -> float:
    """One-sided Mann-Whitney U p-value that `after` is greater ("greater": slower) or less than
    `before`; exact where scipy can be, NaN with fewer than two on a side."""
    from scipy import stats  # noqa: PLC0415 - see the module's docstring

    if len(before) < 2 or len(after) < 2:
        return math.nan
    return float(stats.mannwhitneyu(after, before, alternative=alternative).pvalue)


def min_p(n_before: int, n_after: int) -> float:
    """The smallest one-sided p a rank test on these sample sizes can give: 1 / C(m + n, m)."""
    return 1.0 / math.comb(n_before + n_after, n_before) if n_before and n_after else 1.0


def bh_adjust(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q-values), NaN kept as NaN and left out of the count."""
    from scipy import stats  # noqa: PLC0415 - see the module's docstring

    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, math.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = stats.false_discovery_control(p[ok], method="bh")
    return [float(v) for v in out]


def bimodal(values: Sequence[float]) -> bool:
    """Two tight groups of repetitions with a clear gap between them: the largest gap between sorted
    repetition levels is over 3% of the median and over three times the wider group's range, and
    each group holds at least two repetitions and a fifth of them."""
    x = np.sort(np.asarray(values, np.float64))
    if len(x) < 4:
        return False
    gaps = np.diff(x)
    cut = int(np.argmax(gaps)) + 1
    low, high = x[:cut], x[cut:]
    if min(len(low), len(high)) < max(2, math.ceil(0.2 * len(x))):
        return False
    spread = max(float(np.ptp(low)), float(np.ptp(high)))
    return bool(gaps[cut - 1] > 0.03 * float(np.median(x)) and gaps[cut - 1] > 3 * spread)


def repetition_level(samples: Sequence[float] | np.ndarray) -> float:
    """One repetition's level from its invokes' latencies: their REPETITION_QUANTILE quantile (NaN for none)."""
    return float(np.quantile(samples, REPETITION_QUANTILE)) if len(samples) else math.nan


def night_level(values: Sequence[float], quantile: float = NIGHT_QUANTILE) -> float:
    """A night's level from its repetition levels: their NIGHT_QUANTILE quantile (NaN for none); of
    repetition levels paired with their rounds' device shift, PAIRED_QUANTILE."""
    return float(np.quantile(values, quantile)) if len(values) else math.nan


@dataclass(frozen=True)
class NightNoise:
    """How much a series' night level wanders from night to night (log scale), and on how many nights
    that is known. Process-level noise inside a night is part of it; so is whatever else changes
    between nights on a device (its thermal state, other processes, a shared host's neighbours)."""

    sd: float
    nights: int
    floor: float = NOISE_FLOOR

    @property
    def known(self) -> bool:
        return self.nights >= MIN_NIGHTS and math.isfinite(self.sd)

    @property
    def used(self) -> float:
        """The SD the verdict uses: never below the floor; EARLY_NOISE while fewer than MIN_NIGHTS are known."""
        return max(self.sd, self.floor) if self.known else max(EARLY_NOISE, self.floor)

    @property
    def df(self) -> int:
        return self.nights - 1 if self.nights >= MIN_NIGHTS else MIN_NIGHTS - 1


def night_noise(night_levels: Sequence[float], floor: float = NOISE_FLOOR) -> NightNoise:
    """From earlier nights' levels (each `night_level` of that night's repetition levels)."""
    x = np.log(np.asarray(night_levels, np.float64))
    sd = float(np.std(x, ddof=1)) if len(x) >= 2 else math.nan
    return NightNoise(sd, len(x), floor)


@dataclass(frozen=True)
class NightRatio:
    """Tonight's level ÷ the baseline nights' (geometric mean of their levels), with a CI that holds
    night-to-night noise: a prediction interval with the noise's degrees of freedom."""

    estimate: float
    low: float
    high: float
    se: float


def night_ratio(baseline_night_levels: Sequence[float], tonight: Sequence[float], noise: NightNoise,
                confidence: float = CONFIDENCE, quantile: float = NIGHT_QUANTILE) -> NightRatio:  # fmt: skip
    """`tonight`: its repetition levels (its level, their `quantile`, is taken here)."""
    from scipy import stats  # noqa: PLC0415 - see the module's docstring

    base = float(np.mean(np.log(baseline_night_levels)))
    d = float(np.log(night_level(tonight, quantile))) - base
    se = noise.used * math.sqrt(1 + 1 / len(baseline_night_levels))
    t = float(stats.t.ppf(0.5 + confidence / 2, noise.df))
    return NightRatio(math.exp(d), math.exp(d - t * se), math.exp(d + t * se), se)


@dataclass(frozen=True)
class Detectable:
    """The smallest slowdown (a ratio) a verdict calls `slower` with POWER, and the repetitions that
    would bring it down to a target: None where no number of repetitions can (the night-to-night
    noise alone is too large: `note` says so)."""

    ratio: float
    repetitions_for_target: int | None
    note: str = ""


def _smallest(se: float, df: int, threshold: float, alpha: float, power: float) -> float:
    """The true ratio called slower with `power`: its night test reaches alpha, and its estimate the threshold."""
    from scipy import stats  # noqa: PLC0415 - see the module's docstring

    z_power = float(stats.t.ppf(power, df))
    significant = math.exp((float(stats.t.ppf(1 - alpha, df)) + z_power) * se)
    large = threshold * math.exp(z_power * se)
    return max(significant, large)


def _order_stat_var(log_levels: np.ndarray, m: int, quantile: float = 0.0) -> float:
    """Variance of the k-th smallest of m draws (with replacement) from these values, k = 1 + ⌊quantile
    (m − 1)⌋ (the smallest for quantile 0, the lower middle for 0.5), exactly: the k-th smallest drawn
    is at or below the i-th smallest of n when k or more of the m draws are, a binomial tail."""
    from scipy import stats  # noqa: PLC0415 - see the module's docstring

    x = np.sort(log_levels)
    n = len(x)
    k = 1 + math.floor(quantile * (m - 1))
    at_or_below = np.concatenate([[0.0], stats.binom.sf(k - 1, m, np.arange(1, n + 1) / n)])
    p = np.diff(at_or_below)
    mean = float(p @ x)
    return max(float(p @ (x - mean) ** 2), 0.0)


def level_sampling(nights: Sequence[Sequence[float]], quantile: float = NIGHT_QUANTILE) -> Callable[[int], float]:
    """How much a night's level (the fastest of R repetition levels: NIGHT_QUANTILE 0; their lower middle
    for PAIRED_QUANTILE) wanders with which
    repetitions the night happened to draw, the night itself unchanged, as a function of R: the SD (log)
    of that order statistic of R draws from one night's repetition levels, averaged (as a variance) over
    `nights`. Each night is its own sample, so nothing between nights enters. Beyond the repetitions a
    night has (r), the variance is carried on as the power of R it falls with from r/2 to r (at most
    1/R², an edge the levels pile up against; checked against simulated and real nights: tests,
    docs/nightly.md). NaN where no night has 4 or more levels."""
    have = [np.log(np.asarray(night, np.float64)) for night in nights if len(night) >= 4]
    if not have:
        return lambda repetitions: math.nan
    r = min(len(x) for x in have)

    def var(m: int) -> float:
        return float(np.mean([_order_stat_var(x, m, quantile) for x in have]))

    at_r, at_half = var(r), var(r // 2)
    power = min(max(math.log(at_half / at_r) / math.log(r / (r // 2)), 0.0), 2.0) if at_r > 0 else 2.0

    def sd(repetitions: int) -> float:
        if repetitions < 1:
            return math.nan
        return math.sqrt(var(repetitions) if repetitions <= r else at_r * (r / repetitions) ** power)

    return sd


def level_sampling_sd(nights: Sequence[Sequence[float]], repetitions: int, quantile: float = NIGHT_QUANTILE) -> float:
    """`level_sampling(nights, quantile)` at `repetitions`."""
    return level_sampling(nights, quantile)(repetitions)


def minimum_detectable(noise: NightNoise, nights: Sequence[Sequence[float]], repetitions: int, baseline_nights: int,
                       target: float = 1.05, threshold: float = THRESHOLD, alpha: float = ALPHA,
                       power: float = POWER, quantile: float = NIGHT_QUANTILE) -> Detectable:  # fmt: skip
    """From the night-to-night noise, tonight's repetitions and the baseline nights. `nights`: repetition
    levels of nights of the series (tonight's and its baseline's), from which `level_sampling_sd` says how
    much of the night noise is which repetitions a night drew (more repetitions shrink it) and how much
    is the nights themselves (they cannot): the R that would bring the detectable slowdown down to
    `target`, or that none can."""
    if min_p(repetitions, repetitions * baseline_nights) > alpha:
        return Detectable(
            math.inf, None, f"{repetitions} repetitions cannot reach p ≤ {alpha:g} (use {MIN_REPETITIONS}+)"
        )
    inflate = math.sqrt(1 + 1 / baseline_nights)
    ratio = _smallest(noise.used * inflate, noise.df, threshold, alpha, power)
    if ratio <= target:
        return Detectable(ratio, repetitions)
    if not noise.known:  # an assumed noise cannot be split into what repetitions buy and what they do not
        return Detectable(ratio, None, f"night-to-night noise assumed {noise.used:.0%} until {MIN_NIGHTS} earlier"
                                       " nights are known: what repetitions would buy is said then")  # fmt: skip
    if _smallest(noise.floor * inflate, noise.df, threshold, alpha, power) > target:
        why = (f"with {noise.nights} earlier nights known the night test cannot find {over(target)} at any noise:"
               " more nights of history will, more repetitions cannot")  # fmt: skip
        return Detectable(ratio, None, why)
    draw = level_sampling(nights, quantile)
    sampling = draw(repetitions)
    night_only = max(noise.used**2 - (sampling**2 if math.isfinite(sampling) else 0.0), noise.floor**2)

    def reaches(r: int) -> bool:
        sd = math.sqrt(night_only + draw(r) ** 2)
        return _smallest(sd * inflate, noise.df, threshold, alpha, power) <= target

    if not math.isfinite(sampling) or not reaches(10_000):
        why = (f"night-to-night noise {100 * math.sqrt(night_only):.1f}% alone keeps the detectable slowdown above"
               f" {over(target)}: more repetitions cannot help")  # fmt: skip
        return Detectable(ratio, None, why)
    need = repetitions
    while need < 10_000 and not reaches(need):
        need = math.ceil(need * 1.25)
    if need > VOUCHED * repetitions:  # the draw's part past that is carried on, not measured: no R is named
        return Detectable(ratio, None, f"more than {VOUCHED * repetitions} repetitions, if any: what R buys past"
                                       f" {VOUCHED}× tonight's is carried on, not measured; a few nights at"
                                       f" R = {VOUCHED * repetitions} would say")  # fmt: skip
    return Detectable(ratio, need)


@dataclass(frozen=True)
class Test:
    """One series' numbers, before Benjamini-Hochberg across the night: the night ratio, and one-sided
    p-values of the night test (t, from the night-to-night noise) and of the rank test on the nights'
    faster halves of repetition levels."""

    ratio: NightRatio
    p_slower: float
    p_faster: float
    p_rep_slower: float
    p_rep_faster: float


def faster_half(values: Sequence[float]) -> list[float]:
    """A night's faster half of its repetition levels: the half that interference (which only slows) is
    least likely to have hit; a real slowdown moves it all."""
    return sorted(values)[: math.ceil(len(values) / 2)]


def rank_sets(before_nights: Sequence[Sequence[float]], after: Sequence[float],
              alpha: float = ALPHA) -> tuple[list[float], list[float]]:  # fmt: skip
    """What the rank test compares: each night's faster half, pooled (baseline) and tonight's, where
    those can reach p ≤ alpha at all; else every repetition level (one baseline night of few repetitions)."""
    fast_before = [m for night in before_nights for m in faster_half(night)]
    fast_after = faster_half(after)
    if min_p(len(fast_before), len(fast_after)) <= alpha:
        return fast_before, fast_after
    return [m for night in before_nights for m in night], list(after)


def test(before_nights: Sequence[Sequence[float]], after: Sequence[float], baseline_night_levels: Sequence[float],
         noise: NightNoise, alpha: float = ALPHA, quantile: float = NIGHT_QUANTILE) -> Test:  # fmt: skip
    """`before_nights`: each baseline night's repetition levels; `after`: tonight's (its level their
    `quantile`); the rank test on what `rank_sets` picks of them."""
    from scipy import stats  # noqa: PLC0415 - see the module's docstring

    ratio = night_ratio(baseline_night_levels, after, noise, quantile=quantile)
    before, after_ranked = rank_sets(before_nights, after, alpha)
    t = math.log(ratio.estimate) / ratio.se
    return Test(ratio, float(stats.t.sf(t, noise.df)), float(stats.t.cdf(t, noise.df)),
                rank_p(before, after_ranked, "greater"), rank_p(before, after_ranked, "less"))  # fmt: skip


def verdict(t: Test, q_slower: float, q_faster: float, threshold: float = THRESHOLD,
            alpha: float = ALPHA, q: float = FDR_Q) -> tuple[str, str]:  # fmt: skip
    """(verdict, why) for one comparable series. Slower: significant (the night test's p ≤ alpha and its
    Benjamini-Hochberg q ≤ q across the night, and tonight's repetitions above the baseline's by the rank
    test) **and** large (the ratio at or above the threshold). Faster is the mirror image; same is a CI
    inside ±threshold."""
    r = t.ratio
    shown = f"×{r.estimate:.3f} [{r.low:.3f}, {r.high:.3f}]"
    if t.p_slower <= alpha and q_slower <= q and t.p_rep_slower <= alpha and r.estimate >= threshold:
        return "slower", f"{shown}, p={t.p_slower:.2g}, q={q_slower:.2g}"
    if t.p_faster <= alpha and q_faster <= q and t.p_rep_faster <= alpha and r.estimate <= 1 / threshold:
        return "faster", f"{shown}, p={t.p_faster:.2g}, q={q_faster:.2g}"
    if 1 / threshold < r.low and r.high < threshold:
        return "same", f"{shown} within ±{over(threshold)}"
    if t.p_slower <= alpha and r.estimate < threshold:
        return "same", f"{shown}: significant, but under the {over(threshold)} threshold"
    return "inconclusive", f"{shown}: {_short_of(t, q_slower, q_faster, threshold, alpha, q)}"


def _short_of(t: Test, q_slower: float, q_faster: float, threshold: float, alpha: float, q: float) -> str:
    """Why an inconclusive series is not called: the first condition of `verdict` it misses, on the side
    its ratio points to (a night test whose p and q pass but whose repetitions do not rank apart reads
    differently from one the night-to-night noise hides)."""
    slower = t.ratio.estimate >= 1
    p, q_night, p_rep = (t.p_slower, q_slower, t.p_rep_slower) if slower else (t.p_faster, q_faster, t.p_rep_faster)
    if p > alpha or not math.isfinite(p):
        return "not shown either way at this night-to-night noise"
    if q_night > q:
        return (f"p={p:.2g} alone, but q={q_night:.2g} > {q:g} across the night's series (Benjamini-Hochberg):"
                " one of many series tested")  # fmt: skip
    if not p_rep <= alpha:
        side = "above" if slower else "below"
        return (f"the night test shows it (p={p:.2g}, q={q_night:.2g}), but tonight's repetitions do not rank"
                f" {side} the baseline's (rank test p={p_rep:.2g} > {alpha:g}): one night's fastest repetition,"
                " not its repetitions")  # fmt: skip
    return f"faster by less than the {over(threshold)} threshold"  # slower by less is `same`, above
