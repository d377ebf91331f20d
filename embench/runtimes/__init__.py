"""Runtimes by name. Adding one: a HostRuntime subclass in a module here plus one line in RUNTIMES,
and its agent half in device_agents/python/embench_agent/runtimes/ plus one line there."""

from __future__ import annotations

from .base import HostRuntime
from .litert import LiteRT
from .onnxruntime import OnnxRuntime

RUNTIMES: dict[str, HostRuntime] = {LiteRT.NAME: LiteRT(), OnnxRuntime.NAME: OnnxRuntime()}


def runtime(name: str) -> HostRuntime:
    return RUNTIMES[name]


def baseline_order() -> list[tuple[str, str]]:
    """(runtime, delegate) pairs that can be a device's single-thread CPU baseline, best first."""
    return [(rt.NAME, delegate) for rt in RUNTIMES.values() for delegate in rt.BASELINE]


__all__ = ["RUNTIMES", "HostRuntime", "baseline_order", "runtime"]
