"""Per-op profiles and placement: ONNX Runtime's profiler on real ORT, LiteRT's delegate partitions on
real LiteRT, benchmark_model's op-profiling tables parsed from real captured outputs."""

from __future__ import annotations

import dataclasses
import json
import re
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from adbd import StandinPhone
from conftest import LIGHT, chromium_load, fast_run, markdown_row, write_inventory
from conftest import embench as embench_cli
from test_agent import job, run
from test_benchmark_model import _phone_inventory

from embench.agents.bm_ops import parse_op_profile
from embench.opstats import by_class, class_scaling, dominant, op_class, op_frame
from embench.report.node_data import node_key, placement_node_data, time_node_data
from embench.store import StoredResult
from embench.zoo import Zoo
from embench_agent.ops import left_on_cpu, ort_profile
from embench_agent.protocol import OpProfile, OpRecord, Result


@pytest.fixture(scope="module")
def tiny_dynamic(zoo_path: Path) -> Path:
    artifact = Zoo(zoo_path).artifact("tiny", "tflite", "int8_dynamic")
    assert artifact is not None
    return artifact.path


def test_onnxruntime_profile_sums_to_the_profiled_latency() -> None:
    """Real ORT, its profiler in a pass of its own after the window: every node with its provider,
    op type and time; the nodes' mean times add up to the profiled runs' mean latency, less at most 15%
    (ORT's executor between kernels), and the timed samples are the unprofiled session's."""
    model = LIGHT / "light_squeezenet.onnx"
    result = run(job(model, "onnxruntime", "CPUExecutionProvider", min_runs=10, op_profiling=True))
    assert result.status == "ok", result.message
    ops = result.ops
    assert ops is not None and ops.source == "onnxruntime-profiler" and ops.timed, ops
    assert ops.runs is not None and ops.runs >= 3 and ops.profiled_ms and ops.profiled_ms > 0
    assert len(ops.ops) >= 20 and [op.index for op in ops.ops] == list(range(len(ops.ops)))
    assert {op.processor for op in ops.ops} == {"CPUExecutionProvider"}
    assert {"Conv", "Concat"} <= {op.type for op in ops.ops}
    total = sum(op.ms or 0 for op in ops.ops)
    assert 0.85 * ops.profiled_ms <= total <= ops.profiled_ms, (total, ops.profiled_ms)
    assert len(result.samples_ns) >= 10


@pytest.mark.parametrize("isolation", ["fork", "process"])
def test_repetitions_profile_once_in_the_last(isolation: str) -> None:
    """With repetitions (only the last one runs the profiled pass), the stitched Result keeps its profile."""
    result = run(job(LIGHT / "light_squeezenet.onnx", "onnxruntime", "CPUExecutionProvider", min_runs=5,
                     op_profiling=True, repetitions=2, isolation=isolation))  # fmt: skip
    assert result.status == "ok" and len(result.repetitions) == 2, result.message
    assert result.ops is not None and result.ops.timed and result.ops.runs and result.ops.runs >= 3


def test_onnxruntime_without_op_profiling_says_where_and_how() -> None:
    result = run(job(LIGHT / "light_squeezenet.onnx", "onnxruntime", "CPUExecutionProvider", min_runs=3))
    assert result.status == "ok" and result.ops is not None and not result.ops.ops
    assert "CPUExecutionProvider" in str(result.ops.note) and "op_profiling: true" in str(result.ops.note)


def test_ort_profile_parse_skips_warmup_and_names_each_node() -> None:
    """The trace's structure, as ORT 1.x writes it: Session model_run spans, Node *_kernel_time events
    inside them (fences ignored). The warm-up run's events are left out of the means."""

    def node(name: str, ts: int, dur: int, op: str, provider: str = "CPUExecutionProvider") -> dict[str, object]:
        return {"cat": "Node", "name": f"{name}_kernel_time", "ts": ts, "dur": dur, "ph": "X",
                "args": {"op_name": op, "provider": provider}}  # fmt: skip

    trace = [
        {"cat": "Session", "name": "model_run", "ts": 0, "dur": 1000},
        node("conv", 10, 900, "Conv"),  # warm-up: slow, skipped
        {"cat": "Session", "name": "model_run", "ts": 2000, "dur": 300},
        {"cat": "Node", "name": "conv_fence_before", "ts": 2001, "dur": 1, "args": {}},
        node("conv", 2005, 200, "Conv"), node("relu", 2210, 50, "Relu", "CUDAExecutionProvider"),
        {"cat": "Session", "name": "model_run", "ts": 3000, "dur": 500},
        node("conv", 3005, 400, "Conv"), node("relu", 3410, 70, "Relu", "CUDAExecutionProvider"),
    ]  # fmt: skip
    profile = ort_profile(trace, skip_runs=1)
    assert profile.runs == 2 and profile.profiled_ms == pytest.approx(0.4)  # (300 + 500) / 2 µs
    conv, relu = profile.ops
    assert (conv.name, conv.type, conv.processor, conv.ms) == (
        "conv",
        "Conv",
        "CPUExecutionProvider",
        pytest.approx(0.3),
    )
    assert (relu.index, relu.processor, relu.ms, relu.calls) == (1, "CUDAExecutionProvider", pytest.approx(0.06), 1)


def test_ort_fallback_names_the_nodes_left_on_the_cpu() -> None:
    """A provider that takes only part of the graph (ORT does not raise; its profile shows it)."""
    from embench_agent.runtimes.onnxruntime import OnnxRuntime  # noqa: PLC0415

    ops = OpProfile.of("onnxruntime-profiler", (
        OpRecord(index=0, name="a", type="Conv", processor="CUDAExecutionProvider", ms=1.0),
        OpRecord(index=1, name="b", type="NonMaxSuppression", processor="CPUExecutionProvider", ms=0.5),
    ))  # fmt: skip
    status, message = OnnxRuntime._judge("CUDAExecutionProvider", ops)
    assert status == "fallback" and "ran 1 of 2 nodes" in str(message) and "NonMaxSuppression ×1" in str(message)
    assert OnnxRuntime._judge("CPUExecutionProvider", ops) == ("ok", None)


def test_litert_placement_names_the_ops_xnnpack_left_on_the_cpu(tiny_dynamic: Path) -> None:
    """Dynamic-range int8: XNNPACK takes the convolutions in partitions and leaves the rest on
    LiteRT's own kernels. Every node is listed with where it ran; the fallback message names the op
    types left on the CPU; the profile says there are no per-op times and how to get them."""
    result = run(job(tiny_dynamic, "litert", "xnnpack", min_runs=3))
    d, ops = result.delegation, result.ops
    assert d is not None and ops is not None and ops.source == "litert-delegation" and not ops.timed
    assert len(ops.ops) == d.total_nodes
    on_cpu = [op for op in ops.ops if op.processor == "cpu"]
    taken = [op for op in ops.ops if op.processor == "xnnpack"]
    assert len(taken) == d.delegated_nodes and len(on_cpu) == d.total_nodes - d.delegated_nodes  # type: ignore[operator]
    assert on_cpu and taken, "the dynamic-range model was expected to be partly delegated"
    assert result.status == "fallback"
    for op_type in {op.type for op in on_cpu}:
        assert op_type in str(result.message)
    assert all(op.partition is not None for op in taken) and all(op.reason for op in on_cpu)
    assert "benchmark_model --enable_op_profiling" in str(ops.note)


def test_litert_cpu_delegate_places_everything_on_the_cpu(zoo_path: Path) -> None:
    artifact = Zoo(zoo_path).artifact("tiny", "tflite", "fp32")
    assert artifact is not None
    result = run(job(artifact.path, "litert", "cpu", min_runs=3))
    assert result.status == "ok" and result.ops is not None
    assert result.ops.ops and {op.processor for op in result.ops.ops} == {"cpu"}
    assert not any(op.reason for op in result.ops.ops)


def test_a_result_of_schema_4_has_no_ops() -> None:
    old = json.loads(Result(job_id="j", status="ok").to_json())
    old.pop("ops")
    old["schema"] = 4
    assert Result.from_dict(old).ops is None


# -- benchmark_model's op profiling, from real captured outputs (tests/fixtures/benchmark_model) ----

FIXTURES = Path(__file__).parent / "fixtures" / "benchmark_model"


def _summary_by_type(text: str) -> dict[str, float]:
    """The regular runs' "Summary by node type" table: node type → avg ms per inference."""
    section = text.split("Operator-wise Profiling Info for Regular Benchmark Runs:")[1]
    table = section.split("Summary by node type")[1].split("Timings (microseconds)")[0]
    out = {}
    for line in table.strip().splitlines()[1:]:
        m = re.match(r"^\s*(\S.*?)\s+(\d+)\s+([\d.]+)\s+([\d.]+)%", line)
        if m:
            out[m.group(1)] = float(m.group(3))
    return out


def test_bm_op_profile_cpu_with_start_column() -> None:
    """An older build's tab-separated table (with [start]): every node on TFLite's CPU kernels. The
    rows add up, per node type, to the tool's own "Summary by node type", and each row's share to
    its [%] column."""
    text = (FIXTURES / "riscv_cpu_op_profiling_mobilenet_v1.txt").read_text()
    profile = parse_op_profile(text, "cpu")
    assert profile is not None and profile.source == "benchmark_model"
    assert len(profile.ops) == 31 and {op.processor for op in profile.ops} == {"cpu"}
    assert profile.runs == 50 and profile.profiled_ms == pytest.approx(2949.9)
    first = profile.ops[0]
    assert (first.type, first.name, first.ms, first.calls) == ("CONV_2D", "[MobilenetV1/MobilenetV1/Conv2d_0/Relu6]:0",
                                                               60.957, 1)  # fmt: skip
    by_type: dict[str, float] = {}
    for op in profile.ops:
        by_type[op.type] = by_type.get(op.type, 0.0) + (op.ms or 0)
    summary = _summary_by_type(text)
    assert set(by_type) == set(summary)
    for op_type, ms in summary.items():
        assert by_type[op_type] == pytest.approx(ms, abs=0.01 + 1e-4 * ms), op_type
    total = sum(by_type.values())
    assert profile.ops[10].ms / total == pytest.approx(0.09403, abs=2e-4)  # type: ignore[operator]


def test_bm_op_profile_nnapi_partitions_and_the_ops_left_on_the_cpu() -> None:
    """NNAPI on DeepLab v3: three TfLiteNnapiDelegate partitions; AVERAGE_POOL_2D, RESIZE_BILINEAR and
    ARG_MAX stay on the CPU (what the capture's author says NNAPI cannot take)."""
    profile = parse_op_profile((FIXTURES / "android_nnapi_op_profiling_deeplab.txt").read_text(), "nnapi")
    assert profile is not None and len(profile.ops) == 8
    assert [op.processor for op in profile.ops].count("nnapi") == 3
    assert {op.type for op in profile.ops if op.processor == "cpu"} == {"AVERAGE_POOL_2D", "RESIZE_BILINEAR", "ARG_MAX"}
    assert profile.runs is None  # the capture ends with the table
    assert "ARG_MAX ×1" in left_on_cpu(profile) and "RESIZE_BILINEAR ×3" in left_on_cpu(profile)


def test_bm_op_profile_xnnpack_operators_without_start_column() -> None:
    """A newer build (INFO: prefixes, space-aligned, no [start]): XNNPACK's operators inside the
    delegate as `Delegate/...` rows, node types with spaces, and `times called` > 1 (avg ms is per
    call: a row's time per inference is avg × calls, which its [%] confirms)."""
    text = (FIXTURES / "x86_xnnpack_op_profiling_efficientdet_cut.txt").read_text()
    profile = parse_op_profile(text, "xnnpack")
    assert profile is not None and len(profile.ops) == 12
    assert profile.ops[0].type == "QUANTIZE" and profile.ops[0].processor == "cpu"
    assert {op.processor for op in profile.ops[1:]} == {"xnnpack"}
    dw = profile.ops[2]
    assert (dw.type, dw.calls) == ("Convolution (NHWC, QC8) DWConv", 13)
    assert dw.ms == pytest.approx(0.051 * 13)
    assert profile.runs == 64 and profile.profiled_ms == pytest.approx(15.3092)
    assert dw.ms / profile.profiled_ms == pytest.approx(0.04317, rel=0.02)  # type: ignore[operator]
    assert parse_op_profile((FIXTURES / "android_cpu_gr802.txt").read_text(), "cpu") is None  # no profile: None


def test_op_profile_through_the_standin_phone(tmp_path: Path, zoo_path: Path) -> None:
    """op_profiling on a phone: the timed run stays as it was, and a second, untimed benchmark_model
    run with --enable_op_profiling gives the per-op table, parsed into the stored Result."""
    with StandinPhone(tmp_path / "phone") as phone:
        inv = _phone_inventory(tmp_path, zoo_path, phone, sweep={
            "models": ["tiny"], "runtimes": ["litert"], "delegates": {"litert": ["cpu"]}, "threads": [1],
            "run": fast_run(op_profiling=True)})  # fmt: skip
        res = embench_cli("sweep", str(inv), "-q", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    db = sqlite3.connect(tmp_path / "results.db")
    result = Result.from_json(db.execute("SELECT result_json FROM results").fetchone()[0])
    assert result.status == "ok" and result.command_line and "--enable_op_profiling" not in result.command_line
    # The stand-in prints the op-profiling capture only when it is given --enable_op_profiling=true.
    assert result.ops is not None and result.ops.source == "benchmark_model" and len(result.ops.ops) == 31
    assert result.aggregate is not None and result.aggregate.count == 1000  # the timed run's, not the profile's


# -- Model Explorer node data, checked with the ai-edge-model-explorer package itself ---------------


def _graph_tensor_names(model: Path) -> set[str]:
    """Every node output's tensor name in the graph Model Explorer's own TFLite adapter builds."""
    from model_explorer.builtin_tflite_flatbuffer_adapter import BuiltinTfliteFlatbufferAdapter  # noqa: PLC0415

    graph = BuiltinTfliteFlatbufferAdapter().convert(str(model), {})["graphCollections"][0].graphs[0]
    return {attr["value"] for node in graph["nodes"] for out in node.get("outputsMetadata", [])
            for attr in out["attrs"] if attr["key"] == "tensor_name"}  # fmt: skip


def _loads_in_model_explorer(data: dict[str, object]) -> None:
    """Strictly into the package's GraphNodeData (unknown keys or wrong types raise), and back through
    its own writer with every value as written (the writer adds its defaults beside them)."""
    import dacite  # noqa: PLC0415 - a dependency of ai-edge-model-explorer, which loads node data with it
    from model_explorer import node_data_builder as ndb  # noqa: PLC0415

    loaded = dacite.from_dict(ndb.GraphNodeData, data, config=dacite.Config(strict=True))
    again = json.loads(loaded.to_json_string())
    assert {key: again[key] for key in data} == data


def test_model_explorer_node_data_keys_real_nodes(tiny_dynamic: Path) -> None:
    """Placement (and time) overlays for a partly delegated model: every key is a node's output
    tensor in the graph Model Explorer builds from the same file, every node is there once, and the
    package's own GraphNodeData loads the JSON unchanged."""
    result = run(job(tiny_dynamic, "litert", "xnnpack", min_runs=3))
    assert result.ops is not None and result.delegation is not None
    placement = placement_node_data(result.ops, "tiny")
    assert placement is not None
    _loads_in_model_explorer(placement)
    results = placement["results"]
    assert isinstance(results, dict)
    assert set(results) <= _graph_tensor_names(tiny_dynamic) and len(results) == len(result.ops.ops)
    on_cpu = [k for k, v in results.items() if v["value"] == 0]
    assert len(on_cpu) == result.delegation.total_nodes - result.delegation.delegated_nodes  # type: ignore[operator]
    assert time_node_data(result.ops, "tiny") is None  # LiteRT's Python API has no per-op times
    timed = OpProfile.of("benchmark_model", tuple(dataclasses.replace(op, ms=0.01 * (i + 1))
                                                  for i, op in enumerate(result.ops.ops)))  # fmt: skip
    times = time_node_data(timed, "tiny")
    assert times is not None and len(times["results"]) == len(result.ops.ops)  # type: ignore[arg-type]
    _loads_in_model_explorer(times)
    assert node_key("Delegate/Convolution (NHWC, QC8) GEMM:2") is None  # inside XNNPACK: not a graph node
    assert node_key("[StatefulPartitionedCall:3, StatefulPartitionedCall:2]:266") == "StatefulPartitionedCall:3"


# -- the study, from a real sweep with op profiling ------------------------------------------------


def test_study_from_a_profiled_sweep(tmp_path: Path, zoo_path: Path) -> None:
    """A sweep with op_profiling: `embench study` prints the headline (speedups with intervals, where
    the time goes), the report writes study.html (Chromium draws it with no console line), ops.csv
    (the normalised per-op table) and Model Explorer overlays; embench.ops() is the same table."""
    import embench  # noqa: PLC0415

    sweep = {"models": ["tiny", "squeezenet"], "precisions": ["fp32", "int8_dynamic"],
             "runtimes": ["litert", "onnxruntime"], "threads": [1, 2],
             "delegates": {"litert": ["cpu", "xnnpack"], "onnxruntime": ["CPUExecutionProvider"]},
             "run": fast_run(op_profiling=True, min_runs=12)}  # fmt: skip
    inv = write_inventory(tmp_path, zoo_path, sweep, store=str(tmp_path / "s.sqlite"))
    res = embench_cli("sweep", str(inv), "-q", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    study = embench_cli("study", "--inventory", str(inv), "--out", str(tmp_path / "study"), cwd=tmp_path)
    assert study.returncode == 0, study.stderr
    head = markdown_row(study.stdout, "host", "squeezenet")
    assert head["time goes to"].startswith("conv "), head  # SqueezeNet's time is its convolutions
    assert "onnxruntime:CPUExecutionProvider" in head["profiled in"]
    assert re.match(
        r"^\d+\.\d\d× \[\d+\.\d\d, \d+\.\d\d\]$",
        markdown_row(study.stdout, "host", "tiny")["speedup × [≥95% interval]"],
    )
    assert "## Ops left on the CPU by a delegate" in study.stdout and "int8_dynamic" in study.stdout
    report = embench_cli("report", "--inventory", str(inv), "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    out = next((tmp_path / "r").iterdir())
    dom, console = chromium_load(out / "study.html", tmp_path / "chrome")
    assert not console, console
    assert "Where the time goes" in dom and "squeezenet" in dom
    csv = pd.read_csv(out / "ops.csv")
    api = embench.ops(tmp_path / "s.sqlite")
    assert len(csv) == len(api) > 0 and set(csv["source"]) == {"litert-delegation", "onnxruntime-profiler"}
    timed = api[api["source"] == "onnxruntime-profiler"]
    assert timed["ms"].notna().all() and (timed.groupby("job_id")["share"].sum() - 1).abs().max() < 1e-9
    assert sorted(p.name for p in (out / "model-explorer" / "host").iterdir()) == [
        "tiny.fp32.xnnpack.t1.placement.json", "tiny.fp32.xnnpack.t2.placement.json",
        "tiny.int8_dynamic.xnnpack.t1.placement.json", "tiny.int8_dynamic.xnnpack.t2.placement.json"]  # fmt: skip


# -- op classes and the analysis (pure) ------------------------------------------------------------


@pytest.mark.parametrize(("op_type", "expected"), [
    ("CONV_2D", "conv"), ("Convolution (NHWC, QC8) GEMM", "conv"), ("QLinearConv", "conv"), ("FusedConv", "conv"),
    ("DEPTHWISE_CONV_2D", "depthwise"), ("Convolution (NHWC, QC8) DWConv", "depthwise"), ("Conv (depthwise)", "depthwise"),
    ("FULLY_CONNECTED", "fully-connected"), ("Gemm", "fully-connected"), ("MatMulInteger", "fully-connected"),
    ("HARD_SWISH", "activation"), ("Sigmoid (NC, QS8)", "activation"), ("Clip", "activation"),
    ("ADD", "elementwise"), ("Add (ND, QS8)", "elementwise"), ("Mul", "elementwise"),
    ("MEAN", "pooling"), ("Max Pooling (NHWC, S8)", "pooling"), ("GlobalAveragePool", "pooling"),
    ("BatchNormalization", "normalization"), ("QUANTIZE", "quantize"), ("Convert (NC, QS8, F32)", "quantize"),
    ("RESHAPE", "reshape/transpose/other"), ("Transpose", "reshape/transpose/other"), ("ARG_MAX", "reshape/transpose/other"),
    ("TfLiteNnapiDelegate", "delegate partition"), ("DELEGATE", "delegate partition"),
])  # fmt: skip
def test_op_classes_across_runtimes(op_type: str, expected: str) -> None:
    assert op_class(op_type) == expected


def _profiled(device: str, delegate: str, threads: int, conv_ms: float, relu_ms: float) -> StoredResult:
    from embench_agent.protocol import DelegateSpec, Job, ModelRef, RunSpec  # noqa: PLC0415

    job = Job(job_id=f"{device}-{delegate}-{threads}", device=device, model=ModelRef(name="m", path="m.onnx",
              format="onnx", precision="fp32"), runtime="onnxruntime", delegate=DelegateSpec(delegate),
              threads=threads, run=RunSpec())  # fmt: skip
    ops = OpProfile.of("onnxruntime-profiler", (
        OpRecord(index=0, name="c", type="Conv", processor=delegate, ms=conv_ms),
        OpRecord(index=1, name="r", type="Relu", processor="CPUExecutionProvider", ms=relu_ms),
    ), runs=10, profiled_ms=conv_ms + relu_ms)  # fmt: skip
    return StoredResult(job, Result(job_id=job.job_id, status="ok", ops=ops))


def test_time_by_class_dominant_and_scaling() -> None:
    stored = [_profiled("pi", "CPUExecutionProvider", 1, 8.0, 2.0), _profiled("pi", "CPUExecutionProvider", 4, 2.0, 2.0),
              _profiled("pi", "CUDAExecutionProvider", 1, 1.0, 1.0)]  # fmt: skip
    frame = op_frame(stored)
    assert len(frame) == 6 and frame.groupby("job_id")["share"].sum().round(9).eq(1).all()
    classes = by_class(frame)
    one = classes[(classes.threads == 1) & (classes.delegate == "CPUExecutionProvider")].set_index("op_class")
    assert one.loc["conv", "share"] == pytest.approx(0.8) and one.loc["activation", "ms"] == 2.0
    cuda = classes[classes.delegate == "CUDAExecutionProvider"].set_index("op_class")
    assert cuda.loc["activation", "on_cpu"] == 1 and cuda.loc["conv", "on_cpu"] == 0
    top = dominant(classes).set_index(["delegate", "threads"])
    assert top.loc[("CPUExecutionProvider", 1), "first"] == "conv"
    scale = class_scaling(classes).set_index(["op_class", "delegate", "threads"])
    assert scale.loc[("conv", "CPUExecutionProvider", 4), "speedup"] == pytest.approx(4.0)
    assert scale.loc[("activation", "CPUExecutionProvider", 4), "speedup"] == pytest.approx(1.0)
    assert scale.loc[("conv", "CUDAExecutionProvider", 1), "speedup"] == pytest.approx(8.0)
