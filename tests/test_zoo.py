"""The model zoo: real builds, checksums, and rebuilding only what changed."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import yaml
from conftest import embench

from embench.zoo import Zoo, sha256_file


def test_built_artifacts_are_checksummed_and_load(zoo_path: Path) -> None:
    zoo = Zoo(zoo_path)
    index = json.loads(zoo.index_path.read_text())
    assert set(index) == {"tiny/tflite-fp32", "tiny/tflite-fp16", "tiny/tflite-int8", "tiny/onnx-fp32"}
    sizes = {}
    for key, rec in index.items():
        path = zoo.build_dir / rec["file"]
        assert sha256_file(path) == rec["sha256"] and path.stat().st_size == rec["size"]
        sizes[key] = rec["size"]
    # fp16 and int8 are real quantizations: smaller than fp32
    assert sizes["tiny/tflite-int8"] < sizes["tiny/tflite-fp16"] < sizes["tiny/tflite-fp32"]
    onnx.checker.check_model(str(zoo.build_dir / index["tiny/onnx-fp32"]["file"]))


def test_second_build_rebuilds_nothing(zoo_path: Path, tmp_path: Path) -> None:
    index = Zoo(zoo_path).index_path
    before = index.stat().st_mtime_ns
    out = embench("models", "build", "tiny", "--zoo", str(zoo_path), "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert index.stat().st_mtime_ns == before
    listed = [line for line in out.stdout.splitlines() if line.startswith("tiny")]
    assert len(listed) == 4 and all("MB  sha256" in line for line in listed)


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
