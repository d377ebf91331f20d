"""Two runs (or a baseline of several nights and tonight), series by series: repetition levels, the
rank test and ratio CI of embench.regression, a verdict, and what changed between them. Computes
only; embench/report/nightly.py renders."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from embench_agent.protocol import DeviceFacts, Job, Result

from . import regression as rg
from .store import StoredResult
from .telemetry import throttle_flags

SERIES = ("device", "model", "precision", "runtime", "delegate", "threads")
SeriesKey = tuple[str, str, str, str, str, int]


def series_key(job: Job) -> SeriesKey:
    return (job.device, job.model.name, job.model.precision, job.runtime, job.delegate.name, job.threads)


def series_label(key: SeriesKey) -> str:
    device, model, precision, runtime, delegate, threads = key
    return f"{device}/{model}/{precision}/{runtime}:{delegate}/t{threads}"


def _per_repetition(result: Result, statistic: Callable[[np.ndarray], float]) -> list[float]:
    samples = np.asarray(result.samples_ns, np.float64) / 1e6
    if not len(samples):
        return []
    if not result.repetitions:
        return [statistic(samples)]
    out, start = [], 0
    for rep in result.repetitions:
        if rep.samples:
            out.append(statistic(samples[start : start + rep.samples]))
        start += rep.samples
    return out


def repetition_medians(result: Result) -> list[float]:
    """Each repetition's median latency (ms); a job of one repetition gives one."""
    return _per_repetition(result, lambda x: float(np.median(x)))


def repetition_levels(result: Result) -> list[float]:
    """Each repetition's level (ms), what verdicts and history compare: the fast end of its invokes
    (regression.repetition_level); a job of one repetition gives one."""
    return _per_repetition(result, rg.repetition_level)


def _definition(job: Job) -> dict[str, object]:
    """What must match for two jobs to be one series: the file format, the delegate and its options,
    and how it is timed (not idle time or op profiling, which happen outside the window; not the number
    of repetitions, which buys precision, not another quantity). The order counts where both jobs
    have repetitions to order: in rounds and back to back they meet a device's slow moves differently;
    a job of one repetition is one process either way (so is every job of a store from before the order
    existed, read back as back to back, and a benchmark_model device's)."""
    run = job.run
    return {"format": job.model.format, "delegate library": job.delegate.library,
            "delegate options": dict(job.delegate.options), "warmup_runs": run.warmup_runs,
            "min_runs": run.min_runs, "min_seconds": run.min_seconds, "max_seconds": run.max_seconds,
            "isolation": run.isolation, "order": run.order if run.repetitions > 1 else None}  # fmt: skip


def definition_differs(before: Job, after: Job) -> list[str]:
    """What differs in the two jobs' definitions, in words ("min_seconds 1.0 → 2.0"); a field only one
    of them has (None: the order of a single repetition) does not differ."""
    a, b = _definition(before), _definition(after)
    return [f"{k} {a[k]} → {b[k]}" for k in a if a[k] != b[k] and a[k] is not None and b[k] is not None]


def _placement(result: Result) -> str | None:
    d = result.delegation
    if d is None:
        return None
    if d.total_nodes:
        return f"{d.delegated_nodes}/{d.total_nodes} nodes delegated"
    if d.actual_providers:
        return "providers " + ",".join(d.actual_providers)
    return d.actual


def what_changed(before: StoredResult, after: StoredResult) -> list[str]:
    """Everything that differs between the two jobs' inputs and surroundings, in words."""
    out: list[str] = []
    jb, ja, rb, ra = before.job, after.job, before.result, after.result
    if jb.model.sha256 != ja.model.sha256:
        out.append(f"model checksum {str(jb.model.sha256)[:12]} → {str(ja.model.sha256)[:12]}")
    vb = rb.runtime.version if rb.runtime else None
    va = ra.runtime.version if ra.runtime else None
    if vb != va:
        out.append(f"runtime version {vb} → {va}")
    if rb.agent_version != ra.agent_version:
        out.append(f"agent version {rb.agent_version} → {ra.agent_version}")
    if jb.run.repetitions > 1 and ja.run.repetitions > 1 and jb.run.order != ja.run.order:
        out.append(f"repetition order {jb.run.order} → {ja.run.order}")
    pb, pa = _placement(rb), _placement(ra)
    if pb != pa:
        out.append(f"placement {pb} → {pa}")
    if rb.status != ra.status:
        out.append(f"status {rb.status} → {ra.status}")
    fb, fa = rb.device_facts, ra.device_facts
    if fb != DeviceFacts() and fa != DeviceFacts():
        for f in dataclasses.fields(DeviceFacts):
            x, y = getattr(fb, f.name), getattr(fa, f.name)
            if x != y:
                out.append(f"device {f.name} {x} → {y}")
    return out


@dataclass(frozen=True)
class Comparison:
    """One series: the two sides' repetition levels (ms), the statistics, the verdict and why."""

    key: SeriesKey
    before: tuple[float, ...]
    after: tuple[float, ...]
    verdict: str
    why: str
    ratio: float = math.nan
    ratio_low: float = math.nan
    ratio_high: float = math.nan
    p_slower: float = math.nan
    q_slower: float = math.nan
    night_sd: float = math.nan  # the night-to-night noise the verdict used (log scale)
    noise_nights: int = 0  # on how many earlier nights it was measured
    detectable: float = math.nan
    repetitions_for_target: int | None = None
    detectable_note: str = ""
    changes: tuple[str, ...] = ()
    after_job_id: str = ""
    before_job_id: str = ""
    shift: float = math.nan  # the device's shift tonight (its other series' move, a ratio) divided out; NaN: none
    device_moved: bool = False  # that shift is beyond what the device's moves did over the history
    job_failed: bool = False  # tonight's job failed, crashed, timed out or never ran (unsupported is not a failure)
    # on paired levels, the noise of the night's move alone, which had to show it too (its detectable is the
    # larger of the two frames'); NaN where the verdict was not on paired levels
    night_sd_alone: float = math.nan

    @property
    def label(self) -> str:
        return series_label(self.key)

    @property
    def median_before(self) -> float:
        return float(np.median(self.before)) if self.before else math.nan

    @property
    def median_after(self) -> float:
        return float(np.median(self.after)) if self.after else math.nan


@dataclass(frozen=True)
class Policy:
    """What a verdict uses (docs/nightly.md); `thresholds` per device or device/delegate, the most specific wins."""

    threshold: float = rg.THRESHOLD
    alpha: float = rg.ALPHA
    fdr_q: float = rg.FDR_Q
    thresholds: dict[str, float] = field(default_factory=dict)
    target: float = 1.05  # the slowdown a lab wants found: each series says what R would find it
    noise_floor: float = rg.NOISE_FLOOR

    def threshold_for(self, key: SeriesKey) -> float:
        device, delegate = key[0], key[4]
        return self.thresholds.get(f"{device}/{delegate}", self.thresholds.get(device, self.threshold))


def _by_series(results: Sequence[StoredResult]) -> dict[SeriesKey, StoredResult]:
    return {series_key(s.job): s for s in results}


def _quietest(results: Iterable[StoredResult]) -> float:
    """The least share of the CPUs other processes took during these jobs' windows (0 where none was measured)."""
    return min((s.result.other_cpu for s in results if s.result.measured and s.result.other_cpu is not None),
               default=0.0)  # fmt: skip


def _contended(stored: StoredResult, quiet: float) -> bool:
    """Other processes took CONTENTION more of the CPUs during this job's windows than on the series' quietest night."""
    return stored.result.other_cpu is not None and stored.result.other_cpu - quiet >= CONTENTION


def _flag(before: StoredResult, after: StoredResult, levels_after: list[float], base_nights: list[float],
          threshold: float, quiet: float, modes: bool = True) -> tuple[str, str] | None:  # fmt: skip
    """A verdict that is not a comparison: not measured, fallen back, throttled, contended (against the
    series' quietest earlier night: `quiet`), bimodal (unless both groups moved past the threshold the
    same way against every baseline night: then the series is judged; not looked at here unless `modes`:
    a job in rounds is looked at once each repetition is divided by its round's device shift, `_modes`)."""
    if not after.result.measured:
        return "not comparable", _not_measured(after)
    if not before.result.measured:
        return "not comparable", f"baseline: {before.result.status}"
    if after.result.status == "fallback" and before.result.status != "fallback":
        return "fallback", after.result.message or "part of the model fell back to the CPU"
    evidence = throttle_flags(after.result)
    if evidence:
        return "throttled", "; ".join(evidence)
    tonight = after.result.other_cpu
    if tonight is not None and tonight - quiet >= CONTENTION:
        return "environment", (f"other processes used {tonight:.0%} of the CPUs during tonight's timed windows"
                               f" (its quietest earlier night: {quiet:.0%}): contention, not the model")  # fmt: skip
    return _modes(levels_after, base_nights, threshold) if modes else None


def _modes(levels_after: list[float], base_nights: list[float], threshold: float,
           words: str = "repetition levels") -> tuple[str, str] | None:  # fmt: skip
    if rg.bimodal(levels_after) and not _both_modes_moved(levels_after, base_nights, threshold):
        return "bimodal", f"{words} fall in two groups: " + ", ".join(f"{m:.4g}" for m in sorted(levels_after))
    return None


def _not_measured(tonight: StoredResult) -> str:
    return f"tonight: {tonight.result.status} ({tonight.result.message or 'no message'})"


def _both_modes_moved(levels_after: list[float], base_nights: list[float], threshold: float) -> bool:
    """Tonight's faster group slower than every baseline night by the threshold, or its slower group
    faster by it: whichever mode a repetition fell in, it moved (a burst on a few repetitions of a
    series that got four times slower is still a slowdown)."""
    if not base_nights:
        return False
    return min(levels_after) >= threshold * max(base_nights) or max(levels_after) * threshold <= min(base_nights)


def _build_changed(a: StoredResult, b: StoredResult) -> bool:
    version = (
        a.result.runtime.version if a.result.runtime else None,
        b.result.runtime.version if b.result.runtime else None,
    )
    return a.job.model.sha256 != b.job.model.sha256 or version[0] != version[1]


class _Levels:
    """Each stored job's repetition levels, computed once per `compare` (a night's jobs are looked at
    as baseline, as noise history and as a control for the device's other series)."""

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[StoredResult, list[float]]] = {}  # the job is held, so its id stays its own

    def of(self, stored: StoredResult) -> list[float]:
        """Its repetition levels ([] where it did not measure)."""
        hit = self._by_id.get(id(stored))
        if hit is None:
            hit = stored, repetition_levels(stored.result) if stored.result.measured else []
            self._by_id[id(stored)] = hit
        return hit[1]

    def night(self, stored: StoredResult) -> float | None:
        """The job's level that night (regression.night_level of its repetition levels), None: not measured."""
        levels = self.of(stored)
        return rg.night_level(levels) if levels else None


Night = dict[SeriesKey, StoredResult]
Group = tuple[str, int]  # a device at one thread count: the series a night's shift is shared by


def _group(key: SeriesKey) -> Group:
    return key[0], key[5]


@dataclass
class _Candidate:
    """A comparable series, before its statistics: where it stands in each night."""

    key: SeriesKey
    last: StoredResult
    now: StoredResult
    baseline: list[tuple[int, StoredResult]]  # (baseline night, its job there)
    history: list[tuple[int, StoredResult]]  # (history night, its job there): the nights of this build only
    changes: list[str]
    notes: tuple[str, ...] = ()  # what its why says of the baseline nights it is judged on (_baseline_notes)

    @property
    def control(self) -> bool:
        """Nothing changed in it since the baseline (model, runtime, placement, the device's facts), so its
        move tonight is the device's: it can measure the shift. A kernel or runtime update changes every
        series of the device, and leaves none to measure it with: such a night is judged as measured."""
        return not self.changes


@dataclass
class _Pending:
    key: SeriesKey
    last: StoredResult
    now: StoredResult
    before_nights: list[list[float]]  # each baseline night's repetition levels (a night measured)
    after: list[float]
    base_nights: list[float]  # each baseline night's level
    noise: rg.NightNoise
    changes: list[str]
    shift: float = math.nan  # the device's shift tonight that was divided out (a ratio); NaN: none was
    device_moved: bool = False  # the shift is beyond what the device's moves did over the history
    quantile: float = rg.NIGHT_QUANTILE  # a night's level: this quantile of its (shifted) repetition levels

    @property
    def paired(self) -> bool:
        """Each repetition was divided by its own round's device shift (`_pending`)."""
        return self.quantile == rg.PAIRED_QUANTILE

    @property
    def before(self) -> list[float]:
        """The baseline nights' repetition levels, pooled."""
        return [m for night in self.before_nights for m in night]


def compare(baseline: Sequence[Sequence[StoredResult]], tonight: Sequence[StoredResult], policy: Policy | None = None,
            history: Sequence[Sequence[StoredResult]] | None = None, own_nights: int | None = None) -> list[Comparison]:  # fmt: skip
    """Every series of tonight against the baseline: one or more earlier runs (their repetition levels
    for the rank test, their night levels for the ratio; what changed is said against the most
    recent). `history` (default: the baseline) is the earlier nights each series' night-to-night noise
    is measured over; with `own_nights`, each series is judged on the last `own_nights` baseline runs it measured
    on and its noise over the last rg.HISTORY_NIGHTS history runs it measured on (the nightly gives every
    series' own last nights: a board away for a week keeps its series' baseline). Of those, a series is
    judged on the nights of its most recent baseline night's build (model file and runtime version):
    tonight's own, or the one before where it changed tonight. Each series is judged against its
    device's other series too: the night's shift of the device at that thread count is divided out
    first (`_shifts`). Benjamini-Hochberg runs over every series tested."""
    policy = policy or Policy()
    lv = _Levels()
    nights = [_by_series(run) for run in baseline]
    noise_nights = [_by_series(run) for run in (history if history is not None else baseline)]
    candidates: list[_Candidate] = []
    done: list[Comparison] = []
    for key, now in sorted(_by_series(tonight).items(), key=lambda kv: series_label(kv[0])):
        # a baseline or history night of this series is one it measured on (a failed or lost job leaves it out)
        ran = [(i, night[key]) for i, night in enumerate(nights) if key in night]
        earlier = [(i, s) for i, s in ran if s.result.measured][-own_nights if own_nights else 0 :]
        known = [(j, n[key]) for j, n in enumerate(noise_nights) if key in n and n[key].result.measured]
        known = known[-rg.HISTORY_NIGHTS :] if own_nights else known
        quiet = _quietest(s for _, s in earlier + known)
        # a night whose windows other processes crowded measured them, not the series: not a baseline, not noise
        earlier = [(i, s) for i, s in earlier if not _contended(s, quiet)] or earlier
        levels_after = lv.of(now)
        failed = not now.result.succeeded
        if not earlier:  # what tonight's job did says more than a baseline it has not got
            why = (_not_measured(now) if not now.result.measured
                   else f"baseline: {ran[-1][1].result.status} on every baseline night ({len(ran)})" if ran
                   else "new series: no baseline")  # fmt: skip
            done.append(Comparison(key, (), tuple(levels_after), "not comparable", why, after_job_id=now.job.job_id,
                                   job_failed=failed))  # fmt: skip
            continue
        last = earlier[-1][1]
        # one build's nights: tonight's own since its model or runtime changed, or (changed tonight) the
        # last build's. Judged against nights of both, a change would be called again nights after it was
        # called, with nothing changed since (its noise is of this build only already)
        of_build = [(i, s) for i, s in earlier if not _build_changed(s, last)]
        notes = _baseline_notes(of_build, len(earlier) - len(of_build), len(nights), now)
        earlier = of_build
        changes = what_changed(last, now)
        differs = definition_differs(last.job, now.job)
        flag = ("not comparable", "series defined differently: " + "; ".join(differs)) if differs else None
        base_nights = [m for _, s in earlier if (m := lv.night(s))]
        flag = flag or _flag(last, now, levels_after, base_nights, policy.threshold_for(key), quiet,
                             modes=not _in_rounds(now, lv))  # fmt: skip
        if flag is not None:
            done.append(_noted(_flagged(key, earlier, last, now, changes, flag, lv), notes))
            continue
        # the noise of this build: nights that ran another model file or runtime version measured something else
        same_build = [(j, s) for j, s in known if not _build_changed(s, last) and not _contended(s, quiet)]
        candidates.append(_Candidate(key, last, now, earlier, same_build, changes, notes))
    as_measured = [_pending(c, policy, lv) for c in candidates]
    raw = _judged(as_measured, policy)
    shifts = _shifts(candidates, lv)
    pending = [_pending(c, policy, lv, shifts.get(c.key)) for c in candidates]
    by_night = [_pending(c, policy, lv, shifts.get(c.key), pair=False) if p.paired else None
                for c, p in zip(candidates, pending)]  # fmt: skip
    shifted = _corroborated(_judged(pending, policy), by_night, policy)
    for c, measured, p, r, s in zip(candidates, as_measured, pending, raw, shifted):
        # a job in rounds: two groups of its repetitions that its device's other series show in the same
        # rounds are the device's (a burst over a few rounds), divided out with them; its own are bimodal
        words = "repetition levels, each divided by its round's device shift" if p.paired else "repetition levels"
        looked = p if p.paired else measured
        flag = _modes(looked.after, looked.base_nights, policy.threshold_for(c.key), words) if _in_rounds(
            c.now, lv) else None  # fmt: skip
        one = _merged(r, s) if flag is None else _flagged(c.key, c.baseline, c.last, c.now, c.changes, flag, lv)
        done.append(_noted(one, c.notes))
    return sorted(_environment(done), key=lambda c: (rg.VERDICTS.index(c.verdict), c.label))


def _baseline_notes(earlier: list[tuple[int, StoredResult]], older_builds: int, nights: int,
                    now: StoredResult) -> tuple[str, ...]:  # fmt: skip
    """What a reader of a series' verdict should know of the baseline nights it was judged on (`earlier`,
    by index among the `nights` baseline nights): only those since its build changed (`older_builds`
    earlier nights left out); ending before the last baseline night (its board away, its job failed)."""
    notes = []
    if older_builds:
        n = len(earlier)
        notes.append(f"against its {n} night{'s' * (n != 1)} since its model file or runtime version changed;"
                     f" {older_builds} earlier night(s) ran the old one")  # fmt: skip
    gap = nights - 1 - earlier[-1][0]
    if gap > 0:
        note = f"its baseline ends {gap} night(s) before the last baseline night"
        then, tonight = earlier[-1][1].result.started_unix, now.result.started_unix
        days = (tonight - then) / 86400 if then is not None and tonight is not None else 0.0
        notes.append(note + (f": its latest ran {days:.0f} day(s) before tonight" if days >= 1 else ""))
    return tuple(notes)


def _noted(c: Comparison, notes: tuple[str, ...]) -> Comparison:
    """Its why with the baseline's `notes`; not where nothing was judged against the baseline (not comparable)."""
    if not notes or c.verdict == "not comparable":
        return c
    return dataclasses.replace(c, why=f"{c.why} ({'; '.join(notes)})")


def _flagged(key: SeriesKey, earlier: list[tuple[int, StoredResult]], last: StoredResult, now: StoredResult,
             changes: list[str], flag: tuple[str, str], lv: _Levels) -> Comparison:  # fmt: skip
    """A series with a verdict that is not a comparison (`flag`: verdict, why), its levels as measured."""
    return Comparison(key, tuple(m for _, s in earlier for m in lv.of(s)), tuple(lv.of(now)), *flag,
                      changes=tuple(changes), after_job_id=now.job.job_id, before_job_id=last.job.job_id,
                      job_failed=not now.result.succeeded)  # fmt: skip


MIN_CONTROLS = 2  # other series with nothing changed a device's shift is measured from, on every night used


Rounds = tuple[float, ...]  # a night's device shift (log) in each round, by repetition index


@dataclass(frozen=True)
class _Shift:
    """A series' device shift (log) on each night: baseline and history nights by index, and tonight;
    and in each round of those nights, where the series and its controls ran in rounds (`paired`)."""

    baseline: dict[int, float]
    history: dict[int, float]
    tonight: float
    rounds_baseline: dict[int, Rounds] = field(default_factory=dict)
    rounds_history: dict[int, Rounds] = field(default_factory=dict)
    rounds_tonight: Rounds | None = None

    @property
    def paired(self) -> bool:
        """Every night the series is judged on has its device's shift in each of its rounds: each
        repetition is divided by its own round's (`_pending`)."""
        return (self.rounds_tonight is not None and self.baseline.keys() <= self.rounds_baseline.keys()
                and self.history.keys() <= self.rounds_history.keys())  # fmt: skip

    @property
    def unusual(self) -> bool:
        """Tonight's move is beyond what the device's moves did over the history (3 SDs, never under the
        noise floor; the cautious early noise while fewer than MIN_NIGHTS are known)."""
        moves = list(self.history.values())
        sd = float(np.std(moves, ddof=1)) if len(moves) >= rg.MIN_NIGHTS else rg.EARLY_NOISE
        return abs(self.tonight) > 3 * max(sd, rg.NOISE_FLOOR)


def _shifts(candidates: list[_Candidate], lv: _Levels) -> dict[SeriesKey, _Shift]:
    """How far each series' device (at its thread count) moved each night, measured on its *other* series
    with nothing changed (the controls): the median of their log night levels, each less its own
    mean over the baseline nights. A neighbour that slowed the whole device for a night, a warm room or
    a shared host moves the controls as much as the series, and cancels; a model of its own that got
    slower moves only itself. A series is given no shift where fewer than MIN_CONTROLS controls ran
    tonight; a night where fewer ran is left out of its numbers."""
    groups: dict[Group, list[_Candidate]] = {}
    for c in candidates:
        if c.control:
            groups.setdefault(_group(c.key), []).append(c)
    out = {}
    for group_controls in groups.values():
        moves = [_moves(c, lv) for c in group_controls]
        round_moves = [_round_moves(c, lv) for c in group_controls]
        for c in candidates:
            if _group(c.key) != _group(group_controls[0].key):
                continue
            others = [m for g, m in zip(group_controls, moves) if g.key != c.key]
            tonight = _median_of(m[2] for m in others)
            if tonight is None:
                continue
            baseline = {i: v for i, _ in c.baseline if (v := _median_of(m[0].get(i) for m in others)) is not None}
            if not baseline:  # the controls are new since the baseline: nothing to measure tonight's move against
                continue
            history = {j: v for j, _ in c.history if (v := _median_of(m[1].get(j) for m in others)) is not None}
            rounds = [m for g, m in zip(group_controls, round_moves) if g.key != c.key]
            r_base = {i: rs for i, s in c.baseline if (rs := _round_shift(s, [m[0].get(i) for m in rounds], lv))}
            r_hist = {j: rs for j, s in c.history if (rs := _round_shift(s, [m[1].get(j) for m in rounds], lv))}
            out[c.key] = _Shift(
                baseline, history, tonight, r_base, r_hist, _round_shift(c.now, [m[2] for m in rounds], lv)
            )
    return out


def _in_rounds(s: StoredResult, lv: _Levels) -> bool:
    """The job's repetitions ran in rounds with the device's other jobs (rounds.py): repetition r of
    every such job of the night in round r, minutes apart at most."""
    return s.job.run.order == "interleaved" and s.job.run.repetitions > 1 and len(lv.of(s)) == s.job.run.repetitions


def _round_moves(c: _Candidate, lv: _Levels) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray], np.ndarray | None]:
    """A control's log repetition levels less their mean median over the baseline nights of its build,
    by round: on each baseline night of its build, each history night, and tonight that it ran in
    rounds (as `_moves` by night)."""
    own = [(i, s) for i, s in c.baseline if _in_rounds(s, lv) and not _build_changed(s, c.now)]
    if not own:
        return {}, {}, None
    center = float(np.mean([np.median(np.log(lv.of(s))) for _, s in own]))

    def moved(s: StoredResult) -> np.ndarray | None:
        return np.log(lv.of(s)) - center if _in_rounds(s, lv) else None

    base = {i: m for i, s in own if (m := moved(s)) is not None}
    hist = {j: m for j, s in c.history if (m := moved(s)) is not None}
    return base, hist, moved(c.now)


def _round_shift(s: StoredResult, moved: list[np.ndarray | None], lv: _Levels) -> Rounds | None:
    """The device's shift in each round a series' job `s` ran in that night: the median of the controls'
    `moved` in that round; None where the job did not run in rounds or fewer than MIN_CONTROLS controls ran
    one of its rounds."""
    if not _in_rounds(s, lv):
        return None
    out = []
    for r in range(len(lv.of(s))):
        v = _median_of(float(m[r]) for m in moved if m is not None and len(m) > r)
        if v is None:
            return None
        out.append(v)
    return tuple(out)


def _moves(c: _Candidate, lv: _Levels) -> tuple[dict[int, float], dict[int, float], float | None]:
    """A control's log night level less its mean over the baseline nights of its build: on each
    baseline night, each history night, and tonight."""
    base = {i: math.log(m) for i, s in c.baseline if not _build_changed(s, c.now) and (m := lv.night(s))}
    if not base:
        return {}, {}, None
    center = float(np.mean(list(base.values())))
    hist = {j: math.log(m) - center for j, s in c.history if (m := lv.night(s))}
    tonight = lv.night(c.now)
    return {i: v - center for i, v in base.items()}, hist, (math.log(tonight) - center if tonight else None)


def _median_of(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.median(known)) if len(known) >= MIN_CONTROLS else None


def _pending(c: _Candidate, policy: Policy, lv: _Levels, shift: _Shift | None = None, pair: bool = True) -> _Pending:
    """The series' numbers, each night's repetition levels divided by that night's device shift
    (none given: as measured), each by its own round's where the shift is `paired` and `pair` (and a
    night's level is then the PAIRED_QUANTILE of them). A night with no shift known is left out."""
    paired = pair and shift is not None and shift.paired
    quantile = rg.PAIRED_QUANTILE if paired else rg.NIGHT_QUANTILE

    def scaled(levels: list[float], night: float | None, rounds: Rounds | None) -> list[float]:
        if paired:
            assert rounds is not None
            return [m * math.exp(-r) for m, r in zip(levels, rounds)]
        return [m * math.exp(-night) for m in levels] if night is not None else list(levels)

    def scale(i: int, s: StoredResult, by: dict[int, float] | None, rounds: dict[int, Rounds]) -> list[float]:
        if by is not None and i not in by:
            return []
        return scaled(lv.of(s), by[i] if by is not None else None, rounds.get(i))

    def night_level(levels: list[float]) -> list[float]:
        return [rg.night_level(levels, quantile)] if levels else []

    base_by, hist_by = (shift.baseline, shift.history) if shift else (None, None)
    baseline = [scale(i, s, base_by, shift.rounds_baseline if shift else {}) for i, s in c.baseline]
    known = [m for j, s in c.history for m in night_level(scale(j, s, hist_by, shift.rounds_history if shift else {}))]
    after = scaled(lv.of(c.now), shift.tonight if shift else None, shift.rounds_tonight if shift else None)
    return _Pending(c.key, c.last, c.now, [b for b in baseline if b], after,
                    [m for b in baseline for m in night_level(b)], rg.night_noise(known, policy.noise_floor),
                    c.changes, math.exp(shift.tonight) if shift else math.nan, shift is not None and shift.unusual,
                    quantile)  # fmt: skip


CORROBORATION = 0.05  # a verdict on paired levels stands where the night's move alone shows it at this p


def _corroborated(judged: list[Comparison], by_night: list[_Pending | None], policy: Policy) -> list[Comparison]:
    """A slower or faster verdict on paired levels (`by_night`: the same series with the night's move
    divided out instead, its fastest repetition its level) stands only where the night's move alone
    points the same way at p ≤ CORROBORATION: the median of paired levels wanders less than the fastest
    repetition on most nights, but interference that slows half of one job's repetitions moves it and
    not the fastest (three kept calibrations: 8 false alarms in 530 A/A series-nights without this, 3 with it,
    as many as before rounds were paired; docs/nightly.md)."""
    out = []
    for one, night in zip(judged, by_night):
        if night is None:
            out.append(one)
            continue
        c = _detectable_both_ways(one, night, policy)
        if c.verdict not in ("slower", "faster"):
            out.append(c)
            continue
        t = rg.test(night.before_nights, night.after, night.base_nights, night.noise, policy.alpha, night.quantile)
        p = t.p_slower if c.verdict == "slower" else t.p_faster
        if p <= CORROBORATION:
            out.append(c)
            continue
        why = (f"{c.why} against its rounds, but against the night's move alone ×{t.ratio.estimate:.3f},"
               f" p={p:.2g} > {CORROBORATION:g}: not shown both ways")  # fmt: skip
        out.append(dataclasses.replace(c, verdict="inconclusive", why=why))
    return out


def _detectable_both_ways(c: Comparison, night: _Pending, policy: Policy) -> Comparison:
    """A verdict on paired levels needs the night's move alone to show it too (at CORROBORATION): what
    it can detect is the larger of the two frames' detectable slowdowns, and the repetitions for the
    target the more of the two (none where either names none)."""
    mde = rg.minimum_detectable(night.noise, [*night.before_nights, night.after], len(night.after),
                                len(night.base_nights), policy.target, policy.threshold_for(c.key),
                                CORROBORATION, quantile=night.quantile)  # fmt: skip
    reps = (None if mde.repetitions_for_target is None or c.repetitions_for_target is None
            else max(mde.repetitions_for_target, c.repetitions_for_target))  # fmt: skip
    note = (c.detectable_note or mde.note) if mde.ratio <= c.detectable else (mde.note or c.detectable_note)
    return dataclasses.replace(c, detectable=max(c.detectable, mde.ratio), repetitions_for_target=reps,
                               detectable_note=note, night_sd_alone=night.noise.used)  # fmt: skip


def _merged(raw: Comparison, shifted: Comparison) -> Comparison:
    """The verdict against the device's other series, where it had some and its nights track theirs:
    slower than them is slower (whatever the device did tonight); slower as measured but not than them
    is the device's `environment`; anything else is what the shifted numbers say. A series whose nights
    wander less as measured than against its device's other series (their own noise would only be added
    to its) is judged as measured, unless the device moved tonight beyond what its moves did before. The
    levels shown stay as measured."""
    if not math.isfinite(shifted.shift):
        return raw
    if shifted.night_sd > raw.night_sd and not shifted.device_moved:
        return dataclasses.replace(raw, why=f"{raw.why} (as measured: its nights wander {100 * raw.night_sd:.1f}%,"
                                   f" against its device's other series {100 * shifted.night_sd:.1f}%)")  # fmt: skip
    moved = f"the device's other series at {raw.key[5]} thread(s) moved ×{shifted.shift:.3f} tonight"
    shown = dataclasses.replace(shifted, before=raw.before, after=raw.after)
    if shifted.verdict == "slower":
        return dataclasses.replace(shown, why=f"{shifted.why} against them ({moved}; as measured {_shown(raw)})")
    if raw.verdict == "slower":
        why = (f"as measured {_shown(raw)}, but {moved}: the device (another process, its thermal state, a"
               f" shared host), not the model; against them {_shown(shifted)}")  # fmt: skip
        return dataclasses.replace(shown, verdict="environment", why=why)
    return dataclasses.replace(shown, why=f"{shifted.why} ({moved}, divided out)")


def _shown(c: Comparison) -> str:
    return f"×{c.ratio:.3f} [{c.ratio_low:.3f}, {c.ratio_high:.3f}]"


def _judged(pending: list[_Pending], policy: Policy) -> list[Comparison]:
    tests = [rg.test(p.before_nights, p.after, p.base_nights, p.noise, policy.alpha, p.quantile) for p in pending]
    q_slower = rg.bh_adjust([t.p_slower for t in tests])
    q_faster = rg.bh_adjust([t.p_faster for t in tests])
    out = []
    for p, t, qs, qf in zip(pending, tests, q_slower, q_faster):
        threshold = policy.threshold_for(p.key)
        if len(p.before) < 2 or len(p.after) < 2:
            verdict, why = "inconclusive", (f"{len(p.before)} and {len(p.after)} repetition levels: set"
                                            f" sweep.run.repetitions to {rg.MIN_REPETITIONS} or more")  # fmt: skip
        else:
            verdict, why = rg.verdict(t, qs, qf, threshold, policy.alpha, policy.fdr_q)
        if not p.noise.known:
            why += (f" (night-to-night noise assumed {p.noise.used:.0%} until {rg.MIN_NIGHTS} earlier nights of this"
                    " series are known)")  # fmt: skip
        mde = rg.minimum_detectable(p.noise, [*p.before_nights, p.after], len(p.after), len(p.base_nights),
                                    policy.target, threshold, policy.alpha, quantile=p.quantile)  # fmt: skip
        out.append(Comparison(p.key, tuple(p.before), tuple(p.after), verdict, why, t.ratio.estimate, t.ratio.low,
                              t.ratio.high, t.p_slower, qs, p.noise.used, p.noise.nights, mde.ratio,
                              mde.repetitions_for_target, mde.note, tuple(p.changes), p.now.job.job_id,
                              p.last.job.job_id, p.shift, p.device_moved))  # fmt: skip
    return out


ENVIRONMENT_SHARE = 0.5  # of a device's series at one thread count
CONTENTION = 0.15  # more of the CPUs taken by other processes than on the series' quietest earlier night: not a verdict


def _environment(done: list[Comparison]) -> list[Comparison]:
    """Slowdowns that hit most of a device's series at one thread count, with nothing changed in any of
    them, are the device's tonight (another process, its thermal state, a shared host), not the models':
    one `environment` finding each, never a regression alert per series."""
    groups: dict[tuple[str, int], list[Comparison]] = {}
    for c in done:
        if math.isfinite(c.ratio):
            groups.setdefault((c.key[0], c.key[5]), []).append(c)
    out = {id(c): c for c in done}
    for (device, threads), group in groups.items():
        slower = [c for c in group if c.verdict == "slower"]
        if len(group) < 3 or len(slower) < ENVIRONMENT_SHARE * len(group) or any(c.changes for c in slower):
            continue
        low, high = min(c.ratio for c in slower), max(c.ratio for c in slower)
        why = (f"{len(slower)} of {len(group)} series on {device} at {threads} thread(s) are ×{low:.2f}–×{high:.2f}"
               " tonight with nothing changed: the device (another process, its thermal state, a shared host),"
               " not the models")  # fmt: skip
        for c in slower:
            out[id(c)] = dataclasses.replace(c, verdict="environment", why=f"{why}; {c.why}")
    return list(out.values())
