"""Power and thermal telemetry: energy maths here (energy.py, clock.py); the readers sample on the
device, inside the agent (device_agents/python/embench_agent.py), because the agent is one file;
the one reader on the host is an external meter (external.py)."""

from .energy import Energy, counter_delta, integrate, mean_power, net_joules, per_inference
from .summary import NO_POWER, summarize_telemetry
from .throttle import throttle_flags

__all__ = [
    "NO_POWER",
    "Energy",
    "counter_delta",
    "integrate",
    "mean_power",
    "net_joules",
    "per_inference",
    "summarize_telemetry",
    "throttle_flags",
]
