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
from embench_agent.errors import Unsupported
from embench_agent.runtimes.litert import import_litert
from embench_agent.runtimes.onnxruntime import input_dtype

from .errors import ZooError
from .zoo import EDGETPU_COMPILER, SUFFIX, Artifact, Zoo, artifact_name
from .zoo_archs import ARCHITECTURES

ONNX_INPUT = "input"


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
        factory = ARCHITECTURES.get(str(self.entry.keras)) or getattr(
            self.keras.applications, str(self.entry.keras), None
        )
        if factory is None:
            raise ZooError(
                f"{zoo.manifest_path}: models.{model}.keras: keras.applications has no {self.entry.keras!r}, nor does"
                f" the zoo's own {', '.join(sorted(ARCHITECTURES))} (embench/zoo_archs.py)"
            )
        shape = tuple(self.entry.input_shape or (224, 224, 3))
        self.shape = shape
        self.net = factory(weights=None, input_shape=shape, **self.entry.kwargs)
        if self.entry.calibrate_batchnorm:
            self._calibrate_batchnorm()
        self.saved_model = workdir / "saved_model"
        self.net.export(str(self.saved_model), format="tf_saved_model", verbose=False)
        self._onnx_fp32: Path | None = None

    def _calibrate_batchnorm(self) -> None:
        """Set every batch-norm layer's moving statistics to those of one seeded batch: one forward
        pass in training mode with momentum 0 (each layer sees its inputs already normalised)."""
        import numpy as np  # noqa: PLC0415

        layers = [la for la in self.net._flatten_layers() if isinstance(la, self.keras.layers.BatchNormalization)]
        if not layers:
            return
        low, high = self.entry.input_range
        batch = np.random.default_rng([self.entry.seed, 1]).uniform(low, high, size=(16, *self.shape))
        momenta = [la.momentum for la in layers]
        for layer in layers:
            layer.momentum = 0.0
        self.net(batch.astype(np.float32), training=True)
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum

    def calibration(self) -> list[Any]:
        """The seeded calibration inputs int8 quantisation sees (the same for TFLite and ONNX)."""
        import numpy as np  # noqa: PLC0415

        rng, (low, high) = np.random.default_rng(self.entry.seed), self.entry.input_range
        return [rng.uniform(low, high, size=(1, *self.shape)).astype(np.float32)
                for _ in range(self.entry.calibration_samples)]  # fmt: skip

    def _converter(self) -> Any:
        return self.tf.lite.TFLiteConverter.from_saved_model(str(self.saved_model))

    def tflite(self, precision: str) -> bytes:
        tf = self.tf
        conv = self._converter()
        if precision != "fp32":
            conv.optimizations = [tf.lite.Optimize.DEFAULT]  # alone: dynamic-range int8 weights
        if precision == "fp16":
            conv.target_spec.supported_types = [tf.float16]
        elif precision in ("int8", "int16x8"):
            samples = self.calibration()

            def representative() -> Iterator[list[Any]]:
                for sample in samples:
                    yield [sample]

            conv.representative_dataset = representative
            if precision == "int8":
                conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
                conv.inference_input_type = tf.int8
                conv.inference_output_type = tf.int8
            else:  # int16 activations, int8 weights; float in and out
                ops = tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
                conv.target_spec.supported_ops = [ops]
        return bytes(conv.convert())

    def onnx(self, out: Path, precision: str) -> None:
        source = self._fp32_onnx()
        if precision == "fp32":
            shutil.copyfile(source, out)
            return
        from onnxruntime import quantization as q  # noqa: PLC0415

        if precision == "int8_dynamic":
            q.quantize_dynamic(str(source), str(out), weight_type=q.QuantType.QInt8)
            return
        samples = iter(self.calibration())

        class Reader(q.CalibrationDataReader):  # type: ignore[misc]
            def get_next(self) -> dict[str, Any] | None:
                sample = next(samples, None)
                return None if sample is None else {ONNX_INPUT: sample}

        q.quantize_static(str(source), str(out), Reader(), quant_format=q.QuantFormat.QDQ, per_channel=True,
                          activation_type=q.QuantType.QInt8, weight_type=q.QuantType.QInt8)  # fmt: skip

    def _fp32_onnx(self) -> Path:
        """The fp32 ONNX file (tf2onnx), made once per build: the quantized ones start from it."""
        if self._onnx_fp32 is None:
            import tf2onnx  # noqa: PLC0415

            out = self.workdir / "fp32.onnx"
            spec = [self.tf.TensorSpec((1, *self.shape), self.tf.float32, name=ONNX_INPUT)]
            tf2onnx.convert.from_keras(self.net, input_signature=spec, opset=17, output_path=str(out))
            self._onnx_fp32 = out
        return self._onnx_fp32


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
    """Build each wanted artifact. A converter that cannot make one precision of this architecture
    (an op it cannot quantise that way) is recorded in the index with its own words, and the rest
    are built: those jobs are then `unsupported` with that reason. Anything else stops the build."""
    built: list[Artifact] = []
    # TensorFlow's C++ chatter on fd 2 is hidden (it would tear the progress bar); shown on failure.
    with tempfile.TemporaryDirectory(prefix=f"embench-build-{model}-") as tmp, captured_stderr_fd() as log:
        try:
            builder = _Builder(zoo, model, Path(tmp))
        except ZooError:
            raise
        except Exception as exc:  # noqa: BLE001 - Keras errors come in many types; report them all alike
            raise ZooError(f"building {model}: {type(exc).__name__}: {exc} {_tail(log.text)}".strip()) from None
        for fmt, precision in sorted(wanted, key=lambda w: (w[0], w[1] != "fp32")):  # fp32 first: ONNX quantizes it
            name = artifact_name(fmt, precision)
            on_step(f"{model} {name}")
            final = zoo.build_dir / f"{model}.{name}{SUFFIX[fmt]}"
            partial = Path(tmp) / final.name
            mark = len(log.text)
            try:
                if fmt == "tflite":
                    partial.write_bytes(builder.tflite(precision))
                else:
                    builder.onnx(partial, precision)
            except Exception as exc:  # noqa: BLE001 - the converter's refusal, kept in its own words
                zoo.record_failure(model, fmt, precision, conversion_failure(exc, log.text[mark:]))
                continue
            problem = runs_once(fmt, partial)
            if problem is not None:  # converted, but the runtime cannot run it: never cached as a model
                zoo.record_failure(model, fmt, precision, f"built, but does not run: {problem}"[:500])
                continue
            shutil.move(str(partial), final)
            built.append(zoo.record(model, fmt, precision, final))
    return built


def runs_once(fmt: str, path: Path) -> str | None:
    """Load the built file in its runtime and run one inference on zeros; None when it runs, else
    the runtime's words. A runtime that is not installed here is not a failure of the file."""
    import numpy as np  # noqa: PLC0415

    try:
        if fmt == "tflite":
            try:
                module, _, _ = import_litert()  # whichever TFLite runtime the agent would use
            except Unsupported:
                return None
            interpreter = module.Interpreter(model_path=str(path))
            interpreter.allocate_tensors()
            for detail in interpreter.get_input_details():
                interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
            interpreter.invoke()
        elif fmt == "onnx":
            try:
                import onnxruntime as ort  # noqa: PLC0415
            except ImportError:
                return None
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            feeds = {i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape],
                                      input_dtype(i.type)) for i in session.get_inputs()}  # fmt: skip
            session.run(None, feeds)
    except Exception as exc:  # noqa: BLE001 - whatever the runtime raises is the reason
        return f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    return None


def _tail(text: str) -> str:
    return " | ".join(text.strip().splitlines()[-3:])


def conversion_failure(exc: BaseException, log: str) -> str:
    """The converter's reason in one line: its first distinct error lines (TFLite repeats one per op)."""
    lines = [line.strip() for line in f"{type(exc).__name__}: {exc}".splitlines() if line.strip()]
    if len(lines) <= 1:
        lines += [line.strip() for line in log.splitlines() if "error" in line.lower()]
    seen: list[str] = []
    for line in lines:
        bare = line.split(": ", 1)[1] if line.split(": ", 1)[0].isidentifier() and ": " in line else line
        if line not in seen and bare not in seen and not any(s.endswith(bare) for s in seen):
            seen.append(line)
    return " · ".join(seen[:3])[:500]
