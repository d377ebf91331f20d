#!/usr/bin/env python3
"""A lab on Dask: do workers on several lab hosts run their boards in parallel, what does the scheduler
cost per job, and how fast does a PostgreSQL store take results next to SQLite?

Starts a real Dask scheduler, 4 real OpenSSH servers on loopback (each a "board" with its own login,
Python and working directory, as in the tests; needs root) and 4 `embench worker` processes, one per
board (the lab hosts), then prints, in interleaved rounds:

- sweep wall time with `--cluster` over all 4 boards ÷ the slowest board swept alone on this host
  (target ≤ 1.3);
- the scheduler's overhead per job: a sweep of short jobs on the host itself through the cluster
  (one worker) against the same sweep with the local thread executor, (cluster − local) ÷ jobs;
- results per second each store accepts (Store.add_result, each result with its raw samples, one
  transaction each, as a sweep commits them): PostgreSQL (a real server started here, fsync on)
  against an SQLite file (synchronous=FULL).

Everything shares this machine's cores, unlike a real lab: each job's timed window is fixed by
min_seconds, so parallel boards overlap, but their start-up work competes for the same CPUs.

Run from the repository root after ./scripts/test has installed the lab extra, with the zoo built:
    sudo .venv/bin/python benchmarks/lab_scaling.py [--rounds 2] [--model mobilenet_v3_small]
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
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
sys.path.insert(0, str(REPO / "benchmarks"))
import ssh_scaling  # noqa: E402
from labcluster import Process, Scheduler, start_worker  # noqa: E402
from postgres import start_postgres  # noqa: E402
from sshd import Board, board_python, keygen, make_board, world_readable_dir  # noqa: E402

from embench.store import Store  # noqa: E402
from embench_agent.protocol import DelegateSpec, Job, ModelRef, Result  # noqa: E402


def sweep(inventory: Path, store: Path, *extra: str) -> float:
    """Wall seconds of one `embench sweep`."""
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "embench", "sweep", str(inventory), "--store", str(store), "-q",
                          *extra], capture_output=True, text=True, check=False)  # fmt: skip
    wall = time.monotonic() - t0
    if out.returncode != 0:
        raise SystemExit(f"sweep failed ({out.returncode}): {out.stderr}")
    return wall


def board_inventory(folder: Path, boards: list[Board], key: Path, known: Path, python: str, model: str) -> Path:
    """ssh_scaling's inventory of the boards (the same sweep), each board on a lab host of its own."""
    path = ssh_scaling.inventory(folder, boards, key, known, python, model)
    doc = yaml.safe_load(path.read_text())
    for device in doc["devices"]:
        device["host"] = f"lab-{device['name']}"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def short_jobs_inventory(folder: Path, model: str) -> tuple[Path, int]:
    doc = {"schema": 1, "devices": [{"name": "host", "transport": "local"}], "sweep": {
        "models": [model], "precisions": ["fp32", "fp16", "int8"], "runtimes": ["litert"],
        "delegates": {"litert": ["cpu", "xnnpack"]}, "threads": [1, 2],
        "run": {"warmup_runs": 1, "min_runs": 3, "min_seconds": 0.05, "max_seconds": 0.2}}}  # fmt: skip
    path = folder / "short.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path, 3 * 2 * 2


def store_rate(target: str | Path, n: int, samples: int) -> float:
    """Results per second Store.add_result takes, each in its own transaction, with `samples` raw samples."""
    store = Store(target)
    run = store.begin_run("bench.yaml", [], "0")
    job = Job("j", "pi", ModelRef("m", "tflite", "fp32"), "litert", DelegateSpec("xnnpack"), 1)
    body = Result(job_id="j", status="ok", samples_ns=tuple(range(1_000_000, 1_000_000 + samples)))
    t0 = time.perf_counter()
    for i in range(n):
        store.add_result(run, dataclasses.replace(job, job_id=f"j{i}"), body)
    rate = n / (time.perf_counter() - t0)
    store.close()
    return rate


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--model", default="mobilenet_v3_small")
    p.add_argument("--results", type=int, default=300, help="results per store for the store rate")
    args = p.parse_args()
    root = world_readable_dir("embench-bench-lab-")
    work = Path(tempfile.mkdtemp(prefix="embench-bench-"))
    boards: list[Board] = []
    procs: list[Process] = []
    try:
        key = work / "id_ed25519"
        pub = keygen(key)
        boards = [make_board(f"bench-{i}", root / f"bench-{i}", pub) for i in range(4)]
        known = work / "known_hosts"
        known.write_text("".join(b.known_hosts_line() + "\n" for b in boards))
        python = board_python(root / "python", ["ai-edge-litert"])
        scheduler = Scheduler(work)
        procs.append(scheduler)
        everything = board_inventory(work, boards, key, known, python, args.model)
        for b in boards:
            procs.append(start_worker(everything, scheduler, f"lab-{b.name}", [b.name], work))
        procs.append(_host_worker(work, scheduler, args.model))
        store = work / "s.sqlite"
        cluster = ["--cluster", scheduler.address]
        sweep(everything, store, *cluster)  # warm: every board's model cache filled
        ratios, together, slowest = [], [], []
        for r in range(args.rounds):
            alone: dict[str, float] = {}
            order: list[Any] = [*boards, "all"] if r % 2 == 0 else ["all", *boards]
            for item in order:
                if item == "all":
                    together.append(sweep(everything, store, *cluster))
                else:
                    alone[item.name] = sweep(board_inventory(work, [item], key, known, python, args.model), store)
            slowest.append(max(alone.values()))
            ratios.append(together[-1] / slowest[-1])
        print(f"4 boards, 4 lab workers: together {statistics.median(together):.2f} s (--cluster), slowest board alone"
              f" {statistics.median(slowest):.2f} s (local): ratio {statistics.median(ratios):.2f} (target <= 1.3;"
              f" rounds: {', '.join(f'{x:.2f}' for x in ratios)})")  # fmt: skip
        print(scheduler_overhead(work, store, cluster, args.model, args.rounds))
        for line in store_rates(work, args.results):
            print(line)
    finally:
        for proc in reversed(procs):
            proc.stop()
        for b in boards:
            b.kill()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def scheduler_overhead(work: Path, store: Path, cluster: list[str], model: str, rounds: int) -> str:
    short, jobs = short_jobs_inventory(work, model)
    local, remote = [], []
    for r in range(rounds + 1):
        for kind in ("local", "cluster") if r % 2 == 0 else ("cluster", "local"):
            wall = sweep(short, store, *(cluster if kind == "cluster" else []))
            (remote if kind == "cluster" else local).append(wall)
    overhead = (statistics.median(remote) - statistics.median(local)) / jobs * 1000
    return (f"{jobs} short jobs on the host: local {statistics.median(local):.2f} s, through the cluster"
            f" {statistics.median(remote):.2f} s: scheduler overhead {overhead:.0f} ms per job (connecting the"
            " client included)")  # fmt: skip


def store_rates(work: Path, results: int) -> list[str]:
    pg = start_postgres(fsync=True)
    lines = []
    try:
        for samples in (100, 2000):
            rate_pg = store_rate(pg.create_database(f"rate{samples}"), results, samples)
            rate_sqlite = store_rate(work / f"rate{samples}.sqlite", results, samples)
            lines.append(f"results/s with {samples} samples each: PostgreSQL {rate_pg:.0f}, SQLite {rate_sqlite:.0f}"
                         f" (PostgreSQL ÷ SQLite {rate_pg / rate_sqlite:.2f})")  # fmt: skip
    finally:
        pg.stop()
    return lines


def _host_worker(work: Path, scheduler: Scheduler, model: str) -> Process:
    short, _ = short_jobs_inventory(work, model)
    return start_worker(short, scheduler, "lab-self", ["host"], work)


if __name__ == "__main__":
    main()
