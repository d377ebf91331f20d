"""ONNX Runtime with one execution provider. ORT warns and silently runs on the CPU when a provider
is missing, so the request is checked against the session's providers, never trusted."""

from __future__ import annotations

import time
import warnings
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..capture import captured_stderr_fd
from ..checks import TensorInfo, concrete, evaluate, keep_outputs
from ..errors import ModelLoadError, Unsupported
from ..ops import left_on_cpu, ort_profiled_pass
from ..protocol import Accuracy, Delegation, Job, OpProfile, Outputs, RuntimeInfo, RuntimeProbe
from ..timing import Mark, make_inputs, timed_loop
from . import Measurement

CPU_PROVIDER = "CPUExecutionProvider"
DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(bool)": "bool",
}


def import_onnxruntime() -> Any:
    try:
        import onnxruntime  # noqa: PLC0415 - imported only for ONNX jobs
    except ImportError as exc:
        raise Unsupported(f"onnxruntime is not importable: {exc}") from exc
    return onnxruntime


def input_dtype(type_name: str) -> str:
    if type_name not in DTYPES:
        raise ValueError(f"input type {type_name} is not supported by the agent")
    return DTYPES[type_name]


class OnnxRuntime:
    NAME = "onnxruntime"

    def probe(self) -> RuntimeProbe:
        try:
            ort = import_onnxruntime()
        except Unsupported as exc:
            return RuntimeProbe(error=str(exc))
        return RuntimeProbe("onnxruntime", ort.__version__, tuple(ort.get_available_providers()))

    def run(self, job: Job, mark: Optional[Mark]) -> Measurement:
        ort = import_onnxruntime()
        import numpy as np  # noqa: PLC0415

        info = RuntimeInfo(self.NAME, "onnxruntime", ort.__version__)
        provider = job.delegate.name
        available = tuple(ort.get_available_providers())
        with warnings.catch_warnings(record=True) as caught, captured_stderr_fd() as log:
            warnings.simplefilter("always")
            t0 = time.perf_counter_ns()
            try:
                session = ort.InferenceSession(
                    job.model.path,
                    sess_options=self._options(ort, job),
                    providers=[(provider, dict(job.delegate.options))],
                )
            except (ValueError, RuntimeError) as exc:
                raise ModelLoadError(f"cannot load model {job.model.path}: {exc}", info) from exc
            init_ms = (time.perf_counter_ns() - t0) / 1e6
        messages = [str(w.message) for w in caught]
        actual = tuple(session.get_providers())
        delegation = Delegation(
            requested=provider,
            actual=actual[0] if actual else None,
            actual_providers=actual,
            available_providers=available,
        )
        # ORT warns and silently runs on the CPU when a provider is missing: never trust the request.
        if provider not in actual:
            why = messages[0] if messages else f"provider {provider!r} not in session providers {list(actual)}"
            raise Unsupported(why, info, delegation)
        feeds: Dict[str, Any] = {}
        metas = session.get_inputs()
        details: List[Tuple[Any, Any]] = [(list(m.shape), np.dtype(input_dtype(m.type))) for m in metas]
        for meta, array in zip(metas, make_inputs(np, details, job.seed)):
            feeds[meta.name] = array
        run = session.run
        timing = timed_loop(lambda: run(None, feeds), job.run, mark)
        ops = self._ops(ort, job, provider, lambda s: s.run(None, feeds))
        status, message = self._judge(provider, ops)
        log_text = ("\n".join(messages) + "\n" + log.text)[-4000:]
        ins = [TensorInfo(m.name, concrete(m.shape), dtype) for m, (_, dtype) in zip(metas, details)]
        outs = [TensorInfo(m.name, concrete(m.shape), np.dtype(DTYPES.get(m.type, "float32")))
                for m in session.get_outputs()]  # fmt: skip

        def infer(arrays: List[Any]) -> List[Any]:
            return list(run(None, dict((m.name, a) for m, a in zip(metas, arrays))))

        def checks() -> Tuple[Optional[Outputs], Optional[Accuracy]]:
            return keep_outputs(np, infer, ins, outs, job.checks, job.seed), evaluate(np, infer, ins, job.checks)

        return Measurement(info, delegation, init_ms, log_text, timing, status, message, checks, ops)

    def _ops(self, ort: Any, job: Job, provider: str, infer: Callable[[Any], Any]) -> OpProfile:
        """The profiled pass (after the window) when asked for, or when placement is in question: a
        provider other than the CPU's may leave nodes on the CPU. Otherwise every node is on the CPU."""
        if not job.run.op_profiling and provider == CPU_PROVIDER:
            return OpProfile(source="onnxruntime", note=f"every node ran on {CPU_PROVIDER}; op_profiling: true"
                             " times each node in a profiled pass after the timed window")  # fmt: skip

        def make_session(options: Any) -> Any:
            self._configure(options, ort, job)
            return ort.InferenceSession(job.model.path, sess_options=options,
                                        providers=[(provider, dict(job.delegate.options))])  # fmt: skip

        try:
            with captured_stderr_fd():
                return ort_profiled_pass(make_session, ort, infer)
        except Exception as exc:  # noqa: BLE001 - the timing stands; the profile says what went wrong
            return OpProfile(
                source="onnxruntime-profiler", note=f"the profiled pass failed: {type(exc).__name__}: {exc}"
            )

    @staticmethod
    def _judge(provider: str, ops: OpProfile) -> Tuple[str, Optional[str]]:
        """fallback when a provider other than the CPU's left nodes on the CPU (its profile says so)."""
        if provider == CPU_PROVIDER:
            return "ok", None
        left = [op for op in ops.ops if op.processor != provider]
        if not left:
            return "ok", None
        return "fallback", (f"provider {provider} ran {len(ops.ops) - len(left)} of {len(ops.ops)} nodes; the rest"
                            f" ran on {CPU_PROVIDER}: {left_on_cpu(ops)}")  # fmt: skip

    @classmethod
    def _options(cls, ort: Any, job: Job) -> Any:
        return cls._configure(ort.SessionOptions(), ort, job)

    @staticmethod
    def _configure(options: Any, ort: Any, job: Job) -> Any:
        options.intra_op_num_threads = job.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        return options
