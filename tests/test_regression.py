"""The nightly verdict's statistics (embench.regression, embench.history, embench.compare), checked
against their definitions, scipy, and simulation with known truth."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
from scipy import stats

from embench import compare as compare_module
from embench import regression as rg
from embench.compare import Comparison, compare, definition_differs, repetition_levels, repetition_medians, what_changed
from embench.history import Point, change_points
from embench.report import verdicts
from embench.store import StoredResult
from embench_agent.protocol import (
    DelegateSpec,
    Delegation,
    DeviceFacts,
    Job,
    ModelRef,
    Repetition,
    Result,
    RunSpec,
    RuntimeInfo,
)


def test_rank_p_against_exact_enumeration() -> None:
    # three after, all above three before: one arrangement of C(6, 3) = 20 is at least this extreme
    assert rg.rank_p([1, 2, 3], [4, 5, 6], "greater") == pytest.approx(1 / 20)
    assert rg.rank_p([1, 2, 3], [4, 5, 6], "less") == pytest.approx(1.0)
    assert rg.min_p(3, 3) == pytest.approx(1 / 20) and rg.min_p(10, 10) == pytest.approx(1 / 184756)
    assert math.isnan(rg.rank_p([1.0], [2.0, 3.0], "greater"))
    # R = 4 on each side cannot reach α = 0.01: why MIN_REPETITIONS is 5
    assert rg.min_p(4, 4) > rg.ALPHA >= rg.min_p(rg.MIN_REPETITIONS, rg.MIN_REPETITIONS)
    rng = np.random.default_rng(1)
    a, b = rng.normal(10, 1, 12), rng.normal(10.8, 1, 9)
    assert rg.rank_p(a, b, "greater") == pytest.approx(stats.mannwhitneyu(b, a, alternative="greater").pvalue)


def test_benjamini_hochberg_is_the_step_up_definition() -> None:
    rng = np.random.default_rng(2)
    p = [*list(rng.uniform(0, 0.2, 30)), math.nan]
    q = rg.bh_adjust(p)
    assert math.isnan(q[-1])
    ps = np.array(p[:-1])
    m, order = len(ps), np.argsort(ps)
    expected = np.empty(m)
    running = 1.0
    for rank in range(m, 0, -1):  # q_(i) = min over j ≥ i of p_(j) · m / j
        i = order[rank - 1]
        running = min(running, ps[i] * m / rank)
        expected[i] = running
    assert np.allclose(q[:-1], expected)


def test_night_ratio_is_a_prediction_interval_that_covers() -> None:
    """Tonight's median against 3 baseline nights, with night-to-night noise measured on 10 earlier nights:
    the 95% interval covers the true ratio about 95% of the time (t with the noise's 9 degrees of freedom)."""
    rng = np.random.default_rng(3)
    hits, true = 0, 1.07
    for _ in range(800):
        history = list(np.exp(rng.normal(0, 0.02, 10)))
        noise = rg.night_noise(history)
        tonight = list(true * np.exp(rng.normal(0, 0.02, 1)) * np.exp(rng.normal(0, 0.001, 10)))
        r = rg.night_ratio(history[-3:], tonight, noise)
        hits += r.low <= true <= r.high
    assert 0.92 <= hits / 800 <= 0.98
    early = rg.night_noise([1.0, 1.01])  # two nights: not enough to measure; a cautious guess and a wide t
    assert early.used == rg.EARLY_NOISE and early.df == rg.MIN_NIGHTS - 1
    assert rg.night_noise([1.0, 1.0, 1.0, 1.0]).used == rg.NOISE_FLOOR  # never below the floor


def _nights(rng: np.random.Generator, n: int, sd: float, shift: float = 1.0) -> list[list[float]]:
    """n nights of 10 repetition levels: each night wanders by `sd`, repetitions by 0.5% inside it."""
    return [list(shift * math.exp(rng.normal(0, sd)) * np.exp(rng.normal(0, 0.005, 10))) for _ in range(n)]


def _call(history: list[list[float]], tonight: list[float], quantile: float = rg.NIGHT_QUANTILE) -> str:
    base = history[-3:]
    noise = rg.night_noise([rg.night_level(n, quantile) for n in history])
    t = rg.test(base, tonight, [rg.night_level(n, quantile) for n in base], noise, quantile=quantile)
    return rg.verdict(t, t.p_slower, t.p_faster)[0]


def test_simulated_nights_false_alarms_and_detection() -> None:
    """Ten earlier nights whose medians wander by 0.8% from night to night, tonight R = 10: an unchanged
    series is called slower in at most 1% of nights, a 5% slowdown in at least 95%."""
    rng = np.random.default_rng(4)
    trials, false, found = 1000, 0, 0
    for _ in range(trials):
        history = _nights(rng, 10, 0.008)
        false += _call(history, _nights(rng, 1, 0.008)[0]) == "slower"
        found += _call(history, _nights(rng, 1, 0.008, 1.05)[0]) == "slower"
    assert false / trials <= 0.01
    assert found / trials >= 0.95


def _bursty(rng: np.random.Generator, n: int, shift: float = 1.0) -> list[list[float]]:
    """n nights of 10 repetition levels as a shared machine gives them (benchmarks/regression_calibration.py,
    2026-12-06): nights agree to 0.5%, repetitions to 0.5%, and something outside slows a random 0 to 5
    repetitions of a night by ×1.3 to ×1.8 (it never speeds one up)."""
    out = []
    for _ in range(n):
        night = shift * math.exp(rng.normal(0, 0.005)) * np.exp(rng.normal(0, 0.005, 10))
        hit = rng.choice(10, size=rng.integers(0, 6), replace=False)
        night[hit] *= rng.uniform(1.3, 1.8, len(hit))
        out.append(list(night))
    return out


@pytest.mark.parametrize("quantile, holds", [(rg.NIGHT_QUANTILE, True), (0.5, False)])
def test_bursts_on_a_few_repetitions_move_the_median_not_the_fastest(quantile: float, holds: bool) -> None:
    """With bursts that slow up to half of a night's repetitions, a night's fastest repetition stays where
    the device is: no more than 1% false alarms and a 5% slowdown found in at least 95% of nights. Its
    median wanders with the bursts, and the same verdict on it finds far less (unless each repetition is
    first divided by its round's device shift, which divides the bursts out: compare's paired levels)."""
    rng = np.random.default_rng(11)
    trials, false, found = 400, 0, 0
    for _ in range(trials):
        history = _bursty(rng, 10)
        false += _call(history, _bursty(rng, 1)[0], quantile) == "slower"
        found += _call(history, _bursty(rng, 1, 1.05)[0], quantile) == "slower"
    assert false / trials <= 0.01
    assert (found / trials >= 0.95) is holds, found / trials


def _invoked(rng: np.random.Generator, n: int, shift: float = 1.0) -> list[list[np.ndarray]]:
    """n nights of 10 repetitions of 60 invokes as a shared machine gives them (benchmarks/regression_calibration.py,
    2026-12-06): nights agree to 0.5%, repetitions to 0.5%, invokes jitter by 1%; and a neighbour busy for a
    share of the night (none to 80%) slows about as many of each repetition's invokes by ×1.3 to ×1.8."""
    out = []
    for _ in range(n):
        level, busy = shift * math.exp(rng.normal(0, 0.005)), rng.uniform(0, 0.8)
        night = []
        for _ in range(10):
            invokes = level * math.exp(rng.normal(0, 0.005)) * np.exp(rng.normal(0, 0.01, 60))
            hit = rng.random(60) < busy * rng.uniform(0.5, 1.0)
            invokes[hit] *= rng.uniform(1.3, 1.8, int(hit.sum()))
            night.append(invokes)
        out.append(night)
    return out


@pytest.mark.parametrize("quantile, holds", [(rg.REPETITION_QUANTILE, True), (0.5, False)])
def test_bursts_inside_repetitions_move_their_median_not_their_fast_end(
    quantile: float, holds: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A burst that slows part of a repetition's invokes moves the repetition's median, and with it the
    night's fastest repetition; the fast end of each repetition's invokes stays where the device is: no
    more than 1% false alarms and a 5% slowdown found in at least 95% of nights on it, far less on the median."""
    monkeypatch.setattr(rg, "REPETITION_QUANTILE", quantile)
    rng = np.random.default_rng(5)

    def levels(nights: list[list[np.ndarray]]) -> list[list[float]]:
        return [[rg.repetition_level(rep) for rep in night] for night in nights]

    trials, false, found = 400, 0, 0
    for _ in range(trials):
        history = levels(_invoked(rng, 10))
        false += _call(history, levels(_invoked(rng, 1))[0]) == "slower"
        found += _call(history, levels(_invoked(rng, 1, 1.05))[0]) == "slower"
    assert false / trials <= 0.01
    assert (found / trials >= 0.95) is holds, found / trials


def test_repetition_level_noise_alone_would_cry_wolf() -> None:
    """Why the verdict measures night-to-night noise: nights that wander by 2% while repetitions agree to
    0.5% make a rank test on repetition levels significant on most unchanged nights; the night ratio's
    interval does not call them slower."""
    rng = np.random.default_rng(8)
    rank_only = calls = 0
    trials = 1500  # the night test's false-alarm rate is alpha (1%) by design: enough nights to tell 1% from 2%
    for _ in range(trials):
        history = _nights(rng, 10, 0.02)
        tonight = _nights(rng, 1, 0.02)[0]
        before = [m for n in history[-3:] for m in n]
        rank_only += (
            rg.rank_p(before, tonight, "greater") <= rg.ALPHA and np.median(tonight) / np.median(before) >= 1.03
        )
        calls += _call(history, tonight) == "slower"
    assert rank_only / trials > 0.05 and calls / trials <= 0.0125


def test_minimum_detectable_effect_is_found_with_its_power() -> None:
    """Simulated with the noise as the verdict measured it: the slowdown it calls detectable is called
    slower about 80% of the time (the power it promises)."""
    rng = np.random.default_rng(5)
    sd = 0.012
    history = _nights(rng, 10, sd)
    noise = rg.night_noise([rg.night_level(n) for n in history])
    mde = rg.minimum_detectable(noise, history[-4:], 10, 3, target=1.2)
    assert rg.THRESHOLD < mde.ratio < 1.2 and mde.repetitions_for_target == 10  # already there
    hits = 0
    for _ in range(500):  # nights that wander as much as the verdict measured
        base = [list(math.exp(rng.normal(0, noise.used)) * np.exp(rng.normal(0, 0.005, 10))) for _ in range(3)]
        tonight = list(mde.ratio * math.exp(rng.normal(0, noise.used)) * np.exp(rng.normal(0, 0.005, 10)))
        t = rg.test(base, tonight, [rg.night_level(n) for n in base], noise)
        hits += rg.verdict(t, t.p_slower, t.p_faster)[0] == "slower"
    assert 0.65 <= hits / 500 <= 0.95


def _skewed_nights(rng: np.random.Generator, n: int, repetitions: int, night_sd: float,
                   spread: float = 0.06) -> list[list[float]]:  # fmt: skip
    """Nights whose repetitions land well above the fast end now and then (a process's memory layout, a
    neighbour): log levels |N(0, spread)| above it, so the fastest of a night depends on which it drew."""
    return [list(math.exp(rng.normal(0, night_sd)) * np.exp(np.abs(rng.normal(0, spread, repetitions))))
            for _ in range(n)]  # fmt: skip


def test_level_sampling_sd_is_the_fastest_repetitions_own_spread() -> None:
    """Against simulation: from four nights of 10 repetitions, the SD of the fastest of R levels
    (R = 5, 10, and carried on to 20 and 40) matches the SD of the fastest of R over many simulated
    nights; a night effect does not enter it."""
    rng = np.random.default_rng(11)
    for r in (5, 10, 20, 40):
        simulated = np.std([math.log(min(night)) for night in _skewed_nights(rng, 3000, r, 0.0)], ddof=1)
        said = np.median([rg.level_sampling_sd(_skewed_nights(rng, 4, 10, 0.0), r) for _ in range(100)])
        if r <= 10:
            assert said == pytest.approx(simulated, rel=0.25)
        else:  # carried on past the nights' own R: never far below (that would promise too much), at most 1.5×
            assert 0.85 * simulated <= said <= 1.5 * simulated
    nights = _skewed_nights(rng, 4, 10, 0.0)
    assert rg.level_sampling_sd([[v * 1.2 for v in n] if i % 2 else n for i, n in enumerate(nights)], 10) == (
        pytest.approx(rg.level_sampling_sd(nights, 10))
    )
    assert rg.level_sampling_sd(nights, 30) < rg.level_sampling_sd(nights, 10) < rg.level_sampling_sd(nights, 5)
    assert math.isnan(rg.level_sampling_sd([[1.0, 1.1]], 10))  # too few levels to say


def test_level_sampling_sd_of_the_median_of_paired_levels() -> None:
    """For the level of paired repetitions (their median, PAIRED_QUANTILE): from four nights of 10 levels,
    the SD of the median of R matches simulation within 25% up to R = 10 and is never far below it past
    that; the smallest of R is the old closed form ((n−i)/n)^m − ((n−i−1)/n)^m."""
    rng = np.random.default_rng(12)
    for r in (5, 10, 20, 40):
        simulated = np.std([math.log(float(np.quantile(rng.lognormal(0, 0.02, r), rg.PAIRED_QUANTILE)))
                            for _ in range(3000)], ddof=1)  # fmt: skip
        said = np.median([rg.level_sampling_sd([list(rng.lognormal(0, 0.02, 10)) for _ in range(4)], r,
                                               rg.PAIRED_QUANTILE) for _ in range(100)])  # fmt: skip
        if r <= 10:
            assert said == pytest.approx(simulated, rel=0.25), r
        else:
            assert 0.85 * simulated <= said <= 1.5 * simulated, r
    x = np.sort(rng.normal(0, 1, 7))
    above = ((7 - np.arange(8)) / 7) ** 10
    p = above[:-1] - above[1:]
    assert rg._order_stat_var(x, 10) == pytest.approx(float(p @ (x - p @ x) ** 2))


def test_what_repetitions_can_and_cannot_buy() -> None:
    rng = np.random.default_rng(3)
    # nights that wander 4% with repetitions tight inside each: the advice says more cannot help
    loud = _nights(rng, 10, 0.04)
    advice = rg.minimum_detectable(rg.night_noise([rg.night_level(n) for n in loud]), loud[-4:], 10, 3, target=1.05)
    assert advice.repetitions_for_target is None and "more repetitions cannot help" in advice.note
    # night noise that is which repetitions a night drew: the R given is found by simulation to reach the target
    history = _skewed_nights(rng, 10, 10, 0.002, spread=0.15)
    noise = rg.night_noise([rg.night_level(n) for n in history])
    helped = rg.minimum_detectable(noise, history[-4:], 10, 3, target=1.05)
    need = helped.repetitions_for_target
    assert helped.ratio > 1.05 and need is not None and need > 10
    # nights of that many repetitions: their noise, measured
    at_need = _skewed_nights(rng, 400, need, 0.002, spread=0.15)
    measured = rg.night_noise([rg.night_level(n) for n in at_need])
    assert rg.minimum_detectable(rg.NightNoise(measured.sd, noise.nights), at_need[:4], need, 3,
                                 target=1.05).ratio <= 1.05 * 1.01  # fmt: skip
    assert math.isinf(rg.minimum_detectable(noise, history, 2, 1).ratio)  # a rank test on 2 + 2 cannot reach α
    # too few nights known: an assumed noise is not split, and no R is named for it
    early = rg.minimum_detectable(rg.night_noise([rg.night_level(n) for n in history[:2]]), history[:2], 10, 2)
    assert early.repetitions_for_target is None and "assumed 3% until 3 earlier nights" in early.note
    # 3 nights known (t with 2 degrees of freedom): even at the noise floor 4% is out of reach; nights, not R, help
    tight = rg.minimum_detectable(rg.NightNoise(0.004, 3), history[:4], 10, 3, target=1.04)
    assert tight.repetitions_for_target is None and "more nights of history will" in tight.note
    # all of it the draw, but so wide that only far more repetitions than tonight's could reach 5%: past 4× R
    # what they buy is extrapolated, so no R is named (it once said R = 3153 for a 2-thread series at R = 10)
    wide = _skewed_nights(np.random.default_rng(7), 4, 10, 0.0, spread=0.6)
    far = rg.minimum_detectable(rg.NightNoise(rg.level_sampling_sd(wide, 10), 10), wide, 10, 3, target=1.05)
    assert far.repetitions_for_target is None and far.ratio > 1.05
    assert "more than 40 repetitions" in far.note and "a few nights at R = 40 would say" in far.note


def test_an_inconclusive_verdict_names_the_condition_it_missed() -> None:
    """Each condition of a `slower` verdict, missed alone, is what the why says (a night test that passes
    but repetitions that do not rank apart is not 'not shown at this noise')."""
    ratio = rg.NightRatio(1.049, 1.027, 1.071, 0.008)

    def why(p: float, q: float, p_rep: float, r: rg.NightRatio = ratio) -> tuple[str, str]:
        return rg.verdict(rg.Test(r, p, 1 - p, p_rep, 1 - p_rep), q, 1.0)

    assert why(0.0003, 0.003, 0.001)[0] == "slower"
    verdict, text = why(0.0003, 0.003, 0.04)
    assert verdict == "inconclusive" and "do not rank above the baseline's (rank test p=0.04 > 0.01)" in text
    verdict, text = why(0.004, 0.09, 0.001)
    assert verdict == "inconclusive" and "p=0.004 alone, but q=0.09 > 0.05" in text
    verdict, text = why(0.03, 0.09, 0.001)
    assert verdict == "inconclusive" and text.endswith("not shown either way at this night-to-night noise")
    faster = rg.NightRatio(1 / 1.049, 1 / 1.071, 1 / 1.027, 0.008)
    verdict, text = why(0.9997, 1.0, 0.999, faster)  # p_faster 0.0003, its q (1.0 given) fails
    assert verdict == "inconclusive" and "q=1 > 0.05" in text


def test_bimodal() -> None:
    assert rg.bimodal([1.00, 1.01, 1.00, 1.02, 1.20, 1.21, 1.20, 1.19, 1.00, 1.01])
    assert not rg.bimodal(list(np.linspace(1.0, 1.2, 10)))  # spread out, not two groups
    assert not rg.bimodal([1.0, 1.01, 1.0, 1.02, 1.0, 1.01, 1.0, 1.01, 1.0, 1.3])  # one outlier is not a mode


def _points(values: list[float]) -> list[Point]:
    return [Point(f"r{i}", float(i), v, v * 0.99, v * 1.01, 10) for i, v in enumerate(values)]


def test_change_points_find_a_step_and_slow_drift_but_not_noise() -> None:
    rng = np.random.default_rng(6)
    noise = list(np.exp(rng.normal(0, 0.004, 14)))
    assert change_points(_points(noise)) == []
    step = [v * (1.08 if i >= 7 else 1.0) for i, v in enumerate(noise)]
    found = change_points(_points(step))
    assert [s.index for s in found] == [7] and found[0].ratio == pytest.approx(1.08, abs=0.01)
    assert found[0].run_id == "r7"
    drift = [v * 1.012**i for i, v in enumerate(noise)]  # +1.2% a night: no night-to-night jump is large
    assert all(abs(b / a - 1) < 0.03 for a, b in itertools.pairwise(drift))
    assert change_points(_points(drift)), "slow drift of ~17% over 14 nights must show as a change"


# ---------------------------------------------------------------------------- compare on stored results


def _stored(medians: list[float], model_sha: str = "aa", version: str = "1.0", min_seconds: float = 1.0,
            status: str = "ok", job_id: str = "j", model: str = "m", other_cpu: float | None = None) -> StoredResult:  # fmt: skip
    job = Job(job_id=job_id, device="pi5", model=ModelRef(name=model, path="/m", format="tflite", precision="fp32",
              sha256=model_sha), runtime="litert", delegate=DelegateSpec("xnnpack"), threads=1,
              run=RunSpec(min_seconds=min_seconds, repetitions=len(medians)))  # fmt: skip
    samples = [int(m * 1e6) for m in medians for _ in range(3)]
    result = Result(job_id=job_id, status=status, samples_ns=tuple(samples),
                    repetitions=tuple(Repetition(i, 3) for i in range(len(medians))),
                    runtime=RuntimeInfo("litert", "ai-edge-litert", version), delegation=Delegation("xnnpack"),
                    device_facts=DeviceFacts(kernel="6.1"), other_cpu=other_cpu)  # fmt: skip
    return StoredResult(job, result)


def test_repetition_medians_and_levels_split_the_samples() -> None:
    s = _stored([1.0, 2.0, 3.0])
    assert repetition_medians(s.result) == [1.0, 2.0, 3.0] == repetition_levels(s.result)
    one = dataclasses.replace(s.result, repetitions=())
    assert repetition_medians(one) == [2.0]
    # two repetitions of 11 invokes, the second with 6 of them in a burst: its median moves, its level does not
    burst = [1.0 + i / 100 for i in range(11)] + [1.0 + i / 100 for i in range(5)] + [2.0] * 6
    r = dataclasses.replace(s.result, samples_ns=tuple(int(x * 1e6) for x in burst),
                            repetitions=(Repetition(0, 11), Repetition(1, 11)))  # fmt: skip
    assert repetition_medians(r) == [1.05, 2.0]
    assert repetition_levels(r) == pytest.approx([float(np.quantile(burst[:11], rg.REPETITION_QUANTILE))] * 2)
    assert repetition_levels(dataclasses.replace(r, repetitions=())) == pytest.approx([np.quantile(burst, 0.1)])


def _invoked_stored(reps: list[np.ndarray], model_sha: str = "aa") -> StoredResult:
    s = _stored([1.0] * len(reps), model_sha=model_sha)
    samples = tuple(int(x * 1e6) for rep in reps for x in rep)
    return StoredResult(s.job, dataclasses.replace(s.result, samples_ns=samples,
                                                   repetitions=tuple(Repetition(i, len(r)) for i, r in enumerate(reps))))  # fmt: skip


def test_compare_judges_the_fast_end_of_each_repetition() -> None:
    """Tonight 60% of every repetition's invokes are ×1.5 (a neighbour, all night): the medians moved ×1.5,
    the model did not, and it is not called slower; the same series with every invoke ×1.5 is."""
    rng = np.random.default_rng(3)

    def night(factor: float = 1.0, hit: float = 0.0) -> list[np.ndarray]:
        reps = []
        for _ in range(10):
            x = math.exp(rng.normal(0, 0.004)) * np.exp(rng.normal(0, 0.005, 40))
            x[: int(hit * 40)] *= 1.5
            reps.append(factor * x)
        return reps

    history = [[_invoked_stored(night())] for _ in range(8)]
    [busy] = compare(history[-3:], [_invoked_stored(night(hit=0.6))], history=history)
    assert busy.verdict != "slower" and busy.ratio < 1.02, busy.why
    assert np.median(repetition_medians(_invoked_stored(night(hit=0.6)).result)) > 1.4
    [slow] = compare(history[-3:], [_invoked_stored(night(1.5), model_sha="bb")], history=history)
    assert slow.verdict == "slower" and slow.ratio > 1.45, slow.why


def test_what_changed_and_what_makes_series_incomparable() -> None:
    before = _stored([1.0] * 6)
    after = _stored([1.0] * 6, model_sha="bb", version="1.1")
    after = dataclasses.replace(after, result=dataclasses.replace(after.result, device_facts=DeviceFacts(kernel="6.6")))
    changes = what_changed(before, after)
    assert "model checksum aa → bb" in changes and "runtime version 1.0 → 1.1" in changes
    assert "device kernel 6.1 → 6.6" in changes
    other = _stored([1.0] * 6, min_seconds=2.0)
    assert definition_differs(before.job, other.job) == ["min_seconds 1.0 → 2.0"]
    [c] = compare([[before]], [other])
    assert c.verdict == "not comparable" and "min_seconds 1.0 → 2.0" in c.why
    back = dataclasses.replace(before, job=dataclasses.replace(before.job, run=dataclasses.replace(
        before.job.run, order="back-to-back", repetitions=20)))  # fmt: skip
    assert definition_differs(before.job, back.job) == ["order interleaved → back-to-back"]  # repetitions: not


def test_the_order_of_a_single_repetition_is_no_change_of_definition() -> None:
    """One repetition is one process in either order: a lab at R = 1 that upgrades from a store whose jobs
    predate the order (read back as back to back) or flips sweep.run.order keeps its verdicts."""
    one = _stored([1.0])
    old = dataclasses.replace(one, job=Job.from_dict(one.job.to_dict() | {
        "schema": 5, "run": {k: v for k, v in one.job.run.to_dict().items() if k != "order"}}))  # fmt: skip
    assert old.job.run.order == "back-to-back" and one.job.run.order == "interleaved"
    assert definition_differs(old.job, one.job) == [] == definition_differs(one.job, old.job)
    [c] = compare([[old]], [one])
    assert c.verdict != "not comparable", c.why
    ten = _stored([1.0] * 10)
    rounds_to_one = definition_differs(dataclasses.replace(ten, job=dataclasses.replace(ten.job, run=dataclasses.replace(
        ten.job.run, order="back-to-back"))).job, one.job)  # fmt: skip
    assert rounds_to_one == []  # ten back to back → one: the number of repetitions, not the order


def test_a_changed_model_is_called_once_then_judged_against_its_own_nights() -> None:
    """A model file 10% slower from night 12 on: called slower that night with the change named, and on
    the nights after judged against the new file's nights only (judged against a baseline of both files,
    the step was called again nights later with nothing changed, and shown as ×1.05–×1.10 for a week)."""
    rng = np.random.default_rng(5)
    later: list[Comparison] = []
    for _ in range(4):
        runs = []
        for n in range(22):
            level = (1.10 if n >= 12 else 1.0) * math.exp(rng.normal(0, 0.008))
            reps = list(level * np.exp(rng.normal(0, 0.004, 10)))
            runs.append([_stored(reps, model_sha="bb" if n >= 12 else "aa", job_id=f"n{n}")])
        judged = [compare(runs[max(0, n - 10) : n], runs[n], history=runs[:n], own_nights=10)[0] for n in range(12, 22)]
        assert judged[0].verdict == "slower" and judged[0].changes == ("model checksum aa → bb",)
        later += judged[1:]
    assert [c.verdict for c in later if c.verdict in ("slower", "faster")] == []
    assert all(abs(c.ratio - 1) < 0.03 for c in later), [round(c.ratio, 3) for c in later]
    assert "against its 4 nights since its model file or runtime version changed; 6 earlier" in later[3].why
    assert "against its 9 nights since its model file or runtime version changed; 1 earlier" in later[-1].why


def test_a_series_flagged_after_a_build_change_says_which_nights_it_was_held_against() -> None:
    """Flagged before it is compared (fallen back, bimodal), a series whose model changed two nights ago
    says too that its baseline is the new file's two nights; one that is not comparable does not (no
    baseline judged it)."""
    old = [[_stored([1.0] * 10, model_sha="aa", job_id=f"o{n}")] for n in range(3)]
    new = [[_stored([1.1] * 10, model_sha="bb", job_id=f"n{n}")] for n in range(2)]
    note = "(against its 2 nights since its model file or runtime version changed; 3 earlier night(s) ran the old one)"
    [fell] = compare(old + new, [_stored([1.1] * 10, model_sha="bb", status="fallback")])
    assert fell.verdict == "fallback" and fell.why.endswith(note), fell.why
    assert len(fell.before) == 20  # the new file's nights' levels only
    [two] = compare(old + new, [_stored([1.1] * 5 + [1.6] * 5, model_sha="bb")])
    assert two.verdict == "bimodal" and two.why.endswith(note), two.why
    [lost] = compare(old + new, [_stored([1.1] * 10, model_sha="bb", min_seconds=2.0)])
    assert lost.verdict == "not comparable" and "since its model file" not in lost.why, lost.why


def test_a_series_away_for_nights_says_how_old_its_baseline_is() -> None:
    """A board away for repair is judged on its own last nights (nightly's own_nights): its why says its
    baseline ends nights before the others' and how many days before tonight its latest ran; a series
    measured on every night says nothing of it."""
    day = 86400.0

    def at(s: StoredResult, night: int) -> StoredResult:
        return dataclasses.replace(s, result=dataclasses.replace(s.result, started_unix=1.8e9 + night * day))

    rng = np.random.default_rng(3)

    def reps() -> list[float]:
        return list(np.exp(rng.normal(0, 0.004, 10)))

    runs = [[at(_stored(reps(), model="b", job_id=f"b{n}"), n)]
            + ([at(_stored(reps(), model="a", job_id=f"a{n}"), n)] if n < 4 else []) for n in range(6)]  # fmt: skip
    tonight = [at(_stored(reps(), model=m, job_id=f"{m}6"), 16) for m in "ab"]
    by = {c.key[1]: c for c in compare(runs, tonight, own_nights=10)}
    assert by["a"].before_job_id == "a3" and by["a"].verdict != "not comparable", by["a"]
    assert by["a"].why.endswith("(its baseline ends 2 night(s) before the last baseline night: its latest ran 13"
                                " day(s) before tonight)"), by["a"].why  # fmt: skip
    assert by["b"].before_job_id == "b5" and "baseline ends" not in by["b"].why, by["b"].why
    same_day = [
        [dataclasses.replace(s, result=dataclasses.replace(s.result, started_unix=None)) for s in r] for r in runs
    ]
    [a] = [c for c in compare(same_day, tonight, own_nights=10) if c.key[1] == "a"]
    assert a.why.endswith("(its baseline ends 2 night(s) before the last baseline night)"), a.why  # no times known


def test_compare_verdicts_and_flags() -> None:
    rng = np.random.default_rng(7)
    base = [_stored(list(np.exp(rng.normal(0, 0.01, 10))))]
    history = [[_stored(list(math.exp(rng.normal(0, 0.004)) * np.exp(rng.normal(0, 0.005, 10))))] for _ in range(6)]
    [same] = compare(history[-3:], [_stored(list(np.exp(rng.normal(0, 0.005, 10))))], history=history)
    assert same.verdict == "same", same.why
    assert same.noise_nights == 6 and same.night_sd == pytest.approx(rg.NOISE_FLOOR, abs=0.004)
    [slow] = compare([base], [_stored(list(1.5 * np.exp(rng.normal(0, 0.01, 10))), model_sha="bb")])
    assert slow.verdict == "slower" and slow.ratio_low > rg.THRESHOLD and "model checksum aa → bb" in slow.changes
    assert slow.noise_nights == 1 and slow.night_sd == rg.EARLY_NOISE  # one baseline night: the cautious guess
    [fast] = compare([base], [_stored(list(0.6 * np.exp(rng.normal(0, 0.01, 10))))])
    assert fast.verdict == "faster"
    [two] = compare([base], [_stored([1.0, 1.01, 1.0, 1.01, 1.0, 1.3, 1.31, 1.3, 1.31, 1.3])])
    assert two.verdict == "bimodal"
    # a burst on two repetitions of a series that got four times slower: both groups moved, it is slower
    [burst] = compare([base], [_stored([4.0, 4.02, 4.01, 4.0, 4.01, 5.3, 5.31], model_sha="bb")])
    assert burst.verdict == "slower", burst.why
    [quick] = compare([base], [_stored([0.25, 0.251, 0.25, 0.252, 0.25, 0.33, 0.331])])
    assert quick.verdict == "faster", quick.why
    [straddles] = compare([base], [_stored([1.0, 1.01, 1.0, 1.01, 1.0, 4.0, 4.01])])  # one group where it was
    assert straddles.verdict == "bimodal"
    [one] = compare([base], [_stored([1.3])])
    assert one.verdict == "inconclusive" and "repetitions" in one.why
    failed = _stored([], status="crashed")
    [gone] = compare([base], [failed])
    assert gone.verdict == "not comparable" and gone.why.startswith("tonight: crashed")
    [new] = compare([], [base[0]])
    assert new.verdict == "not comparable" and "no baseline" in new.why


def test_a_slow_night_of_the_device_is_not_blamed_on_the_models() -> None:
    """Two kinds of evidence that tonight's slowdown is the device's: other processes took the CPUs during
    the windows (measured beside each timing), or most series at one thread count slowed with nothing
    changed. Either is one `environment` finding, never a regression."""
    rng = np.random.default_rng(9)

    def night(shift: float, other: float | None = 0.02, sha: str = "aa") -> list[StoredResult]:
        return [_stored(list(shift * np.exp(rng.normal(0, 0.005, 10))), model=name, job_id=name, other_cpu=other,
                        model_sha=sha if name == "a" else "aa") for name in ("a", "b", "c", "d")]  # fmt: skip

    history = [night(math.exp(rng.normal(0, 0.004))) for _ in range(6)]
    busy = compare(history[-3:], night(1.6, other=0.48), history=history)
    assert {c.verdict for c in busy} == {"environment"}
    assert "other processes used 48% of the CPUs" in busy[0].why
    everything = compare(history[-3:], night(1.3), history=history)
    assert {c.verdict for c in everything} == {"environment"}
    assert "other series at 1 thread(s) moved ×1.3" in everything[0].why and "against them ×0.9" in everything[0].why
    # one model changed and slowed with it, the others did not move: that is a regression
    tonight = night(1.0)
    tonight[0] = _stored(list(1.3 * np.exp(rng.normal(0, 0.005, 10))), model="a", job_id="a", other_cpu=0.02,
                         model_sha="bb")  # fmt: skip
    verdicts = {c.key[1]: c.verdict for c in compare(history[-3:], tonight, history=history)}
    assert verdicts == {"a": "slower", "b": "same", "c": "same", "d": "same"}
    # ... and so it is on a night the whole device was slow too: against the others it is still ×1.3
    tonight = night(1.3)
    tonight[0] = _stored(list(1.69 * np.exp(rng.normal(0, 0.005, 10))), model="a", job_id="a", other_cpu=0.02,
                         model_sha="bb")  # fmt: skip
    judged = {c.key[1]: c for c in compare(history[-3:], tonight, history=history)}
    assert {k: c.verdict for k, c in judged.items()} == {"a": "slower", "b": "environment", "c": "environment",
                                                         "d": "environment"}  # fmt: skip
    assert 1.25 < judged["a"].ratio < 1.35 and judged["a"].shift == pytest.approx(1.3, rel=0.02)


def test_contended_nights_are_neither_baseline_nor_noise() -> None:
    """Nights when other processes crowded the windows measured them: they are left out of a series' baseline
    and its night-to-night noise, and tonight's contention is judged against the series' quietest night,
    not the last one (two contended nights in a row would otherwise compare as equals)."""
    rng = np.random.default_rng(12)

    def night(shift: float = 1.0, other: float = 0.01) -> list[StoredResult]:
        level = shift * math.exp(rng.normal(0, 0.004))
        return [_stored(list(level * np.exp(rng.normal(0, 0.003, 10))), other_cpu=other)]

    history = [night() for _ in range(6)] + [night(1.25, other=0.5), night(1.3, other=0.5)]
    [again] = compare(history[-3:], night(1.28, other=0.5), history=history)
    assert again.verdict == "environment" and "its quietest earlier night: 1%" in again.why, again.why
    [quiet] = compare(history[-3:], night(), history=history)  # against the one quiet baseline night
    assert quiet.verdict == "same", quiet.why
    assert quiet.noise_nights == 6 and quiet.night_sd < 0.01 and len(quiet.before) == 10
    [slow] = compare(history[-3:], night(1.06), history=history)
    assert slow.verdict == "slower", slow.why


def test_a_device_that_wanders_as_a_whole_still_shows_one_model_slowing() -> None:
    """Nights on which the whole device moves by 10% (a shared host's neighbours, its thermal state) while
    each series' own noise is 0.5%: judged as measured, a 5% slowdown of one model is lost in the night's
    move; against the device's other series it is found in ≥ 95% of nights, and an unchanged night is
    called slower in ≤ 1%."""
    rng = np.random.default_rng(11)
    models = ("a", "b", "c", "d", "e")

    def night(slow: float = 1.0, sha: str = "aa") -> list[StoredResult]:
        device = math.exp(rng.normal(0, 0.10))
        return [_stored(list(device * (slow if m == "a" else 1.0) * math.exp(rng.normal(0, 0.005))
                             * np.exp(rng.normal(0, 0.004, 10))), model=m, job_id=m,
                        model_sha=sha if m == "a" else "aa") for m in models]  # fmt: skip

    false = found = 0
    trials = 100
    for _ in range(trials):
        history = [night() for _ in range(8)]
        same = compare(history[-3:], night(), history=history)
        false += sum(c.verdict == "slower" for c in same)
        slow = {c.key[1]: c for c in compare(history[-3:], night(1.05, sha="bb"), history=history)}
        found += slow["a"].verdict == "slower"
        assert all(c.verdict != "slower" for k, c in slow.items() if k != "a"), slow
    assert false / (trials * len(models)) <= 0.01
    assert found / trials >= 0.95


def _in_order(stored: StoredResult, order: str) -> StoredResult:
    return dataclasses.replace(stored, job=dataclasses.replace(stored.job, run=dataclasses.replace(
        stored.job.run, order=order)))  # fmt: skip


@pytest.mark.parametrize("order", ["interleaved", "back-to-back"])
def test_a_device_that_wanders_within_the_night_is_divided_out_round_by_round(order: str) -> None:
    """A device whose speed wanders by 5% from round to round within a night (and sometimes slows two
    whole rounds by ×1.3–×1.8), each repetition 1.5% of its own: in rounds, each repetition divided by its
    round's move (its device's other series, measured minutes apart) finds a 5% slowdown of one model in
    ≥ 75% of nights (where the night's move alone corroborates it: CORROBORATION), none called slower
    unchanged; the same numbers judged as back-to-back jobs (no rounds to pair: the night's move only)
    find it in under half. Two rounds a burst slowed are the
    device's, not two modes of the series: not `bimodal` in rounds."""
    rng = np.random.default_rng(5)
    models = ("a", "b", "c", "d", "e")

    def night(slow: float = 1.0) -> list[StoredResult]:
        rounds = np.exp(rng.normal(0, 0.05, 10))
        hit = rng.choice(10, size=rng.integers(0, 3), replace=False)
        rounds[hit] *= rng.uniform(1.3, 1.8, len(hit))
        return [_in_order(_stored(list(rounds * (slow if m == "a" else 1.0) * np.exp(rng.normal(0, 0.015, 10))),
                                  model=m, job_id=m), order) for m in models]  # fmt: skip

    false = found = bimodal = 0
    trials = 40
    for _ in range(trials):
        history = [night() for _ in range(10)]
        false += sum(c.verdict == "slower" for c in compare(history, night(), history=history))
        slow = {c.key[1]: c for c in compare(history, night(1.05), history=history)}
        found += slow["a"].verdict == "slower"
        bimodal += slow["a"].verdict == "bimodal"
        if order == "interleaved":  # what it can detect: never less than on the paired levels alone
            paired_only = rg.minimum_detectable(rg.NightNoise(slow["a"].night_sd, slow["a"].noise_nights), [], 10, 10)
            assert slow["a"].detectable >= paired_only.ratio
            # and the night's move alone, which had to show it too, gives its noise beside the paired one
            assert math.isfinite(slow["a"].night_sd_alone) and math.isfinite(slow["a"].night_sd)
            assert f"{slow['a'].night_sd_alone:.1%} alone" in verdicts.markdown(verdicts.Night("x", "y", (slow["a"],)))
        else:
            assert math.isnan(slow["a"].night_sd_alone)  # not paired: one frame, one noise
    assert false == 0
    if order == "interleaved":
        assert found / trials >= 0.75 and bimodal == 0, (found, bimodal)
    else:
        assert found / trials <= 0.5, found


def test_a_series_own_two_modes_stay_bimodal_in_rounds() -> None:
    """Divided by its rounds' device shift, a series whose own repetitions fall in two groups (its
    device's other series do not) is `bimodal`, not a verdict; the others are judged."""
    rng = np.random.default_rng(3)

    def night(split: bool = False) -> list[StoredResult]:
        rounds = np.exp(rng.normal(0, 0.02, 10))
        own = np.array([1.0] * 5 + [1.3] * 5) if split else np.ones(10)
        return [_stored(list(rounds * (own if m == "a" else 1.0) * np.exp(rng.normal(0, 0.005, 10))), model=m,
                        job_id=m) for m in ("a", "b", "c", "d")]  # fmt: skip

    history = [night() for _ in range(6)]
    verdicts = {c.key[1]: c for c in compare(history, night(split=True), history=history)}
    assert verdicts["a"].verdict == "bimodal" and "divided by its round's device shift" in verdicts["a"].why
    assert all(verdicts[m].verdict in ("same", "inconclusive") for m in "bcd"), verdicts


def test_a_control_whose_model_changed_measures_the_rounds_of_its_own_build_only() -> None:
    """One of a series' two controls got a new model file ten nights ago (×1.3 since): on the nights
    before, its rounds say nothing of the device (its build's level is not theirs), so those nights have
    too few controls and are left out; an unchanged series is not called slower and one ×1.05 is found."""
    rng = np.random.default_rng(8)

    def night(changed: bool, slow: float = 1.0) -> list[StoredResult]:
        rounds = np.exp(rng.normal(0, 0.05, 10))
        out = []
        for m in "abe":
            factor = slow if m == "a" else 1.3 if m == "e" and changed else 1.0
            sha = "new" if m == "e" and changed else "aa"
            out.append(_stored(list(rounds * factor * np.exp(rng.normal(0, 0.01, 10))), model=m, job_id=m,
                               model_sha=sha))  # fmt: skip
        return out

    false = found = 0
    for _ in range(20):
        history = [night(changed=i >= 4) for i in range(14)]
        # e itself is called slower: its baseline holds its old build's nights (what changed is said against the last)
        false += sum(c.verdict == "slower" for c in compare(history, night(True), history=history) if c.key[1] != "e")
        found += {c.key[1]: c for c in compare(history, night(True, 1.05), history=history)}["a"].verdict == "slower"
    assert false == 0 and found >= 19, (false, found)


@pytest.mark.parametrize("corroboration", [compare_module.CORROBORATION, 1.0])
def test_interference_on_half_of_one_job_s_repetitions_is_no_regression(
    corroboration: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tonight something slows 7 of one job's 10 repetitions by ×1.08–×1.15 (not its device's other jobs in
    those rounds): the median of its paired levels moves, its fastest repetition does not. The verdict
    on paired levels stands only where the night's move alone shows it too: without that (p ≤ 1), it
    is a false alarm."""
    monkeypatch.setattr(compare_module, "CORROBORATION", corroboration)
    rng = np.random.default_rng(9)

    def night(hit: bool = False) -> list[StoredResult]:
        rounds = np.exp(rng.normal(0, 0.01, 10))
        own = np.ones(10)
        if hit:
            own[rng.choice(10, size=7, replace=False)] = rng.uniform(1.08, 1.15, 7)
        return [_stored(list(rounds * (own if m == "a" else 1.0) * np.exp(rng.normal(0, 0.005, 10))), model=m,
                        job_id=m) for m in "abcd"]  # fmt: skip

    history = [night() for _ in range(10)]
    [a] = [c for c in compare(history, night(hit=True), history=history) if c.key[1] == "a"]
    if corroboration < 1:
        assert a.verdict == "inconclusive" and "not shown both ways" in a.why, a.why
    else:
        assert a.verdict == "slower", a.why


def test_a_row_can_detect_what_both_frames_can() -> None:
    """A verdict on paired levels needs the night's move alone to show it too: where that frame's nights
    wander more, the row's detectable is that frame's and it names no R its noise cannot reach."""
    rng = np.random.default_rng(2)
    paired = Comparison(("pi5", "a", "fp32", "litert", "xnnpack", 1), (), (), "same", "", detectable=1.04,
                        repetitions_for_target=10)  # fmt: skip
    stored = _stored([1.0] * 10)
    nights = [list(math.exp(rng.normal(0, 0.05)) * np.exp(rng.normal(0, 0.005, 10))) for _ in range(10)]
    noisy = compare_module._Pending(paired.key, stored, stored, nights, nights[-1], [min(n) for n in nights],
                                    rg.night_noise([min(n) for n in nights]), [])  # fmt: skip
    both = compare_module._detectable_both_ways(paired, noisy, compare_module.Policy())
    assert both.detectable > 1.15 and both.repetitions_for_target is None and "more repetitions" in both.detectable_note
    assert both.night_sd_alone == pytest.approx(noisy.noise.used)  # the noise that explains it, beside the paired one
    quiet = dataclasses.replace(noisy, noise=rg.NightNoise(0.002, 10))
    quiet_both = compare_module._detectable_both_ways(paired, quiet, compare_module.Policy())
    assert quiet_both == dataclasses.replace(paired, night_sd_alone=rg.NOISE_FLOOR)  # the floor: 0.2% is not assumed
