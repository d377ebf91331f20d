"""Output fidelity, accuracy and the low-bit precisions, on real LiteRT and ONNX Runtime."""

from __future__ import annotations

import base64
import json
import math
import sqlite3
import subprocess
import sys
import typing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
import yaml
from conftest import chromium_dom, embench, markdown_row, write_inventory
from onnx import numpy_helper
from powertree import power_tree
from scipy import stats
from scipy.spatial import distance

from embench import fidelity, scores
from embench.agents.bundle import bundled_agent
from embench.agents.python_agent import parse_result
from embench.inventory import Precision
from embench.report import build_report_data
from embench.store import Store, StoredResult
from embench.transports.base import CommandResult
from embench.zoo import FORMATS, KERAS_FORMATS, PRECISIONS, Zoo
from embench_agent.protocol import (
    SCHEMA_VERSION,
    Accuracy,
    CheckSpec,
    DelegateSpec,
    Job,
    ModelRef,
    Outputs,
    Result,
    RunSpec,
    TensorOutput,
)

FAST = {"warmup_runs": 1, "min_runs": 5, "min_seconds": 0.05, "max_seconds": 1.0, "timeout_seconds": 120,
        "idle_seconds": 0}  # fmt: skip


def _outputs(values: np.ndarray, seed: int = 0) -> Outputs:
    flat = np.asarray(values, dtype="<f4")
    data = base64.b64encode(flat.tobytes()).decode()
    return Outputs(inputs=flat.shape[0], seed=seed,
                   tensors=(TensorOutput(name="y", dtype="float32", shape=(1, flat.shape[1]), values=data,
                                         kept=flat.shape[1]),))  # fmt: skip


# ---------------------------------------------------------------------------- the numbers


def test_fidelity_numbers_match_an_independent_computation() -> None:
    rng = np.random.default_rng(3)
    ref = rng.normal(size=(6, 20)).astype(np.float32)
    cand = (ref + rng.normal(scale=0.3, size=ref.shape)).astype(np.float32)
    f = fidelity.compare(_outputs(ref), _outputs(cand))
    r, c = ref.astype(np.float64), cand.astype(np.float64)
    cosines = [1 - distance.cosine(a, b) for a, b in zip(r, c)]
    assert f.cosine_min == pytest.approx(min(cosines), abs=1e-9)
    assert f.cosine_mean == pytest.approx(np.mean(cosines), abs=1e-9)
    assert f.snr_db == pytest.approx(10 * np.log10(np.sum(r**2) / np.sum((c - r) ** 2)), abs=1e-9)
    assert f.max_abs_error == pytest.approx(np.max(np.abs(c - r)), abs=1e-9)
    assert f.top1_agreement == pytest.approx(np.mean(r.argmax(1) == c.argmax(1)))
    in_top5 = [t in np.argsort(-row)[:5] for t, row in zip(r.argmax(1), c)]
    assert f.top5_agreement == pytest.approx(np.mean(in_top5))
    same = fidelity.compare(_outputs(ref), _outputs(ref))
    assert same.snr_db == float("inf") and same.max_abs_error == 0 and same.top1_agreement == 1
    # one all-zero output against a real one is not faithful; two all-zero outputs agree
    zeros = fidelity.compare(_outputs(ref), _outputs(np.zeros_like(ref)))
    assert zeros.cosine_min == 0 and zeros.snr_db == pytest.approx(0.0)
    assert fidelity.compare(_outputs(np.zeros_like(ref)), _outputs(np.zeros_like(ref))).cosine_min == 1
    assert fidelity.below(zeros, 0.95, None, None) == ["cosine 0.0000 < 0.95"]
    assert fidelity.below(f, -1, 100.0, 1.0)[0].startswith("SNR ")


def test_pareto_front_and_accuracy_per_joule() -> None:
    rng = np.random.default_rng(5)
    points = [tuple(p) for p in rng.integers(0, 4, size=(40, 3)).astype(float)]  # many ties
    front = scores.pareto_front(points, [True, False, False])
    for p, on in zip(points, front):
        assert on == (not any(_dominated(p, q) for q in points if q is not p))
    assert scores.pareto_front([(0.9, 1.0), (0.9, 1.0)], [True, False]) == [True, True]  # equal: neither dominates
    assert scores.accuracy_per_joule(0.9, 4.5) == pytest.approx(200.0)  # 0.9 per 4.5 mJ
    assert math.isnan(scores.accuracy_per_joule(0.9, math.nan)) and math.isnan(scores.accuracy_per_joule(0.9, 0.0))


def test_outputs_that_cannot_be_compared_say_why() -> None:
    ref = np.ones((4, 10), np.float32)
    assert "different fidelity inputs" in str(fidelity.comparable(_outputs(ref), _outputs(ref, seed=1)))
    assert "shape [1, 12]" in str(fidelity.comparable(_outputs(ref), _outputs(np.ones((4, 12), np.float32))))
    broken = Outputs(inputs=4, error="ValueError: boom")
    assert fidelity.comparable(_outputs(ref), broken) == "no outputs: ValueError: boom"


def test_accuracy_interval_is_clopper_pearson() -> None:
    acc = fidelity.accuracy(Accuracy(samples=360, top1=331, top5=358))
    assert acc is not None and acc.top1 == pytest.approx(331 / 360) and acc.top5 == pytest.approx(358 / 360)
    # the exact interval from the beta distribution, computed here without binomtest
    assert acc.ci_low == pytest.approx(stats.beta.ppf(0.025, 331, 360 - 331 + 1), rel=1e-9)
    assert acc.ci_high == pytest.approx(stats.beta.ppf(0.975, 331 + 1, 360 - 331), rel=1e-9)
    assert fidelity.accuracy(Accuracy(samples=0, error="no file")) is None


def test_contract_carries_checks_and_reads_older_results() -> None:
    result = Result(job_id="j", status="ok", outputs=_outputs(np.eye(3, dtype=np.float32)),
                    accuracy=Accuracy(samples=3, top1=2, top5=None, predictions=(0, 1, 1)))  # fmt: skip
    again = Result.from_json(result.to_json())
    assert again == result
    old = json.loads(result.to_json())
    del old["outputs"], old["accuracy"], old["repetitions"], old["other_cpu"]
    old["schema"] = 2
    assert Result.from_dict(old).outputs is None and Result.from_dict(old).schema == SCHEMA_VERSION
    job = {"job_id": "j", "device": "d", "model": {"name": "m", "format": "tflite", "precision": "fp32"},
           "runtime": "litert", "delegate": {"name": "cpu"}, "threads": 1, "schema": 2}  # fmt: skip
    assert Job.from_dict(job).checks.fidelity_inputs == 0  # a v2 job keeps no outputs


# ---------------------------------------------------------------------------- real runs


@dataclass(frozen=True)
class Swept:
    folder: Path
    store: Path
    report_md: str
    rows: list[dict[str, object]]


def _sweep(folder: Path, zoo: Path, sweep: dict[str, object], devices: list[dict[str, object]] | None = None,
           **top: object) -> Swept:  # fmt: skip
    inv = write_inventory(folder, zoo, {"run": FAST, **sweep}, devices, **top)
    store = folder / "s.sqlite"
    out = embench("sweep", str(inv), "--store", str(store), "-q", cwd=folder)
    assert out.returncode == 0, out.stderr
    rep = embench("report", "--store", str(store), "--out", str(folder / "rep"), cwd=folder)
    assert rep.returncode == 0, rep.stderr
    md = next((folder / "rep").glob("*/report.md")).read_text()
    csv_rows = pd.read_csv(next((folder / "rep").glob("*/results.csv"))).to_dict("records")
    return Swept(folder, store, md, csv_rows)


def _stored(path: Path) -> list[StoredResult]:
    store = Store(path)
    return store.results(store.find_run(None).run_id)


def litert_outputs(path: Path, xs: np.ndarray, builtin: bool = False) -> np.ndarray:
    """The model's first output for each input, run here with LiteRT directly (int8 in and out
    through the tensors' own scale and zero point); `builtin`: LiteRT's own kernels, no XNNPACK."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType  # noqa: PLC0415

    kwargs = {"experimental_op_resolver_type": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES} if builtin else {}
    it = Interpreter(model_path=str(path), **kwargs)
    it.allocate_tensors()
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    ys = []
    for x in xs:
        feed = x.reshape(i["shape"])
        if i["dtype"] == np.int8:
            s, z = i["quantization"]
            feed = np.clip(np.round(feed / s) + z, -128, 127)
        it.set_tensor(i["index"], feed.astype(i["dtype"]))
        it.invoke()
        y = it.get_tensor(o["index"]).astype(np.float64)
        if o["dtype"] == np.int8:
            s, z = o["quantization"]
            y = (y - z) * s
        ys.append(y.ravel())
    return np.array(ys)


def _row(rows: list[dict[str, object]], **match: object) -> dict[str, object]:
    hits = [r for r in rows if all(r[k] == v for k, v in match.items())]
    assert len(hits) == 1, (match, hits)
    return hits[0]


@pytest.mark.slow
def test_fp32_agrees_and_int8_is_measured_below_it(zoo_path: Path, tmp_path: Path) -> None:
    """Every runtime's fp32 agrees with the reference within float tolerance; fp16 and int8 are
    measured against it, with int8 further away, and the numbers match the runtime run here directly."""
    swept = _sweep(tmp_path, zoo_path, {
        "models": ["tiny"], "precisions": ["fp32", "fp16", "int8"], "runtimes": ["litert", "onnxruntime"],
        "delegates": {"litert": ["cpu", "xnnpack"], "onnxruntime": ["CPUExecutionProvider"]}, "threads": [1],
    })  # fmt: skip
    rows = swept.rows
    ref = _row(rows, precision="fp32", runtime="litert", delegate="cpu")
    assert ref["fid_reference"] == "host litert:cpu t1 fp32"
    for runtime, delegate in (("litert", "xnnpack"), ("onnxruntime", "CPUExecutionProvider")):
        fp32 = _row(rows, precision="fp32", runtime=runtime, delegate=delegate)
        assert fp32["fid_cosine"] > 0.99999 and fp32["fid_top1"] == 1.0 and not fp32["fid_low"]
        assert fp32["fid_max_abs"] < 1e-3
    int8 = _row(rows, precision="int8", runtime="litert", delegate="cpu")
    fp16 = _row(rows, precision="fp16", runtime="litert", delegate="cpu")
    assert int8["fid_snr_db"] < fp16["fid_snr_db"] and int8["fid_cosine"] < fp16["fid_cosine"] < 1.0
    # the same number from the runtime, run here on the same seeded inputs
    stored = {s.job.model.precision + s.job.delegate.name + s.job.runtime: s for s in _stored(swept.store)}
    job = stored["int8cpulitert"].job
    zoo = Zoo(zoo_path)
    rng = np.random.default_rng([job.seed, 7919])
    xs = rng.uniform(job.checks.input_low, job.checks.input_high, size=(job.checks.fidelity_inputs, 1, 32, 32, 3))
    # litert:cpu runs LiteRT's own kernels: XNNPACK's int8 rounds differently on some CPUs (CI's did)
    r = litert_outputs(zoo.artifact("tiny", "tflite", "fp32").path, xs, builtin=True)  # type: ignore[union-attr]
    c = litert_outputs(zoo.artifact("tiny", "tflite", "int8").path, xs, builtin=True)  # type: ignore[union-attr]
    assert int8["fid_snr_db"] == pytest.approx(10 * np.log10(np.sum(r**2) / np.sum((c - r) ** 2)), abs=0.01)
    # the report says it: a fidelity cell per row and the precision view
    cell = markdown_row(swept.report_md, "host", "tiny", "int8", "litert", "cpu")["fidelity vs fp32 CPU"]
    assert cell.startswith(("cos ", "LOW · cos ")) and "SNR" in cell
    assert markdown_row(swept.report_md, "host", "tiny", "fp32", "litert", "cpu")["fidelity vs fp32 CPU"] == "reference"
    assert "## Precisions against fp32" in swept.report_md


def test_a_reference_device_is_the_reference_of_every_device(zoo_path: Path, tmp_path: Path) -> None:
    devices = [{"name": "lab-ref", "transport": "local"}, {"name": "dut", "transport": "local"}]
    swept = _sweep(tmp_path, zoo_path, {"models": ["tiny"], "precisions": ["fp32", "int8"], "runtimes": ["litert"],
                                        "delegates": {"litert": ["cpu"]}, "threads": [1],
                                        "fidelity": {"reference_device": "lab-ref"}}, devices=devices)  # fmt: skip
    for device in ("lab-ref", "dut"):
        for precision in ("fp32", "int8"):
            assert _row(swept.rows, device=device, precision=precision)["fid_reference"] == "lab-ref litert:cpu t1 fp32"
    # the same runtime and kernels on the same machine: the device under test's fp32 is the reference's, exactly
    assert markdown_row(swept.report_md, "dut", "tiny", "fp32", "litert", "cpu")["fidelity vs fp32 CPU"].startswith(
        "cos 1.0000 · exact"
    )


def _broken_qdq(source: Path, out: Path) -> None:
    """The QDQ int8 model with wrong quantisation parameters: the scale of the middle activation's
    QuantizeLinear made 16× too large (the kind of error a bad calibration or a hand edit makes)."""
    model = onnx.load(str(source))
    quant = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    target = quant[len(quant) // 2].input[1]
    for init in model.graph.initializer:
        if init.name == target:
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * 16, init.name))
    onnx.save(model, str(out))


@pytest.mark.slow
def test_a_broken_quantisation_is_flagged_in_every_table(zoo_path: Path, tmp_path: Path) -> None:
    zoo = Zoo(zoo_path)
    int8 = zoo.artifact("tiny", "onnx", "int8")
    fp32 = zoo.artifact("tiny", "onnx", "fp32")
    assert int8 is not None and fp32 is not None
    _broken_qdq(int8.path, tmp_path / "broken.onnx")
    manifest = tmp_path / "zoo.yaml"
    manifest.write_text(yaml.safe_dump({"schema": 1, "models": {"tinyq": {"files": {
        "onnx-fp32": str(fp32.path), "onnx-int8": str(tmp_path / "broken.onnx")}}}}))  # fmt: skip
    swept = _sweep(tmp_path, manifest, {"models": ["tinyq"], "precisions": ["fp32", "int8"],
                                        "runtimes": ["onnxruntime"], "threads": [1]})  # fmt: skip
    row = markdown_row(swept.report_md, "host", "tinyq", "int8", "onnxruntime", "CPUExecutionProvider")
    assert row["status"] == "ok (low fidelity)"
    assert row["fidelity vs fp32 CPU"].startswith("LOW · cos ") and row["speedup ×"].endswith("✗")
    assert "LOW FIDELITY against host onnxruntime:CPUExecutionProvider t1 fp32: cosine" in row["notes"]
    compat = swept.report_md.split("## Compatibility")[1]
    assert "ok (low fidelity)" in compat
    precisions = swept.report_md.split("## Precisions against fp32")[1].split("##")[0]
    assert "| host | tinyq | onnxruntime:CPUExecutionProvider t1 | int8 |" in precisions
    assert "LOW FIDELITY |" in precisions
    # in a browser: the flagged row is not the green of a plain ok
    dom = chromium_dom(next((tmp_path / "rep").glob("*/report.html")), tmp_path / "chrome")
    assert (
        '<td class="lowfid">ok (low fidelity)</td>' in dom and '<h2 id="precisions">Precisions against fp32</h2>' in dom
    )


# ---------------------------------------------------------------------------- accuracy


@pytest.fixture(scope="session")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A classifier trained here on scikit-learn's bundled digits (no download), as TFLite fp32 and
    full-integer int8, and the held-out digits as an evaluation set (.npz: x, y)."""
    import keras  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415
    from sklearn.datasets import load_digits  # noqa: PLC0415

    root = tmp_path_factory.mktemp("digits")
    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[..., None]
    y = data.target.astype(np.int64)
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(8, 3, activation="relu"),
                            keras.layers.Flatten(), keras.layers.Dense(10)])  # fmt: skip
    net.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    net.fit(x[:1200], y[:1200], epochs=15, batch_size=32, verbose=0)
    saved = root / "saved"
    net.export(str(saved), format="tf_saved_model", verbose=False)
    (root / "digits.tflite").write_bytes(tf.lite.TFLiteConverter.from_saved_model(str(saved)).convert())
    conv = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([x[i : i + 1]] for i in range(100))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    (root / "digits_int8.tflite").write_bytes(conv.convert())
    np.savez(root / "eval.npz", x=x[1200:], y=y[1200:])
    (root / "zoo.yaml").write_text(yaml.safe_dump({"schema": 1, "models": {"digits": {
        "input_range": [0, 1], "files": {"tflite-fp32": "digits.tflite", "tflite-int8": "digits_int8.tflite"}}}}))  # fmt: skip
    return root


@pytest.mark.slow
def test_accuracy_on_the_device_matches_the_runtime(digits: Path, tmp_path: Path) -> None:
    swept = _sweep(tmp_path, digits / "zoo.yaml", {
        "models": ["digits"], "precisions": ["fp32", "int8"], "runtimes": ["litert"], "delegates": {"litert": ["cpu"]},
        "threads": [1], "evaluation": {"digits": str(digits / "eval.npz")},
        "fidelity": {"min_top1_agreement": 0.9},
    })  # fmt: skip
    with np.load(digits / "eval.npz") as data:
        x, y = data["x"], data["y"]
    for precision, name in (("fp32", "digits.tflite"), ("int8", "digits_int8.tflite")):
        correct = int(np.sum(np.argmax(litert_outputs(digits / name, x, builtin=True), axis=1) == y))
        row = _row(swept.rows, precision=precision)
        assert row["acc_n"] == len(y) and row["acc_top1"] == pytest.approx(correct / len(y), abs=1e-12)
        assert row["acc_ci_low"] < row["acc_top1"] < row["acc_ci_high"]
        assert correct / len(y) > 0.8  # it learned: the check is not of a constant classifier
    cell = markdown_row(swept.report_md, "host", "digits", "int8", "litert", "cpu")["top-1 accuracy (95% CI)"]
    assert cell.endswith(f"n={len(y)})")
    # the predictions are kept per sample: the fp32 and int8 runs can be told apart sample by sample
    results = {s.job.model.precision: s.result for s in _stored(swept.store)}
    assert len(results["int8"].accuracy.predictions) == len(y)  # type: ignore[union-attr]


def _dominated(p: tuple[float, ...], q: tuple[float, ...]) -> bool:
    """q is at least as accurate, as fast and as frugal as p, and better in one (p = (acc, ms, mJ))."""
    at_least = q[0] >= p[0] and all(b <= a for a, b in zip(p[1:], q[1:]))
    return at_least and (q[0] > p[0] or any(b < a for a, b in zip(p[1:], q[1:])))


@pytest.mark.slow
def test_accuracy_per_joule_budget_and_pareto_front(digits: Path, tmp_path: Path) -> None:
    """LPIRC's view on a device with a power source: accuracy per joule, the most accurate
    configuration within a latency budget, and the Pareto front over (accuracy, latency, energy)."""
    with power_tree(tmp_path / "root") as root:
        # The RAPL counter, read at the window's edges: a sampled source in a 0.3 s window comes out
        # too sparse for an energy figure when a busy CI machine starves the sampler thread.
        device = {"name": "host", "transport": "local", "telemetry": [{"source": "rapl", "root": str(root)}]}
        inv = write_inventory(tmp_path, digits / "zoo.yaml", {
            "models": ["digits"], "precisions": ["fp32", "int8"], "runtimes": ["litert"],
            "delegates": {"litert": ["cpu", "xnnpack"]}, "threads": [1], "evaluation": {"digits": str(digits / "eval.npz")},
            "run": {**FAST, "min_seconds": 0.3, "idle_seconds": 0.3}}, [device])  # fmt: skip
        out = embench("sweep", str(inv), "--store", str(tmp_path / "s.sqlite"), "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    medians = sorted(build_report_data(Store(tmp_path / "s.sqlite"), None).results["median_ms"])
    budget = (medians[1] + medians[2]) / 2  # two configurations within it, two outside
    data = build_report_data(Store(tmp_path / "s.sqlite"), None, budget)
    table = data.scores
    assert len(table) == 4 and table["energy_mj"].notna().all(), data.results[["energy_note"]].to_string()
    points = [(r.acc_top1, r.median_ms, r.energy_mj) for r in table.itertuples()]
    for r, p in zip(table.itertuples(), points):
        assert r.acc_per_j == pytest.approx(r.acc_top1 / (r.energy_mj / 1000))
        assert r.pareto == (not any(_dominated(p, q) for q in points if q is not p))
        assert r.within_budget == (r.median_ms <= budget)
    fast = table[table.within_budget]
    # the most accurate within the budget and, of equally accurate ones (fp32 on cpu and xnnpack), the fastest
    best = fast[fast.acc_top1 == fast.acc_top1.max()].median_ms.idxmin()
    assert len(fast) == 2 and table.loc[best, "best_within_budget"]
    assert int(table["best_within_budget"].sum()) == 1 and table["pareto"].any()
    rep = embench("report", "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path / "rep"),
                  "--latency-budget", f"{budget:.6f}", cwd=tmp_path)  # fmt: skip
    assert rep.returncode == 0, rep.stderr
    md = next((tmp_path / "rep").glob("*/report.md")).read_text()
    section = md.split("## Accuracy against latency and energy")[1].split("\n## ")[0]
    assert section.count("| host | digits |") == 4 and section.count("| best |") == 1 and "★" in section
    assert next((tmp_path / "rep").glob("*/pareto.png")).stat().st_size > 10_000
    bad = embench("report", "--store", str(tmp_path / "s.sqlite"), "--latency-budget", "-3", cwd=tmp_path)
    assert bad.returncode == 2 and "'-3' is not a latency in milliseconds above 0" in bad.stderr


def test_a_bad_evaluation_set_stops_before_a_run_opens(digits: Path, tmp_path: Path) -> None:
    np.savez(tmp_path / "nolabels.npz", x=np.zeros((3, 8, 8, 1), np.float32))
    for path, said in ((tmp_path / "missing.npz", "does not exist"), (tmp_path / "nolabels.npz", "has no array 'y'")):
        inv = write_inventory(tmp_path, digits / "zoo.yaml", {"models": ["digits"], "runtimes": ["litert"],
                              "delegates": {"litert": ["cpu"]}, "evaluation": {"digits": str(path)}})  # fmt: skip
        store = tmp_path / "s.sqlite"
        out = embench("sweep", str(inv), "--store", str(store), "-q", cwd=tmp_path)
        assert out.returncode == 1 and said in out.stderr and "sweep.evaluation.digits" in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1
        assert not store.exists() or not sqlite3.connect(store).execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    inv = write_inventory(tmp_path, digits / "zoo.yaml", {"models": ["digits"], "evaluation": {"other": "x.npz"}})
    out = embench("sweep", str(inv), "--store", str(store), "-q", cwd=tmp_path)
    assert out.returncode == 1 and "sweep.evaluation.other" in out.stderr and "not in sweep.models" in out.stderr
    inv = write_inventory(
        tmp_path, digits / "zoo.yaml", {"models": ["digits"], "fidelity": {"reference_device": "hots"}}
    )
    out = embench("sweep", str(inv), "--store", str(store), "-q", cwd=tmp_path)
    assert out.returncode == 1 and "sweep.fidelity.reference_device" in out.stderr and "'hots'" in out.stderr
    bad_zoo = tmp_path / "zoo.yaml"
    bad_zoo.write_text(
        yaml.safe_dump({"schema": 1, "models": {"m": {"keras": "MobileNetV2", "input_range": [255, 0]}}})
    )
    out = embench("models", "list", "--zoo", str(bad_zoo), cwd=tmp_path)
    assert out.returncode == 1 and "models.m.input_range: [255.0, 0.0] is not [low, high]" in out.stderr


def test_an_agent_killed_in_its_checks_keeps_its_timing() -> None:
    """The agent prints its Result before the checks; a crash after that loses the checks, not the timing."""
    job = Job.from_dict({"job_id": "j1", "device": "d", "model": {"name": "m", "format": "tflite", "precision": "int8"},
                         "runtime": "litert", "delegate": {"name": "gpu"}, "threads": 1,
                         "checks": {"fidelity_inputs": 8, "eval_path": "/data/e.npz"}, "schema": 3})  # fmt: skip
    early = Result(job_id="j1", status="ok", samples_ns=(1000, 1100, 1050))
    died = CommandResult(-11, early.to_json().encode() + b"\n", b"Segmentation fault\n", False, 2.0)
    result = parse_result(job, died, timeout=60)
    assert result.status == "ok" and result.samples_ns == (1000, 1100, 1050)
    assert result.outputs is not None and "killed by SIGSEGV after its timed window" in str(result.outputs.error)
    assert result.accuracy is not None and "the timing stands" in str(result.accuracy.error)
    late = parse_result(job, CommandResult(-9, early.to_json().encode(), b"", True, 60.0), timeout=60)
    assert late.status == "ok" and "no result within 60 s after its timed window" in str(late.outputs.error)  # type: ignore[union-attr]
    nothing = parse_result(job, CommandResult(-11, b"", b"", False, 2.0), timeout=60)
    assert nothing.status == "crashed" and nothing.message == "agent killed by SIGSEGV"
    other = parse_result(job, CommandResult(-11, early.to_json().replace("j1", "j2").encode(), b"", False, 1), 60)
    assert other.status == "crashed"  # an early Result of another job is not this one's


@pytest.mark.slow
def test_an_agent_killed_in_its_checks_on_the_device_keeps_its_timing(digits: Path, tmp_path: Path) -> None:
    """The real agent, killed the moment its first Result line arrives (the timing done, the checks under
    way on a 1,000,000-sample evaluation set): the host keeps that Result and says what cut the checks."""
    np.savez(tmp_path / "huge.npz", x=np.ones((1_000_000, 8, 8, 1), np.uint8), y=np.zeros(1_000_000, np.int64))
    job = Job(job_id="j1", device="host", model=ModelRef("digits", "tflite", "fp32", path=str(digits / "digits.tflite")),
              runtime="litert", delegate=DelegateSpec("cpu"), threads=1,
              run=RunSpec(warmup_runs=1, min_runs=5, min_seconds=0.05, max_seconds=1.0, idle_seconds=0),
              checks=CheckSpec(fidelity_inputs=8, eval_path=str(tmp_path / "huge.npz"), eval_sha256="e" * 64))  # fmt: skip
    agent, _ = bundled_agent()
    proc = subprocess.Popen([sys.executable, str(agent), "run", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(job.to_json().encode())
        proc.stdin.close()
        first = proc.stdout.readline()  # the Result before the checks: the event to act on
        proc.kill()
        rest, err = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not rest, "the checks finished before the kill: the evaluation set is too small to test this"
    result = parse_result(job, CommandResult(proc.returncode, first, err, False, 1.0), timeout=60)
    assert result.status == "ok" and len(result.samples_ns) >= 5
    assert result.accuracy is not None and result.accuracy.samples == 0
    assert "killed by SIGKILL after its timed window, in the checks; the timing stands" in str(result.accuracy.error)
    assert result.outputs is not None and result.outputs.error == result.accuracy.error


def test_an_evaluation_set_of_the_wrong_shape_is_said_and_the_timing_stands(digits: Path, tmp_path: Path) -> None:
    np.savez(tmp_path / "wrong.npz", x=np.zeros((4, 28, 28, 1), np.float32), y=np.zeros(4, np.int64))
    swept = _sweep(tmp_path, digits / "zoo.yaml", {"models": ["digits"], "runtimes": ["litert"],
                   "delegates": {"litert": ["cpu"]}, "evaluation": {"digits": str(tmp_path / "wrong.npz")}})  # fmt: skip
    row = markdown_row(swept.report_md, "host", "digits", "fp32", "litert", "cpu")
    assert row["status"] == "ok" and row["median ms"] != "—"
    assert "x has samples of shape [28, 28, 1]; the model takes [1, 8, 8, 1]" in row["notes"]


# ---------------------------------------------------------------------------- precisions


def test_the_inventory_accepts_exactly_the_zoos_precisions() -> None:
    """inventory.Precision is a Literal for the YAML reader's "did you mean"; it must stay zoo.PRECISIONS."""
    assert typing.get_args(Precision) == PRECISIONS
    assert {p for ps in FORMATS.values() for p in ps} == set(PRECISIONS)


def test_every_precision_is_built_or_says_why(zoo_path: Path) -> None:
    zoo = Zoo(zoo_path)
    for fmt, precisions in KERAS_FORMATS.items():
        for precision in precisions:
            built, failed = zoo.artifact("tiny", fmt, precision), zoo.failure("tiny", fmt, precision)
            assert (built is None) != (failed is None), (fmt, precision)
    # the quantized ONNX files are real quantizations: QDQ nodes, and integer weights
    qdq = onnx.load(str(zoo.artifact("tiny", "onnx", "int8").path))  # type: ignore[union-attr]
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in qdq.graph.node}
    dyn = onnx.load(str(zoo.artifact("tiny", "onnx", "int8_dynamic").path))  # type: ignore[union-attr]
    assert any(n.op_type in ("ConvInteger", "MatMulInteger", "DynamicQuantizeLinear") for n in dyn.graph.node)


def test_a_delegate_that_cannot_run_a_precision_is_unsupported(zoo_path: Path, tmp_path: Path) -> None:
    """XNNPACK has no int16-activation kernels: it takes none of an int16x8 model, and the job is
    `unsupported` with the runtime's own count, not a timing of LiteRT's builtin kernels under its name."""
    swept = _sweep(tmp_path, zoo_path, {"models": ["tiny"], "precisions": ["fp32", "int16x8", "int8_dynamic"],
                                        "runtimes": ["litert"], "delegates": {"litert": ["cpu", "xnnpack"]},
                                        "threads": [1]})  # fmt: skip
    row = markdown_row(swept.report_md, "host", "tiny", "int16x8", "litert", "xnnpack")
    assert row["status"] == "unsupported" and row["median ms"] == "—"
    assert "delegate 'xnnpack' took none of the" in row["notes"] and "int16x8 model" in row["notes"]
    cpu = _row(swept.rows, precision="int16x8", delegate="cpu")
    assert (
        cpu["status"] == "ok" and -1 <= cpu["fid_cosine"] <= 1
    )  # LiteRT's own kernels run it; its fidelity is measured
    assert _row(swept.rows, precision="int8_dynamic", delegate="xnnpack")["status"] in ("ok", "fallback")


@pytest.mark.slow
def test_a_precision_the_converter_refuses_is_unsupported_with_its_reason(tmp_path: Path) -> None:
    """MobileNetV3 with hard-swish: TFLite cannot quantise HARD_SWISH to 16x8. The build records the
    converter's words, the other precisions build, and the sweep records those jobs `unsupported`."""
    manifest = tmp_path / "zoo.yaml"
    manifest.write_text(yaml.safe_dump({"schema": 1, "models": {"hs": {
        "keras": "MobileNetV3Small", "input_shape": [32, 32, 3], "calibration_samples": 2,
        "kwargs": {"alpha": 0.75, "classes": 10, "classifier_activation": None}}}}))  # fmt: skip
    out = embench("models", "build", "hs", "--zoo", str(manifest), "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    line = next(ln for ln in out.stdout.splitlines() if "tflite-int16x8" in ln)
    assert "cannot be built: RuntimeError: Quantization to 16x8-bit not yet supported for op: 'HARD_SWISH'" in line
    assert line.count("HARD_SWISH") == 1  # said once, not once per op
    assert "MB  sha256" in next(ln for ln in out.stdout.splitlines() if "tflite-int8 " in ln)
    swept = _sweep(tmp_path, manifest, {"models": ["hs"], "precisions": ["fp32", "int16x8"], "runtimes": ["litert"],
                                        "delegates": {"litert": ["cpu"]}, "threads": [1]})  # fmt: skip
    row = _row(swept.rows, precision="int16x8")
    assert row["status"] == "unsupported" and "hs tflite-int16x8 cannot be built: RuntimeError" in str(row["message"])
