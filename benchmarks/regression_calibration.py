#!/usr/bin/env python3
"""How trustworthy is a nightly verdict on this machine? Measured on real repetition data.

1. Collects `--nights` real nights: each a separate `embench sweep` process (R = `--repetitions`,
   isolation fork), of eight series: three chain models (tests/chainmodel.py: 8×128, 20×256 and
   21×256 MatMul layers; the last is the 20-layer one with one layer more: a real ~5% slowdown) on
   ONNX Runtime at 1 and 2 threads, and the zoo's mobilenet_v3_small on LiteRT (XNNPACK fp32 and int8).
   Then `--process-nights` more with isolation `process`, to compare the spread each gives.
2. Judges every night from the 4th on against the 3 before it (what `embench nightly` does), with
   embench.compare itself, and prints:
   - A/A: the share of series-nights called `slower` (the false regression rate; target ≤ 1%);
   - injected: the same, with tonight's samples scaled by 1.05 (target: detected in ≥ 95%);
   - real: chain 21×256 tonight judged against chain 20×256's nights (its true ratio printed too);
   - the minimum detectable slowdown the verdict achieves per series (median over nights);
   - between-repetition CV with fork against fresh processes, series by series.
3. With `--interleaved`: beside each night above, one night of `--repetitions` rounds of a sweep with
   R = 1 (isolation process: every job once per round, so a burst of a few seconds hits one
   repetition of several series rather than every repetition of one), each series' rounds joined
   into one job of R repetitions and judged the same way: what running a device's repetitions in
   rounds would buy.
4. With `--overhead [fork|process]`: the default inventory swept with R = 10 in each isolation:
   sweep wall ÷ Σ timed windows (target ≤ 1.3); about 20 minutes each. `--nights 0 --overhead`
   measures only that.

Run from the repository root after ./scripts/quickstart:
    python benchmarks/regression_calibration.py [--nights 20] [--process-nights 4] [--repetitions 10] [--keep DIR]
    python benchmarks/regression_calibration.py --nights 10 --isolations process --interleaved
    python benchmarks/regression_calibration.py --analyse DIR          # the numbers again, from kept nights
    python benchmarks/regression_calibration.py --nights 0 --overhead process fork
"""

from __future__ import annotations

import argparse
import dataclasses
import json
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

from embench.compare import Comparison, compare, repetition_medians, series_key, series_label  # noqa: E402
from embench.regression import HISTORY_NIGHTS, MIN_NIGHTS  # noqa: E402
from embench.store import Store, StoredResult  # noqa: E402
from embench.zoo import DEFAULT_MANIFEST, Zoo  # noqa: E402
from embench_agent.repeat import stitched  # noqa: E402

RUN = {"warmup_runs": 3, "min_runs": 10, "min_seconds": 0.2, "max_seconds": 5.0, "timeout_seconds": 120,
       "idle_seconds": 0}  # fmt: skip
BASELINE_NIGHTS = 3


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


def night(folder: Path, zoo: Path, store: Path, repetitions: int, isolation: str) -> float:
    sweep = {"models": ["chain8x128", "chain20", "chain21", "mnv3s"], "precisions": ["fp32", "int8"],
             "runtimes": ["onnxruntime", "litert"],
             "delegates": {"onnxruntime": ["CPUExecutionProvider"], "litert": ["xnnpack"]},
             "threads": [1, 2], "fidelity": {"inputs": 0},
             "run": {**RUN, "repetitions": repetitions, "isolation": isolation}}  # fmt: skip
    inventory = folder / "night.yaml"
    inventory.write_text(yaml.safe_dump({"schema": 1, "zoo": str(zoo), "sweep": sweep,
                                         "devices": [{"name": "host", "transport": "local"}]}))  # fmt: skip
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "embench", "sweep", str(inventory), "--store", str(store), "-q"],
                         capture_output=True, text=True, check=False)  # fmt: skip
    if out.returncode not in (0, 3):
        raise SystemExit(f"sweep failed ({out.returncode}): {out.stderr.strip()[-800:]}")
    return time.perf_counter() - t0


def joined(rounds: list[list[StoredResult]]) -> list[StoredResult]:
    """Each series' rounds (one repetition each) as one job of len(rounds) repetitions, in round order;
    a series that did not measure in every round is left out."""
    by_series: dict[tuple[object, ...], list[StoredResult]] = defaultdict(list)
    for results in rounds:
        for s in results:
            by_series[series_key(s.job)].append(s)
    out = []
    for parts in by_series.values():
        if len(parts) != len(rounds) or not all(p.result.measured for p in parts):
            continue
        first = parts[0]
        fields = stitched([p.result for p in parts], [None] * len(parts), None)  # as the agent joins repetitions
        job = dataclasses.replace(first.job, run=dataclasses.replace(first.job.run, repetitions=len(parts)))
        out.append(StoredResult(job, dataclasses.replace(first.result, **fields)))
    return out


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


def analyse(nights: list[list[StoredResult]]) -> None:
    aa, injected, real, mde = [], [], [], defaultdict(list)
    ratios, start = [], max(BASELINE_NIGHTS, MIN_NIGHTS)
    for j in range(start, len(nights)):
        base, history, tonight = nights[j - BASELINE_NIGHTS : j], nights[max(0, j - HISTORY_NIGHTS) : j], nights[j]
        same = compare(base, tonight, history=history)
        aa += [c for c in same if c.verdict != "not comparable"]
        for c in same:
            if np.isfinite(c.detectable):
                mde[c.label].append(c.detectable)
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
                 "CPUExecutionProvider", t) for m in repetition_medians(s.result)]  # fmt: skip
            b = [m for s in tonight if series_key(s.job)[1:] == ("chain21", "fp32", "onnxruntime",
                 "CPUExecutionProvider", t) for m in repetition_medians(s.result)]  # fmt: skip
            ratios.append(float(np.median(b) / np.median(a)))
    series = len({c.label for c in aa})
    print(f"\nverdicts over {len(nights) - start} nights × {series} series, each night judged against the"
          f" {BASELINE_NIGHTS} before it (night-to-night noise from up to {HISTORY_NIGHTS} before it):")  # fmt: skip
    counts = ", ".join(f"{v} {n}" for v, n in Counter(c.verdict for c in aa).most_common())
    print(f"  A/A verdicts: {counts}")
    print(f"  A/A false regression rate (slower):        {pct(*rate(aa))}   (target ≤ 1%)")
    for c in aa:
        if c.verdict == "slower":
            print(f"    false alarm: {c.label}: {c.why} (night noise used {100 * c.night_sd:.1f}%)")
    inj = ", ".join(f"{v} {n}" for v, n in Counter(c.verdict for c in injected).most_common())
    print(f"  injected ×1.05 detected (slower):           {pct(*rate(injected))}   (target ≥ 95%; all: {inj})")
    quiet = [c for c in injected if c.night_sd <= 0.0125]
    print(f"    of which series-nights with night-to-night noise ≤ 1.25%: {pct(*rate(quiet))}")
    print(f"  real slowdown chain 20→21 layers (true ×{statistics.median(ratios):.3f}) detected: {pct(*rate(real))}"
          f"; as environment: {rate(real, 'environment')[0]}")  # fmt: skip
    print("  per series: night-to-night noise used, and the slowdown it can detect (medians over nights):")
    noise = defaultdict(list)
    for c in aa:
        noise[c.label].append(c.night_sd)
    for label, values in sorted(mde.items()):
        print(f"    {label:58s} noise {100 * statistics.median(noise[label]):5.2f}%   detectable"
              f" {statistics.median(values) - 1:+.1%}")  # fmt: skip


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


def overhead(folder: Path, repetitions: int, isolation: str) -> None:
    doc = yaml.safe_load((REPO / "inventory.yaml").read_text())
    doc["zoo"] = str(DEFAULT_MANIFEST)
    doc["sweep"]["run"]["repetitions"] = repetitions
    doc["sweep"]["run"]["isolation"] = isolation
    inventory = folder / "default-r.yaml"
    inventory.write_text(yaml.safe_dump(doc))
    store = folder / "overhead.sqlite"
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
    print(f"\ndefault inventory, R = {repetitions}, isolation {isolation}: {jobs} measured jobs, sweep wall {wall:.0f} s, Σ timed windows"
          f" {windows:.0f} s: wall ÷ windows = {wall / windows:.2f}   (target ≤ 1.3)")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nights", type=int, default=14, help="nights of each isolation, alternating")
    ap.add_argument("--repetitions", type=int, default=10)
    ap.add_argument(
        "--isolations",
        nargs="+",
        choices=["process", "fork"],
        default=["process", "fork"],
        help="the isolations whose nights are collected (default both, alternating)",
    )
    ap.add_argument(
        "--overhead",
        nargs="*",
        choices=["fork", "process"],
        metavar="ISOLATION",
        help="sweep the default inventory with R = 10 (with each isolation named; default both)",
    )
    ap.add_argument(
        "--interleaved",
        action="store_true",
        help="beside each night, one of --repetitions rounds of R = 1 (isolation process)",
    )
    ap.add_argument("--keep", type=Path, help="collect into this folder and keep it (default: a temporary one)")
    ap.add_argument("--analyse", type=Path, help="analyse the nights a --keep run collected; collect nothing")
    args = ap.parse_args()
    if args.analyse:
        report(args.analyse, {"fork": [], "process": []})
        return
    if args.overhead is not None and args.nights == 0:
        with tempfile.TemporaryDirectory(prefix="embench-overhead-") as tmp:
            for isolation in args.overhead or ["process", "fork"]:
                overhead(Path(tmp), 10, isolation)
        return
    with tempfile.TemporaryDirectory(prefix="embench-calib-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        zoo = zoo_manifest(folder)
        fork_store, proc_store = folder / "fork.sqlite", folder / "process.sqlite"
        walls: dict[str, list[float]] = {"fork": [], "process": []}
        if args.interleaved:
            (folder / "interleaved.json").write_text(json.dumps({"rounds": args.repetitions}))
        for i in range(args.nights):  # alternating, so that all see the same machine
            for isolation, store in (("process", proc_store), ("fork", fork_store)):
                if isolation not in args.isolations:
                    continue
                walls[isolation].append(night(folder, zoo, store, args.repetitions, isolation))
                print(f"night {i + 1}/{args.nights} ({isolation}): {walls[isolation][-1]:.1f} s", file=sys.stderr)
            if args.interleaved:
                rounds = folder / "interleaved.sqlite"
                wall = sum(night(folder, zoo, rounds, 1, "process") for _ in range(args.repetitions))
                print(f"night {i + 1}/{args.nights} (interleaved): {wall:.1f} s", file=sys.stderr)
        report(folder, walls)
        if args.overhead is not None:
            for isolation in args.overhead or ["process", "fork"]:
                overhead(folder, 10, isolation)


def report(folder: Path, walls: dict[str, list[float]]) -> None:
    fork_store, proc_store = folder / "fork.sqlite", folder / "process.sqlite"
    spreads = {}
    for isolation, path in (("process", proc_store), ("fork", fork_store)):
        if not path.exists():
            continue
        store = Store(path)
        nights = [measured(store.results(r.run_id)) for r in store.runs()]
        print(f"\n=== isolation: {isolation} ===")
        analyse(nights)
        spreads[isolation] = spread(nights)
    interleaved = folder / "interleaved.sqlite"
    if interleaved.exists():
        rounds = json.loads((folder / "interleaved.json").read_text())["rounds"]
        store = Store(interleaved)
        runs = [measured(store.results(r.run_id)) for r in store.runs()]
        nights = [joined(runs[i : i + rounds]) for i in range(0, len(runs) - rounds + 1, rounds)]
        print(f"\n=== interleaved: {rounds} rounds of R = 1 (isolation process) a night ===")
        analyse(nights)
        spreads["interleaved"] = spread(nights)
    process = spreads.get("process", {})
    for other in ("fork", "interleaved"):
        cv = spreads.get(other, {})
        if not (cv and process):
            continue
        print(f"\nbetween-repetition CV (median over nights), {other} vs fresh process one after another:")
        for label in sorted(cv):
            if label in process:
                print(f"  {label:48s} {other} {cv[label]:5.2f}%   process {process[label]:5.2f}%"
                      f"   ratio {cv[label] / process[label]:.2f}")  # fmt: skip
        ratio = [cv[k] / process[k] for k in cv if k in process and process[k] > 0]
        print(f"  median {other} ÷ process CV ratio: {statistics.median(ratio):.2f}")
    if walls["fork"] and walls["process"]:
        wall = statistics.median(walls["fork"]) / statistics.median(walls["process"])
        print(f"  night wall fork ÷ process: {wall:.2f}")


if __name__ == "__main__":
    main()
