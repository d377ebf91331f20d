#!/usr/bin/env python3
"""What each precision buys and what it costs in fidelity, and what the fidelity check costs.

Prints, measured in one run on this machine (a ratio holds where an absolute time does not):

1. per zoo model and configuration: each precision's median latency ÷ fp32's in the same
   configuration (the speed it buys) beside its fidelity against fp32 on the CPU (worst cosine, SNR,
   top-1 agreement over the seeded fidelity inputs), from one sweep of every precision;
2. the fidelity check's cost: the same small sweep with `fidelity.inputs: 8` and `0`, interleaved
   `--rounds` times: sweep wall ÷ sweep wall, and the median time a job spends after its timed
   window (the checks) with and without.

Run from the repository root after ./scripts/quickstart (the zoo is built on demand otherwise):
    python benchmarks/precisions.py [--models mobilenet_v2 mobilenet_v3_small efficientnet_b0] [--rounds 3]
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from embench.report import build_report_data
from embench.store import Store

REPO = Path(__file__).resolve().parents[1]
RUN = {"warmup_runs": 5, "min_runs": 30, "min_seconds": 1.0, "max_seconds": 10.0, "timeout_seconds": 300,
       "idle_seconds": 0}  # fmt: skip


def sweep(folder: Path, name: str, sweep: dict[str, object]) -> tuple[Path, float]:
    """Run one sweep of the host; its store and wall time."""
    inventory = folder / f"{name}.yaml"
    doc = {"schema": 1, "zoo": str(REPO / "models" / "zoo.yaml"), "devices": [{"name": "host", "transport": "local"}],
           "sweep": sweep}  # fmt: skip
    inventory.write_text(yaml.safe_dump(doc, sort_keys=False))
    store = folder / f"{name}.sqlite"
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "embench", "sweep", str(inventory), "--store", str(store), "-q"],
                         capture_output=True, text=True, check=False)  # fmt: skip
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"sweep {name} failed ({out.returncode}): {out.stderr.strip()[-800:]}")
    return store, wall


def precision_view(folder: Path, models: list[str]) -> None:
    store, wall = sweep(folder, "precisions", {
        "models": models, "precisions": ["fp32", "fp16", "int8", "int16x8", "int8_dynamic"],
        "runtimes": ["litert", "onnxruntime"],
        "delegates": {"litert": ["cpu", "xnnpack"], "onnxruntime": ["CPUExecutionProvider"]},
        "threads": [1], "run": RUN,
    })  # fmt: skip
    data = build_report_data(Store(store), None)
    print(f"1. each precision against fp32 in the same configuration (1 thread; one sweep, {wall:.0f} s)")
    print(f"   {'model':20s} {'configuration':24s} {'precision':13s} {'ms':>8s} {'× fp32':>7s} {'cos min':>8s}"
          f" {'SNR dB':>7s} {'top-1':>6s}")  # fmt: skip
    for r in data.precisions.itertuples():
        config = f"{r.runtime}:{r.delegate}".replace("CPUExecutionProvider", "CPU")
        top1 = "—" if math.isnan(r.top1_agreement) else f"{100 * r.top1_agreement:.0f}%"
        flag = "  LOW FIDELITY" if r.low_fidelity else ""
        print(f"   {r.model:20s} {config:24s} {r.precision:13s} {r.median_ms:8.3f} {r.speedup_vs_fp32:7.2f}"
              f" {r.cosine:8.4f} {r.snr_db:7.1f} {top1:>6s}{flag}")  # fmt: skip
    unsupported = data.results[data.results.status == "unsupported"]
    for r in unsupported.itertuples():
        print(f"   {r.model:20s} {r.runtime + ':' + r.delegate:24s} {r.precision:13s} unsupported: {r.message[:90]}")


def check_cost(folder: Path, rounds: int) -> None:
    base = {"models": ["mobilenet_v2"], "precisions": ["fp32", "int8"], "runtimes": ["litert"],
            "delegates": {"litert": ["xnnpack"]}, "threads": [1], "run": RUN}  # fmt: skip
    walls: dict[int, list[float]] = {8: [], 0: []}
    after: dict[int, list[float]] = {8: [], 0: []}
    for k in range(rounds):
        for inputs in (8, 0) if k % 2 == 0 else (0, 8):
            store, wall = sweep(folder, f"checks{inputs}-{k}", {**base, "fidelity": {"inputs": inputs}})
            walls[inputs].append(wall)
            s = Store(store)
            for item in s.results(s.find_run(None).run_id):
                r = item.result
                if r.ended_unix is not None and r.window_end_unix is not None:
                    after[inputs].append(r.ended_unix - r.window_end_unix)
    ratio = statistics.median(walls[8]) / statistics.median(walls[0])
    print(f"\n2. the fidelity check's cost (mobilenet_v2 fp32 + int8, XNNPACK; {rounds} interleaved rounds)")
    print(f"   sweep wall, 8 inputs ÷ 0 inputs: {ratio:.3f}  (median {statistics.median(walls[8]):.1f} s"
          f" vs {statistics.median(walls[0]):.1f} s)")  # fmt: skip
    print(f"   after the timed window, per job: {1e3 * statistics.median(after[8]):.0f} ms with 8 inputs,"
          f" {1e3 * statistics.median(after[0]):.0f} ms without")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-precisions", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="embench-precisions-") as tmp:
        if not args.skip_precisions:
            precision_view(Path(tmp), args.models)
        check_cost(Path(tmp), args.rounds)


if __name__ == "__main__":
    main()
