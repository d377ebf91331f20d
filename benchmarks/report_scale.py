#!/usr/bin/env python3
"""How long `embench report` takes on a lab's run, and whether the page it writes is usable.

Writes synthetic lab runs through the real Store (tests/labstore.py: devices × models × ten
configurations, `--samples` raw samples per job, and per-op records: 80 profiled ONNX Runtime ops or
60 LiteRT placements per job) of 1,000 and 10,000 jobs, and the 10,000 again without per-op records,
then, in `--rounds` interleaved rounds, times the real command (`embench report`, a fresh process
each time, imports included) on each. Prints the median times, the 10k-job time ÷ the 10 s target, the 10k ÷ 1k ratio
(10 when report time grows linearly with jobs), the files' sizes, and the overview page's load in
headless Chromium (its time to a DOM with the table drawn, against a blank page's, side by side).

Run from the repository root after ./scripts/quickstart (the zoo is not needed):
    python benchmarks/report_scale.py [--rounds 3] [--samples 100] [--jobs 1000 10000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from labstore import write_lab_run  # noqa: E402

TARGET_S = 10.0
EMBENCH = [sys.executable, "-m", "embench"]
CHROMIUM = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--no-first-run", "--window-size=1400,2000", "--dump-dom"]  # fmt: skip


def _report(store: Path, out: Path) -> float:
    start = time.perf_counter()
    subprocess.run([*EMBENCH, "report", "--store", str(store), "--out", str(out)], check=True, capture_output=True)
    return time.perf_counter() - start


def _load(url: str, profile: Path) -> tuple[float, str]:
    """Seconds until Chromium prints the DOM; the page's script has drawn its table by then (checked)."""
    start = time.perf_counter()
    dom = subprocess.run([*CHROMIUM, f"--user-data-dir={profile}", "--virtual-time-budget=30000", url],
                         check=True, capture_output=True, text=True).stdout  # fmt: skip
    return time.perf_counter() - start, dom


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="embench-report-scale-") as tmp:
        folder = Path(tmp)
        stores = {}
        for jobs in args.jobs:
            start = time.perf_counter()
            stores[jobs] = folder / f"lab{jobs}.sqlite"
            run_id = write_lab_run(stores[jobs], jobs, samples=args.samples)
            print(f"store of {jobs} jobs × {args.samples} samples written in {time.perf_counter() - start:.1f} s"
                  f" ({stores[jobs].stat().st_size / 1e6:.0f} MB), run {run_id}")  # fmt: skip
        big = max(args.jobs)
        bare = folder / f"lab{big}-no-ops.sqlite"
        write_lab_run(bare, big, samples=args.samples, ops=False)
        times: dict[int, list[float]] = {j: [] for j in args.jobs}
        bare_times: list[float] = []
        for _ in range(args.rounds):
            for jobs in args.jobs:  # interleaved: a noisy minute hits every size alike
                times[jobs].append(_report(stores[jobs], folder / f"reports{jobs}"))
            bare_times.append(_report(bare, folder / "reports-no-ops"))
        print(f"\n`embench report` (a fresh process, imports included), median of {args.rounds} interleaved rounds")
        for jobs in args.jobs:
            t = statistics.median(times[jobs])
            run = next((folder / f"reports{jobs}").iterdir())
            size = sum(p.stat().st_size for p in run.rglob("*") if p.is_file() and p.name != "samples.csv")
            print(f"  {jobs:6d} jobs  {t:6.2f} s  (min {min(times[jobs]):.2f}, max {max(times[jobs]):.2f})"
                  f"  ÷ {TARGET_S:g} s target = {t / TARGET_S:.2f}   HTML {(run / 'report.html').stat().st_size / 1e6:.1f} MB,"
                  f" {len(list((run / 'devices').glob('*.html')))} device pages, all files but samples.csv"
                  f" {size / 1e6:.0f} MB")  # fmt: skip
        t = statistics.median(bare_times)
        print(f"  {big:6d} jobs  {t:6.2f} s  (min {min(bare_times):.2f}, max {max(bare_times):.2f})"
              f"  ÷ {TARGET_S:g} s target = {t / TARGET_S:.2f}   without per-op records; per-op records cost"
              f" ×{statistics.median(times[big]) / t:.2f}")  # fmt: skip
        if len(args.jobs) >= 2:
            small = min(args.jobs)
            ratio = statistics.median(times[big]) / statistics.median(times[small])
            print(f"  {big} ÷ {small} jobs: time ratio {ratio:.2f} (jobs ratio {big / small:g}: linear or better"
                  " when the time ratio is at most that)")  # fmt: skip
        print("\nthe overview page in headless Chromium at 1400 px (time to a DOM with its table drawn)")
        blank = folder / "blank.html"
        blank.write_text("<!doctype html><title>blank</title>")
        for jobs in args.jobs:
            page = next((folder / f"reports{jobs}").iterdir()) / "report.html"
            loads, blanks = [], []
            for i in range(args.rounds):
                seconds, dom = _load(page.as_uri(), folder / f"chrome{i}")
                assert 'class="gridjs-tbody"' in dom, "the results table was not drawn"
                loads.append(seconds)
                blanks.append(_load(blank.as_uri(), folder / f"chrome{i}")[0])
            print(f"  {jobs:6d} jobs  {statistics.median(loads):5.2f} s, a blank page {statistics.median(blanks):5.2f} s:"
                  f" ratio {statistics.median(loads) / statistics.median(blanks):.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
