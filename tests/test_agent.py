"""The on-device agent against the real LiteRT and ONNX Runtime, one test per result status."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import AGENT_PACKAGE, check_transport_contract, fast_run
from procs import agent_pids, wait_for

from embench.agents import PythonAgent
from embench.inventory import Device
from embench.transports.local import LocalTransport
from embench.zoo import Zoo
from embench_agent.protocol import CheckSpec, DelegateSpec, Job, ModelRef, Result, RunSpec
from embench_agent.timing import make_inputs


def job(path: Path, runtime: str, delegate: str, threads: int = 1, **run: Any) -> Job:
    policy = {k: v for k, v in fast_run(**run).items() if k != "timeout_seconds"}
    return Job(
        job_id="test-job",
        device="host",
        model=ModelRef(name=path.stem, path=str(path), format=path.suffix[1:], precision="fp32"),
        runtime=runtime,
        delegate=DelegateSpec(delegate, library="libedgetpu.so.1" if delegate == "edgetpu" else None),
        threads=threads,
        run=RunSpec.from_dict(policy),
    )


HOST = Device(name="host")


def run(spec: Job, timeout: float = 60) -> Result:
    return PythonAgent(LocalTransport(HOST), HOST).run(spec, timeout=timeout)


@pytest.fixture(scope="module")
def tiny(zoo_path: Path) -> dict[str, Path]:
    zoo = Zoo(zoo_path)
    out = {}
    for fmt, precision in (("tflite", "fp32"), ("tflite", "int8"), ("tflite", "fp16"), ("onnx", "fp32")):
        artifact = zoo.artifact("tiny", fmt, precision)
        assert artifact is not None
        out[f"{fmt}-{precision}"] = artifact.path
    return out


@pytest.mark.parametrize("artifact", ["tflite-fp32", "tflite-fp16", "tflite-int8"])
@pytest.mark.parametrize("delegate", ["cpu", "xnnpack"])
def test_litert_measures(tiny: dict[str, Path], artifact: str, delegate: str) -> None:
    result = run(job(tiny[artifact], "litert", delegate, min_runs=20))
    assert result.status in ("ok", "fallback"), result.message
    assert len(result.samples_ns) >= 20
    assert all(s > 0 for s in result.samples_ns)
    assert result.init_ms and result.init_ms > 0 and result.first_inference_ms and result.first_inference_ms > 0
    assert result.peak_rss_kb and result.peak_rss_kb > 10_000
    assert result.runtime and result.runtime.name == "litert" and result.runtime.version
    d = result.delegation
    assert d and d.total_nodes and d.delegated_nodes is not None and d.total_nodes > 10
    if delegate == "cpu":
        assert result.status == "ok" and d.delegated_nodes == 0
    else:
        assert d.delegated_nodes > 0
        # partial placement must be reported as such, never as plain ok
        assert (result.status == "fallback") == (d.delegated_nodes < d.total_nodes)


def test_run_policy_is_obeyed(tiny: dict[str, Path]) -> None:
    result = run(job(tiny["tflite-fp32"], "litert", "xnnpack", min_runs=7, min_seconds=0.0, warmup_runs=0))
    assert len(result.samples_ns) == 7
    capped = run(job(tiny["tflite-fp32"], "litert", "xnnpack", min_runs=10**9, min_seconds=0.3, max_seconds=0.3))
    # timing stops at the first inference that ends past max_seconds: the window reached 0.3 s, and had
    # not before its last inference began
    assert capped.window_ns is not None and capped.window_ns >= 0.3e9
    assert capped.window_ns - capped.samples_ns[-1] < 0.3e9 and len(capped.samples_ns) < 10**9


def test_onnxruntime_ok(tiny: dict[str, Path]) -> None:
    result = run(job(tiny["onnx-fp32"], "onnxruntime", "CPUExecutionProvider", threads=2))
    assert result.status == "ok", result.message
    assert result.delegation and result.delegation.actual_providers == ("CPUExecutionProvider",)
    assert len(result.samples_ns) >= 5


def test_seeded_inputs_are_reproducible() -> None:
    a = make_inputs(np, [([1, 4], np.int8), ([2, 3], np.float32)], 7)
    b = make_inputs(np, [([1, 4], np.int8), ([2, 3], np.float32)], 7)
    assert a[0].dtype == np.int8 and a[1].shape == (2, 3)
    assert all((x == y).all() for x, y in zip(a, b, strict=True))


def test_unsupported_edgetpu(tiny: dict[str, Path]) -> None:
    result = run(job(tiny["tflite-int8"], "litert", "edgetpu"))
    assert result.status == "unsupported"
    assert result.message and "libedgetpu.so.1" in result.message
    assert not result.samples_ns  # nothing was timed


def test_unsupported_ort_provider_is_not_silently_cpu(tiny: dict[str, Path]) -> None:
    result = run(job(tiny["onnx-fp32"], "onnxruntime", "CUDAExecutionProvider"))
    # ORT itself would run this on the CPU; the agent must refuse to call that a CUDA result.
    assert result.status == "unsupported"
    assert result.message and "CUDAExecutionProvider" in result.message
    assert result.delegation and result.delegation.actual_providers == ("CPUExecutionProvider",)
    assert result.samples_ns == ()


def test_failed_on_corrupt_model(zoo_path: Path) -> None:
    result = run(job(zoo_path.parent / "corrupt.tflite", "litert", "xnnpack"))
    assert result.status == "failed" and result.error == "model_load"
    assert result.message and result.message.startswith(f"cannot load model {zoo_path.parent / 'corrupt.tflite'}: ")


def test_timeout_kills_the_agent(tiny: dict[str, Path]) -> None:
    t0 = time.monotonic()
    result = run(job(tiny["tflite-fp32"], "litert", "xnnpack", min_seconds=30, max_seconds=30), timeout=2)
    assert result.status == "timeout"
    assert result.message and "2 s" in result.message
    assert time.monotonic() - t0 < 30  # not the job's own 30 s: it was cut at 2 s
    assert agent_pids() == []  # and its process is gone, not left running


def test_crashed_when_the_agent_is_killed_by_a_signal(tiny: dict[str, Path]) -> None:
    box: dict[str, Result] = {}
    worker = threading.Thread(
        target=lambda: box.update(r=run(job(tiny["tflite-fp32"], "litert", "xnnpack", min_seconds=20, max_seconds=20)))
    )
    worker.start()
    agent = wait_for("the agent to start", agent_pids, timeout=60)  # this test's own agent: nobody else's
    os.kill(agent[0], signal.SIGKILL)  # wherever it is (loading, warming up, timing): a signal death
    worker.join(60)
    assert not worker.is_alive()
    assert box["r"].status == "crashed"
    assert "SIGKILL" in (box["r"].message or "")


def test_local_transport_keeps_the_transport_contract() -> None:
    t = LocalTransport(HOST)
    check_transport_contract(t, "42", os.getpid())
    assert t.ensure_file(Path(__file__), "0" * 64) == str(Path(__file__).resolve())  # nothing to push: in place


def test_probe_reports_runtimes() -> None:
    info = PythonAgent(LocalTransport(HOST), HOST).probe({})
    assert info.runtimes["litert"].version
    assert "CPUExecutionProvider" in (info.runtimes["onnxruntime"].providers or ())
    assert info.facts.cores and info.facts.cores >= 1


def test_agent_runs_on_python_3_8() -> None:
    """Boards run old Pythons: the agent package must need nothing newer than 3.8."""
    out = subprocess.run(
        [
            str(Path(sys.executable).parent / "vermin"),
            "--no-tips",
            "--violations",
            "-t=3.8-",
            "--eval-annotations",
            str(AGENT_PACKAGE),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_peak_rss_is_the_agents_own_not_its_parents(tiny: dict[str, Path]) -> None:
    """ru_maxrss survives fork+exec on Linux; a big parent must not inflate the agent's figure."""
    ballast = bytearray(600 * 1024 * 1024)
    ballast[::4096] = b"\x01" * len(ballast[::4096])  # touch every page: the parent's peak is now > 600 MB
    result = run(job(tiny["tflite-fp32"], "litert", "xnnpack"))
    del ballast
    assert result.status in ("ok", "fallback")
    assert result.peak_rss_kb is not None and 10_000 < result.peak_rss_kb < 400_000


@pytest.mark.parametrize("isolation", ["fork", "process"])
@pytest.mark.parametrize(("artifact", "runtime", "delegate"),
                         [("tflite-fp32", "litert", "xnnpack"), ("onnx-fp32", "onnxruntime", "CPUExecutionProvider")])  # fmt: skip
def test_repetitions_each_in_a_fresh_process(tiny: dict[str, Path], isolation: str, artifact: str, runtime: str,
                                             delegate: str) -> None:  # fmt: skip
    """R fresh model loads in R fresh processes (none of them the agent itself), their samples in order,
    and the checks run once, after the last repetition's timing."""
    spec = dataclasses.replace(job(tiny[artifact], runtime, delegate, repetitions=3, isolation=isolation),
                               checks=CheckSpec(fidelity_inputs=2))  # fmt: skip
    result = run(spec)
    assert result.status in ("ok", "fallback"), result.message
    reps = result.repetitions
    assert [r.index for r in reps] == [0, 1, 2]
    assert len({r.pid for r in reps}) == 3 and all(r.pid and r.pid > 0 for r in reps)
    assert sum(r.samples for r in reps) == len(result.samples_ns) and all(r.samples >= 5 for r in reps)
    assert all(r.init_ms and r.init_ms > 0 and r.first_inference_ms for r in reps)  # each loaded the model itself
    assert result.window_ns == sum(r.window_ns or 0 for r in reps)
    assert result.outputs is not None and len(result.outputs.tensors) >= 1
    assert result.peak_rss_kb and result.peak_rss_kb > 10_000
    assert all(r.other_cpu is not None and 0 <= r.other_cpu <= 1 for r in reps) and result.other_cpu is not None


def test_a_repetition_that_fails_says_which(zoo_path: Path) -> None:
    result = run(job(zoo_path.parent / "corrupt.tflite", "litert", "xnnpack", repetitions=3))
    assert result.status == "failed" and result.error == "model_load"
    assert (result.message or "").startswith("repetition 1 of 3: cannot load model")
    assert result.repetitions == ()


def test_one_repetition_is_the_plain_run(tiny: dict[str, Path]) -> None:
    result = run(job(tiny["tflite-fp32"], "litert", "xnnpack"))
    assert result.repetitions == () and len(result.samples_ns) >= 5


def test_contention_is_measured_beside_the_timing(tiny: dict[str, Path]) -> None:
    """A busy loop on every CPU beside a one-thread job: the result says other processes took a good share
    of the machine during its window (from /proc/stat), so a slow night is not blamed on the model."""
    hogs = [subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) for _ in range(os.cpu_count() or 1)]
    try:
        result = run(job(tiny["tflite-fp32"], "litert", "cpu", min_seconds=0.5))
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert result.status == "ok" and result.other_cpu is not None
    assert result.other_cpu >= 0.3, result.other_cpu
