#!/usr/bin/env python3
"""How far embench's numbers are from the reference tools, and what the harness itself costs.

Prints ratios measured side by side in one interleaved run (this machine is noisy: a ratio holds,
an absolute time does not):

1. embench median ÷ litert-benchmark median, and ÷ a bare invoke() loop's median, per zoo model
   (LiteRT, XNNPACK, 1 thread; target 0.97-1.03);
2. the harness's per-inference cost on a trivial model ÷ a bare loop's, for LiteRT and ONNX Runtime
   (target ≤ 1.2);
3. sweep wall time ÷ the sum of the agents' timed windows, for the default inventory (target ≤ 1.25).

Run from the repository root after ./scripts/quickstart (the zoo models must be built):
    python benchmarks/harness_accuracy.py [--rounds 7] [--runs 300] [--models mobilenet_v2 mobilenet_v3_small] [--skip-sweep]
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from embench.agents import PythonAgent
from embench.inventory import Device
from embench.transports.local import LocalTransport
from embench.zoo import Zoo
from embench_agent.protocol import DelegateSpec, Job, ModelRef, Result, RunSpec

REPO = Path(__file__).resolve().parents[1]

BARE_LITERT = """
import sys, time, numpy as np
from ai_edge_litert.interpreter import Interpreter
path, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
it = Interpreter(model_path=path, num_threads=1)
it.allocate_tensors()
d = it.get_input_details()[0]
it.set_tensor(d["index"], np.random.default_rng(0).uniform(-1, 1, d["shape"]).astype(d["dtype"]))
for _ in range(6):
    it.invoke()
clock, invoke = time.perf_counter_ns, it.invoke
if mode == "each":
    out = []
    for _ in range(n):
        t = clock(); invoke(); out.append(clock() - t)
    print(sorted(out)[n // 2])
else:
    t = clock()
    for _ in range(n):
        invoke()
    print((clock() - t) / n)
"""

BARE_ORT = """
import sys, time, numpy as np, onnxruntime as ort
path, n = sys.argv[1], int(sys.argv[2])
o = ort.SessionOptions(); o.intra_op_num_threads = 1; o.inter_op_num_threads = 1
s = ort.InferenceSession(path, sess_options=o, providers=["CPUExecutionProvider"])
i = s.get_inputs()[0]
feeds = {i.name: np.random.default_rng(0).uniform(-1, 1, [d if isinstance(d, int) else 1 for d in i.shape]).astype(np.float32)}
run = s.run
for _ in range(6):
    run(None, feeds)
clock = time.perf_counter_ns
t = clock()
for _ in range(n):
    run(None, feeds)
print((clock() - t) / n)
"""


def agent_job(path: Path, runtime: str, delegate: str, runs: int) -> Job:
    return Job(
        job_id="bench",
        device="host",
        model=ModelRef(name=path.stem, path=str(path), format=path.suffix[1:], precision="fp32"),
        runtime=runtime,
        delegate=DelegateSpec(delegate),
        threads=1,
        run=RunSpec(warmup_runs=5, min_runs=runs, min_seconds=0.0, max_seconds=120.0),
    )


def embench_run(path: Path, runtime: str, delegate: str, runs: int) -> Result:
    host = Device(name="host")
    result = PythonAgent(LocalTransport(host), host).run(agent_job(path, runtime, delegate, runs), timeout=300)
    if not result.measured:
        raise SystemExit(f"embench job on {path} ended {result.status}: {result.message}")
    return result


def py(code: str, *args: object) -> float:
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def litert_benchmark(path: Path, runs: int) -> float:
    with tempfile.NamedTemporaryFile(suffix=".json") as tmp:
        subprocess.run(
            ["litert-benchmark", "--model", str(path), "--num_runs", str(runs), "--warmup_runs", "5",
             "--num_threads", "1", "--result_json", tmp.name],
            capture_output=True, check=True,
        )  # fmt: skip
        return float(json.loads(Path(tmp.name).read_text())["latency"]["median_ms"])


def agreement(zoo: Zoo, models: list[str], rounds: int, runs: int) -> None:
    print(f"1. median agreement (LiteRT XNNPACK, 1 thread, {runs} timed runs each, {rounds} interleaved rounds)")
    print(
        f"   {'model':22s} {'embench ms':>10s} {'litert-bench ms':>15s} {'bare ms':>8s} {'÷ litert-bench':>15s} {'÷ bare':>7s}"
    )
    for model in models:
        artifact = zoo.artifact(model, "tflite", "fp32")
        if artifact is None:
            raise SystemExit(f"{model} is not built; run `embench models build {model}`")
        ours, ref, bare = [], [], []
        for _ in range(rounds):
            tools = ["embench", "litert-benchmark", "bare"]
            random.shuffle(tools)  # interleave so drift hits all three alike
            for tool in tools:
                if tool == "embench":
                    samples = embench_run(artifact.path, "litert", "xnnpack", runs).samples_ns
                    ours.append(statistics.median(samples) / 1e6)
                elif tool == "litert-benchmark":
                    ref.append(litert_benchmark(artifact.path, runs))
                else:
                    bare.append(py(BARE_LITERT, artifact.path, runs, "each") / 1e6)
        r_ref = statistics.median(o / r for o, r in zip(ours, ref, strict=True))
        r_bare = statistics.median(o / b for o, b in zip(ours, bare, strict=True))
        print(f"   {model:22s} {statistics.median(ours):10.3f} {statistics.median(ref):15.3f} "
              f"{statistics.median(bare):8.3f} {r_ref:15.3f} {r_bare:7.3f}")  # fmt: skip


def trivial_models(folder: Path) -> tuple[Path, Path]:
    import onnx  # noqa: PLC0415
    from onnx import TensorProto, helper  # noqa: PLC0415

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])
    one = helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
    graph = helper.make_graph([helper.make_node("Add", ["x", "one"], ["y"])], "trivial", [x], [y], [one])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx_path = folder / "trivial.onnx"
    onnx.save(model, str(onnx_path))

    import tensorflow as tf  # noqa: PLC0415

    @tf.function(input_signature=[tf.TensorSpec([1, 8], tf.float32)])
    def add_one(t: Any) -> Any:
        return t + 1.0

    conv = tf.lite.TFLiteConverter.from_concrete_functions([add_one.get_concrete_function()])
    tflite_path = folder / "trivial.tflite"
    tflite_path.write_bytes(conv.convert())
    return tflite_path, onnx_path


def overhead(rounds: int, runs: int) -> None:
    print(f"\n2. per-inference cost on a trivial model (x + 1, {runs} runs): embench's timed loop ÷ a bare loop")
    with tempfile.TemporaryDirectory() as tmp:
        tflite, onnx_path = trivial_models(Path(tmp))
        for name, path, runtime, delegate, code, extra in (
            ("LiteRT", tflite, "litert", "xnnpack", BARE_LITERT, ("loop",)),
            ("ONNX Runtime", onnx_path, "onnxruntime", "CPUExecutionProvider", BARE_ORT, ()),
        ):
            ratios, ours, bare = [], [], []
            for _ in range(rounds):
                order = [0, 1]
                random.shuffle(order)
                for which in order:
                    if which == 0:
                        r = embench_run(path, runtime, delegate, runs)
                        ours.append((r.window_ns or 0) / len(r.samples_ns))
                    else:
                        bare.append(py(code, path, runs, *extra))
                ratios.append(ours[-1] / bare[-1])
            print(f"   {name:13s} embench {statistics.median(ours) / 1e3:7.2f} µs, bare {statistics.median(bare) / 1e3:7.2f} µs"
                  f"  ratio {statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f})")  # fmt: skip


def sweep_efficiency(inventory: Path) -> None:
    print(f"\n3. sweep wall time ÷ sum of the agents' timed windows ({inventory.name}; models already built)")
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "s.sqlite"
        t0 = time.monotonic()
        out = subprocess.run(
            [sys.executable, "-m", "embench", "sweep", str(inventory), "--store", str(store), "-q"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        wall = time.monotonic() - t0
        if out.returncode not in (0, 3):
            raise SystemExit(out.stderr)
        db = sqlite3.connect(str(store))
        jobs, windows = db.execute("SELECT COUNT(*), SUM(window_ns) FROM results").fetchone()
        print(
            f"   {jobs} jobs, wall {wall:.1f} s, timed windows {windows / 1e9:.1f} s, ratio {wall / (windows / 1e9):.3f}"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--runs", type=int, default=300, help="timed runs per measurement in part 1")
    p.add_argument("--models", nargs="+", default=["mobilenet_v2", "mobilenet_v3_small"])
    p.add_argument("--inventory", type=Path, default=REPO / "inventory.yaml")
    p.add_argument("--skip-sweep", action="store_true")
    args = p.parse_args()
    random.seed(0)
    agreement(Zoo(REPO / "models" / "zoo.yaml"), args.models, args.rounds, args.runs)
    overhead(args.rounds, 20000)
    if not args.skip_sweep:
        sweep_efficiency(args.inventory)


if __name__ == "__main__":
    main()
