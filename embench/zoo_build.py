"""Build zoo models from Keras architectures (weights=None) into TFLite and ONNX files.

Imports TensorFlow, so only `embench models build` (or a sweep that needs a missing model) loads it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from embench_agent.capture import captured_stderr_fd

from .errors import ZooError
from .zoo import EDGETPU_COMPILER, SUFFIX, Artifact, Zoo, artifact_name


def _import_tf() -> tuple[Any, Any]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        import keras  # noqa: PLC0415
        import tensorflow as tf  # noqa: PLC0415
    except ImportError:
        raise ZooError("building zoo models needs TensorFlow; install it with `pip install -e '.[zoo]'`") from None
    tf.get_logger().setLevel("ERROR")
    return tf, keras


class _Builder:
    """Builds all wanted artifacts of one model from one Keras instance."""

    def __init__(self, zoo: Zoo, model: str, workdir: Path) -> None:
        self.zoo, self.model, self.workdir = zoo, model, workdir
        self.entry = zoo.entry(model)
        self.tf, self.keras = _import_tf()
        self.keras.utils.set_random_seed(self.entry.seed)
        try:
            factory = getattr(self.keras.applications, str(self.entry.keras))
        except AttributeError:
            raise ZooError(
                f"{zoo.manifest_path}: models.{model}.keras: keras.applications has no {self.entry.keras!r}"
            ) from None
        shape = tuple(self.entry.input_shape or (224, 224, 3))
        self.shape = shape
        self.net = factory(weights=None, input_shape=shape, **self.entry.kwargs)
        self.saved_model = workdir / "saved_model"
        self.net.export(str(self.saved_model), format="tf_saved_model", verbose=False)

    def _converter(self) -> Any:
        return self.tf.lite.TFLiteConverter.from_saved_model(str(self.saved_model))

    def tflite(self, precision: str) -> bytes:
        tf = self.tf
        conv = self._converter()
        if precision == "fp16":
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.target_spec.supported_types = [tf.float16]
        elif precision == "int8":
            import numpy as np  # noqa: PLC0415

            rng = np.random.default_rng(self.entry.seed)
            count = self.entry.calibration_samples

            def representative() -> Iterator[list[Any]]:
                for _ in range(count):
                    yield [rng.uniform(-1.0, 1.0, size=(1, *self.shape)).astype(np.float32)]

            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.representative_dataset = representative
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            conv.inference_input_type = tf.int8
            conv.inference_output_type = tf.int8
        return bytes(conv.convert())

    def onnx(self, out: Path) -> None:
        import tf2onnx  # noqa: PLC0415

        spec = [self.tf.TensorSpec((1, *self.shape), self.tf.float32, name="input")]
        tf2onnx.convert.from_keras(self.net, input_signature=spec, opset=17, output_path=str(out))


def build_model(
    zoo: Zoo,
    model: str,
    wanted: list[tuple[str, str]],
    on_step: Callable[[str], None] = lambda _: None,
) -> list[Artifact]:
    """Build the (format, precision) artifacts of one model and record them in the index."""
    entry = zoo.entry(model)
    if entry.files:
        raise ZooError(f"{zoo.manifest_path}: models.{model} is supplied as files; there is nothing to build")
    zoo.build_dir.mkdir(parents=True, exist_ok=True)
    edgetpu = ("tflite_edgetpu", "int8") in wanted
    wanted = [w for w in wanted if w[0] != "tflite_edgetpu"]
    if edgetpu and ("tflite", "int8") not in wanted and zoo.artifact(model, "tflite", "int8") is None:
        wanted.append(("tflite", "int8"))  # the Edge TPU file is compiled from it
    built = _build_keras(zoo, model, wanted, on_step) if wanted else []
    if edgetpu:
        on_step(f"{model} tflite_edgetpu-int8")
        built.append(compile_edgetpu(zoo, model))
    return built


def compile_edgetpu(zoo: Zoo, model: str) -> Artifact:
    """Compile the model's int8 file with edgetpu_compiler (Coral) into its Edge TPU file."""
    compiler = shutil.which(EDGETPU_COMPILER)
    if compiler is None:
        raise ZooError(edgetpu_missing(zoo, model))
    source = zoo.artifact(model, "tflite", "int8")
    if source is None:
        raise ZooError(f"{model} has no int8 file to compile for the Edge TPU; run `embench models build {model}`")
    with tempfile.TemporaryDirectory(prefix="embench-edgetpu-") as out:
        res = subprocess.run([compiler, "-s", "-o", out, str(source.path)], capture_output=True, text=True, check=False)
        produced = Path(out) / f"{source.path.stem}_edgetpu.tflite"
        if res.returncode != 0 or not produced.is_file():
            last = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["no output"]
            raise ZooError(f"edgetpu_compiler failed on {source.path} (exit {res.returncode}): {last[0]}")
        final = zoo.build_dir / f"{model}.tflite_edgetpu-int8.tflite"
        shutil.move(str(produced), final)
        (zoo.build_dir / f"{model}.tflite_edgetpu-int8.log").write_text(res.stdout)  # ops mapped to the TPU
    return zoo.record(model, "tflite_edgetpu", "int8", final)


def edgetpu_missing(zoo: Zoo, model: str) -> str:
    return (
        f"no Edge TPU model for {model}: install the Edge TPU compiler ({EDGETPU_COMPILER}, from Coral) so"
        f" `embench models build {model}` compiles it, or supply one under models.{model}.files.tflite_edgetpu-int8"
        f" in {zoo.manifest_path}"
    )


def _build_keras(zoo: Zoo, model: str, wanted: list[tuple[str, str]], on_step: Callable[[str], None]) -> list[Artifact]:
    built: list[Artifact] = []
    # TensorFlow's C++ chatter on fd 2 is hidden (it would tear the progress bar); shown on failure.
    with tempfile.TemporaryDirectory(prefix=f"embench-build-{model}-") as tmp, captured_stderr_fd() as log:
        try:
            builder = _Builder(zoo, model, Path(tmp))
            for fmt, precision in wanted:
                name = artifact_name(fmt, precision)
                on_step(f"{model} {name}")
                final = zoo.build_dir / f"{model}.{name}{SUFFIX[fmt]}"
                partial = Path(tmp) / final.name
                if fmt == "tflite":
                    partial.write_bytes(builder.tflite(precision))
                else:
                    builder.onnx(partial)
                shutil.move(str(partial), final)
                built.append(zoo.record(model, fmt, precision, final))
        except ZooError:
            raise
        except Exception as exc:  # noqa: BLE001 - converter errors come in many types; report them all alike
            tail = " | ".join(log.text.strip().splitlines()[-3:])
            raise ZooError(f"building {model}: {type(exc).__name__}: {exc} {tail}".strip()) from None
    return built
