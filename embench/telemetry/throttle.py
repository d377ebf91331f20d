"""Was a run throttled (on the telemetry's evidence only), and did its latency rise within the
window (a significant slowdown, apart)? Pure: no I/O."""

from __future__ import annotations

from collections.abc import Sequence

from embench_agent.protocol import Result

from ..stats import slowdown_within


def throttle_flags(result: Result) -> list[str]:
    """Every sign in the telemetry that the device slowed itself down during the timed window, each
    as a short reason. No telemetry, no flag: latency alone is not evidence of throttling."""
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
    return flags


def drift_note(result: Result, samples_ns: Sequence[int]) -> str:
    """Latency that rose within a timed window, significantly and by more than DRIFT_WARN (in each
    repetition's own window); '' when none did. Getting faster is warm-up, not a problem."""
    segments, start = [], 0
    for rep in result.repetitions or ():
        segments.append(samples_ns[start : start + rep.samples])
        start += rep.samples
    if not segments:
        segments = [samples_ns]
    rises = [r for r in (slowdown_within(seg) for seg in segments) if r is not None]
    if not rises:
        return ""
    where = "" if len(segments) == 1 else f" in {len(rises)} of {len(segments)} repetitions"
    return f"latency rose {max(rises):+.0%} from the first to the last tenth of the window{where}"
