"""What a per-op profiler does to the latency it would otherwise time, and what embench's separate
profiled pass costs a job. ONNX Runtime, CPU provider, 1 thread, interleaved rounds:

1. median latency with SessionOptions.enable_profiling ÷ without (the profiler's perturbation: why
   embench never times with it on, and profiles in a pass of its own after the timed window);
2. the sum of the per-node times the profile gives ÷ the profiled runs' mean (how much of an
   inference the nodes account for; the rest is ORT's executor);
3. the profiled pass's wall time (its own session, one warm-up, up to 20 inferences) ÷ the timed
   job's wall time without it.

    python benchmarks/op_profiling.py [--rounds 5] [--runs 200] [--models mobilenet_v2 squeezenet]

Models: a zoo model's ONNX fp32 file (the zoo must be built), or `squeezenet` (ONNX's light model).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "device_agents" / "python"))

from embench.zoo import Zoo  # noqa: E402
from embench_agent.ops import ort_profiled_pass  # noqa: E402


def model_path(name: str) -> Path:
    if name == "squeezenet":
        return Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" / "light_squeezenet.onnx"
    artifact = Zoo(REPO / "models" / "zoo.yaml").artifact(name, "onnx", "fp32")
    if artifact is None:
        raise SystemExit(f"{name}: no ONNX fp32 file; run `embench models build {name}`")
    return artifact.path


def options(profiling: bool) -> ort.SessionOptions:
    o = ort.SessionOptions()
    o.intra_op_num_threads, o.inter_op_num_threads = 1, 1
    o.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if profiling:
        o.enable_profiling = True
        o.profile_file_prefix = "/tmp/embench-bench-ortprof"
    return o


def feeds(session: ort.InferenceSession) -> dict[str, np.ndarray]:
    i = session.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in i.shape]
    return {i.name: np.random.default_rng(0).standard_normal(shape).astype(np.float32)}


def timed(session: ort.InferenceSession, runs: int) -> float:
    x = feeds(session)
    for _ in range(5):
        session.run(None, x)
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        session.run(None, x)
        samples.append(time.perf_counter_ns() - t0)
    return statistics.median(samples) / 1e6


def one_thread_session(path: str, o: ort.SessionOptions) -> ort.InferenceSession:
    o.intra_op_num_threads, o.inter_op_num_threads = 1, 1
    return ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])


class Infer:
    """One inference on a session, with inputs made once (as the agent's profiled pass does)."""

    def __init__(self) -> None:
        self.x: dict[str, np.ndarray] = {}

    def __call__(self, session: ort.InferenceSession) -> None:
        if not self.x:
            self.x.update(feeds(session))
        session.run(None, self.x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--models", nargs="+", default=["mobilenet_v2", "squeezenet"])
    args = ap.parse_args()
    print(f"ONNX Runtime {ort.__version__}, CPU provider, 1 thread, {args.runs} timed runs, {args.rounds} rounds")
    print(
        f"{'model':20s} {'plain ms':>9s} {'profiled ms':>12s} {'÷ (1)':>7s} {'nodes ÷ run (2)':>16s} {'pass ÷ job (3)':>15s}"
    )
    for name in args.models:
        path = str(model_path(name))
        ratios, plains, profs, cover, costs = [], [], [], [], []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            plain = timed(ort.InferenceSession(path, options(False), providers=["CPUExecutionProvider"]), args.runs)
            job_s = time.perf_counter() - t0
            prof_session = ort.InferenceSession(path, options(True), providers=["CPUExecutionProvider"])
            profiled = timed(prof_session, args.runs)
            Path(prof_session.end_profiling()).unlink()
            t0 = time.perf_counter()
            profile = ort_profiled_pass(functools.partial(one_thread_session, path), ort, Infer())
            costs.append((time.perf_counter() - t0) / job_s)
            plains.append(plain)
            profs.append(profiled)
            ratios.append(profiled / plain)
            cover.append(sum(profile.ms) / profile.profiled_ms if profile.profiled_ms else float("nan"))
        print(f"{name:20s} {statistics.median(plains):9.3f} {statistics.median(profs):12.3f}"
              f" {statistics.median(ratios):7.3f} {statistics.median(cover):16.3f} {statistics.median(costs):15.3f}"
              f"   (÷ (1) min {min(ratios):.3f}, max {max(ratios):.3f})")  # fmt: skip


if __name__ == "__main__":
    main()
