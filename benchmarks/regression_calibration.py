#!/usr/bin/env python3
"""How trustworthy is a nightly verdict on this machine? Measured on real repetition data.

1. Collects `--nights` real nights of each `--kinds` (alternating, so that all see the same machine):
   each night a separate `embench sweep` process with R = `--repetitions`, of eight series: three
   chain models (tests/chainmodel.py: 8×128, 20×256 and 21×256 MatMul layers; the last is the
   20-layer one with one layer more: a real ~5% slowdown) on ONNX Runtime at 1 and 2 threads, and the
   zoo's mobilenet_v3_small on LiteRT (XNNPACK fp32 and int8). The kinds:
   - `interleaved` (the default order): the device's repetitions in rounds (rounds.py), isolation process;
   - `process`: each job's repetitions back to back, each a fresh interpreter;
   - `fork`: back to back, each a child forked from one agent.
2. Judges every night from the 4th on against up to `--baseline-nights` before it (10, as `embench
   nightly` does by default), with
   embench.compare itself, and prints per kind:
   - A/A: the share of series-nights called `slower` (the false regression rate; target ≤ 1%);
   - injected: the same, with tonight's samples of one series scaled by 1.05 (target: found in ≥ 95%);
   - real: chain 21×256 tonight judged against chain 20×256's nights (its true ratio printed too);
   - the minimum detectable slowdown the verdict achieves per series (median over nights);
   - between-repetition CV of each kind against `process`, series by series.
3. With `--overhead KIND…`: the default inventory (`--overhead-models` to sweep fewer of its models)
   swept with R = 10 in each kind named: sweep wall ÷ Σ timed windows (target ≤ 1.3); about 20 minutes
   each with every model. `--nights 0 --overhead` measures only that.

Run from the repository root after ./scripts/quickstart:
    python benchmarks/regression_calibration.py [--nights 12] [--kinds interleaved process] [--keep DIR]
    python benchmarks/regression_calibration.py --analyse DIR          # the numbers again, from kept nights
    python benchmarks/regression_calibration.py --analyse DIR --baseline-nights 3   # … judged as before 2026-12-07
    python benchmarks/regression_calibration.py --nights 0 --overhead interleaved process --overhead-models mobilenet_v3_small
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from chainmodel import chain_model  # noqa: E402

from embench.compare import (  # noqa: E402
    Comparison,
    compare,
    repetition_levels,
    repetition_medians,
    series_key,
    series_label,
)
from embench.inventory import BASELINE_NIGHTS  # noqa: E402
from embench.regression import HISTORY_NIGHTS, MIN_NIGHTS, level_sampling_sd  # noqa: E402
from embench.store import Store, StoredResult  # noqa: E402
from embench.zoo import DEFAULT_MANIFEST, Zoo  # noqa: E402

RUN = {"warmup_runs": 3, "min_runs": 10, "min_seconds": 0.2, "max_seconds": 5.0, "timeout_seconds": 120,
       "idle_seconds": 0}  # fmt: skip
LONG_HISTORY = 6  # earlier nights a series' noise is measured over, from which its t test has 5 degrees of freedom
KINDS = {"interleaved": {"order": "interleaved", "isolation": "process"},  # sweep.run of each kind of night
         "process": {"order": "back-to-back", "isolation": "process"},
         "fork": {"order": "back-to-back", "isolation": "fork"}}  # fmt: skip


def zoo_manifest(folder: Path) -> Path:
    repo_zoo = Zoo(DEFAULT_MANIFEST)
    files = {}
    for precision in ("fp32", "int8"):
        artifact = repo_zoo.artifact("mobilenet_v3_small", "tflite", precision)
        if artifact is None:
            raise SystemExit("build the zoo first: ./scripts/quickstart, or embench models build mobilenet_v3_small")
        files[f"tflite-{precision}"] = str(artifact.path)
    models = {
        "chain8x128": {"files": {"onnx-fp32": str(chain_model(folder / "c8.onnx", 8, 128))}},
        "chain20": {"files": {"onnx-fp32": str(chain_model(folder / "c20.onnx", 20))}},
        "chain21": {"files": {"onnx-fp32": str(chain_model(folder / "c21.onnx", 21))}},
        "mnv3s": {"files": files},
    }
    path = folder / "zoo.yaml"
    path.write_text(yaml.safe_dump({"schema": 1, "build_dir": "build", "models": models}))
    return path


def night(folder: Path, zoo: Path, store: Path, repetitions: int, kind: str, min_seconds: float) -> float:
    sweep = {"models": ["chain8x128", "chain20", "chain21", "mnv3s"], "precisions": ["fp32", "int8"],
             "runtimes": ["onnxruntime", "litert"],
             "delegates": {"onnxruntime": ["CPUExecutionProvider"], "litert": ["xnnpack"]},
             "threads": [1, 2], "fidelity": {"inputs": 0},
             "run": {**RUN, "repetitions": repetitions, "min_seconds": min_seconds, **KINDS[kind]}}  # fmt: skip
    inventory = folder / "night.yaml"
    inventory.write_text(yaml.safe_dump({"schema": 1, "zoo": str(zoo), "sweep": sweep,
                                         "devices": [{"name": "host", "transport": "local"}]}))  # fmt: skip
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "embench", "sweep", str(inventory), "--store", str(store), "-q"],
                         capture_output=True, text=True, check=False)  # fmt: skip
    if out.returncode not in (0, 3):
        raise SystemExit(f"sweep failed ({out.returncode}): {out.stderr.strip()[-800:]}")
    return time.perf_counter() - t0


def measured(results: list[StoredResult]) -> list[StoredResult]:
    return [s for s in results if s.result.measured and s.job.threads in (1, 2)]


def scaled(results: list[StoredResult], factor: float, only: str | None = None) -> list[StoredResult]:
    """Tonight with the samples of one series (its label; None: every series) scaled by `factor`."""
    return [dataclasses.replace(s, result=dataclasses.replace(
        s.result, samples_ns=tuple(int(ns * factor) for ns in s.result.samples_ns)))
        if only is None or series_label(series_key(s.job)) == only else s for s in results]  # fmt: skip


def renamed(results: list[StoredResult], source: str, target: str) -> list[StoredResult]:
    """The night with the `source` model's jobs in place of `target`'s, under its name (their checksum
    says the model changed): the other series stay, as on a night one model of a lab got slower."""
    out = []
    for s in results:
        if s.job.model.name == source:
            model = dataclasses.replace(s.job.model, name=target)
            out.append(dataclasses.replace(s, job=dataclasses.replace(s.job, model=model)))
        elif s.job.model.name != target:
            out.append(s)
    return out


def without(results: list[StoredResult], model: str) -> list[StoredResult]:
    return [s for s in results if s.job.model.name != model]


def rate(verdicts: list[Comparison], verdict: str = "slower") -> tuple[int, int]:
    return sum(c.verdict == verdict for c in verdicts), len(verdicts)


def pct(hit: int, n: int) -> str:
    return f"{hit}/{n} = {100 * hit / n:.1f}%" if n else "n/a"


def analyse(nights: list[list[StoredResult]], baseline_nights: int) -> None:
    """Each night from the (MIN_NIGHTS + 1)th on against the last `baseline_nights` before it (fewer where
    fewer are known, as `embench nightly` does), its noise from up to HISTORY_NIGHTS before it."""
    aa, injected, real, mde, need = [], [], [], defaultdict(list), defaultdict(list)
    ratios = []
    for j in range(MIN_NIGHTS, len(nights)):
        base, history = nights[max(0, j - baseline_nights) : j], nights[max(0, j - HISTORY_NIGHTS) : j]
        tonight = nights[j]
        same = compare(base, tonight, history=history)
        aa += [c for c in same if c.verdict != "not comparable"]
        for c in same:
            if np.isfinite(c.detectable):
                mde[c.label].append(c.detectable)
                need[c.label].append(c.repetitions_for_target or math.inf)
        for c in same:  # one series at a time: a slowdown of one model, the others unchanged
            if c.verdict == "not comparable":
                continue
            judged = compare(base, scaled(tonight, 1.05, only=c.label), history=history)
            injected += [x for x in judged if x.label == c.label]
        judged = compare([without(n, "chain21") for n in base], renamed(tonight, "chain21", "chain20"),
                         history=[without(n, "chain21") for n in history])  # fmt: skip
        real += [c for c in judged if c.key[1] == "chain20"]
        for t in (1, 2):
            a = [m for n in base for s in n if series_key(s.job)[1:] == ("chain20", "fp32", "onnxruntime",
                 "CPUExecutionProvider", t) for m in repetition_levels(s.result)]  # fmt: skip
            b = [m for s in tonight if series_key(s.job)[1:] == ("chain21", "fp32", "onnxruntime",
                 "CPUExecutionProvider", t) for m in repetition_levels(s.result)]  # fmt: skip
            ratios.append(float(np.median(b) / np.median(a)))
    series = len({c.label for c in aa})
    print(f"\nverdicts over {len(nights) - MIN_NIGHTS} nights × {series} series, each night judged against up to"
          f" {baseline_nights} before it (night-to-night noise from up to {HISTORY_NIGHTS} before it):")  # fmt: skip
    counts = ", ".join(f"{v} {n}" for v, n in Counter(c.verdict for c in aa).most_common())
    print(f"  A/A verdicts: {counts}")
    print(f"  A/A false regression rate (slower):        {pct(*rate(aa))}   (target ≤ 1%)")
    for c in aa:
        if c.verdict == "slower":
            print(f"    false alarm: {c.label}: {c.why} (night noise used {100 * c.night_sd:.1f}%)")
    detection(injected, aa)
    print(f"  real slowdown chain 20→21 layers (true ×{statistics.median(ratios):.3f}) detected: {pct(*rate(real))}"
          f"; as environment: {rate(real, 'environment')[0]}")  # fmt: skip
    print("  per series: night-to-night noise used (on paired levels, and of the night's move alone), the slowdown"
          " it can detect, and the R its row says would detect 5% (medians over nights; ∞: none named, as more"
          " repetitions cannot help or past 4× R):")  # fmt: skip
    noise, alone = defaultdict(list), defaultdict(list)
    for c in aa:
        if np.isfinite(c.night_sd):  # a flagged series-night (bimodal, throttled) has none
            noise[c.label].append(c.night_sd)
        if np.isfinite(c.night_sd_alone):  # judged on paired levels: the night's move alone had to show it too
            alone[c.label].append(c.night_sd_alone)
    for label, values in sorted(mde.items()):
        r = statistics.median(need[label])
        also = f" (alone {100 * statistics.median(alone[label]):5.2f}%)" if alone[label] else " " * 15
        print(f"    {label:58s} noise {100 * statistics.median(noise[label]):5.2f}%{also}   detectable"
              f" {statistics.median(values) - 1:+.1%}   R for 5% {'∞' if math.isinf(r) else f'{r:.0f}'}")  # fmt: skip


def detection(injected: list[Comparison], aa: list[Comparison]) -> None:
    """The injected slowdowns found: overall, where a series says it can find 5%, series by series (one
    mark a night: S slower, i inconclusive, e environment, s same, b bimodal), by thread count."""
    inj = ", ".join(f"{v} {n}" for v, n in Counter(c.verdict for c in injected).most_common())
    print(f"  injected ×1.05 detected (slower):           {pct(*rate(injected))}   (target ≥ 95%; all: {inj})")
    able = [c for c in injected if c.detectable <= 1.05]
    print(f"    where the series' own row says it can detect 5% (80% power): {pct(*rate(able))}")
    found: dict[str, list[str]] = defaultdict(list)
    for c in injected:
        found[c.label].append("S" if c.verdict == "slower" else c.verdict[0])
    for label, marks in sorted(found.items()):
        print(f"      {label:58s} {''.join(marks)}")
    for threads in sorted({c.key[5] for c in injected}):
        at = [c for c in injected if c.key[5] == threads]
        known = [c for c in at if c.noise_nights >= LONG_HISTORY]
        print(f"    {threads} thread(s): {pct(*rate(at))}; with ≥ {LONG_HISTORY} earlier nights known:"
              f" {pct(*rate(known))}; A/A false: {pct(*rate([c for c in aa if c.key[5] == threads]))}")  # fmt: skip


DRAW = 10  # repetitions in each group draw_check splits a night into


def draw_check(nights: list[list[StoredResult]]) -> None:
    """How much a night's level (its fastest repetition) wanders with which repetitions the night drew,
    measured and as the verdict's minimum detectable effect says it: nights of R ≥ 2 × DRAW repetitions
    split into R // DRAW interleaved groups of DRAW; the measured SD of the groups' fastest levels inside
    each night (pooled over nights) against regression.level_sampling_sd from each group alone, and the
    SD of a mean of DRAW (the rule before 2026-12-06)."""
    by: dict[str, list[np.ndarray]] = defaultdict(list)
    for results in nights:
        for s in results:
            levels = np.log(repetition_levels(s.result))
            if len(levels) >= 2 * DRAW:
                by[series_label(series_key(s.job))].append(levels)
    if not by:
        return
    print(f"\n  the draw's part of a night's level at R = {DRAW}: measured (groups of {DRAW} inside each night) against"
          " what the verdict says (regression.level_sampling_sd), and a mean's SE (the earlier rule); then the"
          f" night-to-night SD of the fastest of each night's first {DRAW} repetitions and of all of them")  # fmt: skip
    for label, series_nights in sorted(by.items()):
        groups = [[night[k :: len(night) // DRAW][:DRAW] for k in range(len(night) // DRAW)] for night in series_nights]
        measured = math.sqrt(np.mean([np.var([g.min() for g in gs], ddof=1) for gs in groups]))
        said = math.sqrt(np.mean([level_sampling_sd([np.exp(g)], DRAW) ** 2 for gs in groups for g in gs]))
        mean_se = math.sqrt(np.mean([(1.4826 * np.median(np.abs(g - np.median(g)))) ** 2 / DRAW
                                     for gs in groups for g in gs]))  # fmt: skip
        first = np.std([night[:DRAW].min() for night in series_nights], ddof=1)
        every = np.std([night.min() for night in series_nights], ddof=1)
        print(f"    {label:58s} measured {100 * measured:5.2f}%   said {100 * said:5.2f}%   mean's SE"
              f" {100 * mean_se:5.2f}%   night-to-night: first {DRAW} {100 * first:5.2f}%, all {100 * every:5.2f}%")  # fmt: skip


def spread(nights: list[list[StoredResult]]) -> dict[str, float]:
    """Median over nights of each series' between-repetition CV (%)."""
    out = defaultdict(list)
    for results in nights:
        for s in results:
            medians = repetition_medians(s.result)
            if len(medians) > 2:
                label = "/".join(map(str, series_key(s.job)[1:]))
                out[label].append(100 * float(np.std(medians, ddof=1) / np.mean(medians)))
    return {k: statistics.median(v) for k, v in out.items()}


def overhead(folder: Path, repetitions: int, kind: str, models: list[str] | None) -> None:
    doc = yaml.safe_load((REPO / "inventory.yaml").read_text())
    doc["zoo"] = str(DEFAULT_MANIFEST)
    doc["sweep"]["run"].update(repetitions=repetitions, **KINDS[kind])
    if models:
        doc["sweep"]["models"] = models
    inventory = folder / "default-r.yaml"
    inventory.write_text(yaml.safe_dump(doc))
    store = folder / f"overhead-{kind}.sqlite"
    # the zoo first, untimed: a model build inside the sweep's wall is not a repetition's overhead
    subprocess.run([sys.executable, "-m", "embench", "models", "build", *doc["sweep"]["models"], "-q"], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "embench", "sweep", str(inventory), "--store", str(store), "-q"],
                         capture_output=True, text=True, check=False)  # fmt: skip
    wall = time.perf_counter() - t0
    if out.returncode not in (0, 3):
        raise SystemExit(f"sweep failed ({out.returncode}): {out.stderr.strip()[-800:]}")
    s = Store(store)
    results = s.results(s.find_run(None).run_id)
    windows = sum((r.result.window_ns or 0) for r in results) / 1e9
    jobs = sum(1 for r in results if r.result.measured)
    which = f"models {', '.join(models)}" if models else "every model"
    print(f"\ndefault inventory ({which}), R = {repetitions}, {kind}: {jobs} measured jobs, sweep wall {wall:.0f} s,"
          f" Σ timed windows {windows:.0f} s: wall ÷ windows = {wall / windows:.2f}   (target ≤ 1.3)")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nights", type=int, default=12, help="nights of each kind, alternating")
    ap.add_argument("--repetitions", type=int, default=10)
    ap.add_argument("--min-seconds", type=float, default=RUN["min_seconds"],
                    help=f"each repetition's timed window at least (default {RUN['min_seconds']})")  # fmt: skip
    ap.add_argument("--kinds", nargs="+", choices=list(KINDS), default=["interleaved", "process"],
                    help="the kinds of night collected, alternating (default: interleaved process)")  # fmt: skip
    ap.add_argument("--overhead", nargs="*", choices=list(KINDS), metavar="KIND",
                    help="sweep the default inventory with R = 10 in each kind named (default: interleaved)")  # fmt: skip
    ap.add_argument("--overhead-models", nargs="+", help="the default inventory's models the overhead sweep runs")
    ap.add_argument("--keep", type=Path, help="collect into this folder and keep it (default: a temporary one)")
    ap.add_argument("--analyse", type=Path, help="analyse the nights a --keep run collected; collect nothing")
    ap.add_argument("--baseline-nights", type=int, default=BASELINE_NIGHTS,
                    help=f"judge each night against up to this many before it (default {BASELINE_NIGHTS}, as"
                         " nightly.nights)")  # fmt: skip
    args = ap.parse_args()
    if args.analyse:
        report(args.analyse, {}, args.baseline_nights)
        return
    overheads = (args.overhead or ["interleaved"]) if args.overhead is not None else []
    with tempfile.TemporaryDirectory(prefix="embench-calib-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        walls: dict[str, list[float]] = defaultdict(list)
        if args.nights:
            zoo = zoo_manifest(folder)
        for i in range(args.nights):  # alternating, so that all see the same machine
            for kind in args.kinds:
                walls[kind].append(
                    night(folder, zoo, folder / f"{kind}.sqlite", args.repetitions, kind, args.min_seconds)
                )
                print(f"night {i + 1}/{args.nights} ({kind}): {walls[kind][-1]:.1f} s", file=sys.stderr)
        if args.nights:
            report(folder, walls, args.baseline_nights)
        for kind in overheads:
            overhead(folder, 10, kind, args.overhead_models)


def report(folder: Path, walls: dict[str, list[float]], baseline_nights: int) -> None:
    spreads = {}
    for kind, run in KINDS.items():
        path = folder / f"{kind}.sqlite"
        if not path.exists():
            continue
        store = Store(path)
        nights = [measured(store.results(r.run_id)) for r in store.runs()]
        print(f"\n=== {kind}: {', '.join(f'{k} {v}' for k, v in run.items())} ===")
        analyse(nights, baseline_nights)
        draw_check(nights)
        spreads[kind] = spread(nights)
    process = spreads.get("process", {})
    for other in ("fork", "interleaved"):
        cv = spreads.get(other, {})
        if not (cv and process):
            continue
        print(f"\nbetween-repetition CV (median over nights), {other} vs process (back to back):")
        for label in sorted(cv):
            if label in process:
                print(f"  {label:48s} {other} {cv[label]:5.2f}%   process {process[label]:5.2f}%"
                      f"   ratio {cv[label] / process[label]:.2f}")  # fmt: skip
        ratio = [cv[k] / process[k] for k in cv if k in process and process[k] > 0]
        print(f"  median {other} ÷ process CV ratio: {statistics.median(ratio):.2f}")
        if walls.get(other) and walls.get("process"):
            print(
                f"  night wall {other} ÷ process: {statistics.median(walls[other]) / statistics.median(walls['process']):.2f}"
            )


if __name__ == "__main__":
    main()
