"""ONNX Runtime: one execution provider per job (ORT itself would fall back to the CPU silently)."""

from __future__ import annotations

from collections.abc import Mapping

from embench_agent.protocol import LibraryProbe, RuntimeProbe

from .base import HostRuntime

PROVIDERS = (
    "CPUExecutionProvider", "XnnpackExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider",
    "ROCMExecutionProvider", "MIGraphXExecutionProvider", "OpenVINOExecutionProvider", "DnnlExecutionProvider",
    "CoreMLExecutionProvider", "NnapiExecutionProvider", "QNNExecutionProvider", "SNPEExecutionProvider",
    "ArmNNExecutionProvider", "ACLExecutionProvider", "RknpuExecutionProvider", "VitisAIExecutionProvider",
    "DmlExecutionProvider", "WebGpuExecutionProvider", "CANNExecutionProvider", "AzureExecutionProvider",
)  # fmt: skip


class OnnxRuntime(HostRuntime):
    NAME = "onnxruntime"
    DELEGATES = PROVIDERS
    DEFAULT_DELEGATES = ("CPUExecutionProvider",)
    BASELINE = ("CPUExecutionProvider",)

    def file_format(self, delegate: str) -> str:
        return "onnx"

    def cannot_run(
        self, device: str, delegate: str, probe: RuntimeProbe, libraries: Mapping[str, LibraryProbe]
    ) -> str | None:
        why = super().cannot_run(device, delegate, probe, libraries)
        if why or probe.providers is None or delegate in probe.providers:
            return why
        return f"device {device!r}: onnxruntime {probe.version} has no {delegate} (available: {', '.join(probe.providers)})"
