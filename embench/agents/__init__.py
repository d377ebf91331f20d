"""Host-side drivers of the on-device agents. Adding one: a class with the Agent protocol
(base.py), constructed as `Cls(transport, device)`, plus one line in AGENTS."""

from __future__ import annotations

from collections.abc import Callable

from ..inventory import Device
from ..transports.base import Transport
from .base import Agent, host_result
from .benchmark_model import BenchmarkModelAgent
from .python_agent import PythonAgent

AGENTS: dict[str, Callable[[Transport, Device], Agent]] = {
    PythonAgent.NAME: PythonAgent,
    BenchmarkModelAgent.NAME: BenchmarkModelAgent,
}

__all__ = ["AGENTS", "Agent", "BenchmarkModelAgent", "PythonAgent", "host_result", "make_agent"]


def make_agent(device: Device, transport: Transport) -> Agent:
    """The agent the device's entry asks for (benchmark_model on a phone configured for it; else Python)."""
    return AGENTS[device.agent_kind](transport, device)
