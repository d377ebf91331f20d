"""LiteRT: builtin CPU kernels, XNNPACK, and delegates that load a shared library on the device."""

from __future__ import annotations

from collections.abc import Mapping

from embench_agent.protocol import LibraryProbe, RuntimeProbe

from .base import HostRuntime

BUILT_IN = ("cpu", "xnnpack")  # cpu = LiteRT's builtin kernels, without the default XNNPACK delegate
DEFAULT_LIBRARIES = {
    "edgetpu": "libedgetpu.so.1",
    "gpu": "libtensorflowlite_gpu_delegate.so",
    "hexagon": "libhexagon_interface.so",
}


class LiteRT(HostRuntime):
    NAME = "litert"
    DELEGATES = (*BUILT_IN, "gpu", "nnapi", "hexagon", "edgetpu")
    DEFAULT_DELEGATES = ("xnnpack",)
    BASELINE = ("cpu", "xnnpack")
    CUSTOM_LIBRARIES = True

    def file_format(self, delegate: str) -> str:
        return "tflite_edgetpu" if delegate == "edgetpu" else "tflite"  # the Edge TPU runs a compiled model

    def library(self, delegate: str, libraries: Mapping[str, str]) -> str | None:
        if delegate in BUILT_IN:
            return None
        return libraries.get(delegate, DEFAULT_LIBRARIES.get(delegate))

    def cannot_run(
        self, device: str, delegate: str, probe: RuntimeProbe, libraries: Mapping[str, LibraryProbe]
    ) -> str | None:
        why = super().cannot_run(device, delegate, probe, libraries)
        if why or delegate in BUILT_IN:
            return why
        lib = libraries.get(delegate)
        if lib is None:
            return f"device {device!r}: delegate {delegate!r} has no library; set delegate_libraries.{delegate}"
        if not lib.loadable:
            return f"device {device!r}: delegate {delegate!r}: cannot load {lib.library}: {lib.error}"
        return None
