"""Host-side drivers of the on-device agents."""

from __future__ import annotations

from pathlib import Path

from ..inventory import Device
from ..transports.base import Transport
from .benchmark_model import BenchmarkModelAgent
from .phone import phone_facts
from .python_agent import PythonAgent
from .results import STATUSES, SUCCESS, host_result

Agent = PythonAgent | BenchmarkModelAgent

__all__ = ["STATUSES", "SUCCESS", "Agent", "BenchmarkModelAgent", "PythonAgent", "host_result", "make_agent",
           "phone_facts"]  # fmt: skip


def make_agent(device: Device, transport: Transport) -> Agent:
    """benchmark_model on a phone configured for it; the Python agent everywhere else."""
    if device.transport == "adb" and device.adb is not None and device.adb.agent == "benchmark_model":
        assert device.adb.benchmark_model is not None  # the inventory check demands it
        return BenchmarkModelAgent(transport, device, Path(device.adb.benchmark_model))
    return PythonAgent(transport, device.python or "python3")
