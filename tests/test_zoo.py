"""The model zoo: real builds, checksums, and rebuilding only what changed."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import sqlite3
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import onnx
import pytest
import yaml
from conftest import embench, write_inventory

from embench.zoo import KERAS_FORMATS, Zoo, sha256_file
from embench.zoo_build import runs_once


def test_built_artifacts_are_checksummed_and_load(zoo_path: Path) -> None:
    zoo = Zoo(zoo_path)
    index = json.loads(zoo.index_path.read_text())
    assert set(index) == {f"tiny/{f}-{p}" for f, ps in KERAS_FORMATS.items() for p in ps}
    assert not [key for key, rec in index.items() if "failed" in rec]  # tiny (no hard-swish) makes every precision
    sizes = {}
    for key, rec in index.items():
        path = zoo.build_dir / rec["file"]
        assert sha256_file(path) == rec["sha256"] and path.stat().st_size == rec["size"]
        sizes[key] = rec["size"]
    # fp16 and the int8s are real quantizations: smaller than fp32
    assert sizes["tiny/tflite-int8"] < sizes["tiny/tflite-fp16"] < sizes["tiny/tflite-fp32"]
    assert sizes["tiny/tflite-int8_dynamic"] < sizes["tiny/tflite-fp16"]
    assert (
        sizes["tiny/onnx-int8"] < sizes["tiny/onnx-fp32"] and sizes["tiny/onnx-int8_dynamic"] < sizes["tiny/onnx-fp32"]
    )
    onnx.checker.check_model(str(zoo.build_dir / index["tiny/onnx-fp32"]["file"]))


def test_second_build_rebuilds_nothing(zoo_path: Path, tmp_path: Path) -> None:
    index = Zoo(zoo_path).index_path
    before = index.stat().st_mtime_ns
    out = embench("models", "build", "tiny", "--zoo", str(zoo_path), "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert index.stat().st_mtime_ns == before
    listed = [line for line in out.stdout.splitlines() if line.startswith("tiny")]
    built = len(Zoo(zoo_path).artifacts_of("tiny")) - 1  # all but the Edge TPU file
    assert len(listed) == built + 1 and all("MB  sha256" in line for line in listed[:built])
    assert "tflite_edgetpu-int8" in listed[built] and "not built (needs edgetpu_compiler" in listed[built]


def test_changed_entry_needs_a_rebuild(zoo_path: Path, tmp_path: Path) -> None:
    doc = yaml.safe_load(zoo_path.read_text())
    doc["models"]["tiny"]["seed"] = 1
    doc["build_dir"] = str(Zoo(zoo_path).build_dir)  # same built files, changed definition
    changed = tmp_path / "zoo.yaml"
    changed.write_text(yaml.safe_dump(doc))
    zoo = Zoo(changed)
    assert zoo.artifact("tiny", "tflite", "fp32") is None
    assert Zoo(zoo_path).artifact("tiny", "tflite", "fp32") is not None


def test_supplied_files_and_unknown_models(zoo_path: Path, tmp_path: Path) -> None:
    zoo = Zoo(zoo_path)
    squeeze = zoo.artifact("squeezenet", "onnx", "fp32")
    assert squeeze is not None and squeeze.size > 0
    assert zoo.artifact("squeezenet", "tflite", "fp32") is None
    out = embench("models", "build", "nope", "--zoo", str(zoo_path), cwd=tmp_path)
    assert out.returncode == 1 and "no model 'nope'" in out.stderr


def test_manifest_errors(tmp_path: Path) -> None:
    bad = tmp_path / "zoo.yaml"
    bad.write_text("schema: 1\nmodels:\n  m: {files: {tflite-fp8: x.tflite}}\n")
    out = embench("models", "list", "--zoo", str(bad), cwd=tmp_path)
    assert out.returncode == 1 and "unknown artifact 'tflite-fp8'" in out.stderr
    bad.write_text("schema: 1\nmodels:\n  m: {files: {tflite-fp32: missing.tflite}}\n")
    out = embench("models", "list", "--zoo", str(bad), cwd=tmp_path)
    assert out.returncode == 1 and "missing.tflite does not exist" in out.stderr


def test_edgetpu_model_compiled_when_the_compiler_exists(zoo_path: Path, tmp_path: Path) -> None:
    """Edge TPU jobs run the *_edgetpu.tflite file; edgetpu_compiler makes it from the int8 file.

    The real compiler comes from Coral's package feed, which this machine cannot reach; the stand-in
    below behaves like it on the command line (`-s -o DIR model.tflite` writes DIR/model_edgetpu.tflite).
    """
    bindir = tmp_path / "bin"
    bindir.mkdir()
    compiler = bindir / "edgetpu_compiler"
    compiler.write_text(
        "#!/bin/sh\n"
        'out=.; while [ $# -gt 1 ]; do case "$1" in -o) out="$2"; shift 2;; *) shift;; esac; done\n'
        'b=$(basename "$1" .tflite); cp "$1" "$out/${b}_edgetpu.tflite"\n'
        'echo "Edge TPU Compiler version 16.0 (stand-in)"; echo "Number of operations that will run on Edge TPU: 0"\n'
    )
    compiler.chmod(0o755)
    doc = yaml.safe_load(zoo_path.read_text())
    doc["build_dir"] = str(tmp_path / "build")
    manifest = tmp_path / "zoo.yaml"
    manifest.write_text(yaml.safe_dump(doc))
    shutil.copytree(Zoo(zoo_path).build_dir, tmp_path / "build")  # the Keras files are already built
    env = {"PATH": f"{bindir}:{os.environ['PATH']}"}
    out = embench("models", "build", "tiny", "--zoo", str(manifest), "-q", cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stdout.splitlines() if "tflite_edgetpu-int8" in x)
    assert "MB  sha256" in line and line.endswith("tiny.tflite_edgetpu-int8.tflite")
    inv = write_inventory(tmp_path, manifest, {"models": ["tiny"], "precisions": ["fp32", "int8"], "runtimes": ["litert"],
                                               "delegates": {"litert": ["edgetpu"]}})  # fmt: skip
    out = embench("sweep", str(inv), "--store", str(tmp_path / "s.sqlite"), "-q", cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    db = sqlite3.connect(str(tmp_path / "s.sqlite"))
    rows = db.execute("SELECT precision, format, status, message FROM results").fetchall()
    # fp32 is not planned for the Edge TPU; the int8 job would run the compiled file, but this host has no libedgetpu
    assert [(p, f, s) for p, f, s, _ in rows] == [("int8", "tflite_edgetpu", "unsupported")]
    assert "libedgetpu.so.1" in rows[0][3] and "not attempted" in rows[0][3]


def test_supplied_edgetpu_file(zoo_path: Path, tmp_path: Path) -> None:
    model = Zoo(zoo_path).artifact("tiny", "tflite", "int8")
    assert model is not None
    manifest = tmp_path / "zoo.yaml"
    manifest.write_text(
        yaml.safe_dump({"schema": 1, "models": {"coral": {"files": {"tflite_edgetpu-int8": str(model.path)}}}})
    )
    artifact = Zoo(manifest).artifact("coral", "tflite_edgetpu", "int8")
    assert artifact is not None and artifact.sha256 == model.sha256


REPO = Path(__file__).resolve().parents[1]


SMALL_BUILD = [("tflite", "fp32"), ("tflite", "int8"), ("onnx", "fp32")]


def _build_small(manifest: str, name: str) -> None:
    """One architecture's build in a process of its own (two run at once: a build is mostly one core)."""
    from embench.zoo_build import build_model  # noqa: PLC0415 - TensorFlow, in the worker

    build_model(Zoo(Path(manifest)), name, SMALL_BUILD)


@pytest.mark.slow
def test_every_zoo_architecture_builds_and_runs_or_is_marked(tmp_path: Path) -> None:
    """Each Keras architecture of models/zoo.yaml (the EmBench-scale zoo, the ViT included), built at a
    small input size: TFLite fp32 and int8 and ONNX fp32 are each built, loaded and run once by
    their runtime, or recorded with the converter's or runtime's reason. fp32 TFLite builds for all."""
    manifest = yaml.safe_load((REPO / "models" / "zoo.yaml").read_text())
    entries = {name: e for name, e in manifest["models"].items() if "keras" in e}
    assert {"MobileNet", "ResNet50", "InceptionV3", "DenseNet121", "NASNetMobile", "EfficientNetV2B0", "ConvNeXtTiny",
            "SmallViT"} <= {e["keras"] for e in entries.values()}  # fmt: skip
    zoos = {}
    for name, e in entries.items():  # a zoo each: the workers never write one index at once
        small = {
            **e,
            "input_shape": [75, 75, 3] if e["keras"] == "InceptionV3" else [32, 32, 3],
            "calibration_samples": 1,
        }
        (tmp_path / name).mkdir()
        zoos[name] = tmp_path / name / "zoo.yaml"
        zoos[name].write_text(yaml.safe_dump({"schema": 1, "build_dir": "build", "models": {name: small}}))
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        for done in [pool.submit(_build_small, str(z), n) for n, z in zoos.items()]:
            done.result(timeout=900)  # a build error (not a recorded refusal) fails here; ZooError names the model
    for name, path in zoos.items():
        zoo = Zoo(path)
        for fmt, precision in SMALL_BUILD:
            artifact, why = zoo.artifact(name, fmt, precision), zoo.failure(name, fmt, precision)
            assert (artifact is None) != (why is None), (name, fmt, precision)
            assert artifact is None or runs_once(fmt, artifact.path) is None
            assert why is None or len(why) > 10
        assert zoo.artifact(name, "tflite", "fp32") is not None, zoo.failure(name, "tflite", "fp32")


def test_a_built_file_that_does_not_run_is_marked_not_cached(tmp_path: Path, zoo_path: Path, monkeypatch: Any) -> None:
    """A converter that writes a file its runtime cannot load: the precision is recorded as not
    running, with the runtime's words, and no file is cached for it."""
    from embench import zoo_build  # noqa: PLC0415

    zoo = Zoo(_copy_zoo(zoo_path, tmp_path))
    monkeypatch.setattr(zoo_build._Builder, "tflite", lambda self, precision: b"TFL3" + b"\0" * 64)
    zoo_build.build_model(zoo, "tiny", [("tflite", "fp16")])
    why = zoo.failure("tiny", "tflite", "fp16")
    assert zoo.artifact("tiny", "tflite", "fp16") is None and why and why.startswith("built, but does not run: ")
    assert not list(zoo.build_dir.glob("tiny.tflite-fp16*"))


def test_the_zoos_own_architectures_are_keyed_by_their_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """A change to embench/zoo_archs.py rebuilds the models it defines (and only those)."""
    from embench import zoo  # noqa: PLC0415

    z = Zoo(REPO / "models" / "zoo.yaml")
    assert z.build_key("small_vit", "tflite-fp32") != z.build_key("small_vit", "onnx-fp32")
    before = (z.build_key("small_vit", "tflite-fp32"), z.build_key("resnet50", "tflite-fp32"))
    zoo._own_architectures_digest.cache_clear()
    real = zoo.sha256_file
    monkeypatch.setattr(zoo, "sha256_file", lambda path: "changed" if path.name == "zoo_archs.py" else real(path))
    after = (z.build_key("small_vit", "tflite-fp32"), z.build_key("resnet50", "tflite-fp32"))
    zoo._own_architectures_digest.cache_clear()
    assert after[0] != before[0] and after[1] == before[1]


def _copy_zoo(zoo_path: Path, folder: Path) -> Path:
    """The shared zoo's tiny entry, with a build folder of its own (the shared files stay untouched)."""
    doc = yaml.safe_load(zoo_path.read_text())
    doc["models"] = {"tiny": doc["models"]["tiny"]}
    doc["build_dir"] = str(folder / "build")
    path = folder / "zoo.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path
