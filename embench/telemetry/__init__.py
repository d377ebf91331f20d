"""Power and thermal telemetry on the host: energy maths (energy.py, clock.py), what a result's
telemetry says (summary.py, throttle.py). The readers sample on the device, inside the agent
(device_agents/python/embench_agent/telemetry/); the one reader on the host is an external meter
(external.py)."""

from .energy import Energy, counter_delta, integrate, mean_power, net_joules, per_inference
from .summary import NO_POWER, TelemetrySummary, summarize_telemetry
from .throttle import drift_note, throttle_flags

__all__ = [
    "NO_POWER",
    "Energy",
    "TelemetrySummary",
    "counter_delta",
    "drift_note",
    "integrate",
    "mean_power",
    "net_joules",
    "per_inference",
    "summarize_telemetry",
    "throttle_flags",
]
