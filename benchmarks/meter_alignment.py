#!/usr/bin/env python3
"""How close an external meter on the host gets to the truth, next to a sensor on the device.

A sysfs-like tree on this machine follows a known power curve, P(t) = 3 + sin(2πt/1.3) W on the
monotonic clock (tests/powertree.py). Each round sweeps one zoo model on the host with two power
sources side by side: `hwmon` (an INA226 read by the agent, on the device's clock) and `external`
(tests/meter.py: a meter process on the host printing Unix time and watts at 50 Hz, whose samples
embench moves onto the device's clock with `date +%s.%N` probes). Prints, per round, each source's
energy over the timed window ÷ the exact integral, the clock-probe uncertainty, and the medians.

Run from the repository root after ./scripts/quickstart (the zoo must be built):
    .venv/bin/python benchmarks/meter_alignment.py [--rounds 5] [--model mobilenet_v3_small]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from meter import command as meter_command  # noqa: E402
from powertree import energy, power_tree  # noqa: E402

from embench.telemetry import integrate  # noqa: E402


def one_round(folder: Path, model: str) -> tuple[float, float, float]:
    """(external ÷ exact, hwmon ÷ exact, clock uncertainty s) of one single-job sweep."""
    with power_tree(folder / "root") as root:
        inventory = {
            "schema": 1,
            "zoo": str(REPO / "models" / "zoo.yaml"),
            "devices": [{"name": "host", "transport": "local", "telemetry": [
                {"source": "hwmon", "root": str(root)},
                {"source": "external", "options": {"command": meter_command("curve")}}]}],
            "sweep": {"models": [model], "runtimes": ["litert"], "precisions": ["fp32"],
                      "run": {"min_seconds": 3.0, "max_seconds": 3.5, "idle_seconds": 1.0, "warmup_runs": 3}},
        }  # fmt: skip
        (folder / "inventory.yaml").write_text(yaml.safe_dump(inventory, sort_keys=False))
        store = folder / "s.sqlite"
        out = subprocess.run([sys.executable, "-m", "embench", "sweep", str(folder / "inventory.yaml"),
                              "--store", str(store), "-q", "--no-build"], capture_output=True, text=True, check=False)  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(f"sweep failed ({out.returncode}): {out.stderr}")
    (row,) = sqlite3.connect(str(store)).execute("SELECT result_json FROM results").fetchall()
    tel = json.loads(row[0])["telemetry"]
    t0, t1 = tel["edges"]["window_start"]["t"], tel["edges"]["window_end"]["t"]
    exact = energy(t0, t1)
    got = {s["source"]: integrate([(t, w) for t, w in s["samples"]], t0, t1).joules for s in tel["sources"]}
    external = next(s for s in tel["sources"] if s["source"] == "external")
    return got["external"] / exact, got["hwmon"] / exact, external["facts"]["clock_uncertainty_s"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--model", default="mobilenet_v3_small")
    args = parser.parse_args()
    rows = []
    for n in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="embench-meter-") as tmp:
            ext, hw, unc = one_round(Path(tmp), args.model)
        rows.append((ext, hw, unc))
        print(f"round {n + 1}: external ÷ exact {ext:.4f}   hwmon ÷ exact {hw:.4f}   clock ±{unc * 1e3:.1f} ms")
    med = [statistics.median(col) for col in zip(*rows, strict=True)]
    print(f"median:  external ÷ exact {med[0]:.4f}   hwmon ÷ exact {med[1]:.4f}   clock ±{med[2] * 1e3:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
