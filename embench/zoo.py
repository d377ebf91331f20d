"""The model zoo: its manifest, the built artifacts, and their checksums."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from .errors import ZooError
from .yamlschema import SchemaError, bounded, build, compose
from .zoo_archs import ARCHITECTURES

DEFAULT_MANIFEST = Path(__file__).resolve().parents[1] / "models" / "zoo.yaml"  # this repository's zoo
BUILDER_VERSION = "2"  # 2: batch-norm statistics calibrated; low-bit precisions; conversion failures recorded
MANIFEST_SCHEMA = 1
# Precisions per format. tflite: int8 is full-integer (int8 in and out), int16x8 has int16 activations and int8
# weights, int8_dynamic has int8 weights and float activations (dynamic-range). onnx: int8 is static QDQ
# (per-channel weights, calibrated on the same seeded data as TFLite's int8), int8_dynamic is dynamic int8.
FORMATS = {
    "tflite": ("fp32", "fp16", "int8", "int16x8", "int8_dynamic"),
    "onnx": ("fp32", "int8", "int8_dynamic"),
    "tflite_edgetpu": ("int8",),
}
PRECISIONS = ("fp32", "fp16", "int8", "int16x8", "int8_dynamic")
SUFFIX = {"tflite": ".tflite", "onnx": ".onnx", "tflite_edgetpu": ".tflite"}
# What Keras builds directly; Edge TPU files are compiled from the int8 file by edgetpu_compiler.
KERAS_FORMATS = {"tflite": FORMATS["tflite"], "onnx": FORMATS["onnx"]}
EDGETPU_COMPILER = "edgetpu_compiler"


def artifact_name(fmt: str, precision: str) -> str:
    return f"{fmt}-{precision}"


@dataclass(frozen=True)
class ModelEntry:
    """One zoo model: a Keras architecture to build, or files the user supplies."""

    keras: str | None = None
    input_shape: list[int] | None = field(default=None, metadata={"min": 1, "max": 100_000})
    kwargs: dict[str, Any] = field(default_factory=dict)
    seed: int = bounded(0, min=0, max=2**32 - 1)
    calibration_samples: int = bounded(8, min=1, max=100_000)
    # The range the model's inputs take: calibration, batch-norm statistics and fidelity inputs are
    # drawn uniformly from it. Keras MobileNetV3 and EfficientNet rescale [0, 255] inside the model.
    input_range: list[float] = field(default_factory=lambda: [-1.0, 1.0], metadata={"min": -1e9, "max": 1e9})
    # Random weights (weights=None) leave batch-norm statistics at mean 0 / variance 1, and the
    # activations die out: every input then gives the same output, and fidelity means nothing.
    # The builder sets them from one seeded batch, once (outputs that depend on the input).
    calibrate_batchnorm: bool = True
    files: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    models: dict[str, ModelEntry]
    schema: int = 1
    build_dir: str = "build"


@dataclass(frozen=True)
class Artifact:
    """A model file ready to run: where it is, what it holds, its checksum."""

    model: str
    format: str
    precision: str
    path: Path
    sha256: str
    size: int

    @property
    def name(self) -> str:
        return artifact_name(self.format, self.precision)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@functools.cache
def _own_architectures_digest() -> str:
    return sha256_file(Path(__file__).with_name("zoo_archs.py"))


@functools.cache
def _tool_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for dist in ("tensorflow-cpu", "tensorflow", "keras", "tf2onnx", "onnxruntime"):  # ORT quantizes ONNX
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


class Zoo:
    """A manifest plus the index of what has been built from it."""

    def __init__(self, manifest_path: Path) -> None:
        self.manifest_path = manifest_path
        node, where = compose(manifest_path)
        if node is None:
            raise ZooError(f"{manifest_path}: the zoo manifest is empty; list models under models:")
        self.manifest = build(node, Manifest, where)
        if self.manifest.schema != MANIFEST_SCHEMA:
            raise where.error("schema", f"zoo manifest schema {self.manifest.schema} is not known",
                              f"this embench reads schema: {MANIFEST_SCHEMA}; upgrade embench or fix the file")  # fmt: skip
        for name, entry in self.manifest.models.items():
            if (entry.keras is None) == (not entry.files):
                raise SchemaError(
                    f"{where.at('models.' + name)}: models.{name}: give either keras: or files:, not both or neither"
                )
            if len(entry.input_range) != 2 or entry.input_range[0] >= entry.input_range[1]:
                raise SchemaError(f"{where.at(f'models.{name}.input_range')}: models.{name}.input_range:"
                                  f" {entry.input_range} is not [low, high] with low < high; e.g. [0, 255]")  # fmt: skip
            for key in entry.files:
                fmt, _, precision = key.partition("-")
                if precision not in FORMATS.get(fmt, ()):
                    known = ", ".join(artifact_name(f, p) for f, ps in FORMATS.items() for p in ps)
                    raise SchemaError(
                        f"{where.at(f'models.{name}.files.{key}')}: unknown artifact {key!r}; use one of {known}"
                    )
        self.build_dir = (manifest_path.parent / self.manifest.build_dir).resolve()
        self.index_path = self.build_dir / "index.json"
        self._index: dict[str, Any] | None = None  # read once, kept in step with every write
        self._hashes: dict[tuple[Path, int, int], str] = {}  # supplied files: (path, mtime, size) → sha256

    # -- what exists -----------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        return list(self.manifest.models)

    def entry(self, model: str) -> ModelEntry:
        try:
            return self.manifest.models[model]
        except KeyError:
            raise ZooError(f"{self.manifest_path}: no model {model!r}; known: {', '.join(self.names)}") from None

    def artifacts_of(self, model: str) -> list[str]:
        """Artifact names this model can have (built or supplied)."""
        entry = self.entry(model)
        if entry.files:
            return list(entry.files)
        return [artifact_name(f, p) for f, ps in FORMATS.items() for p in ps]

    def build_command(self, models: Iterable[str], force: bool = False) -> str:
        """The `embench models build` command for these models of this zoo, ready to paste."""
        words = ["embench", "models", "build", *models, *(["--force"] if force else [])]
        if self.manifest_path.resolve() != DEFAULT_MANIFEST:
            words += ["--zoo", str(self.manifest_path)]
        return shlex.join(words)

    def supplied(self, model: str, fmt: str, precision: str) -> Path | None:
        """The file the user supplied for this artifact (files: in the manifest), or None if it is built."""
        entry = self.entry(model)
        name = artifact_name(fmt, precision)
        if name not in entry.files:
            return None
        path = Path(entry.files[name]).expanduser()
        return path if path.is_absolute() else (self.manifest_path.parent / path)

    def build_key(self, model: str, artifact: str) -> str:
        entry = self.entry(model)
        payload = {"entry": entry.__dict__, "artifact": artifact, "builder": BUILDER_VERSION, "tools": _tool_versions()}
        if entry.keras in ARCHITECTURES:  # the zoo's own code: a change to it is a change of the model
            payload["architecture"] = _own_architectures_digest()
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()

    def _read_index(self) -> dict[str, Any]:
        if self._index is not None:
            return self._index
        try:
            self._index = dict(json.loads(self.index_path.read_text()))
        except FileNotFoundError:
            self._index = {}
        except (OSError, ValueError) as exc:
            raise ZooError(
                f"{self.index_path}: unreadable build index ({exc}); delete it and run `embench models build`"
            ) from None
        return self._index

    def _write_index(self, index: dict[str, Any]) -> None:
        self.build_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.index_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(index, indent=2, sort_keys=True))
        os.replace(tmp, self.index_path)
        self._index = index

    def artifact(self, model: str, fmt: str, precision: str) -> Artifact | None:
        """The built (or supplied) file, or None if it still has to be built."""
        entry = self.entry(model)
        name = artifact_name(fmt, precision)
        if entry.files:
            path = self.supplied(model, fmt, precision)
            if path is None:
                return None
            if not path.is_file():
                raise ZooError(
                    f"{self.manifest_path}: models.{model}.files.{name}: {path} does not exist; fix the path"
                )
            st = path.stat()
            key = (path, st.st_mtime_ns, st.st_size)
            if key not in self._hashes:
                self._hashes[key] = sha256_file(path)
            return Artifact(model, fmt, precision, path, self._hashes[key], st.st_size)
        record = self._read_index().get(f"{model}/{name}")
        if not record or record.get("build_key") != self.build_key(model, name) or "failed" in record:
            return None
        built = self.build_dir / record["file"]
        if not built.is_file() or built.stat().st_size != record["size"]:
            return None
        return Artifact(model, fmt, precision, built, record["sha256"], record["size"])

    def failure(self, model: str, fmt: str, precision: str) -> str | None:
        """Why this artifact cannot be built from this entry with these tools (the converter's own
        words, recorded by the last build), or None."""
        if self.entry(model).files:
            return None
        name = artifact_name(fmt, precision)
        record = self._read_index().get(f"{model}/{name}")
        if not record or record.get("build_key") != self.build_key(model, name):
            return None
        return record.get("failed")

    def missing(self, wanted: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
        """Artifacts still to build: neither built nor known to fail with these tools."""
        return [w for w in wanted if self.artifact(*w) is None and self.failure(*w) is None]

    def record_failure(self, model: str, fmt: str, precision: str, why: str) -> None:
        """Remember that the converter cannot make this artifact (until the entry or a tool changes)."""
        name = artifact_name(fmt, precision)
        self._index = None
        index = dict(self._read_index())
        index[f"{model}/{name}"] = {"failed": why, "build_key": self.build_key(model, name)}
        self._write_index(index)

    def record(self, model: str, fmt: str, precision: str, path: Path) -> Artifact:
        """Add a freshly built file to the index (checksum, size, build key)."""
        name = artifact_name(fmt, precision)
        self._index = None  # another process may have built other files since
        index = dict(self._read_index())
        sha = sha256_file(path)
        index[f"{model}/{name}"] = {
            "file": path.name,
            "sha256": sha,
            "size": path.stat().st_size,
            "build_key": self.build_key(model, name),
        }
        self._write_index(index)
        return Artifact(model, fmt, precision, path, sha, path.stat().st_size)
