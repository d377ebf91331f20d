"""What a CLI start-up costs: `embench --help` as it is, against the same with the libraries it no
longer imports at start-up (scipy.stats, paramiko, adb-shell) imported first, as before 2026-12-08.
Interleaved, side by side in one run; the ratio is what holds on a noisy machine.

    python benchmarks/cli_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

NOW = [sys.executable, "-m", "embench", "--help"]
EAGER = [sys.executable, "-c", "import scipy.stats, paramiko, adb_shell.adb_device; import runpy, sys;"
         " sys.argv = ['embench', '--help']; runpy.run_module('embench', run_name='__main__')"]  # fmt: skip
BARE = [sys.executable, "-c", "pass"]


def timed(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=15)
    runs = ap.parse_args().runs
    got: dict[str, list[float]] = {"now": [], "eager": [], "bare": []}
    for argv in (NOW, EAGER, BARE):  # warm the file cache, untimed
        timed(argv)
    for _ in range(runs):
        for name, argv in (("now", NOW), ("eager", EAGER), ("bare", BARE)):
            got[name].append(timed(argv))
    med = {k: statistics.median(v) for k, v in got.items()}
    print(f"embench --help, median of {runs}: {med['now']:.2f} s; with scipy.stats, paramiko and adb-shell imported"
          f" first (before 2026-12-08): {med['eager']:.2f} s; python doing nothing: {med['bare']:.2f} s")  # fmt: skip
    print(f"start-up before ÷ now: {med['eager'] / med['now']:.2f}; beyond the interpreter's own:"
          f" {(med['eager'] - med['bare']) / (med['now'] - med['bare']):.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
