#!/usr/bin/env python3
"""Do SSH boards really run in parallel, and does a repeated sweep push nothing?

Starts 4 real OpenSSH servers on loopback (each a "board" with its own login, Python and working
directory, as in the tests; needs root), then for 2 and 4 boards prints, in interleaved rounds:

- sweep wall time with all boards ÷ the slowest board's wall time alone (target ≤ 1.3);
- the bytes pushed by a repeated sweep (target 0), next to what the first sweep pushed.

All boards share this machine's cores, unlike a real lab: each job's timed window is fixed by
min_seconds, so parallel boards overlap, but their start-up work competes for the same CPUs.

Run from the repository root after ./scripts/quickstart (the zoo must be built):
    sudo .venv/bin/python benchmarks/ssh_scaling.py [--rounds 2] [--model mobilenet_v3_small]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from sshd import Board, keygen, make_board, world_readable_dir  # noqa: E402


def sweep(inventory: Path, store: Path) -> tuple[float, int]:
    """Wall seconds of one `embench sweep`, and the model bytes it pushed."""
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "embench", "sweep", str(inventory), "--store", str(store), "-q"],
                         capture_output=True, text=True, check=False)  # fmt: skip
    wall = time.monotonic() - t0
    if out.returncode != 0:
        raise SystemExit(f"sweep failed ({out.returncode}): {out.stderr}")
    db = sqlite3.connect(str(store))
    run_id = db.execute("SELECT run_id FROM runs ORDER BY started_unix DESC LIMIT 1").fetchone()[0]
    pushed = sum(
        json.loads(r[0]).get("pushed_bytes", 0)
        for r in db.execute("SELECT result_json FROM results WHERE run_id=?", (run_id,))
    )
    return wall, pushed


def inventory(folder: Path, boards: list[Board], key: Path, known: Path, python: str, model: str) -> Path:
    devices = [
        {"name": b.name, "transport": "ssh", "python": python, "workdir": str(b.workdir),
         "ssh": {"host": "127.0.0.1", "port": b.port, "user": b.user, "key_file": str(key), "known_hosts": str(known)}}
        for b in boards
    ]  # fmt: skip
    doc = {"schema": 1, "devices": devices, "sweep": {
        "models": [model], "precisions": ["fp32", "int8"], "runtimes": ["litert"], "delegates": {"litert": ["xnnpack"]},
        "threads": [1], "run": {"warmup_runs": 3, "min_runs": 20, "min_seconds": 1.5, "max_seconds": 10}}}  # fmt: skip
    path = folder / f"inventory-{'-'.join(b.name for b in boards)}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--model", default="mobilenet_v3_small")
    args = p.parse_args()
    root = world_readable_dir("embench-bench-lab-")
    work = Path(tempfile.mkdtemp(prefix="embench-bench-"))
    boards: list[Board] = []
    try:
        key = work / "id_ed25519"
        pub = keygen(key)
        boards = [make_board(f"bench-{i}", root / f"bench-{i}", pub) for i in range(4)]
        known = work / "known_hosts"
        known.write_text("".join(b.known_hosts_line() + "\n" for b in boards))
        venv = root / "python"
        subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "ai-edge-litert"], check=True)
        python = str(venv / "bin" / "python")
        store = work / "s.sqlite"
        _, first = sweep(inventory(work, boards, key, known, python, args.model), store)
        print(f"first sweep over 4 boards pushed {first / 1e6:.1f} MB of models (into each board's cache)\n")
        print(f"{'boards':>6s} {'together s':>10s} {'slowest alone s':>15s} {'ratio':>6s} {'repeat pushed B':>15s}")
        for n in (2, 4):
            chosen = boards[:n]
            ratios, together, slowest, pushed = [], [], [], []
            for r in range(args.rounds):
                alone_walls: dict[str, float] = {}
                order: list[Any] = [*chosen, "all"] if r % 2 == 0 else ["all", *chosen]
                for item in order:
                    if item == "all":
                        wall, bytes_ = sweep(inventory(work, chosen, key, known, python, args.model), store)
                        together.append(wall)
                        pushed.append(bytes_)
                    else:
                        alone_walls[item.name], _ = sweep(
                            inventory(work, [item], key, known, python, args.model), store
                        )
                slowest.append(max(alone_walls.values()))
                ratios.append(together[-1] / slowest[-1])
            print(f"{n:6d} {statistics.median(together):10.2f} {statistics.median(slowest):15.2f} "
                  f"{statistics.median(ratios):6.2f} {max(pushed):15d}")  # fmt: skip
    finally:
        for b in boards:
            b.kill()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
