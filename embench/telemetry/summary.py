"""What a Result's telemetry says: energy per inference, power, temperatures. Pure: no I/O."""

from __future__ import annotations

import math
from typing import Any

from .energy import counter_delta, integrate, mean_power, net_joules, per_inference

NO_POWER = "no power source"
# Samples from a meter on the host are placed on the device's clock within ± an uncertainty (half
# the best probe's round trip); more than this share of the window, and they are not used.
MAX_ALIGN_SHARE = 0.02


def _window(tel: dict[str, Any], start: str, end: str) -> tuple[float, float] | None:
    edges = tel.get("edges") or {}
    if start in edges and end in edges:
        return float(edges[start]["t"]), float(edges[end]["t"])
    return None


def _idle_watts(samples: list[tuple[float, float]], idle: tuple[float, float] | None) -> float:
    """Mean power over the idle window: integrated from its start edge (interpolated) to the last
    sample inside it. Not interpolated past that sample: the model starts loading right at the end
    edge, and the next sample already shows it."""
    if idle is None:
        return math.nan
    inside = [(t, v) for t, v in samples if idle[0] <= t <= idle[1]]
    if len(inside) < 2:
        return math.nan
    energy = integrate(samples, idle[0], inside[-1][0])
    return energy.watts if not energy.sparse and energy.seconds > 0 else mean_power(inside)


def summarize_telemetry(result: dict[str, Any], inferences: int) -> dict[str, Any]:
    """Energy (J, gross and net of the idle baseline), watts, J per inference, temperatures, frequencies."""
    tel = result.get("telemetry") or {}
    out: dict[str, Any] = {"energy_note": NO_POWER, "errors": list(tel.get("errors") or [])}
    window = _window(tel, "window_start", "window_end")
    idle = _window(tel, "idle_start", "idle_end")
    sources = tel.get("sources") or []
    for src in sources:
        if window is None:
            break
        if src["kind"] == "power" and "joules" not in out:
            samples = [(float(t), float(v)) for t, v in src["samples"]]
            energy = integrate(samples, *window)
            out.update(power_source=f"{src['source']}:{src['label']}", coverage=energy.coverage,
                       samples_in_window=energy.samples_in_window)  # fmt: skip
            if energy.sparse:
                out["energy_note"] = f"{src['source']} power samples too sparse (coverage {energy.coverage:.0%})"
                continue
            uncertainty = (src.get("facts") or {}).get("clock_uncertainty_s")  # a meter on the host
            if uncertainty is not None and uncertainty > MAX_ALIGN_SHARE * energy.seconds:
                out["energy_note"] = (f"{src['source']} clock alignment ±{uncertainty * 1e3:.0f} ms is too coarse"
                                      f" for a {energy.seconds:.2f} s window")  # fmt: skip
                continue
            idle_w = _idle_watts(samples, idle)
            out.update(joules=energy.joules, watts=energy.watts, idle_watts=idle_w, energy_note="")
            out["net_joules"] = (
                net_joules(energy.joules, idle_w, energy.seconds) if not math.isnan(idle_w) else math.nan
            )
        elif src["kind"] == "counter" and "joules" not in out:
            edges = tel["edges"]
            start = edges["window_start"]["counters"].get(src["source"])
            end = edges["window_end"]["counters"].get(src["source"])
            if start is None or end is None:
                continue
            joules = counter_delta(int(start), int(end), (src.get("facts") or {}).get("max_energy_range_uj")) / 1e6
            seconds = window[1] - window[0]
            out.update(power_source=f"{src['source']}:{src['label']}", joules=joules, watts=joules / seconds,
                       idle_watts=math.nan, net_joules=math.nan, energy_note="")  # fmt: skip
    if "joules" in out:
        net = out["net_joules"]
        if math.isnan(net):
            base, basis = out["joules"], "gross"
        elif net < 0:
            # The idle baseline drew more than the run: a noisy baseline, not negative work.
            base, basis = out["joules"], "gross: the idle baseline was above the run"
        else:
            base, basis = net, "net of idle"
        out["joules_per_inference"] = per_inference(base, inferences)
        out["per_inference_basis"] = basis
    for src in sources:
        values = [float(v) for _, v in src["samples"]]
        if src["kind"] == "temperature" and values:
            out[f"{src['source']}_max_c"] = max(values)
            out[f"{src['source']}_start_c"] = values[0]
            trip = (src.get("facts") or {}).get("trip_c")
            if trip is not None:
                out["trip_c"] = trip
        elif src["kind"] == "frequency" and values:
            out["freq_min_mhz"], out["freq_max_mhz"] = min(values), max(values)
    out["sampler_cpu_seconds"] = tel.get("sampler_cpu_seconds")
    return out
