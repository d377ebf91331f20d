"""Was a run hot or throttled? Flags from telemetry and from the latency samples. Pure: no I/O."""

from __future__ import annotations

import math
from collections.abc import Sequence

from embench_agent.protocol import Result

from ..stats import DRIFT_WARN, drift


def throttle_flags(result: Result, samples_ns: Sequence[int]) -> list[str]:
    """Every sign that the device slowed itself down during the timed window, each as a short reason."""
    flags = []
    sources = result.telemetry.sources if result.telemetry is not None else ()
    for src in sources:
        values = src.values()
        start, end = src.facts_start, src.facts
        if src.kind == "temperature":
            trip = end.get("trip_c")
            if trip is not None and values and max(values) >= trip:
                flags.append(f"{src.source} reached its {trip:g} °C trip point ({max(values):.1f} °C)")
            before, after = start.get("cooling_states") or {}, end.get("cooling_states") or {}
            engaged = sorted(k for k, v in after.items() if v > before.get(k, 0))
            if engaged:
                flags.append(f"cooling engaged: {', '.join(engaged)}")
        elif src.kind == "frequency":
            caps0, caps1 = start.get("max_mhz") or [], end.get("max_mhz") or []
            dropped = [i for i, (a, b) in enumerate(zip(caps0, caps1)) if a and b and b < a]
            if dropped:
                flags.append(f"max CPU frequency lowered during the run on cpu {', '.join(map(str, dropped))}")
        elif src.kind == "throttle" and values and max(values) > 0:
            flags.append(f"throttle bits set: {hex(int(max(values)))}")
    d = drift(samples_ns)
    if not math.isnan(d) and abs(d) > DRIFT_WARN:
        flags.append(f"latency drifted {d:+.0%} from the first to the last tenth of the window")
    return flags
