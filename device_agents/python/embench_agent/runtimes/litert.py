"""LiteRT (ai-edge-litert, else tflite-runtime, else tensorflow.lite): builtin CPU kernels, XNNPACK,
or an external delegate library; delegation judged from the DELEGATE nodes' partitions."""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Tuple

from ..capture import captured_stderr_fd
from ..checks import TensorInfo, concrete, evaluate, keep_outputs
from ..errors import ModelLoadError, Unsupported
from ..ops import delegate_partitions, left_on_cpu, litert_placement
from ..protocol import Accuracy, Delegation, Job, OpProfile, Outputs, RuntimeInfo, RuntimeProbe
from ..timing import Mark, make_inputs, timed_loop
from . import Measurement

MODULES = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter", "tensorflow.lite")
DISTRIBUTIONS = {"ai_edge_litert": "ai-edge-litert", "tflite_runtime": "tflite-runtime"}


def import_litert() -> Tuple[Any, str, Optional[str]]:
    """(module with Interpreter/load_delegate, package name, version), or raise Unsupported."""
    errors = []
    for name in MODULES:
        try:
            module = __import__(name, fromlist=["Interpreter"])
        except ImportError as exc:
            errors.append(f"{name}: {exc}")
            continue
        package = name.split(".")[0]
        return module, package, version_of(package, DISTRIBUTIONS.get(package, package))
    raise Unsupported("no TFLite runtime importable (" + "; ".join(errors) + ")")


def version_of(package: str, distribution: str) -> Optional[str]:
    import sys  # noqa: PLC0415

    try:
        from importlib import metadata  # noqa: PLC0415

        return metadata.version(distribution)
    except Exception:  # noqa: BLE001 - any metadata failure just means "unknown"
        return getattr(sys.modules.get(package), "__version__", None)


def delegated_node_counts(ops: List[Dict[str, Any]]) -> Tuple[int, int]:
    """(delegated, total) original nodes, walking each DELEGATE node's partition backwards."""
    return len(delegate_partitions(ops)), sum(1 for op in ops if op.get("op_name") != "DELEGATE")


def tensor_infos(details: List[Dict[str, Any]]) -> List[TensorInfo]:
    out = []
    for d in details:
        scale, zero_point = d.get("quantization") or (0.0, 0)
        out.append(TensorInfo(str(d["name"]), concrete(list(d["shape"])), d["dtype"], float(scale), int(zero_point)))
    return out


class LiteRT:
    NAME = "litert"

    def probe(self) -> RuntimeProbe:
        try:
            _, package, version = import_litert()
        except Unsupported as exc:
            return RuntimeProbe(error=str(exc))
        return RuntimeProbe(package=package, version=version)

    def run(self, job: Job, mark: Optional[Mark]) -> Measurement:
        module, package, version = import_litert()
        import numpy as np  # noqa: PLC0415 - the runtime needs it anyway

        info = RuntimeInfo(self.NAME, package, version)
        try:
            kwargs = self._interpreter_args(module, package, job)
        except Unsupported as exc:
            raise Unsupported(str(exc), info) from None
        with captured_stderr_fd() as log:
            t0 = time.perf_counter_ns()
            try:
                interpreter = module.Interpreter(**kwargs)
                interpreter.allocate_tensors()
            except (ValueError, RuntimeError) as exc:
                raise ModelLoadError(f"cannot load model {job.model.path}: {exc}", info) from exc
            init_ms = (time.perf_counter_ns() - t0) / 1e6
        delegation = self._delegation(interpreter, job.delegate.name)
        placement = self._placement(interpreter, job.delegate.name)
        inputs = interpreter.get_input_details()
        arrays = make_inputs(np, [(list(d["shape"]), d["dtype"]) for d in inputs], job.seed)
        for detail, array in zip(inputs, arrays):
            interpreter.set_tensor(detail["index"], array)
        status, message = self._judge(delegation, info, job.model.precision, placement)
        timing = timed_loop(interpreter.invoke, job.run, mark)
        outputs = interpreter.get_output_details()
        ins, outs = tensor_infos(inputs), tensor_infos(outputs)

        def infer(arrays: List[Any]) -> List[Any]:
            for detail, array in zip(inputs, arrays):
                interpreter.set_tensor(detail["index"], array)
            interpreter.invoke()
            return [interpreter.get_tensor(d["index"]) for d in outputs]

        def checks() -> Tuple[Optional[Outputs], Optional[Accuracy]]:
            return keep_outputs(np, infer, ins, outs, job.checks, job.seed), evaluate(np, infer, ins, job.checks)

        return Measurement(info, delegation, init_ms, log.text[-4000:], timing, status, message, checks, placement)

    @staticmethod
    def _interpreter_args(module: Any, package: str, job: Job) -> Dict[str, Any]:
        name = job.delegate.name
        kwargs: Dict[str, Any] = {"model_path": job.model.path, "num_threads": job.threads}
        if name == "cpu":
            resolver = getattr(module, "OpResolverType", None)
            if resolver is None:
                raise Unsupported(f"{package} has no OpResolverType; cannot disable default delegates")
            kwargs["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        elif name != "xnnpack":
            library = job.delegate.library
            if not library:
                raise Unsupported(f"delegate {name!r} needs a library path (set delegates.{name}.library)")
            try:
                loaded = module.load_delegate(library, dict(job.delegate.options))
            except (OSError, ValueError, RuntimeError) as exc:
                raise Unsupported(f"cannot load delegate {name!r} from {library}: {exc}") from exc
            kwargs["experimental_delegates"] = [loaded]
        return kwargs

    @staticmethod
    def _delegation(interpreter: Any, name: str) -> Delegation:
        ops = interpreter._get_ops_details() if hasattr(interpreter, "_get_ops_details") else None
        if ops is None:
            return Delegation(requested=name)
        delegated, total = delegated_node_counts(ops)
        if name == "cpu":
            actual = "cpu" if delegated == 0 else "delegate"
        else:
            actual = name if delegated else "cpu"
        return Delegation(requested=name, actual=actual, delegated_nodes=delegated, total_nodes=total)

    @staticmethod
    def _placement(interpreter: Any, name: str) -> Optional[OpProfile]:
        ops = interpreter._get_ops_details() if hasattr(interpreter, "_get_ops_details") else None
        if ops is None:
            return None
        names = dict((int(d["index"]), str(d["name"])) for d in interpreter.get_tensor_details())
        return litert_placement(ops, name, names)

    @staticmethod
    def _judge(
        d: Delegation, info: RuntimeInfo, precision: str, placement: Optional[OpProfile] = None
    ) -> Tuple[str, Optional[str]]:
        """ok, or fallback when a delegate took only part of the graph; Unsupported when it took none
        (XNNPACK too: a timing of LiteRT's builtin kernels is not XNNPACK's, e.g. on int16x8 models)."""
        if d.delegated_nodes is None or d.total_nodes is None or d.requested == "cpu":
            return "ok", None
        if d.delegated_nodes == 0:
            raise Unsupported(f"delegate {d.requested!r} took none of the {d.total_nodes} nodes of this {precision}"
                              " model: it has no kernels for them here; delegate cpu times LiteRT's own", info, d)  # fmt: skip
        if d.delegated_nodes < d.total_nodes:
            why = f"delegate {d.requested!r} took {d.delegated_nodes} of {d.total_nodes} nodes; the rest ran on the CPU"
            if placement is not None:
                why += f": {left_on_cpu(placement)}"
            return "fallback", why
        return "ok", None
